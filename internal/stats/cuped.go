package stats

import "math"

// CUPED returns the regression adjustment of Deng, Xu, Kohavi and Walker
// (2013, "Improving the sensitivity of online controlled experiments by
// utilizing pre-experiment data"): θ = cov(x, y) / var(x) over all
// randomization units of every variant (pre-period value x, in-experiment
// value y), the mean of x, and the correlation ρ. Each unit's
// y − θ(x − x̄) has the mean of y in expectation — x was fixed before
// assignment, so it is balanced across variants — and variance
// var(y)·(1 − ρ²): the returned 1 − ρ² is the factor by which the
// adjustment shrinks a variance, and √(1 − ρ²) an interval's width.
// Pooling over variants keeps the adjustment identical in every arm, so
// it cancels from the comparison except for the noise it removes.
//
// ok is false with fewer than three units, mismatched lengths, non-finite
// values or a constant x or y (nothing to adjust with).
func CUPED(x, y []float64) (theta, meanX, rho, varianceFactor float64, ok bool) {
	n := len(x)
	if n < 3 || len(y) != n {
		return 0, 0, 0, 1, false
	}
	var sx, sy float64
	for i := range x {
		if math.IsNaN(x[i]) || math.IsInf(x[i], 0) || math.IsNaN(y[i]) || math.IsInf(y[i], 0) {
			return 0, 0, 0, 1, false
		}
		sx += x[i]
		sy += y[i]
	}
	mx, my := sx/float64(n), sy/float64(n)
	var sxx, syy, sxy float64
	for i := range x {
		dx, dy := x[i]-mx, y[i]-my
		sxx += dx * dx
		syy += dy * dy
		sxy += dx * dy
	}
	if !(sxx > 0) || !(syy > 0) {
		return 0, mx, 0, 1, false
	}
	theta = sxy / sxx
	rho = sxy / math.Sqrt(sxx*syy)
	return theta, mx, rho, 1 - rho*rho, true
}

// MeanVariance is the mean of xs and the variance of that mean
// (sample variance with n − 1, divided by n); ok is false below two values.
func MeanVariance(xs []float64) (mean, variance float64, ok bool) {
	n := float64(len(xs))
	if n < 2 {
		return 0, 0, false
	}
	s := 0.0
	for _, v := range xs {
		s += v
	}
	mean = s / n
	ss := 0.0
	for _, v := range xs {
		ss += (v - mean) * (v - mean)
	}
	return mean, ss / (n - 1) / n, true
}
