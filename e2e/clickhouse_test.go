package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/usecase"
	"github.com/changelens/changelens/testkit/chtest"
)

// clickhouseConfig is the distribution's pipeline into ClickHouse. STORAGE
// enables the persistent queue (file_storage) when non-empty.
func clickhouseConfig(storageDir string) string {
	ext, storage, svcExt := "", "", ""
	if storageDir != "" {
		ext = fmt.Sprintf("extensions:\n  file_storage/queue:\n    directory: %s\n", storageDir)
		storage = "      storage: file_storage/queue\n"
		svcExt = "  extensions: [file_storage/queue]\n"
	}
	return ext + `
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: {{OTLP}}
processors:
  changelens:
exporters:
  changelens:
    endpoints: ["${env:CLICKHOUSE_ENDPOINT}"]
    database: ${env:CLICKHOUSE_DATABASE}
    create_schema: true
    timeout: 5s
    retry_on_failure:
      enabled: true
      initial_interval: 100ms
      max_interval: 2s
      max_elapsed_time: 0
    sending_queue:
      enabled: true
      queue_size: 1000000
      sizer: items
` + storage + `      batch:
        flush_timeout: 200ms
        min_size: 2000
        max_size: 20000
service:
` + svcExt + `  telemetry:
    metrics:
      level: detailed
      readers:
        - pull:
            exporter:
              prometheus:
                host: {{METRICS_HOST}}
                port: {{METRICS_PORT}}
  pipelines:
    traces/changelens:
      receivers: [otlp]
      processors: [changelens]
      exporters: [changelens]
`
}

func chEnv(ch *chtest.Server, db string) []string {
	return []string{"CLICKHOUSE_ENDPOINT=" + ch.Addr(), "CLICKHOUSE_DATABASE=" + db}
}

func countRows(t *testing.T, ch *chtest.Server, db, query string) uint64 {
	t.Helper()
	conn := ch.Conn(t, db)
	var n uint64
	require.NoError(t, conn.QueryRow(context.Background(), query).Scan(&n))
	return n
}

// TestPipelineToClickHouse: SDK spans of two versions through the built
// collector give exactly one latency row per SERVER span and one deployment.
func TestPipelineToClickHouse(t *testing.T) {
	t.Parallel()
	ch := chtest.Shared(t)
	db := ch.NewDatabase(t)
	col := startCollector(t, clickhouseConfig(""), chEnv(ch, db)...)

	base := time.Now().Add(-2 * time.Hour).Truncate(5 * time.Minute) // whole buckets of version_presence
	v1 := newSDKService(t, col.otlpAddr, "catalog", "2.0.0")
	v2 := newSDKService(t, col.otlpAddr, "catalog", "2.1.0")
	const perVersion = 500
	step := 20 * time.Minute / perVersion
	for i := range perVersion {
		v1.request("/products/{sku}", base.Add(time.Duration(i)*step), 30*time.Millisecond, 200)
	}
	v1.flush(t)
	for i := range perVersion {
		status := 200
		if i%10 == 0 {
			status = 500
		}
		v2.request("/products/{sku}", base.Add(20*time.Minute+time.Duration(i)*step), 60*time.Millisecond, status)
	}
	v2.flush(t)

	require.Eventually(t, func() bool {
		return countRows(t, ch, db, "SELECT count() FROM latency_events") >= 2*perVersion
	}, 60*time.Second, 250*time.Millisecond, "rows did not arrive")
	time.Sleep(time.Second) // a batch more: nothing else may arrive

	assert.Equal(t, uint64(2*perVersion), countRows(t, ch, db, "SELECT count() FROM latency_events"))
	assert.Equal(t, uint64(perVersion), countRows(t, ch, db, "SELECT count() FROM latency_events WHERE version = '2.1.0'"))
	assert.Equal(t, uint64(perVersion/10), countRows(t, ch, db, "SELECT count() FROM latency_events WHERE is_error = 1"))
	assert.Equal(t, uint64(2*perVersion), countRows(t, ch, db,
		"SELECT count() FROM latency_events WHERE service = 'catalog' AND environment = 'production' AND operation = 'GET /products/{sku}'"))
	assert.Equal(t, uint64(0), countRows(t, ch, db, "SELECT count() FROM deployment_events"), "traffic alone writes no deployment rows")
	// The version observations: 2.1.0 first served at base + 20m.
	assert.Equal(t, uint64(base.Add(20*time.Minute).UnixNano()), countRows(t, ch, db,
		"SELECT minMerge(first_ns) FROM version_presence WHERE service = 'catalog' AND version = '2.1.0'"))
	assert.Equal(t, uint64(8), countRows(t, ch, db, "SELECT uniqExact(bucket) FROM version_presence"), "40 minutes of traffic in five-minute buckets")

	// The query API derives the deployment from them.
	st, err := usecase.Open(context.Background(), ch.DSN(chtest.ReadOnlyUser, chtest.ReadOnlyPassword, db),
		usecase.Config{Now: func() time.Time { return base.Add(time.Hour) }})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	deps, _, err := st.Deployments(context.Background(), report.DeploymentQuery{Start: base, End: base.Add(time.Hour)})
	require.NoError(t, err)
	require.Len(t, deps, 1)
	d := deps[0]
	assert.Equal(t, "catalog", d.Service)
	assert.Equal(t, "2.1.0", d.Version)
	assert.Equal(t, "2.0.0", d.PreviousVersion)
	assert.Equal(t, report.SourceInferred, d.Source)
	assert.True(t, d.DeployTime.Equal(base.Add(20*time.Minute)), "deployed at the first 2.1.0 span: %s", d.DeployTime)
	assert.Equal(t, report.VerdictDegraded, d.Verdict, "latency ×2 and 10 %% errors")
}

// countingExporter counts the spans the collector acknowledged.
type countingExporter struct {
	sdktrace.SpanExporter
	accepted atomic.Int64
}

func (c *countingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := c.SpanExporter.ExportSpans(ctx, spans)
	if err == nil {
		c.accepted.Add(int64(len(spans)))
	}
	return err
}

// steadySender sends root SERVER spans (each a latency event) at a steady rate.
type steadySender struct {
	tp       *sdktrace.TracerProvider
	exp      *countingExporter
	tracer   trace.Tracer
	mu       sync.Mutex // held while sending; pause takes it
	stop     chan struct{}
	done     chan struct{}
	produced atomic.Int64
}

func newSteadySender(t *testing.T, endpoint string) *steadySender {
	t.Helper()
	otlp, err := otlptracegrpc.New(context.Background(), otlptracegrpc.WithEndpoint(endpoint), otlptracegrpc.WithInsecure(),
		otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: true, InitialInterval: 100 * time.Millisecond, MaxInterval: time.Second, MaxElapsedTime: 20 * time.Second}))
	require.NoError(t, err)
	exp := &countingExporter{SpanExporter: otlp}
	res := resource.NewWithAttributes("", attribute.String("service.name", "orders"), attribute.String("service.version", "5.0.0"))
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res),
		sdktrace.WithBatcher(exp, sdktrace.WithMaxQueueSize(100000), sdktrace.WithMaxExportBatchSize(500), sdktrace.WithBatchTimeout(100*time.Millisecond)))
	return &steadySender{tp: tp, exp: exp, tracer: tp.Tracer("steady"), stop: make(chan struct{}), done: make(chan struct{})}
}

func (s *steadySender) run(perTick int, every time.Duration) {
	defer close(s.done)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
			s.mu.Lock()
			now := time.Now()
			for i := range perTick {
				_, sp := s.tracer.Start(context.Background(), "POST /orders", trace.WithSpanKind(trace.SpanKindServer),
					trace.WithTimestamp(now.Add(time.Duration(i)*time.Microsecond)))
				sp.End(trace.WithTimestamp(now.Add(time.Duration(i)*time.Microsecond + 15*time.Millisecond)))
			}
			s.produced.Add(int64(perTick))
			s.mu.Unlock()
		}
	}
}

// pause stops producing and flushes what was produced, so that nothing is in
// flight (a span in flight when the collector dies may be both stored and
// reported as failed); resume undoes it.
func (s *steadySender) pause(t *testing.T) {
	s.mu.Lock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, s.tp.ForceFlush(ctx))
}

func (s *steadySender) resume() { s.mu.Unlock() }

func (s *steadySender) finish(t *testing.T) int64 {
	close(s.stop)
	<-s.done
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	require.NoError(t, s.tp.Shutdown(ctx))
	return s.exp.accepted.Load()
}

func outageDuration() time.Duration {
	if v := os.Getenv("CHANGELENS_E2E_OUTAGE"); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
	}
	return time.Minute
}

// TestClickHouseOutageWithCollectorCrash: ClickHouse goes down under load; in
// the middle of the outage the collector is SIGKILLed and restarted on the
// same persistent queue; when ClickHouse returns every accepted span is stored,
// exactly once.
func TestClickHouseOutageWithCollectorCrash(t *testing.T) {
	t.Parallel()
	ch := chtest.New(t)
	db := ch.NewDatabase(t)
	storage := filepath.Join(t.TempDir(), "queue")
	require.NoError(t, os.MkdirAll(storage, 0o700))
	col := startCollector(t, clickhouseConfig(storage), chEnv(ch, db)...)

	sender := newSteadySender(t, col.otlpAddr)
	go sender.run(200, 100*time.Millisecond) // 2000 spans/s

	time.Sleep(3 * time.Second)
	ch.Stop(t)
	outage := outageDuration()
	t.Logf("ClickHouse down for %s under 2000 spans/s", outage)
	time.Sleep(outage / 2)

	sender.pause(t)
	acceptedBeforeCrash := sender.exp.accepted.Load()
	col.kill()
	col = restartCollector(t, col)
	sender.resume()
	t.Logf("collector SIGKILLed and restarted with %d spans accepted so far", acceptedBeforeCrash)

	time.Sleep(outage / 2)
	ch.Start(t)
	time.Sleep(3 * time.Second)
	accepted := sender.finish(t)
	require.Greater(t, accepted, int64(outage.Seconds())*1000, "the sender must have been accepted throughout the outage")

	var got uint64
	require.Eventually(t, func() bool {
		got = countRows(t, ch, db, "SELECT count() FROM latency_events")
		return got >= uint64(accepted)
	}, 3*time.Minute, time.Second, "stored %d of %d accepted spans", got, accepted)
	time.Sleep(2 * time.Second)
	assert.Equal(t, uint64(accepted), countRows(t, ch, db, "SELECT count() FROM latency_events"), "every accepted span stored")
	assert.Equal(t, uint64(accepted), countRows(t, ch, db, "SELECT uniqExact(span_id) FROM latency_events"), "none twice")
}
