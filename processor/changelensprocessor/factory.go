// Package changelensprocessor turns traces into changelens events, encoded as
// spans (see internal/eventspan): a latency event per entry span, a call event
// per other CLIENT or PRODUCER span (the service graph's edges), and a
// deployment event per CI/CD deploy span. It infers no deployments from
// changes of service.version: that needs every collector's observations
// together, so the query API derives them when it reads (queryapi/inference),
// and the processor keeps no per-unit state but the cohort bounds.
//
// In a logs pipeline it keeps the log-based feature-flag evaluations as flag
// evaluation events and drops every other log record (logs.go); in a metrics
// pipeline, the units' CPU time and memory per instance, and drops every
// other metric (metrics.go).
package changelensprocessor

import (
	"context"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"

	"github.com/changelens/changelens/processor/changelensprocessor/internal/metadata"
)

// NewFactory returns the factory of the changelens processor.
func NewFactory() processor.Factory {
	return processor.NewFactory(
		metadata.Type,
		func() component.Config { return defaultConfig() },
		processor.WithTraces(createTraces, metadata.TracesStability),
		processor.WithLogs(createLogs, metadata.LogsStability),
		processor.WithMetrics(createMetrics, metadata.MetricsStability),
	)
}

func createTraces(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Traces) (processor.Traces, error) {
	p, err := newProcessor(set.TelemetrySettings, cfg.(*Config), next)
	if err != nil {
		return nil, err
	}
	process := processorhelper.ProcessTracesFunc(p.processTraces)
	if cfg.(*Config).SelfTime.Enabled {
		process = withSelfTime(process)
	}
	return processorhelper.NewTraces(ctx, set, cfg, next, process,
		processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: true}),
		processorhelper.WithStart(p.start),
		processorhelper.WithShutdown(p.shutdown),
	)
}

func createLogs(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Logs) (processor.Logs, error) {
	p, err := newProcessor(set.TelemetrySettings, cfg.(*Config), nil)
	if err != nil {
		return nil, err
	}
	return processorhelper.NewLogs(ctx, set, cfg, next, p.processLogs,
		processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: true}),
		processorhelper.WithStart(p.start),
		processorhelper.WithShutdown(p.shutdown),
	)
}

func createMetrics(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Metrics) (processor.Metrics, error) {
	p, err := newProcessor(set.TelemetrySettings, cfg.(*Config), nil)
	if err != nil {
		return nil, err
	}
	u := newUsageProcessor(p, cfg.(*Config).ResourceUsage)
	// The kept points are built afresh (splits summed), so the input is
	// only read: other pipelines of the same receiver need no copy.
	return processorhelper.NewMetrics(ctx, set, cfg, next, u.processMetrics,
		processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
		processorhelper.WithStart(p.start),
		processorhelper.WithShutdown(p.shutdown),
	)
}

// sharedCohorts are the cohort bounds of one configuration: the collector
// hands the processor of every pipeline that names it the same *Config, so
// the traces and the logs pipeline (and several traces pipelines) count a
// unit's keys and values together, whichever signal carried them.
var sharedCohorts = struct {
	sync.Mutex
	m map[*Config]*cohortsRef
}{m: map[*Config]*cohortsRef{}}

type cohortsRef struct {
	c    *cohorts
	refs int
}

// acquireCohorts returns cfg's cohort bounds (nil when it records no
// dimension) and the function that gives them back.
func acquireCohorts(cfg *Config) (*cohorts, func()) {
	sharedCohorts.Lock()
	defer sharedCohorts.Unlock()
	r, ok := sharedCohorts.m[cfg]
	if !ok {
		r = &cohortsRef{c: newCohorts(cfg.Cohorts)}
		sharedCohorts.m[cfg] = r
	}
	r.refs++
	var once sync.Once
	return r.c, func() {
		once.Do(func() {
			sharedCohorts.Lock()
			defer sharedCohorts.Unlock()
			if r.refs--; r.refs == 0 && sharedCohorts.m[cfg] == r {
				delete(sharedCohorts.m, cfg)
			}
		})
	}
}
