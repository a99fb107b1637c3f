// Package changelensprocessor turns traces into changelens events, encoded as
// spans (see internal/eventspan): a latency event per entry span, a call event
// per other CLIENT or PRODUCER span (the service graph's edges), and a
// deployment event per CI/CD deploy span. It infers no deployments from
// changes of service.version: that needs every collector's observations
// together, so the query API derives them when it reads (queryapi/inference),
// and the processor keeps no per-unit state but the cohort bounds.
package changelensprocessor

import (
	"context"

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
	)
}

func createTraces(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Traces) (processor.Traces, error) {
	p, err := newProcessor(set.TelemetrySettings, cfg.(*Config), next)
	if err != nil {
		return nil, err
	}
	return processorhelper.NewTraces(ctx, set, cfg, next, p.processTraces,
		processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: true}),
		processorhelper.WithStart(p.start),
		processorhelper.WithShutdown(p.shutdown),
	)
}
