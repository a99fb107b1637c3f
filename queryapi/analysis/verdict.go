package analysis

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/changelens/changelens/queryapi/report"
)

// Test names reported in report.Test.Name.
const (
	TestMannWhitney = "mann-whitney-u (per-minute p95)"
	TestZ           = "two-proportion-z"
	TestFisher      = "fisher-exact"
	TestNotRun      = "not-tested"
)

// Directions reported in report.Test.Direction.
const (
	DirectionIncrease = "increase"
	DirectionDecrease = "decrease"
)

// WindowStats are the statistics of one window, from the per-minute rollup.
type WindowStats struct {
	Requests float64 // weighted
	Errors   float64 // weighted
	// Percentiles of the whole window (merged t-digest), in milliseconds.
	P50Ms, P90Ms, P95Ms, P99Ms float64
	// MinuteP95Ms are the p95 latencies of each minute of the window that had
	// requests: the observations of the Mann-Whitney test.
	MinuteP95Ms []float64
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

// Judgement is the before/after comparison of one deployment.
type Judgement struct {
	// Complete is false for a QuickJudge that skipped the Mann-Whitney test
	// because it could not change the verdict; LatencyTest is then "not-tested".
	Complete bool
	Verdict  report.Verdict
	// Regressions are the regression reasons behind a DEGRADED verdict
	// (LATENCY_REGRESSION before ERROR_RATE_REGRESSION); empty otherwise.
	Regressions    []report.FailureReason
	LatencyTest    report.Test
	ErrorRateTest  report.Test
	LatencyRatio   float64 // after p95 ÷ before p95; 0 when before p95 is 0
	ErrorRateDelta float64 // after error rate − before error rate
}

// Judge applies the rules of docs/analysis.md to the before and after statistics. With
// afterClosed false the verdict is PENDING whatever the data say; the tests
// are still reported, on the data so far.
func Judge(before, after WindowStats, afterClosed bool, cfg Config) (Judgement, error) {
	return judge(before, after, afterClosed, cfg, true)
}

// QuickJudge gives the same Verdict and Regressions as Judge, but skips the
// Mann-Whitney test when the p95 ratio meets LatencyRatio in neither
// direction: the latency rules need both, so the test cannot change the
// verdict. (The exact Mann-Whitney distribution for ~30 per-minute values
// costs milliseconds; listings and DORA reports judge hundreds of
// deployments and show only verdicts.)
func QuickJudge(before, after WindowStats, afterClosed bool, cfg Config) (Judgement, error) {
	return judge(before, after, afterClosed, cfg, false)
}

// ratioClearlyBelow reports hi < ratio × lo with a margin far above the
// rounding allowance of the decision rules.
func ratioClearlyBelow(hi, lo, ratio float64) bool { return hi < ratio*lo*(1-1e-9) }

func judge(before, after WindowStats, afterClosed bool, cfg Config, full bool) (Judgement, error) {
	clamp := func(w WindowStats) Window {
		req := math.Max(w.Requests, 0)
		errs := math.Min(math.Max(w.Errors, 0), req) // float sums may overshoot by an ulp
		return Window{LatenciesMs: w.MinuteP95Ms, P95Ms: math.Max(w.P95Ms, 0), Requests: req, Errors: errs}
	}
	b, a := clamp(before), clamp(after)
	complete := true
	if !full && ratioClearlyBelow(a.P95Ms, b.P95Ms, cfg.LatencyRatio) && ratioClearlyBelow(b.P95Ms, a.P95Ms, cfg.LatencyRatio) {
		b.LatenciesMs, a.LatenciesMs = nil, nil
		complete = false
	}
	d, err := Decide(b, a, cfg.Decision())
	if err != nil {
		return Judgement{}, fmt.Errorf("analysis: %w", err)
	}
	j := Judgement{Complete: complete, ErrorRateDelta: d.ErrorRate.AfterRate - d.ErrorRate.BeforeRate}
	if before.P95Ms > 0 {
		j.LatencyRatio = after.P95Ms / before.P95Ms
	}
	has := func(r Rule) bool { return slices.Contains(d.Rules, r) }

	j.Verdict = d.Verdict
	if j.Verdict == report.VerdictDegraded {
		j.Regressions = d.FailureReasons()
	}

	// Latency test, reported in the direction that fired, else the direction
	// the p95 moved.
	if d.Latency.Tested {
		up := has(RuleLatencyRegression) ||
			(!has(RuleLatencyImprovement) && after.P95Ms >= before.P95Ms)
		j.LatencyTest = report.Test{Name: TestMannWhitney, Statistic: d.Latency.U}
		if up {
			j.LatencyTest.Direction, j.LatencyTest.PValue = DirectionIncrease, d.Latency.PIncrease
		} else {
			j.LatencyTest.Direction, j.LatencyTest.PValue = DirectionDecrease, d.Latency.PDecrease
		}
		j.LatencyTest.Significant = j.LatencyTest.PValue <= cfg.Alpha
	} else {
		j.LatencyTest = report.Test{Name: TestNotRun, PValue: 1}
	}

	switch d.ErrorRate.Method {
	case ErrorRateZTest, ErrorRateFisherExact:
		up := has(RuleErrorRateRegression) ||
			(!has(RuleErrorRateImprovement) && d.ErrorRate.AfterRate >= d.ErrorRate.BeforeRate)
		t := report.Test{Name: TestZ, Statistic: d.ErrorRate.Z}
		if d.ErrorRate.Method == ErrorRateFisherExact {
			t.Name, t.Statistic = TestFisher, oddsRatio(after.Errors, after.Requests, before.Errors, before.Requests)
		}
		if up {
			t.Direction, t.PValue = DirectionIncrease, d.ErrorRate.PIncrease
		} else {
			t.Direction, t.PValue = DirectionDecrease, d.ErrorRate.PDecrease
		}
		t.Significant = t.PValue <= cfg.Alpha
		j.ErrorRateTest = t
	default:
		j.ErrorRateTest = report.Test{Name: TestNotRun, PValue: 1}
	}

	if !afterClosed {
		j.Verdict, j.Regressions = report.VerdictPending, nil
	}
	return j, nil
}

// oddsRatio is the sample odds ratio of the after/before errors table on
// counts rounded to integers (as Fisher's test sees them), with the
// Haldane-Anscombe correction (+½ per cell) when a cell is zero so that it
// stays finite.
func oddsRatio(ea, na, eb, nb float64) float64 {
	a, b := math.Round(ea), math.Round(na)-math.Round(ea)
	c, d := math.Round(eb), math.Round(nb)-math.Round(eb)
	if a == 0 || b == 0 || c == 0 || d == 0 {
		a, b, c, d = a+0.5, b+0.5, c+0.5, d+0.5
	}
	return a * d / (b * c)
}

// Analyze judges an item (Judge) and completes it (Impact). before and
// after are the statistics of its MinuteWindows; now decides whether the
// after window is closed.
func (t *Timeline) Analyze(it *Item, before, after WindowStats, now time.Time) (report.Impact, error) {
	j, err := t.Judge(it, before, after, now, true)
	if err != nil {
		return report.Impact{}, err
	}
	return t.Impact(it, j, before, after), nil
}

// Judge judges an item's windows: with full, as Judge; else as QuickJudge.
// The after window is closed when now ≥ its end.
func (t *Timeline) Judge(it *Item, before, after WindowStats, now time.Time, full bool) (Judgement, error) {
	return judge(before, after, it.Closed(now), t.cfg, full)
}

// Impact completes an item's deployment with the verdict, change failure,
// failure reasons and restore time of its judgement j, and returns the
// impact analysis.
func (t *Timeline) Impact(it *Item, j Judgement, before, after WindowStats) report.Impact {
	d := it.Deployment
	d.Verdict = j.Verdict
	d.FailureReasons = nil
	d.ChangeFailure = false
	d.RestoreTime, d.TimeToRestore = time.Time{}, 0
	if !d.Failed {
		if it.Next != nil && it.Next.Deployment.Rollback {
			d.FailureReasons = append(d.FailureReasons, report.ReasonRolledBack)
		}
		d.FailureReasons = append(d.FailureReasons, j.Regressions...)
		d.ChangeFailure = len(d.FailureReasons) > 0
		if d.ChangeFailure && it.Next != nil {
			d.RestoreTime = it.Next.Deployment.DeployTime
			d.TimeToRestore = d.RestoreTime.Sub(d.DeployTime)
		}
	}
	bs, as := it.MinuteWindows()
	return report.Impact{
		Deployment:      d,
		Before:          before.window(bs),
		After:           after.window(as),
		LatencyRatio:    j.LatencyRatio,
		ErrorRateDelta:  j.ErrorRateDelta,
		LatencyTest:     j.LatencyTest,
		ErrorRateTest:   j.ErrorRateTest,
		Verdict:         j.Verdict,
		Reasons:         slices.Clone(d.FailureReasons),
		WindowsComplete: j.Verdict != report.VerdictPending,
	}
}

// Closed reports whether both windows of it are closed at now, so that its
// statistics can no longer change (apart from late data).
func (it *Item) Closed(now time.Time) bool { return !now.Before(it.After.End) }
