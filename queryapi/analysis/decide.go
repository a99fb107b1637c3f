package analysis

import (
	"errors"
	"fmt"
	"math"

	"github.com/changelens/changelens/internal/stats"
	"github.com/changelens/changelens/queryapi/report"
)

// Rule names a decision rule that fired. The regressions are the
// change-failure reasons the API reports (FailureReason); the improvements
// only decide IMPROVED.
type Rule int

const (
	RuleLatencyRegression Rule = iota + 1
	RuleErrorRateRegression
	RuleLatencyImprovement
	RuleErrorRateImprovement
)

// String returns "LATENCY_REGRESSION", "ERROR_RATE_REGRESSION",
// "LATENCY_IMPROVEMENT" or "ERROR_RATE_IMPROVEMENT".
func (r Rule) String() string {
	switch r {
	case RuleLatencyRegression:
		return "LATENCY_REGRESSION"
	case RuleErrorRateRegression:
		return "ERROR_RATE_REGRESSION"
	case RuleLatencyImprovement:
		return "LATENCY_IMPROVEMENT"
	case RuleErrorRateImprovement:
		return "ERROR_RATE_IMPROVEMENT"
	}
	return "UNSPECIFIED"
}

// FailureReason is the change-failure reason of a regression rule; ok is
// false for an improvement.
func (r Rule) FailureReason() (reason report.FailureReason, ok bool) {
	switch r {
	case RuleLatencyRegression:
		return report.ReasonLatencyRegression, true
	case RuleErrorRateRegression:
		return report.ReasonErrorRateRegression, true
	}
	return 0, false
}

// ErrInvalidConfig wraps a configuration decide cannot use.
var ErrInvalidConfig = errors.New("analysis: invalid config")

// Side summarises one side (before or after, control or treatment) of the
// per-minute rule decide applies.
type Side struct {
	// LatenciesMs are the latency observations of the Mann-Whitney test
	// (the per-minute p95 values, in milliseconds). May be empty, in which
	// case no latency rule fires.
	LatenciesMs []float64
	// P95Ms is the window's p95 latency in milliseconds, computed by the
	// caller from all requests (the merged t-digest of the window).
	P95Ms float64
	// Requests and Errors are weighted counts (sums of sampling weights),
	// 0 ≤ Errors ≤ Requests ≤ 2^52.
	Requests float64
	Errors   float64
}

// ErrInvalidWindow reports a Side with impossible values.
var ErrInvalidWindow = errors.New("analysis: invalid window")

func (w Side) validate(side string) error {
	fin := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	switch {
	case !fin(w.Requests) || w.Requests < 0 || w.Requests > stats.MaxFisherTotal/2:
		return fmt.Errorf("%w: %s requests = %v", ErrInvalidWindow, side, w.Requests)
	case !fin(w.Errors) || w.Errors < 0 || w.Errors > w.Requests:
		return fmt.Errorf("%w: %s errors = %v (requests %v)", ErrInvalidWindow, side, w.Errors, w.Requests)
	case math.IsNaN(w.P95Ms) || w.P95Ms < 0:
		return fmt.Errorf("%w: %s p95 = %v", ErrInvalidWindow, side, w.P95Ms)
	}
	for _, v := range w.LatenciesMs {
		if math.IsNaN(v) {
			return fmt.Errorf("%w: %s latency sample contains NaN", ErrInvalidWindow, side)
		}
	}
	return nil
}

// LatencyComparison reports the latency part of a Decision.
type LatencyComparison struct {
	BeforeP95Ms, AfterP95Ms float64
	// Tested is false when either latency sample is empty or the data were
	// insufficient; the fields below are then zero.
	Tested                            bool
	BeforeSampleSize, AfterSampleSize int
	// U is the Mann-Whitney U of the after sample against the before sample
	// (pairs where after > before, ties counting one half).
	U float64
	// PIncrease is the one-sided p-value for "after is stochastically
	// larger than before"; PDecrease for "after is smaller".
	PIncrease, PDecrease float64
	// Exact reports whether the exact U distribution was used.
	Exact bool
}

// ErrorRateMethod names the test used for the error rates.
type ErrorRateMethod int

const (
	ErrorRateNotTested ErrorRateMethod = iota
	ErrorRateZTest
	ErrorRateFisherExact
)

// String returns "NOT_TESTED", "TWO_PROPORTION_Z" or "FISHER_EXACT".
func (m ErrorRateMethod) String() string {
	switch m {
	case ErrorRateZTest:
		return "TWO_PROPORTION_Z"
	case ErrorRateFisherExact:
		return "FISHER_EXACT"
	}
	return "NOT_TESTED"
}

// ErrorRateComparison reports the error-rate part of a Decision.
type ErrorRateComparison struct {
	// BeforeRate and AfterRate are Errors/Requests (0 when Requests is 0).
	BeforeRate, AfterRate float64
	Method                ErrorRateMethod
	// Z is the pooled two-proportion z of after against before (0 with
	// Fisher's test).
	Z float64
	// PIncrease: one-sided p for "after error rate is higher";
	// PDecrease: for "lower".
	PIncrease, PDecrease float64
}

// Decision is the result of decide.
type Decision struct {
	// Verdict is INSUFFICIENT_DATA, NO_CHANGE, IMPROVED or DEGRADED (PENDING,
	// an after window still open, is the caller's).
	Verdict report.Verdict
	// Rules lists every rule that fired, regressions first. A DEGRADED
	// verdict may also list improvements of the other metric.
	Rules     []Rule
	Latency   LatencyComparison
	ErrorRate ErrorRateComparison
}

// FailureReasons returns the change-failure reasons of the regressions, in
// the order they fired.
func (d Decision) FailureReasons() []report.FailureReason {
	var out []report.FailureReason
	for _, r := range d.Rules {
		if fr, ok := r.FailureReason(); ok {
			out = append(out, fr)
		}
	}
	return out
}

// boundaryEps absorbs floating-point rounding at the inclusive (≥)
// boundaries of the rules, e.g. 0.02 − 0.01 ≥ 0.01.
const boundaryEps = 1e-12

// decide applies the rules of docs/analysis.md to a deployment's before and after windows:
//
//   - Either window with Requests < MinRequests → VerdictInsufficientData
//     (rates are still reported; no test is run).
//   - Latency regression: after.P95Ms ≥ LatencyRatio × before.P95Ms and the
//     one-sided Mann-Whitney U test (MannWhitneyAuto: exact for small
//     samples without ties, otherwise normal approximation with tie and
//     continuity correction) of after.LatenciesMs > before.LatenciesMs has
//     p ≤ Alpha. Not evaluated when either sample is empty.
//   - Error-rate regression: r_a − r_b ≥ ErrorRateMinDelta and r_a ≥
//     ErrorRateMinRatio × r_b and a one-sided test of "after rate higher"
//     has p ≤ Alpha. The test is the pooled two-proportion z-test on the
//     weighted counts, or Fisher's exact test on the counts rounded to
//     integers when any expected cell of the errors/successes ×
//     after/before table is below MinExpectedCount.
//   - Improvement rules are the exact mirror image: the regression rules
//     with the before and after windows swapped.
//   - Any regression → VerdictDegraded; else any improvement →
//     VerdictImproved; else VerdictNoChange.
//
// The ≥ boundaries are inclusive with a 1e-12 allowance for rounding.
//
// Weighted counts are used as if they were observed counts. When events
// carry sampling weights greater than one this overstates the number of
// independent observations, so p-values are smaller than they would be on
// the raw sample; the absolute and relative thresholds keep such flags to
// practically large changes.
func decide(before, after Side, cfg Config) (Decision, error) {
	if err := cfg.Validate(); err != nil {
		return Decision{}, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if err := before.validate("before"); err != nil {
		return Decision{}, err
	}
	if err := after.validate("after"); err != nil {
		return Decision{}, err
	}
	var d Decision
	d.Latency.BeforeP95Ms, d.Latency.AfterP95Ms = before.P95Ms, after.P95Ms
	d.ErrorRate.BeforeRate, d.ErrorRate.AfterRate = rate(before), rate(after)
	if before.Requests < cfg.MinRequests || after.Requests < cfg.MinRequests {
		d.Verdict = report.VerdictInsufficientData
		return d, nil
	}

	var regressions, improvements []Rule

	// Latency.
	if len(before.LatenciesMs) > 0 && len(after.LatenciesMs) > 0 {
		up, err := stats.MannWhitneyU(after.LatenciesMs, before.LatenciesMs, stats.Greater, stats.MannWhitneyAuto)
		if err != nil {
			return Decision{}, err
		}
		down, err := stats.MannWhitneyU(after.LatenciesMs, before.LatenciesMs, stats.Less, stats.MannWhitneyAuto)
		if err != nil {
			return Decision{}, err
		}
		d.Latency.Tested = true
		d.Latency.BeforeSampleSize, d.Latency.AfterSampleSize = len(before.LatenciesMs), len(after.LatenciesMs)
		d.Latency.U, d.Latency.Exact = up.U1, up.Exact
		d.Latency.PIncrease, d.Latency.PDecrease = up.P, down.P
		if atLeastRatio(after.P95Ms, before.P95Ms, cfg.LatencyRatio) && up.P <= cfg.CompareAlpha {
			regressions = append(regressions, RuleLatencyRegression)
		}
		if atLeastRatio(before.P95Ms, after.P95Ms, cfg.LatencyRatio) && down.P <= cfg.CompareAlpha {
			improvements = append(improvements, RuleLatencyImprovement)
		}
	}

	// Error rate.
	ea, na, eb, nb := after.Errors, after.Requests, before.Errors, before.Requests
	if minExpected(ea, na, eb, nb) < cfg.MinExpectedCount {
		d.ErrorRate.Method = ErrorRateFisherExact
		table := [2][2]int64{
			{roundCount(ea), roundCount(na) - roundCount(ea)},
			{roundCount(eb), roundCount(nb) - roundCount(eb)},
		}
		var err error
		if d.ErrorRate.PIncrease, err = stats.FisherExact(table, stats.Greater); err != nil {
			return Decision{}, err
		}
		if d.ErrorRate.PDecrease, err = stats.FisherExact(table, stats.Less); err != nil {
			return Decision{}, err
		}
	} else {
		d.ErrorRate.Method = ErrorRateZTest
		z, pUp, err := stats.TwoProportionZTest(ea, na, eb, nb, stats.Greater)
		if err != nil {
			return Decision{}, err
		}
		_, pDown, err := stats.TwoProportionZTest(ea, na, eb, nb, stats.Less)
		if err != nil {
			return Decision{}, err
		}
		d.ErrorRate.Z, d.ErrorRate.PIncrease, d.ErrorRate.PDecrease = z, pUp, pDown
	}
	ra, rb := d.ErrorRate.AfterRate, d.ErrorRate.BeforeRate
	if errorRateRose(rb, ra, cfg) && d.ErrorRate.PIncrease <= cfg.CompareAlpha {
		regressions = append(regressions, RuleErrorRateRegression)
	}
	if errorRateRose(ra, rb, cfg) && d.ErrorRate.PDecrease <= cfg.CompareAlpha {
		improvements = append(improvements, RuleErrorRateImprovement)
	}

	switch {
	case len(regressions) > 0:
		d.Verdict = report.VerdictDegraded
	case len(improvements) > 0:
		d.Verdict = report.VerdictImproved
	default:
		d.Verdict = report.VerdictNoChange
	}
	d.Rules = append(regressions, improvements...)
	return d, nil
}

func rate(w Side) float64 {
	if w.Requests == 0 {
		return 0
	}
	return w.Errors / w.Requests
}

// atLeastRatio reports hi ≥ ratio × lo, allowing for rounding.
func atLeastRatio(hi, lo, ratio float64) bool {
	t := ratio * lo
	return hi >= t-boundaryEps*math.Max(math.Abs(t), 1)
}

// errorRateRose reports whether the error rate moving from `from` to `to`
// meets both the absolute and the relative threshold.
func errorRateRose(from, to float64, cfg Config) bool {
	return to-from >= cfg.ErrorRateMinDelta-boundaryEps && atLeastRatio(to, from, cfg.ErrorRateMinRatio)
}

// minExpected returns the smallest expected cell count of the 2×2 table
// [[e1, n1−e1], [e2, n2−e2]] under independence.
func minExpected(e1, n1, e2, n2 float64) float64 {
	n := n1 + n2
	if n == 0 {
		return 0
	}
	errs, oks := e1+e2, n-e1-e2
	return math.Min(n1, n2) * math.Min(errs, oks) / n
}

func roundCount(v float64) int64 { return int64(math.Round(v)) }
