package stats

import (
	"math"
	"math/rand/v2"
	"slices"
)

// PairedBootstrap returns the percentile interval at level (e.g. 0.95) of
// stat over resamples of the pairs (x[i], y[i]): each of b resamples draws
// len(x) pair indices with replacement, and stat sees the two resampled
// series. Pairs stay together, so what they share (the minute, the load)
// cancels as in the point estimate. Resamples whose stat is NaN or infinite
// are skipped; ok is false when fewer than half remain. The generator is
// seeded: the same inputs give the same interval.
func PairedBootstrap(x, y []float64, stat func(x, y []float64) float64, b int, level float64, seed uint64) (lo, hi float64, ok bool) {
	n := len(x)
	if n == 0 || n != len(y) || b < 1 || !(level > 0 && level < 1) {
		return 0, 0, false
	}
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	rx, ry := make([]float64, n), make([]float64, n)
	vals := make([]float64, 0, b)
	for range b {
		for i := range n {
			j := rng.IntN(n)
			rx[i], ry[i] = x[j], y[j]
		}
		if v := stat(rx, ry); !math.IsNaN(v) && !math.IsInf(v, 0) {
			vals = append(vals, v)
		}
	}
	if 2*len(vals) < b {
		return 0, 0, false
	}
	slices.Sort(vals)
	a := (1 - level) / 2
	lo, _ = Quantile(vals, a)
	hi, _ = Quantile(vals, 1-a)
	return lo, hi, true
}
