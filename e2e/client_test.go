package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/changelens/changelens/queryapi/store"
	"github.com/changelens/changelens/testkit/chtest"
)

// clientConfig is flagsConfig with an outcome: a checkout span is a
// purchase.
func clientConfig() string {
	cfg := flagsConfig()
	const proc = "processors:\n  changelens:\n"
	if !strings.Contains(cfg, proc) {
		panic("clickhouseConfig changed its processor")
	}
	return strings.Replace(cfg, proc, proc+"    outcomes:\n      - {name: purchase, span_name: checkout}\n", 1)
}

// TestClientExperimentThroughCollector: a browser app instrumented as the
// OpenTelemetry JavaScript web SDK reports it — a documentLoad root span
// per page load under a webjs resource, session.id and enduser.id on the
// span, the flag's variant as a span event, an uncaught exception as an
// exception event with exception.escaped, a checkout child span per
// purchase, one crash as a device.crash log record — sent with the OTel Go
// SDK's trace and log exporters through the built collector: the
// store reads 200 sessions per variant, crash rates 0.5 % and 1 %,
// purchases 50 and 60, loads 300 and 200 ms.
func TestClientExperimentThroughCollector(t *testing.T) {
	ch := chtest.Shared(t)
	db := ch.NewDatabase(t)
	c := startCollector(t, clientConfig(), chEnv(ch, db)...)
	defer c.stop(t)

	ctx := context.Background()
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(c.otlpAddr), otlptracegrpc.WithInsecure(),
		otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: true, InitialInterval: 100 * time.Millisecond, MaxInterval: time.Second, MaxElapsedTime: 30 * time.Second}))
	require.NoError(t, err)
	res := resource.NewWithAttributes("", attribute.String("service.name", "shop-web"), attribute.String("service.version", "2.0.0"),
		attribute.String("deployment.environment.name", "production"), attribute.String("telemetry.sdk.language", "webjs"),
		attribute.String("browser.platform", "macOS"))
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res),
		sdktrace.WithBatcher(exp, sdktrace.WithMaxQueueSize(100000), sdktrace.WithMaxExportBatchSize(500), sdktrace.WithBatchTimeout(100*time.Millisecond)))
	tracer := tp.Tracer("@opentelemetry/instrumentation-document-load")

	at := time.Now().Add(-3 * time.Hour).Truncate(time.Hour)
	variants := []string{"rest", "graphql"}
	durs := []time.Duration{300 * time.Millisecond, 200 * time.Millisecond}
	for i := range 200 {
		for v, variant := range variants {
			session := []attribute.KeyValue{attribute.String("session.id", fmt.Sprintf("%s-s%d", variant, i)),
				attribute.String("enduser.id", fmt.Sprintf("%s-u%d", variant, i))}
			for load := range 2 {
				start := at.Add(time.Duration(i)*10*time.Second + time.Duration(v)*time.Second + time.Duration(load)*time.Minute)
				end := start.Add(durs[v])
				lctx, sp := tracer.Start(ctx, "documentLoad", trace.WithNewRoot(), trace.WithTimestamp(start), trace.WithAttributes(session...))
				sp.AddEvent("feature_flag.evaluation", trace.WithTimestamp(start), trace.WithAttributes(
					attribute.String("feature_flag.key", "checkout-api"), attribute.String("feature_flag.result.variant", variant)))
				if load == 1 && i < 1 {
					sp.AddEvent("exception", trace.WithTimestamp(end), trace.WithAttributes(
						attribute.String("exception.type", "TypeError"), attribute.Bool("exception.escaped", true)))
					sp.SetStatus(codes.Error, "TypeError")
				}
				if load == 1 && i < []int{50, 60}[v] {
					_, buy := tracer.Start(lctx, "checkout", trace.WithTimestamp(end), trace.WithAttributes(session...))
					buy.End(trace.WithTimestamp(end.Add(time.Millisecond)))
				}
				sp.End(trace.WithTimestamp(end))
			}
		}
	}
	require.NoError(t, tp.ForceFlush(ctx))
	require.NoError(t, tp.Shutdown(ctx))
	// The second graphql crash is a crash record on the Logs API, as
	// opentelemetry-android reports one (device.crash), through the logs
	// pipeline.
	crash := plog.NewLogs()
	rl := crash.ResourceLogs().AppendEmpty()
	for _, kv := range res.Attributes() {
		rl.Resource().Attributes().PutStr(string(kv.Key), kv.Value.AsString())
	}
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetEventName("device.crash")
	lr.SetTimestamp(pcommon.NewTimestampFromTime(at.Add(30 * time.Minute)))
	lr.Attributes().PutStr("session.id", "graphql-s150")
	lr.Attributes().PutStr("exception.type", "java.lang.IllegalStateException")
	sendEvaluationLogs(t, c.otlpAddr, []plog.Logs{crash})
	waitStored(t, ch, db, 800)
	require.Eventually(t, func() bool {
		return countRows(t, ch, db, "SELECT count() FROM outcome_events WHERE name = 'crash'") >= 1
	}, 120*time.Second, 250*time.Millisecond, "the crash record did not arrive")
	require.Equal(t, 111.0, c.metric(t, "otelcol_processor_changelens_outcome_events"), "110 purchases and a crash")
	require.Eventually(t, func() bool {
		return countRows(t, ch, db, "SELECT uniqExact(session_id) FROM outcome_events WHERE name = 'purchase'") >= 110
	}, 120*time.Second, 250*time.Millisecond, "outcomes did not arrive")

	st, err := store.Open(ctx, store.Config{DSN: ch.DSN(chtest.ReadOnlyUser, chtest.ReadOnlyPassword, db)})
	require.NoError(t, err)
	defer st.Close()
	q := store.ClientQuery{Service: "shop-web", Environment: "production", Dimension: "feature_flag.checkout-api", From: at, To: at.Add(time.Hour)}
	cohorts, err := st.ClientCohorts(ctx, q, []string{"documentLoad"}, 1000)
	require.NoError(t, err)
	require.Len(t, cohorts, 2)
	for _, co := range cohorts {
		v := map[string]int{"rest": 0, "graphql": 1}[co.Variant]
		require.Equal(t, uint64(200), co.Sessions, co.Variant)
		require.Equal(t, uint64(v+1), co.CrashedSessions, co.Variant)
		require.Equal(t, 400.0, co.Requests, co.Variant)
		p75, ok := co.Loads["documentLoad"].Quantiles(0.75)
		require.True(t, ok)
		require.InEpsilon(t, float64(durs[v]), float64(p75[0]), 0.02, co.Variant)
	}
	conv, err := st.Conversions(ctx, q, store.BySession, "purchase", "", 1000)
	require.NoError(t, err)
	require.Equal(t, []store.Conversion{{Variant: "graphql", Units: 200, Converted: 60}, {Variant: "rest", Units: 200, Converted: 50}}, conv)
}
