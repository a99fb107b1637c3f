package usecase

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/changelens/changelens/internal/schema"
	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/store"
)

const (
	// gateLookback: how far back a gate looks for the deployment of the
	// version it is asked about.
	gateLookback = 7 * 24 * time.Hour
	// gateServing: both versions served within this long → the canary is
	// running and the gate compares them in the same minutes.
	gateServing = 10 * time.Minute
)

// Gate answers whether the rollout of q.Version may continue
// (docs/analysis.md, "Gate"): CANARY while it and its baseline both serve,
// or once they served side by side for MinOverlapMinutes since the rollout
// began — the same-window comparison, decided by a sequential test that
// stays valid however often a controller asks — else BEFORE_AFTER, the
// before/after windows of its deployment so far.
// Too little data is INCONCLUSIVE, never FAIL.
func (s *Service) Gate(ctx context.Context, q report.GateQuery) (report.GateAnswer, error) {
	if q.Service == "" || q.Environment == "" || q.Version == "" {
		return report.GateAnswer{}, invalid("service, environment and version are required")
	}
	if q.BaselineVersion == q.Version {
		return report.GateAnswer{}, invalid("baseline_version must differ from version")
	}
	now := s.cfg.Now()
	a := report.GateAnswer{Result: report.GateInconclusive, EvaluatedAt: now, Treatment: report.Cohort{Value: q.Version}}
	dep, err := s.latestDeployment(ctx, q, now)
	if err != nil {
		return report.GateAnswer{}, err
	}
	baseline := q.BaselineVersion
	if dep != nil {
		a.DeploymentID = dep.ID
		if baseline == "" {
			baseline = dep.PreviousVersion
		}
	}
	a.Control.Value = baseline
	if baseline == "" {
		a.Reasons = []string{report.GateReasonNoBaseline}
		if dep == nil {
			a.Reasons = []string{report.GateReasonNoDeployment}
		}
		a.Explanation = explainGate(a, s.cfg.Analysis, "")
		return a, nil
	}

	// The minutes both served, since the rollout began (or the longest
	// comparison range when no deployment is known).
	start := now.Add(-s.cfg.Limits.CompareRange()).Truncate(time.Minute).Add(time.Minute)
	if dep != nil && dep.RolloutStart.After(start) {
		start = dep.RolloutStart.Truncate(time.Minute)
	}
	rows, err := s.st.CohortMinutes(ctx, report.CompareQuery{Service: q.Service, Environment: q.Environment, Start: start, End: now,
		Dimension: schema.DimensionVersion, Control: baseline, Treatment: q.Version}, false, 2*maxCompareMinutes)
	if err != nil {
		return report.GateAnswer{}, err
	}
	pairs := pairsOf(rows, q.Version)
	var detail string // BEFORE_AFTER: what regressed, where
	switch {
	case len(pairs) > 0 && (dep == nil || len(pairs) >= compareConfig().MinOverlapMinutes || lastShared(rows).After(now.Add(-gateServing))):
		// Serving side by side now, or long enough since the rollout began
		// to be judged so (a canary already withdrawn): the same-window
		// comparison is the evidence; the unit's before/after windows would
		// mostly measure the baseline's traffic.
		// The same CPU-bound comparison as Compare: on a compute slot too.
		var g analysis.CanaryGate
		if err := s.compute(ctx, func() { g = analysis.Canary(pairs, s.cfg.Analysis, compareConfig(), analysis.DefaultGateConfig()) }); err != nil {
			return report.GateAnswer{}, err
		}
		a.Mode, a.OverlapMinutes, a.Metrics = report.GateCanary, g.Comparison.OverlapMinutes, metricsOf(g.Comparison)
		a.Control, a.Treatment = cohortsOf(report.CompareQuery{Control: baseline, Treatment: q.Version}, g.Comparison)
		a.Result, a.Reasons = gateResult(g.Result, g.Reasons)
	case dep != nil:
		im, err := s.Impact(ctx, dep.ID)
		if err != nil {
			return report.GateAnswer{}, err
		}
		res, reasons := analysis.BeforeAfter(im, s.cfg.Analysis)
		a.Mode, a.Metrics = report.GateBeforeAfter, windowMetrics(im)
		a.Regressions = analysis.Regressions(im.Metrics, im.Operations)
		detail = analysis.DescribeRegressions(im, s.cfg.Analysis)
		if c := im.Deployment.Cause; c != nil && res == report.GatePass {
			detail = "regressed, explained by " + analysis.DescribeCause(*c)
		}
		a.Control.Requests, a.Treatment.Requests = im.Before.Requests, im.After.Requests
		a.Result, a.Reasons = gateResult(res, reasons)
	default: // the version never served in the same minute as the baseline, and was not deployed
		a.Reasons = []string{report.GateReasonInsufficientData}
	}
	a.Explanation = explainGate(a, s.cfg.Analysis, detail)
	return a, nil
}

// latestDeployment is the newest successful deployment of q.Version to the
// unit within gateLookback, or nil.
func (s *Service) latestDeployment(ctx context.Context, q report.GateQuery, now time.Time) (*report.Deployment, error) {
	dq := report.DeploymentQuery{Service: q.Service, Environment: q.Environment, Start: now.Add(-gateLookback), End: now.Add(time.Minute), PageSize: 500}
	for {
		deps, next, err := s.Deployments(ctx, dq)
		if err != nil {
			return nil, err
		}
		for i := range deps {
			if d := &deps[i]; d.Version == q.Version && !d.Failed {
				return d, nil
			}
		}
		if next == "" {
			return nil, nil
		}
		dq.PageToken = next
	}
}

// lastShared is the latest minute in rows (ordered by minute, cohort) in
// which both cohorts served.
func lastShared(rows []store.CohortMinute) time.Time {
	var last time.Time
	for i := 0; i+1 < len(rows); i++ {
		if rows[i].Minute.Equal(rows[i+1].Minute) && rows[i].Requests > 0 && rows[i+1].Requests > 0 {
			last = rows[i].Minute
		}
	}
	return last
}

func gateResult(r report.GateResult, reasons []report.FailureReason) (report.GateResult, []string) {
	switch r {
	case report.GatePass:
		return report.GatePass, nil
	case report.GateFail:
		out := make([]string, 0, len(reasons))
		for _, reason := range reasons {
			switch reason {
			case report.ReasonLatencyRegression:
				out = append(out, report.GateReasonLatencyRegression)
			case report.ReasonErrorRateRegression:
				out = append(out, report.GateReasonErrorRateRegression)
			}
		}
		return report.GateFail, out
	}
	return report.GateInconclusive, []string{report.GateReasonInsufficientData}
}

// windowMetrics shows a before/after impact in the comparison's shape: the
// unit's guarded metrics, before as control, after as treatment.
func windowMetrics(im report.Impact) []report.CompareMetric {
	out := make([]report.CompareMetric, 0, len(im.Metrics))
	for _, m := range im.Metrics {
		out = append(out, report.CompareMetric{Metric: m.Metric, Control: m.Before, Treatment: m.After,
			RelativeChange: m.RelativeChange, CILow: m.CILow, CIHigh: m.CIHigh, PValue: m.AdjustedPValue, Test: m.Test, Verdict: m.Verdict})
	}
	return out
}

// explainGate is the one sentence of a gate answer: what was found, on how
// much data, and what to do. detail (BEFORE_AFTER) names what regressed
// where, with figures.
func explainGate(a report.GateAnswer, cfg analysis.Config, detail string) string {
	ctrl, treat := a.Control.Value, a.Treatment.Value
	switch a.Result {
	case report.GateFail:
		if a.Mode == report.GateBeforeAfter && detail != "" {
			return fmt.Sprintf("FAIL: %s regressed against %s after its deployment — %s — %s; stop the rollout and roll back %s.",
				treat, ctrl, detail, dataSize(a), treat)
		}
		var parts []string
		for _, m := range a.Metrics {
			guarded := m.Metric == analysis.MetricLatencyP95 || m.Metric == analysis.MetricLatencyP99 || m.Metric == analysis.MetricErrorRate
			if m.Verdict != report.CompareWorse || !guarded { // the metrics the decision rests on
				continue
			}
			switch m.Metric {
			case analysis.MetricErrorRate:
				parts = append(parts, fmt.Sprintf("error rate %.2f%% vs %.2f%%", 100*m.Treatment, 100*m.Control))
			default:
				parts = append(parts, fmt.Sprintf("%s %.0f ms vs %.0f ms (%+.0f%%, p = %.2g)", metricLabel(m.Metric), m.Treatment, m.Control, 100*m.RelativeChange, m.PValue))
			}
		}
		return fmt.Sprintf("FAIL: %s is worse than %s — %s — %s; stop the rollout and roll back %s.",
			treat, ctrl, strings.Join(parts, "; "), dataSize(a), treat)
	case report.GatePass:
		if a.Mode == report.GateBeforeAfter && detail != "" {
			// A regression another change explains: rolling this back would
			// not undo it.
			return fmt.Sprintf("PASS: %s %s, not by its own change (%s); the rollout may continue — the cause is where to act.", treat, detail, dataSize(a))
		}
		return fmt.Sprintf("PASS: %s shows no regression against %s (%s); the rollout may continue.", treat, ctrl, dataSize(a))
	}
	switch {
	case len(a.Reasons) > 0 && a.Reasons[0] == report.GateReasonNoDeployment:
		return fmt.Sprintf("INCONCLUSIVE: no deployment of %s in the last 7 days and no baseline_version given; send traffic to %s or name the baseline.", treat, treat)
	case len(a.Reasons) > 0 && a.Reasons[0] == report.GateReasonNoBaseline:
		return fmt.Sprintf("INCONCLUSIVE: the deployment of %s has no previous version to compare with; name one with baseline_version.", treat)
	case a.Mode == report.GateCanary:
		return fmt.Sprintf("INCONCLUSIVE: too little data yet (%s; need %d minutes and %.0f requests on each side); ask again later.",
			dataSize(a), analysis.DefaultCompareConfig().MinOverlapMinutes, cfg.MinRequests)
	case a.Mode == report.GateBeforeAfter:
		return fmt.Sprintf("INCONCLUSIVE: too little traffic around the deployment of %s (%.0f requests before, %.0f after; need %.0f each); ask again later.",
			treat, a.Control.Requests, a.Treatment.Requests, cfg.MinRequests)
	}
	return fmt.Sprintf("INCONCLUSIVE: %s and %s never served in the same minute and %s has no deployment in the last 7 days; send traffic to %s and ask again.", treat, ctrl, treat, treat)
}

func dataSize(a report.GateAnswer) string {
	if a.Mode == report.GateBeforeAfter {
		return fmt.Sprintf("before/after windows of its deployment, %.0f requests before and %.0f after", a.Control.Requests, a.Treatment.Requests)
	}
	return fmt.Sprintf("%d minutes both served, %.0f requests on %s and %.0f on %s", a.OverlapMinutes,
		a.Treatment.Requests, a.Treatment.Value, a.Control.Requests, a.Control.Value)
}

func metricLabel(metric string) string {
	name, _ := strings.CutPrefix(metric, "latency_")
	name, _ = strings.CutSuffix(name, "_ms")
	return name + " latency"
}
