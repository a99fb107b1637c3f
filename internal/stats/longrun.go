package stats

// LongRunVariance estimates the variance of the sum of a series of
// residuals r (mean zero, in time order) that may be correlated over short
// lags: the Newey–West (Bartlett kernel) estimator
//
//	Σ r_t² + 2 Σ_{l=1..lags} (1 − l/(lags+1)) Σ_t r_t r_{t+l}
//
// which is never negative. With lags = 0 it is the cluster-robust variance
// of a sum of independent clusters (each residual one cluster's). Callers
// pass per-minute residuals of a count (requests slower than a threshold,
// errors): requests of one minute, and of neighbouring minutes, share their
// fortunes (a slow dependency, a GC pause), which no binomial variance
// knows of.
func LongRunVariance(r []float64, lags int) float64 {
	v := 0.0
	for _, x := range r {
		v += x * x
	}
	for l := 1; l <= lags && l < len(r); l++ {
		c := 0.0
		for t := 0; t+l < len(r); t++ {
			c += r[t] * r[t+l]
		}
		v += 2 * (1 - float64(l)/float64(lags+1)) * c
	}
	if v < 0 {
		return 0
	}
	return v
}
