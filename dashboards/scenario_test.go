package dashboards

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/changelens/changelens/cmd/changelens-demo/plan"
	"github.com/changelens/changelens/testkit/pipelinetest"
)

// The data the dashboards are run against: the demo's release plan
// (cmd/changelens-demo/plan — four services in production and staging,
// regular releases, a bad release rolled back, an error-rate regression
// fixed forward, a latency improvement, a failed CI deploy), turned into
// OTLP spans as instrumented services and a CI system would send them, and
// written through the real changelens processor and exporter into
// ClickHouse. Nothing is inserted any other way.
//
// At the rate written here the plan's own canary serves about one request
// a minute, too few for a verdict, and its flag experiment is left out (as
// are downstream calls and body sizes), so one more service, orders
// (ordersWriter), serves the end of the scenario at a rate a comparison can
// judge: a canary next to the stable version and a feature flag split;
// and two more, web calling inventory (graphWriter), give the service graph
// and a deployment caused by its callee's.

// scenarioSeed fixes the plan's random streams.
const scenarioSeed = 5

// newPlan is the scenario over [start, end).
func newPlan(t testing.TB, start, end time.Time) *plan.Plan {
	t.Helper()
	p, err := plan.New(plan.Config{Seed: scenarioSeed, Start: start, End: end, Staging: true})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// spanWriter turns the plan into pdata, minute by minute.
type spanWriter struct {
	p   *plan.Plan
	rng *rand.Rand
	seq uint64
	// cum are the cumulative route weights per service.
	cum map[string][]float64
}

func (w *spanWriter) ids(s ptrace.Span) {
	w.seq++
	var tid pcommon.TraceID
	binary.BigEndian.PutUint64(tid[:8], w.rng.Uint64())
	binary.BigEndian.PutUint64(tid[8:], w.seq)
	var sid pcommon.SpanID
	binary.BigEndian.PutUint64(sid[:], w.rng.Uint64()|1)
	s.SetTraceID(tid)
	s.SetSpanID(sid)
}

// request appends one SERVER span of unit u at t: the version serving it
// (rolling updates mix two), its route, latency and status come from the plan.
func (w *spanWriter) request(res map[[3]string]ptrace.SpanSlice, td ptrace.Traces, u plan.UnitKey, t time.Time) {
	version := w.p.Mix(u, t).Pick(w.rng.Float64())
	prof := w.p.Profile(u.Service, version)
	svc := w.p.Service(u.Service)
	cum := w.cum[u.Service]
	ri, x := 0, w.rng.Float64()
	for ri < len(cum)-1 && x >= cum[ri] {
		ri++
	}
	route := svc.Routes[ri]
	ms := route.MedianMS * prof.LatencyFactor * math.Exp((route.Sigma+prof.ExtraSigma)*w.rng.NormFloat64())
	status := int64(200)
	if w.rng.Float64() < prof.ErrorRate {
		status = 500 + int64(w.rng.IntN(2))*3 // 500 or 503
	}

	key := [3]string{u.Service, u.Environment, version}
	ss, ok := res[key]
	if !ok {
		rs := td.ResourceSpans().AppendEmpty()
		a := rs.Resource().Attributes()
		a.PutStr("service.name", u.Service)
		a.PutStr("service.namespace", "shop")
		a.PutStr("service.version", version)
		a.PutStr("deployment.environment.name", u.Environment)
		a.PutStr("telemetry.sdk.language", "go")
		sc := rs.ScopeSpans().AppendEmpty()
		sc.Scope().SetName("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp")
		ss = sc.Spans()
		res[key] = ss
	}
	s := ss.AppendEmpty()
	w.ids(s)
	s.SetKind(ptrace.SpanKindServer)
	s.SetName(route.Method + " " + route.Path)
	a := s.Attributes()
	a.PutStr("http.request.method", route.Method)
	a.PutStr("http.route", route.Path)
	a.PutInt("http.response.status_code", status)
	if status >= 500 {
		s.Status().SetCode(ptrace.StatusCodeError)
	}
	s.SetStartTimestamp(pcommon.NewTimestampFromTime(t))
	s.SetEndTimestamp(pcommon.NewTimestampFromTime(t.Add(time.Duration(ms * float64(time.Millisecond)))))
}

// deploySpan appends the CI system's deploy task span of an explicit
// deployment (the resource is the CI system; the deployed unit, version and
// commit are span attributes; deploy time = span end).
func (w *spanWriter) deploySpan(td ptrace.Traces, d plan.Deployment) {
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "github-actions")
	rs.Resource().Attributes().PutStr("service.namespace", "ci")
	sc := rs.ScopeSpans().AppendEmpty()
	sc.Scope().SetName("github.com/changelens/changelens/cmd/changelens-demo")
	s := sc.Spans().AppendEmpty()
	w.ids(s)
	s.SetKind(ptrace.SpanKindInternal)
	s.SetName("deploy " + d.Service)
	s.SetStartTimestamp(pcommon.NewTimestampFromTime(d.CIStart))
	s.SetEndTimestamp(pcommon.NewTimestampFromTime(d.CIEnd))
	a := s.Attributes()
	a.PutStr("cicd.pipeline.name", d.Pipeline)
	a.PutStr("cicd.pipeline.run.id", d.RunID)
	a.PutStr("cicd.pipeline.task.name", "deploy-"+d.Environment)
	a.PutStr("cicd.pipeline.task.type", "deploy")
	result := "success"
	if d.Failed() {
		result = "failure"
		s.Status().SetCode(ptrace.StatusCodeError)
	}
	a.PutStr("cicd.pipeline.task.run.result", result)
	a.PutStr("service.name", d.Service)
	a.PutStr("service.version", d.Version)
	a.PutStr("deployment.environment.name", d.Environment)
	a.PutStr("deployment.id", d.DeploymentID)
	a.PutStr("vcs.ref.head.revision", d.Commit)
	a.PutStr("vcs.ref.head.name", "main")
	a.PutStr("changelens.commit.time", d.CommitTime.UTC().Format(time.RFC3339))
	if d.Rework != "" {
		a.PutStr("changelens.deployment.rework", d.Rework)
	}
}

// writeScenario sends the plan's traffic (perMinute requests a minute per
// production unit at the daily mean; staging gets the plan's share), its
// CI deploy spans and the orders service's traffic through a changelens
// processor into the changelens exporter (which creates the schema), then
// drains both. It returns the number of request spans.
func writeScenario(t *testing.T, addr, database string, p *plan.Plan, perMinute float64) int {
	t.Helper()
	pipe := pipelinetest.New(t, addr, database, 1, nil)

	w := &spanWriter{p: p, rng: rand.New(rand.NewPCG(scenarioSeed, 0xda5b)), cum: map[string][]float64{}}
	for _, s := range p.Services {
		var sum float64
		for _, r := range s.Routes {
			sum += r.Weight
		}
		acc := 0.0
		for _, r := range s.Routes {
			acc += r.Weight / sum
			w.cum[s.Name] = append(w.cum[s.Name], acc)
		}
	}
	orders := newOrdersWriter(p.End)
	graph := newGraphWriter(p.End)
	carry := map[plan.UnitKey]float64{}
	next := 0 // next deployment of p.Deployments (ordered by time)
	requests := 0
	for m := p.Start; m.Before(p.End); m = m.Add(time.Minute) {
		td := ptrace.NewTraces()
		res := map[[3]string]ptrace.SpanSlice{}
		for _, u := range p.Units {
			carry[u] += perMinute * p.RateFactor(u, m)
			n := int(carry[u])
			carry[u] -= float64(n)
			for i := 0; i < n; i++ {
				at := m.Add(time.Duration((float64(i) + w.rng.Float64()) / float64(n) * float64(time.Minute)))
				w.request(res, td, u, at)
				requests++
			}
		}
		// CI deploy spans are exported when they end.
		for next < len(p.Deployments) && p.Deployments[next].Time().Before(m.Add(time.Minute)) {
			if d := p.Deployments[next]; d.Explicit && !d.CIEnd.Before(p.Start) {
				w.deploySpan(td, d)
			}
			next++
		}
		requests += orders.minute(td, m)
		requests += graph.minute(td, m)
		pipe.Send(t, td)
	}
	pipe.Close(t)
	return requests
}

// The orders service (production only): ordersPerMinute requests a minute
// over the last ordersLength of the scenario. For the last
// ordersCanaryLength a canary serves ordersCanaryShare of them,
// ordersCanarySlowdown times slower (a WORSE p95 in the minutes both
// versions serve, and an inferred deployment). Every request evaluates the
// flag new-checkout (a feature_flag.evaluation span event, 50/50): "on"
// fails more often (a WORSE error rate) and answers larger bodies. Its own
// random stream, so the plan's traffic is the same with or without it.
const (
	ordersService        = "orders"
	ordersStable         = "6.4.0"
	ordersCanary         = "6.5.0"
	ordersFlag           = "new-checkout"
	ordersLength         = 75 * time.Minute
	ordersCanaryLength   = 60 * time.Minute
	ordersPerMinute      = 300
	ordersCanaryShare    = 0.05
	ordersCanarySlowdown = 1.5
	ordersErrorRate      = 0.005 // "off", and the canary
	ordersFlagErrorRate  = 0.03  // "on"
)

// ordersRoutes: method, route, share of the requests, median latency (ms).
var ordersRoutes = []struct {
	method, route string
	share, median float64
}{
	{"GET", "/orders/{id}", 0.6, 35},
	{"POST", "/orders", 0.4, 90},
}

type ordersWriter struct {
	start, canaryStart time.Time
	rng                *rand.Rand
	seq                uint64
}

func newOrdersWriter(end time.Time) *ordersWriter {
	return &ordersWriter{start: end.Add(-ordersLength), canaryStart: end.Add(-ordersCanaryLength),
		rng: rand.New(rand.NewPCG(scenarioSeed, 0x0de5))}
}

// minute appends the orders service's requests of minute m to td and
// returns how many.
func (w *ordersWriter) minute(td ptrace.Traces, m time.Time) int {
	if m.Before(w.start) {
		return 0
	}
	spans := map[string]ptrace.SpanSlice{}
	for i := 0; i < ordersPerMinute; i++ {
		at := m.Add(time.Duration((float64(i) + w.rng.Float64()) / ordersPerMinute * float64(time.Minute)))
		version, slow := ordersStable, 1.0
		if !at.Before(w.canaryStart) && w.rng.Float64() < ordersCanaryShare {
			version, slow = ordersCanary, ordersCanarySlowdown
		}
		variant, errRate, size := "off", ordersErrorRate, 2000.0
		if w.rng.Float64() < 0.5 {
			variant, errRate, size = "on", ordersFlagErrorRate, 2600
		}
		route := ordersRoutes[0]
		if w.rng.Float64() >= route.share {
			route = ordersRoutes[1]
		}
		ss, ok := spans[version]
		if !ok {
			rs := td.ResourceSpans().AppendEmpty()
			a := rs.Resource().Attributes()
			a.PutStr("service.name", ordersService)
			a.PutStr("service.namespace", "shop")
			a.PutStr("service.version", version)
			a.PutStr("deployment.environment.name", plan.Production)
			sc := rs.ScopeSpans().AppendEmpty()
			sc.Scope().SetName("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp")
			ss = sc.Spans()
			spans[version] = ss
		}
		s := ss.AppendEmpty()
		w.seq++
		var tid pcommon.TraceID
		binary.BigEndian.PutUint64(tid[:8], 0x0de5<<48|w.rng.Uint64()>>16)
		binary.BigEndian.PutUint64(tid[8:], w.seq)
		var sid pcommon.SpanID
		binary.BigEndian.PutUint64(sid[:], w.rng.Uint64()|1)
		s.SetTraceID(tid)
		s.SetSpanID(sid)
		s.SetKind(ptrace.SpanKindServer)
		s.SetName(route.method + " " + route.route)
		ms := route.median * slow * math.Exp(0.45*w.rng.NormFloat64())
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(at))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(time.Duration(ms * float64(time.Millisecond)))))
		a := s.Attributes()
		a.PutStr("http.request.method", route.method)
		a.PutStr("http.route", route.route)
		status := int64(200)
		if w.rng.Float64() < errRate {
			status = 500
			s.Status().SetCode(ptrace.StatusCodeError)
		}
		a.PutInt("http.response.status_code", status)
		a.PutInt("http.response.body.size", int64(size*math.Exp(0.3*w.rng.NormFloat64())))
		if route.method == "POST" {
			a.PutInt("http.request.body.size", int64(600*math.Exp(0.3*w.rng.NormFloat64())))
		}
		e := s.Events().AppendEmpty()
		e.SetName("feature_flag.evaluation")
		e.SetTimestamp(s.StartTimestamp())
		e.Attributes().PutStr("feature_flag.key", ordersFlag)
		e.Attributes().PutStr("feature_flag.result.variant", variant)
	}
	return ordersPerMinute
}
