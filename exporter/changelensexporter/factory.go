package changelensexporter

import (
	"context"
	"sync"
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
		exporter.WithLogs(createLogs, metadata.LogsStability),
		exporter.WithMetrics(createMetrics, metadata.MetricsStability),
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
	s, err := acquireExporter(c, set)
	if err != nil {
		return nil, err
	}
	return exporterhelper.NewTraces(ctx, set, cfg, s.e.pushTraces,
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
		exporterhelper.WithStart(s.start),
		exporterhelper.WithShutdown(s.shutdown),
		exporterhelper.WithTimeout(c.TimeoutConfig),
		exporterhelper.WithRetry(c.BackOffConfig),
		exporterhelper.WithQueue(c.QueueConfig),
	)
}

// createLogs: the logs pipeline's exporter stores the flag evaluation
// events (log-based feature-flag evaluations the processor kept).
func createLogs(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Logs, error) {
	c := cfg.(*Config)
	s, err := acquireExporter(c, set)
	if err != nil {
		return nil, err
	}
	return exporterhelper.NewLogs(ctx, set, cfg, s.e.pushLogs,
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
		exporterhelper.WithStart(s.start),
		exporterhelper.WithShutdown(s.shutdown),
		exporterhelper.WithTimeout(c.TimeoutConfig),
		exporterhelper.WithRetry(c.BackOffConfig),
		exporterhelper.WithQueue(c.QueueConfig),
	)
}

// createMetrics: the metrics pipeline's exporter stores the resource usage
// events (CPU time and memory points the processor kept).
func createMetrics(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Metrics, error) {
	c := cfg.(*Config)
	s, err := acquireExporter(c, set)
	if err != nil {
		return nil, err
	}
	return exporterhelper.NewMetrics(ctx, set, cfg, s.e.pushMetrics,
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
		exporterhelper.WithStart(s.start),
		exporterhelper.WithShutdown(s.shutdown),
		exporterhelper.WithTimeout(c.TimeoutConfig),
		exporterhelper.WithRetry(c.BackOffConfig),
		exporterhelper.WithQueue(c.QueueConfig),
	)
}

// sharedExporter is the one chExporter behind the traces, the logs and the
// metrics exporter of one configured changelens exporter (the collector passes
// both the same *Config): one connection pool, one schema apply, one
// retention sweep. Each signal keeps its own queue and retries.
type sharedExporter struct {
	cfg     *Config
	e       *chExporter
	mu      sync.Mutex
	running int  // signals started and not shut down
	closed  bool // shut down: the next create makes a new one
}

var sharedExporters = struct {
	sync.Mutex
	m map[*Config]*sharedExporter
}{m: map[*Config]*sharedExporter{}}

// acquireExporter returns cfg's shared exporter, creating it for the first
// signal.
func acquireExporter(cfg *Config, set exporter.Settings) (*sharedExporter, error) {
	sharedExporters.Lock()
	defer sharedExporters.Unlock()
	if s, ok := sharedExporters.m[cfg]; ok {
		return s, nil
	}
	e, err := newExporter(cfg, set)
	if err != nil {
		return nil, err
	}
	s := &sharedExporter{cfg: cfg, e: e}
	sharedExporters.m[cfg] = s
	return s, nil
}

// start starts the exporter with the first signal.
func (s *sharedExporter) start(ctx context.Context, host component.Host) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running++
	if s.running > 1 {
		return nil
	}
	return s.e.start(ctx, host)
}

// shutdown shuts the exporter down with the last signal (or when no signal
// ever started) and forgets it.
func (s *sharedExporter) shutdown(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running > 0 {
		s.running--
	}
	if s.running > 0 || s.closed {
		return nil
	}
	s.closed = true
	sharedExporters.Lock()
	if sharedExporters.m[s.cfg] == s {
		delete(sharedExporters.m, s.cfg)
	}
	sharedExporters.Unlock()
	return s.e.shutdown(ctx)
}
