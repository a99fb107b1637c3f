package stats

import "math"

// MixtureSPRTRadius is the half-width of the always-valid confidence
// sequence that inverts MixtureSPRT: at a look where the estimate θ̂ has
// variance v, every θ0 with |θ̂ − θ0| < radius keeps Λ(θ̂ − θ0) below 1/α,
//
//	radius = √( 2v(v+τ²)/τ² · (ln(1/α) + ½ ln((v+τ²)/v)) )
//
// so the probability that the true θ ever leaves θ̂ ± radius, over any
// number of looks at any times chosen by the data seen so far, is at most α
// (Johari et al. 2017, §4; Howard et al. 2021, eq. 14 for the normal
// mixture). A report that decides from this interval while an experiment
// runs may be refreshed every hour without raising its error rate. It is
// wider than the fixed-horizon interval at the same look: the price of
// peeking, which the power calculation does not pay because the planned
// duration's decision uses the fixed-horizon interval.
//
// 0 when an argument is not positive and finite or alpha is not in (0, 1).
func MixtureSPRTRadius(variance, tau2, alpha float64) float64 {
	if !(variance > 0) || math.IsInf(variance, 0) || !(tau2 > 0) || math.IsInf(tau2, 0) || !(alpha > 0 && alpha < 1) {
		return 0
	}
	s := variance + tau2
	return math.Sqrt(2 * variance * s / tau2 * (math.Log(1/alpha) + 0.5*math.Log(s/variance)))
}
