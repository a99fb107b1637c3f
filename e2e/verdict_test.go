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

// verdictUnit is one service of TestVerdictsThroughCollector: requests a
// second, routes (equal shares), and what its deployment changes.
type verdictUnit struct {
	service   string
	perSecond int
	routes    int
	// slower multiplies the latency of every route after the deploy (of
	// slowRoute only, when it is set); errorsAfter is the error rate after.
	slower      float64
	slowRoute   string
	errorsAfter float64
}

func routeName(i int) string { return fmt.Sprintf("GET /api/r%02d", i) }

// verdictBatches is two hours of traffic of the units from start, one batch
// a minute; each unit's version changes from 1.0 to 1.1 at the end of the
// first hour. Latency is log-normal (median 100 ms, σ 0.357: p95 ≈ 180 ms),
// every minute sharing a small factor (sd 2 %) as real minutes do; errors
// 0.2 % unless the unit changes them.
func verdictBatches(start time.Time, units []verdictUnit) (batches []ptrace.Traces, requests int) {
	r := rand.New(rand.NewPCG(20, 20))
	var seq uint64
	for m := range 120 {
		td := ptrace.NewTraces()
		minuteFactor := math.Exp(0.02 * r.NormFloat64())
		for _, u := range units {
			version, after := "1.0", m >= 60
			if after {
				version = "1.1"
			}
			rs := td.ResourceSpans().AppendEmpty()
			a := rs.Resource().Attributes()
			a.PutStr("service.name", u.service)
			a.PutStr("service.version", version)
			a.PutStr("deployment.environment.name", "production")
			ss := rs.ScopeSpans().AppendEmpty().Spans()
			n := u.perSecond * 60
			for i := range n {
				route := routeName(r.IntN(u.routes))
				slow, errRate := 1.0, 0.002
				if after {
					if u.slower > 0 && (u.slowRoute == "" || u.slowRoute == route) {
						slow = u.slower
					}
					if u.errorsAfter > 0 {
						errRate = u.errorsAfter
					}
				}
				seq++
				s := ss.AppendEmpty()
				var tid pcommon.TraceID
				binary.BigEndian.PutUint64(tid[8:], seq)
				s.SetTraceID(tid)
				var sid pcommon.SpanID
				binary.BigEndian.PutUint64(sid[:], seq)
				s.SetSpanID(sid)
				s.SetKind(ptrace.SpanKindServer)
				s.SetName(route)
				at := start.Add(time.Duration(m)*time.Minute + time.Duration(i)*time.Minute/time.Duration(n))
				ms := 100 * slow * minuteFactor * math.Exp(0.357*r.NormFloat64())
				s.SetStartTimestamp(pcommon.NewTimestampFromTime(at))
				s.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(time.Duration(ms * float64(time.Millisecond)))))
				status := int64(200)
				if r.Float64() < errRate {
					status = 500
					s.Status().SetCode(ptrace.StatusCodeError)
				}
				s.Attributes().PutStr("http.request.method", "GET")
				s.Attributes().PutStr("http.route", strings.TrimPrefix(route, "GET "))
				s.Attributes().PutInt("http.response.status_code", status)
				requests++
			}
		}
		batches = append(batches, td)
	}
	return batches, requests
}

// TestVerdictsThroughCollector: the cases a careful on-call engineer judges
// (two hours per unit, a version change at the end of the first hour, one
// planted effect each), through the built collector into ClickHouse and out
// of the REST API:
//
//	slow13   every request 1.3× slower, 5 req/s        → DEGRADED (latency)
//	slow11   every request 1.1× slower, 10 req/s       → DEGRADED (latency)
//	errors4  errors 0.2 % → 0.8 %, 10 req/s            → DEGRADED (error rate)
//	oneroute one route of twenty 2× slower, 10 req/s   → DEGRADED, that route named first
//	steady   nothing changes, 5 req/s                  → NO_CHANGE
func TestVerdictsThroughCollector(t *testing.T) {
	ch := chtest.Shared(t)
	start := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Minute)
	end := start.Add(2 * time.Hour)
	const slowRoute = "GET /api/r07"
	units := []verdictUnit{
		{service: "slow13", perSecond: 5, routes: 1, slower: 1.3},
		{service: "slow11", perSecond: 10, routes: 1, slower: 1.1},
		{service: "errors4", perSecond: 10, routes: 1, errorsAfter: 0.008},
		{service: "oneroute", perSecond: 10, routes: 20, slower: 2, slowRoute: slowRoute},
		{service: "steady", perSecond: 5, routes: 1},
	}
	batches, requests := verdictBatches(start, units)
	db := ch.NewDatabase(t)
	c := startCollector(t, clickhouseConfig(""), chEnv(ch, db)...)
	deliver(t, batches, []*otlpClient{dialCollector(t, c)}, 0)
	waitStored(t, ch, db, requests)

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
		Operation string   `json:"operation"`
		Metric    string   `json:"metric"`
		Change    *float64 `json:"relative_change"`
	}
	type deployment struct {
		ID          string       `json:"id"`
		Verdict     string       `json:"verdict"`
		Reasons     []string     `json:"failure_reasons"`
		Regressions []regression `json:"regressions"`
		Explanation string       `json:"explanation"`
	}
	deployment1 := func(service string) deployment {
		t.Helper()
		var page struct {
			Deployments []deployment `json:"deployments"`
		}
		get("/v1/deployments?environment=production&service="+service+"&start_time="+url.QueryEscape(start.Format(time.RFC3339))+
			"&end_time="+url.QueryEscape(end.Format(time.RFC3339)), &page)
		require.Len(t, page.Deployments, 1, service)
		d := page.Deployments[0]
		t.Logf("%s: %s %v — %s", service, d.Verdict, d.Reasons, d.Explanation)
		return d
	}

	for _, c := range []struct {
		service string
		verdict string
		reasons []string
		metric  string
	}{
		{"slow13", "VERDICT_DEGRADED", []string{"FAILURE_REASON_LATENCY_REGRESSION"}, "latency_p95_ms"},
		{"slow11", "VERDICT_DEGRADED", []string{"FAILURE_REASON_LATENCY_REGRESSION"}, "latency_p95_ms"},
		{"errors4", "VERDICT_DEGRADED", []string{"FAILURE_REASON_ERROR_RATE_REGRESSION"}, "error_rate"},
		{"steady", "VERDICT_NO_CHANGE", []string{}, ""},
	} {
		d := deployment1(c.service)
		assert.Equal(t, c.verdict, d.Verdict, c.service)
		assert.Equal(t, c.reasons, d.Reasons, c.service)
		if c.metric == "" {
			assert.Empty(t, d.Regressions, c.service)
			assert.True(t, strings.HasPrefix(d.Explanation, "NO_CHANGE: nothing larger than +"), "%s: %s", c.service, d.Explanation)
			continue
		}
		var found bool
		for _, r := range d.Regressions {
			found = found || r.Metric == c.metric
		}
		assert.True(t, found, "%s: regressions %+v name %s", c.service, d.Regressions, c.metric)
	}

	// One route of twenty: DEGRADED, the route first in the listing, the
	// impact and the explanation, with its figures; the other routes within
	// a few percent.
	d := deployment1("oneroute")
	assert.Equal(t, "VERDICT_DEGRADED", d.Verdict)
	require.NotEmpty(t, d.Regressions)
	assert.Equal(t, slowRoute, d.Regressions[0].Operation)
	require.NotNil(t, d.Regressions[0].Change)
	assert.InDelta(t, 1, *d.Regressions[0].Change, 0.15, "the route is twice as slow")
	assert.True(t, strings.HasPrefix(d.Explanation, "DEGRADED: p95 of "+slowRoute+" "), d.Explanation)
	assert.Contains(t, d.Explanation, "other 19 operations within ±")
	var impact struct {
		Verdict    string `json:"verdict"`
		Operations []struct {
			Operation string `json:"operation"`
			Rank      int    `json:"rank"`
			Verdict   string `json:"verdict"`
			Judged    bool   `json:"judged"`
		} `json:"operations"`
		Metrics []struct {
			Metric string   `json:"metric"`
			MDE    *float64 `json:"min_detectable_change"`
		} `json:"metrics"`
	}
	get("/v1/deployments/"+d.ID+"/impact", &impact)
	require.Len(t, impact.Operations, 20)
	assert.Equal(t, slowRoute, impact.Operations[0].Operation)
	assert.Equal(t, 1, impact.Operations[0].Rank)
	for _, o := range impact.Operations[1:] {
		assert.True(t, o.Judged, o.Operation)
		assert.Equal(t, "COMPARE_VERDICT_NO_DIFFERENCE", o.Verdict, o.Operation)
	}
	for _, m := range impact.Metrics {
		if m.Metric == "latency_p95_ms" {
			require.NotNil(t, m.MDE)
			assert.InDelta(t, 0.05, *m.MDE, 0.03, "at 36 000 requests the floor is the limit")
		}
	}

	// The gate in BEFORE_AFTER mode names the route.
	var gate struct {
		Result      string       `json:"result"`
		Mode        string       `json:"mode"`
		Regressions []regression `json:"regressions"`
		Explanation string       `json:"explanation"`
	}
	get("/v1/gate?environment=production&service=oneroute&version=1.1", &gate)
	assert.Equal(t, "FAIL", gate.Result)
	assert.Equal(t, "BEFORE_AFTER", gate.Mode)
	require.NotEmpty(t, gate.Regressions)
	assert.Equal(t, slowRoute, gate.Regressions[0].Operation)
	assert.Contains(t, gate.Explanation, "p95 of "+slowRoute)
}
