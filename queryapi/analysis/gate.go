package analysis

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/changelens/changelens/internal/stats"
	"github.com/changelens/changelens/queryapi/report"
)

// TestMSPRT names the sequential test of a gate's guarded metrics.
const TestMSPRT = "msprt-always-valid"

// GateConfig holds the sequential test's mixing scales: the spread of the
// effects the test is most sensitive to (a larger scale detects large
// effects sooner and small ones later; validity does not depend on it).
type GateConfig struct {
	// ExceedTau: of the difference between the shares of canary and
	// baseline requests slower than the baseline's percentile. Default 0.1.
	ExceedTau float64
	// LatencyTau: of the per-minute log ratio of the canary's latency
	// percentile to the baseline's (used without histograms). Default ln 1.5.
	LatencyTau float64
	// ErrorTau: of the difference of error rates. Default 0.01.
	ErrorTau float64
}

// DefaultGateConfig returns the defaults of docs/analysis.md.
func DefaultGateConfig() GateConfig {
	return GateConfig{ExceedTau: 0.1, LatencyTau: math.Log(1.5), ErrorTau: 0.01}
}

// CanaryGate is the decision of a gate on a canary: the same-window
// comparison of the canary (treatment) with the baseline (control), whose
// guarded metrics carry the always-valid p-values of the sequential test
// that decided.
type CanaryGate struct {
	Comparison Comparison
	Result     report.GateResult
	Reasons    []report.FailureReason // with FAIL: the regressions; else empty
}

// Canary decides whether a canary may continue, from the minutes both
// versions served so far (in minute order). A rollout controller asks every
// minute or so, and a fixed-level test asked repeatedly fails a healthy
// canary far more often than its level (each look is another chance of a
// false alarm). So the guarded metrics are judged by the normal-mixture
// sequential probability ratio test with every minute from the
// MinOverlapMinutes-th on as a look: its p-value holds at level Alpha
// however often, and whenever, the gate is asked (stats.MixtureSPRT).
//
//   - INCONCLUSIVE while the comparison has too little data (fewer than
//     MinOverlapMinutes minutes or MinRequests requests on either side).
//   - FAIL when a guarded metric worsened: p95 or p99 — more of the
//     canary's requests than of the baseline's slower than the baseline's
//     percentile (exceedSequentialP), always-valid p ≤ Alpha, and the merged
//     percentile at least LatencyRatio × the baseline's; error rate — the
//     cumulative difference of rates, always-valid p ≤ Alpha, and the
//     before/after thresholds (ErrorRateMinDelta, ErrorRateMinRatio).
//   - PASS otherwise.
//
// Only the worse direction counts: a metric that improved never fails.
func Canary(pairs []MinutePair, cfg Config, cc CompareConfig, gc GateConfig) CanaryGate {
	g := CanaryGate{Comparison: Compare(pairs, 0, cfg, cc)}
	if g.Comparison.Verdict == report.CompareInsufficientData {
		g.Result = report.GateInconclusive
		return g
	}
	g.Result = report.GatePass
	for i := range g.Comparison.Metrics {
		m := &g.Comparison.Metrics[i]
		var p float64
		var worse bool
		switch m.Metric {
		case MetricLatencyP95:
			p = latencyGateP(pairs, 0.95, func(c CohortMinute) float64 { return c.P95Ms }, cc, gc)
			worse = atLeastRatio(m.Treatment, m.Control, cfg.LatencyRatio)
		case MetricLatencyP99:
			p = latencyGateP(pairs, 0.99, func(c CohortMinute) float64 { return c.P99Ms }, cc, gc)
			worse = atLeastRatio(m.Treatment, m.Control, cfg.LatencyRatio)
		case MetricErrorRate:
			p = errorSequentialP(pairs, cc.MinOverlapMinutes, gc.ErrorTau)
			worse = errorRateRose(m.Control, m.Treatment, cfg)
		default:
			continue
		}
		m.PValue, m.Test = p, TestMSPRT
		switch {
		case worse && p <= cfg.CompareAlpha:
			m.Verdict = report.CompareWorse
			g.Result = report.GateFail
			reason := report.ReasonLatencyRegression
			if m.Metric == MetricErrorRate {
				reason = report.ReasonErrorRateRegression
			}
			if len(g.Reasons) == 0 || g.Reasons[len(g.Reasons)-1] != reason {
				g.Reasons = append(g.Reasons, reason)
			}
		case m.Verdict == report.CompareWorse: // the fixed-horizon call does not stand
			m.Verdict = report.CompareNoDifference
		}
	}
	if g.Result == report.GateFail {
		g.Comparison.Verdict = report.CompareWorse
	} else if g.Comparison.Verdict == report.CompareWorse {
		g.Comparison.Verdict = report.CompareNoDifference
	}
	return g
}

// latencyGateP is the always-valid p-value, in the worse direction, of a
// latency percentile: with histograms, exceedSequentialP; without, the
// per-minute log ratios (latencySequentialP).
func latencyGateP(pairs []MinutePair, level float64, get func(CohortMinute) float64, cc CompareConfig, gc GateConfig) float64 {
	for _, p := range pairs {
		if len(p.Control.HistKeys) == 0 || len(p.Treatment.HistKeys) == 0 {
			return latencySequentialP(pairs, get, cc.MinOverlapMinutes, gc.LatencyTau)
		}
	}
	return exceedSequentialP(pairs, level, cc.MinOverlapMinutes, gc.ExceedTau)
}

// exceedSequentialP tests whether more of the canary's requests than of
// the baseline's are slower than the baseline's level-percentile t (the
// bucket it falls in, over all the minutes): under no difference both
// shares are 1 − level. The statistic is the difference of the cumulative
// shares, looked at every minute from the minLooks-th on (pooled variance,
// as the two-proportion z-test). It uses every request — a canary minute
// holding a few requests has a meaningless per-minute p95 but still tells
// how many of them were slow.
func exceedSequentialP(pairs []MinutePair, level float64, minLooks int, tau float64) float64 {
	control := make(dense, maxHistKey(pairs, latencyKeys)+1)
	for _, p := range pairs {
		control.add(p.Control.HistKeys, p.Control.HistWeights)
	}
	total := 0.0
	for _, v := range control {
		total += v
	}
	if total <= 0 {
		return 1
	}
	threshold, cum := 0, 0.0
	for k, v := range control {
		cum += v
		if cum >= level*total*(1-1e-9) {
			threshold = k
			break
		}
	}
	split := func(keys []uint16, weights []float64) (slow, all float64) {
		for j, k := range keys {
			if w := weights[j]; w > 0 {
				all += w
				if int(k) > threshold {
					slow += w
				}
			}
		}
		return slow, all
	}
	return proportionSequentialP(pairs, minLooks, tau, func(c CohortMinute) (float64, float64) {
		return split(c.HistKeys, c.HistWeights)
	})
}

// latencySequentialP is the always-valid p-value, in the worse direction,
// of the mean per-minute log ratio canary ÷ baseline of a percentile, with a
// look at every minute from the minLooks-th on. Minutes where either side
// has no value are left out.
func latencySequentialP(pairs []MinutePair, get func(CohortMinute) float64, minLooks int, tau float64) float64 {
	var ratios []float64
	n, sum, sumSq := 0, 0.0, 0.0
	for _, p := range pairs {
		c, t := get(p.Control), get(p.Treatment)
		if !(c > 0) || !(t > 0) {
			continue
		}
		d := math.Log(t / c)
		n, sum, sumSq = n+1, sum+d, sumSq+d*d
		if n < max(minLooks, 2) {
			continue
		}
		mean := sum / float64(n)
		variance := (sumSq - float64(n)*mean*mean) / float64(n-1)
		if mean <= 0 || !(variance > 0) {
			continue
		}
		if l, err := stats.MixtureSPRT(mean, variance/float64(n), tau*tau); err == nil {
			ratios = append(ratios, l)
		}
	}
	return stats.AlwaysValidP(ratios)
}

// minExpectedCount: a look of a sequential test on counts (slow requests,
// errors) needs this many expected in the smaller cohort — the normal
// approximation fails below (the fixed-horizon rule switches to Fisher's
// test there); a p99 needs 500 canary requests.
const minExpectedCount = 5

// errorSequentialP is the always-valid p-value, in the worse direction, of
// the difference canary − baseline of the cumulative error rates, with a
// look at every minute from the minLooks-th on (pooled variance, as the
// two-proportion z-test).
func errorSequentialP(pairs []MinutePair, minLooks int, tau float64) float64 {
	return proportionSequentialP(pairs, minLooks, tau, func(c CohortMinute) (float64, float64) {
		return math.Min(c.Errors, c.Requests), c.Requests
	})
}

// proportionSequentialP is the always-valid p-value, in the worse
// direction, of the difference canary − baseline of the cumulative shares
// of hits (count gives a minute's hits and total), with a look at every
// minute from the minLooks-th on: pooled variance as the two-proportion
// z-test, and a look only once minExpectedCount hits are expected in the
// smaller cohort.
func proportionSequentialP(pairs []MinutePair, minLooks int, tau float64, count func(CohortMinute) (hits, total float64)) float64 {
	var ratios []float64
	var ch, cn, th, tn float64
	for i, p := range pairs {
		h, n := count(p.Control)
		ch, cn = ch+h, cn+n
		h, n = count(p.Treatment)
		th, tn = th+h, tn+n
		if i+1 < minLooks || cn <= 0 || tn <= 0 {
			continue
		}
		diff := th/tn - ch/cn
		pooled := (ch + th) / (cn + tn)
		variance := pooled * (1 - pooled) * (1/cn + 1/tn)
		if diff <= 0 || !(variance > 0) || pooled*min(cn, tn) < minExpectedCount {
			continue
		}
		if l, err := stats.MixtureSPRT(diff, variance, tau*tau); err == nil {
			ratios = append(ratios, l)
		}
	}
	return stats.AlwaysValidP(ratios)
}

// BeforeAfter decides a gate on a deployment whose version no longer
// shares minutes with the one it replaced, from its before/after impact so
// far: a settled verdict as it is (DEGRADED fails, INSUFFICIENT_DATA is
// inconclusive, CAUSED_BY_DEPENDENCY passes); while the after window is open, FAIL when a metric of the
// unit or of an operation regressed on the data so far (the before/after
// rule, family-wise), INCONCLUSIVE while either window has fewer than
// MinRequests, else PASS.
func BeforeAfter(im report.Impact, cfg Config) (report.GateResult, []report.FailureReason) {
	newKind := im.ErrorKinds != nil && im.ErrorKinds.NewErrorKind
	switch im.Verdict {
	case report.VerdictDegraded:
		return report.GateFail, im.Reasons
	case report.VerdictInsufficientData:
		return report.GateInconclusive, nil
	case report.VerdictImproved, report.VerdictNoChange, report.VerdictCausedByDependency:
		// A regression another change explains: stopping this rollout
		// would not undo it.
		return report.GatePass, nil
	}
	if im.Deployment.Cause != nil && !newKind {
		return report.GatePass, nil
	}
	if im.Before.Requests < cfg.MinRequests || im.After.Requests < cfg.MinRequests {
		return report.GateInconclusive, nil
	}
	var latency, errs bool
	for _, r := range Regressions(im.Metrics, im.Operations) {
		if r.Metric == MetricErrorRate {
			errs = true
		} else {
			latency = true
		}
	}
	var reasons []report.FailureReason
	if latency && im.Deployment.Cause == nil {
		reasons = append(reasons, report.ReasonLatencyRegression)
	}
	if errs && im.Deployment.Cause == nil {
		reasons = append(reasons, report.ReasonErrorRateRegression)
	}
	// A new error kind so far fails the rollout as a settled NEW_ERROR_KIND
	// would (JudgeErrorKinds: the deployment's own, whatever the
	// attribution says of the rates).
	if newKind {
		reasons = append(reasons, report.ReasonNewErrorKind)
	}
	if len(reasons) > 0 {
		return report.GateFail, reasons
	}
	return report.GatePass, nil
}

// GateServing: both versions served within this long before a gate is
// asked → the canary is still serving, and the same-window comparison is
// the evidence even before MinOverlapMinutes.
const GateServing = 10 * time.Minute

// GateLookback is how far back a gate looks for the deployment of the
// version it is asked about.
const GateLookback = 7 * 24 * time.Hour

// GateEvidence is everything the gate's rule decides on, read by the use
// case: the rule itself (Gate) is a pure function of it, so every mode,
// reason and sentence of a gate answer is tested without a store.
type GateEvidence struct {
	Version  string // the version asked about (the treatment)
	Baseline string // the control: given, else the deployment's previous version; "" when neither
	// Deployment is the newest successful deployment of Version within
	// GateLookback, nil when none.
	Deployment *report.Deployment
	// Pairs are the minutes Version and Baseline both served since the
	// rollout began (minute order); LastShared the latest of them.
	Pairs      []MinutePair
	LastShared time.Time
	Now        time.Time
	// Impact is the deployment's before/after judgement so far, read only
	// when GateModeOf says BEFORE_AFTER.
	Impact *report.Impact
}

// GateModeOf is the evidence a gate decides on (0: nothing to judge):
// CANARY while both versions serve, or once they served side by side for
// MinOverlapMinutes since the rollout began — a canary already withdrawn is
// still best judged by the minutes both served, the unit's before/after
// windows would mostly measure the baseline's traffic — else BEFORE_AFTER
// when the version was deployed.
func GateModeOf(ev GateEvidence, cc CompareConfig) report.GateMode {
	switch {
	case ev.Baseline == "":
		return 0
	case len(ev.Pairs) > 0 && (ev.Deployment == nil || len(ev.Pairs) >= cc.MinOverlapMinutes || ev.LastShared.After(ev.Now.Add(-GateServing))):
		return report.GateCanary
	case ev.Deployment != nil:
		return report.GateBeforeAfter
	}
	return 0
}

// Gate decides whether a rollout may continue (docs/analysis.md, "Gate"):
// CANARY by the sequential test on the minutes both served (Canary),
// BEFORE_AFTER by the deployment's judgement so far (BeforeAfter); too
// little data is INCONCLUSIVE, never FAIL. The answer carries typed reasons
// and one sentence a person can act on.
func Gate(ev GateEvidence, cfg Config, cc CompareConfig, gc GateConfig) report.GateAnswer {
	a := report.GateAnswer{Result: report.GateInconclusive, EvaluatedAt: ev.Now,
		Control: report.Cohort{Value: ev.Baseline}, Treatment: report.Cohort{Value: ev.Version}}
	if ev.Deployment != nil {
		a.DeploymentID = ev.Deployment.ID
	}
	var detail string // BEFORE_AFTER: what regressed, where
	switch mode := GateModeOf(ev, cc); {
	case ev.Baseline == "":
		a.Reasons = []report.GateReason{report.GateReasonNoBaseline}
		if ev.Deployment == nil {
			a.Reasons = []report.GateReason{report.GateReasonNoDeployment}
		}
	case mode == report.GateCanary:
		g := Canary(ev.Pairs, cfg, cc, gc)
		a.Mode, a.OverlapMinutes, a.Metrics = report.GateCanary, g.Comparison.OverlapMinutes, g.Comparison.ReportMetrics()
		a.Control, a.Treatment = g.Comparison.Cohorts(ev.Baseline, ev.Version)
		a.Result, a.Reasons = gateResult(g.Result, g.Reasons)
	case mode == report.GateBeforeAfter && ev.Impact != nil:
		im := *ev.Impact
		res, reasons := BeforeAfter(im, cfg)
		a.Mode, a.Metrics = report.GateBeforeAfter, windowMetrics(im)
		a.Regressions = append(Regressions(im.Metrics, im.Operations), ErrorKindRegressions(im.ErrorKinds)...)
		detail = DescribeRegressions(im, cfg)
		if c := im.Deployment.Cause; c != nil && res == report.GatePass {
			detail = "regressed, explained by " + DescribeCause(*c)
		}
		a.Control.Requests, a.Treatment.Requests = im.Before.Requests, im.After.Requests
		a.Result, a.Reasons = gateResult(res, reasons)
	default: // the version never served in the same minute as the baseline, and was not deployed
		a.Reasons = []report.GateReason{report.GateReasonInsufficientData}
	}
	a.Explanation = explainGate(a, cfg, cc, detail)
	return a
}

// ReportMetrics are c's metrics in the API's shape.
func (c Comparison) ReportMetrics() []report.CompareMetric {
	out := make([]report.CompareMetric, 0, len(c.Metrics))
	for _, m := range c.Metrics {
		out = append(out, report.CompareMetric{Metric: m.Metric, Control: m.Control, Treatment: m.Treatment,
			RelativeChange: m.RelativeChange, CILow: m.CILow, CIHigh: m.CIHigh, PValue: m.PValue, Test: m.Test, Verdict: m.Verdict})
	}
	return out
}

// Cohorts are the two sides of c with their requests and traffic shares.
func (c Comparison) Cohorts(controlValue, treatmentValue string) (control, treatment report.Cohort) {
	control = report.Cohort{Value: controlValue, Requests: c.ControlRequests}
	treatment = report.Cohort{Value: treatmentValue, Requests: c.TreatmentRequests}
	if total := c.ControlRequests + c.TreatmentRequests; total > 0 {
		control.Share, treatment.Share = c.ControlRequests/total, c.TreatmentRequests/total
	}
	return control, treatment
}

// gateResult maps a decision's failure reasons to the gate's reasons: a
// FAIL names what regressed, an INCONCLUSIVE says there was too little.
func gateResult(r report.GateResult, reasons []report.FailureReason) (report.GateResult, []report.GateReason) {
	switch r {
	case report.GatePass:
		return report.GatePass, nil
	case report.GateFail:
		out := make([]report.GateReason, 0, len(reasons))
		for _, reason := range reasons {
			switch reason {
			case report.ReasonLatencyRegression:
				out = append(out, report.GateReasonLatencyRegression)
			case report.ReasonErrorRateRegression:
				out = append(out, report.GateReasonErrorRateRegression)
			case report.ReasonNewErrorKind:
				out = append(out, report.GateReasonNewErrorKind)
			}
		}
		return report.GateFail, out
	}
	return report.GateInconclusive, []report.GateReason{report.GateReasonInsufficientData}
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
func explainGate(a report.GateAnswer, cfg Config, cc CompareConfig, detail string) string {
	ctrl, treat := a.Control.Value, a.Treatment.Value
	lookback := fmt.Sprintf("%d days", int(GateLookback/(24*time.Hour)))
	switch a.Result {
	case report.GateFail:
		if a.Mode == report.GateBeforeAfter && detail != "" {
			return fmt.Sprintf("FAIL: %s regressed against %s after its deployment — %s — %s; stop the rollout and roll back %s.",
				treat, ctrl, detail, gateDataSize(a), treat)
		}
		var parts []string
		for _, m := range a.Metrics {
			guarded := m.Metric == MetricLatencyP95 || m.Metric == MetricLatencyP99 || m.Metric == MetricErrorRate
			if m.Verdict != report.CompareWorse || !guarded { // the metrics the decision rests on
				continue
			}
			switch m.Metric {
			case MetricErrorRate:
				parts = append(parts, fmt.Sprintf("error rate %.2f%% vs %.2f%%", 100*m.Treatment, 100*m.Control))
			default:
				parts = append(parts, fmt.Sprintf("%s %.0f ms vs %.0f ms (%+.0f%%, p = %.2g)", latencyLabel(m.Metric), m.Treatment, m.Control, 100*m.RelativeChange, m.PValue))
			}
		}
		return fmt.Sprintf("FAIL: %s is worse than %s — %s — %s; stop the rollout and roll back %s.",
			treat, ctrl, strings.Join(parts, "; "), gateDataSize(a), treat)
	case report.GatePass:
		if a.Mode == report.GateBeforeAfter && detail != "" {
			// A regression another change explains: rolling this back would
			// not undo it.
			return fmt.Sprintf("PASS: %s %s, not by its own change (%s); the rollout may continue — the cause is where to act.", treat, detail, gateDataSize(a))
		}
		return fmt.Sprintf("PASS: %s shows no regression against %s (%s); the rollout may continue.", treat, ctrl, gateDataSize(a))
	}
	switch {
	case len(a.Reasons) > 0 && a.Reasons[0] == report.GateReasonNoDeployment:
		return fmt.Sprintf("INCONCLUSIVE: no deployment of %s in the last %s and no baseline_version given; send traffic to %s or name the baseline.", treat, lookback, treat)
	case len(a.Reasons) > 0 && a.Reasons[0] == report.GateReasonNoBaseline:
		return fmt.Sprintf("INCONCLUSIVE: the deployment of %s has no previous version to compare with; name one with baseline_version.", treat)
	case a.Mode == report.GateCanary:
		return fmt.Sprintf("INCONCLUSIVE: too little data yet (%s; need %d minutes and %.0f requests on each side); ask again later.",
			gateDataSize(a), cc.MinOverlapMinutes, cfg.MinRequests)
	case a.Mode == report.GateBeforeAfter:
		return fmt.Sprintf("INCONCLUSIVE: too little traffic around the deployment of %s (%.0f requests before, %.0f after; need %.0f each); ask again later.",
			treat, a.Control.Requests, a.Treatment.Requests, cfg.MinRequests)
	}
	return fmt.Sprintf("INCONCLUSIVE: %s and %s never served in the same minute and %s has no deployment in the last %s; send traffic to %s and ask again.", treat, ctrl, treat, lookback, treat)
}

func gateDataSize(a report.GateAnswer) string {
	if a.Mode == report.GateBeforeAfter {
		return fmt.Sprintf("before/after windows of its deployment, %.0f requests before and %.0f after", a.Control.Requests, a.Treatment.Requests)
	}
	return fmt.Sprintf("%d minutes both served, %.0f requests on %s and %.0f on %s", a.OverlapMinutes,
		a.Treatment.Requests, a.Treatment.Value, a.Control.Requests, a.Control.Value)
}

// latencyLabel: "latency_p95_ms" → "p95 latency".
func latencyLabel(metric string) string {
	name, _ := strings.CutPrefix(metric, "latency_")
	name, _ = strings.CutSuffix(name, "_ms")
	return name + " latency"
}
