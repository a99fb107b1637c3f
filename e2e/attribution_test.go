package e2e

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
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

// causeBatches is two hours of traffic from start, one batch a minute, of
// the two situations of "cause, not coincidence":
//
// production: unit "ramp" deploys 1.0 → 1.1 (identical code) at minute 60
// while the whole environment's traffic triples and its latency rises 35 %
// over minutes 55–65 — on "ramp" and on three units that deploy nothing
// (peer-a, peer-b, peer-c) alike.
//
// shop: "frontend" (8 req/s, 40 ms of its own) calls "checkout" once per
// request (a CLIENT span whose child is checkout's SERVER span, 100 ms);
// checkout queries postgresql (a CLIENT span, not instrumented on the other
// side). frontend deploys 1.0 → 2.0 (no change of its own) at minute 60,
// checkout 1.0 → 1.1, 1.6× slower, at minute 61; "catalog" deploys nothing.
//
// Every span is its own piece: split(i) says which of the returned batch
// sets span i of a batch goes to, so the spans of one trace can reach
// different collectors.
func causeBatches(start time.Time, parts int) (sets [][]ptrace.Traces, entrySpans int) {
	r := rand.New(rand.NewPCG(21, 21))
	sets = make([][]ptrace.Traces, parts)
	var seq uint64
	ids := func() (pcommon.TraceID, pcommon.SpanID) {
		seq++
		var tid pcommon.TraceID
		binary.BigEndian.PutUint64(tid[8:], seq)
		var sid pcommon.SpanID
		binary.BigEndian.PutUint64(sid[:], seq)
		return tid, sid
	}
	for m := range 120 {
		batch := make([]ptrace.Traces, parts)
		scopes := make([]map[[3]string]ptrace.SpanSlice, parts)
		for p := range parts {
			batch[p] = ptrace.NewTraces()
			scopes[p] = map[[3]string]ptrace.SpanSlice{}
		}
		piece := 0
		spanSlice := func(service, env, version string) ptrace.SpanSlice {
			p := piece % parts
			piece++
			k := [3]string{service, env, version}
			if ss, ok := scopes[p][k]; ok {
				return ss
			}
			rs := batch[p].ResourceSpans().AppendEmpty()
			a := rs.Resource().Attributes()
			a.PutStr("service.name", service)
			a.PutStr("service.version", version)
			a.PutStr("deployment.environment.name", env)
			ss := rs.ScopeSpans().AppendEmpty().Spans()
			scopes[p][k] = ss
			return ss
		}
		span := func(ss ptrace.SpanSlice, tid pcommon.TraceID, sid, parent pcommon.SpanID, kind ptrace.SpanKind, name string, at time.Time, ms float64) ptrace.Span {
			s := ss.AppendEmpty()
			s.SetTraceID(tid)
			s.SetSpanID(sid)
			s.SetParentSpanID(parent)
			s.SetKind(kind)
			s.SetName(name)
			s.SetStartTimestamp(pcommon.NewTimestampFromTime(at))
			s.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(time.Duration(ms * float64(time.Millisecond)))))
			return s
		}
		server := func(ss ptrace.SpanSlice, tid pcommon.TraceID, sid, parent pcommon.SpanID, route string, at time.Time, ms float64) {
			s := span(ss, tid, sid, parent, ptrace.SpanKindServer, "GET "+route, at, ms)
			s.Attributes().PutStr("http.request.method", "GET")
			s.Attributes().PutStr("http.route", route)
			s.Attributes().PutInt("http.response.status_code", 200)
			entrySpans++
		}
		minute := start.Add(time.Duration(m) * time.Minute)
		shared := math.Exp(0.02 * r.NormFloat64())

		// production: the shared ramp.
		ramp := 1 + 2*math.Min(math.Max(float64(m-55)/10, 0), 1) // traffic ×1 → ×3
		slow := 1 + 0.35*(ramp-1)/2                              // latency ×1 → ×1.35
		for _, u := range []string{"ramp", "peer-a", "peer-b", "peer-c"} {
			version := "1.0"
			if u == "ramp" && m >= 60 {
				version = "1.1"
			}
			n := int(5 * 60 * ramp)
			for i := range n {
				tid, sid := ids()
				at := minute.Add(time.Duration(i) * time.Minute / time.Duration(n))
				server(spanSlice(u, "production", version), tid, sid, pcommon.SpanID{}, "/api", at, 100*slow*shared*math.Exp(0.3*r.NormFloat64()))
			}
		}

		// shop: a callee's bad release under an innocent caller's deploy.
		fv, cv := "1.0", "1.0"
		if m >= 60 {
			fv = "2.0"
		}
		checkoutSlow := 1.0
		if m >= 61 {
			cv, checkoutSlow = "1.1", 1.6
		}
		n := 8 * 60
		for i := range n {
			tid, root := ids()
			_, call := ids()
			_, callee := ids()
			_, query := ids()
			at := minute.Add(time.Duration(i) * time.Minute / time.Duration(n))
			self := 40 * shared * math.Exp(0.3*r.NormFloat64())
			dbMs := 10 * math.Exp(0.3*r.NormFloat64())
			checkoutMs := 90*checkoutSlow*shared*math.Exp(0.3*r.NormFloat64()) + dbMs
			callAt := at.Add(time.Duration(self / 2 * float64(time.Millisecond)))
			server(spanSlice("frontend", "shop", fv), tid, root, pcommon.SpanID{}, "/checkout", at, self+checkoutMs+2)
			c := span(spanSlice("frontend", "shop", fv), tid, call, root, ptrace.SpanKindClient, "POST", callAt, checkoutMs+2)
			c.Attributes().PutStr("peer.service", "checkout")
			c.Attributes().PutStr("http.request.method", "POST")
			server(spanSlice("checkout", "shop", cv), tid, callee, call, "/pay", callAt.Add(time.Millisecond), checkoutMs)
			q := span(spanSlice("checkout", "shop", cv), tid, query, callee, ptrace.SpanKindClient, "SELECT orders", callAt.Add(2*time.Millisecond), dbMs)
			q.Attributes().PutStr("db.system.name", "postgresql")
		}
		for i := range 5 * 60 {
			tid, sid := ids()
			server(spanSlice("catalog", "shop", "1.0"), tid, sid, pcommon.SpanID{}, "/items",
				minute.Add(time.Duration(i)*time.Minute/300), 60*shared*math.Exp(0.3*r.NormFloat64()))
		}
		for p := range parts {
			sets[p] = append(sets[p], batch[p])
		}
	}
	return sets, entrySpans
}

// TestCauseNotCoincidence: the two situations of "cause, not coincidence"
// (causeBatches) through the built collector into ClickHouse and out of the
// REST API answer as a careful engineer would — the deploy during a shared
// load ramp is not DEGRADED; the frontend whose callee's release slowed it
// is CAUSED_BY_DEPENDENCY naming the callee's deployment, not a change
// failure, and its gate passes — and the same through three collectors
// that each received a third of every trace's spans, with the same service
// graph.
func TestCauseNotCoincidence(t *testing.T) {
	ch := chtest.Shared(t)
	start := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Minute)
	end := start.Add(2 * time.Hour)

	oneSet, entries := causeBatches(start, 1)
	threeSets, _ := causeBatches(start, 3)
	dbOne, dbThree := ch.NewDatabase(t), ch.NewDatabase(t)
	one := dialCollector(t, startCollector(t, clickhouseConfig(""), chEnv(ch, dbOne)...))
	deliver(t, oneSet[0], []*otlpClient{one}, 0)
	for _, set := range threeSets {
		c := dialCollector(t, startCollector(t, clickhouseConfig(""), chEnv(ch, dbThree)...))
		deliver(t, set, []*otlpClient{c}, 0)
	}
	waitStored(t, ch, dbOne, entries)
	waitStored(t, ch, dbThree, entries)

	answers := map[string]causeAnswers{}
	for name, db := range map[string]string{"one collector": dbOne, "three collectors": dbThree} {
		t.Run(name, func(t *testing.T) {
			answers[name] = checkCauses(t, ch, db, start, end)
		})
	}
	assert.Equal(t, answers["one collector"], answers["three collectors"], "the same answers through 1 and 3 collectors")
}

// causeAnswers are what TestCauseNotCoincidence compares across collector
// set-ups.
type causeAnswers struct {
	Graph       []graphEdge
	Verdicts    map[string]string
	CausedBy    string
	FailedCount int
}

type graphEdge struct {
	Caller    string   `json:"caller_service"`
	Callee    string   `json:"callee_service"`
	CalleeEnv string   `json:"callee_environment"`
	Calls     float64  `json:"calls"`
	Errors    float64  `json:"errors"`
	MeanMs    *float64 `json:"mean_ms"`
}

func checkCauses(t *testing.T, ch *chtest.Server, db string, start, end time.Time) causeAnswers {
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
	rng := "&start_time=" + url.QueryEscape(start.Format(time.RFC3339)) + "&end_time=" + url.QueryEscape(end.Format(time.RFC3339))
	type cause struct {
		Kind         string `json:"kind"`
		DeploymentID string `json:"deployment_id"`
		Service      string `json:"service"`
		Significant  bool   `json:"significant"`
	}
	type deployment struct {
		ID            string `json:"id"`
		Service       string `json:"service"`
		Version       string `json:"version"`
		Verdict       string `json:"verdict"`
		ChangeFailure bool   `json:"change_failure"`
		Cause         *cause `json:"cause"`
		Explanation   string `json:"explanation"`
	}
	type page struct {
		Deployments []deployment `json:"deployments"`
	}
	var out causeAnswers
	out.Verdicts = map[string]string{}
	byService := map[string]deployment{}
	for _, env := range []string{"production", "shop"} {
		var p page
		get("/v1/deployments?environment="+env+rng, &p)
		for _, d := range p.Deployments {
			t.Logf("%s %s: %s change_failure=%v — %s", d.Service, d.Version, d.Verdict, d.ChangeFailure, d.Explanation)
			byService[d.Service] = d
			out.Verdicts[d.Service] = d.Verdict
		}
	}
	require.Len(t, byService, 3, "ramp, frontend and checkout deployed")

	// A shared load ramp is not the deploy's doing.
	ramp := byService["ramp"]
	assert.NotEqual(t, "VERDICT_DEGRADED", ramp.Verdict, ramp.Explanation)
	assert.False(t, ramp.ChangeFailure)
	var rampImpact struct {
		Control struct {
			Kind   string   `json:"kind"`
			Series []string `json:"series"`
		} `json:"control"`
	}
	get("/v1/deployments/"+ramp.ID+"/impact", &rampImpact)
	assert.Equal(t, "environment", rampImpact.Control.Kind)
	assert.ElementsMatch(t, []string{"peer-a/production", "peer-b/production", "peer-c/production"}, rampImpact.Control.Series)

	// The callee's bad release is the callee's, not the caller's.
	checkout, frontend := byService["checkout"], byService["frontend"]
	assert.Equal(t, "VERDICT_DEGRADED", checkout.Verdict, checkout.Explanation)
	assert.True(t, checkout.ChangeFailure)
	assert.Equal(t, "VERDICT_CAUSED_BY_DEPENDENCY", frontend.Verdict, frontend.Explanation)
	assert.False(t, frontend.ChangeFailure, "not the frontend's change failure")
	require.NotNil(t, frontend.Cause, frontend.Explanation)
	assert.Equal(t, "CAUSE_KIND_CALLEE_DEPLOYMENT", frontend.Cause.Kind)
	assert.Equal(t, checkout.ID, frontend.Cause.DeploymentID)
	assert.Contains(t, frontend.Explanation, "explained by checkout 1.1")
	out.CausedBy = frontend.Cause.Service

	var impact struct {
		Attribution struct {
			Causes     []cause `json:"causes"`
			Neighbours []struct {
				Service     string   `json:"service"`
				Callee      bool     `json:"callee"`
				Deployments []string `json:"deployment_ids"`
			} `json:"neighbours"`
		} `json:"attribution"`
	}
	get("/v1/deployments/"+frontend.ID+"/impact", &impact)
	require.NotEmpty(t, impact.Attribution.Causes)
	assert.Equal(t, checkout.ID, impact.Attribution.Causes[0].DeploymentID, "the callee's deployment ranked first")
	assert.True(t, impact.Attribution.Causes[0].Significant)
	for _, c := range impact.Attribution.Causes {
		if c.Kind == "CAUSE_KIND_OWN_DEPLOYMENT" {
			assert.False(t, c.Significant, "the frontend's own code did not change")
		}
	}
	require.Len(t, impact.Attribution.Neighbours, 1)
	assert.Equal(t, "checkout", impact.Attribution.Neighbours[0].Service)
	assert.True(t, impact.Attribution.Neighbours[0].Callee)
	assert.Equal(t, []string{checkout.ID}, impact.Attribution.Neighbours[0].Deployments)

	// Listed by cause; counted once in DORA; the frontend's gate passes.
	var byCause page
	get("/v1/deployments?environment=shop&caused_by="+checkout.ID+rng, &byCause)
	require.Len(t, byCause.Deployments, 2, "checkout's deployment broke itself and the frontend")
	assert.ElementsMatch(t, []string{checkout.ID, frontend.ID}, []string{byCause.Deployments[0].ID, byCause.Deployments[1].ID})
	get("/v1/deployments?environment=shop&cause_kind=CAUSE_KIND_CALLEE_DEPLOYMENT&caused_by="+checkout.ID+rng, &byCause)
	require.Len(t, byCause.Deployments, 1)
	assert.Equal(t, frontend.ID, byCause.Deployments[0].ID)
	get("/v1/deployments?environment=shop&cause_kind=CAUSE_KIND_OWN_DEPLOYMENT"+rng, &byCause)
	require.Len(t, byCause.Deployments, 1)
	assert.Equal(t, checkout.ID, byCause.Deployments[0].ID)
	var dora struct {
		Summary struct {
			Changes int `json:"change_count"`
			Failed  int `json:"failed_change_count"`
		} `json:"summary"`
	}
	get("/v1/dora?environment=shop"+rng, &dora)
	assert.Equal(t, 2, dora.Summary.Changes)
	assert.Equal(t, 1, dora.Summary.Failed, "one bad change, one change failure")
	out.FailedCount = dora.Summary.Failed
	var gate struct {
		Result      string `json:"result"`
		Explanation string `json:"explanation"`
	}
	get("/v1/gate?environment=shop&service=frontend&version=2.0", &gate)
	assert.Equal(t, "PASS", gate.Result, "stopping the frontend's rollout would not undo the callee's regression")
	assert.Contains(t, gate.Explanation, "explained by checkout 1.1", gate.Explanation)

	// The service graph, as stored.
	var graph struct {
		Edges []graphEdge `json:"edges"`
	}
	get("/v1/graph?environment=shop"+rng, &graph)
	require.Len(t, graph.Edges, 2, "%+v", graph.Edges)
	fc, cp := graph.Edges[0], graph.Edges[1]
	if fc.Caller != "frontend" {
		fc, cp = cp, fc
	}
	assert.Equal(t, graphEdge{Caller: "frontend", Callee: "checkout", CalleeEnv: "shop", Calls: 120 * 8 * 60, MeanMs: fc.MeanMs}, fc)
	assert.Equal(t, graphEdge{Caller: "checkout", Callee: "postgresql", CalleeEnv: "", Calls: 120 * 8 * 60, MeanMs: cp.MeanMs}, cp)
	out.Graph = graph.Edges
	return out
}
