package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"

	"github.com/changelens/changelens/queryapi/server"
	"github.com/changelens/changelens/queryapi/usecase"
	"github.com/changelens/changelens/testkit/chtest"
	"github.com/changelens/changelens/testkit/flagtest"
)

// flagsConfig is the distribution's pipeline into ClickHouse with the logs
// pipeline beside the traces one, as config/collector.yaml has it.
func flagsConfig() string {
	traces := "    traces/changelens:\n      receivers: [otlp]\n      processors: [changelens]\n      exporters: [changelens]\n"
	cfg := clickhouseConfig("")
	if !strings.Contains(cfg, traces) {
		panic("clickhouseConfig changed its traces pipeline")
	}
	return strings.Replace(cfg, traces, traces+strings.ReplaceAll(traces, "traces/", "logs/"), 1)
}

// sendEvaluationLogs emits the log records of batches through the OTel Go
// SDK's Logs API and OTLP/gRPC log exporter, as an OpenFeature event hook
// does: each record an event in the context of the span active during the
// evaluation, under the resource of its batch.
func sendEvaluationLogs(t *testing.T, endpoint string, batches []plog.Logs) {
	t.Helper()
	ctx := context.Background()
	exp, err := otlploggrpc.New(ctx, otlploggrpc.WithEndpoint(endpoint), otlploggrpc.WithInsecure(),
		otlploggrpc.WithRetry(otlploggrpc.RetryConfig{Enabled: true, InitialInterval: 100 * time.Millisecond, MaxInterval: time.Second, MaxElapsedTime: 30 * time.Second}))
	require.NoError(t, err)
	var attrs []attribute.KeyValue
	for k, v := range batches[0].ResourceLogs().At(0).Resource().Attributes().All() {
		attrs = append(attrs, attribute.String(k, v.AsString()))
	}
	lp := sdklog.NewLoggerProvider(sdklog.WithResource(resource.NewWithAttributes("", attrs...)),
		sdklog.WithProcessor(sdklog.NewBatchProcessor(exp, sdklog.WithExportMaxBatchSize(500), sdklog.WithExportInterval(100*time.Millisecond))))
	logger := lp.Logger("@openfeature/open-telemetry-hooks")
	for _, ld := range batches {
		for _, rl := range ld.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					var r otellog.Record
					r.SetEventName(lr.EventName())
					r.SetTimestamp(lr.Timestamp().AsTime())
					r.SetObservedTimestamp(lr.ObservedTimestamp().AsTime())
					r.SetSeverity(otellog.SeverityInfo)
					for k, v := range lr.Attributes().All() {
						switch v.Type() {
						case pcommon.ValueTypeBool:
							r.AddAttributes(attribute.Bool(k, v.Bool()))
						default:
							r.AddAttributes(attribute.String(k, v.AsString()))
						}
					}
					sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID(lr.TraceID()), SpanID: trace.SpanID(lr.SpanID()),
						TraceFlags: trace.FlagsSampled})
					logger.Emit(trace.ContextWithSpanContext(ctx, sc), r)
				}
			}
		}
	}
	require.NoError(t, lp.ForceFlush(ctx))
	require.NoError(t, lp.Shutdown(ctx))
}

// waitEvaluations waits until db holds evaluations of n traces.
func waitEvaluations(t *testing.T, ch *chtest.Server, db string, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		return countRows(t, ch, db, "SELECT uniqExact(trace_id) FROM flag_evaluations") >= uint64(n)
	}, 120*time.Second, 250*time.Millisecond, "%s: evaluations did not arrive", db)
	require.Equal(t, uint64(n), countRows(t, ch, db, "SELECT uniqExact(trace_id) FROM flag_evaluations"), db)
}

// TestFlagShapesGiveOneCohort: one seeded flag experiment (two variants, the
// treatment slower and failing more) sent through built collectors three
// times, each into its own database — its evaluations once as span events
// (one collector), once as log-based events through the OTel Go SDK's log
// exporter (three collectors: the traces through one, the logs through the
// other two), once as evaluation spans (three collectors, each batch that an
// SDK split sending its second half through another collector than its
// entry spans) — gives identical /v1/cohorts and /v1/compare answers.
func TestFlagShapesGiveOneCohort(t *testing.T) {
	ch := chtest.Shared(t)
	start := time.Now().Add(-3 * time.Hour).Truncate(time.Hour)
	e := flagtest.New(2026, start, 60, 60)
	dbEvents, dbLogs, dbSpans := ch.NewDatabase(t), ch.NewDatabase(t), ch.NewDatabase(t)
	requests := len(e.Requests)

	// Span events, one collector.
	c := startCollector(t, flagsConfig(), chEnv(ch, dbEvents)...)
	deliver(t, e.SpanEvents(), []*otlpClient{dialCollector(t, c)}, 0)
	waitStored(t, ch, dbEvents, requests)
	assert.Zero(t, countRows(t, ch, dbEvents, "SELECT count() FROM flag_evaluations"), "every span event met its entry span")
	c.stop(t)

	// Log-based events: traces through the first collector, logs through the
	// other two.
	var logCols []*collector
	for range 3 {
		logCols = append(logCols, startCollector(t, flagsConfig(), chEnv(ch, dbLogs)...))
	}
	traces, logs := e.LogEvents()
	deliver(t, traces, []*otlpClient{dialCollector(t, logCols[0])}, 0)
	var even, odd []plog.Logs
	for i, ld := range logs {
		if i%2 == 0 {
			even = append(even, ld)
		} else {
			odd = append(odd, ld)
		}
	}
	sendEvaluationLogs(t, logCols[1].otlpAddr, even)
	sendEvaluationLogs(t, logCols[2].otlpAddr, odd)
	waitStored(t, ch, dbLogs, requests)
	waitEvaluations(t, ch, dbLogs, requests)
	var fromLogs float64
	for _, c := range logCols[1:] {
		fromLogs += c.metric(t, "otelcol_processor_changelens_flag_evaluations", `source="log"`)
	}
	assert.Equal(t, float64(requests), fromLogs, "every log record an evaluation")
	for _, c := range logCols {
		c.stop(t)
	}

	// Evaluation spans: whole batches round robin over three collectors, the
	// second half of a split batch through the collector after its first.
	var spanCols []*collector
	var clients []*otlpClient
	for range 3 {
		c := startCollector(t, flagsConfig(), chEnv(ch, dbSpans)...)
		spanCols = append(spanCols, c)
		clients = append(clients, dialCollector(t, c))
	}
	batches, split := e.EvaluationSpans()
	next, splitRequests := 0, 0
	for i, td := range batches {
		target := next
		if split[i] {
			target++                            // not the collector of the first half
			splitRequests += td.SpanCount() / 2 // an active and an evaluation span per request
		} else {
			next++
			target = next
		}
		deliver(t, batches[i:i+1], clients, target)
	}
	waitStored(t, ch, dbSpans, requests)
	waitEvaluations(t, ch, dbSpans, splitRequests)
	var spanEvals, consumed float64
	for _, c := range spanCols {
		spanEvals += c.metric(t, "otelcol_processor_changelens_flag_evaluations", `source="span"`)
		consumed += c.metric(t, "otelcol_processor_changelens_spans_dropped", `reason="flag_evaluation"`)
	}
	assert.Equal(t, float64(splitRequests), spanEvals, "the evaluations of split batches emitted")
	assert.Equal(t, float64(requests), consumed, "every evaluation span read as an evaluation")
	require.NotZero(t, splitRequests)
	require.Less(t, splitRequests, requests)

	// The same answers through the API.
	end := start.Add(time.Hour)
	rng := "&start_time=" + url.QueryEscape(start.Format(time.RFC3339)) + "&end_time=" + url.QueryEscape(end.Format(time.RFC3339))
	paths := []string{
		"/v1/cohorts?service=" + flagtest.Service + "&environment=" + flagtest.Environment + rng,
		"/v1/compare?service=" + flagtest.Service + "&environment=" + flagtest.Environment + rng +
			"&dimension=feature_flag." + flagtest.Flag + "&control=" + flagtest.Control + "&treatment=" + flagtest.Treatment +
			"&expected_treatment_share=0.5",
	}
	answers := map[string][]string{}
	for _, db := range []string{dbEvents, dbLogs, dbSpans} {
		clock := func() time.Time { return end.Add(time.Hour) }
		svc, err := usecase.Open(context.Background(), ch.DSN(chtest.ReadOnlyUser, chtest.ReadOnlyPassword, db), usecase.Config{CacheSize: -1, Now: clock})
		require.NoError(t, err)
		srv, err := server.New(server.Config{Source: svc, Now: clock})
		require.NoError(t, err)
		api := httptest.NewServer(srv.Handler())
		for _, p := range paths {
			resp, err := http.Get(api.URL + p)
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", p, body)
			answers[db] = append(answers[db], string(body))
		}
		api.Close()
		require.NoError(t, svc.Close())
	}
	t.Logf("%d requests, %d of them split; /v1/cohorts: %s", requests, splitRequests, answers[dbEvents][0])
	t.Logf("/v1/compare: %.600s", answers[dbEvents][1])
	for name, db := range map[string]string{"log-based events": dbLogs, "evaluation spans": dbSpans} {
		for i, p := range paths {
			assert.Equal(t, answers[dbEvents][i], answers[db][i], "%s: %s differs from span events'", name, p[:strings.IndexByte(p, '?')])
		}
	}
	// The answer is the experiment's: both variants with their requests, the
	// treatment worse.
	var cohorts struct {
		Dimensions []struct {
			Dimension string `json:"dimension"`
			Values    []struct {
				Value    string  `json:"value"`
				Requests float64 `json:"requests"`
			} `json:"values"`
		} `json:"dimensions"`
	}
	require.NoError(t, json.Unmarshal([]byte(answers[dbEvents][0]), &cohorts))
	got := map[string]float64{}
	for _, d := range cohorts.Dimensions {
		if d.Dimension == "feature_flag."+flagtest.Flag {
			for _, v := range d.Values {
				got[v.Value] = v.Requests
			}
		}
	}
	reqs, _ := e.Counts()
	assert.Equal(t, map[string]float64{flagtest.Control: float64(reqs[flagtest.Control]), flagtest.Treatment: float64(reqs[flagtest.Treatment])}, got)
	var compare struct {
		Verdict string `json:"verdict"`
	}
	require.NoError(t, json.Unmarshal([]byte(answers[dbEvents][1]), &compare))
	assert.Equal(t, "COMPARE_VERDICT_WORSE", compare.Verdict)
}
