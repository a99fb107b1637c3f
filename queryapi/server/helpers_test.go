package server

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/experimentspec"
	"github.com/changelens/changelens/queryapi/limits"
	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/usecase"
)

// now is the fixed clock of the tests.
var now = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

const (
	depID      = "0123456789abcdef0123456789abcdef"
	missingID  = "ffffffffffffffffffffffffffffffff"
	secretText = "dial tcp 10.1.2.3:9000: password=hunter2"
)

// fakeSource is a report.Source with fixed answers. It records the last query
// of each kind and checks the invariants the server promises a Source
// (validated, bounded input): a violation is an error, which the server turns
// into a 500 that the tests and the fuzzer catch.
type fakeSource struct {
	mu      sync.Mutex
	latency report.LatencyQuery
	summary report.LatencyQuery
	deps    report.DeploymentQuery
	dora    report.DORAQuery
	unitEnv string
	impact  string
	inc     report.IncidentQuery
	retro   usecase.RetrospectiveQuery
	calls   int

	// fail, when set, is returned by every method.
	fail error
	// block makes every method wait for ctx to end and return ctx.Err().
	block bool
	// panics makes every method panic.
	panics bool
	// delay makes every method take this long (or until ctx ends).
	delay time.Duration
}

func (f *fakeSource) enter(ctx context.Context) error {
	f.mu.Lock()
	f.calls++
	fail, block, panics, delay := f.fail, f.block, f.panics, f.delay
	f.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if panics {
		panic("fake source panic: " + secretText)
	}
	if block {
		<-ctx.Done()
		return fmt.Errorf("clickhouse: read: %w", ctx.Err())
	}
	if _, ok := ctx.Deadline(); !ok {
		return errors.New("fake: query without deadline")
	}
	return fail
}

func (f *fakeSource) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func checkRange(start, end time.Time, max time.Duration) error {
	switch {
	case start.IsZero() || end.IsZero():
		return errors.New("fake: zero time")
	case !start.Before(end):
		return errors.New("fake: start not before end")
	case end.Sub(start) > max:
		return errors.New("fake: range too long")
	case start.Year() < 1970 || end.Year() >= 2100:
		return errors.New("fake: time out of range")
	}
	return nil
}

func checkStr(s string, max int) error {
	if utf8.RuneCountInString(s) > max || strings.ContainsAny(s, "\x00\n\r") {
		return errors.New("fake: bad string")
	}
	return nil
}

func (f *fakeSource) Units(ctx context.Context, env string) ([]report.Unit, error) {
	if err := f.enter(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.unitEnv = env
	f.mu.Unlock()
	return []report.Unit{
		{Service: "checkout", Environment: "production", Versions: []string{"v2", "v1"},
			FirstSeen: now.Add(-48 * time.Hour), LastSeen: now.Add(-time.Minute)},
		{Service: "idle", Environment: "staging"}, // zero values everywhere
	}, checkStr(env, maxNameLen)
}

func (f *fakeSource) checkLatency(q report.LatencyQuery) error {
	if q.Service == "" || q.Environment == "" {
		return errors.New("fake: missing service/environment")
	}
	if q.GroupBy < report.GroupByNone || q.GroupBy > report.GroupByOperation {
		return errors.New("fake: bad group by")
	}
	return errors.Join(checkRange(q.Start, q.End, limits.Default().MaxLatencyRange),
		checkStr(q.Service, maxNameLen), checkStr(q.Environment, maxNameLen),
		checkStr(q.Operation, maxOperationLen), checkStr(q.Version, maxNameLen))
}

func (f *fakeSource) Latency(ctx context.Context, q report.LatencyQuery) ([]report.LatencyPoint, error) {
	if err := f.enter(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.latency = q
	f.mu.Unlock()
	if err := f.checkLatency(q); err != nil {
		return nil, err
	}
	if q.Step < time.Minute || q.Step%time.Minute != 0 || q.End.Sub(q.Start)/q.Step > 2000 {
		return nil, errors.New("fake: bad step")
	}
	return []report.LatencyPoint{
		{Time: q.Start, Group: "v1", Count: 120, ErrorCount: 3, ErrorRate: 0.025, P50Ms: 12.5, P90Ms: 40, P95Ms: 55.25, P99Ms: 120},
		{Time: q.Start.Add(q.Step)}, // an empty bucket: zeros must still be there
	}, nil
}

func (f *fakeSource) LatencySummary(ctx context.Context, q report.LatencyQuery) ([]report.LatencyPoint, error) {
	if err := f.enter(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.summary = q
	f.mu.Unlock()
	if err := f.checkLatency(q); err != nil {
		return nil, err
	}
	return []report.LatencyPoint{{Time: q.Start, Group: "", Count: 1000, ErrorCount: 10, ErrorRate: 0.01, P50Ms: 10, P90Ms: 20, P95Ms: 30, P99Ms: 90}}, nil
}

func sampleDeployment() report.Deployment {
	return report.Deployment{
		ID: depID, Service: "checkout", Environment: "production", Version: "v2", PreviousVersion: "v1",
		DeployTime: now.Add(-2 * time.Hour), RolloutStart: now.Add(-2*time.Hour - time.Minute),
		Source: report.SourceExplicit, CommitSHA: "abc123", CommitTime: now.Add(-5 * time.Hour),
		LeadTime: 3 * time.Hour, HasLeadTime: true, ChangeFailure: true,
		FailureReasons: []report.FailureReason{report.ReasonRolledBack, report.ReasonLatencyRegression},
		RestoreTime:    now.Add(-time.Hour), TimeToRestore: time.Hour, Verdict: report.VerdictDegraded,
		Regressions: []report.Regression{{Operation: "GET /api/export", Metric: "latency_p95_ms", Before: 40, After: 60,
			RelativeChange: 0.5, CILow: 0.3, CIHigh: math.Inf(1), BeforeRequests: 300, AfterRequests: 320}},
		Explanation: "DEGRADED: p95 of GET /api/export 40 → 60 ms (+50 %, [+30 %, +∞], 300 vs 320 requests); other 2 operations within ±3 % on p95.",
	}
}

func (f *fakeSource) Deployments(ctx context.Context, q report.DeploymentQuery) ([]report.Deployment, string, error) {
	if err := f.enter(ctx); err != nil {
		return nil, "", err
	}
	f.mu.Lock()
	f.deps = q
	f.mu.Unlock()
	if err := errors.Join(checkRange(q.Start, q.End, limits.Default().MaxReportRange),
		checkStr(q.Service, maxNameLen), checkStr(q.Environment, maxNameLen)); err != nil {
		return nil, "", err
	}
	if q.PageSize < 1 || q.PageSize > 500 || len(q.PageToken) > maxPageTokenLen {
		return nil, "", errors.New("fake: bad page")
	}
	if q.PageToken == "bogus" {
		return nil, "", &report.InvalidArgumentError{Reason: "page_token: not a page token from this API"}
	}
	inferred := report.Deployment{ // unknown commit, not restored, zero everything
		ID: "fedcba9876543210fedcba9876543210", Service: "cart", Environment: "production", Version: "v7",
		DeployTime: now.Add(-30 * time.Minute), Source: report.SourceInferred, Verdict: report.VerdictPending,
		ReworkReason: report.ReworkHotfix,
	}
	return []report.Deployment{inferred, sampleDeployment()}, "next-page", nil
}

func (f *fakeSource) Impact(ctx context.Context, id string) (report.Impact, error) {
	if err := f.enter(ctx); err != nil {
		return report.Impact{}, err
	}
	f.mu.Lock()
	f.impact = id
	f.mu.Unlock()
	if err := checkID(id); err != nil {
		return report.Impact{}, fmt.Errorf("fake: bad id %q", id)
	}
	if id != depID {
		return report.Impact{}, fmt.Errorf("looking up %s: %w", id, report.ErrNotFound)
	}
	d := sampleDeployment()
	return report.Impact{
		Deployment:   d,
		Before:       report.Window{Start: d.DeployTime.Add(-30 * time.Minute), End: d.DeployTime, Requests: 900, Errors: 9, ErrorRate: 0.01, P50Ms: 10, P95Ms: 40, P99Ms: 80},
		After:        report.Window{Start: d.DeployTime.Add(2 * time.Minute), End: d.DeployTime.Add(32 * time.Minute), Requests: 950, Errors: 0, ErrorRate: 0, P50Ms: 15, P95Ms: 60, P99Ms: 120},
		LatencyRatio: 1.5, ErrorRateDelta: -0.01,
		LatencyTest:     report.Test{Name: "mann-whitney-u", Statistic: 123.5, PValue: 0.0001, Significant: true, Direction: "increase"},
		ErrorRateTest:   report.Test{Name: "two-proportion-z", Statistic: 0, PValue: 1, Significant: false, Direction: "increase"},
		Verdict:         report.VerdictDegraded,
		Reasons:         []report.FailureReason{report.ReasonLatencyRegression},
		WindowsComplete: true,
		Metrics: []report.ImpactMetric{
			{Metric: "latency_p95_ms", Before: 40, After: 60, RelativeChange: 0.5, CILow: 0.3, CIHigh: 0.7, MDE: 0.05, MDEValue: 42,
				PValue: 1e-9, AdjustedPValue: 6e-9, Z: 6.1, Test: "difference-in-differences (controls)", Verdict: report.CompareWorse,
				RawChange: 0.55, ControlChange: 0.34},
			{Metric: "error_rate", Before: 0.01, After: 0, RelativeChange: -1, CILow: -1, CIHigh: math.NaN(), MDE: math.Inf(1), MDEValue: math.Inf(1),
				PValue: 0.02, AdjustedPValue: 0.1, Z: -2.1, Test: "error-rate", Verdict: report.CompareNoDifference},
		},
		Operations: []report.OperationImpact{
			{Operation: "GET /api/export", Operations: 1, BeforeRequests: 300, AfterRequests: 320, Judged: true, Verdict: report.CompareWorse, Rank: 1,
				Metrics: []report.ImpactMetric{{Metric: "latency_p95_ms", Before: 40, After: 60, RelativeChange: 0.5, CILow: 0.3, CIHigh: math.Inf(1),
					MDE: 0.1, MDEValue: 44, PValue: 1e-9, AdjustedPValue: 6e-9, Z: 6.1, Test: "slow-share", Verdict: report.CompareWorse}}},
			{Remainder: true, Operations: 3, BeforeRequests: 20, AfterRequests: 25, Verdict: report.CompareInsufficientData},
		},
		RequestsNeeded: 5500,
		Explanation:    d.Explanation,
		Control: report.Control{Kind: "environment", Series: []string{"cart/production", "search/production"},
			Shifts: []report.ControlShift{{Metric: "latency_p95_ms", Change: 0.34, CILow: 0.3, CIHigh: 0.38}}},
		Attribution: report.Attribution{
			Causes: []report.Cause{
				{Kind: report.CauseOwnDeployment, DeploymentID: depID, Service: d.Service, Environment: d.Environment, Version: d.Version,
					Start: d.DeployTime, End: d.DeployTime, Metric: "latency_mean_ms", Before: 20, After: 31, Explained: 10.5, Share: 0.9, Z: 8.2,
					Significant: true, Rank: 1},
				{Kind: report.CauseFeatureFlag, Flag: "new-pricing", Variant: "on", Start: d.DeployTime.Add(4 * time.Minute),
					End: d.DeployTime.Add(4 * time.Minute), Metric: "latency_mean_ms", Before: 0.1, After: 0.2, Explained: 0.1,
					Share: math.NaN(), Z: math.NaN(), Rank: 2},
			},
			Neighbours: []report.Neighbour{
				{Service: "cart", Environment: "production", Callee: true, CallsPerMinuteBefore: 60, CallsPerMinuteAfter: 61,
					MeanMsBefore: 12, MeanMsAfter: 12.5, ErrorRateBefore: 0, ErrorRateAfter: 0.001},
				{Service: "postgresql", Callee: true, MeanMsBefore: math.NaN(), MeanMsAfter: math.NaN(),
					ErrorRateBefore: math.NaN(), ErrorRateAfter: math.NaN()},
			},
		},
		ErrorKinds: sampleErrorKinds(d.DeployTime),
	}, nil
}

// sampleErrorKinds: a new kind (NEW_ERROR_KIND), one that rose.
func sampleErrorKinds(deployed time.Time) *report.ErrorKinds {
	return &report.ErrorKinds{Tested: true, NewErrorKind: true, BeforeRequests: 900, AfterRequests: 950, HistoryRequests: 120000,
		Family: 2, MDE: 0.0071, Explanation: "NEW_ERROR_KIND: java.lang.NullPointerException at 0.32 % of requests after (0 in 900 before and 120 000 earlier; first trace 4bf92f3577b34da6a3ce929d0e0e4736).",
		New: []report.ErrorKind{{Kind: "java.lang.NullPointerException", New: true, Verdict: report.CompareWorse, After: 3,
			BeforeRate: 0, AfterRate: 3.0 / 950, RateLow: 0.00065, RateHigh: 0.0092, RateRatio: math.Inf(1), RatioLow: 2.1, RatioHigh: math.Inf(1),
			Phi: 1, Minutes: 3, PValue: 0.0004, AdjustedPValue: 0.0008, Test: "error-kind (exact rate test, per-minute dispersion)",
			FirstTraceID: "4bf92f3577b34da6a3ce929d0e0e4736", FirstSeen: deployed.Add(3 * time.Minute)}},
		Rose: []report.ErrorKind{{Kind: "5xx", Verdict: report.CompareWorse, Before: 2, After: 9, BeforeRate: 2.0 / 900, AfterRate: 9.0 / 950,
			RateLow: 0.004, RateHigh: 0.018, RateRatio: 4.26, RatioLow: 1.2, RatioHigh: 25, Phi: 1.2, Minutes: 8, PValue: 0.02, AdjustedPValue: 0.02,
			Test: "error-kind (exact rate test, per-minute dispersion)", FirstTraceID: "5bf92f3577b34da6a3ce929d0e0e4736", FirstSeen: deployed.Add(4 * time.Minute)}},
	}
}

func (f *fakeSource) Graph(ctx context.Context, q report.GraphQuery) ([]report.GraphEdge, error) {
	if err := f.enter(ctx); err != nil {
		return nil, err
	}
	if q.Environment == "" || !q.Start.Before(q.End) {
		return nil, errors.New("fake: bad graph query")
	}
	return []report.GraphEdge{
		{CallerService: "web", CallerEnvironment: q.Environment, CalleeService: "checkout", CalleeEnvironment: q.Environment,
			Calls: 1200, Errors: 3, DurationMs: 54000},
		{CallerService: "checkout", CallerEnvironment: q.Environment, CalleeService: "postgresql", Calls: 0},
	}, nil
}

func (f *fakeSource) Incidents(ctx context.Context, q report.IncidentQuery) ([]report.Incident, error) {
	if err := f.enter(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.inc = q
	f.mu.Unlock()
	if q.Environment == "" || !q.Start.Before(q.End) {
		return nil, errors.New("fake: bad incidents query")
	}
	opened := q.Start.Add(time.Hour)
	return []report.Incident{
		{ID: "pagerduty:Q1ABC", Source: "pagerduty", Status: report.IncidentResolved, Severity: "P1", Title: "Checkout button does nothing",
			Service: "checkout", Environment: q.Environment, Opened: opened, Resolved: opened.Add(20 * time.Minute),
			LinkedDeploymentID: "0123456789abcdef0123456789abcdef"},
		{ID: "alertmanager:5e1c0a7f", Source: "alertmanager", Status: report.IncidentOpen, Severity: "critical",
			Service: "cart", Environment: q.Environment, Opened: opened.Add(time.Minute), DeploymentID: "gh-77"},
	}, nil
}

func (f *fakeSource) DORA(ctx context.Context, q report.DORAQuery) (report.DORAReport, error) {
	if err := f.enter(ctx); err != nil {
		return report.DORAReport{}, err
	}
	f.mu.Lock()
	f.dora = q
	f.mu.Unlock()
	if q.Environment == "" || q.Interval < report.IntervalAll || q.Interval > report.IntervalQuarter {
		return report.DORAReport{}, errors.New("fake: bad dora query")
	}
	if err := errors.Join(checkRange(q.Start, q.End, limits.Default().MaxReportRange),
		checkStr(q.Service, maxNameLen), checkStr(q.Environment, maxNameLen)); err != nil {
		return report.DORAReport{}, err
	}
	sum := report.DORAFigures{
		Start: q.Start, End: q.End, DeploymentCount: 12, DeploymentFrequencyPerDay: 0.4,
		ChangeCount: 10, FailedChangeCount: 1, ChangeFailureRate: 0.1,
		LeadTimeMedianSeconds: 7200, LeadTimeSampleCount: 9,
		TimeToRestoreMedianSeconds: 0, RestoreSampleCount: 0,
		FrequencyTier: report.TierHigh, LeadTimeTier: report.TierElite,
		ChangeFailureRateTier: report.TierHigh, TimeToRestoreTier: report.TierUnknown,
		ReworkCount: 3, ReworkRate: 0.25,
		Benchmarks: []report.MetricBenchmark{
			{Metric: "lead_time", Edition: q.Edition, Scored: true, Score: 8, IndustryMean: 5.5, IndustryStd: 2.4, Percentile: 0.85},
			{Metric: "failed_deployment_recovery_time", Edition: q.Edition, IndustryMean: 7.4, IndustryStd: 2.1},
		},
	}
	rep := report.DORAReport{Summary: sum}
	if q.Interval != report.IntervalAll {
		empty := report.DORAFigures{Start: q.Start, End: q.Start.Add(24 * time.Hour)}
		rep.Intervals = []report.DORAFigures{empty, sum}
	}
	return rep, nil
}

// pingSource is a fakeSource with a Ping whose result the test sets.
type pingSource struct {
	fakeSource
	mu  sync.Mutex
	err error
}

func (p *pingSource) Ping(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func (p *pingSource) setPing(err error) {
	p.mu.Lock()
	p.err = err
	p.mu.Unlock()
}

// testServer is a Server serving on loopback ports.
type testServer struct {
	*Server
	base string           // http://127.0.0.1:port
	conn *grpc.ClientConn // to the gRPC port
	done chan error       // Serve's result
	stop func()           // shuts the server down and waits (startServer)
}

func startServer(t testing.TB, cfg Config) *testServer {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return now }
	}
	if cfg.Logger == nil {
		cfg.Logger = discardLogger()
	}
	if cfg.Teams == nil { // a test without teams passes &teams.Mapping{}
		cfg.Teams = testMapping(t)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := startServerWith(t, srv, ctx)
	var once sync.Once
	ts.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-ts.done:
				if err != nil {
					t.Errorf("Serve: %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Error("Serve did not return after cancel")
			}
		})
	}
	t.Cleanup(ts.stop)
	return ts
}

// startServerWith serves srv on free loopback ports until ctx ends.
func startServerWith(t testing.TB, srv *Server, ctx context.Context) *testServer {
	t.Helper()
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, gl, hl) }()
	conn, err := grpc.NewClient(gl.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &testServer{Server: srv, base: "http://" + hl.Addr().String(), conn: conn, done: done}
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// get performs GET base+path (path includes the query) and returns the status
// and the raw body.
func (ts *testServer) get(t testing.TB, path string, header ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, ts.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// getJSON is get that decodes the body with numbers kept as json.Number.
func (ts *testServer) getJSON(t testing.TB, path string, header ...string) (int, map[string]any) {
	t.Helper()
	code, body := ts.get(t, path, header...)
	return code, decode(t, body)
}

func decode(t testing.TB, body []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("body is not a JSON object: %v\n%s", err, body)
	}
	return m
}

// Compare answers a fixed comparison; it errors (→ 500) on any query the
// server should have rejected.
func (f *fakeSource) Compare(ctx context.Context, q report.CompareQuery) (report.Comparison, error) {
	if err := f.enter(ctx); err != nil {
		return report.Comparison{}, err
	}
	if q.Service == "" || q.Environment == "" || q.Control == "" || q.Treatment == "" || q.Control == q.Treatment ||
		q.Dimension != "version" || q.ExpectedShare < 0 || q.ExpectedShare >= 1 {
		return report.Comparison{}, errors.New("fake: bad compare query")
	}
	if err := errors.Join(checkRange(q.Start, q.End, limits.Default().MaxLatencyRange), checkStr(q.Service, maxNameLen),
		checkStr(q.Control, maxNameLen), checkStr(q.Treatment, maxNameLen), checkStr(q.Operation, maxOperationLen)); err != nil {
		return report.Comparison{}, err
	}
	c := report.Comparison{
		Control:        report.Cohort{Value: q.Control, Requests: 9500, Share: 0.95},
		Treatment:      report.Cohort{Value: q.Treatment, Requests: 500, Share: 0.05},
		OverlapMinutes: 60,
		Verdict:        report.CompareWorse,
		Metrics: []report.CompareMetric{{Metric: "latency_p95_ms", Control: 70, Treatment: 105, RelativeChange: 0.5,
			CILow: 0.4, CIHigh: 0.6, PValue: 1e-6, Test: "wilcoxon-signed-rank (per-minute)", Verdict: report.CompareWorse}},
	}
	if q.ExpectedShare > 0 {
		c.SRM = &report.SampleRatio{ExpectedShare: q.ExpectedShare, ObservedShare: 0.05, PValue: 0.9}
	}
	c.ErrorKinds = sampleErrorKinds(q.Start)
	return c, nil
}

// Cohorts answers the versions 1.0 and 1.1; it errors on a query the server
// should have rejected.
func (f *fakeSource) Cohorts(ctx context.Context, q report.CohortQuery) ([]report.CohortDimension, error) {
	if err := f.enter(ctx); err != nil {
		return nil, err
	}
	if q.Service == "" || q.Environment == "" {
		return nil, errors.New("fake: bad cohorts query")
	}
	if err := errors.Join(checkRange(q.Start, q.End, limits.Default().MaxLatencyRange), checkStr(q.Service, maxNameLen)); err != nil {
		return nil, err
	}
	return []report.CohortDimension{{Dimension: "version", Values: []report.CohortValue{{Value: "1.0", Requests: 9500}, {Value: "1.1", Requests: 500}}}}, nil
}

// Gate answers FAIL for version "bad", PASS for "good", else INCONCLUSIVE;
// it errors on a query the server should have rejected.
func (f *fakeSource) Gate(ctx context.Context, q report.GateQuery) (report.GateAnswer, error) {
	if err := f.enter(ctx); err != nil {
		return report.GateAnswer{}, err
	}
	if q.Service == "" || q.Environment == "" || q.Version == "" || q.Version == q.BaselineVersion {
		return report.GateAnswer{}, errors.New("fake: bad gate query")
	}
	a := report.GateAnswer{Result: report.GateInconclusive, Reasons: []report.GateReason{report.GateReasonInsufficientData},
		EvaluatedAt: now, Control: report.Cohort{Value: cmp.Or(q.BaselineVersion, "1.0")}, Treatment: report.Cohort{Value: q.Version},
		Explanation: "INCONCLUSIVE: too little data yet"}
	switch q.Version {
	case "bad":
		a.Result, a.Mode, a.Reasons, a.DeploymentID = report.GateFail, report.GateCanary, []report.GateReason{report.GateReasonLatencyRegression}, "d1"
		a.Metrics = []report.CompareMetric{{Metric: "latency_p95_ms", Control: 70, Treatment: 105, RelativeChange: 0.5,
			PValue: 1e-4, Test: "msprt-always-valid", Verdict: report.CompareWorse}}
		a.Explanation = "FAIL: bad is worse than 1.0"
	case "slow":
		a.Result, a.Mode, a.Reasons, a.DeploymentID = report.GateFail, report.GateBeforeAfter, []report.GateReason{report.GateReasonLatencyRegression}, "d3"
		a.Regressions = sampleDeployment().Regressions
		a.Explanation = "FAIL: slow regressed against 1.0 after its deployment"
	case "good":
		a.Result, a.Mode, a.Reasons, a.DeploymentID = report.GatePass, report.GateBeforeAfter, nil, "d2"
		a.Explanation = "PASS"
	}
	return a, nil
}

// slowPingSource is a fakeSource whose Ping waits until release is closed.
type slowPingSource struct {
	fakeSource
	release chan struct{}
}

func (p *slowPingSource) Ping(ctx context.Context) error {
	select {
	case <-p.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// expID is the experiment fakeSource knows.
const expID = "graphql-screen"

func fakeExperiment() usecase.ExperimentResult {
	spec := experimentspec.Spec{ID: expID, Unit: analysis.ExperimentUnit{Service: "app", Environment: "production"},
		Dimension: "flag:screen-api", Variants: []analysis.ExperimentVariant{{Name: "rest", Control: true, Share: 0.5}, {Name: "graphql", Share: 0.5}},
		PrimaryMetric: &analysis.PrimaryMetric{Metric: "load_p75", MinEffect: 0.05}, Guardrails: []analysis.Guardrail{{Metric: "cpu_per_request", MaxDegradation: 0.1}},
		StartTime: time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), PlannedDuration: "14d", LoadOperations: []string{"screen order"}}
	return usecase.ExperimentResult{Spec: spec, Source: "graphql.yaml", Status: usecase.ExperimentComplete,
		AsOf: spec.End(), Report: analysis.ExperimentReport{ID: expID, Elapsed: 14 * 24 * time.Hour, Decision: analysis.DecisionDontShip,
			Reason: analysis.ReasonGuardrailFailed, Summary: "−40 % payload, 2.0 × CPU per request: guardrail cost failed",
			Treatments: []analysis.TreatmentDecision{{Treatment: "graphql", Decision: analysis.DecisionDontShip, Reason: analysis.ReasonGuardrailFailed,
				Metrics: []analysis.MetricResult{{Metric: "cpu_per_request", Role: analysis.RoleGuardrail, Control: 1, TreatmentValue: 2,
					Relative: 1, RelLow: 0.9, RelHigh: 1.1, PValue: math.NaN(), Verdict: analysis.VerdictFailed}}}}}}
}

func (f *fakeSource) Experiments(ctx context.Context, now time.Time) ([]usecase.ExperimentResult, error) {
	if err := f.enter(ctx); err != nil {
		return nil, err
	}
	return []usecase.ExperimentResult{fakeExperiment()}, nil
}

func (f *fakeSource) ExperimentReport(ctx context.Context, id string, asOf time.Time) (usecase.ExperimentResult, error) {
	if err := f.enter(ctx); err != nil {
		return usecase.ExperimentResult{}, err
	}
	if id != expID {
		return usecase.ExperimentResult{}, report.ErrNotFound
	}
	return fakeExperiment(), nil
}

func (f *fakeSource) PlanExperiment(ctx context.Context, spec experimentspec.Spec, now time.Time) (usecase.ExperimentPlan, error) {
	if err := f.enter(ctx); err != nil {
		return usecase.ExperimentPlan{}, err
	}
	if err := spec.Validate(); err != nil {
		return usecase.ExperimentPlan{}, fmt.Errorf("fake: an invalid definition reached the source: %w", err)
	}
	return usecase.ExperimentPlan{ExperimentPlan: analysis.ExperimentPlan{Message: "at your traffic, detecting 5 % on load p75 needs 9 days; planned 14",
		Sufficient: true, Primary: analysis.MetricPlan{Metric: "load_p75", Effect: -0.05, DaysNeeded: 9, MDEAtPlanned: -0.04, OK: true}}, UnitsPerDay: 1000}, nil
}
