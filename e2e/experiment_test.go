package e2e

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/changelens/changelens/internal/schema"
	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/store"
	"github.com/changelens/changelens/queryapi/usecase"
	"github.com/changelens/changelens/testkit/chtest"
	"github.com/changelens/changelens/worker/experiments"
	"github.com/changelens/changelens/worker/writer"
)

// experimentConfig is clientConfig (traces, logs, the checkout outcome)
// with the metrics pipeline of config/collector.yaml.
func experimentConfig() string {
	traces := "    traces/changelens:\n      receivers: [otlp]\n      processors: [changelens]\n      exporters: [changelens]\n"
	cfg := clientConfig()
	if !strings.Contains(cfg, traces) {
		panic("clientConfig changed its traces pipeline")
	}
	return strings.Replace(cfg, traces, traces+strings.ReplaceAll(traces, "traces/", "metrics/"), 1)
}

const experimentDefinitions = `id: order-screen-api
unit: {service: shop-app, environment: production}
dimension: flag:order-screen-api
variants: [{name: rest, control: true, share: 0.5}, {name: graphql, share: 0.5}]
randomization_unit: session
primary_metric: {metric: load_p75, min_effect: 0.05}
guardrails: [{metric: cpu_per_request, max_degradation: 0.10}, {metric: crash_rate, max_degradation: 0}]
secondary_metrics: [payload_size, conversion_rate]
conversion_outcome: purchase
load_operations: [screen order]
backend:
  unit: {service: orders, environment: production}
  dimension: version
  variants: {rest: 2.9.0, graphql: 3.0.0-graphql}
start_time: %START%
planned_duration: 24h
---
id: aa-check
unit: {service: shop-app, environment: production}
dimension: flag:aa-check
variants: [{name: a, control: true, share: 0.5}, {name: b, share: 0.5}]
randomization_unit: session
primary_metric: {metric: load_p75, min_effect: 0.05}
guardrails: [{metric: crash_rate, max_degradation: 0}]
secondary_metrics: [conversion_rate]
conversion_outcome: purchase
load_operations: [screen order]
start_time: %START%
planned_duration: 24h
`

// TestExperimentThroughCollector is the GraphQL-against-REST story through
// the built collector, with the OTel Go SDK's trace and metric exporters:
// a day of an iOS app's order screen split 50/50 by session on a flag,
// GraphQL loading 200 ms faster with 40 % smaller responses from its own
// backend version at 2 × the CPU per request, the same conversion, and
// crashes in 1 % of its sessions against 0.5 %; an A/A flag split over
// the same sessions. The definitions are applied from YAML as the worker
// applies them; the report reads the CPU ratio within ±10 % of 2, the
// loads, payloads, conversion and crashes as sent, decides DONT_SHIP on
// the failed guardrails, and the A/A experiment is INCONCLUSIVE.
func TestExperimentThroughCollector(t *testing.T) {
	ch := chtest.Shared(t)
	db := ch.NewDatabase(t)
	c := startCollector(t, experimentConfig(), chEnv(ch, db)...)
	defer c.stop(t)
	ctx := context.Background()

	texp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(c.otlpAddr), otlptracegrpc.WithInsecure(),
		otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: true, InitialInterval: 100 * time.Millisecond, MaxInterval: time.Second, MaxElapsedTime: 60 * time.Second}))
	require.NoError(t, err)
	provider := func(attrs ...attribute.KeyValue) *sdktrace.TracerProvider {
		return sdktrace.NewTracerProvider(sdktrace.WithResource(resource.NewWithAttributes("", attrs...)),
			sdktrace.WithBatcher(texp, sdktrace.WithMaxQueueSize(200000), sdktrace.WithMaxExportBatchSize(1000), sdktrace.WithBatchTimeout(100*time.Millisecond)))
	}
	env := attribute.String("deployment.environment.name", "production")
	app := provider(attribute.String("service.name", "shop-app"), attribute.String("service.version", "5.4.0"), env,
		attribute.String("telemetry.sdk.language", "swift"), attribute.String("os.name", "iOS"))
	backends := map[string]*sdktrace.TracerProvider{
		"rest":    provider(attribute.String("service.name", "orders"), attribute.String("service.version", "2.9.0"), env),
		"graphql": provider(attribute.String("service.name", "orders"), attribute.String("service.version", "3.0.0-graphql"), env),
	}

	const (
		sessionsPerHour = 850 // per variant
		backendPerHour  = 120 // backend requests per variant
		hours           = 24
	)
	start := time.Now().UTC().Truncate(time.Hour).Add(-(hours + 2) * time.Hour)
	loadMs := map[string]float64{"rest": 700, "graphql": 500}
	crash := map[string]float64{"rest": 0.005, "graphql": 0.01}
	bytes := map[string]float64{"rest": 24000, "graphql": 14400}
	cpuPerRequest := map[string]float64{"rest": 0.004, "graphql": 0.008}
	rng := rand.New(rand.NewPCG(2026, 25))
	tracer := app.Tracer("io.opentelemetry.swift")
	sent := map[string]map[string]float64{"rest": {}, "graphql": {}}
	for h := range hours {
		for _, variant := range []string{"rest", "graphql"} {
			for i := range sessionsPerHour {
				at := start.Add(time.Duration(h)*time.Hour + time.Duration(rng.IntN(3500))*time.Second)
				id := fmt.Sprintf("%s-%d-%d", variant, h, i)
				aa := []string{"a", "b"}[rng.IntN(2)]
				d := time.Duration(loadMs[variant] * math.Exp(0.3*rng.NormFloat64()) * float64(time.Millisecond))
				attrs := trace.WithAttributes(attribute.String("session.id", id), attribute.String("user.id", "u-"+id))
				sctx, sp := tracer.Start(ctx, "screen order", trace.WithNewRoot(), trace.WithTimestamp(at), attrs)
				for key, v := range map[string]string{"order-screen-api": variant, "aa-check": aa} {
					sp.AddEvent("feature_flag.evaluation", trace.WithTimestamp(at), trace.WithAttributes(
						attribute.String("feature_flag.key", key), attribute.String("feature_flag.result.variant", v)))
				}
				if rng.Float64() < crash[variant] {
					sp.AddEvent("exception", trace.WithTimestamp(at.Add(d)), trace.WithAttributes(
						attribute.String("exception.type", "NSInvalidArgumentException"), attribute.Bool("exception.escaped", true)))
					sent[variant]["crashed"]++
				}
				sp.End(trace.WithTimestamp(at.Add(d)))
				if rng.Float64() < 0.10 {
					_, buy := tracer.Start(sctx, "checkout", trace.WithTimestamp(at.Add(d)), attrs)
					buy.End(trace.WithTimestamp(at.Add(d + 50*time.Millisecond)))
					sent[variant]["purchases"]++
				}
			}
			bt := backends[variant].Tracer("orders")
			for range backendPerHour {
				at := start.Add(time.Duration(h)*time.Hour + time.Duration(rng.IntN(3500))*time.Second)
				_, sp := bt.Start(ctx, "GET /orders", trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(at),
					trace.WithAttributes(attribute.String("http.request.method", "GET"), attribute.String("http.route", "/orders"),
						attribute.Int("http.response.status_code", 200),
						attribute.Int("http.response.body.size", int(bytes[variant]*(0.9+0.2*rng.Float64())))))
				sp.End(trace.WithTimestamp(at.Add(time.Duration(40+rng.IntN(20)) * time.Millisecond)))
			}
		}
	}
	require.NoError(t, app.Shutdown(ctx))
	for _, p := range backends {
		require.NoError(t, p.Shutdown(ctx))
	}

	// CPU: each backend version's instance, a cumulative process.cpu.time
	// at every hour's end — its requests × its cost — with past times, as
	// the SDK's exporter sends what a reader collected.
	mexp, err := otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithEndpoint(c.otlpAddr), otlpmetricgrpc.WithInsecure())
	require.NoError(t, err)
	for variant, version := range map[string]string{"rest": "2.9.0", "graphql": "3.0.0-graphql"} {
		// The first point before the day, then one a second before each
		// hour's end: an hour's increment is its requests' CPU.
		points := []metricdata.DataPoint[float64]{{StartTime: start.Add(-time.Minute), Time: start.Add(-time.Second)}}
		for h := 1; h <= hours; h++ {
			points = append(points, metricdata.DataPoint[float64]{StartTime: start.Add(-time.Minute), Time: start.Add(time.Duration(h)*time.Hour - time.Second),
				Value: float64(h*backendPerHour) * cpuPerRequest[variant]})
		}
		rm := metricdata.ResourceMetrics{
			Resource: resource.NewWithAttributes("", attribute.String("service.name", "orders"), attribute.String("service.version", version),
				env, attribute.String("service.instance.id", "orders-"+variant)),
			ScopeMetrics: []metricdata.ScopeMetrics{{Scope: instrumentation.Scope{Name: "go.opentelemetry.io/contrib/instrumentation/runtime"},
				Metrics: []metricdata.Metrics{{Name: "process.cpu.time", Unit: "s",
					Data: metricdata.Sum[float64]{Temporality: metricdata.CumulativeTemporality, IsMonotonic: true, DataPoints: points}}}}},
		}
		require.NoError(t, mexp.Export(ctx, &rm))
	}
	require.NoError(t, mexp.Shutdown(ctx))

	spans := uint64(2 * hours * (sessionsPerHour + backendPerHour))
	require.Eventually(t, func() bool {
		return countRows(t, ch, db, "SELECT count() FROM latency_events") >= spans &&
			countRows(t, ch, db, "SELECT count() FROM resource_usage") >= 2*(hours+1)
	}, 180*time.Second, 500*time.Millisecond, "events did not arrive")
	require.Equal(t, uint64(sent["rest"]["purchases"]+sent["graphql"]["purchases"]),
		countRows(t, ch, db, "SELECT uniqExact(session_id) FROM outcome_events WHERE name = 'purchase'"))

	// The definitions, applied from YAML as the worker applies them.
	dir := t.TempDir()
	for i, def := range strings.Split(strings.ReplaceAll(experimentDefinitions, "%START%", start.Format(time.RFC3339)), "---\n") {
		require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("%d.yaml", i)), []byte(def), 0o644))
	}
	wst, err := store.Open(ctx, store.Config{DSN: ch.DSN("default", "", db)})
	require.NoError(t, err)
	defer wst.Close()
	res, err := experiments.Apply(ctx, dir, wst, writer.New(ch.Conn(t, db), schema.Options{Database: db}), time.Now())
	require.NoError(t, err)
	require.Empty(t, res.Invalid)
	require.Equal(t, 2, res.Applied)

	svc, err := usecase.Open(ctx, ch.DSN(chtest.ReadOnlyUser, chtest.ReadOnlyPassword, db), usecase.Config{CacheSize: -1})
	require.NoError(t, err)
	defer svc.Close()
	r, err := svc.ExperimentReport(ctx, "order-screen-api", time.Now())
	require.NoError(t, err)
	require.Equal(t, usecase.ExperimentComplete, r.Status)
	t.Logf("order-screen-api: %s (%s): %s", r.Report.Decision, r.Report.Reason, r.Report.Summary)
	metrics := map[string]analysis.MetricResult{}
	for _, m := range r.Report.Treatments[0].Metrics {
		metrics[m.Metric] = m
		t.Logf("  %-16s %-9s control %.4g treatment %.4g relative %+.3f [%+.3f, %+.3f] %s", m.Metric, m.Role, m.Control, m.TreatmentValue, m.Relative, m.RelLow, m.RelHigh, m.Verdict)
	}
	cpu := metrics[analysis.ExpCPUPerRequest]
	require.InDelta(t, 2.0, cpu.TreatmentValue/cpu.Control, 0.2, "CPU per request ratio")
	require.InDelta(t, 4.0, cpu.Control, 0.01, "CPU seconds per 1000 REST requests")
	require.Equal(t, analysis.VerdictFailed, cpu.Verdict)
	require.Equal(t, analysis.VerdictFailed, metrics[analysis.ExpCrashRate].Verdict, "crashes 0.5 %% → 1 %%")
	load := metrics[analysis.ExpLoadP75]
	require.Equal(t, analysis.VerdictBetter, load.Verdict)
	require.InDelta(t, -200*math.Exp(0.3*0.674), load.Delta, 60, "load p75 difference (ms)")
	pay := metrics[analysis.ExpPayloadSize]
	require.Equal(t, analysis.VerdictBetter, pay.Verdict)
	require.InDelta(t, -0.40, pay.Relative, 0.05, "payload")
	require.Equal(t, analysis.VerdictNoDifference, metrics[analysis.ExpConversionRate].Verdict)
	require.Equal(t, analysis.DecisionDontShip, r.Report.Decision)
	require.Equal(t, analysis.ReasonGuardrailFailed, r.Report.Reason)
	require.False(t, r.Report.SRM.Mismatch)
	require.Contains(t, r.Report.Summary, "guardrail")

	aa, err := svc.ExperimentReport(ctx, "aa-check", time.Now())
	require.NoError(t, err)
	t.Logf("aa-check: %s (%s): %s", aa.Report.Decision, aa.Report.Reason, aa.Report.Summary)
	require.Equal(t, analysis.DecisionInconclusive, aa.Report.Decision)
	for _, m := range aa.Report.Treatments[0].Metrics {
		require.NotContains(t, []string{analysis.VerdictWorse, analysis.VerdictBetter, analysis.VerdictFailed}, m.Verdict, "A/A %s", m.Metric)
	}
}
