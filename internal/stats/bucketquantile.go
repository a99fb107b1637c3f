package stats

import (
	"math"
	"slices"
)

// histTieTol is the relative tolerance (of the total weight) within which a
// cumulative weight counts as reaching q·W: sums of the same weights in a
// different order (per bucket, across rows, on the server) differ in the last
// bits, and with few requests the quantile must not jump to the next value
// because of that.
const histTieTol = 1e-9

// BucketQuantiles returns, for each level qs[j] in [0, 1], the value
// (value(bucket)) of the first bucket, in ascending bucket order, at which
// the cumulative weight reaches qs[j]·W (to a relative 1e-9 of W), W the
// total weight: the histogram's inverse weighted CDF (no interpolation).
// When buckets are ordered like their values and every value lies within a
// relative error e of the durations in its bucket, the result is within e of
// the raw durations' quantile of the same definition — the smallest duration
// whose cumulative weight reaches q·W — because that duration lies in the
// bucket found. keys and weights are sumMap's parallel arrays (bucket → weight);
// pairs with a weight that is not a positive finite number are skipped, and
// keys need not be sorted or distinct (they are, from sumMap). ok is false
// when the lengths differ, a level lies outside [0, 1] or no weight remains;
// out then holds zeros.
func BucketQuantiles(keys []uint16, weights []float64, qs []float64, value func(uint16) float64) (out []float64, ok bool) {
	out = make([]float64, len(qs))
	if len(keys) != len(weights) {
		return out, false
	}
	for _, q := range qs {
		if !(q >= 0 && q <= 1) {
			return out, false
		}
	}
	type kw struct {
		k uint16
		w float64
	}
	pairs := make([]kw, 0, len(keys))
	sorted := true
	total := 0.0
	for i, k := range keys {
		w := weights[i]
		if !(w > 0) || math.IsInf(w, 1) {
			continue
		}
		if n := len(pairs); n > 0 && k < pairs[n-1].k {
			sorted = false
		}
		pairs = append(pairs, kw{k, w})
		total += w
	}
	if len(pairs) == 0 {
		return out, false
	}
	if !sorted {
		slices.SortStableFunc(pairs, func(a, b kw) int { return int(a.k) - int(b.k) })
		total = 0
		for _, p := range pairs {
			total += p.w
		}
	}
	for j, q := range qs {
		target := q*total - histTieTol*total
		cum := 0.0
		idx := pairs[len(pairs)-1].k // reached at the latest by the last bucket
		for _, p := range pairs {
			cum += p.w
			if cum >= target {
				idx = p.k
				break
			}
		}
		out[j] = value(idx)
	}
	return out, true
}
