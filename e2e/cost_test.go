package e2e

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/changelens/changelens/queryapi/store"
	"github.com/changelens/changelens/testkit/chtest"
)

// costConfig is the distribution's pipeline into ClickHouse with the
// metrics pipeline beside the traces one, as config/collector.yaml has it.
func costConfig() string {
	traces := "    traces/changelens:\n      receivers: [otlp]\n      processors: [changelens]\n      exporters: [changelens]\n"
	cfg := clickhouseConfig("")
	if !strings.Contains(cfg, traces) {
		panic("clickhouseConfig changed its traces pipeline")
	}
	return strings.Replace(cfg, traces, traces+strings.ReplaceAll(traces, "traces/", "metrics/"), 1)
}

// TestCostMetricsThroughCollectors: an instance's CPU time and memory,
// recorded with the OTel Go SDK's metrics API and exported over OTLP/gRPC
// by its metric exporter — each collection to one of two built
// collectors, every third to both — read as the exact CPU seconds the
// cumulative series says, one instance and its memory; the SDK's other
// metrics are dropped, counted.
func TestCostMetricsThroughCollectors(t *testing.T) {
	t.Parallel()
	ch := chtest.Shared(t)
	db := ch.NewDatabase(t)
	cols := []*collector{startCollector(t, costConfig(), chEnv(ch, db)...), startCollector(t, costConfig(), chEnv(ch, db)...)}
	ctx := context.Background()
	var exps []sdkmetric.Exporter
	for _, c := range cols {
		exp, err := otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithEndpoint(c.otlpAddr), otlpmetricgrpc.WithInsecure())
		require.NoError(t, err)
		exps = append(exps, exp)
	}
	start := time.Now()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader), sdkmetric.WithResource(resource.NewWithAttributes("",
		attribute.String("service.name", "checkout"), attribute.String("deployment.environment.name", "production"),
		attribute.String("service.version", "2.0.0"), attribute.String("service.instance.id", "checkout-7d9f-x2"))))
	meter := mp.Meter("go.opentelemetry.io/contrib/instrumentation/runtime")
	var k int
	_, err := meter.Float64ObservableCounter("process.cpu.time", metric.WithUnit("s"),
		metric.WithFloat64Callback(func(_ context.Context, o metric.Float64Observer) error {
			o.Observe(1.5*float64(k), metric.WithAttributes(attribute.String("cpu.mode", "user")))
			o.Observe(0.25*float64(k), metric.WithAttributes(attribute.String("cpu.mode", "system")))
			return nil
		}))
	require.NoError(t, err)
	_, err = meter.Int64ObservableUpDownCounter("process.memory.usage", metric.WithUnit("By"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(64 << 20)
			return nil
		}))
	require.NoError(t, err)
	requests, err := meter.Int64Counter("http.server.request.count")
	require.NoError(t, err)

	const collections = 9
	for k = 1; k <= collections; k++ {
		requests.Add(ctx, 3)
		var rm metricdata.ResourceMetrics
		require.NoError(t, reader.Collect(ctx, &rm))
		targets := []sdkmetric.Exporter{exps[k%2]}
		if k%3 == 0 {
			targets = exps
		}
		for _, e := range targets {
			require.NoError(t, e.Export(ctx, &rm))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, e := range exps {
		require.NoError(t, e.Shutdown(ctx))
	}

	require.Eventually(t, func() bool {
		return countRows(t, ch, db, "SELECT count() FROM (SELECT metric, time_ns FROM resource_usage GROUP BY metric, time_ns)") >= 2*collections
	}, 120*time.Second, 250*time.Millisecond, "resource usage did not arrive")
	require.Equal(t, uint64(2*collections), countRows(t, ch, db, "SELECT count() FROM (SELECT metric, time_ns FROM resource_usage GROUP BY metric, time_ns)"))

	st, err := store.Open(ctx, store.Config{DSN: ch.DSN(chtest.ReadOnlyUser, chtest.ReadOnlyPassword, db)})
	require.NoError(t, err)
	defer st.Close()
	from := start.Truncate(time.Minute)
	to := time.Now().Truncate(time.Minute).Add(2 * time.Minute)
	pts, err := st.ResourceUsage(ctx, store.UsageQuery{Service: "checkout", Environment: "production", From: from, To: to, Bucket: time.Minute})
	require.NoError(t, err)
	var cpu float64
	for _, p := range pts {
		require.Equal(t, "2.0.0", p.Version)
		require.Equal(t, 1, p.Instances)
		require.InDelta(t, 64<<20, p.MemoryByteAvg, 1)
		cpu += p.CPUSeconds
	}
	require.NotEmpty(t, pts)
	require.LessOrEqual(t, math.Abs(cpu-1.75*collections), 1e-9, "CPU seconds %v, want the last cumulative value %v", cpu, 1.75*collections)

	var dropped float64
	for _, c := range cols {
		dropped += c.metric(t, "otelcol_processor_changelens_metric_points_dropped", `reason="not_resource_usage"`)
	}
	require.Positive(t, dropped, "the SDK's request counter is no resource usage")
	for _, c := range cols {
		c.stop(t)
	}
}

// sendCPU exports one collection of an instance's process.cpu.time (value
// seconds) with the OTel Go SDK's OTLP/gRPC metric exporter.
func sendCPU(t *testing.T, endpoint string, value float64) {
	t.Helper()
	ctx := context.Background()
	exp, err := otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithEndpoint(endpoint), otlpmetricgrpc.WithInsecure())
	require.NoError(t, err)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader), sdkmetric.WithResource(resource.NewWithAttributes("",
		attribute.String("service.name", "shop"), attribute.String("service.version", "1.0.0"),
		attribute.String("service.instance.id", "shop-1"))))
	_, err = mp.Meter("runtime").Float64ObservableCounter("process.cpu.time", metric.WithUnit("s"),
		metric.WithFloat64Callback(func(_ context.Context, o metric.Float64Observer) error {
			o.Observe(value)
			return nil
		}))
	require.NoError(t, err)
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(ctx, &rm))
	require.NoError(t, exp.Export(ctx, &rm))
	require.NoError(t, exp.Shutdown(ctx))
}
