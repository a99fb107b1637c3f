package e2e

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/changelens/changelens/queryapi/server"
	"github.com/changelens/changelens/queryapi/usecase"
	"github.com/changelens/changelens/testkit/chtest"
)

// newKindBatches is two hours of service pay at 10 requests a second, one
// batch a minute, each request a SERVER span and an INTERNAL child in its
// trace (as an SDK exports a request). Version 1.0 serves the first hour:
// 0.5 % of its requests answer 500 (error kind 5xx), 0.05 % throw
// java.net.SocketTimeoutException. Version 1.1 then fails as often in
// total: 0.2 % answer 500, 0.05 % time out as before, and 0.3 % throw
// java.lang.NullPointerException — recorded as an exception event on the
// INTERNAL span where it was thrown, the SERVER span answering 500. It
// returns the batches, the requests, and the trace of the first
// NullPointerException at or after firstFrom (hex).
func newKindBatches(start, firstFrom time.Time) (batches []ptrace.Traces, requests int, firstTrace string) {
	r := rand.New(rand.NewPCG(13, 3))
	var seq uint64
	const perMinute = 600
	for m := range 120 {
		td := ptrace.NewTraces()
		after := m >= 60
		version := "1.0"
		if after {
			version = "1.1"
		}
		rs := td.ResourceSpans().AppendEmpty()
		a := rs.Resource().Attributes()
		a.PutStr("service.name", "pay")
		a.PutStr("service.version", version)
		a.PutStr("deployment.environment.name", "production")
		spans := rs.ScopeSpans().AppendEmpty().Spans()
		for i := range perMinute {
			seq++
			var tid pcommon.TraceID
			binary.BigEndian.PutUint64(tid[:8], 0x9a7)
			binary.BigEndian.PutUint64(tid[8:], seq)
			at := start.Add(time.Duration(m)*time.Minute + time.Duration(i)*time.Minute/perMinute)
			ms := 80 * math.Exp(0.3*r.NormFloat64())
			end := at.Add(time.Duration(ms * float64(time.Millisecond)))
			exc, status := "", int64(200)
			u := r.Float64()
			switch {
			case !after && u < 0.005, after && u < 0.002:
				status = 500
			case !after && u < 0.0055, after && u < 0.0025:
				exc, status = "java.net.SocketTimeoutException", 500
			case after && u < 0.0055:
				exc, status = "java.lang.NullPointerException", 500
				if firstTrace == "" && !at.Before(firstFrom) {
					firstTrace = fmt.Sprintf("%x", tid[:])
				}
			}
			entry := spans.AppendEmpty()
			entry.SetTraceID(tid)
			entry.SetSpanID(pcommon.SpanID{1, byte(seq >> 24), byte(seq >> 16), byte(seq >> 8), byte(seq)})
			entry.SetKind(ptrace.SpanKindServer)
			entry.SetName("POST /api/pay")
			entry.SetStartTimestamp(pcommon.NewTimestampFromTime(at))
			entry.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
			entry.Attributes().PutStr("http.request.method", "POST")
			entry.Attributes().PutStr("http.route", "/api/pay")
			entry.Attributes().PutInt("http.response.status_code", status)
			child := spans.AppendEmpty()
			child.SetTraceID(tid)
			child.SetSpanID(pcommon.SpanID{2, byte(seq >> 24), byte(seq >> 16), byte(seq >> 8), byte(seq)})
			child.SetParentSpanID(entry.SpanID())
			child.SetKind(ptrace.SpanKindInternal)
			child.SetName("charge")
			child.SetStartTimestamp(entry.StartTimestamp())
			child.SetEndTimestamp(entry.EndTimestamp())
			if exc != "" {
				child.Status().SetCode(ptrace.StatusCodeError)
				e := child.Events().AppendEmpty()
				e.SetName("exception")
				e.SetTimestamp(pcommon.NewTimestampFromTime(end))
				e.Attributes().PutStr("exception.type", exc)
				e.Attributes().PutStr("exception.message", "payment failed")
				e.Attributes().PutStr("exception.stacktrace", "at com.shop.Charge.run(Charge.java:42)")
			}
			requests++
		}
		batches = append(batches, td)
	}
	return batches, requests, firstTrace
}

// TestNewErrorKindThroughCollector: a version that introduces a new
// exception type at 0.3 % of requests while the total error rate stays
// within noise, through the built collector into ClickHouse and out of the
// REST API: the deployment is DEGRADED with NEW_ERROR_KIND, its
// explanation and regression entry name the kind with its rate and first
// trace, the impact lists it (the timeout both versions threw is not new),
// the error rate itself did not regress, and the gate fails the rollout.
func TestNewErrorKindThroughCollector(t *testing.T) {
	ch := chtest.Shared(t)
	start := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Minute)
	end := start.Add(2 * time.Hour)
	deployed := start.Add(time.Hour)
	batches, requests, firstTrace := newKindBatches(start, deployed.Add(2*time.Minute)) // the after window's start
	require.NotEmpty(t, firstTrace)
	db := ch.NewDatabase(t)
	c := startCollector(t, clickhouseConfig(""), chEnv(ch, db)...)
	deliver(t, batches, []*otlpClient{dialCollector(t, c)}, 0)
	waitStored(t, ch, db, requests)
	// Every failed request's kind stored, as the processor read it.
	assert.Equal(t, uint64(0), countRows(t, ch, db, "SELECT count() FROM latency_events WHERE is_error = 1 AND error_kind = ''"))
	assert.Equal(t, uint64(0), countRows(t, ch, db, "SELECT count() FROM latency_events WHERE is_error = 0 AND error_kind != ''"))
	assert.Equal(t, uint64(3), countRows(t, ch, db, "SELECT uniqExact(error_kind) FROM latency_events WHERE is_error = 1"))

	clock := func() time.Time { return end }
	svc, err := usecase.Open(context.Background(), ch.DSN(chtest.ReadOnlyUser, chtest.ReadOnlyPassword, db), usecase.Config{CacheSize: -1, Now: clock})
	require.NoError(t, err)
	defer svc.Close()
	srv, err := server.New(server.Config{Source: svc, Now: clock})
	require.NoError(t, err)
	api := httptest.NewServer(srv.Handler())
	defer api.Close()
	get := func(path string, out any) {
		t.Helper()
		resp, err := http.Get(api.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, 200, resp.StatusCode, "%s: %s", path, body)
		require.NoError(t, json.Unmarshal(body, out), "%s", body)
	}

	type regression struct {
		Metric       string   `json:"metric"`
		ErrorKind    string   `json:"error_kind"`
		FirstTraceID string   `json:"first_trace_id"`
		After        float64  `json:"after"`
		CIHigh       *float64 `json:"ci_high"`
	}
	var page struct {
		Deployments []struct {
			ID          string       `json:"id"`
			Verdict     string       `json:"verdict"`
			Reasons     []string     `json:"failure_reasons"`
			Regressions []regression `json:"regressions"`
			Explanation string       `json:"explanation"`
		} `json:"deployments"`
	}
	get("/v1/deployments?environment=production&service=pay&start_time="+url.QueryEscape(start.Format(time.RFC3339))+
		"&end_time="+url.QueryEscape(end.Format(time.RFC3339)), &page)
	require.Len(t, page.Deployments, 1)
	d := page.Deployments[0]
	t.Logf("%s %v — %s", d.Verdict, d.Reasons, d.Explanation)
	assert.Equal(t, "VERDICT_DEGRADED", d.Verdict)
	assert.Equal(t, []string{"FAILURE_REASON_NEW_ERROR_KIND"}, d.Reasons)
	require.Len(t, d.Regressions, 1)
	r := d.Regressions[0]
	assert.Equal(t, "new_error_kind", r.Metric)
	assert.Equal(t, "java.lang.NullPointerException", r.ErrorKind)
	assert.Equal(t, firstTrace, r.FirstTraceID)
	assert.InDelta(t, 0.003, r.After, 0.001, "its rate after")
	assert.True(t, strings.HasPrefix(d.Explanation, "DEGRADED: NEW_ERROR_KIND: java.lang.NullPointerException at 0."), d.Explanation)
	assert.Contains(t, d.Explanation, "% of requests after (0 in 18 000 before")
	assert.Contains(t, d.Explanation, "first trace "+firstTrace)

	var impact struct {
		Verdict string `json:"verdict"`
		Metrics []struct {
			Metric  string `json:"metric"`
			Verdict string `json:"verdict"`
		} `json:"metrics"`
		ErrorKinds struct {
			NewErrorKind bool `json:"new_error_kind"`
			New          []struct {
				Kind           string   `json:"kind"`
				Verdict        string   `json:"verdict"`
				After          float64  `json:"after"`
				AfterRate      *float64 `json:"after_rate"`
				RateRatio      *float64 `json:"rate_ratio"`
				AdjustedPValue float64  `json:"adjusted_p_value"`
				FirstTraceID   string   `json:"first_trace_id"`
				FirstSeen      string   `json:"first_seen"`
			} `json:"new"`
			Rose        []struct{ Kind string } `json:"rose"`
			Explanation string                  `json:"explanation"`
		} `json:"error_kinds"`
	}
	get("/v1/deployments/"+d.ID+"/impact", &impact)
	assert.Equal(t, "VERDICT_DEGRADED", impact.Verdict)
	for _, m := range impact.Metrics {
		assert.NotEqual(t, "COMPARE_VERDICT_WORSE", m.Verdict, "%s: the total error rate stays within noise", m.Metric)
	}
	ek := impact.ErrorKinds
	assert.True(t, ek.NewErrorKind)
	require.Len(t, ek.New, 1, "the timeout both versions threw is not new")
	n := ek.New[0]
	assert.Equal(t, "java.lang.NullPointerException", n.Kind)
	assert.Equal(t, "COMPARE_VERDICT_WORSE", n.Verdict)
	require.NotNil(t, n.AfterRate)
	assert.InDelta(t, 0.003, *n.AfterRate, 0.001)
	assert.Nil(t, n.RateRatio, "absent before: unbounded")
	assert.Less(t, n.AdjustedPValue, 0.005)
	assert.Equal(t, firstTrace, n.FirstTraceID)
	assert.NotEmpty(t, n.FirstSeen)
	assert.Empty(t, ek.Rose)
	assert.True(t, strings.HasPrefix(ek.Explanation, "NEW_ERROR_KIND: java.lang.NullPointerException"), ek.Explanation)

	var gate struct {
		Result      string       `json:"result"`
		Mode        string       `json:"mode"`
		Reasons     []string     `json:"reasons"`
		Regressions []regression `json:"regressions"`
		Explanation string       `json:"explanation"`
	}
	get("/v1/gate?environment=production&service=pay&version=1.1", &gate)
	assert.Equal(t, "FAIL", gate.Result)
	assert.Equal(t, "BEFORE_AFTER", gate.Mode)
	assert.Equal(t, []string{"NEW_ERROR_KIND"}, gate.Reasons)
	assert.Contains(t, gate.Explanation, "new error kind java.lang.NullPointerException at 0.")
	assert.Contains(t, gate.Explanation, "first trace "+firstTrace)
}
