package stats

import (
	"math"
	"slices"
)

// Log-bucket latency histograms, as the changelens exporter stores them in
// latency_hist_1m / latency_hist_1h (schema v2): bucket i holds the durations
// in [HistMinNs·HistGamma^i, HistMinNs·HistGamma^(i+1)) nanoseconds, bucket 0
// also everything below HistMinNs; a histogram maps bucket index → Σ weight.
// The bucket's value is its geometric middle HistMinNs·HistGamma^(i+0.5),
// within √HistGamma − 1 ≈ 1.98 % of every duration in it.
const (
	HistGamma = 1.04
	HistMinNs = 1000.0
)

// histTieTol is the relative tolerance (of the total weight) within which a
// cumulative weight counts as reaching q·W: sums of the same weights in a
// different order (per bucket, across rows, on the server) differ in the last
// bits, and with few requests the quantile must not jump to the next value
// because of that.
const histTieTol = 1e-9

// logHistGamma is ln(HistGamma).
var logHistGamma = math.Log(HistGamma)

// HistBucket is the bucket of a duration in nanoseconds, as the exporter's
// materialized views compute it:
// toUInt16(least(65535, greatest(0, floor(log(greatest(d, 1000) / 1000) / log(1.04))))).
// (A duration exactly on a bucket boundary may land on either side, as
// floating-point logarithms differ in the last bit; either is within the
// accuracy.)
func HistBucket(durationNs uint64) uint16 {
	d := math.Max(float64(durationNs), HistMinNs)
	i := math.Floor(math.Log(d/HistMinNs) / logHistGamma)
	return uint16(math.Min(65535, math.Max(0, i)))
}

// HistValue is the value in nanoseconds that represents bucket i: its
// geometric middle HistMinNs·HistGamma^(i+0.5).
func HistValue(i uint16) float64 {
	return HistMinNs * math.Exp((float64(i)+0.5)*logHistGamma)
}

// HistQuantiles returns, for each level qs[j] in [0, 1], the value
// (HistValue) of the first bucket, in ascending bucket order, at which the
// cumulative weight reaches qs[j]·W (to a relative 1e-9 of W), W the total
// weight: the histogram's
// inverse weighted CDF (no interpolation). This is within 1.98 % of the raw
// durations' quantile of the same definition — the smallest duration whose
// cumulative weight reaches q·W — because that duration lies in the bucket
// found. keys and weights are sumMap's parallel arrays (bucket → weight);
// pairs with a weight that is not a positive finite number are skipped, and
// keys need not be sorted or distinct (they are, from sumMap). ok is false
// when the lengths differ, a level lies outside [0, 1] or no weight remains;
// out then holds zeros.
func HistQuantiles(keys []uint16, weights []float64, qs []float64) (out []float64, ok bool) {
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
		out[j] = HistValue(idx)
	}
	return out, true
}
