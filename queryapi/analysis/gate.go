package analysis

import (
	"math"

	"github.com/changelens/changelens/internal/stats"
	"github.com/changelens/changelens/queryapi/report"
)

// GateResult is a rollout gate's answer.
type GateResult uint8

const (
	GateInconclusive GateResult = iota // too little data: neither continue nor stop on it
	GatePass
	GateFail
)

// String returns "INCONCLUSIVE", "PASS" or "FAIL".
func (r GateResult) String() string {
	switch r {
	case GatePass:
		return "PASS"
	case GateFail:
		return "FAIL"
	}
	return "INCONCLUSIVE"
}

// TestMSPRT names the sequential test of a gate's guarded metrics.
const TestMSPRT = "msprt-always-valid"

// GateConfig holds the sequential test's mixing scales: the spread of the
// effects the test is most sensitive to (a larger scale detects large
// effects sooner and small ones later; validity does not depend on it).
type GateConfig struct {
	// LatencyTau: of the per-minute log ratio of the canary's latency
	// percentile to the baseline's. Default ln 1.5.
	LatencyTau float64
	// ErrorTau: of the difference of error rates. Default 0.01.
	ErrorTau float64
}

// DefaultGateConfig returns the defaults of docs/analysis.md.
func DefaultGateConfig() GateConfig { return GateConfig{LatencyTau: math.Log(1.5), ErrorTau: 0.01} }

// CanaryGate is the decision of a gate on a canary: the same-window
// comparison of the canary (treatment) with the baseline (control), whose
// guarded metrics carry the always-valid p-values of the sequential test
// that decided.
type CanaryGate struct {
	Comparison Comparison
	Result     GateResult
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
//   - FAIL when a guarded metric worsened: p95 or p99 — the per-minute log
//     ratios canary ÷ baseline, always-valid p ≤ Alpha, and the merged
//     percentile at least LatencyRatio × the baseline's; error rate — the
//     cumulative difference of rates, always-valid p ≤ Alpha, and the
//     before/after thresholds (ErrorRateMinDelta, ErrorRateMinRatio).
//   - PASS otherwise.
//
// Only the worse direction counts: a metric that improved never fails.
func Canary(pairs []MinutePair, cfg Config, cc CompareConfig, gc GateConfig) CanaryGate {
	g := CanaryGate{Comparison: Compare(pairs, 0, cfg, cc)}
	if g.Comparison.Verdict == report.CompareInsufficientData {
		g.Result = GateInconclusive
		return g
	}
	g.Result = GatePass
	for i := range g.Comparison.Metrics {
		m := &g.Comparison.Metrics[i]
		var p float64
		var worse bool
		switch m.Metric {
		case MetricLatencyP95:
			p = latencySequentialP(pairs, func(c CohortMinute) float64 { return c.P95Ms }, cc.MinOverlapMinutes, gc.LatencyTau)
			worse = atLeastRatio(m.Treatment, m.Control, cfg.LatencyRatio)
		case MetricLatencyP99:
			p = latencySequentialP(pairs, func(c CohortMinute) float64 { return c.P99Ms }, cc.MinOverlapMinutes, gc.LatencyTau)
			worse = atLeastRatio(m.Treatment, m.Control, cfg.LatencyRatio)
		case MetricErrorRate:
			p = errorSequentialP(pairs, cc.MinOverlapMinutes, gc.ErrorTau)
			worse = errorRateRose(m.Control, m.Treatment, cfg.Decision())
		default:
			continue
		}
		m.PValue, m.Test = p, TestMSPRT
		switch {
		case worse && p <= cfg.Alpha:
			m.Verdict = report.CompareWorse
			g.Result = GateFail
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
	if g.Result == GateFail {
		g.Comparison.Verdict = report.CompareWorse
	} else if g.Comparison.Verdict == report.CompareWorse {
		g.Comparison.Verdict = report.CompareNoDifference
	}
	return g
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

// errorSequentialP is the always-valid p-value, in the worse direction, of
// the difference canary − baseline of the cumulative error rates, with a
// look at every minute from the minLooks-th on (pooled variance, as the
// two-proportion z-test).
func errorSequentialP(pairs []MinutePair, minLooks int, tau float64) float64 {
	var ratios []float64
	var cr, ce, tr, te float64
	for i, p := range pairs {
		cr, ce = cr+p.Control.Requests, ce+math.Min(p.Control.Errors, p.Control.Requests)
		tr, te = tr+p.Treatment.Requests, te+math.Min(p.Treatment.Errors, p.Treatment.Requests)
		if i+1 < minLooks || cr <= 0 || tr <= 0 {
			continue
		}
		diff := te/tr - ce/cr
		pooled := (ce + te) / (cr + tr)
		variance := pooled * (1 - pooled) * (1/cr + 1/tr)
		if diff <= 0 || !(variance > 0) {
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
// inconclusive); while the after window is open, FAIL on a significant
// regression that meets the thresholds, INCONCLUSIVE while either window
// has fewer than MinRequests, else PASS.
func BeforeAfter(im report.Impact, cfg Config) (GateResult, []report.FailureReason) {
	switch im.Verdict {
	case report.VerdictDegraded:
		return GateFail, im.Reasons
	case report.VerdictInsufficientData:
		return GateInconclusive, nil
	case report.VerdictImproved, report.VerdictNoChange:
		return GatePass, nil
	}
	if im.Before.Requests < cfg.MinRequests || im.After.Requests < cfg.MinRequests {
		return GateInconclusive, nil
	}
	var reasons []report.FailureReason
	if t := im.LatencyTest; t.Significant && t.Direction == DirectionIncrease && atLeastRatio(im.After.P95Ms, im.Before.P95Ms, cfg.LatencyRatio) {
		reasons = append(reasons, report.ReasonLatencyRegression)
	}
	if t := im.ErrorRateTest; t.Significant && t.Direction == DirectionIncrease && errorRateRose(im.Before.ErrorRate, im.After.ErrorRate, cfg.Decision()) {
		reasons = append(reasons, report.ReasonErrorRateRegression)
	}
	if len(reasons) > 0 {
		return GateFail, reasons
	}
	return GatePass, nil
}
