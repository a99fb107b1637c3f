package main

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/changelens/changelens/queryapi/experimentspec"
)

// storyTally measures the story from the spans as they end, without
// keeping them (a day of loads is a few hundred thousand spans).
type storyTally struct {
	mu            sync.Mutex
	userVariant   map[string]string
	switched      int
	loads         [2][]float64 // ms per variant
	sessions      [2]map[string]bool
	crashed       [2]map[string]bool
	checkoutSess  map[string]bool
	bodies        [2][2]float64 // server spans: Σ bytes, n
	served        map[string]int64
	clientSpans   map[trace.SpanID]trace.TraceID
	serverParents map[trace.SpanID]trace.TraceID
	badServer     int
	flaglessSrv   int
	other         []string
}

func newTally() *storyTally {
	t := &storyTally{userVariant: map[string]string{}, served: map[string]int64{},
		clientSpans: map[trace.SpanID]trace.TraceID{}, serverParents: map[trace.SpanID]trace.TraceID{}, checkoutSess: map[string]bool{}}
	for v := range 2 {
		t.sessions[v], t.crashed[v] = map[string]bool{}, map[string]bool{}
	}
	return t
}

func attrOf(kvs []attribute.KeyValue, k string) (attribute.Value, bool) {
	for _, kv := range kvs {
		if string(kv.Key) == k {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

func variantIndex(name string) int {
	if name == variantGraphQL {
		return 1
	}
	return 0
}

func flagVariant(s sdktrace.ReadOnlySpan) string {
	for _, ev := range s.Events() {
		if ev.Name != flagEvent {
			continue
		}
		if k, _ := attrOf(ev.Attributes, "feature_flag.key"); k.AsString() != storyFlag {
			continue
		}
		v, _ := attrOf(ev.Attributes, "feature_flag.result.variant")
		return v.AsString()
	}
	return ""
}

func (t *storyTally) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (t *storyTally) Shutdown(context.Context) error                  { return nil }
func (t *storyTally) ForceFlush(context.Context) error                { return nil }

func (t *storyTally) OnEnd(s sdktrace.ReadOnlySpan) {
	t.mu.Lock()
	defer t.mu.Unlock()
	res := s.Resource().Attributes()
	svc, _ := attrOf(res, "service.name")
	attrs := s.Attributes()
	switch {
	case svc.AsString() == appService && s.Name() == screenSpan:
		lang, _ := attrOf(res, "telemetry.sdk.language")
		user, _ := attrOf(attrs, "user.id")
		sess, _ := attrOf(attrs, "session.id")
		variant := flagVariant(s)
		if lang.AsString() != "swift" || user.AsString() == "" || sess.AsString() == "" || variant == "" || s.Parent().IsValid() {
			t.other = append(t.other, "screen span without its attributes")
			return
		}
		if prev, ok := t.userVariant[user.AsString()]; ok && prev != variant {
			t.switched++
		}
		t.userVariant[user.AsString()] = variant
		v := variantIndex(variant)
		t.loads[v] = append(t.loads[v], float64(s.EndTime().Sub(s.StartTime()))/float64(time.Millisecond))
		t.sessions[v][sess.AsString()] = true
		for _, ev := range s.Events() {
			if esc, ok := attrOf(ev.Attributes, "exception.escaped"); ev.Name == "exception" && ok && esc.AsBool() {
				t.crashed[v][sess.AsString()] = true
			}
		}
	case svc.AsString() == appService && s.Name() == checkoutSpan:
		sess, _ := attrOf(attrs, "session.id")
		t.checkoutSess[sess.AsString()] = true
	case svc.AsString() == appService && s.SpanKind() == trace.SpanKindClient:
		t.clientSpans[s.SpanContext().SpanID()] = s.SpanContext().TraceID()
	case svc.AsString() == ordersService && s.SpanKind() == trace.SpanKindServer:
		version, _ := attrOf(res, "service.version")
		inst, _ := attrOf(res, "service.instance.id")
		// The client span ends after its server span: checked at the end.
		t.serverParents[s.Parent().SpanID()] = s.SpanContext().TraceID()
		if inst.AsString() == "" {
			t.badServer++
		}
		variant := flagVariant(s)
		if variant == "" {
			t.flaglessSrv++
		}
		// The version serving a variant is the story's routing rule.
		if (variant == variantGraphQL) != (version.AsString() == ordersGraphQLVersion) {
			t.badServer++
		}
		size, _ := attrOf(attrs, "http.response.body.size")
		v := variantIndex(variant)
		t.bodies[v][0] += float64(size.AsInt64())
		t.bodies[v][1]++
		t.served[inst.AsString()]++
	default:
		t.other = append(t.other, svc.AsString()+" "+s.Name())
	}
}

func quantile(xs []float64, q float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[int(q*float64(len(s)-1))]
}

func TestOrderStory(t *testing.T) {
	start := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC) // a Monday
	end := start.Add(12 * time.Hour)
	tally := newTally()
	type point struct {
		version string
		start   time.Time
		at      time.Time
		cpu     float64
	}
	last := map[string]point{}
	var exports int
	var sinkErr string
	sink := func(_ context.Context, rm *metricdata.ResourceMetrics) error {
		exports++
		inst, _ := rm.Resource.Set().Value("service.instance.id")
		version, _ := rm.Resource.Set().Value("service.version")
		for _, m := range rm.ScopeMetrics[0].Metrics {
			if m.Name != "process.cpu.time" {
				continue
			}
			sum, ok := m.Data.(metricdata.Sum[float64])
			if !ok || sum.Temporality != metricdata.CumulativeTemporality || !sum.IsMonotonic {
				sinkErr = "process.cpu.time is not a cumulative monotonic sum"
				continue
			}
			p := point{version: version.AsString()}
			for _, dp := range sum.DataPoints {
				p.cpu += dp.Value
				p.start, p.at = dp.StartTime, dp.Time
			}
			if prev, ok := last[inst.AsString()]; ok && (p.cpu < prev.cpu || !p.start.Equal(prev.start) || !p.at.After(prev.at)) {
				sinkErr = "a cumulative series went back or changed its start"
			}
			last[inst.AsString()] = p
		}
		return nil
	}
	st := &stats{}
	s := newOrderStory(7, start, 2, defaultStory, tally, sink, st)
	for t0 := start; t0.Before(end); t0 = t0.Add(time.Minute) {
		s.emit(context.Background(), t0, t0.Add(time.Minute))
	}
	s.shutdown(context.Background())

	if len(tally.other) > 0 || tally.badServer > 0 || tally.flaglessSrv > 0 || sinkErr != "" {
		t.Fatalf("unexpected spans %v, %d bad and %d flagless server spans; metrics: %s", tally.other[:min(5, len(tally.other))], tally.badServer, tally.flaglessSrv, sinkErr)
	}
	for sid, tid := range tally.serverParents {
		if tally.clientSpans[sid] != tid {
			t.Fatalf("a server span's parent is not the app's client span of its trace")
		}
	}
	if len(tally.serverParents) != len(tally.clientSpans) {
		t.Errorf("%d server spans under %d client spans", len(tally.serverParents), len(tally.clientSpans))
	}
	if tally.switched > 0 {
		t.Errorf("%d loads changed their user's variant: the split must be stable per user", tally.switched)
	}
	graphqlUsers := 0
	for _, v := range tally.userVariant {
		if v == variantGraphQL {
			graphqlUsers++
		}
	}
	userShare := float64(graphqlUsers) / float64(len(tally.userVariant))
	loadShare := float64(len(tally.loads[1])) / float64(len(tally.loads[0])+len(tally.loads[1]))
	t.Logf("users %d (graphql %.3f), loads %d (graphql %.3f)", len(tally.userVariant), userShare, len(tally.loads[0])+len(tally.loads[1]), loadShare)
	if math.Abs(userShare-0.5) > 0.03 || math.Abs(loadShare-0.5) > 0.03 {
		t.Errorf("split: users %.3f, loads %.3f graphql; want about 0.5", userShare, loadShare)
	}

	p75 := [2]float64{quantile(tally.loads[0], 0.75), quantile(tally.loads[1], 0.75)}
	p50 := [2]float64{quantile(tally.loads[0], 0.5), quantile(tally.loads[1], 0.5)}
	t.Logf("screen load p50 %.0f → %.0f ms, p75 %.0f → %.0f ms", p50[0], p50[1], p75[0], p75[1])
	for _, d := range []float64{p50[0] - p50[1], p75[0] - p75[1]} {
		if d < 160 || d > 240 {
			t.Errorf("graphql screen loads faster by %.0f ms, want about 200", d)
		}
	}

	sizeRatio := (tally.bodies[1][0] / tally.bodies[1][1]) / (tally.bodies[0][0] / tally.bodies[0][1])
	t.Logf("mean response body graphql/rest %.3f", sizeRatio)
	if sizeRatio < 0.55 || sizeRatio > 0.65 {
		t.Errorf("graphql bodies are %.2f of REST's, want about 0.6", sizeRatio)
	}

	for v, name := range []string{variantREST, variantGraphQL} {
		n := float64(len(tally.sessions[v]))
		crash := float64(len(tally.crashed[v])) / n
		conv := 0
		for sess := range tally.sessions[v] {
			if tally.checkoutSess[sess] {
				conv++
			}
		}
		t.Logf("%s: %d sessions, crash rate %.4f, conversion %.4f", name, int(n), crash, float64(conv)/n)
		if crash < 0.0035 || crash > 0.0065 {
			t.Errorf("%s crash rate %.4f of sessions, want about 0.005", name, crash)
		}
		if v == 1 {
			c0 := 0
			for sess := range tally.sessions[0] {
				if tally.checkoutSess[sess] {
					c0++
				}
			}
			r := (float64(conv) / n) / (float64(c0) / float64(len(tally.sessions[0])))
			if r < 0.93 || r > 1.07 {
				t.Errorf("conversion graphql/rest %.3f, want equal", r)
			}
		}
	}

	// CPU per request per version, as the API will compute it: the last
	// cumulative value of each instance over the requests it served.
	var cpu, reqs [2]float64
	for inst, p := range last {
		if !p.at.Equal(end) {
			t.Errorf("%s: last point at %s, want %s", inst, p.at, end)
		}
		v := 0
		if p.version == ordersGraphQLVersion {
			v = 1
		}
		cpu[v] += p.cpu
		reqs[v] += float64(tally.served[inst])
	}
	if len(last) != 2*ordersInstances || exports != 2*ordersInstances*12*60 {
		t.Errorf("%d instances, %d exports; want %d and one per instance and minute", len(last), exports, 2*ordersInstances)
	}
	perReq := [2]float64{cpu[0] / reqs[0] * 1000, cpu[1] / reqs[1] * 1000}
	t.Logf("CPU ms per request: rest %.2f, graphql %.2f (×%.3f)", perReq[0], perReq[1], perReq[1]/perReq[0])
	if r := perReq[1] / perReq[0]; r < 1.9 || r > 2.1 {
		t.Errorf("graphql CPU per request ×%.3f of REST's, want 2", r)
	}
}

// A seed gives the same story: the report of a rerun is comparable.
func TestOrderStoryIsSeeded(t *testing.T) {
	start := time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)
	run := func() []string {
		var names []string
		rec := &recordNames{out: &names}
		s := newOrderStory(11, start, 1, defaultStory, rec, nil, &stats{})
		s.emit(context.Background(), start, start.Add(10*time.Minute))
		return names
	}
	a, b := run(), run()
	if len(a) == 0 || len(a) != len(b) {
		t.Fatalf("%d then %d spans", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("span %d: %s then %s", i, a[i], b[i])
		}
	}
}

type recordNames struct{ out *[]string }

func (r *recordNames) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (r *recordNames) Shutdown(context.Context) error                  { return nil }
func (r *recordNames) ForceFlush(context.Context) error                { return nil }
func (r *recordNames) OnEnd(s sdktrace.ReadOnlySpan) {
	*r.out = append(*r.out, s.SpanContext().TraceID().String()+s.Name()+s.EndTime().String())
}

// The definitions make run applies name what the story emits: a renamed
// flag or version would leave the report empty.
func TestStoryExperimentDefinitions(t *testing.T) {
	files, _ := filepath.Glob("../../deploy/local/experiments/*.yaml")
	if len(files) != 2 {
		t.Fatalf("definitions %v, want the app's and the backend's", files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s, err := experimentspec.Parse(b)
		if err == nil {
			err = s.Validate()
		}
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var want []string
		switch s.ID {
		case "order-screen-api":
			if s.Unit.Service != appService || s.Dimension != "flag:"+storyFlag || s.ConversionOutcome != checkoutSpan ||
				len(s.LoadOperations) != 1 || s.LoadOperations[0] != screenSpan || s.Randomization() != experimentspec.UnitUser {
				t.Errorf("%s: %+v does not match the story", f, s)
			}
			want = []string{variantREST, variantGraphQL}
		case "order-api-backend":
			if s.Unit.Service != ordersService || s.Dimension != "version" {
				t.Errorf("%s: %+v does not match the story", f, s)
			}
			want = []string{ordersRESTVersion, ordersGraphQLVersion}
		default:
			t.Fatalf("%s: unexpected experiment %q", f, s.ID)
		}
		if s.Unit.Environment != "production" || len(s.Variants) != 2 || s.Variants[0].Name != want[0] || !s.Variants[0].Control || s.Variants[1].Name != want[1] {
			t.Errorf("%s: variants %+v, want control %s and %s", f, s.Variants, want[0], want[1])
		}
	}
}
