package usecase

// The use cases on an in-memory store (testkit/fakestore): timelines,
// judging and stored verdicts, the worker's Judge, the gate, comparisons
// and the caches, in milliseconds. What the SQL decides is tested on
// ClickHouse (integration_test.go and queryapi/store). Expected figures are
// worked out from the traffic each test generates: requests per minute ×
// minutes of a window, windows from the analysis settings.

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/changelens/changelens/internal/schema"
	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/store"
	"github.com/changelens/changelens/testkit/fakestore"
)

var (
	_ Storage = (*store.Store)(nil)
	_ Storage = (*fakestore.Store)(nil)
)

// t0 starts every in-memory scenario.
var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

// load is steady traffic of one version and operation of a unit over the
// minutes of [from, to): perMinute requests a minute, the first
// errorsPerMinute of them failed, latencies log-normal around median
// (σ 0.35, seeded by the load's names and the minute).
type load struct {
	service, env, version, op string
	from, to                  time.Time
	perMinute, errorsPerMin   int
	median                    time.Duration
	cohorts                   map[string]string
}

func (l load) add(st *fakestore.Store) {
	h := fnv.New64a()
	h.Write([]byte(l.service + "\x00" + l.env + "\x00" + l.version + "\x00" + l.op))
	for k, v := range l.cohorts {
		h.Write([]byte("\x00" + k + "=" + v))
	}
	seed := h.Sum64()
	for m := l.from; m.Before(l.to); m = m.Add(time.Minute) {
		rng := rand.New(rand.NewPCG(seed, uint64(m.Unix())))
		x := fakestore.Minute{Service: l.service, Environment: l.env, Version: l.version, Operation: l.op, Minute: m, Cohorts: l.cohorts}
		for i := range l.perMinute {
			lat := time.Duration(float64(l.median) * math.Exp(0.35*rng.NormFloat64()))
			x.Observe(lat, i < l.errorsPerMin)
		}
		st.AddTraffic(x)
	}
}

// newService is a Service on st with the scenario clock *now.
func newService(t *testing.T, st Storage, now *time.Time, mut ...func(*Config)) *Service {
	t.Helper()
	cfg := Config{Now: func() time.Time { return *now }}
	for _, fn := range mut {
		fn(&cfg)
	}
	svc, err := New(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func noCache(c *Config) { c.CacheSize = -1 }

// cartScenario: cart/prod serves v1, then from 60m v2 (a CI deployment,
// dep-v2, naming no previous version; same latency), then from 120m v3
// (no CI deployment: inferred), twice as slow and with 5 errors a minute
// instead of 1 — 100 requests a minute throughout, until 180m.
func cartScenario() *fakestore.Store {
	st := fakestore.New()
	for _, l := range []load{
		{version: "v1", from: at(0), to: at(60 * time.Minute), perMinute: 100, errorsPerMin: 1, median: 40 * time.Millisecond},
		{version: "v2", from: at(60 * time.Minute), to: at(120 * time.Minute), perMinute: 100, errorsPerMin: 1, median: 40 * time.Millisecond},
		{version: "v3", from: at(120 * time.Minute), to: at(180 * time.Minute), perMinute: 100, errorsPerMin: 5, median: 80 * time.Millisecond},
	} {
		l.service, l.env, l.op = "cart", "prod", "GET /cart"
		l.add(st)
	}
	st.AddDeployment(analysis.Row{ID: "dep-v2", Service: "cart", Environment: "prod", Version: "v2", DeployTime: at(60 * time.Minute),
		CommitSHA: "abc", CommitTime: at(30 * time.Minute)})
	return st
}

func listAll(t *testing.T, svc *Service, q report.DeploymentQuery) []report.Deployment {
	t.Helper()
	var out []report.Deployment
	for {
		page, next, err := svc.Deployments(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page...)
		if next == "" {
			return out
		}
		q.PageToken = next
	}
}

func cartQuery() report.DeploymentQuery {
	return report.DeploymentQuery{Service: "cart", Environment: "prod", Start: at(0), End: at(3 * time.Hour)}
}

// window is the expected report.Window of a minute span with n requests
// and e errors (percentiles not compared).
func checkWindow(t *testing.T, name string, got report.Window, start, end time.Time, n, e float64) {
	t.Helper()
	if !got.Start.Equal(start) || !got.End.Equal(end) || got.Requests != n || got.Errors != e {
		t.Errorf("%s window [%s, %s) %v requests %v errors, want [%s, %s) %v and %v", name,
			got.Start.Format("15:04"), got.End.Format("15:04"), got.Requests, got.Errors, start.Format("15:04"), end.Format("15:04"), n, e)
	}
}

func TestInMemoryTimeline(t *testing.T) {
	st := cartScenario()
	now := at(4 * time.Hour)
	svc := newService(t, st, &now, noCache)
	deps := listAll(t, svc, cartQuery())
	if len(deps) != 2 {
		t.Fatalf("%d deployments, want 2 (v3 inferred, v2 from CI merged with its inferred twin; v1 is the baseline): %+v", len(deps), deps)
	}
	v3, v2 := deps[0], deps[1] // newest first
	if v2.ID != "dep-v2" || v2.Source != report.SourceExplicit || v2.Version != "v2" || v2.PreviousVersion != "v1" || !v2.DeployTime.Equal(at(time.Hour)) {
		t.Errorf("v2 = %s %v %s→%s at %s, want dep-v2, explicit, v1→v2 at 11:00", v2.ID, v2.Source, v2.PreviousVersion, v2.Version, v2.DeployTime)
	}
	if v3.Source != report.SourceInferred || v3.Version != "v3" || v3.PreviousVersion != "v2" || !v3.DeployTime.Equal(at(2*time.Hour)) {
		t.Errorf("v3 = %s %v %s→%s at %s, want inferred v2→v3 at 12:00", v3.ID, v3.Source, v3.PreviousVersion, v3.Version, v3.DeployTime)
	}
	// Same traffic before and after v2; v3 twice as slow, 5 % errors.
	if v2.Verdict != report.VerdictNoChange || v2.ChangeFailure {
		t.Errorf("v2: %v, change failure %v, want NO_CHANGE", v2.Verdict, v2.ChangeFailure)
	}
	if v3.Verdict != report.VerdictDegraded || !v3.ChangeFailure ||
		!slices.Contains(v3.FailureReasons, report.ReasonLatencyRegression) || !slices.Contains(v3.FailureReasons, report.ReasonErrorRateRegression) {
		t.Errorf("v3: %v, change failure %v, reasons %v, want DEGRADED on latency and error rate", v3.Verdict, v3.ChangeFailure, v3.FailureReasons)
	}
	if v2.LeadTime != 30*time.Minute {
		t.Errorf("v2 lead time %s, want 30m (commit at 10:30)", v2.LeadTime)
	}

	// Impact: windows of 30 minutes before, and after a 2-minute gap.
	ctx := context.Background()
	im, err := svc.Impact(ctx, "dep-v2")
	if err != nil {
		t.Fatal(err)
	}
	checkWindow(t, "v2 before", im.Before, at(30*time.Minute), at(60*time.Minute), 3000, 30)
	checkWindow(t, "v2 after", im.After, at(62*time.Minute), at(92*time.Minute), 3000, 30)
	// p95 of a log-normal: median × e^(1.645 σ) ≈ 71 ms (histogram within 2 %, sample noise).
	if p := im.Before.P95Ms; p < 64 || p > 78 {
		t.Errorf("v2 before p95 %.1f ms, want ≈ 71", p)
	}
	// An inferred ID resolves from its unit's traffic (not stored).
	st.ResetReads()
	im3, err := svc.Impact(ctx, v3.ID)
	if err != nil {
		t.Fatal(err)
	}
	if im3.Deployment.ID != v3.ID || im3.Verdict != report.VerdictDegraded || st.Reads("InferredUnits") != 1 {
		t.Errorf("Impact(%s) = %s %v after %d InferredUnits reads", v3.ID, im3.Deployment.ID, im3.Verdict, st.Reads("InferredUnits"))
	}
	checkWindow(t, "v3 before", im3.Before, at(90*time.Minute), at(120*time.Minute), 3000, 30)
	checkWindow(t, "v3 after", im3.After, at(122*time.Minute), at(152*time.Minute), 3000, 150)
	if im3.Canary != nil {
		t.Errorf("v3 replaced v2 at once, yet a canary comparison: %+v", im3.Canary)
	}
	if _, err := svc.Impact(ctx, "no-such-deployment"); !errors.Is(err, report.ErrNotFound) {
		t.Errorf("unknown ID: %v, want ErrNotFound", err)
	}

	// DORA: 2 deployments in 3 hours, one failed.
	rep, err := svc.DORA(ctx, report.DORAQuery{Environment: "prod", Start: at(0), End: at(3 * time.Hour), Interval: report.IntervalAll})
	if err != nil {
		t.Fatal(err)
	}
	if s := rep.Summary; s.DeploymentCount != 2 || s.FailedChangeCount != 1 || s.ChangeFailureRate != 0.5 {
		t.Errorf("DORA %d deployments, %d failed, rate %v; want 2, 1, 0.5", s.DeploymentCount, s.FailedChangeCount, s.ChangeFailureRate)
	}
}

func TestInMemoryTimelineNeighbours(t *testing.T) {
	st := cartScenario()
	// A CI deployment 10 minutes into v2's after window cuts it; a failed
	// attempt does not; a superseded row resolves to its successor.
	st.AddDeployment(analysis.Row{ID: "dep-v2-hotfix", Service: "cart", Environment: "prod", Version: "v2.1", PreviousVersion: "v2", DeployTime: at(72 * time.Minute)})
	st.AddDeployment(analysis.Row{ID: "dep-failed", Service: "cart", Environment: "prod", Version: "v2.2", PreviousVersion: "v2", DeployTime: at(80 * time.Minute), Failed: true})
	st.AddDeployment(analysis.Row{ID: "dep-old", Service: "cart", Environment: "prod", Version: "v2.1", PreviousVersion: "v2", DeployTime: at(72 * time.Minute)})
	st.Supersede("dep-old", "dep-v2-hotfix")
	// A CI deployment of a version the traffic never shows, naming no
	// previous version: the one the traffic showed before it.
	st.AddDeployment(analysis.Row{ID: "dep-v5", Service: "cart", Environment: "prod", Version: "v5", DeployTime: at(170 * time.Minute)})
	now := at(4 * time.Hour)
	svc := newService(t, st, &now, noCache)
	ctx := context.Background()
	im, err := svc.Impact(ctx, "dep-v2")
	if err != nil {
		t.Fatal(err)
	}
	checkWindow(t, "cut after", im.After, at(62*time.Minute), at(72*time.Minute), 1000, 10)
	hot, err := svc.Impact(ctx, "dep-old")
	if err != nil {
		t.Fatal(err)
	}
	if hot.Deployment.ID != "dep-v2-hotfix" {
		t.Errorf("dep-old resolved to %q, want its successor dep-v2-hotfix", hot.Deployment.ID)
	}
	checkWindow(t, "hotfix before", hot.Before, at(60*time.Minute), at(72*time.Minute), 1200, 12)
	deps := listAll(t, svc, cartQuery())
	var ids []string
	for _, d := range deps {
		ids = append(ids, d.ID)
		if d.ID == "dep-failed" && (!d.Failed || d.ChangeFailure) {
			t.Errorf("failed attempt %+v", d)
		}
	}
	if len(ids) != 5 || ids[0] != "dep-v5" || ids[2] != "dep-failed" || ids[3] != "dep-v2-hotfix" || ids[4] != "dep-v2" {
		t.Errorf("listing %v, want [dep-v5 <v3 inferred> dep-failed dep-v2-hotfix dep-v2]", ids)
	}
	if deps[0].PreviousVersion != "v3" {
		t.Errorf("dep-v5 previous version %q, want v3 (what its unit served before)", deps[0].PreviousVersion)
	}
	// Paging newest first, two at a time, gives the same rows.
	q := cartQuery()
	q.PageSize = 2
	paged := listAll(t, svc, q)
	if len(paged) != len(deps) {
		t.Fatalf("paged %d rows, want %d", len(paged), len(deps))
	}
	for i := range paged {
		if paged[i].ID != deps[i].ID {
			t.Errorf("page row %d = %s, want %s", i, paged[i].ID, deps[i].ID)
		}
	}
	// The first CI deployment of a unit whose traffic shows no new version
	// (its deploy span names no previous one): the version served before.
	load{service: "search", env: "prod", version: "s1", op: "GET /q", from: at(0), to: at(3 * time.Hour), perMinute: 10, median: 20 * time.Millisecond}.add(st)
	st.AddDeployment(analysis.Row{ID: "dep-s2", Service: "search", Environment: "prod", Version: "s2", DeployTime: at(60 * time.Minute)})
	q = cartQuery()
	q.Service = "search"
	if got := listAll(t, svc, q); len(got) != 1 || got[0].ID != "dep-s2" || got[0].PreviousVersion != "s1" {
		t.Errorf("search: %+v, want dep-s2 with previous version s1", got)
	}
	// A unit filter that matches nothing.
	q = cartQuery()
	q.Service = "nobody"
	if got := listAll(t, svc, q); len(got) != 0 {
		t.Errorf("other unit: %+v", got)
	}
}

// storedFor is the verdict the worker would have stored for dep-v2 of the
// cart scenario, with a marker judgement: IMPROVED, which its data would
// never give.
func markedVerdict(svc *Service, before, after analysis.Span) store.StoredVerdict {
	stats := store.WindowPair{{Requests: 1234, Errors: 1}, {Requests: 1234, Errors: 1}}
	return store.StoredVerdict{Before: before, After: after, Stats: stats, Judgement: analysis.Judgement{Verdict: report.VerdictImproved}}
}

var (
	v2Before = analysis.Span{Start: at(30 * time.Minute), End: at(60 * time.Minute)}
	v2After  = analysis.Span{Start: at(62 * time.Minute), End: at(92 * time.Minute)}
)

func TestInMemoryStoredVerdicts(t *testing.T) {
	ctx := context.Background()
	v2 := func(t *testing.T, svc *Service) report.Impact {
		t.Helper()
		im, err := svc.Impact(ctx, "dep-v2")
		if err != nil {
			t.Fatal(err)
		}
		return im
	}
	hash := ConfigHash(analysis.DefaultConfig())

	t.Run("reused on the same windows", func(t *testing.T) {
		st := cartScenario()
		now := at(4 * time.Hour)
		svc := newService(t, st, &now, noCache)
		st.PutVerdict(hash, "dep-v2", markedVerdict(svc, v2Before, v2After))
		im := v2(t, svc)
		if im.Verdict != report.VerdictImproved || im.Before.Requests != 1234 {
			t.Errorf("verdict %v on %v requests, want the stored IMPROVED on 1234", im.Verdict, im.Before.Requests)
		}
		if n := st.Reads("OperationWindows"); n != 0 {
			t.Errorf("%d window reads, want none", n)
		}
	})
	t.Run("cached for StoredVerdictsTTL, then read again", func(t *testing.T) {
		st := cartScenario()
		now := at(4 * time.Hour)
		svc := newService(t, st, &now)
		st.PutVerdict(hash, "dep-v2", markedVerdict(svc, v2Before, v2After))
		if im := v2(t, svc); im.Verdict != report.VerdictImproved {
			t.Fatalf("verdict %v, want the stored IMPROVED", im.Verdict)
		}
		reads := st.Reads("StoredVerdicts")
		resettled := markedVerdict(svc, v2Before, v2After) // the worker re-settles it
		resettled.Judgement.Verdict = report.VerdictDegraded
		st.PutVerdict(hash, "dep-v2", resettled)
		now = now.Add(9 * time.Minute)
		if im := v2(t, svc); im.Verdict != report.VerdictImproved || st.Reads("StoredVerdicts") != reads {
			t.Errorf("within the TTL: verdict %v after %d more stored-verdict reads, want the cached IMPROVED and none",
				im.Verdict, st.Reads("StoredVerdicts")-reads)
		}
		now = now.Add(2 * time.Minute) // StoredVerdictsTTL is 10m
		if im := v2(t, svc); im.Verdict != report.VerdictDegraded || st.Reads("StoredVerdicts") != reads+1 {
			t.Errorf("after the TTL: verdict %v after %d more stored-verdict reads, want the re-settled DEGRADED and one",
				im.Verdict, st.Reads("StoredVerdicts")-reads)
		}
	})
	t.Run("judged again when the windows moved", func(t *testing.T) {
		st := cartScenario()
		now := at(4 * time.Hour)
		svc := newService(t, st, &now, noCache)
		moved := v2After
		moved.End = moved.End.Add(-time.Minute)
		st.PutVerdict(hash, "dep-v2", markedVerdict(svc, v2Before, moved))
		if im := v2(t, svc); im.Verdict != report.VerdictNoChange || im.Before.Requests != 3000 {
			t.Errorf("verdict %v on %v requests, want NO_CHANGE judged on 3000", im.Verdict, im.Before.Requests)
		}
	})
	t.Run("other settings", func(t *testing.T) {
		st := cartScenario()
		now := at(4 * time.Hour)
		svc := newService(t, st, &now, noCache)
		other := analysis.DefaultConfig()
		other.Alpha = 0.05
		st.PutVerdict(ConfigHash(other), "dep-v2", markedVerdict(svc, v2Before, v2After))
		if im := v2(t, svc); im.Verdict != report.VerdictNoChange {
			t.Errorf("verdict %v, want NO_CHANGE: the stored one was judged with other settings", im.Verdict)
		}
	})
	t.Run("not settled", func(t *testing.T) {
		st := cartScenario()
		now := v2After.End.Add(4 * time.Minute) // CacheSettle is 5m
		svc := newService(t, st, &now, noCache)
		st.PutVerdict(hash, "dep-v2", markedVerdict(svc, v2Before, v2After))
		if im := v2(t, svc); im.Verdict != report.VerdictNoChange || st.Reads("StoredVerdicts") != 0 {
			t.Errorf("verdict %v after %d stored-verdict reads, want NO_CHANGE judged, none read", im.Verdict, st.Reads("StoredVerdicts"))
		}
	})
	t.Run("ignored", func(t *testing.T) {
		st := cartScenario()
		now := at(4 * time.Hour)
		svc := newService(t, st, &now, noCache, func(c *Config) { c.IgnoreStoredVerdicts = true })
		st.PutVerdict(hash, "dep-v2", markedVerdict(svc, v2Before, v2After))
		if im := v2(t, svc); im.Verdict != report.VerdictNoChange || st.Reads("StoredVerdicts") != 0 {
			t.Errorf("verdict %v after %d stored-verdict reads, want NO_CHANGE judged, none read", im.Verdict, st.Reads("StoredVerdicts"))
		}
	})
	t.Run("pending", func(t *testing.T) {
		st := cartScenario()
		now := at(80 * time.Minute) // dep-v2's after window still open
		svc := newService(t, st, &now, noCache)
		im := v2(t, svc)
		if im.Verdict != report.VerdictPending || im.WindowsComplete {
			t.Errorf("verdict %v, complete %v, want PENDING", im.Verdict, im.WindowsComplete)
		}
	})
}

// TestInMemoryJudge is the worker's read: settled deployments judged
// afresh unless a stored verdict counted the same data in the same
// windows.
func TestInMemoryJudge(t *testing.T) {
	ctx := context.Background()
	st := cartScenario()
	st.AddDeployment(analysis.Row{ID: "dep-failed", Service: "cart", Environment: "prod", Version: "v9", DeployTime: at(100 * time.Minute), Failed: true})
	now := at(150 * time.Minute) // v3's after window still open
	svc := newService(t, st, &now, func(c *Config) { c.IgnoreStoredVerdicts = true; c.CacheSize = -1 })
	j, err := svc.Judge(ctx, at(0), at(3*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(j.Settled) != 1 || len(j.Open) != 1 || len(j.Failed) != 1 {
		t.Fatalf("settled %d, open %d, failed %d; want 1 (dep-v2), 1 (v3), 1", len(j.Settled), len(j.Open), len(j.Failed))
	}
	s := j.Settled[0]
	if s.Impact.Deployment.ID != "dep-v2" || s.Before != v2Before || s.After != v2After || s.Stats[0].Requests != 3000 || s.Stats[1].Requests != 3000 ||
		s.Judgement.Verdict != report.VerdictNoChange {
		t.Errorf("settled %s windows %v %v, %v/%v requests, %v", s.Impact.Deployment.ID, s.Before, s.After, s.Stats[0].Requests, s.Stats[1].Requests, s.Judgement.Verdict)
	}
	if j.Open[0].Verdict != report.VerdictPending || j.Failed[0].ID != "dep-failed" {
		t.Errorf("open %v, failed %s", j.Open[0].Verdict, j.Failed[0].ID)
	}

	// The worker stored it; marked, to tell a kept verdict from a new one.
	hash := svc.ConfigHash()
	kept := store.StoredVerdict{Before: s.Before, After: s.After, Stats: s.Stats, Judgement: s.Judgement}
	kept.Judgement.Verdict = report.VerdictImproved
	st.PutVerdict(hash, "dep-v2", kept)
	// (Up to 110m: v3, open, would be judged from its windows.)
	st.ResetReads()
	j, err = svc.Judge(ctx, at(0), at(110*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if got := j.Settled[0].Judgement.Verdict; got != report.VerdictImproved || st.Reads("WindowTotals") != 1 || st.Reads("OperationWindows") != 0 {
		t.Errorf("unchanged data: %v after %d fingerprint and %d window reads, want the stored verdict kept after one fingerprint",
			got, st.Reads("WindowTotals"), st.Reads("OperationWindows"))
	}
	// Late data in the after window: judged again on it.
	fakeLate := fakestore.Minute{Service: "cart", Environment: "prod", Version: "v2", Operation: "GET /cart", Minute: at(70 * time.Minute)}
	for range 10 {
		fakeLate.Observe(40*time.Millisecond, false)
	}
	st.AddTraffic(fakeLate)
	j, err = svc.Judge(ctx, at(0), at(110*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if s := j.Settled[0]; s.Judgement.Verdict != report.VerdictNoChange || s.Stats[1].Requests != 3010 {
		t.Errorf("late data: %v on %v after-window requests, want NO_CHANGE judged on 3010", s.Judgement.Verdict, s.Stats[1].Requests)
	}
}

// canaryScenario: api/prod serves v1 (570 requests a minute over two
// operations) from 0; from 20m a canary of v2 (CI deployment dep-api-v2)
// takes 30 a minute, slower by slow×, both until 60m.
func canaryScenario(slow float64) *fakestore.Store {
	st := fakestore.New()
	med := 40 * time.Millisecond
	for _, l := range []load{
		{version: "v1", op: "GET /items", from: at(0), to: at(time.Hour), perMinute: 400, errorsPerMin: 2, median: med},
		{version: "v1", op: "POST /items", from: at(0), to: at(time.Hour), perMinute: 170, errorsPerMin: 1, median: med},
		{version: "v2", op: "GET /items", from: at(20 * time.Minute), to: at(time.Hour), perMinute: 20, median: time.Duration(slow * float64(med))},
		{version: "v2", op: "POST /items", from: at(20 * time.Minute), to: at(time.Hour), perMinute: 10, median: time.Duration(slow * float64(med))},
	} {
		l.service, l.env = "api", "prod"
		l.add(st)
	}
	st.AddDeployment(analysis.Row{ID: "dep-api-v2", Service: "api", Environment: "prod", Version: "v2", PreviousVersion: "v1", DeployTime: at(20 * time.Minute)})
	return st
}

func metricOf(ms []report.CompareMetric, name string) report.CompareMetric {
	for _, m := range ms {
		if m.Metric == name {
			return m
		}
	}
	return report.CompareMetric{}
}

func TestInMemoryCompare(t *testing.T) {
	ctx := context.Background()
	st := canaryScenario(2)
	st.SetExemplars("api", "prod", "version", "v2", store.Exemplars{SlowestTraceID: "0af7651916cd43dd8448eb211c80319c", FailedTraceID: ""})
	now := at(2 * time.Hour)
	svc := newService(t, st, &now)
	q := report.CompareQuery{Service: "api", Environment: "prod", Start: at(0), End: at(time.Hour), Dimension: schema.DimensionVersion,
		Control: "v1", Treatment: "v2", ExpectedShare: 0.05}
	c, err := svc.Compare(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	// Both served in minutes 20–59: 40 minutes, 570 and 30 requests each.
	if c.OverlapMinutes != 40 || c.Control.Requests != 570*40 || c.Treatment.Requests != 30*40 || c.Treatment.Share != 0.05 {
		t.Errorf("overlap %d, requests %v / %v, treatment share %v; want 40, 22800 / 1200, 0.05",
			c.OverlapMinutes, c.Control.Requests, c.Treatment.Requests, c.Treatment.Share)
	}
	if p95 := metricOf(c.Metrics, analysis.MetricLatencyP95); c.Verdict != report.CompareWorse || p95.Verdict != report.CompareWorse ||
		p95.RelativeChange < 0.8 || p95.RelativeChange > 1.2 {
		t.Errorf("2× slower canary: %v, p95 %v %+.2f; want WORSE ≈ +100 %%", c.Verdict, p95.Verdict, p95.RelativeChange)
	}
	if c.SRM == nil || c.SRM.Mismatch {
		t.Errorf("SRM %+v: 5 %% expected, 5 %% served", c.SRM)
	}
	if c.Treatment.SlowestTraceID != "0af7651916cd43dd8448eb211c80319c" || c.Control.SlowestTraceID != "" {
		t.Errorf("exemplars %q / %q", c.Control.SlowestTraceID, c.Treatment.SlowestTraceID)
	}
	// Per operation, busiest first.
	if len(c.Operations) != 2 || c.Operations[0].Operation != "GET /items" || c.Operations[1].Operation != "POST /items" ||
		c.Operations[0].Control.Requests != 400*40 || c.Operations[1].Treatment.Requests != 10*40 || c.Operations[1].OverlapMinutes != 40 {
		t.Errorf("operations %+v", c.Operations)
	}
	// The other way round (the control's rows now sort after the
	// treatment's): the same comparison, mirrored.
	rev := q
	rev.Control, rev.Treatment, rev.ExpectedShare = "v2", "v1", 0.95
	r, err := svc.Compare(ctx, rev)
	if err != nil {
		t.Fatal(err)
	}
	if p95 := metricOf(r.Metrics, analysis.MetricLatencyP95); r.Control.Requests != 30*40 || r.Treatment.Requests != 570*40 ||
		r.Verdict != report.CompareBetter || p95.Control != metricOf(c.Metrics, analysis.MetricLatencyP95).Treatment {
		t.Errorf("v2 as control: %v / %v requests, %v, p95 %v → %v", r.Control.Requests, r.Treatment.Requests, r.Verdict, p95.Control, p95.Treatment)
	}
	// Expecting half the traffic on v2 is a sample-ratio mismatch.
	q.ExpectedShare = 0.5
	if c, err := svc.Compare(ctx, q); err != nil || c.SRM == nil || !c.SRM.Mismatch {
		t.Errorf("SRM at 50 %% expected: %+v, %v", c.SRM, err)
	}
	// One operation: no breakdown.
	q.ExpectedShare, q.Operation = 0, "POST /items"
	c, err = svc.Compare(ctx, q)
	if err != nil || c.Operations != nil || c.Control.Requests != 170*40 {
		t.Errorf("one operation: %v requests, breakdown %v, %v", c.Control.Requests, c.Operations, err)
	}
	// The minutes one cohort served alone are no evidence.
	q.Operation, q.End = "", at(20*time.Minute)
	if c, err = svc.Compare(ctx, q); err != nil || c.OverlapMinutes != 0 || c.Verdict != report.CompareInsufficientData {
		t.Errorf("before the canary: %d minutes, %v, %v", c.OverlapMinutes, c.Verdict, err)
	}
}

func TestInMemoryCompareFlag(t *testing.T) {
	st := fakestore.New()
	for _, l := range []load{
		{version: "2.0", from: at(0), to: at(time.Hour), perMinute: 200, errorsPerMin: 1, median: 40 * time.Millisecond,
			cohorts: map[string]string{"feature_flag.new-checkout": "off"}},
		{version: "2.0", from: at(0), to: at(time.Hour), perMinute: 200, errorsPerMin: 6, median: 40 * time.Millisecond,
			cohorts: map[string]string{"feature_flag.new-checkout": "on"}},
	} {
		l.service, l.env, l.op = "web", "prod", "GET /"
		l.add(st)
	}
	now := at(2 * time.Hour)
	svc := newService(t, st, &now)
	c, err := svc.Compare(context.Background(), report.CompareQuery{Service: "web", Environment: "prod", Start: at(0), End: at(time.Hour),
		Dimension: "feature_flag.new-checkout", Control: "off", Treatment: "on"})
	if err != nil {
		t.Fatal(err)
	}
	er := metricOf(c.Metrics, analysis.MetricErrorRate)
	if c.OverlapMinutes != 60 || er.Verdict != report.CompareWorse || math.Abs(er.Control-0.005) > 1e-12 || math.Abs(er.Treatment-0.03) > 1e-12 {
		t.Errorf("flag: %d minutes, error rate %v → %v (%v); want 60, 0.5 %% → 3 %% WORSE", c.OverlapMinutes, er.Control, er.Treatment, er.Verdict)
	}
	dims, err := svc.Cohorts(context.Background(), report.CohortQuery{Service: "web", Environment: "prod", Start: at(0), End: at(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	want := []report.CohortDimension{
		{Dimension: "version", Values: []report.CohortValue{{Value: "2.0", Requests: 24000}}},
		{Dimension: "feature_flag.new-checkout", Values: []report.CohortValue{{Value: "off", Requests: 12000}, {Value: "on", Requests: 12000}}},
	}
	if !reflect.DeepEqual(dims, want) {
		t.Errorf("cohorts %+v, want %+v", dims, want)
	}
}

func TestInMemoryGate(t *testing.T) {
	ctx := context.Background()
	gate := func(t *testing.T, svc *Service, q report.GateQuery) report.GateAnswer {
		t.Helper()
		a, err := svc.Gate(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	t.Run("canary regressed", func(t *testing.T) {
		now := at(time.Hour)
		svc := newService(t, canaryScenario(2), &now)
		a := gate(t, svc, report.GateQuery{Service: "api", Environment: "prod", Version: "v2"})
		// The deployment found names the baseline; both served since its rollout.
		if a.Mode != report.GateCanary || a.Result != report.GateFail || a.DeploymentID != "dep-api-v2" || a.Control.Value != "v1" ||
			a.OverlapMinutes != 40 || a.Treatment.Requests != 1200 || !slices.Contains(a.Reasons, report.GateReasonLatencyRegression) {
			t.Errorf("gate %v %v on %s (%s vs %s, %d minutes, %v requests), reasons %v", a.Mode, a.Result, a.DeploymentID,
				a.Control.Value, a.Treatment.Value, a.OverlapMinutes, a.Treatment.Requests, a.Reasons)
		}
	})
	t.Run("canary healthy", func(t *testing.T) {
		now := at(time.Hour)
		svc := newService(t, canaryScenario(1), &now)
		a := gate(t, svc, report.GateQuery{Service: "api", Environment: "prod", Version: "v2"})
		if a.Mode != report.GateCanary || a.Result != report.GatePass || a.OverlapMinutes != 40 {
			t.Errorf("gate %v %v, %d minutes, reasons %v; want CANARY PASS on 40", a.Mode, a.Result, a.OverlapMinutes, a.Reasons)
		}
	})
	t.Run("canary too young", func(t *testing.T) {
		now := at(25 * time.Minute) // 5 minutes side by side
		svc := newService(t, canaryScenario(2), &now)
		a := gate(t, svc, report.GateQuery{Service: "api", Environment: "prod", Version: "v2"})
		if a.Mode != report.GateCanary || a.Result != report.GateInconclusive || a.OverlapMinutes != 5 {
			t.Errorf("gate %v %v, %d minutes; want CANARY INCONCLUSIVE on 5", a.Mode, a.Result, a.OverlapMinutes)
		}
	})
	t.Run("before/after", func(t *testing.T) {
		// v3 replaced v2 at once: no minute side by side, so its
		// deployment's windows decide.
		now := at(4 * time.Hour)
		svc := newService(t, cartScenario(), &now)
		a := gate(t, svc, report.GateQuery{Service: "cart", Environment: "prod", Version: "v3"})
		if a.Mode != report.GateBeforeAfter || a.Result != report.GateFail || a.Control.Value != "v2" ||
			a.Control.Requests != 3000 || a.Treatment.Requests != 3000 || !slices.Contains(a.Reasons, report.GateReasonErrorRateRegression) {
			t.Errorf("gate %v %v (%s: %v vs %v requests), reasons %v", a.Mode, a.Result, a.Control.Value, a.Control.Requests, a.Treatment.Requests, a.Reasons)
		}
		b := gate(t, svc, report.GateQuery{Service: "cart", Environment: "prod", Version: "v2"})
		if b.Mode != report.GateBeforeAfter || b.Result != report.GatePass || b.DeploymentID != "dep-v2" {
			t.Errorf("v2: %v %v on %s, want BEFORE_AFTER PASS on dep-v2", b.Mode, b.Result, b.DeploymentID)
		}
	})
	t.Run("nothing deployed", func(t *testing.T) {
		now := at(4 * time.Hour)
		svc := newService(t, cartScenario(), &now)
		a := gate(t, svc, report.GateQuery{Service: "cart", Environment: "prod", Version: "v9"})
		if a.Result != report.GateInconclusive || !slices.Equal(a.Reasons, []report.GateReason{report.GateReasonNoDeployment}) {
			t.Errorf("gate %v, reasons %v; want INCONCLUSIVE, NO_DEPLOYMENT", a.Result, a.Reasons)
		}
	})
}

func TestInMemoryVerdictCache(t *testing.T) {
	ctx := context.Background()
	impact := func(t *testing.T, svc *Service) report.Impact {
		t.Helper()
		im, err := svc.Impact(ctx, "dep-v2")
		if err != nil {
			t.Fatal(err)
		}
		return im
	}
	t.Run("settled deployments are judged once", func(t *testing.T) {
		st := cartScenario()
		now := at(4 * time.Hour)
		svc := newService(t, st, &now)
		first := impact(t, svc)
		n := st.Reads("OperationWindows")
		second := impact(t, svc)
		if st.Reads("OperationWindows") != n || second.Verdict != first.Verdict || second.After != first.After {
			t.Errorf("second read: %d window reads (first %d), %v vs %v", st.Reads("OperationWindows"), n, second.Verdict, first.Verdict)
		}
		// A new neighbour changes the windows, hence the key.
		st.AddDeployment(analysis.Row{ID: "dep-hotfix", Service: "cart", Environment: "prod", Version: "v2.1", PreviousVersion: "v2", DeployTime: at(72 * time.Minute)})
		third := impact(t, svc)
		if st.Reads("OperationWindows") == n || third.After.Requests != 1000 {
			t.Errorf("after a neighbour: %v after-window requests, %d window reads; want 1000, judged again", third.After.Requests, st.Reads("OperationWindows"))
		}
	})
	t.Run("not before they settle", func(t *testing.T) {
		st := cartScenario()
		now := v2After.End.Add(4 * time.Minute)
		svc := newService(t, st, &now)
		impact(t, svc)
		n := st.Reads("OperationWindows")
		impact(t, svc)
		if st.Reads("OperationWindows") == n {
			t.Error("a deployment 4 minutes after its window closed was cached (CacheSettle 5m)")
		}
		now = v2After.End.Add(5 * time.Minute)
		impact(t, svc)
		n = st.Reads("OperationWindows")
		impact(t, svc)
		if st.Reads("OperationWindows") != n {
			t.Error("a settled deployment was read again")
		}
	})
	t.Run("off", func(t *testing.T) {
		st := cartScenario()
		now := at(4 * time.Hour)
		svc := newService(t, st, &now, noCache)
		impact(t, svc)
		n := st.Reads("OperationWindows")
		impact(t, svc)
		if st.Reads("OperationWindows") == n {
			t.Error("CacheSize < 0 still cached")
		}
	})
}

func TestInMemoryEpisodeCache(t *testing.T) {
	st := cartScenario()
	now := at(4 * time.Hour)
	cached := newService(t, st, &now, func(c *Config) { c.EpisodesRebuild = time.Hour })
	fresh := newService(t, st, &now, noCache)
	versions := func(svc *Service) []string {
		var vs []string
		for _, d := range listAll(t, svc, cartQuery()) {
			vs = append(vs, d.Version)
		}
		return vs
	}
	if got := versions(cached); !slices.Equal(got, versions(fresh)) || !slices.Equal(got, []string{"v3", "v2"}) {
		t.Fatalf("cached %v, fresh %v", got, versions(fresh))
	}
	// The first request read the settled history and the recent buckets;
	// later ones only the recent buckets.
	st.ResetReads()
	versions(cached)
	if n := st.Reads("Episodes"); n != 1 {
		t.Errorf("%d episode reads on a warm cache, want 1 (the recent buckets)", n)
	}
	// Traffic newer than EpisodesSettle (1h) is seen at once: v4 from 3h30.
	load{service: "cart", env: "prod", version: "v4", op: "GET /cart", from: at(210 * time.Minute), to: at(4 * time.Hour), perMinute: 100, median: 40 * time.Millisecond}.add(st)
	// Traffic arriving late into the settled history waits for the
	// rebuild: v2.5 served 10 minutes at 1h30, written only now.
	load{service: "cart", env: "prod", version: "v2.5", op: "GET /cart", from: at(90 * time.Minute), to: at(100 * time.Minute), perMinute: 100, median: 40 * time.Millisecond}.add(st)
	q := cartQuery()
	q.End = at(4 * time.Hour)
	var got, want []string
	for _, d := range listAll(t, cached, q) {
		got = append(got, d.Version)
	}
	for _, d := range listAll(t, fresh, q) {
		want = append(want, d.Version)
	}
	if !slices.Equal(got, []string{"v4", "v3", "v2"}) {
		t.Errorf("cached listing %v, want [v4 v3 v2]: the recent v4, not yet the late v2.5", got)
	}
	if !slices.Contains(want, "v2.5") || !slices.Contains(want, "v4") {
		t.Errorf("uncached listing %v lacks v2.5 or v4", want)
	}
}

func TestInMemorySeriesCache(t *testing.T) {
	ctx := context.Background()
	st := fakestore.New()
	load{service: "cart", env: "prod", version: "v1", op: "GET /cart", from: at(0), to: at(4 * time.Hour), perMinute: 10, median: 40 * time.Millisecond}.add(st)
	now := at(4 * time.Hour)
	svc := newService(t, st, &now)
	fresh := newService(t, st, &now, noCache)
	q := report.LatencyQuery{Service: "cart", Environment: "prod", Start: at(0), End: at(2 * time.Hour), Step: time.Minute}
	check := func(name string, q report.LatencyQuery, reads int) {
		t.Helper()
		st.ResetReads()
		got, err := svc.Latency(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if n := st.Reads("LatencyPoints"); n != reads {
			t.Errorf("%s: %d reads, want %d", name, n, reads)
		}
		want, err := fresh.Latency(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: cached series differs from a full read", name)
		}
		if wantN := int(q.End.Sub(q.Start) / time.Minute); len(got) != wantN {
			t.Errorf("%s: %d points, want %d", name, len(got), wantN)
		}
	}
	check("cold", q, 1)
	check("warm", q, 0)
	// Scrolled by 10 minutes: only the new tail is read.
	q.Start, q.End = at(10*time.Minute), at(130*time.Minute)
	check("scrolled", q, 1)
	// Buckets younger than SeriesSettle (10m) are never cached.
	q.Start, q.End = at(2*time.Hour), now
	check("to now, cold", q, 1)
	check("to now, warm", q, 1)
	// Past SeriesTTL (10m) a cached bucket is read again.
	now = now.Add(11 * time.Minute)
	q.Start, q.End = at(0), at(2*time.Hour)
	check("expired", q, 1)
	// A summary is one row over the range: 10 requests × 120 minutes.
	sum, err := svc.LatencySummary(ctx, q)
	if err != nil || len(sum) != 1 || sum[0].Count != 1200 || !sum[0].Time.Equal(q.Start) {
		t.Errorf("summary %+v, %v", sum, err)
	}
}

func TestInMemoryGraphAndUnits(t *testing.T) {
	ctx := context.Background()
	st := cartScenario()
	for m := at(0); m.Before(at(time.Hour)); m = m.Add(time.Minute) {
		st.AddCalls(
			fakestore.Call{Service: "web", Environment: "prod", Callee: "cart", CalleeEnvironment: "prod", Minute: m, Calls: 50, Errors: 1, DurationMs: 2000},
			fakestore.Call{Service: "cart", Environment: "prod", Callee: "db", CalleeEnvironment: "prod", Minute: m, Calls: 100, DurationMs: 500},
			fakestore.Call{Service: "web", Environment: "prod", Callee: "cdn.example", Minute: m, Calls: 5},
			fakestore.Call{Service: "web", Environment: "staging", Callee: "cart", CalleeEnvironment: "staging", Minute: m, Calls: 7},
		)
	}
	now := at(4 * time.Hour)
	svc := newService(t, st, &now)
	edges, err := svc.Graph(ctx, report.GraphQuery{Environment: "prod", Start: at(0), End: at(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	want := []report.GraphEdge{
		{CallerService: "cart", CallerEnvironment: "prod", CalleeService: "db", CalleeEnvironment: "prod", Calls: 6000, DurationMs: 30000},
		{CallerService: "web", CallerEnvironment: "prod", CalleeService: "cart", CalleeEnvironment: "prod", Calls: 3000, Errors: 60, DurationMs: 120000},
		{CallerService: "web", CallerEnvironment: "prod", CalleeService: "cdn.example", Calls: 300},
	}
	if !reflect.DeepEqual(edges, want) {
		t.Errorf("graph %+v\nwant %+v", edges, want)
	}
	edges, err = svc.Graph(ctx, report.GraphQuery{Environment: "prod", Service: "db", Start: at(0), End: at(time.Hour)})
	if err != nil || len(edges) != 1 || edges[0].CallerService != "cart" {
		t.Errorf("edges of db: %+v, %v", edges, err)
	}
	units, err := svc.Units(ctx, "prod")
	if err != nil {
		t.Fatal(err)
	}
	if len(units) != 1 || !slices.Equal(units[0].Versions, []string{"v3", "v2", "v1"}) || !units[0].FirstSeen.Equal(at(0)) || !units[0].LastSeen.Equal(at(179*time.Minute)) {
		t.Errorf("units %+v, want cart/prod v3, v2, v1 seen 10:00–12:59", units)
	}
}

func TestInMemoryStorageErrors(t *testing.T) {
	ctx := context.Background()
	st := cartScenario()
	now := at(4 * time.Hour)
	svc := newService(t, st, &now, noCache)
	boom := errors.New("boom")
	for _, method := range []string{"DeploymentRows", "Episodes", "OperationWindows", "OperationMinutes", "StoredVerdicts", "UnitRows", "WindowTotals"} {
		st.SetError(method, boom)
		if _, _, err := svc.Deployments(ctx, cartQuery()); !errors.Is(err, boom) {
			t.Errorf("%s failing: listing returned %v", method, err)
		}
		st.SetError(method, nil)
	}
	st.SetError("Ping", boom)
	if err := svc.Ping(ctx); !errors.Is(err, boom) {
		t.Errorf("Ping: %v", err)
	}
	if err := svc.Close(); err != nil || st.Closed() {
		t.Errorf("Close closed a storage it did not open (%v)", err)
	}
}

// An incident after dep-v2, whose traffic showed no change, makes it a
// change failure (INCIDENT) restored when the incident was resolved, before
// v3 replaced it; DORA counts it; /v1/incidents lists it linked.
func TestInMemoryIncidents(t *testing.T) {
	ctx := context.Background()
	st := cartScenario()
	opened := report.Incident{ID: "pagerduty:Q1", Source: "pagerduty", Status: report.IncidentOpen, Severity: "P1",
		Title: "checkout button does nothing", Service: "cart", Environment: "prod", Opened: at(70 * time.Minute)}
	resolved := opened
	resolved.Status, resolved.Resolved = report.IncidentResolved, at(80*time.Minute)
	st.AddIncident(opened)
	st.AddIncident(resolved)
	st.AddIncident(opened) // a replayed opening does not re-open it
	// Named by the source: dep-v2, though v3 was live by then.
	named := report.Incident{ID: "alertmanager:fp1", Source: "alertmanager", Status: report.IncidentOpen,
		Service: "cart", Environment: "prod", Opened: at(150 * time.Minute), DeploymentID: "dep-v2"}
	st.AddIncident(named)
	// No deployment of that unit known.
	st.AddIncident(report.Incident{ID: "cdevents:x", Source: "cdevents", Service: "search", Environment: "prod", Opened: at(100 * time.Minute)})
	now := at(4 * time.Hour)
	svc := newService(t, st, &now, noCache)

	deps := listAll(t, svc, cartQuery())
	if len(deps) != 2 {
		t.Fatalf("%d deployments: %+v", len(deps), deps)
	}
	v2 := deps[1]
	if v2.ID != "dep-v2" || v2.Verdict != report.VerdictNoChange || !v2.ChangeFailure ||
		!slices.Equal(v2.FailureReasons, []report.FailureReason{report.ReasonIncident}) {
		t.Errorf("dep-v2: %v, change failure %v, reasons %v; want NO_CHANGE, a change failure for INCIDENT", v2.Verdict, v2.ChangeFailure, v2.FailureReasons)
	}
	// Two incidents linked: the resolved one, and the open one named after
	// v3 replaced it — the next deployment bounds the recovery then.
	if !v2.RestoreTime.Equal(at(2*time.Hour)) || v2.TimeToRestore != time.Hour {
		t.Errorf("dep-v2 restored at %v after %v, want 12:00 (v3; an incident is still open) after 1h", v2.RestoreTime, v2.TimeToRestore)
	}
	if v3 := deps[0]; slices.Contains(v3.FailureReasons, report.ReasonIncident) {
		t.Errorf("v3 got the incident dep-v2 was named in: %v", v3.FailureReasons)
	}

	got, err := svc.Incidents(ctx, report.IncidentQuery{Environment: "prod", Start: at(0), End: at(3 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	var links []string
	for _, in := range got {
		links = append(links, in.ID+"→"+in.LinkedDeploymentID)
	}
	if want := []string{"pagerduty:Q1→dep-v2", "cdevents:x→", "alertmanager:fp1→dep-v2"}; !slices.Equal(links, want) {
		t.Errorf("incidents %v, want %v", links, want)
	}
	if in := got[0]; in.Status != report.IncidentResolved || !in.Resolved.Equal(at(80*time.Minute)) || in.Title != opened.Title || in.Severity != "P1" {
		t.Errorf("pagerduty:Q1 = %+v", in)
	}
	only, err := svc.Incidents(ctx, report.IncidentQuery{Service: "cart", Environment: "prod", Start: at(0), End: at(100 * time.Minute)})
	if err != nil || len(only) != 1 || only[0].ID != "pagerduty:Q1" {
		t.Errorf("cart before 11:40: %+v, %v", only, err)
	}

	// Resolved, the named incident leaves the first one's resolution to
	// bound the recovery; DORA counts dep-v2 failed.
	named.Status, named.Resolved = report.IncidentResolved, at(160*time.Minute)
	st.AddIncident(named)
	im, err := svc.Impact(ctx, "dep-v2")
	if err != nil {
		t.Fatal(err)
	}
	if d := im.Deployment; !d.RestoreTime.Equal(at(2*time.Hour)) || !slices.Equal(im.Reasons, []report.FailureReason{report.ReasonIncident}) {
		t.Errorf("impact: restored %v, reasons %v; want 12:00 (v3 before the last resolution), INCIDENT", d.RestoreTime, im.Reasons)
	}
	rep, err := svc.DORA(ctx, report.DORAQuery{Environment: "prod", Start: at(0), End: at(3 * time.Hour), Interval: report.IntervalAll})
	if err != nil {
		t.Fatal(err)
	}
	if s := rep.Summary; s.DeploymentCount != 2 || s.FailedChangeCount != 2 || s.RestoreSampleCount != 1 || s.TimeToRestoreMedianSeconds != 3600 {
		t.Errorf("DORA %+v; want 2 deployments, both failed, dep-v2 restored after 1h", s)
	}

	st.SetError("IncidentRows", errors.New("boom"))
	if _, _, err := svc.Deployments(ctx, cartQuery()); err == nil {
		t.Error("listing without incidents succeeded")
	}
}

// Only a resolution restores when no deployment followed.
func TestInMemoryIncidentResolutionRestores(t *testing.T) {
	st := cartScenario()
	st.AddIncident(report.Incident{ID: "i", Source: "otlp", Status: report.IncidentResolved, Service: "cart", Environment: "prod",
		Opened: at(130 * time.Minute), Resolved: at(140 * time.Minute)})
	now := at(4 * time.Hour)
	svc := newService(t, st, &now, noCache)
	deps := listAll(t, svc, cartQuery())
	v3 := deps[0]
	if !slices.Contains(v3.FailureReasons, report.ReasonIncident) || !v3.RestoreTime.Equal(at(140*time.Minute)) || v3.TimeToRestore != 20*time.Minute {
		t.Errorf("v3: reasons %v, restored %v after %v; want INCIDENT among them, 12:20 after 20m", v3.FailureReasons, v3.RestoreTime, v3.TimeToRestore)
	}
}

// heldEpisodes holds every read of the settled episode history (since
// zero) until release is closed, counting them per unit filter.
type heldEpisodes struct {
	*fakestore.Store
	mu      sync.Mutex
	settled map[store.UnitFilter]int
	release chan struct{}
}

func (h *heldEpisodes) Episodes(ctx context.Context, f store.UnitFilter, since, before time.Time, re time.Duration) (map[store.UnitFilter]store.UnitEpisodes, error) {
	if since.IsZero() {
		h.mu.Lock()
		h.settled[f]++
		h.mu.Unlock()
		<-h.release
	}
	return h.Store.Episodes(ctx, f, since, before, re)
}

func (h *heldEpisodes) reads() map[store.UnitFilter]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.settled)
}

// A page's requests arrive together on a fresh process: the second waits
// for the first one's read of the settled history instead of reading it
// again, and both answer what one alone does.
func TestInMemoryEpisodeReadShared(t *testing.T) {
	st := &heldEpisodes{Store: cartScenario(), settled: map[store.UnitFilter]int{}, release: make(chan struct{})}
	now := at(4 * time.Hour)
	svc := newService(t, st, &now)
	want := listAll(t, newService(t, cartScenario(), &now, noCache), cartQuery())
	got := make([][]report.Deployment, 2)
	var wg sync.WaitGroup
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			page, _, err := svc.Deployments(context.Background(), cartQuery())
			if err != nil {
				t.Error(err)
			}
			got[i] = page
		}()
	}
	for len(st.reads()) == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // the second request reaches the cache meanwhile
	close(st.release)
	wg.Wait()
	// (The unit's own history, and the environment's for its controls.)
	for f, n := range st.reads() {
		if n != 1 {
			t.Errorf("%d reads of %+v's settled history for two requests at once, want 1", n, f)
		}
	}
	for i, g := range got {
		if len(g) != 2 || len(g) != len(want) || g[0].ID != want[0].ID || g[1].ID != want[1].ID || g[0].Verdict != want[0].Verdict {
			t.Errorf("request %d: %+v, want %+v", i, g, want)
		}
	}
}

// A fresh process takes the settled episode history from the worker's
// stored snapshot when it is recent enough, reading no bucket before it —
// wherever the snapshot ends, even inside an episode (v2 ran 60–120m; its
// two halves join) — and reads the history itself when the snapshot is
// older than EpisodesStoredAge or there is none. The answers are the same.
func TestInMemoryEpisodesFromStoredSnapshot(t *testing.T) {
	now := at(4 * time.Hour)
	want := listAll(t, newService(t, cartScenario(), &now, noCache), cartQuery())
	if len(want) != 2 {
		t.Fatalf("scenario: %d deployments, want 2", len(want))
	}
	for _, c := range []struct {
		name     string
		upTo     time.Time // the snapshot's bound; zero: none stored
		age      time.Duration
		settled  int // reads of the history from its start
		snapshot int // reads of the stored snapshot
	}{
		{name: "none stored", settled: 1, snapshot: 1},
		{name: "recent", upTo: at(3 * time.Hour), settled: 0, snapshot: 1},
		{name: "ending inside an episode", upTo: at(90 * time.Minute), age: 2 * time.Hour, settled: 0, snapshot: 1},
		{name: "too old", upTo: at(90 * time.Minute), settled: 1, snapshot: 1},
		{name: "never used", upTo: at(3 * time.Hour), age: -1, settled: 1, snapshot: 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := &heldEpisodes{Store: cartScenario(), settled: map[store.UnitFilter]int{}, release: make(chan struct{})}
			close(st.release)
			if !c.upTo.IsZero() {
				// What the worker stores: every unit's history before the bound.
				re, units, err := newService(t, cartScenario(), &now, noCache).SettledEpisodes(context.Background(), c.upTo)
				if err != nil {
					t.Fatal(err)
				}
				st.PutEpisodes(re, c.upTo, units)
			}
			svc := newService(t, st, &now, func(cfg *Config) { cfg.EpisodesStoredAge = c.age })
			got := listAll(t, svc, cartQuery())
			if len(got) != len(want) {
				t.Fatalf("%d deployments, want %d", len(got), len(want))
			}
			for i := range got {
				if got[i].ID != want[i].ID || !got[i].DeployTime.Equal(want[i].DeployTime) || got[i].PreviousVersion != want[i].PreviousVersion || got[i].Verdict != want[i].Verdict {
					t.Errorf("deployment %d: %s %s from %q %s, want %s %s from %q %s", i, got[i].ID, got[i].DeployTime, got[i].PreviousVersion, got[i].Verdict,
						want[i].ID, want[i].DeployTime, want[i].PreviousVersion, want[i].Verdict)
				}
			}
			settled := 0
			for _, n := range st.reads() {
				settled += n
			}
			// Each read is made twice: for the unit's own history, and the
			// environment's for its controls.
			if settled != 2*c.settled || st.Reads("StoredEpisodes") != 2*c.snapshot {
				t.Errorf("%d reads of the settled history and %d of the snapshot, want %d and %d", settled, st.Reads("StoredEpisodes"), 2*c.settled, 2*c.snapshot)
			}
		})
	}
}

// The list of units is read once per UnitsTTL: a unit that appears shows
// after at most that long, and a caller's copy is its own.
func TestInMemoryUnitsTTL(t *testing.T) {
	ctx := context.Background()
	st := cartScenario()
	now := at(4 * time.Hour)
	svc := newService(t, st, &now)
	units, err := svc.Units(ctx, "prod")
	if err != nil || len(units) != 1 || units[0].Service != "cart" {
		t.Fatalf("units %+v, %v; want cart", units, err)
	}
	units[0].Versions[0] = "changed by the caller"
	st.AddTraffic(fakestore.Minute{Service: "shop", Environment: "prod", Version: "s1", Operation: "GET /", Minute: at(3 * time.Hour), Requests: 10})
	now = now.Add(14 * time.Second)
	again, err := svc.Units(ctx, "prod")
	if err != nil || len(again) != 1 || again[0].Versions[0] == "changed by the caller" || st.Reads("UnitRows") != 1 {
		t.Errorf("within the TTL: %+v, %v after %d reads; want cart as read, one read", again, err, st.Reads("UnitRows"))
	}
	now = now.Add(2 * time.Second) // UnitsTTL is 15s
	again, err = svc.Units(ctx, "prod")
	if err != nil || len(again) != 2 || st.Reads("UnitRows") != 2 {
		t.Errorf("after the TTL: %+v, %v after %d reads; want cart and shop, two reads", again, err, st.Reads("UnitRows"))
	}
	// Whatever environments requests name, the lists kept stay bounded,
	// the oldest going first.
	for i := range 2 * maxUnitsFilters {
		now = now.Add(time.Millisecond)
		if _, err := svc.Units(ctx, fmt.Sprintf("env-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(svc.units.m); n != maxUnitsFilters {
		t.Errorf("%d lists kept, want %d", n, maxUnitsFilters)
	}
	if _, ok := svc.units.m[fmt.Sprintf("env-%d", 2*maxUnitsFilters-1)]; !ok {
		t.Error("the newest list was dropped")
	}
	base := st.Reads("UnitRows")
	for range 3 {
		if _, err := newService(t, st, &now, noCache).Units(ctx, "prod"); err != nil {
			t.Fatal(err)
		}
	}
	if n := st.Reads("UnitRows") - base; n != 3 {
		t.Errorf("%d reads, want 3: without the cache every call reads", n)
	}
}

// A computation split into parts (computeSpare) uses the core compute
// leaves free while nothing waits for a compute slot, and takes its turn
// like any other computation once something does.
func TestComputeSpare(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2)) // one compute slot, one spare
	now := at(0)
	svc := newService(t, fakestore.New(), &now)
	ctx := context.Background()
	hold, holding := make(chan struct{}), make(chan struct{})
	go func() { _ = svc.compute(ctx, func() { close(holding); <-hold }) }()
	<-holding
	ran := false
	first, cancelFirst := context.WithTimeout(ctx, 10*time.Second) // were the spare core not used, it would wait
	defer cancelFirst()
	if err := svc.computeSpare(first, func() { ran = true }); err != nil || !ran {
		t.Fatalf("with the compute slot taken and nothing waiting: ran %v, %v; want run on the spare core", ran, err)
	}
	waited := make(chan struct{})
	go func() { _ = svc.compute(ctx, func() { close(waited) }) }()
	for svc.waiting.Load() != 1 {
		time.Sleep(time.Millisecond)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := svc.computeSpare(short, func() { t.Error("ran on the spare core while a computation waited") }); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("with a computation waiting: %v, want to wait its turn (until the deadline)", err)
	}
	close(hold)
	<-waited
	if err := svc.computeSpare(ctx, func() {}); err != nil {
		t.Error(err)
	}
}
