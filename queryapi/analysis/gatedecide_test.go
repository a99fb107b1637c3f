package analysis

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/changelens/changelens/queryapi/report"
)

// TestGateRule runs the gate's rule on evidence built by hand, one case per
// mode and reason, without a store: which evidence decides, the result, the
// typed reasons and the sentence a person acts on.
func TestGateRule(t *testing.T) {
	cfg := DefaultConfig()
	cc := DefaultCompareConfig()
	cc.BucketValue = msValue
	cc.BootstrapResamples = 0
	gc := DefaultGateConfig()
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	dep := &report.Deployment{ID: "0123456789abcdef0123456789abcdef", Version: "2.0", PreviousVersion: "1.0"}
	slowCanary := experiment(rand.New(rand.NewPCG(7, 1)), 30, 600, 0.2, 1.5, 0.01, 0.01)
	healthy := experiment(rand.New(rand.NewPCG(7, 2)), 30, 600, 0.2, 1, 0.01, 0.01)
	impact := func(v report.Verdict, cause *report.Cause) *report.Impact {
		im := &report.Impact{Verdict: v, Deployment: report.Deployment{Cause: cause}}
		im.Before.Requests, im.After.Requests = 5000, 5000
		if v == report.VerdictDegraded {
			im.Reasons = []report.FailureReason{report.ReasonLatencyRegression}
		}
		return im
	}
	for _, c := range []struct {
		name    string
		ev      GateEvidence
		mode    report.GateMode
		result  report.GateResult
		reasons []report.GateReason
		says    string
	}{
		{"nothing deployed, no baseline", GateEvidence{Version: "2.0"}, 0, report.GateInconclusive,
			[]report.GateReason{report.GateReasonNoDeployment}, "no deployment of 2.0 in the last 7 days"},
		{"a first deployment", GateEvidence{Version: "2.0", Deployment: &report.Deployment{ID: "d", Version: "2.0"}}, 0, report.GateInconclusive,
			[]report.GateReason{report.GateReasonNoBaseline}, "no previous version"},
		{"never served beside the baseline", GateEvidence{Version: "2.0", Baseline: "1.0"}, 0, report.GateInconclusive,
			[]report.GateReason{report.GateReasonInsufficientData}, "never served in the same minute"},
		{"a slow canary", GateEvidence{Version: "2.0", Baseline: "1.0", Pairs: slowCanary, LastShared: now.Add(-time.Minute)},
			report.GateCanary, report.GateFail, []report.GateReason{report.GateReasonLatencyRegression}, "FAIL: 2.0 is worse than 1.0"},
		{"a healthy canary", GateEvidence{Version: "2.0", Baseline: "1.0", Pairs: healthy, LastShared: now.Add(-time.Minute)},
			report.GateCanary, report.GatePass, nil, "PASS: 2.0 shows no regression against 1.0"},
		{"a canary of 3 minutes, still serving", GateEvidence{Version: "2.0", Baseline: "1.0", Deployment: dep, Pairs: healthy[:3], LastShared: now.Add(-time.Minute)},
			report.GateCanary, report.GateInconclusive, []report.GateReason{report.GateReasonInsufficientData}, "too little data yet"},
		{"a replaced version that regressed", GateEvidence{Version: "2.0", Baseline: "1.0", Deployment: dep, Impact: impact(report.VerdictDegraded, nil)},
			report.GateBeforeAfter, report.GateFail, []report.GateReason{report.GateReasonLatencyRegression}, "FAIL: 2.0"},
		{"a regression another deploy explains", GateEvidence{Version: "2.0", Baseline: "1.0", Deployment: dep,
			Impact: impact(report.VerdictCausedByDependency, &report.Cause{Kind: report.CauseCalleeDeployment, Service: "checkout", Version: "1.1"})},
			report.GateBeforeAfter, report.GatePass, nil, "explained by"},
		// Three minutes side by side long ago, then replaced: the before/after
		// windows decide, not a canary comparison of three minutes.
		{"a short canary long withdrawn", GateEvidence{Version: "2.0", Baseline: "1.0", Deployment: dep, Pairs: healthy[:3],
			LastShared: now.Add(-time.Hour), Impact: impact(report.VerdictNoChange, nil)},
			report.GateBeforeAfter, report.GatePass, nil, "PASS: 2.0 shows no regression"},
	} {
		c.ev.Now = now
		if got := GateModeOf(c.ev, cc); got != c.mode {
			t.Errorf("%s: mode %v, want %v", c.name, got, c.mode)
		}
		a := Gate(c.ev, cfg, cc, gc)
		if a.Result != c.result || !slices.Equal(a.Reasons, c.reasons) || a.Mode != c.mode {
			t.Errorf("%s: %v %v mode %v, want %v %v mode %v", c.name, a.Result, a.Reasons, a.Mode, c.result, c.reasons, c.mode)
		}
		if !strings.Contains(a.Explanation, c.says) {
			t.Errorf("%s: explanation %q does not say %q", c.name, a.Explanation, c.says)
		}
		if c.ev.Deployment != nil && a.DeploymentID != c.ev.Deployment.ID || !a.EvaluatedAt.Equal(now) {
			t.Errorf("%s: deployment %q at %v", c.name, a.DeploymentID, a.EvaluatedAt)
		}
	}
}
