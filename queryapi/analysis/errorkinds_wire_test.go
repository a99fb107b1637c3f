package analysis

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/changelens/changelens/queryapi/report"
)

// newKindJudgement is the rule's answer for a unit of 600 requests a
// minute whose after window shows a new kind in 13 minutes (0.07 %).
func newKindJudgement(t *testing.T) ErrorKindJudgement {
	t.Helper()
	first := time.Date(2026, 3, 1, 12, 5, 7, 0, time.UTC)
	j := JudgeErrorKinds(ErrorKindEvidence{BeforeRequests: perMinute(30, 600), AfterRequests: perMinute(30, 600),
		Kinds: []ErrorKindCounts{
			{Kind: "java.lang.NullPointerException", Before: perMinute(30, 0), After: spread(30, 13),
				FirstTraceID: "4bf92f3577b34da6a3ce929d0e0e4736", FirstSeen: first},
			{Kind: "5xx", Before: spread(30, 10), After: spread(30, 11)},
		}}, DefaultConfig())
	if !j.NewErrorKind {
		t.Fatalf("fixture: %+v", j)
	}
	return j
}

// How NEW_ERROR_KIND combines with the before/after rule's verdict
// (JudgeErrorKinds' documentation).
func TestWithErrorKinds(t *testing.T) {
	ek := newKindJudgement(t)
	none := ek
	none.NewErrorKind = false
	cause := &report.Cause{Kind: report.CauseCalleeDeployment}
	for _, tc := range []struct {
		verdict report.Verdict
		reasons []report.FailureReason
		cause   *report.Cause
		want    report.Verdict
		wantR   []report.FailureReason
	}{
		{report.VerdictNoChange, nil, nil, report.VerdictDegraded, []report.FailureReason{report.ReasonNewErrorKind}},
		{report.VerdictImproved, nil, nil, report.VerdictDegraded, []report.FailureReason{report.ReasonNewErrorKind}},
		{report.VerdictDegraded, []report.FailureReason{report.ReasonLatencyRegression}, nil, report.VerdictDegraded,
			[]report.FailureReason{report.ReasonLatencyRegression, report.ReasonNewErrorKind}},
		{report.VerdictCausedByDependency, []report.FailureReason{report.ReasonLatencyRegression}, cause, report.VerdictDegraded,
			[]report.FailureReason{report.ReasonNewErrorKind}},
		{report.VerdictPending, nil, nil, report.VerdictPending, nil},
		{report.VerdictInsufficientData, nil, nil, report.VerdictInsufficientData, nil},
	} {
		j := Judgement{Verdict: tc.verdict, Regressions: tc.reasons, Cause: tc.cause}
		got := j.WithErrorKinds(ek)
		if got.Verdict != tc.want || !slices.Equal(got.Regressions, tc.wantR) || got.ErrorKinds == nil {
			t.Errorf("%s → %s %v, want %s %v", tc.verdict, got.Verdict, got.Regressions, tc.want, tc.wantR)
		}
		if tc.verdict == report.VerdictCausedByDependency && got.Cause != nil {
			t.Error("a new kind is the deployment's own: no cause")
		}
		if got := j.WithErrorKinds(none); got.Verdict != tc.verdict || !slices.Equal(got.Regressions, tc.reasons) {
			t.Errorf("%s without a new kind → %s %v", tc.verdict, got.Verdict, got.Regressions)
		}
	}
}

// The API's shape: the new kinds, the kinds that rose, and the new kind's
// regression entry naming its rate and first trace; the explanation and
// the gate carry it.
func TestErrorKindsReportExplainGate(t *testing.T) {
	ek := newKindJudgement(t)
	r := ek.Report()
	if len(r.New) != 1 || r.New[0].Kind != "java.lang.NullPointerException" || r.New[0].Verdict != report.CompareWorse ||
		!math.IsInf(r.New[0].RateRatio, 1) || r.New[0].FirstTraceID != "4bf92f3577b34da6a3ce929d0e0e4736" || len(r.Rose) != 0 {
		t.Fatalf("report: %+v", r)
	}
	regs := ErrorKindRegressions(r)
	if len(regs) != 1 || regs[0].Metric != MetricNewErrorKind || regs[0].ErrorKind != "java.lang.NullPointerException" ||
		regs[0].FirstTraceID != "4bf92f3577b34da6a3ce929d0e0e4736" || math.Abs(regs[0].After-13.0/18000) > 1e-12 || regs[0].Before != 0 {
		t.Fatalf("regressions: %+v", regs)
	}
	if (*ErrorKindJudgement)(nil).Report() != nil || ErrorKindRegressions(nil) != nil {
		t.Error("nil judgement")
	}

	cfg := DefaultConfig()
	j := Judgement{Verdict: report.VerdictNoChange}.WithErrorKinds(ek)
	it := &Item{Deployment: report.Deployment{ID: "d", Service: "api", Environment: "production", Version: "2"}}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	it.Before, it.After = Span{at.Add(-30 * time.Minute), at}, Span{at.Add(2 * time.Minute), at.Add(32 * time.Minute)}
	im := (&Timeline{cfg: cfg}).Impact(it, j, WindowStats{Requests: 18000}, WindowStats{Requests: 18000})
	if im.Verdict != report.VerdictDegraded || !slices.Equal(im.Reasons, []report.FailureReason{report.ReasonNewErrorKind}) ||
		!im.Deployment.ChangeFailure || len(im.Deployment.Regressions) != 1 || im.Deployment.Regressions[0].ErrorKind != "java.lang.NullPointerException" {
		t.Fatalf("impact: %s %v %+v", im.Verdict, im.Reasons, im.Deployment.Regressions)
	}
	for _, want := range []string{"DEGRADED: NEW_ERROR_KIND: java.lang.NullPointerException at 0.072 % of requests after (0 in 18 000 before",
		"first trace 4bf92f3577b34da6a3ce929d0e0e4736"} {
		if !strings.Contains(im.Explanation, want) {
			t.Errorf("explanation %q lacks %q", im.Explanation, want)
		}
	}

	res, reasons := BeforeAfter(im, cfg)
	if res != report.GateFail || !slices.Equal(reasons, []report.FailureReason{report.ReasonNewErrorKind}) {
		t.Errorf("gate on a settled NEW_ERROR_KIND: %v %v", res, reasons)
	}
	// So far (PENDING), with a regression another change explains: the
	// new kind still fails the rollout.
	pending := im
	pending.Verdict = report.VerdictPending
	pending.Deployment.Cause = &report.Cause{Kind: report.CauseCalleeDeployment}
	pending.Metrics = []report.ImpactMetric{{Metric: MetricErrorRate, Verdict: report.CompareWorse}}
	if res, reasons := BeforeAfter(pending, cfg); res != report.GateFail || !slices.Equal(reasons, []report.FailureReason{report.ReasonNewErrorKind}) {
		t.Errorf("gate so far: %v %v", res, reasons)
	}
	pending.ErrorKinds = nil
	if res, _ := BeforeAfter(pending, cfg); res != report.GatePass {
		t.Errorf("gate so far without a new kind, the regression explained elsewhere: %v", res)
	}
	dep := im.Deployment
	a := Gate(GateEvidence{Version: "2", Baseline: "1", Deployment: &dep, Impact: &im, Now: at.Add(time.Hour)}, cfg, DefaultCompareConfig(), DefaultGateConfig())
	if a.Result != report.GateFail || !slices.Equal(a.Reasons, []report.GateReason{report.GateReasonNewErrorKind}) ||
		!strings.Contains(a.Explanation, "new error kind java.lang.NullPointerException at 0.072 % of requests (0 before; first trace 4bf92f3577b34da6a3ce929d0e0e4736)") ||
		len(a.Regressions) != 1 || a.Regressions[0].Metric != MetricNewErrorKind {
		t.Errorf("gate: %v %v %q %+v", a.Result, a.Reasons, a.Explanation, a.Regressions)
	}
}
