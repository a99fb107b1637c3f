package stats

import (
	"math"

	"gonum.org/v1/gonum/mathext"
)

// PoissonRateTest compares two event rates, x1 events over exposure t1 and
// x2 over t2 (errors over requests, slow requests over requests), with the
// conditional test of R's two-sample poisson.test: given the x1 + x2 events,
// x1 is Binomial(x1 + x2, t1 / (t1 + t2)) when the rates are equal, so
//
//	Greater (rate 1 higher): p = P(X ≥ x1) = I_π(x1, x2 + 1)
//	Less    (rate 1 lower):  p = P(X ≤ x1) = I_{1−π}(x2, x1 + 1)
//
// with π = t1/(t1+t2) and I the regularized incomplete beta function. The
// test is exact for integer counts and stays defined for real ones: weighted
// counts, and counts deflated by an overdispersion factor (x/φ, t/φ), which
// is how callers make it honest about clustered events. TwoSided doubles
// the smaller one-sided p (capped at 1).
//
// No events at all give p = 1. Errors: ErrInvalidCount for negative or
// non-finite counts, ErrZeroTrials for an exposure that is not positive,
// ErrInvalidAlternative.
func PoissonRateTest(x1, t1, x2, t2 float64, alt Alternative) (float64, error) {
	if !alt.valid() {
		return 0, ErrInvalidAlternative
	}
	for _, v := range []float64{x1, t1, x2, t2} {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return 0, ErrInvalidCount
		}
	}
	if t1 == 0 || t2 == 0 {
		return 0, ErrZeroTrials
	}
	pi := t1 / (t1 + t2)
	greater := func() float64 {
		if x1 == 0 {
			return 1
		}
		return mathext.RegIncBeta(x1, x2+1, pi)
	}
	less := func() float64 {
		if x2 == 0 {
			return 1
		}
		return mathext.RegIncBeta(x2, x1+1, 1-pi)
	}
	switch alt {
	case Greater:
		return clampP(greater()), nil
	case Less:
		return clampP(less()), nil
	}
	return clampP(2 * math.Min(greater(), less())), nil
}

// PoissonRateRatioCI is the exact conditional confidence interval of the
// rate ratio (x1/t1) ÷ (x2/t2) at the given level, as R's poisson.test: the
// Clopper–Pearson interval [pL, pU] of the binomial share x1/(x1+x2),
// mapped through p/(1−p) · t2/t1. x1 = 0 gives a lower bound of 0, x2 = 0 an
// upper bound of +Inf. Real counts are allowed (see PoissonRateTest).
func PoissonRateRatioCI(x1, t1, x2, t2, level float64) (lo, hi float64, err error) {
	for _, v := range []float64{x1, t1, x2, t2} {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return 0, 0, ErrInvalidCount
		}
	}
	if t1 == 0 || t2 == 0 {
		return 0, 0, ErrZeroTrials
	}
	if !(level > 0 && level < 1) {
		return 0, 0, ErrInvalidCount
	}
	a := (1 - level) / 2
	scale := t2 / t1
	lo, hi = 0, math.Inf(1)
	if x1 > 0 {
		p := mathext.InvRegIncBeta(x1, x2+1, a)
		lo = p / (1 - p) * scale
	}
	if x2 > 0 {
		p := mathext.InvRegIncBeta(x1+1, x2, 1-a)
		if p < 1 {
			hi = p / (1 - p) * scale
		}
	}
	return lo, hi, nil
}
