// Package pipelinetest runs the real changelens processor and exporter
// in-process against a ClickHouse database, so tests of what reads the tables
// (the query API, the dashboards) get their data the way users do, never by
// INSERTs that bypass the exporter.
package pipelinetest

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
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
	// passed counts what the processors handed the exporters (spans, log
	// records, metric points); telemetry holds the exporters' own counts
	// of what they sent or gave up on.
	passed    [3]atomic.Int64
	telemetry *sdkmetric.ManualReader
}

// The signals, as indexes of Pipeline.passed, and the exporterhelper
// metrics counting each one's items sent and failed.
const (
	spans = iota
	logRecords
	metricPoints
)

var sentMetrics = [3][2]string{
	{"otelcol_exporter_sent_spans", "otelcol_exporter_send_failed_spans"},
	{"otelcol_exporter_sent_log_records", "otelcol_exporter_send_failed_log_records"},
	{"otelcol_exporter_sent_metric_points", "otelcol_exporter_send_failed_metric_points"},
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
	reader := sdkmetric.NewManualReader()
	settings.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
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
	p := &Pipeline{exporter: exp, logsExporter: lexp, metricsExporter: mexp, telemetry: reader}
	// The processors feed the exporters through counters, so that Close
	// knows how many items the exporters must have sent.
	texp, err := consumer.NewTraces(counted(exp.ConsumeTraces, ptrace.Traces.SpanCount, &p.passed[spans]),
		consumer.WithCapabilities(exp.Capabilities()))
	if err != nil {
		tb.Fatal(err)
	}
	tlexp, err := consumer.NewLogs(counted(lexp.ConsumeLogs, plog.Logs.LogRecordCount, &p.passed[logRecords]),
		consumer.WithCapabilities(lexp.Capabilities()))
	if err != nil {
		tb.Fatal(err)
	}
	tmexp, err := consumer.NewMetrics(counted(mexp.ConsumeMetrics, pmetric.Metrics.DataPointCount, &p.passed[metricPoints]),
		consumer.WithCapabilities(mexp.Capabilities()))
	if err != nil {
		tb.Fatal(err)
	}
	pf := changelensprocessor.NewFactory()
	for range replicas {
		pcfg := pf.CreateDefaultConfig().(*changelensprocessor.Config)
		for _, m := range mutateProcessor {
			m(pcfg)
		}
		if err := pcfg.Validate(); err != nil {
			tb.Fatal(err)
		}
		proc, err := pf.CreateTraces(ctx, processortest.NewNopSettings(pf.Type()), pcfg, texp)
		if err != nil {
			tb.Fatal(err)
		}
		if err := proc.Start(ctx, componenttest.NewNopHost()); err != nil {
			tb.Fatal(err)
		}
		p.Replicas = append(p.Replicas, proc)
		lproc, err := pf.CreateLogs(ctx, processortest.NewNopSettings(pf.Type()), pcfg, tlexp)
		if err != nil {
			tb.Fatal(err)
		}
		if err := lproc.Start(ctx, componenttest.NewNopHost()); err != nil {
			tb.Fatal(err)
		}
		p.LogReplicas = append(p.LogReplicas, lproc)
		mproc, err := pf.CreateMetrics(ctx, processortest.NewNopSettings(pf.Type()), pcfg, tmexp)
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
//
// It waits for the exporters to have sent (or given up on) every item the
// processors handed them before shutting them down: exporterhelper stops
// retrying first at shutdown, so a batch whose insert failed once — a
// transient error on a loaded machine — would otherwise be dropped, and
// the test would count too few rows with no error to show for it.
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
	p.awaitSent(tb, 5*time.Minute)
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

// counted is next counting into n the items (count) of what it accepted.
func counted[T any](next func(context.Context, T) error, count func(T) int, n *atomic.Int64) func(context.Context, T) error {
	return func(ctx context.Context, data T) error {
		k := count(data) // before next: an exporter may take ownership
		err := next(ctx, data)
		if err == nil {
			n.Add(int64(k))
		}
		return err
	}
}

// awaitSent waits until the exporters' sent and failed items add up to
// what they were handed, for at most limit (retries give up after
// exporterhelper's max elapsed time, 5 minutes). Items that failed for
// good make the test fail.
func (p *Pipeline) awaitSent(tb testing.TB, limit time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(limit)
	for {
		done, failed, err := p.sent()
		if err != nil {
			tb.Fatal(err)
		}
		complete := true
		for i := range done {
			if done[i]+failed[i] < p.passed[i].Load() {
				complete = false
			}
		}
		if complete {
			if failed != [3]int64{} {
				tb.Errorf("the exporters failed to send %d spans, %d log records and %d metric points", failed[spans], failed[logRecords], failed[metricPoints])
			}
			return
		}
		if time.Now().After(deadline) {
			tb.Errorf("after %s the exporters had sent %v and failed %v of the %d spans, %d log records and %d metric points handed to them",
				limit, done, failed, p.passed[spans].Load(), p.passed[logRecords].Load(), p.passed[metricPoints].Load())
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sent reads the exporters' counts of items sent and failed, per signal.
func (p *Pipeline) sent() (sent, failed [3]int64, err error) {
	var rm metricdata.ResourceMetrics
	if err := p.telemetry.Collect(context.Background(), &rm); err != nil {
		return sent, failed, err
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				continue
			}
			var total int64
			for _, dp := range sum.DataPoints {
				total += dp.Value
			}
			for i, names := range sentMetrics {
				switch m.Name {
				case names[0]:
					sent[i] += total
				case names[1]:
					failed[i] += total
				}
			}
		}
	}
	return sent, failed, nil
}
