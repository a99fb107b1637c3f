package stats

import (
	"math"
	"slices"
	"sort"
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

// weightedTieTol is the relative tolerance for deciding that the cumulative
// weight lands exactly on the target q·W in WeightedQuantile.
const weightedTieTol = 1e-12

// WeightedQuantile returns the q-quantile of the values xs carrying weights
// ws (for example sampling weights: a value with weight w stands for w
// requests). It inverts the weighted empirical CDF, averaging at
// discontinuities — Hyndman & Fan's definition 2 generalised to weights:
// with the values sorted and C_i the cumulative weight up to and including
// value i, the result is the first x_i with C_i ≥ q·W (W the total weight);
// if C_i equals q·W (to a relative 1e-12) the result is the mean of x_i and
// the next value. With equal weights and q = 0.5 this is the Median.
// q = 0 gives the minimum and q = 1 the maximum.
//
// Pairs whose value is NaN or whose weight is not a positive finite number
// are skipped. ok is false when len(xs) != len(ws), q is outside [0, 1],
// or no pair remains. The inputs are not modified.
func WeightedQuantile(xs, ws []float64, q float64) (v float64, ok bool) {
	if len(xs) != len(ws) || !(q >= 0 && q <= 1) {
		return 0, false
	}
	type pair struct{ x, w float64 }
	ps := make([]pair, 0, len(xs))
	total := 0.0
	for i, x := range xs {
		w := ws[i]
		if math.IsNaN(x) || !(w > 0) || math.IsInf(w, 1) {
			continue
		}
		ps = append(ps, pair{x, w})
		total += w
	}
	if len(ps) == 0 || math.IsInf(total, 1) {
		return 0, false
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].x < ps[j].x })
	if q == 0 {
		return ps[0].x, true
	}
	target := q * total
	cum := 0.0
	for i, p := range ps {
		cum += p.w
		if math.Abs(cum-target) <= weightedTieTol*total {
			if i+1 < len(ps) {
				a, b := p.x, ps[i+1].x
				if a == b {
					return a, true
				}
				return a/2 + b/2, true
			}
			return p.x, true
		}
		if cum > target {
			return p.x, true
		}
	}
	return ps[len(ps)-1].x, true
}
