package stats

import "math"

// fisherRelTol is the relative tolerance used by the two-sided Fisher test
// when deciding which tables are "no more probable" than the observed one.
// R's fisher.test uses 1 + 1e-7; SciPy uses the same idea (1 + 1e-14 in
// current releases). 1e-7 is comfortably above the rounding error of the
// log-gamma probabilities used here.
const fisherRelTol = 1e-7

// FisherExact performs Fisher's exact test on the 2×2 table
//
//	[[a, b],
//	 [c, d]]   (table[0] = {a, b}, table[1] = {c, d})
//
// Conditioning on the margins, a follows the hypergeometric distribution
// P(a = x) = C(a+b, x)·C(c+d, a+c−x) / C(n, a+c). The alternatives follow
// SciPy's scipy.stats.fisher_exact and R's fisher.test:
//
//   - Greater (odds ratio > 1): p = P(X ≥ a);
//   - Less (odds ratio < 1): p = P(X ≤ a);
//   - TwoSided: the sum of P(X = x) over every x with
//     P(X = x) ≤ P(X = a)·(1 + 1e-7).
//
// Probabilities are computed in log space with math.Lgamma, so large counts
// do not overflow; the work is O(min(a+b, c+d, a+c, b+d)). The probabilities
// are normalised by their sum over the support, which cancels the common
// C(n, a+c) factor. A table with no observations gives p = 1.
//
// Errors: ErrInvalidCount for a negative cell, ErrInvalidAlternative.
func FisherExact(table [2][2]int64, alt Alternative) (float64, error) {
	if !alt.valid() {
		return 0, ErrInvalidAlternative
	}
	a, b, c, d := table[0][0], table[0][1], table[1][0], table[1][1]
	if a < 0 || b < 0 || c < 0 || d < 0 {
		return 0, ErrInvalidCount
	}
	r1, r2, c1 := a+b, c+d, a+c
	lo := c1 - r2
	if lo < 0 {
		lo = 0
	}
	hi := min(r1, c1)
	if lo == hi { // one possible table (this includes the empty table)
		return 1, nil
	}
	lr1, lr2 := lfact(r1), lfact(r2)
	logw := func(x int64) float64 {
		// log C(r1, x) + log C(r2, c1−x), dropping the constant C(n, c1).
		return lr1 - lfact(x) - lfact(r1-x) + lr2 - lfact(c1-x) - lfact(r2-c1+x)
	}
	lw := make([]float64, hi-lo+1)
	maxLW := math.Inf(-1)
	for x := lo; x <= hi; x++ {
		v := logw(x)
		lw[x-lo] = v
		if v > maxLW {
			maxLW = v
		}
	}
	obs := lw[a-lo]
	var total, sel float64
	// Accumulate from both ends towards the mode so that small terms are
	// added first.
	add := func(i int64) {
		w := math.Exp(lw[i] - maxLW)
		total += w
		x := lo + i
		var in bool
		switch alt {
		case Greater:
			in = x >= a
		case Less:
			in = x <= a
		default:
			in = lw[i]-obs <= math.Log1p(fisherRelTol)
		}
		if in {
			sel += w
		}
	}
	i, j := int64(0), int64(len(lw)-1)
	for i <= j {
		if lw[i] <= lw[j] {
			add(i)
			i++
		} else {
			add(j)
			j--
		}
	}
	return clampP(sel / total), nil
}

// lfact returns log(n!).
func lfact(n int64) float64 {
	v, _ := math.Lgamma(float64(n) + 1)
	return v
}
