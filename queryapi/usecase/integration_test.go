package usecase

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/changelens/changelens/testkit/statstest"

	"github.com/changelens/changelens/testkit/pipelinetest"

	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/store"

	"github.com/changelens/changelens/testkit/chtest"
)

func TestMain(m *testing.M) { os.Exit(chtest.Main(m)) }

const (
	prod    = "production"
	staging = "staging"
)

// scenarioStart is the Monday 00:00 UTC two weeks before today: in the past
// (the processor and exporter reject future spans) and a week start (for the
// WEEK buckets). Everything else is relative to it, so the data are the same
// every day.
func scenarioStart() time.Time {
	now := time.Now().UTC()
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	back := (int(day.Weekday()) + 6) % 7
	return day.AddDate(0, 0, -back-14)
}

const (
	h = time.Hour
	m = time.Minute
	s = time.Second
)

// The scenario (offsets from the Monday start T0; "now" is T0 + 6h):
//
//	service    env         deployments
//	checkout   production  explicit (CI): v1.0.0 → v1.1.0 at 1h (neutral, lead 3h),
//	                       → v1.2.0 at 2h (latency ×2, lead 1h),
//	                       → v1.2.1 at 3h (back to normal, lead 30m; its CI span
//	                       arrives 10 min late, after the inferred event)
//	payments   production  inferred: v7 → v8 at 1h30m (errors 1 % → 10 %),
//	                       → v9 at 3h (errors back to 1 %)
//	search     production  inferred: v1 → v2 at 1h05m (neutral), → v1 at 1h50m (rollback)
//	inventory  production  explicit: v3.1 fails at 1h02m (failed attempt, lead 2h),
//	                       v3.0 → v3.1 at 1h20m (lead 2 days),
//	                       → v3.2 at 5h50m (lead 1 day; after window still open)
//	gateway    production  inferred, 1 request/min: v1 → v2 at 2h
//	catalog    production  inferred, sampled (weight 2), two collector replicas:
//	                       v1 → v2 at 1h39m50s; replica B first sees v2 at 1h40m00s
//	billing    staging     inferred: v1 → v2 at 1h10m (neutral)
//
// Every service but gateway serves 30 requests/min with log-normal latency
// (median 40 ms, σ 0.35) and a 1 % error rate unless stated.
func testScenario(start time.Time) *scenario {
	normal := func(at time.Duration, v string) phase { return phase{at: at, version: v, latency: 1, errRate: 0.01} }
	return &scenario{
		start:      start,
		length:     6 * h,
		seed:       20260302,
		baseMedian: 40 * time.Millisecond,
		sigma:      0.35,
		services: []svcSpec{
			{name: "checkout", env: prod, perMinute: 30, phases: []phase{
				normal(0, "v1.0.0"), normal(1*h, "v1.1.0"),
				{at: 2 * h, version: "v1.2.0", latency: 2, errRate: 0.01},
				normal(3*h, "v1.2.1"),
			}},
			{name: "payments", env: prod, perMinute: 30, phases: []phase{
				normal(0, "v7"),
				{at: 1*h + 30*m, version: "v8", latency: 1, errRate: 0.10},
				normal(3*h, "v9"),
			}},
			{name: "search", env: prod, perMinute: 30, phases: []phase{
				normal(0, "v1"), normal(1*h+5*m, "v2"), normal(1*h+50*m, "v1"),
			}},
			{name: "inventory", env: prod, perMinute: 30, phases: []phase{
				normal(0, "v3.0"), normal(1*h+20*m, "v3.1"), normal(5*h+50*m, "v3.2"),
			}},
			{name: "gateway", env: prod, perMinute: 1, phases: []phase{
				normal(0, "v1"), normal(2*h, "v2"),
			}},
			{name: "catalog", env: prod, perMinute: 30, traceState: "ot=th:8", weight: 2,
				phases: []phase{normal(0, "v1"), normal(1*h+39*m+50*s, "v2")},
				split:  &splitSpec{onlyAFrom: 1*h + 39*m + 50*s, onlyATo: 1*h + 40*m},
				extra:  []extraSpan{{at: 1*h + 40*m, replica: 1}},
			},
			{name: "billing", env: staging, perMinute: 30, phases: []phase{
				normal(0, "v1"), normal(1*h+10*m, "v2"),
			}},
		},
		ci: []ciSpec{
			{service: "checkout", env: prod, version: "v1.1.0", deploy: 1 * h, lead: 3 * h},
			{service: "checkout", env: prod, version: "v1.2.0", deploy: 2 * h, lead: 1 * h},
			{service: "checkout", env: prod, version: "v1.2.1", deploy: 3 * h, lead: 30 * m, deliverAt: 3*h + 10*m},
			{service: "inventory", env: prod, version: "v3.1", deploy: 1*h + 2*m, lead: 2 * h, failed: true},
			{service: "inventory", env: prod, version: "v3.1", deploy: 1*h + 20*m, lead: 48 * h},
			{service: "inventory", env: prod, version: "v3.2", deploy: 5*h + 50*m, lead: 24 * h},
		},
	}
}

// expected is one deployment as the scenario defines it.
type expected struct {
	name                  string // label in the comments above
	service, env, version string
	prev                  string
	at                    time.Duration
	source                report.DeploySource
	failed                bool
	verdict               report.Verdict
	rollback              bool
	changeFailure         bool
	reasons               []report.FailureReason
	leadSeconds           float64 // 0: none
	restoreSeconds        float64 // 0: none
}

var (
	explicitSrc = report.SourceExplicit
	inferredSrc = report.SourceInferred
	rb          = []report.FailureReason{report.ReasonRolledBack}
	lat         = []report.FailureReason{report.ReasonLatencyRegression}
	errRate     = []report.FailureReason{report.ReasonErrorRateRegression}
)

// expectations, derived from the scenario by hand.
var expectations = []expected{
	{name: "D1", service: "checkout", env: prod, version: "v1.1.0", prev: "v1.0.0", at: 1 * h, source: explicitSrc,
		verdict: report.VerdictNoChange, leadSeconds: 3 * 3600},
	{name: "D2", service: "checkout", env: prod, version: "v1.2.0", prev: "v1.1.0", at: 2 * h, source: explicitSrc,
		verdict: report.VerdictDegraded, changeFailure: true, reasons: lat, leadSeconds: 3600,
		restoreSeconds: 3600}, // restored by D3 at 3h
	{name: "D3", service: "checkout", env: prod, version: "v1.2.1", prev: "v1.2.0", at: 3 * h, source: explicitSrc,
		verdict: report.VerdictImproved, leadSeconds: 1800}, // latency halves: the mirror image
	{name: "D4", service: "payments", env: prod, version: "v8", prev: "v7", at: 1*h + 30*m, source: inferredSrc,
		verdict: report.VerdictDegraded, changeFailure: true, reasons: errRate,
		restoreSeconds: 5400}, // fixed forward by D5 at 3h: 1h30m
	{name: "D5", service: "payments", env: prod, version: "v9", prev: "v8", at: 3 * h, source: inferredSrc,
		verdict: report.VerdictImproved},
	{name: "D6", service: "search", env: prod, version: "v2", prev: "v1", at: 1*h + 5*m, source: inferredSrc,
		verdict: report.VerdictNoChange, changeFailure: true, reasons: rb,
		restoreSeconds: 2700}, // rolled back by D7 at 1h50m: 45m
	{name: "D7", service: "search", env: prod, version: "v1", prev: "v2", at: 1*h + 50*m, source: inferredSrc,
		verdict: report.VerdictNoChange, rollback: true},
	{name: "F", service: "inventory", env: prod, version: "v3.1", prev: "v3.0", at: 1*h + 2*m, source: explicitSrc,
		failed: true, verdict: report.VerdictNoChange, leadSeconds: 2 * 3600},
	{name: "D8", service: "inventory", env: prod, version: "v3.1", prev: "v3.0", at: 1*h + 20*m, source: explicitSrc,
		verdict: report.VerdictNoChange, leadSeconds: 2 * 86400},
	{name: "D9", service: "inventory", env: prod, version: "v3.2", prev: "v3.1", at: 5*h + 50*m, source: explicitSrc,
		verdict: report.VerdictPending, leadSeconds: 86400}, // after window [5h52m, 6h22m) open at 6h
	{name: "D10", service: "gateway", env: prod, version: "v2", prev: "v1", at: 2 * h, source: inferredSrc,
		verdict: report.VerdictInsufficientData}, // ~30 requests per window < 50
	{name: "D12", service: "catalog", env: prod, version: "v2", prev: "v1", at: 1*h + 39*m + 50*s, source: inferredSrc,
		verdict: report.VerdictNoChange}, // replica A's row wins: the earliest
	{name: "D11", service: "billing", env: staging, version: "v2", prev: "v1", at: 1*h + 10*m, source: inferredSrc,
		verdict: report.VerdictNoChange},
}

// fixture is the scenario loaded once into a shared server.
type fixture struct {
	srv      *chtest.Server
	database string
	start    time.Time
	now      time.Time
	truth    []genSpan
}

var (
	fixtureOnce sync.Once
	theFixture  *fixture
	fixtureErr  string
)

// loadFixture runs the scenario through the pipeline once per test binary.
func loadFixture(t *testing.T) *fixture {
	t.Helper()
	fixtureOnce.Do(func() {
		srv := chtest.Shared(t)
		// The database outlives this test (other tests share it); chtest
		// drops it with the shared server.
		db := "scenario_" + strings.ToLower(fmt.Sprintf("%x", time.Now().UnixNano()&0xffffff))
		srv.Exec(t, "CREATE DATABASE "+db)
		start := scenarioStart()
		sc := testScenario(start)
		p := pipelinetest.New(t, srv.Addr(), db, 2, nil)
		truth := sc.run(t, p)
		p.Close(t)
		theFixture = &fixture{srv: srv, database: db, start: start, now: start.Add(6 * h), truth: truth}
	})
	if theFixture == nil {
		t.Fatal("scenario fixture failed to load (see the first failing test)")
	}
	return theFixture
}

// openService opens a store on dsn (per-query timeout: cfg's) and a
// Service reading through it; both close with the test.
func openService(tb testing.TB, dsn string, cfg Config) *Service {
	tb.Helper()
	svc, err := Open(context.Background(), dsn, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = svc.Close() })
	return svc
}

// open opens a Service on the fixture as the read-only user.
func (f *fixture) open(t *testing.T, mut ...func(*Config)) *Service {
	t.Helper()
	dsn := fmt.Sprintf("clickhouse://%s:%s@%s/%s?dial_timeout=5s", chtest.ReadOnlyUser,
		url.QueryEscape(chtest.ReadOnlyPassword), f.srv.Addr(), f.database)
	cfg := Config{Now: func() time.Time { return f.now }}
	for _, fn := range mut {
		fn(&cfg)
	}
	return openService(t, dsn, cfg)
}

func (f *fixture) at(d time.Duration) time.Time { return f.start.Add(d) }

// clickhouse is the ClickHouse reader under a Service that Open opened (for
// tests and benchmarks that run the store's SQL by itself).
func (s *Service) clickhouse() *store.Store { return s.st.(*store.Store) }

func findDep(deps []report.Deployment, service, env string, at time.Time, failed bool) *report.Deployment {
	for i := range deps {
		d := &deps[i]
		if d.Service == service && d.Environment == env && d.DeployTime.Equal(at) && d.Failed == failed {
			return d
		}
	}
	return nil
}

func checkDeployment(t *testing.T, f *fixture, e expected, d *report.Deployment) {
	t.Helper()
	if d == nil {
		t.Errorf("%s: %s/%s at %v not found", e.name, e.service, e.version, e.at)
		return
	}
	where := fmt.Sprintf("%s (%s %s)", e.name, e.service, e.version)
	if d.Version != e.version || d.PreviousVersion != e.prev || d.Source != e.source || d.Failed != e.failed {
		t.Errorf("%s: version %q prev %q source %v failed %v, want %q %q %v %v", where,
			d.Version, d.PreviousVersion, d.Source, d.Failed, e.version, e.prev, e.source, e.failed)
	}
	if d.Verdict != e.verdict {
		t.Errorf("%s: verdict %v, want %v", where, d.Verdict, e.verdict)
	}
	if d.Rollback != e.rollback || d.ChangeFailure != e.changeFailure || !slices.Equal(d.FailureReasons, e.reasons) {
		t.Errorf("%s: rollback %v change_failure %v reasons %v, want %v %v %v", where,
			d.Rollback, d.ChangeFailure, d.FailureReasons, e.rollback, e.changeFailure, e.reasons)
	}
	if got := d.LeadTime.Seconds(); d.HasLeadTime != (e.leadSeconds > 0) || got != e.leadSeconds {
		t.Errorf("%s: lead time %v s (%v), want %v s", where, got, d.HasLeadTime, e.leadSeconds)
	}
	if e.leadSeconds > 0 && (d.CommitSHA != commitSHA(e.service, e.version) || !d.CommitTime.Equal(f.at(e.at).Add(-time.Duration(e.leadSeconds)*time.Second))) {
		t.Errorf("%s: commit %q at %v", where, d.CommitSHA, d.CommitTime)
	}
	if got := d.TimeToRestore.Seconds(); got != e.restoreSeconds || d.RestoreTime.IsZero() != (e.restoreSeconds == 0) {
		t.Errorf("%s: time to restore %v s (restore %v), want %v s", where, got, d.RestoreTime, e.restoreSeconds)
	}
	if e.restoreSeconds > 0 && !d.RestoreTime.Equal(f.at(e.at).Add(time.Duration(e.restoreSeconds)*time.Second)) {
		t.Errorf("%s: restore time %v", where, d.RestoreTime)
	}
}

func allDeployments(t *testing.T, st *Service, q report.DeploymentQuery) []report.Deployment {
	t.Helper()
	var all []report.Deployment
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("paging does not end")
		}
		deps, next, err := st.Deployments(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, deps...)
		if next == "" {
			return all
		}
		q.PageToken = next
	}
}

func TestScenarioDeployments(t *testing.T) {
	f := loadFixture(t)
	st := f.open(t)
	day := report.DeploymentQuery{Start: f.start, End: f.start.Add(24 * h)}

	all := allDeployments(t, st, day)
	if len(all) != len(expectations) {
		var got []string
		for _, d := range all {
			got = append(got, fmt.Sprintf("%s/%s@%v", d.Service, d.Version, d.DeployTime.Sub(f.start)))
		}
		t.Errorf("%d deployments listed, want %d: %v", len(all), len(expectations), got)
	}
	for _, e := range expectations {
		checkDeployment(t, f, e, findDep(all, e.service, e.env, f.at(e.at), e.failed))
	}
	// Newest first, IDs unique.
	ids := map[string]bool{}
	for i, d := range all {
		if ids[d.ID] {
			t.Errorf("duplicate ID %s", d.ID)
		}
		ids[d.ID] = true
		if i > 0 && d.DeployTime.After(all[i-1].DeployTime) {
			t.Errorf("not newest first at %d", i)
		}
	}

	// Paging: production only, pages of 5 → 12 rows in 5 + 5 + 2.
	q := day
	q.Environment, q.PageSize = prod, 5
	var sizes []int
	var paged []report.Deployment
	for {
		deps, next, err := st.Deployments(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(deps))
		paged = append(paged, deps...)
		if next == "" {
			break
		}
		// Tokens are stable: asking again gives the same token.
		_, again, _ := st.Deployments(context.Background(), q)
		if again != next {
			t.Error("page token not stable")
		}
		q.PageToken = next
	}
	if !slices.Equal(sizes, []int{5, 5, 2}) {
		t.Errorf("page sizes %v, want [5 5 2]", sizes)
	}
	var prodAll []report.Deployment
	for _, d := range all {
		if d.Environment == prod {
			prodAll = append(prodAll, d)
		}
	}
	if len(paged) != len(prodAll) {
		t.Fatalf("paged %d, want %d", len(paged), len(prodAll))
	}
	for i := range paged {
		if paged[i].ID != prodAll[i].ID {
			t.Errorf("page order differs at %d: %s vs %s", i, paged[i].ID, prodAll[i].ID)
		}
	}

	// Service filter and a range that starts after some deployments: the
	// neighbours outside the range still give D2 its restore time and D3
	// its before window.
	q = report.DeploymentQuery{Service: "checkout", Environment: prod, Start: f.at(1*h + 30*m), End: f.at(2*h + 30*m)}
	deps, next, err := st.Deployments(context.Background(), q)
	if err != nil || next != "" {
		t.Fatal(err, next)
	}
	if len(deps) != 1 {
		t.Fatalf("checkout in [1h30m, 2h30m): %d deployments", len(deps))
	}
	checkDeployment(t, f, expectations[1], &deps[0])

	// The search rollback seen from a range holding only the rollback: v2's
	// deployment is a neighbour outside the range.
	deps, _, err = st.Deployments(context.Background(), report.DeploymentQuery{Service: "search", Environment: prod,
		Start: f.at(1*h + 30*m), End: f.at(2 * h)})
	if err != nil || len(deps) != 1 || !deps[0].Rollback {
		t.Errorf("rollback alone: %v %+v", err, deps)
	}

	// Hostile strings are values, never SQL.
	for _, evil := range []string{"x' OR 1=1 --", `checkout\' OR '1'='1`, "checkout'); DROP TABLE deployments; --", "@service"} {
		deps, _, err := st.Deployments(context.Background(), report.DeploymentQuery{Service: evil, Environment: prod, Start: f.start, End: f.now})
		if err != nil || len(deps) != 0 {
			t.Errorf("service %q: %v, %d rows", evil, err, len(deps))
		}
		pts, err := st.Latency(context.Background(), report.LatencyQuery{Service: "checkout", Environment: prod, Operation: evil, Start: f.start, End: f.now, Step: h})
		if err != nil || len(pts) != 0 {
			t.Errorf("operation %q: %v, %d points", evil, err, len(pts))
		}
	}

	// Page tokens are the use case's own format (the server checks only
	// their characters and length).
	for _, bad := range []report.DeploymentQuery{
		{Start: f.start, End: f.start.Add(h), PageToken: "not a token"},
		{Start: f.start, End: f.start.Add(h), PageToken: "djE6MTIzOg"}, // "v1:123:" without an ID
	} {
		var ia *report.InvalidArgumentError
		if _, _, err := st.Deployments(context.Background(), bad); !errors.As(err, &ia) {
			t.Errorf("%+v: error %v, want InvalidArgumentError", bad, err)
		}
	}
}

// The catalog rollout reached two collector replicas, each first seeing v2 at
// another time; checkout v1.2.1's CI span arrived 10 minutes after its
// traffic showed the change. Inferred deployments come from both replicas'
// observations together and resolve by ID.
func TestScenarioInferredDeploymentsResolve(t *testing.T) {
	f := loadFixture(t)
	st := f.open(t)
	ctx := context.Background()

	cat := allDeployments(t, st, report.DeploymentQuery{Service: "catalog", Environment: prod, Start: f.start, End: f.now})
	if len(cat) != 1 {
		t.Fatalf("catalog: %d deployments, want 1", len(cat))
	}
	if !cat[0].DeployTime.Equal(f.at(1*h + 39*m + 50*s)) {
		t.Errorf("catalog deployed at %v, want the first v2 span of either replica (1h39m50s)", cat[0].DeployTime.Sub(f.start))
	}
	im, err := st.Impact(ctx, cat[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if im.Deployment.ID != cat[0].ID || !im.Deployment.DeployTime.Equal(cat[0].DeployTime) || im.Deployment.Source != report.SourceInferred {
		t.Errorf("Impact(%s) = %+v", cat[0].ID, im.Deployment)
	}

	// The version change checkout's traffic shows merged into its CI deploy;
	// the inferred ID resolves to the explicit deployment.
	hs, err := st.inferred(ctx, unitFilter{Service: "checkout", Environment: prod})
	if err != nil {
		t.Fatal(err)
	}
	var inferredID string
	for _, d := range hs[unitFilter{Service: "checkout", Environment: prod}].Deployments {
		if d.Version == "v1.2.1" {
			inferredID = d.ID
		}
	}
	if inferredID == "" {
		t.Fatalf("no inferred v1.2.1 in %+v", hs)
	}
	im, err = st.Impact(ctx, inferredID)
	if err != nil {
		t.Fatal(err)
	}
	if im.Deployment.Source != report.SourceExplicit || im.Deployment.Version != "v1.2.1" || im.Deployment.ID == inferredID {
		t.Errorf("inferred ID resolves to %+v", im.Deployment)
	}
	if !im.Deployment.RolloutStart.Equal(f.at(3*h - 4*m)) {
		t.Errorf("rollout start %v, want the CI span start", im.Deployment.RolloutStart.Sub(f.start))
	}

	// An ID shaped like an inferred one whose unit prefix matches a unit
	// but no deployment, an unknown ID, an empty one.
	for _, id := range []string{inferredID[:16] + "0123456789abcdef", "0123456789abcdef0123456789abcdef"} {
		if _, err := st.Impact(ctx, id); !errors.Is(err, report.ErrNotFound) {
			t.Errorf("unknown ID %s: %v, want ErrNotFound", id, err)
		}
	}
}

// windowTruth computes a window's requests, errors and exact weighted p95
// from the generated requests.
func windowTruth(truth []genSpan, service, env string, from, to time.Time) (req, errs, p95 float64) {
	var durs []float64
	for _, sp := range truth {
		if sp.service != service || sp.env != env || sp.start.Before(from) || !sp.start.Before(to) {
			continue
		}
		req += sp.weight
		if sp.err {
			errs += sp.weight
		}
		durs = append(durs, float64(sp.dur)/1e6)
	}
	sort.Float64s(durs)
	if len(durs) > 0 {
		p95 = durs[int(math.Ceil(0.95*float64(len(durs))))-1]
	}
	return req, errs, p95
}

func TestScenarioImpact(t *testing.T) {
	f := loadFixture(t)
	st := f.open(t)
	ctx := context.Background()
	deps := allDeployments(t, st, report.DeploymentQuery{Service: "checkout", Environment: prod, Start: f.start, End: f.now})
	d2 := findDep(deps, "checkout", prod, f.at(2*h), false)
	if d2 == nil {
		t.Fatal("D2 missing")
	}
	im, err := st.Impact(ctx, d2.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Windows: before [1h30m, 2h), after [2h02m, 2h32m) (whole minutes).
	if !im.Before.Start.Equal(f.at(1*h+30*m)) || !im.Before.End.Equal(f.at(2*h)) ||
		!im.After.Start.Equal(f.at(2*h+2*m)) || !im.After.End.Equal(f.at(2*h+32*m)) {
		t.Errorf("windows %v–%v / %v–%v", im.Before.Start, im.Before.End, im.After.Start, im.After.End)
	}
	for name, w := range map[string]report.Window{"before": im.Before, "after": im.After} {
		req, errs, p95 := windowTruth(f.truth, "checkout", prod, w.Start, w.End)
		if w.Requests != req || w.Errors != errs {
			t.Errorf("%s: requests %v errors %v, want %v %v", name, w.Requests, w.Errors, req, errs)
		}
		if math.Abs(w.P95Ms-p95) > 0.05*p95 {
			t.Errorf("%s: p95 %.2f ms, exact %.2f ms", name, w.P95Ms, p95)
		}
	}
	if im.Verdict != report.VerdictDegraded || !slices.Equal(im.Reasons, lat) || !im.WindowsComplete {
		t.Errorf("verdict %v reasons %v complete %v", im.Verdict, im.Reasons, im.WindowsComplete)
	}
	if math.Abs(im.LatencyRatio-2) > 0.2 {
		t.Errorf("latency ratio %v, want ≈ 2", im.LatencyRatio)
	}
	lt := im.LatencyTest
	if !judgedBy(lt.Name, "slow-share") || lt.Direction != "increase" || !lt.Significant || lt.PValue > 1e-6 {
		t.Errorf("latency test %+v", lt)
	}
	if im.ErrorRateTest.Significant {
		t.Errorf("error test %+v", im.ErrorRateTest)
	}

	// The pending deployment reports its windows so far.
	inv := allDeployments(t, st, report.DeploymentQuery{Service: "inventory", Environment: prod, Start: f.start, End: f.now})
	d9 := findDep(inv, "inventory", prod, f.at(5*h+50*m), false)
	im, err = st.Impact(ctx, d9.ID)
	if err != nil {
		t.Fatal(err)
	}
	if im.Verdict != report.VerdictPending || im.WindowsComplete {
		t.Errorf("D9: %v complete %v", im.Verdict, im.WindowsComplete)
	}
	// After window [5h52m, 6h22m) has data up to now (6h): 8 minutes.
	req, _, _ := windowTruth(f.truth, "inventory", prod, f.at(5*h+52*m), f.at(6*h))
	if im.After.Requests != req {
		t.Errorf("D9 after requests %v, want %v", im.After.Requests, req)
	}

	// The payments error regression, and the weighted catalog counts.
	pay := allDeployments(t, st, report.DeploymentQuery{Service: "payments", Environment: prod, Start: f.start, End: f.now})
	im, _ = st.Impact(ctx, findDep(pay, "payments", prod, f.at(1*h+30*m), false).ID)
	if et := im.ErrorRateTest; !judgedBy(et.Name, "error-rate") || et.Direction != "increase" || !et.Significant || im.ErrorRateDelta < 0.05 {
		t.Errorf("D4 error test %+v delta %v", et, im.ErrorRateDelta)
	}
	cat := allDeployments(t, st, report.DeploymentQuery{Service: "catalog", Environment: prod, Start: f.start, End: f.now})
	im, _ = st.Impact(ctx, cat[0].ID)
	req, _, _ = windowTruth(f.truth, "catalog", prod, im.Before.Start, im.Before.End)
	if im.Before.Requests != req || req < 2*30*29 {
		t.Errorf("catalog before requests %v, want %v (weight 2)", im.Before.Requests, req)
	}
}

func TestScenarioDORA(t *testing.T) {
	f := loadFixture(t)
	st := f.open(t)
	ctx := context.Background()
	day := 24 * h

	rep, err := st.DORA(ctx, report.DORAQuery{Environment: prod, Start: f.start, End: f.start.Add(day), Interval: report.IntervalDay})
	if err != nil {
		t.Fatal(err)
	}
	// Production deployments in [T0, T0+1d): D1–D10 and D12 = 11 (F is a
	// failed attempt, D11 is staging) → 11/day, ELITE.
	// Rollbacks: D7 → change_count = 10.
	// Change failures that are not rollbacks: D2, D4, D6 → 3; CFR = 0.3, LOW.
	// Lead times: D1 10800, D2 3600, D3 1800, D8 172800, D9 86400 →
	// sorted 1800, 3600, 10800, 86400, 172800 → median 10800 s (5 samples), ELITE.
	// Restores: D2 3600, D4 5400, D6 2700 → median 3600 s (3 samples):
	// not < 1 h, so HIGH.
	// Rework: each of D2, D4, D6 is followed within the fix-forward window
	// (24 h) by the deployment that restored it — those after D2 and D4 fix
	// them forward, D7 rolls D6 back → 3.
	want := report.DORAFigures{
		ReworkCount: 3,
		Start:       f.start, End: f.start.Add(day),
		DeploymentCount: 11, DeploymentFrequencyPerDay: 11, ChangeCount: 10, FailedChangeCount: 3,
		ChangeFailureRate: 0.3, LeadTimeMedianSeconds: 10800, LeadTimeSampleCount: 5,
		TimeToRestoreMedianSeconds: 3600, RestoreSampleCount: 3,
		FrequencyTier: report.TierElite, LeadTimeTier: report.TierElite,
		ChangeFailureRateTier: report.TierLow, TimeToRestoreTier: report.TierHigh,
	}
	if !equalFigures(rep.Summary, want) {
		t.Errorf("summary\n got %+v\nwant %+v", rep.Summary, want)
	}
	if len(rep.Intervals) != 1 || !equalFigures(rep.Intervals[0], want) {
		t.Errorf("DAY intervals %+v", rep.Intervals)
	}

	// Two days: the second has nothing. 11 deployments / 2 days = 5.5/day.
	rep, err = st.DORA(ctx, report.DORAQuery{Environment: prod, Start: f.start, End: f.start.Add(2 * day), Interval: report.IntervalDay})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Summary.DeploymentFrequencyPerDay != 5.5 || len(rep.Intervals) != 2 {
		t.Fatalf("two days: %+v", rep)
	}
	empty := rep.Intervals[1]
	if empty.DeploymentCount != 0 || empty.ChangeFailureRate != 0 || empty.FrequencyTier != report.TierLow ||
		empty.LeadTimeTier != report.TierUnknown || empty.ChangeFailureRateTier != report.TierUnknown || empty.TimeToRestoreTier != report.TierUnknown {
		t.Errorf("empty day %+v", empty)
	}

	// WEEK buckets start on Monday: [T0−3d, T0) (Friday to Monday) is one
	// partial bucket, [T0, T0+4d) the next.
	rep, err = st.DORA(ctx, report.DORAQuery{Environment: prod, Start: f.start.Add(-3 * day), End: f.start.Add(4 * day), Interval: report.IntervalWeek})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Intervals) != 2 || !rep.Intervals[1].Start.Equal(f.start) || rep.Intervals[0].DeploymentCount != 0 || rep.Intervals[1].DeploymentCount != 11 {
		t.Errorf("weeks %+v", rep.Intervals)
	}

	// One service: checkout D1, D2, D3 → 3 changes, 1 failed (D2): CFR 1/3,
	// LOW; lead times 10800, 3600, 1800 → median 3600, ELITE; restore 3600
	// (1 sample), HIGH; D3 fixes D2 forward: 1 rework.
	rep, err = st.DORA(ctx, report.DORAQuery{Service: "checkout", Environment: prod, Start: f.start, End: f.start.Add(day)})
	if err != nil {
		t.Fatal(err)
	}
	want = report.DORAFigures{
		ReworkCount: 1,
		Start:       f.start, End: f.start.Add(day),
		DeploymentCount: 3, DeploymentFrequencyPerDay: 3, ChangeCount: 3, FailedChangeCount: 1,
		ChangeFailureRate: 1.0 / 3, LeadTimeMedianSeconds: 3600, LeadTimeSampleCount: 3,
		TimeToRestoreMedianSeconds: 3600, RestoreSampleCount: 1,
		FrequencyTier: report.TierElite, LeadTimeTier: report.TierElite,
		ChangeFailureRateTier: report.TierLow, TimeToRestoreTier: report.TierHigh,
	}
	if !equalFigures(rep.Summary, want) || len(rep.Intervals) != 0 {
		t.Errorf("checkout\n got %+v\nwant %+v", rep.Summary, want)
	}

	// Staging: billing's one neutral deployment.
	rep, err = st.DORA(ctx, report.DORAQuery{Environment: staging, Start: f.start, End: f.start.Add(day)})
	if err != nil || rep.Summary.DeploymentCount != 1 || rep.Summary.FailedChangeCount != 0 || rep.Summary.ChangeFailureRateTier != report.TierElite {
		t.Errorf("staging: %v %+v", err, rep.Summary)
	}
}

func equalFigures(a, b report.DORAFigures) bool {
	if !a.Start.Equal(b.Start) || !a.End.Equal(b.End) ||
		math.Abs(a.ChangeFailureRate-b.ChangeFailureRate) > 1e-12 ||
		math.Abs(a.DeploymentFrequencyPerDay-b.DeploymentFrequencyPerDay) > 1e-12 {
		return false
	}
	a.Start, a.End, b.Start, b.End = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	a.ChangeFailureRate, b.ChangeFailureRate = 0, 0
	a.DeploymentFrequencyPerDay, b.DeploymentFrequencyPerDay = 0, 0
	// Benchmarks follow from the figures (TestBenchmarks); the rework rate
	// is compared as its count.
	a.Benchmarks, b.Benchmarks = nil, nil
	a.ReworkRate, b.ReworkRate = 0, 0
	return reflect.DeepEqual(a, b)
}

func TestScenarioLatency(t *testing.T) {
	f := loadFixture(t)
	st := f.open(t)
	ctx := context.Background()

	// checkout by version in 5-minute buckets around D2 (2h).
	q := report.LatencyQuery{Service: "checkout", Environment: prod, Start: f.at(1*h + 50*m), End: f.at(2*h + 10*m),
		Step: 5 * m, GroupBy: report.GroupByVersion}
	pts, err := st.Latency(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) != 4 {
		t.Fatalf("%d points: %+v", len(pts), pts)
	}
	for i, p := range pts {
		wantV := "v1.1.0"
		if i >= 2 {
			wantV = "v1.2.0"
		}
		from := f.at(1*h + 50*m + time.Duration(i)*5*m)
		req, errs, p95 := windowTruth(f.truth, "checkout", prod, from, from.Add(5*m))
		if !p.Time.Equal(from) || p.Group != wantV || p.Count != req || p.ErrorCount != errs {
			t.Errorf("point %d = %+v, want %v %s count %v errors %v", i, p, from, wantV, req, errs)
		}
		if math.Abs(p.P95Ms-p95) > 0.1*p95 || !(p.P50Ms < p.P90Ms && p.P90Ms <= p.P95Ms && p.P95Ms <= p.P99Ms) {
			t.Errorf("point %d percentiles %+v, exact p95 %.2f", i, p, p95)
		}
	}

	// Summary by operation over the whole scenario; counts add up.
	sum, err := st.LatencySummary(ctx, report.LatencyQuery{Service: "catalog", Environment: prod, Start: f.start, End: f.now, GroupBy: report.GroupByOperation})
	if err != nil {
		t.Fatal(err)
	}
	var total float64
	byOp := map[string]float64{}
	for _, sp := range f.truth {
		if sp.service == "catalog" {
			byOp[sp.op] += sp.weight
			total += sp.weight
		}
	}
	if len(sum) != 2 {
		t.Fatalf("summary %+v", sum)
	}
	for _, p := range sum {
		if p.Count != byOp[p.Group] || !p.Time.Equal(f.start) {
			t.Errorf("summary %s = %v, want %v", p.Group, p.Count, byOp[p.Group])
		}
	}
	// Filters: one version, one operation, no grouping.
	sum, err = st.LatencySummary(ctx, report.LatencyQuery{Service: "catalog", Environment: prod, Start: f.start, End: f.now,
		Version: "v2", Operation: "POST /orders"})
	if err != nil || len(sum) != 1 || sum[0].Group != "" {
		t.Fatalf("filtered summary %v %+v", err, sum)
	}
	var want float64
	for _, sp := range f.truth {
		if sp.service == "catalog" && sp.version == "v2" && sp.op == "POST /orders" {
			want += sp.weight
		}
	}
	if sum[0].Count != want {
		t.Errorf("filtered count %v, want %v", sum[0].Count, want)
	}

	// Input validation is the server's (queryapi/server TestValidation);
	// the use case trusts its typed input.
}

func TestScenarioUnits(t *testing.T) {
	f := loadFixture(t)
	st := f.open(t)
	units, err := st.Units(context.Background(), prod)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"catalog":   {"v2", "v1"},
		"checkout":  {"v1.2.1", "v1.2.0", "v1.1.0", "v1.0.0"},
		"gateway":   {"v2", "v1"},
		"inventory": {"v3.2", "v3.1", "v3.0"},
		"payments":  {"v9", "v8", "v7"},
		"search":    {"v1", "v2"}, // v1 again after the rollback
	}
	if len(units) != len(want) {
		t.Fatalf("units %+v", units)
	}
	for _, u := range units {
		if u.Environment != prod || !slices.Equal(u.Versions, want[u.Service]) {
			t.Errorf("unit %+v, want versions %v", u, want[u.Service])
		}
		if !u.FirstSeen.Equal(f.start) || !u.LastSeen.Equal(f.now.Add(-m)) {
			t.Errorf("unit %s seen %v – %v", u.Service, u.FirstSeen, u.LastSeen)
		}
	}
	all, err := st.Units(context.Background(), "")
	if err != nil || len(all) != len(want)+1 {
		t.Errorf("all environments: %v %d", err, len(all))
	}
}

func TestScenarioCacheAndTimeout(t *testing.T) {
	f := loadFixture(t)
	st := f.open(t)
	ctx := context.Background()
	q := report.DORAQuery{Environment: prod, Start: f.start, End: f.start.Add(24 * h)}
	first, err := st.DORA(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	// Every production deployment but D9 (window still open at "now") is cached.
	if n := st.cache.len(); n != 10 {
		t.Errorf("cache holds %d entries, want 10", n)
	}
	// Impact served from the cache reports the tests of the verdict the
	// listing computed.
	deps, _, err := st.Deployments(ctx, report.DeploymentQuery{Service: "checkout", Environment: prod, Start: f.start, End: f.at(1*h + 30*m)})
	if err != nil || len(deps) != 1 {
		t.Fatalf("D1: %v %d", err, len(deps))
	}
	im, err := st.Impact(ctx, deps[0].ID)
	if err != nil || !judgedBy(im.LatencyTest.Name, "slow-share") || im.Verdict != report.VerdictNoChange || len(im.Operations) == 0 {
		t.Errorf("D1 impact from the cache: %v %+v", err, im.LatencyTest)
	}
	second, err := st.DORA(ctx, q)
	if err != nil || !equalFigures(first.Summary, second.Summary) {
		t.Errorf("cached DORA differs: %v\n%+v\n%+v", err, first.Summary, second.Summary)
	}
	// The cache off gives the same answer.
	nocache := f.open(t, func(c *Config) { c.CacheSize = -1 })
	third, err := nocache.DORA(ctx, q)
	if err != nil || !equalFigures(first.Summary, third.Summary) {
		t.Errorf("uncached DORA differs: %v", err)
	}

	// A deadline surfaces as context.DeadlineExceeded (HTTP 504).
	short, cancel := context.WithTimeout(ctx, time.Nanosecond)
	defer cancel()
	if _, err := nocache.DORA(short, q); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("timeout error %v", err)
	}
}

// TestScenarioLatencyHistograms checks the two histogram paths: a series
// whose step is whole hours, and a summary, read whole hours from
// latency_hist_1h and only the edge minutes from latency_hist_1m; the result
// must equal reading every minute from latency_hist_1m (the merged
// histograms are the same), for aligned and unaligned ranges. Percentiles are
// within 2.5 % of the weighted quantiles of the generated requests.
func TestScenarioLatencyHistograms(t *testing.T) {
	f := loadFixture(t)
	st := f.open(t)
	ctx := context.Background()
	for _, c := range []struct {
		start, end time.Time
		step       time.Duration // 0: summary
		group      report.GroupBy
		hourly     bool
	}{
		{f.start, f.now, h, report.GroupByVersion, true},
		{f.start, f.now, 2 * h, report.GroupByOperation, true},
		{f.at(17*m + 30*time.Second), f.at(4*h + 43*m), h, report.GroupByNone, true},
		{f.at(17 * m), f.at(4*h + 43*m), 0, report.GroupByVersion, true},
		{f.start, f.now, 0, report.GroupByOperation, true},
		{f.start.Add(-20 * m), f.at(5*h + 1*time.Second), 0, report.GroupByNone, true},
		{f.at(10 * m), f.at(50 * m), h, report.GroupByNone, false},
	} {
		name := fmt.Sprintf("%s–%s/step=%s/group=%d", c.start.Sub(f.start), c.end.Sub(f.start), c.step, c.group)
		for _, svc := range []string{"checkout", "catalog"} {
			q := report.LatencyQuery{Service: svc, Environment: prod, Start: c.start, End: c.end, Step: c.step, GroupBy: c.group}
			if hourly := store.LatencyReadsHours(q, c.step > 0); hourly != c.hourly {
				t.Fatalf("%s: hourly = %v, want %v", name, hourly, c.hourly)
			}
			var (
				got []report.LatencyPoint
				err error
			)
			if c.step > 0 {
				got, err = st.Latency(ctx, q)
			} else {
				got, err = st.LatencySummary(ctx, q)
			}
			if err != nil {
				t.Fatal(err)
			}
			want, err := st.clickhouse().LatencyPointsFromMinutes(ctx, q, c.step > 0, 100000)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) || len(got) == 0 {
				t.Fatalf("%s %s: %d points, minute-only %d", name, svc, len(got), len(want))
			}
			near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b)) }
			for i := range got {
				g, w := got[i], want[i]
				if !g.Time.Equal(w.Time) || g.Group != w.Group || !near(g.Count, w.Count) || !near(g.ErrorCount, w.ErrorCount) ||
					g.P50Ms != w.P50Ms || g.P90Ms != w.P90Ms || g.P95Ms != w.P95Ms || g.P99Ms != w.P99Ms {
					t.Errorf("%s %s point %d: hourly path %+v, minute-only %+v", name, svc, i, g, w)
				}
			}
		}
	}

	// Accuracy against the generated requests: catalog by operation over the
	// whole scenario, weighted quantiles (smallest duration whose cumulative
	// weight reaches q·W).
	sum, err := st.LatencySummary(ctx, report.LatencyQuery{Service: "catalog", Environment: prod, Start: f.start, End: f.now, GroupBy: report.GroupByOperation})
	if err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for _, p := range sum {
		var durs, ws []float64
		for _, sp := range f.truth {
			if sp.service == "catalog" && sp.env == prod && sp.op == p.Group {
				durs = append(durs, float64(sp.dur)/1e6)
				ws = append(ws, sp.weight)
			}
		}
		for i, got := range []float64{p.P50Ms, p.P90Ms, p.P95Ms, p.P99Ms} {
			want := statstest.LowerQuantile(durs, ws, []float64{0.5, 0.9, 0.95, 0.99}[i])
			rel := math.Abs(got-want) / want
			worst = math.Max(worst, rel)
			if rel > 0.025 {
				t.Errorf("catalog %s p%v = %.3f ms, exact %.3f ms (%.2f %%)", p.Group, []float64{0.5, 0.9, 0.95, 0.99}[i]*100, got, want, rel*100)
			}
		}
	}
	t.Logf("summary percentiles within %.2f %% of the exact weighted quantiles", worst*100)
}

// manyPartitions lets one INSERT write more than 100 daily partitions
// (current servers refuse it by default; 18.16 has no such limit).
func manyPartitions(srv *chtest.Server) string {
	if strings.HasPrefix(srv.Version(), "18.") {
		return ""
	}
	return " SETTINGS max_partitions_per_insert_block = 0"
}

// A unit that served one version in every five-minute bucket for 120 days:
// its episodes come out of one linear pass (a lambda capturing the minute arrays copied
// them once per element and asked for 128 GiB here), and the one
// version change is one deployment at its first span.
func TestInferredLongHistory(t *testing.T) {
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	pipelinetest.New(t, srv.Addr(), db, 1, nil).Close(t) // the schema
	const days = 120
	start := time.Now().UTC().Truncate(24*h).AddDate(0, 0, -days)
	switchAt := start.Add((days-1)*24*h + 10*m) // the first bucket of v2
	srv.Exec(t, fmt.Sprintf(`INSERT INTO %s.version_presence (service, environment, version, bucket, first_ns, last_ns)
		SELECT 'ledger', 'production', if(m < %d, 'v1', 'v2'), toDateTime(m), minState(toUInt64(m * 1000000000 + 3000000000)), maxState(toUInt64(m * 1000000000 + 50000000000))
		FROM (SELECT toUInt32(%d + number * 300) AS m FROM system.numbers LIMIT %d)
		GROUP BY m%s`, db, switchAt.Unix(), start.Unix(), days*24*12, manyPartitions(srv)))
	dsn := fmt.Sprintf("clickhouse://%s:%s@%s/%s", chtest.ReadOnlyUser, url.QueryEscape(chtest.ReadOnlyPassword), srv.Addr(), db)
	st := openService(t, dsn, Config{})
	hs, err := st.inferred(context.Background(), unitFilter{Service: "ledger", Environment: "production"})
	if err != nil {
		t.Fatal(err)
	}
	h := hs[unitFilter{Service: "ledger", Environment: "production"}]
	if h.Baseline != "v1" || len(h.Deployments) != 1 || h.Deployments[0].Version != "v2" {
		t.Fatalf("history = %+v, want baseline v1 and one deployment of v2", h)
	}
	if want := switchAt.Add(3 * s); !h.Deployments[0].At.Equal(want) {
		t.Errorf("v2 deployed at %s, want its first span %s", h.Deployments[0].At, want)
	}
}

// With the cache, the settled history is read once and only recent buckets
// per request: the joined episodes equal a full read; a deployment in the
// recent data shows at once; spans arriving later than EpisodesSettle show
// after EpisodesRebuild.
func TestInferredCachedEqualsFullRead(t *testing.T) {
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	pipelinetest.New(t, srv.Addr(), db, 1, nil).Close(t) // the schema
	now := time.Now().UTC().Truncate(5 * m)
	insert := func(version string, from, to time.Time, every time.Duration) {
		srv.Exec(t, fmt.Sprintf(`INSERT INTO %s.version_presence (service, environment, version, bucket, first_ns, last_ns)
			SELECT 'cart', 'production', '%s', toDateTime(intDiv(s, 300) * 300), minState(toUInt64(s) * 1000000000), maxState(toUInt64(s) * 1000000000)
			FROM (SELECT toUInt32(%d + number * %d) AS s FROM system.numbers LIMIT %d)
			GROUP BY s`, db, version, from.Unix(), int(every/s), int(to.Sub(from)/every)))
	}
	// v1 all along (across the settled/recent boundary at now − 1h), a canary
	// v2 twice: 30 minutes three hours ago, and again since 20 minutes ago.
	insert("v1", now.Add(-72*h), now, m)
	insert("v2", now.Add(-3*h), now.Add(-150*m), m)
	dsn := fmt.Sprintf("clickhouse://%s:%s@%s/%s", chtest.ReadOnlyUser, url.QueryEscape(chtest.ReadOnlyPassword), srv.Addr(), db)
	open := func(mut func(*Config)) *Service {
		var cfg Config
		mut(&cfg)
		return openService(t, dsn, cfg)
	}
	cached := open(func(c *Config) { c.EpisodesRebuild = 3 * time.Second })
	full := open(func(c *Config) { c.CacheSize = -1 })
	ctx := context.Background()
	same := func(what string, wantDeployments int) {
		t.Helper()
		a, err := cached.episodesOf(ctx, unitFilter{Environment: "production"})
		if err != nil {
			t.Fatal(err)
		}
		b, err := full.episodesOf(ctx, unitFilter{Environment: "production"})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s: cached episodes %+v\nfull read %+v", what, a, b)
		}
		hs, err := cached.inferred(ctx, unitFilter{Environment: "production"})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(hs[unitFilter{Service: "cart", Environment: "production"}].Deployments); n != wantDeployments {
			t.Errorf("%s: %d deployments, want %d", what, n, wantDeployments)
		}
	}
	same("first read", 2) // v2, and v1 back when the canary stopped
	insert("v2", now.Add(-20*m), now, m)
	same("a canary in the recent buckets", 3)

	// A late batch 10 hours back (settled): a third version for 20 minutes.
	insert("v0", now.Add(-10*h), now.Add(-10*h+20*m), m)
	hs, err := cached.inferred(ctx, unitFilter{Environment: "production"})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(hs[unitFilter{Service: "cart", Environment: "production"}].Deployments); n != 3 {
		t.Errorf("late data in the settled buckets before the rebuild: %d deployments, want the cached 3", n)
	}
	time.Sleep(3 * time.Second)
	same("after the rebuild", 5)
}

// TestSeriesCacheEqualsFullRead: a latency series asked again with its
// range moved by a few minutes (a dashboard refresh, a scroll) reads only
// the buckets around its cached run, and the answer equals reading the
// whole range; a cached bucket is served until SeriesTTL, then read again;
// buckets younger than SeriesSettle are never cached.
func TestSeriesCacheEqualsFullRead(t *testing.T) {
	f := loadFixture(t)
	now := f.now
	clock := func() time.Time { return now }
	cached := f.open(t, func(c *Config) { c.Now = clock; c.SeriesTTL = time.Hour })
	full := f.open(t, func(c *Config) { c.CacheSize = -1 })
	ctx := context.Background()
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b)) }
	same := func(name string, got, want []report.LatencyPoint) {
		t.Helper()
		if len(got) != len(want) || len(got) == 0 {
			t.Fatalf("%s: %d points, full read %d", name, len(got), len(want))
		}
		for i := range got {
			g, w := got[i], want[i]
			if !g.Time.Equal(w.Time) || g.Group != w.Group || !near(g.Count, w.Count) || !near(g.ErrorCount, w.ErrorCount) ||
				g.P50Ms != w.P50Ms || g.P90Ms != w.P90Ms || g.P95Ms != w.P95Ms || g.P99Ms != w.P99Ms {
				t.Fatalf("%s point %d: cached %+v, full read %+v", name, i, g, w)
			}
		}
	}
	for _, group := range []report.GroupBy{report.GroupByVersion, report.GroupByOperation} {
		for _, step := range []time.Duration{m, 5 * m} {
			// A 4-hour window ending at now, then moved back and forth by
			// minutes and seconds, as refreshes and scrolls do.
			for _, back := range []time.Duration{0, m, 7 * m, 30*time.Second + 3*m, 2 * m, 40 * m, 0} {
				q := report.LatencyQuery{Service: "checkout", Environment: prod, Start: now.Add(-back - 4*h), End: now.Add(-back),
					Step: step, GroupBy: group}
				got, err := cached.Latency(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				want, err := full.Latency(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				same(fmt.Sprintf("group %d step %s back %s", group, step, back), got, want)
			}
		}
	}
	// Buckets younger than SeriesSettle (10 minutes) are not cached: the
	// 1-minute by-version series holds the minutes [now−4h−40m, now−10m).
	q := report.LatencyQuery{Service: "checkout", Environment: prod, Start: now.Add(-4 * h), End: now, Step: m, GroupBy: report.GroupByVersion}
	if _, ok := cached.series.get(keyOf(q, now.Add(-11*m).Unix())); !ok {
		t.Error("a settled bucket was not cached")
	}
	if _, ok := cached.series.get(keyOf(q, now.Add(-9*m).Unix())); ok {
		t.Error("a bucket younger than SeriesSettle was cached")
	}

	// A marked bucket in the middle of the range: the next request is
	// served from the cache (and shows the mark) until SeriesTTL.
	mid := now.Add(-2 * h).Unix()
	mark := report.LatencyPoint{Time: time.Unix(mid, 0).UTC(), Group: "from-the-cache", Count: 1}
	cached.series.put(keyOf(q, mid), seriesBucket{points: []report.LatencyPoint{mark}, read: now})
	q.Start, q.End = q.Start.Add(-m), q.End.Add(-m)
	marked := func() bool {
		pts, err := cached.Latency(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(pts, func(p report.LatencyPoint) bool { return p.Group == mark.Group })
	}
	if !marked() {
		t.Fatal("a cached bucket was read again from ClickHouse")
	}
	now = now.Add(time.Hour + m) // past SeriesTTL: read again
	if marked() {
		t.Error("a bucket older than SeriesTTL was served from the cache")
	}
}

// judgedBy reports whether a test name is the before/after rule's own test
// of that kind or, when a control was used, the difference in differences.
func judgedBy(name, kind string) bool {
	return strings.HasPrefix(name, kind) || name == analysis.TestDiD
}
