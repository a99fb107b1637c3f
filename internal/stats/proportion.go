package stats

import "math"

// TwoProportionZTest compares the proportions x1/n1 and x2/n2 with the pooled
// two-proportion z-test (no continuity correction; the default of
// statsmodels.stats.proportion.proportions_ztest):
//
//	p̂ = (x1 + x2) / (n1 + n2)
//	z = (x1/n1 − x2/n2) / sqrt(p̂(1 − p̂)(1/n1 + 1/n2))
//
// Greater means the first proportion is larger: p = P(Z ≥ z); Less:
// p = P(Z ≤ z); TwoSided: p = 2·P(Z ≥ |z|).
//
// Counts may be non-integer (weighted counts); they are used as if they were
// observed counts. When the pooled variance is zero (both groups all
// successes or all failures) the proportions are identical and the result
// is z = 0, p = 1.
//
// Errors: ErrZeroTrials if n1 or n2 is zero (a 0/0 proportion),
// ErrInvalidCount for negative, non-finite or x > n counts,
// ErrInvalidAlternative.
func TwoProportionZTest(x1, n1, x2, n2 float64, alt Alternative) (z, p float64, err error) {
	if !alt.valid() {
		return 0, 0, ErrInvalidAlternative
	}
	for _, c := range [][2]float64{{x1, n1}, {x2, n2}} {
		x, n := c[0], c[1]
		if math.IsNaN(x) || math.IsNaN(n) || math.IsInf(x, 0) || math.IsInf(n, 0) || x < 0 || n < 0 || x > n {
			return 0, 0, ErrInvalidCount
		}
	}
	if n1 == 0 || n2 == 0 {
		return 0, 0, ErrZeroTrials
	}
	pooled := (x1 + x2) / (n1 + n2)
	v := pooled * (1 - pooled) * (1/n1 + 1/n2)
	if !(v > 0) {
		return 0, 1, nil
	}
	z = (x1/n1 - x2/n2) / math.Sqrt(v)
	switch alt {
	case Greater:
		p = normUpper(z)
	case Less:
		p = normLower(z)
	default:
		p = 2 * normUpper(math.Abs(z))
	}
	return z, clampP(p), nil
}
