package stats

import (
	"math"
	"slices"
)

// Median returns the median of xs: the middle value of the sorted sample,
// or the mean of the two middle values when the count is even (docs/dora.md).
// NaN values are skipped. ok is false when no value remains. xs is not
// modified.
func Median(xs []float64) (median float64, ok bool) {
	return Quantile(xs, 0.5)
}

// Quantile returns the q-quantile (0 ≤ q ≤ 1) of xs by linear interpolation
// between order statistics: with the n values sorted as x[0..n−1],
// h = (n−1)·q, the result is x[⌊h⌋] + (h − ⌊h⌋)·(x[⌊h⌋+1] − x[⌊h⌋]).
// This is Hyndman & Fan's definition 7, the default of R's quantile() and
// NumPy's percentile(); at q = 0.5 it is the Median. NaN values are skipped.
// ok is false when no value remains or q is outside [0, 1]. Interpolating
// next to ±Inf gives that infinity (NaN between −Inf and +Inf). xs is not
// modified.
func Quantile(xs []float64, q float64) (v float64, ok bool) {
	if !(q >= 0 && q <= 1) {
		return 0, false
	}
	s := make([]float64, 0, len(xs))
	for _, x := range xs {
		if !math.IsNaN(x) {
			s = append(s, x)
		}
	}
	if len(s) == 0 {
		return 0, false
	}
	slices.Sort(s)
	h := float64(len(s)-1) * q
	lo := int(math.Floor(h))
	if lo >= len(s)-1 {
		return s[len(s)-1], true
	}
	frac := h - float64(lo)
	if frac == 0 {
		return s[lo], true
	}
	a, b := s[lo], s[lo+1]
	switch {
	case a == b:
		return a, true
	case math.IsInf(a, 0) || math.IsInf(b, 0):
		// An infinite neighbour dominates; between −Inf and +Inf the
		// interpolation is undefined and yields NaN.
		return (1-frac)*a + frac*b, true
	case frac == 0.5:
		// Halfway, e.g. the median of an even count: the mean of the two
		// values, written so that it cannot overflow.
		return a/2 + b/2, true
	}
	return a + frac*(b-a), true
}
