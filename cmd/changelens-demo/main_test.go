package main

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math"
	"net"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/collector/processor/processortest"
	"google.golang.org/grpc"

	"github.com/changelens/changelens/cmd/changelens-demo/plan"
	"github.com/changelens/changelens/internal/eventspan"
	"github.com/changelens/changelens/processor/changelensprocessor"
	"github.com/changelens/changelens/queryapi/inference"
)

// sink is a real OTLP/gRPC trace server keeping what it receives, in order.
type sink struct {
	ptraceotlp.UnimplementedGRPCServer
	mu      sync.Mutex
	batches []ptrace.Traces
}

func (s *sink) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	td := ptrace.NewTraces()
	req.Traces().CopyTo(td)
	s.mu.Lock()
	s.batches = append(s.batches, td)
	s.mu.Unlock()
	return ptraceotlp.NewExportResponse(), nil
}

func (s *sink) received() []ptrace.Traces {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.batches)
}

func startSink(t *testing.T) (string, *sink) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{}
	srv := grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(srv, s)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String(), s
}

// rec is one received span with its resource.
type rec struct {
	service, version, env string
	span                  ptrace.Span
}

func flatten(batches []ptrace.Traces) []rec {
	var out []rec
	for _, td := range batches {
		for _, rs := range td.ResourceSpans().All() {
			ra := rs.Resource().Attributes()
			r := rec{service: str(ra, "service.name"), version: str(ra, "service.version"), env: str(ra, "deployment.environment.name")}
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					r.span = sp
					out = append(out, r)
				}
			}
		}
	}
	return out
}

func str(m pcommon.Map, k string) string {
	if v, ok := m.Get(k); ok {
		return v.AsString()
	}
	return ""
}

// A Wednesday morning: bad release, rollback, error regression, fix,
// improvement and failed deploy all fall inside the two hours.
var testEnd = time.Date(2026, 3, 11, 11, 0, 0, 0, time.UTC)

func testConfig(endpoint string) config {
	return config{endpoint: endpoint, seed: 3, backfill: 2 * time.Hour, end: testEnd, backfillOnly: true,
		rps: 0.5, backfillKids: 1, weight: 1, staging: true, queueSize: 1024, batchSize: 256, exportRetry: time.Minute, now: time.Now}
}

func runDemo(t *testing.T, cfg config) (*result, string) {
	t.Helper()
	var out, errw bytes.Buffer
	res, err := run(context.Background(), cfg, &out, &errw)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, errw.String())
	}
	return res, out.String()
}

func TestEmission(t *testing.T) {
	addr, s := startSink(t)
	cfg := testConfig(addr)
	res, summary := runDemo(t, cfg)
	batches := s.received()
	all := flatten(batches)
	p := res.plan

	if res.failed != 0 || res.exported != res.spans || int64(len(all)) != res.spans {
		t.Fatalf("spans: %d generated, %d exported, %d failed, %d received", res.spans, res.exported, res.failed, len(all))
	}
	if !res.to.Equal(p.End) || res.interrupted {
		t.Errorf("emitted until %s, want %s", res.to, p.End)
	}

	services := map[string]bool{}
	for _, s := range p.Services {
		services[s.Name] = true
	}
	byID := map[pcommon.SpanID]rec{}
	for _, r := range all {
		byID[r.span.SpanID()] = r
	}
	type unitSpans struct {
		starts   []time.Time
		versions []string
	}
	server := map[plan.UnitKey]*unitSpans{}
	var deploys []rec
	durs := map[string][]float64{} // checkout production latency by version
	errs := map[string][2]int{}
	flagSpans := map[pcommon.SpanID]int{} // by parent
	for _, r := range all {
		sp := r.span
		start, end := sp.StartTimestamp().AsTime(), sp.EndTimestamp().AsTime()
		if start.Before(p.Start.Add(-time.Hour)) || end.After(p.End.Add(time.Minute)) || end.Before(start) {
			t.Fatalf("span %s at %s..%s outside the period", sp.Name(), start, end)
		}
		if r.service == ciServiceName {
			if sp.ParentSpanID().IsEmpty() {
				deploys = append(deploys, r)
			} else if _, ok := byID[sp.ParentSpanID()]; !ok {
				t.Errorf("CI span %q without its parent", sp.Name())
			}
			continue
		}
		if !services[r.service] || r.version == "" || (r.env != plan.Production && r.env != plan.Staging) {
			t.Fatalf("resource service.name=%q service.version=%q deployment.environment.name=%q", r.service, r.version, r.env)
		}
		attrs := sp.Attributes()
		switch sp.Kind() {
		case ptrace.SpanKindServer:
			method, route := str(attrs, "http.request.method"), str(attrs, "http.route")
			code, ok := attrs.Get("http.response.status_code")
			if method == "" || route == "" || !ok || code.Type() != pcommon.ValueTypeInt {
				t.Fatalf("SERVER span %q without HTTP attributes: %v", sp.Name(), attrs.AsRaw())
			}
			if sp.Name() != method+" "+route || !sp.ParentSpanID().IsEmpty() {
				t.Errorf("SERVER span %q (route %s %s) parent %s", sp.Name(), method, route, sp.ParentSpanID())
			}
			if (code.Int() >= 500) != (sp.Status().Code() == ptrace.StatusCodeError) {
				t.Errorf("status %d with span status %s", code.Int(), sp.Status().Code())
			}
			size, ok := attrs.Get("http.response.body.size")
			if _, req := attrs.Get("http.request.body.size"); !ok || size.Type() != pcommon.ValueTypeInt || size.Int() <= 0 || req != (method == "POST") {
				t.Fatalf("SERVER span %q body sizes: %v", sp.Name(), attrs.AsRaw())
			}
			u := plan.UnitKey{Service: r.service, Environment: r.env}
			if server[u] == nil {
				server[u] = &unitSpans{}
			}
			server[u].starts = append(server[u].starts, start)
			server[u].versions = append(server[u].versions, r.version)
			// Every request is served by a version the plan runs at that instant.
			if m := p.Mix(u, start); r.version != m.To && r.version != m.From {
				t.Fatalf("%s served by %s at %s; plan: %+v", u, r.version, start, m)
			}
			if u == (plan.UnitKey{Service: "checkout", Environment: plan.Production}) {
				durs[r.version] = append(durs[r.version], float64(end.Sub(start)))
				e := errs[r.version]
				e[0]++
				if code.Int() >= 500 {
					e[1]++
				}
				errs[r.version] = e
			}
		case ptrace.SpanKindClient, ptrace.SpanKindInternal:
			parent, ok := byID[sp.ParentSpanID()]
			if !ok || parent.span.TraceID() != sp.TraceID() || parent.version != r.version {
				t.Fatalf("child %q without its parent", sp.Name())
			}
			ps, pe := parent.span.StartTimestamp().AsTime(), parent.span.EndTimestamp().AsTime()
			if start.Before(ps) || end.After(pe) {
				t.Errorf("child %q %s..%s outside its parent %s..%s", sp.Name(), start, end, ps, pe)
			}
			if sp.Kind() == ptrace.SpanKindClient && str(attrs, "db.system.name") == "" && str(attrs, "http.request.method") == "" {
				t.Errorf("CLIENT span %q is neither a DB nor an HTTP call: %v", sp.Name(), attrs.AsRaw())
			}
			if sp.Name() == flagSpan {
				ev := sp.Events()
				if sp.Kind() != ptrace.SpanKindInternal || ev.Len() != 1 || ev.At(0).Name() != flagEvent ||
					str(ev.At(0).Attributes(), "feature_flag.key") != plan.FlagKey || !slices.Contains([]string{"on", "off"}, str(ev.At(0).Attributes(), "feature_flag.result.variant")) {
					t.Fatalf("flag span %s with events %d", sp.Kind(), ev.Len())
				}
				flagSpans[sp.ParentSpanID()]++
			}
		default:
			t.Errorf("unexpected span kind %s", sp.Kind())
		}
	}
	if len(server) != len(p.Units) {
		t.Errorf("requests for %d units, want %d", len(server), len(p.Units))
	}
	// One flag evaluation per checkout request in production, none elsewhere.
	for _, r := range all {
		if r.span.Kind() != ptrace.SpanKindServer {
			if r.span.Name() != flagSpan && r.span.Events().Len() != 0 {
				t.Errorf("%s span %q has events", r.span.Kind(), r.span.Name())
			}
			continue
		}
		want := 0
		if r.service == "checkout" && r.env == plan.Production {
			want = 1
		}
		if n := flagSpans[r.span.SpanID()]; n != want || r.span.Events().Len() != 0 {
			t.Fatalf("%s/%s request with %d flag spans and %d events", r.service, r.env, n, r.span.Events().Len())
		}
	}

	// Deploy spans: one per explicit deployment in the period, as planned.
	want := map[string]plan.Deployment{}
	for _, d := range p.Deployments {
		if d.Explicit {
			want[d.RunID] = d
		}
	}
	if len(deploys) != len(want) || len(want) < 5 {
		t.Errorf("%d deploy spans, %d explicit deployments planned", len(deploys), len(want))
	}
	hex40 := regexp.MustCompile(`^[0-9a-f]{40}$`)
	for _, r := range deploys {
		a := r.span.Attributes()
		d, ok := want[str(a, "cicd.pipeline.run.id")]
		if !ok {
			t.Fatalf("unplanned deploy span %v", a.AsRaw())
		}
		result := "success"
		if d.Failed() {
			result = "failure"
		}
		for k, v := range map[string]string{
			"cicd.pipeline.task.type": "deploy", "cicd.pipeline.task.run.result": result, "cicd.pipeline.name": d.Pipeline,
			"service.name": d.Service, "service.version": d.Version, "deployment.environment.name": d.Environment,
			"vcs.ref.head.revision": d.Commit, "deployment.id": d.DeploymentID,
		} {
			if got := str(a, k); got != v {
				t.Errorf("deploy span %s: %s=%q, want %q", d.RunID, k, got, v)
			}
		}
		if r.span.Name() != "deploy "+d.Service || !hex40.MatchString(str(a, "vcs.ref.head.revision")) {
			t.Errorf("deploy span %q", r.span.Name())
		}
		ct, err := time.Parse(time.RFC3339, str(a, "changelens.commit.time"))
		if err != nil || !ct.Equal(d.CommitTime) || !ct.Before(r.span.StartTimestamp().AsTime()) {
			t.Errorf("deploy span %s: commit time %q (%v), planned %s", d.RunID, str(a, "changelens.commit.time"), err, d.CommitTime)
		}
		if !r.span.StartTimestamp().AsTime().Equal(d.CIStart) || !r.span.EndTimestamp().AsTime().Equal(d.CIEnd) {
			t.Errorf("deploy span %s: %s..%s, planned %s..%s", d.RunID, r.span.StartTimestamp(), r.span.EndTimestamp(), d.CIStart, d.CIEnd)
		}
	}

	// Version changes happen at the planned times.
	for _, u := range p.Units {
		us := server[u]
		if us == nil {
			continue
		}
		idx := make([]int, len(us.starts))
		for i := range idx {
			idx[i] = i
		}
		sort.Slice(idx, func(a, b int) bool { return us.starts[idx[a]].Before(us.starts[idx[b]]) })
		if v := us.versions[idx[0]]; v != p.Baseline(u) {
			t.Errorf("%s: first version %s, baseline %s", u, v, p.Baseline(u))
		}
		for _, d := range p.Timeline(u) {
			var firstNew time.Time
			for _, i := range idx {
				if us.versions[i] == d.Version && !us.starts[i].Before(d.RolloutStart) {
					firstNew = us.starts[i]
					break
				}
			}
			if firstNew.IsZero() || firstNew.After(d.RolloutEnd.Add(3*time.Minute)) {
				t.Errorf("%s: %s planned at %s, first seen %s", u, d.Version, d.RolloutStart, firstNew)
			}
		}
	}

	// The bad release is slower and fails more than the version it replaced.
	bad := find(p.Deployments, plan.Production, plan.BadRelease)
	if len(bad) != 1 {
		t.Fatalf("bad releases: %+v", bad)
	}
	old, nw := durs[bad[0].PreviousVersion], durs[bad[0].Version]
	if len(nw) < 200 {
		t.Fatalf("only %d requests of the bad release", len(nw))
	}
	if r := p95(nw) / p95(old); r < 1.9 || r > 3.3 {
		t.Errorf("bad release p95 ratio %.2f", r)
	}
	eo, en := errs[bad[0].PreviousVersion], errs[bad[0].Version]
	if ro, rn := float64(eo[1])/float64(eo[0]), float64(en[1])/float64(en[0]); rn-ro < 0.015 {
		t.Errorf("bad release error rate %.3f vs %.3f", rn, ro)
	}

	for _, want := range []string{"BAD RELEASE", "ROLLBACK", "ERROR REGRESSION", "FAILED DEPLOY", "CANARY:", "CANARY WITHDRAWN", "explicit", "inferred", bad[0].Version,
		"dimension=feature_flag.new-checkout-flow&control=off&treatment=on&expected_treatment_share=0.5", "dimension=version&control="} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, summary)
		}
	}
	t.Logf("%d spans in %d batches\n%s", len(all), len(batches), summary)

	// Same seed and period, same spans (IDs and timestamps included).
	addr2, s2 := startSink(t)
	runDemo(t, testConfig(addr2))
	if a, b := fingerprint(batches), fingerprint(s2.received()); !slices.Equal(a, b) {
		t.Errorf("two runs with the same seed differ (%d vs %d spans)", len(a), len(b))
	}
}

func find(ds []plan.Deployment, env string, k plan.Kind) []plan.Deployment {
	var out []plan.Deployment
	for _, d := range ds {
		if d.Environment == env && d.Kind == k {
			out = append(out, d)
		}
	}
	return out
}

func p95(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[int(math.Ceil(0.95*float64(len(s))))-1]
}

func fingerprint(batches []ptrace.Traces) []string {
	var out []string
	for _, r := range flatten(batches) {
		sp := r.span
		out = append(out, fmt.Sprintf("%s %s %s %s %d %d %s", r.service, r.version, sp.TraceID(), sp.SpanID(), sp.StartTimestamp(), sp.EndTimestamp(), sp.Name()))
	}
	sort.Strings(out)
	return out
}

func TestWeightTraceState(t *testing.T) {
	for _, w := range []float64{2, 4, 8, 10, 3, 100} {
		ts, err := weightTraceState(w)
		if err != nil {
			t.Fatal(err)
		}
		w3c, err := sampling.NewW3CTraceState(ts.String())
		if err != nil {
			t.Fatalf("weight %v: %q: %v", w, ts.String(), err)
		}
		if got := w3c.OTelValue().AdjustedCount(); math.Abs(got-w)/w > 1e-9 {
			t.Errorf("weight %v: %q has adjusted count %v", w, ts.String(), got)
		}
	}
	if ts, _ := weightTraceState(2); ts.String() != "ot=th:8" {
		t.Errorf("weight 2: %q", ts.String())
	}
	if ts, _ := weightTraceState(1); ts.Len() != 0 {
		t.Errorf("weight 1: %q", ts.String())
	}
	for _, w := range []float64{0, 0.5, -1, math.NaN()} {
		if _, err := weightTraceState(w); err == nil {
			t.Errorf("weight %v accepted", w)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"14d": 14 * 24 * time.Hour, "1d12h": 36 * time.Hour, "36h": 36 * time.Hour, "90m": 90 * time.Minute, "0": 0, "0.5d": 12 * time.Hour,
	} {
		if got, err := parseDuration(in); err != nil || got != want {
			t.Errorf("%q: %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "d", "14", "xd", "-1d", "1d2"} {
		if _, err := parseDuration(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
	if s := formatDuration(2*24*time.Hour + 3*time.Hour + 5*time.Minute); s != "2d03h" {
		t.Errorf("format: %s", s)
	}
}

func TestFlags(t *testing.T) {
	var buf bytes.Buffer
	cfg, err := parseFlags([]string{"--backfill", "3d", "--rps", "5", "--end", "2026-03-11T11:00:00Z", "--seed", "9"}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.backfill != 72*time.Hour || cfg.rps != 5 || !cfg.backfillOnly || cfg.seed != 9 || !cfg.end.Equal(testEnd) || cfg.endpoint != "localhost:4317" {
		t.Errorf("%+v", cfg)
	}
	for _, args := range [][]string{{"--rps", "0"}, {"--backfill", "-1d"}, {"--weight", "0.5"}, {"--end", "yesterday"}, {"--backfill-only", "--backfill", "0"}, {"stray"}} {
		if _, err := parseFlags(args, &buf); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

// What the demo sends, through the changelens processor and the inference
// rule, gives exactly the planned deployments: explicit ones as events at
// their CI span's end with their commit; every planned change as an inferred
// deployment at its rollout (for explicit ones within the merge window of the
// CI span, so the API merges them), the rollback and the canary's withdrawal
// (at the canary's last request) as a version the unit ran before, the failed
// deploy as failed, and nothing during the rolling updates. Every latency
// event has its body sizes, and checkout's in production their flag variant.
func TestProcessorFindsThePlan(t *testing.T) {
	t.Run("scenario", func(t *testing.T) {
		addr, s := startSink(t)
		checkProcessor(t, testConfig(addr), s, false)
	})
	t.Run("three days at low rate", func(t *testing.T) {
		addr, s := startSink(t)
		cfg := testConfig(addr)
		cfg.backfill, cfg.rps, cfg.backfillKids, cfg.seed = 3*24*time.Hour, 0.1, 0, 11
		checkProcessor(t, cfg, s, true)
	})
}

// episodes folds latency events into each unit's version episodes as the
// store's SQL does: per minute the earliest and latest span start, runs split
// where the gap is reappear_after or more.
func episodes(lat map[[2]string]map[string]map[int64][2]int64, reappear time.Duration) map[[2]string][]inference.Episode {
	out := map[[2]string][]inference.Episode{}
	for unit, versions := range lat {
		for v, minutes := range versions {
			ms := slices.Sorted(maps.Keys(minutes))
			var cur *inference.Episode
			for _, m := range ms {
				fl := minutes[m]
				if cur != nil && fl[0]-cur.Last < int64(reappear) {
					cur.Last = fl[1]
					continue
				}
				out[unit] = append(out[unit], inference.Episode{Version: v, First: fl[0], Last: fl[1]})
				cur = &out[unit][len(out[unit])-1]
			}
		}
	}
	return out
}

// canaryGaps allows the canary's traffic to pause for reappear_after or
// more: at 0.1 requests/s a 5 % canary serves one request every few
// minutes. By the rule each pause is a withdrawal and a redeployment of the
// canary; both are then expected, one pair per pause.
func checkProcessor(t *testing.T, cfg config, s *sink, canaryGaps bool) {
	res, _ := runDemo(t, cfg)
	p := res.plan
	if len(p.Deployments) < 8 {
		t.Fatalf("only %d deployments planned", len(p.Deployments))
	}

	ctx := context.Background()
	f := changelensprocessor.NewFactory()
	out := new(consumertest.TracesSink)
	proc, err := f.CreateTraces(ctx, processortest.NewNopSettings(f.Type()), f.CreateDefaultConfig(), out)
	if err != nil {
		t.Fatal(err)
	}
	if err := proc.Start(ctx, componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	for _, td := range s.received() {
		if err := proc.ConsumeTraces(ctx, td); err != nil {
			t.Fatal(err)
		}
	}
	if err := proc.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	type event struct {
		attrs      map[string]any
		start, end time.Time
	}
	explicit := map[string]event{}
	lat := map[[2]string]map[string]map[int64][2]int64{}
	flagAttr := eventspan.AttrCohortPrefix + eventspan.DimensionFeatureFlag + plan.FlagKey
	flagged := map[[2]string][2]int{} // latency events with a variant, all
	variants := map[string]int{}
	for _, td := range out.AllTraces() {
		for _, rs := range td.ResourceSpans().All() {
			res := rs.Resource().Attributes().AsRaw()
			unit := [2]string{fmt.Sprint(res["service.name"]), fmt.Sprint(res["deployment.environment.name"])}
			version := fmt.Sprint(res["service.version"])
			for _, ss := range rs.ScopeSpans().All() {
				scope := eventspan.ScopeKind(ss.Scope())
				for _, sp := range ss.Spans().All() {
					kind := eventspan.EventKind(scope, sp)
					if kind != eventspan.KindLatency && kind != eventspan.KindDeployment {
						continue // call and flag evaluation events: not this test's
					}
					if kind == eventspan.KindLatency {
						a := sp.Attributes()
						if v, ok := a.Get(eventspan.AttrHTTPResponseBodySize); !ok || v.Int() <= 0 {
							t.Fatalf("%s latency event %q without a response size: %v", unit, sp.Name(), a.AsRaw())
						}
						if _, ok := a.Get(eventspan.AttrHTTPRequestBodySize); ok != strings.HasPrefix(sp.Name(), "POST ") {
							t.Fatalf("%s latency event %q: request size %v", unit, sp.Name(), a.AsRaw())
						}
						f := flagged[unit]
						if v, ok := a.Get(flagAttr); ok {
							f[0]++
							variants[v.AsString()]++
						}
						f[1]++
						flagged[unit] = f
						if lat[unit] == nil {
							lat[unit] = map[string]map[int64][2]int64{}
						}
						if lat[unit][version] == nil {
							lat[unit][version] = map[int64][2]int64{}
						}
						st := int64(sp.StartTimestamp())
						m := st / int64(time.Minute)
						fl, ok := lat[unit][version][m]
						if !ok {
							fl = [2]int64{st, st}
						}
						lat[unit][version][m] = [2]int64{min(fl[0], st), max(fl[1], st)}
						continue
					}
					a := sp.Attributes().AsRaw()
					k := fmt.Sprintf("%s/%s %s %s at %s", a["service.name"], a["deployment.environment.name"], a["service.version"], a[eventspan.AttrDeploymentStatus],
						sp.EndTimestamp().AsTime().UTC().Format(time.RFC3339Nano))
					if _, dup := explicit[k]; dup {
						t.Errorf("two deploy events %s", k)
					}
					explicit[k] = event{a, sp.StartTimestamp().AsTime(), sp.EndTimestamp().AsTime()}
				}
			}
		}
	}
	// The flag reaches the entry span from its child in the same export
	// batch; the few requests a batch boundary splits lose it.
	for unit, f := range flagged {
		want := 0
		if unit == [2]string{"checkout", plan.Production} {
			want = f[1]
		}
		if f[0] > want || f[0] < want*99/100 || (want > 0 && f[1] < 100) {
			t.Errorf("%s: %d of %d latency events carry %s", unit, f[0], f[1], flagAttr)
		}
		if want > 0 {
			t.Logf("%s: %d of %d latency events carry %s", unit, f[0], f[1], flagAttr)
		}
	}
	if n := variants["on"] + variants["off"]; n != flagged[[2]string{"checkout", plan.Production}][0] || math.Abs(float64(variants["on"])/float64(n)-0.5) > 4*math.Sqrt(0.25/float64(n)) {
		t.Errorf("variants %v", variants)
	}

	const reappear, mergeWindow = 10 * time.Minute, time.Hour
	eps := episodes(lat, reappear)
	inferred := map[string][]inference.VersionChange{} // in time order
	for unit, ue := range eps {
		for _, d := range inference.Infer(unit[0], unit[1], ue, reappear).Deployments {
			k := fmt.Sprintf("%s/%s %s→%s", unit[0], unit[1], d.PreviousVersion, d.Version)
			inferred[k] = append(inferred[k], d)
		}
	}
	// The canary's own episodes: the first begins its inferred deployment,
	// the last ends it (the withdrawal); any pause between two is a
	// withdrawal and a redeployment more.
	for _, c := range find(p.Deployments, plan.Production, plan.Canary) {
		var ce []inference.Episode
		for _, e := range eps[[2]string{c.Service, c.Environment}] {
			if e.Version == c.Version {
				ce = append(ce, e)
			}
		}
		slices.SortFunc(ce, func(a, b inference.Episode) int { return int(a.First - b.First) })
		if len(ce) == 0 || (!canaryGaps && len(ce) != 1) {
			t.Fatalf("canary %s %s: %d episodes", c.UnitKey, c.Version, len(ce))
		}
		up := fmt.Sprintf("%s %s→%s", c.UnitKey, c.PreviousVersion, c.Version)
		down := fmt.Sprintf("%s %s→%s", c.UnitKey, c.Version, c.PreviousVersion)
		if len(inferred[up]) != len(ce) || len(inferred[down]) != len(ce) {
			t.Fatalf("canary in %d episodes: %d deployments %s, %d %s", len(ce), len(inferred[up]), up, len(inferred[down]), down)
		}
		for i, e := range ce {
			if u, d := inferred[up][i], inferred[down][i]; u.At.UnixNano() != e.First || d.At.UnixNano() != e.Last || u.RanBefore != (i > 0) || !d.RanBefore {
				t.Errorf("canary episode %d (%s..%s): inferred %+v and %+v", i, time.Unix(0, e.First).UTC(), time.Unix(0, e.Last).UTC(), u, d)
			}
		}
		if len(ce) > 1 {
			t.Logf("canary %s %s: %d episodes (paused for %s or more)", c.UnitKey, c.Version, len(ce), reappear)
			inferred[up] = inferred[up][:1]
			inferred[down] = inferred[down][len(ce)-1:]
		}
	}
	for _, d := range p.Deployments {
		status := eventspan.StatusSucceeded
		if d.Failed() {
			status = eventspan.StatusFailed
		}
		if d.Explicit {
			k := fmt.Sprintf("%s/%s %s %s at %s", d.Service, d.Environment, d.Version, status, d.CIEnd.UTC().Format(time.RFC3339Nano))
			e, ok := explicit[k]
			if !ok {
				t.Errorf("planned deploy span %s (%s) has no event", k, d.Kind)
			} else if e.attrs[eventspan.AttrSource] != eventspan.SourceExplicit || !e.end.Equal(d.CIEnd) ||
				e.attrs[eventspan.AttrCommitSHA] != d.Commit || e.attrs[eventspan.AttrCommitTime] != d.CommitTime.UnixNano() {
				t.Errorf("%s: explicit event %v ending %s, planned %+v", k, e.attrs, e.end, d)
			}
			delete(explicit, k)
		}
		if d.Failed() {
			continue // a failed deploy changes no version
		}
		k := fmt.Sprintf("%s/%s %s→%s", d.Service, d.Environment, d.PreviousVersion, d.Version)
		if len(inferred[k]) == 0 {
			t.Errorf("planned %s (%s) not inferred", k, d.Kind)
			continue
		}
		e := inferred[k][0]
		if inferred[k] = inferred[k][1:]; len(inferred[k]) == 0 {
			delete(inferred, k)
		}
		// Inferred at the new version's first request, early in its
		// rollout; a withdrawn canary at its last request, just before.
		lo, hi := d.RolloutStart, d.RolloutEnd.Add(5*time.Minute)
		switch {
		case d.Kind == plan.CanaryWithdrawn:
			lo, hi = d.Time().Add(-5*time.Minute), d.Time()
		case d.Kind == plan.Canary && canaryGaps:
			hi = d.RolloutEnd.Add(time.Hour)
		}
		if e.At.Before(lo) || !e.At.Before(hi) {
			t.Errorf("%s (%s): inferred at %s, planned %s..%s", k, d.Kind, e.At, lo, hi)
		}
		if d.Explicit && (e.At.Sub(d.CIEnd) > mergeWindow || d.CIEnd.Sub(e.At) > mergeWindow) {
			t.Errorf("%s: inferred at %s, more than the merge window from its CI span's end %s", k, e.At, d.CIEnd)
		}
		if e.RanBefore != d.Kind.Restores() {
			t.Errorf("%s: ran before %v for a %s", k, e.RanBefore, d.Kind)
		}
	}
	for k := range explicit {
		t.Errorf("unplanned deploy event %s", k)
	}
	for k, ds := range inferred {
		t.Errorf("%d unplanned deployments %s", len(ds), k)
	}
}

// Live mode: after the backfill it follows the wall clock, never sends a
// span that starts in the future, and stops after --duration.
func TestLive(t *testing.T) {
	addr, s := startSink(t)
	cfg := testConfig(addr)
	cfg.end, cfg.backfillOnly, cfg.backfill, cfg.duration, cfg.rps = time.Time{}, false, 5*time.Minute, 2*time.Second, 5
	began := time.Now()
	res, summary := runDemo(t, cfg)
	took := time.Since(began)
	if took < 2*time.Second || took > 20*time.Second {
		t.Errorf("live run of 2s took %s", took)
	}
	if res.failed != 0 || res.exported != res.spans || res.interrupted {
		t.Errorf("%+v", res)
	}
	if d := time.Since(res.to); d < 0 || d > took {
		t.Errorf("emitted until %s, %s ago", res.to, d)
	}
	var live int
	for _, r := range flatten(s.received()) {
		st := r.span.StartTimestamp().AsTime()
		if r.span.ParentSpanID().IsEmpty() && st.After(res.to) {
			t.Fatalf("request starting at %s, after the emitted frontier %s", st, res.to)
		}
		if st.After(res.plan.End) && r.span.Kind() == ptrace.SpanKindServer {
			live++
		}
	}
	if live < 10 {
		t.Errorf("%d live requests", live)
	}
	if !strings.Contains(summary, "done: emitted") {
		t.Errorf("summary: %s", summary)
	}
}

// Cancelling (Ctrl-C) stops at once, sends what was generated, prints the summary.
func TestInterrupt(t *testing.T) {
	addr, s := startSink(t)
	cfg := testConfig(addr)
	cfg.end, cfg.backfillOnly, cfg.backfill, cfg.duration = time.Time{}, false, time.Hour, 0
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(1500*time.Millisecond, cancel)
	var out, errw bytes.Buffer
	began := time.Now()
	res, err := run(ctx, cfg, &out, &errw)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took > 10*time.Second {
		t.Errorf("stopping took %s", took)
	}
	n := len(flatten(s.received()))
	if !res.interrupted || res.failed != 0 || res.exported != res.spans || int64(n) != res.spans {
		t.Errorf("interrupted %v: %d spans, %d exported, %d failed, %d received", res.interrupted, res.spans, res.exported, res.failed, n)
	}
	if !strings.Contains(out.String(), "interrupted: emitted") {
		t.Errorf("summary: %s", out.String())
	}
}

// slowSink answers every export late: the generator must wait (the SDK
// batcher blocks on a full queue), never drop.
type slowSink struct{ sink }

func (s *slowSink) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	time.Sleep(30 * time.Millisecond)
	return s.sink.Export(ctx, req)
}

func TestBackpressure(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &slowSink{}
	srv := grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(srv, s)
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()

	cfg := testConfig(lis.Addr().String())
	cfg.backfill, cfg.queueSize, cfg.batchSize, cfg.weight = 30*time.Minute, 256, 128, 4
	res, _ := runDemo(t, cfg)
	all := flatten(s.received())
	if n := len(all); res.failed != 0 || int64(n) != res.spans || res.spans < 2000 {
		t.Errorf("%d spans generated, %d received, %d failed", res.spans, n, res.failed)
	}
	// --weight 4: every request span carries the sampling threshold th:c (probability ¼).
	for _, r := range all {
		if ts := r.span.TraceState().AsRaw(); r.service != ciServiceName && ts != "ot=th:c" {
			t.Fatalf("%s span %q has tracestate %q", r.span.Kind(), r.span.Name(), ts)
		}
	}
}

// An unreachable collector: the loss is counted and reported, not silent.
func TestExportFailureIsReported(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	cfg := testConfig(addr)
	cfg.backfill, cfg.batchSize, cfg.queueSize, cfg.exportRetry = 10*time.Minute, 8192, 8192, time.Second
	var out, errw bytes.Buffer
	res, err := run(context.Background(), cfg, &out, &errw)
	if err == nil || res == nil {
		t.Fatalf("no error: %v", err)
	}
	if res.failed != res.spans || res.spans == 0 || res.exported != 0 {
		t.Errorf("%d spans, %d failed, %d exported", res.spans, res.failed, res.exported)
	}
	if !strings.Contains(errw.String(), "spans lost") || !strings.Contains(out.String(), fmt.Sprintf("%d failed", res.failed)) {
		t.Errorf("stderr %q\nsummary %q", errw.String(), out.String())
	}
}
