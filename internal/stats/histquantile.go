package stats

import (
	"math"
	"slices"
)

// Hist is a bucketed histogram: parallel arrays of bucket index and weight
// (sumMap's shape); the functions taking Hists are given each bucket's
// [lo, hi) range by an edges function (the layout of internal/schema). The
// buckets need not be sorted or distinct; weights that are not positive
// finite numbers are ignored.
type Hist struct {
	Keys    []uint16
	Weights []float64
}

// histCDF is a histogram in ascending bucket order with its cumulative
// weights, ready for repeated quantile and CDF look-ups.
type histCDF struct {
	keys  []uint16
	cum   []float64 // weight up to and including bucket i
	total float64
	edges func(uint16) (lo, hi float64)
}

func newHistCDF(h []Hist, edges func(uint16) (lo, hi float64)) (histCDF, bool) {
	if edges == nil {
		return histCDF{}, false
	}
	// A sort rather than a map: the report builds one of these per time
	// bucket per metric per look, and hashing dominated.
	type kw struct {
		k uint16
		w float64
	}
	size := 0
	for _, x := range h {
		if len(x.Keys) != len(x.Weights) {
			return histCDF{}, false
		}
		size += len(x.Keys)
	}
	pairs := make([]kw, 0, size)
	for _, x := range h {
		for i, k := range x.Keys {
			if w := x.Weights[i]; w > 0 && !math.IsInf(w, 1) {
				pairs = append(pairs, kw{k, w})
			}
		}
	}
	if len(pairs) == 0 {
		return histCDF{}, false
	}
	slices.SortFunc(pairs, func(a, b kw) int { return int(a.k) - int(b.k) })
	c := histCDF{edges: edges, keys: make([]uint16, 0, len(pairs)), cum: make([]float64, 0, len(pairs))}
	for _, p := range pairs {
		c.total += p.w
		if n := len(c.keys); n > 0 && c.keys[n-1] == p.k {
			c.cum[n-1] = c.total
			continue
		}
		c.keys = append(c.keys, p.k)
		c.cum = append(c.cum, c.total)
	}
	return c, true
}

// quantile interpolates inside the bucket that holds the level: geometric
// interpolation between the edges when both are positive (the log-spaced
// layout of internal/schema, where durations are spread evenly in log
// within a ±2 % bucket), linear otherwise. Interpolation matters here, not
// in the deployment verdicts: an experiment asks for effects of a few
// percent, about the width of one bucket, and a step function would move
// only when a quantile crosses a bucket edge.
func (c histCDF) quantile(q float64) float64 {
	q = math.Min(math.Max(q, 0), 1)
	target := q * c.total
	i, _ := slices.BinarySearch(c.cum, target)
	if i >= len(c.keys) {
		i = len(c.keys) - 1
	}
	prev := 0.0
	if i > 0 {
		prev = c.cum[i-1]
	}
	w := c.cum[i] - prev
	frac := 0.0
	if w > 0 {
		frac = math.Min(math.Max((target-prev)/w, 0), 1)
	}
	lo, hi := c.edges(c.keys[i])
	if lo > 0 && hi > 0 {
		return lo * math.Pow(hi/lo, frac)
	}
	return lo + frac*(hi-lo)
}

// below is the weight of the histogram below v, interpolated as quantile
// interpolates.
func (c histCDF) below(v float64) float64 {
	acc := 0.0
	for i, k := range c.keys {
		lo, hi := c.edges(k)
		w := c.cum[i]
		if i > 0 {
			w -= c.cum[i-1]
		}
		switch {
		case v >= hi:
			acc += w
		case v > lo:
			if lo > 0 {
				acc += w * math.Log(v/lo) / math.Log(hi/lo)
			} else {
				acc += w * (v - lo) / (hi - lo)
			}
		}
	}
	return acc
}

// HistQuantile is the q-quantile of the merged histograms hs, interpolated
// within the bucket that holds it, and the total weight. ok is false when
// no weight remains, q is outside [0, 1] or edges is nil.
func HistQuantile(hs []Hist, q float64, edges func(uint16) (lo, hi float64)) (v, n float64, ok bool) {
	if !(q >= 0 && q <= 1) {
		return 0, 0, false
	}
	c, ok := newHistCDF(hs, edges)
	if !ok {
		return 0, 0, false
	}
	return c.quantile(q), c.total, true
}

// QuantileLogSE is the q-quantile of the merged histograms hs (one per time
// bucket: hour or day) and the standard error of its logarithm by
// Woodruff's method (Woodruff 1952): an interval of the level, q ± z·se_F,
// mapped through the histogram's inverse CDF, whose log width ÷ 2z is the
// standard error. se_F is the binomial √(q(1−q)/n); with at least
// minClusters time buckets it is the cluster-robust
//
//	√(k/(k−1) · Σ_b (c_b − q·n_b)²) / n
//
// (c_b the bucket's weight below the quantile, n_b its weight) when that is
// larger, because requests of one hour share their fortunes and the
// binomial then understates the noise. The log scale suits the experiment
// report's relative changes, and the interval needs no density estimate.
// se is +Inf when the interval of the level leaves (0, 1) — too few
// observations for this level.
func QuantileLogSE(hs []Hist, q float64, minClusters int, edges func(uint16) (lo, hi float64)) (v, se, n float64, ok bool) {
	if !(q > 0 && q < 1) {
		return 0, 0, 0, false
	}
	c, ok := newHistCDF(hs, edges)
	if !ok {
		return 0, 0, 0, false
	}
	v, n = c.quantile(q), c.total
	if !(v > 0) {
		return 0, 0, 0, false
	}
	seF := math.Sqrt(q * (1 - q) / n)
	if len(hs) >= minClusters && minClusters > 0 {
		if cl, ok := clusterSEF(hs, v, q, n, edges); ok {
			seF = math.Max(seF, cl)
		}
	}
	z := zOf(0.95)
	if q-z*seF <= 0 || q+z*seF >= 1 {
		return v, math.Inf(1), n, true
	}
	lo, hi := c.quantile(q-z*seF), c.quantile(q+z*seF)
	if !(lo > 0) {
		return v, math.Inf(1), n, true
	}
	return v, (math.Log(hi) - math.Log(lo)) / (2 * z), n, true
}

// QuantileDensityLog returns the sparsity of log values at level q — the
// derivative d log Q(q) / dq — of the merged histograms, by the difference
// quotient (log Q(q+h) − log Q(q−h)) / 2h with the Hall–Sheather bandwidth
// for n observations (Hall and Sheather 1988; Koenker 2005, §3.4.2), at
// least 0.01 so that it spans more than one ±2 % bucket. The asymptotic
// variance of the log of a sample quantile of n is then
// q(1−q)·sparsity² / n (the quantile's variance q(1−q)/(n f²), divided by
// Q²): what a power calculation needs before there is any experiment data.
func QuantileDensityLog(hs []Hist, q, n float64, edges func(uint16) (lo, hi float64)) (sparsity float64, ok bool) {
	if !(q > 0 && q < 1) || !(n > 1) {
		return 0, false
	}
	c, ok := newHistCDF(hs, edges)
	if !ok {
		return 0, false
	}
	zq := normQuantile(q)
	phi := math.Exp(-zq*zq/2) / math.Sqrt(2*math.Pi)
	h := math.Pow(n, -1.0/3) * math.Pow(zOf(0.95), 2.0/3) * math.Cbrt(1.5*phi*phi/(2*zq*zq+1))
	h = math.Min(math.Max(h, 0.01), math.Min(q, 1-q)*0.9)
	lo, hi := c.quantile(q-h), c.quantile(q+h)
	if !(lo > 0) || !(hi > lo) {
		return 0, false
	}
	return (math.Log(hi) - math.Log(lo)) / (2 * h), true
}

// clusterSEF is the cluster-robust standard error of the share of weight
// below v, the time buckets hs being the clusters.
func clusterSEF(hs []Hist, v, q, n float64, edges func(uint16) (lo, hi float64)) (float64, bool) {
	r := make([]float64, 0, len(hs))
	for _, h := range hs {
		b, ok := newHistCDF([]Hist{h}, edges)
		if !ok {
			continue
		}
		r = append(r, b.below(v)-q*b.total)
	}
	if len(r) < 2 {
		return 0, false
	}
	return math.Sqrt(LongRunVariance(r, 0)*float64(len(r))/float64(len(r)-1)) / n, true
}

// QuantileDesignEffect is the ratio of the cluster-robust variance of the
// share of weight below the q-quantile of the merged histograms hs (time
// buckets as clusters) to the binomial q(1−q)/n, at least 1: how much the
// clustering of observations in time inflates a quantile's variance. A
// power calculation multiplies the asymptotic variance by it. 1 with fewer
// than two buckets.
func QuantileDesignEffect(hs []Hist, q float64, edges func(uint16) (lo, hi float64)) float64 {
	if !(q > 0 && q < 1) {
		return 1
	}
	c, ok := newHistCDF(hs, edges)
	if !ok {
		return 1
	}
	v, n := c.quantile(q), c.total
	cl, ok := clusterSEF(hs, v, q, n, edges)
	if !ok {
		return 1
	}
	return math.Max(1, cl*cl/(q*(1-q)/n))
}
