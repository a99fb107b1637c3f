// Package stats holds the small, dependency-light statistics used by the
// changelens query API: rank and proportion tests, medians and quantiles,
// quantiles of bucketed histograms. It knows nothing of deployments: the
// product rules that use it (verdicts, DORA tiers) are in queryapi/analysis.
//
// Contents (each function documents its definition and source):
//
//   - MannWhitneyU: rank-sum test, exact distribution (no ties, both
//     samples < 50, R's rule) or normal approximation with tie and
//     continuity correction (SciPy / R definitions).
//   - TwoProportionZTest: pooled z-test (statsmodels proportions_ztest).
//   - FisherExact: 2×2 exact test (SciPy fisher_exact / R fisher.test).
//   - WilcoxonSignedRank: paired signed-rank test, exact (no ties, n ≤ 50)
//     or normal with tie correction (SciPy wilcoxon / R wilcox.test).
//   - ChiSquareGOF: Pearson's goodness-of-fit test (SciPy chisquare), for
//     sample-ratio mismatch.
//   - PairedBootstrap: percentile intervals of a statistic of paired
//     samples, resampling the pairs (seeded).
//   - Median, Quantile (Hyndman–Fan type 7).
//   - BucketQuantiles: weighted quantiles of a bucketed histogram, given
//     the value of each bucket (the store passes the layout of
//     internal/schema).
//   - For experiments (docs/experiments.md): WilsonInterval,
//     NewcombeInterval, LogRelativeRisk (proportions); RatioOfSums
//     (ratio estimator, cluster-robust delta-method variance);
//     RelativeChange, LogChangeInterval (log-ratio intervals);
//     HistQuantile, QuantileLogSE (interpolated histogram quantiles,
//     Woodruff), QuantileDensityLog, QuantileDesignEffect (the asymptotic
//     variance a power calculation needs); CUPED, MeanVariance;
//     MixtureSPRTRadius (the always-valid interval of MixtureSPRT);
//     NormalQuantile.
//
// The tests check published reference values from SciPy 1.17.1,
// statsmodels 0.15.0 and 40-digit mpmath, plus brute-force enumerations and
// exact rational arithmetic.
//
// Everything here is pure computation: no I/O, no clocks, no global state.
//
// Normal tail probabilities use gonum's distuv.UnitNormal.CDF, which is
// built on math.Erfc; upper tails are taken as CDF(-z) rather than
// 1-CDF(z) so that small p-values keep their relative precision.
package stats

import (
	"errors"

	"gonum.org/v1/gonum/stat/distuv"
)

// Alternative selects the alternative hypothesis of a test.
type Alternative int

const (
	// TwoSided: the two groups differ in either direction.
	TwoSided Alternative = iota
	// Greater: the first group is larger (stochastically larger values,
	// or a larger proportion / odds).
	Greater
	// Less: the first group is smaller.
	Less
)

// String returns "two-sided", "greater" or "less".
func (a Alternative) String() string {
	switch a {
	case TwoSided:
		return "two-sided"
	case Greater:
		return "greater"
	case Less:
		return "less"
	}
	return "invalid"
}

func (a Alternative) valid() bool { return a == TwoSided || a == Greater || a == Less }

// Errors returned by the tests.
var (
	ErrEmptySample        = errors.New("stats: empty sample")
	ErrNaN                = errors.New("stats: NaN in input")
	ErrInvalidAlternative = errors.New("stats: invalid alternative")
	ErrInvalidCount       = errors.New("stats: counts must be finite, non-negative, and successes ≤ trials")
	ErrZeroTrials         = errors.New("stats: a group has zero trials")
	ErrExactNotAvailable  = errors.New("stats: exact distribution not available (ties present or sample too large)")
	ErrInvalidMethod      = errors.New("stats: invalid method")
	ErrLengthMismatch     = errors.New("stats: paired samples of different lengths")
)

// normLower returns P(Z ≤ z) for a standard normal Z.
func normLower(z float64) float64 { return distuv.UnitNormal.CDF(z) }

// normUpper returns P(Z ≥ z) for a standard normal Z, accurate in the far tail.
func normUpper(z float64) float64 { return distuv.UnitNormal.CDF(-z) }

// chiSquareUpper returns P(X ≥ x) for X chi-square with df degrees of freedom.
func chiSquareUpper(x, df float64) float64 {
	return clampP(distuv.ChiSquared{K: df}.Survival(x))
}

// clampP keeps a probability inside [0, 1] against rounding.
func clampP(p float64) float64 {
	if p < 0 {
		return 0
	}
	if p > 1 {
		return 1
	}
	return p
}
