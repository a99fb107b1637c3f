package main

import (
	"context"
	"math"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/changelens/changelens/cmd/changelens-demo/plan"
)

// request is what the effect tests need of one emitted request.
type request struct {
	unit          plan.UnitKey
	version       string
	route, method string
	variant       string // of the flag evaluated in a child span, "" if none
	start         time.Time
	ms            float64
	status        int64
	resp, req     int64 // body sizes, -1 when absent
}

// requestTally is a span processor that keeps requests, not spans, so that a test
// can emit many of them; it checks the flag spans as they end.
type requestTally struct {
	t     *testing.T
	reqs  []request
	flags map[trace.SpanID]flagSeen // by parent span
}

type flagSeen struct {
	variant    string
	start, end time.Time
}

func (*requestTally) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (*requestTally) Shutdown(context.Context) error                  { return nil }
func (*requestTally) ForceFlush(context.Context) error                { return nil }

func (a *requestTally) OnEnd(s sdktrace.ReadOnlySpan) {
	t := a.t
	if s.Name() == flagSpan {
		ev := s.Events()
		if s.SpanKind() != trace.SpanKindInternal || !s.Parent().IsValid() || len(ev) != 1 || ev[0].Name != flagEvent ||
			ev[0].Time.Before(s.StartTime()) || ev[0].Time.After(s.EndTime()) {
			t.Fatalf("flag span %s parent %v events %+v", s.SpanKind(), s.Parent().SpanID(), ev)
		}
		got := attribute.NewSet(ev[0].Attributes...)
		variant, _ := got.Value(semconv.FeatureFlagResultVariantKey)
		if v := variant.AsString(); v != "on" && v != "off" {
			t.Fatalf("variant %q", v)
		}
		want := attribute.NewSet(semconv.FeatureFlagKey(plan.FlagKey), semconv.FeatureFlagProviderName("flagd"),
			semconv.FeatureFlagResultReasonSplit, semconv.FeatureFlagResultVariant(variant.AsString()))
		if !got.Equals(&want) {
			t.Fatalf("flag event attributes %v", ev[0].Attributes)
		}
		if _, dup := a.flags[s.Parent().SpanID()]; dup {
			t.Fatalf("two flag spans in one request")
		}
		a.flags[s.Parent().SpanID()] = flagSeen{variant.AsString(), s.StartTime(), s.EndTime()}
		return
	}
	if len(s.Events()) != 0 {
		t.Fatalf("%s span %q has events %+v", s.SpanKind(), s.Name(), s.Events())
	}
	if s.SpanKind() != trace.SpanKindServer {
		return
	}
	res := s.Resource().Set()
	svc, _ := res.Value(semconv.ServiceNameKey)
	env, _ := res.Value(semconv.DeploymentEnvironmentNameKey)
	ver, _ := res.Value(semconv.ServiceVersionKey)
	attrs := attribute.NewSet(s.Attributes()...)
	route, _ := attrs.Value(semconv.HTTPRouteKey)
	method, _ := attrs.Value(semconv.HTTPRequestMethodKey)
	status, _ := attrs.Value(semconv.HTTPResponseStatusCodeKey)
	r := request{unit: plan.UnitKey{Service: svc.AsString(), Environment: env.AsString()}, version: ver.AsString(),
		route: route.AsString(), method: method.AsString(), start: s.StartTime(),
		ms: float64(s.EndTime().Sub(s.StartTime())) / 1e6, status: status.AsInt64(), resp: -1, req: -1}
	if v, ok := attrs.Value(semconv.HTTPResponseBodySizeKey); ok && v.Type() == attribute.INT64 {
		r.resp = v.AsInt64()
	}
	if v, ok := attrs.Value(semconv.HTTPRequestBodySizeKey); ok && v.Type() == attribute.INT64 {
		r.req = v.AsInt64()
	}
	if f, ok := a.flags[s.SpanContext().SpanID()]; ok {
		if f.start.Before(s.StartTime()) || f.end.After(s.EndTime()) {
			t.Fatalf("flag span %s..%s outside its request %s..%s", f.start, f.end, s.StartTime(), s.EndTime())
		}
		r.variant = f.variant
		delete(a.flags, s.SpanContext().SpanID())
	}
	a.reqs = append(a.reqs, r)
}

// logStats are the mean and the standard error of log(x) over a sample.
type logStats struct {
	n        int
	mean, se float64
}

func logOf(xs []float64) logStats {
	var s, ss float64
	for _, x := range xs {
		l := math.Log(x)
		s += l
		ss += l * l
	}
	n := float64(len(xs))
	m := s / n
	return logStats{len(xs), m, math.Sqrt((ss/n - m*m) / n)}
}

// ratioWithin checks that two samples' geometric means differ by factor
// want, within four standard errors.
func ratioWithin(t *testing.T, what string, treat, ctrl []float64, want float64) {
	t.Helper()
	a, b := logOf(treat), logOf(ctrl)
	d, se := a.mean-b.mean, math.Hypot(a.se, b.se)
	if a.n < 100 || b.n < 100 || math.Abs(d-math.Log(want)) > 4*se {
		t.Errorf("%s: ratio %.3f (n %d and %d), want %.2f ± %.1f %%", what, math.Exp(d), a.n, b.n, want, 400*se)
	}
	t.Logf("%s: ratio %.3f (n %d and %d)", what, math.Exp(d), a.n, b.n)
}

// binomialWithin checks a share k/n against p within four standard errors.
func binomialWithin(t *testing.T, what string, k, n int, p float64) {
	t.Helper()
	sd := math.Sqrt(p * (1 - p) / float64(n))
	if got := float64(k) / float64(n); n < 100 || math.Abs(got-p) > 4*sd {
		t.Errorf("%s: %d of %d = %.4f, want %.4f ± %.4f", what, k, n, got, p, 4*sd)
	}
}

// The canary and the flag experiment as emitted, at 6 requests/s (about
// 10 000 storefront requests during the canary, 45 000 checkout requests):
// the canary serves 5 % of storefront's production requests while it runs
// and none before or after, 1.5× slower; checkout's requests each evaluate
// the flag once, in a child span, even with no other child spans; "on" gets
// half of them, is 20 % faster, answers 40 % smaller and fails 1.5 points
// more often; every request has a log-normal response size around its
// route's median, and a request size when it has a body.
func TestCanaryAndFlagEffects(t *testing.T) {
	p, err := plan.New(plan.Config{Seed: 3, Start: testEnd.Add(-2 * time.Hour), End: testEnd, Staging: true})
	if err != nil {
		t.Fatal(err)
	}
	a := &requestTally{t: t, flags: map[trace.SpanID]flagSeen{}}
	st := &stats{}
	const rps = 6
	e, err := newEmitter(p, rps, 1, a, st)
	if err != nil {
		t.Fatal(err)
	}
	e.childFrac = 0
	c, w := find(p.Deployments, plan.Production, plan.Canary), find(p.Deployments, plan.Production, plan.CanaryWithdrawn)
	if len(c) != 1 || len(w) != 1 {
		t.Fatalf("canaries %+v, withdrawals %+v", c, w)
	}
	canary, stable, from, until := c[0].Version, c[0].PreviousVersion, c[0].RolloutEnd, w[0].Time()
	storefront, checkout := c[0].UnitKey, plan.UnitKey{Service: "checkout", Environment: plan.Production}
	for _, u := range e.units {
		start := p.Start
		switch u.key {
		case storefront:
			start = c[0].RolloutStart.Add(-10 * time.Minute)
		case checkout:
		default:
			continue
		}
		for at := start.Add(u.gap(rps)); at.Before(p.End); at = at.Add(u.gap(rps * p.RateFactor(u.key, at))) {
			e.request(u, at)
		}
	}
	e.shutdownTracers(context.Background())
	if len(a.flags) != 0 {
		t.Errorf("%d flag spans without their request", len(a.flags))
	}

	var (
		inCanary, canaryReqs, flagged, on int
		latency                           = map[string][]float64{} // version or variant → latency / route median
		size                              = map[string][]float64{} // variant → response size / route median
		errs                              = map[string][2]int{}
		routeSize                         = map[string][]float64{} // control / unflagged, successful: bytes
		errSize                           []float64
	)
	medians := map[string]*plan.Route{}
	for _, s := range p.Services {
		for i := range s.Routes {
			r := &s.Routes[i]
			medians[s.Name+" "+r.Method+" "+r.Path] = r
		}
	}
	for _, r := range a.reqs {
		route := medians[r.unit.Service+" "+r.method+" "+r.route]
		if route == nil || r.resp <= 0 || (r.req > 0) != (route.ReqBytes > 0) || (r.req < 0) != (route.ReqBytes == 0) {
			t.Fatalf("%s %s %s: response %d bytes, request %d", r.unit, r.method, r.route, r.resp, r.req)
		}
		norm := r.ms / route.MedianMS
		switch r.unit {
		case storefront:
			if r.start.Before(c[0].RolloutStart) || !r.start.Before(until) {
				if r.version != stable {
					t.Fatalf("%s served by %s at %s, outside the canary %s..%s", r.unit, r.version, r.start, c[0].RolloutStart, until)
				}
			} else if !r.start.Before(from) {
				inCanary++
				if r.version == canary {
					canaryReqs++
				}
				latency[r.version] = append(latency[r.version], norm)
			}
			if r.variant != "" {
				t.Fatalf("storefront request with flag variant %q", r.variant)
			}
		case checkout:
			if r.variant == "" {
				t.Fatalf("checkout request at %s without its flag span", r.start)
			}
			flagged++
			if r.variant == "on" {
				on++
			}
			latency[r.variant] = append(latency[r.variant], norm)
			n := errs[r.variant]
			n[1]++
			if r.status >= 500 {
				n[0]++
			}
			errs[r.variant] = n
		}
		switch {
		case r.status >= 400:
			errSize = append(errSize, float64(r.resp))
		case r.unit == checkout:
			size[r.variant] = append(size[r.variant], float64(r.resp)/route.RespBytes)
			if r.variant == "off" {
				routeSize[r.route] = append(routeSize[r.route], float64(r.resp))
			}
		default:
			routeSize[r.route] = append(routeSize[r.route], float64(r.resp))
		}
	}
	if want := int64(len(a.reqs) + flagged); st.spans.Load() != want || st.requests.Load() != int64(len(a.reqs)) {
		t.Errorf("%d spans counted for %d requests, %d of them flagged", st.spans.Load(), len(a.reqs), flagged)
	}

	binomialWithin(t, "canary share", canaryReqs, inCanary, plan.CanaryShare)
	ratioWithin(t, "canary latency", latency[canary], latency[stable], plan.CanaryLatencyFactor)

	binomialWithin(t, "flag \"on\" share", on, flagged, 0.5)
	ratioWithin(t, "flag latency", latency["on"], latency["off"], plan.FlagLatencyFactor)
	ratioWithin(t, "flag response size", size["on"], size["off"], plan.FlagResponseSizeFactor)
	eOn, eOff := errs["on"], errs["off"]
	pOn, pOff := float64(eOn[0])/float64(eOn[1]), float64(eOff[0])/float64(eOff[1])
	se := math.Sqrt(pOn*(1-pOn)/float64(eOn[1]) + pOff*(1-pOff)/float64(eOff[1]))
	if d := pOn - pOff; math.Abs(d-plan.FlagErrorRateIncrease) > 4*se {
		t.Errorf("flag 5xx: on %.4f, off %.4f, want +%.3f ± %.4f", pOn, pOff, plan.FlagErrorRateIncrease, 4*se)
	}

	// Sizes: log-normal around each route's median (the sample's geometric
	// mean within 4 standard errors of it), error answers short.
	for _, s := range []string{"storefront", "checkout"} {
		for _, r := range p.Service(s).Routes {
			ls := logOf(routeSize[r.Path])
			if ls.n < 200 || math.Abs(ls.mean-math.Log(r.RespBytes)) > 4*ls.se {
				t.Errorf("%s %s %s: response sizes around %.0f bytes (n %d), want %.0f", s, r.Method, r.Path, math.Exp(ls.mean), ls.n, r.RespBytes)
			}
		}
	}
	if ls := logOf(errSize); ls.n < 100 || math.Abs(ls.mean-math.Log(errBodyBytes)) > 4*ls.se {
		t.Errorf("error bodies around %.0f bytes (n %d), want %d", math.Exp(ls.mean), ls.n, errBodyBytes)
	}
	t.Logf("%d requests: canary %d of %d, flag on %d of %d", len(a.reqs), canaryReqs, inCanary, on, flagged)
}
