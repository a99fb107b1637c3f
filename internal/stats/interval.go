package stats

import "math"

// zOf is the two-sided normal critical value of a confidence level.
func zOf(level float64) float64 { return -normQuantile((1 - level) / 2) }

// normQuantile is Φ⁻¹(p).
func normQuantile(p float64) float64 { return math.Sqrt2 * math.Erfinv(2*p-1) }

// NormalQuantile returns Φ⁻¹(p), the standard normal quantile, for callers
// (power calculations) that must agree with the intervals here to the bit.
func NormalQuantile(p float64) float64 { return normQuantile(p) }

// WilsonInterval is the score interval of a binomial proportion x/n at the
// given level (Wilson 1927; Newcombe 1998, method 3; R's prop.test without
// continuity correction). Unlike the Wald interval it stays inside [0, 1]
// and keeps its coverage at rates near 0 — crash rates of a few per
// thousand sessions. Counts may be weighted (real).
//
// Errors: ErrInvalidCount for negative, non-finite or x > n counts or a
// level outside (0, 1); ErrZeroTrials for n = 0.
func WilsonInterval(x, n, level float64) (lo, hi float64, err error) {
	if err := checkCount(x, n); err != nil {
		return 0, 0, err
	}
	if !(level > 0 && level < 1) {
		return 0, 0, ErrInvalidCount
	}
	z := zOf(level)
	p := x / n
	z2 := z * z
	centre := (p + z2/(2*n)) / (1 + z2/n)
	half := z / (1 + z2/n) * math.Sqrt(p*(1-p)/n+z2/(4*n*n))
	return math.Max(0, centre-half), math.Min(1, centre+half), nil
}

// NewcombeInterval is the interval of the difference of two independent
// proportions x1/n1 − x2/n2 from their Wilson intervals (Newcombe 1998,
// "Interval estimation for the difference between independent
// proportions", method 10, the hybrid score interval):
//
//	δ − √((p1 − l1)² + (u2 − p2)²),  δ + √((u1 − p1)² + (p2 − l2)²)
//
// It is the absolute-difference companion of the log relative risk the
// experiment report tests, and like Wilson's it behaves at rates near 0.
func NewcombeInterval(x1, n1, x2, n2, level float64) (lo, hi float64, err error) {
	l1, u1, err := WilsonInterval(x1, n1, level)
	if err != nil {
		return 0, 0, err
	}
	l2, u2, err := WilsonInterval(x2, n2, level)
	if err != nil {
		return 0, 0, err
	}
	p1, p2 := x1/n1, x2/n2
	d := p1 - p2
	return d - math.Hypot(p1-l1, u2-p2), d + math.Hypot(u1-p1, p2-l2), nil
}

func checkCount(x, n float64) error {
	if math.IsNaN(x) || math.IsNaN(n) || math.IsInf(x, 0) || math.IsInf(n, 0) || x < 0 || n < 0 || x > n {
		return ErrInvalidCount
	}
	if n == 0 {
		return ErrZeroTrials
	}
	return nil
}

// LogRelativeRisk is log((x1/n1) ÷ (x2/n2)) and its delta-method variance
// 1/x1 − 1/n1 + 1/x2 − 1/n2 (Katz et al. 1978). A group without
// successes (or with all of them) gets ½ added to its successes and
// failures first, so that a rare event seen in one arm only still yields a
// finite, conservative estimate rather than ±∞.
func LogRelativeRisk(x1, n1, x2, n2 float64) (logRR, variance float64, err error) {
	if err := checkCount(x1, n1); err != nil {
		return 0, 0, err
	}
	if err := checkCount(x2, n2); err != nil {
		return 0, 0, err
	}
	adj := func(x, n float64) (float64, float64) {
		if x == 0 || x == n {
			return x + 0.5, n + 1
		}
		return x, n
	}
	x1, n1 = adj(x1, n1)
	x2, n2 = adj(x2, n2)
	return math.Log(x1/n1) - math.Log(x2/n2), 1/x1 - 1/n1 + 1/x2 - 1/n2, nil
}

// RatioOfSums is the ratio estimator R = Σ num ÷ Σ den of clusters
// (per-minute or per-hour buckets, or randomization units) and its
// cluster-robust delta-method variance
//
//	k/(k−1) · Σ (num_i − R·den_i)² / (Σ den)²
//
// (the linearisation of a ratio of means, Deng, Knoblich and Lu 2018, with
// the k/(k−1) small-sample factor of CR1). Requests of one bucket share
// their fortunes — a slow dependency, a deploy of a neighbour — so the
// buckets, not the requests, are the independent observations; the
// variance therefore needs no per-request data. ok is false with fewer than
// two clusters, a non-positive denominator sum or non-finite input.
func RatioOfSums(num, den []float64) (ratio, variance float64, ok bool) {
	k := len(num)
	if k < 2 || len(den) != k {
		return 0, 0, false
	}
	var sn, sd float64
	for i := range num {
		if math.IsNaN(num[i]) || math.IsInf(num[i], 0) || math.IsNaN(den[i]) || math.IsInf(den[i], 0) || den[i] < 0 {
			return 0, 0, false
		}
		sn += num[i]
		sd += den[i]
	}
	if !(sd > 0) {
		return 0, 0, false
	}
	ratio = sn / sd
	r := make([]float64, k)
	for i := range num {
		r[i] = num[i] - ratio*den[i]
	}
	variance = LongRunVariance(r, 0) * float64(k) / float64(k-1) / (sd * sd)
	return ratio, variance, true
}

// RelativeChange compares two independent positive estimates a (treatment)
// and b (control) with variances va and vb on the log scale:
// log(a/b) ± z·√(va/a² + vb/b²), returned as the relative change a/b − 1
// with its interval at the given level and the two-sided normal p-value of
// a = b. Log ratios are nearer normal than differences of ratios and their
// intervals never cross −100 % (Fieller's interval agrees when both
// coefficients of variation are small, as they are at experiment sizes).
// ok is false when an estimate is not positive or a variance is negative or
// not finite.
func RelativeChange(a, va, b, vb, level float64) (rel, lo, hi, p float64, ok bool) {
	if !(a > 0) || !(b > 0) || math.IsInf(a, 0) || math.IsInf(b, 0) || !(va >= 0) || !(vb >= 0) || math.IsInf(va, 0) || math.IsInf(vb, 0) || !(level > 0 && level < 1) {
		return 0, 0, 0, 1, false
	}
	d := math.Log(a) - math.Log(b)
	sd := math.Sqrt(va/(a*a) + vb/(b*b))
	return LogChangeInterval(d, sd*sd, level)
}

// LogChangeInterval turns a log ratio d with variance v into the relative
// change e^d − 1, its interval at level and the two-sided normal p-value
// of d = 0 (1 when v is 0 and d is 0).
func LogChangeInterval(d, v, level float64) (rel, lo, hi, p float64, ok bool) {
	if math.IsNaN(d) || math.IsInf(d, 0) || !(v >= 0) || math.IsInf(v, 0) || !(level > 0 && level < 1) {
		return 0, 0, 0, 1, false
	}
	sd := math.Sqrt(v)
	z := zOf(level)
	rel, lo, hi = math.Expm1(d), math.Expm1(d-z*sd), math.Expm1(d+z*sd)
	switch {
	case sd > 0:
		p = 2 * normUpper(math.Abs(d)/sd)
	case d == 0:
		p = 1
	default:
		p = 0
	}
	return rel, lo, hi, clampP(p), true
}
