// Package pipelinetest runs the real changelens processor and exporter
// in-process against a ClickHouse database, so tests of what reads the tables
// (the query API, the dashboards) get their data the way users do, never by
// INSERTs that bypass the exporter.
package pipelinetest

import (
	"context"
	"testing"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/changelens/changelens/exporter/changelensexporter"
	"github.com/changelens/changelens/processor/changelensprocessor"
)

// Pipeline is one changelens exporter fed by one or more changelens
// processors (collector replicas), each with a traces, a logs (feature-flag
// evaluations on the Logs API) and a metrics pipeline (resource usage).
type Pipeline struct {
	exporter        exporter.Traces
	logsExporter    exporter.Logs
	metricsExporter exporter.Metrics
	Replicas        []processor.Traces
	LogReplicas     []processor.Logs
	MetricReplicas  []processor.Metrics
}

// New starts the exporter against addr/database (schema created by it,
// retention off: test data usually lies in the past) and replicas processors
// with default configs feeding it. mutate, if not nil, adjusts the exporter's
// config first; mutateProcessor, if given, every processor's.
func New(tb testing.TB, addr, database string, replicas int, mutate func(*changelensexporter.Config),
	mutateProcessor ...func(*changelensprocessor.Config)) *Pipeline {
	tb.Helper()
	ctx := context.Background()
	ef := changelensexporter.NewFactory()
	ecfg := ef.CreateDefaultConfig().(*changelensexporter.Config)
	ecfg.Endpoints = []string{addr}
	ecfg.Database = database
	ecfg.CreateSchema = true
	ecfg.RetentionDays = 0
	if mutate != nil {
		mutate(ecfg)
	}
	if err := ecfg.Validate(); err != nil {
		tb.Fatal(err)
	}
	// The exporters' warnings and errors (a failed insert, data dropped)
	// are kept and shown when the test fails: a count that comes up short
	// then says why.
	core, observed := observer.New(zapcore.WarnLevel)
	settings := exportertest.NewNopSettings(ef.Type())
	settings.Logger = zap.New(core)
	tb.Cleanup(func() {
		if tb.Failed() {
			for _, e := range observed.All() {
				tb.Logf("exporter %s: %s %v", e.Level, e.Message, e.ContextMap())
			}
		}
	})
	exp, err := ef.CreateTraces(ctx, settings, ecfg)
	if err != nil {
		tb.Fatal(err)
	}
	if err := exp.Start(ctx, componenttest.NewNopHost()); err != nil {
		tb.Fatal(err)
	}
	lexp, err := ef.CreateLogs(ctx, settings, ecfg)
	if err != nil {
		tb.Fatal(err)
	}
	if err := lexp.Start(ctx, componenttest.NewNopHost()); err != nil {
		tb.Fatal(err)
	}
	mexp, err := ef.CreateMetrics(ctx, settings, ecfg)
	if err != nil {
		tb.Fatal(err)
	}
	if err := mexp.Start(ctx, componenttest.NewNopHost()); err != nil {
		tb.Fatal(err)
	}
	p := &Pipeline{exporter: exp, logsExporter: lexp, metricsExporter: mexp}
	pf := changelensprocessor.NewFactory()
	for range replicas {
		pcfg := pf.CreateDefaultConfig().(*changelensprocessor.Config)
		for _, m := range mutateProcessor {
			m(pcfg)
		}
		if err := pcfg.Validate(); err != nil {
			tb.Fatal(err)
		}
		proc, err := pf.CreateTraces(ctx, processortest.NewNopSettings(pf.Type()), pcfg, exp)
		if err != nil {
			tb.Fatal(err)
		}
		if err := proc.Start(ctx, componenttest.NewNopHost()); err != nil {
			tb.Fatal(err)
		}
		p.Replicas = append(p.Replicas, proc)
		lproc, err := pf.CreateLogs(ctx, processortest.NewNopSettings(pf.Type()), pcfg, lexp)
		if err != nil {
			tb.Fatal(err)
		}
		if err := lproc.Start(ctx, componenttest.NewNopHost()); err != nil {
			tb.Fatal(err)
		}
		p.LogReplicas = append(p.LogReplicas, lproc)
		mproc, err := pf.CreateMetrics(ctx, processortest.NewNopSettings(pf.Type()), pcfg, mexp)
		if err != nil {
			tb.Fatal(err)
		}
		if err := mproc.Start(ctx, componenttest.NewNopHost()); err != nil {
			tb.Fatal(err)
		}
		p.MetricReplicas = append(p.MetricReplicas, mproc)
	}
	return p
}

// SendLogs feeds ld to the logs pipeline of replica i.
func (p *Pipeline) SendLogs(tb testing.TB, i int, ld plog.Logs) {
	tb.Helper()
	if err := p.LogReplicas[i].ConsumeLogs(context.Background(), ld); err != nil {
		tb.Fatal(err)
	}
}

// SendMetrics feeds md to the metrics pipeline of replica i.
func (p *Pipeline) SendMetrics(tb testing.TB, i int, md pmetric.Metrics) {
	tb.Helper()
	if err := p.MetricReplicas[i].ConsumeMetrics(context.Background(), md); err != nil {
		tb.Fatal(err)
	}
}

// Send feeds td to the first replica.
func (p *Pipeline) Send(tb testing.TB, td ptrace.Traces) {
	tb.Helper()
	if err := p.Replicas[0].ConsumeTraces(context.Background(), td); err != nil {
		tb.Fatal(err)
	}
}

// Close flushes the processors' pending state, then drains the exporter's
// queue into ClickHouse: afterwards every event is stored.
func (p *Pipeline) Close(tb testing.TB) {
	tb.Helper()
	ctx := context.Background()
	for _, r := range p.Replicas {
		if err := r.Shutdown(ctx); err != nil {
			tb.Fatal(err)
		}
	}
	for _, r := range p.LogReplicas {
		if err := r.Shutdown(ctx); err != nil {
			tb.Fatal(err)
		}
	}
	for _, r := range p.MetricReplicas {
		if err := r.Shutdown(ctx); err != nil {
			tb.Fatal(err)
		}
	}
	if err := p.exporter.Shutdown(ctx); err != nil {
		tb.Fatal(err)
	}
	if err := p.logsExporter.Shutdown(ctx); err != nil {
		tb.Fatal(err)
	}
	if err := p.metricsExporter.Shutdown(ctx); err != nil {
		tb.Fatal(err)
	}
}
