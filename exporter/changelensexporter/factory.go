package changelensexporter

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/config/configtls"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/changelens/changelens/exporter/changelensexporter/internal/metadata"
	"github.com/changelens/changelens/internal/schema"
)

// Defaults.
const (
	defaultDatabase      = "changelens"
	defaultRetentionDays = 30
	defaultTimeout       = 30 * time.Second
	defaultDialTimeout   = 10 * time.Second
)

// NewFactory creates the changelens exporter factory.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(
		metadata.Type,
		createDefaultConfig,
		exporter.WithTraces(createTraces, metadata.TracesStability),
	)
}

func createDefaultConfig() component.Config {
	retry := configretry.NewDefaultBackOffConfig()
	// ClickHouse being down for minutes must not lose data: retry until it
	// accepts (or the error is permanent). The queue bounds memory; when it is
	// full, receivers see back-pressure.
	retry.MaxElapsedTime = 0

	queue := exporterhelper.NewDefaultQueueConfig()
	// Size the queue in spans (memory-bounded) and batch to ClickHouse-sized
	// inserts: ClickHouse prefers few large inserts to many small ones.
	queue.Sizer = exporterhelper.RequestSizerTypeItems
	queue.QueueSize = 500_000
	queue.NumConsumers = 4
	batch := exporterhelper.NewDefaultBatchConfig()
	batch.Sizer = exporterhelper.RequestSizerTypeItems
	batch.FlushTimeout = time.Second
	batch.MinSize = 10_000
	batch.MaxSize = 50_000
	queue.Batch = configoptional.Some(batch)

	return &Config{
		TimeoutConfig:   exporterhelper.TimeoutConfig{Timeout: defaultTimeout},
		BackOffConfig:   retry,
		QueueConfig:     configoptional.Some(queue),
		Endpoints:       []string{"localhost:9000"},
		Database:        defaultDatabase,
		Deduplicate:     true,
		TLS:             configtls.ClientConfig{Insecure: true},
		Compression:     "lz4",
		CreateSchema:    true,
		Replicated:      true,
		ReplicationPath: schema.DefaultReplicationPath,
		RetentionDays:   defaultRetentionDays,
		DialTimeout:     defaultDialTimeout,
	}
}

func createTraces(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Traces, error) {
	c := cfg.(*Config)
	e, err := newExporter(c, set)
	if err != nil {
		return nil, err
	}
	return exporterhelper.NewTraces(ctx, set, cfg, e.pushTraces,
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
		exporterhelper.WithStart(e.start),
		exporterhelper.WithShutdown(e.shutdown),
		exporterhelper.WithTimeout(c.TimeoutConfig),
		exporterhelper.WithRetry(c.BackOffConfig),
		exporterhelper.WithQueue(c.QueueConfig),
	)
}
