// Package demoscenario writes a realistic demo scenario into a ClickHouse
// database the way users' data arrives: the demo's release plan
// (cmd/changelens-demo/plan — four services in production and staging,
// regular releases, a bad release rolled back, an error-rate regression
// fixed forward, a latency improvement, a failed CI deploy), turned into
// OTLP spans as instrumented services and a CI system would send them, and
// written through the real changelens processor and exporter
// (testkit/pipelinetest). Nothing is inserted any other way, except the
// experiment definition, which the worker's writer stores as
// changelens-worker would.
//
// At PerMinute the plan's own canary serves about one request
// a minute, too few for a verdict, and its flag experiment is left out (as
// are downstream calls and body sizes), so one more service, orders
// (ordersWriter), serves the end of the scenario at a rate a comparison can
// judge: a canary next to the stable version and a feature flag split;
// and two more, web calling inventory (graphWriter), give the service graph
// and a deployment caused by its callee's.
//
// The dashboards' live test and the web UI's browser tests run against the
// same data; every random stream is seeded, so the spans written are a
// function of the scenario's end, length and rate.
package demoscenario

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/changelens/changelens/cmd/changelens-demo/plan"
	"github.com/changelens/changelens/testkit/chtest"
	"github.com/changelens/changelens/testkit/pipelinetest"
)

// Seed fixes the plan's random streams and the writers'.
const Seed = 5

// Length is how much history the dashboards' live test writes, ending just
// before now, so that the dashboards' own default time ranges (now-24h,
// now-30d) cover it.
const Length = 18 * time.Hour

// PerMinute is each production unit's request rate at the daily mean that
// the dashboards' live test writes: enough for the before/after rule to see
// the plan's error regression (+3 points) and bad release with its
// family-wise level whenever they fall — a weekend night runs at 0.45 of
// it, and at 60 a minute the error regression there (3 against 16 failed
// requests in 800) missed the family-wise level — so that every failure
// reason shows.
const PerMinute = 100

// Scenario is what Write wrote.
type Scenario struct {
	// Plan is the release plan over [Start, End).
	Plan       *plan.Plan
	Start, End time.Time
	// Requests is the number of request (entry) spans written.
	Requests int
	// Services are the services with traffic: the plan's, GraphCaller,
	// GraphCallee and OrdersService.
	Services []string
	// ExperimentID is the stored experiment's ID (ExperimentID).
	ExperimentID string
}

// Write writes the scenario over the length before end (both truncated to
// whole minutes) into database db on ch, perMinute requests a minute per
// production unit at the daily mean (staging gets the plan's share), and
// stores the orders service's experiment definition. The exporter creates
// the schema. Length must be at least plan.MinScenarioPeriod and cover
// GraphLength.
func Write(t testing.TB, ch *chtest.Server, db string, end time.Time, length time.Duration, perMinute float64) Scenario {
	t.Helper()
	end = end.UTC().Truncate(time.Minute)
	p := newPlan(t, end.Add(-length.Truncate(time.Minute)), end)
	n := writeTraffic(t, ch.Addr(), db, p, perMinute)
	storeExperiment(t, ch, db, end)
	sc := Scenario{Plan: p, Start: p.Start, End: p.End, Requests: n, ExperimentID: ExperimentID}
	for _, s := range p.Services {
		sc.Services = append(sc.Services, s.Name)
	}
	sc.Services = append(sc.Services, GraphCaller, GraphCallee, OrdersService)
	return sc
}

// newPlan is the scenario over [start, end).
func newPlan(t testing.TB, start, end time.Time) *plan.Plan {
	t.Helper()
	p, err := plan.New(plan.Config{Seed: Seed, Start: start, End: end, Staging: true})
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

// writeTraffic sends the plan's traffic (perMinute requests a minute per
// production unit at the daily mean; staging gets the plan's share), its
// CI deploy spans, the orders service's and the service graph's traffic
// through a changelens processor into the changelens exporter (which
// creates the schema), then drains both. It returns the number of request
// spans.
func writeTraffic(t testing.TB, addr, database string, p *plan.Plan, perMinute float64) int {
	t.Helper()
	pipe := pipelinetest.New(t, addr, database, 1, nil)

	w := &spanWriter{p: p, rng: rand.New(rand.NewPCG(Seed, 0xda5b)), cum: map[string][]float64{}}
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
