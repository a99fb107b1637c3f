package analysis

import (
	"math"
	"slices"
	"time"

	"github.com/changelens/changelens/queryapi/report"
)

// Test names reported in report.Test.Name and report.ImpactMetric.Test.
const (
	TestZ      = "two-proportion-z"
	TestFisher = "fisher-exact"
	TestNotRun = "not-tested"
)

// Directions reported in report.Test.Direction.
const (
	DirectionIncrease = "increase"
	DirectionDecrease = "decrease"
)

// WindowStats are the statistics of one window, all operations together.
type WindowStats struct {
	Requests float64 // weighted
	Errors   float64 // weighted
	// Samples is the number of stored events and DurationMs the weighted
	// sum of their durations: with Requests and Errors the fingerprint of the
	// window's data (changelens-worker judges a settled deployment again
	// only when it changed).
	Samples, DurationMs float64
	// Percentiles of the merged histograms of the window, in milliseconds.
	P50Ms, P90Ms, P95Ms, P99Ms float64
}

// SameData reports whether w and o hold the same events: equal samples,
// requests, errors and durations equal up to the rounding of sums taken in
// another order.
func (w WindowStats) SameData(o WindowStats) bool {
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b)) }
	return w.Samples == o.Samples && near(w.Requests, o.Requests) && near(w.Errors, o.Errors) && near(w.DurationMs, o.DurationMs)
}

func (w WindowStats) window(s Span) report.Window {
	out := report.Window{
		Start: s.Start, End: s.End,
		Requests: w.Requests, Errors: w.Errors,
		P50Ms: w.P50Ms, P95Ms: w.P95Ms, P99Ms: w.P99Ms,
	}
	if w.Requests > 0 {
		out.ErrorRate = w.Errors / w.Requests
	}
	return out
}

// Judge judges an item from its evidence (judgeEvidence) and, when the
// evidence has them, its error kinds (JudgeErrorKinds, combined as its
// documentation says: WithErrorKinds); the after window is closed when
// now ≥ its end.
func (t *Timeline) Judge(it *Item, e *Evidence, now time.Time) Judgement {
	j := judgeEvidence(e, it.Closed(now), t.cfg)
	if e.ErrorKinds != nil {
		j = j.WithErrorKinds(JudgeErrorKinds(*e.ErrorKinds, t.cfg))
	}
	return j
}

// Impact completes an item's deployment with the verdict, change failure,
// failure reasons, regressions, explanation and restore time of its
// judgement j, and returns the impact analysis. before and after are the
// statistics of its MinuteWindows.
func (t *Timeline) Impact(it *Item, j Judgement, before, after WindowStats) report.Impact {
	d := it.Deployment
	d.Verdict = j.Verdict
	d.FailureReasons = nil
	d.ChangeFailure = false
	d.RestoreTime, d.TimeToRestore = time.Time{}, 0
	d.Regressions = nil
	d.Cause = nil
	if !d.Failed {
		if it.Next != nil && it.Next.Deployment.Rollback {
			d.FailureReasons = append(d.FailureReasons, report.ReasonRolledBack)
		}
		// A regression attributed to another change is not this one's
		// failure (that change's verdict carries it).
		if j.Verdict != report.VerdictCausedByDependency {
			d.FailureReasons = append(d.FailureReasons, j.Regressions...)
		}
		// An incident is a failure whatever the traffic showed: what
		// breaks for users without moving latency or errors (lost data, a
		// dead button) reaches DORA only this way.
		if len(it.Incidents) > 0 {
			d.FailureReasons = append(d.FailureReasons, report.ReasonIncident)
		}
		d.ChangeFailure = len(d.FailureReasons) > 0
		if d.ChangeFailure {
			d.RestoreTime = restoreTime(it)
			if !d.RestoreTime.IsZero() {
				d.TimeToRestore = d.RestoreTime.Sub(d.DeployTime)
			}
		}
		if j.Verdict == report.VerdictDegraded || j.Verdict == report.VerdictCausedByDependency {
			d.Regressions = j.RegressionList()
		}
		d.Cause = j.Cause
	}
	bs, as := it.MinuteWindows()
	im := report.Impact{
		Deployment:      d,
		Before:          before.window(bs),
		After:           after.window(as),
		Verdict:         j.Verdict,
		Reasons:         slices.Clone(d.FailureReasons),
		WindowsComplete: j.Verdict != report.VerdictPending,
		Metrics:         j.Metrics,
		Operations:      j.Operations,
		RequestsNeeded:  j.RequestsNeeded,
		Control:         j.Control,
		Attribution:     j.Attribution,
		ErrorKinds:      j.ErrorKinds.Report(),
	}
	if before.P95Ms > 0 {
		im.LatencyRatio = after.P95Ms / before.P95Ms
	}
	im.ErrorRateDelta = im.After.ErrorRate - im.Before.ErrorRate
	im.LatencyTest, im.ErrorRateTest = j.unitTest(MetricLatencyP95, t.cfg.Alpha), j.unitTest(MetricErrorRate, t.cfg.Alpha)
	if !d.Failed && !t.noExplanations {
		im.Explanation = Explain(im, t.cfg)
	}
	im.Deployment.Explanation = im.Explanation
	return im
}

// restoreTime is when a failed change's service was restored: the next
// deployment replaced it, or its incidents were all resolved, whichever came
// first (an incident resolved without a deployment — a flag turned off, a
// config rolled back — restores service too). Zero while neither happened;
// never before the deployment itself.
func restoreTime(it *Item) time.Time {
	var restore time.Time
	if it.Next != nil {
		restore = it.Next.Deployment.DeployTime
	}
	if len(it.Incidents) > 0 {
		var resolved time.Time
		for _, in := range it.Incidents {
			if in.Resolved.IsZero() {
				resolved = time.Time{}
				break
			}
			if in.Resolved.After(resolved) {
				resolved = in.Resolved
			}
		}
		if !resolved.IsZero() && (restore.IsZero() || resolved.Before(restore)) {
			restore = resolved
		}
	}
	if !restore.IsZero() && restore.Before(it.Deployment.DeployTime) {
		restore = it.Deployment.DeployTime
	}
	return restore
}

// unitTest is the unit's test of metric in the shape of report.Test: the
// direction the metric moved, the adjusted p-value's significance.
func (j Judgement) unitTest(metric string, alpha float64) report.Test {
	for _, m := range j.Metrics {
		if m.Metric != metric {
			continue
		}
		if m.Test == TestNotRun {
			return report.Test{Name: TestNotRun, PValue: 1}
		}
		t := report.Test{Name: m.Test, Statistic: m.Z, PValue: m.PValue, Direction: DirectionIncrease,
			Significant: m.AdjustedPValue <= alpha}
		if m.Z < 0 {
			t.Direction = DirectionDecrease
		}
		return t
	}
	return report.Test{Name: TestNotRun, PValue: 1}
}

// RegressionList is every regressed metric of the judgement (Regressions),
// then its new error kinds that are WORSE.
func (j Judgement) RegressionList() []report.Regression {
	return append(Regressions(j.Metrics, j.Operations), ErrorKindRegressions(j.ErrorKinds.Report())...)
}

// Regressions are the metrics with verdict WORSE: the operations' by rank,
// then the unit's (all operations) for the metrics no operation regressed
// on.
func Regressions(unitMetrics []report.ImpactMetric, ops []report.OperationImpact) []report.Regression {
	var out []report.Regression
	shown := map[string]bool{}
	add := func(op report.OperationImpact, unit bool) {
		for _, m := range op.Metrics {
			if m.Verdict != report.CompareWorse || (unit && shown[m.Metric]) {
				continue
			}
			shown[m.Metric] = true
			r := report.Regression{Metric: m.Metric, Before: m.Before, After: m.After, RelativeChange: m.RelativeChange,
				CILow: m.CILow, CIHigh: m.CIHigh, BeforeRequests: op.BeforeRequests, AfterRequests: op.AfterRequests}
			if !unit {
				r.Operation, r.Remainder = op.Operation, op.Remainder
			}
			out = append(out, r)
		}
	}
	unit := report.OperationImpact{Metrics: unitMetrics}
	for _, o := range ops {
		unit.BeforeRequests, unit.AfterRequests = unit.BeforeRequests+o.BeforeRequests, unit.AfterRequests+o.AfterRequests
	}
	if len(ops) > 1 { // one operation: its regressions are the unit's
		for _, o := range ops {
			if o.Rank > 0 {
				add(o, false)
			}
		}
	}
	add(unit, true)
	return out
}

// Closed reports whether both windows of it are closed at now, so that its
// statistics can no longer change (apart from late data).
func (it *Item) Closed(now time.Time) bool { return !now.Before(it.After.End) }
