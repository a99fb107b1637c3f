package stats

import "math"

// MixtureSPRT is the likelihood ratio of the normal-mixture sequential
// probability ratio test (mSPRT: Robbins 1970; Johari, Koomen, Pekelis and
// Walsh, "Always Valid Inference", 2017) for an estimate θ̂ of an effect θ
// that is approximately normal with variance v, testing H0: θ = 0 against
// alternatives mixed over θ ~ N(0, tau2):
//
//	Λ = √(v / (v + τ²)) · exp(τ² θ̂² / (2 v (v + τ²)))
//
// Under H0, Λ computed after each new observation is a martingale, so the
// probability that it ever reaches 1/α — however often it is looked at — is
// at most α (Ville's inequality). 1 / (the largest Λ so far) is therefore an
// always-valid p-value: see AlwaysValidP.
//
// Errors: ErrInvalidCount for a non-finite estimate or a variance or tau2
// that is not positive and finite.
func MixtureSPRT(estimate, variance, tau2 float64) (float64, error) {
	if math.IsNaN(estimate) || math.IsInf(estimate, 0) || !(variance > 0) || math.IsInf(variance, 0) || !(tau2 > 0) || math.IsInf(tau2, 0) {
		return 0, ErrInvalidCount
	}
	s := variance + tau2
	// In logs: the exponent reaches hundreds for a clear effect.
	logL := 0.5*math.Log(variance/s) + tau2*estimate*estimate/(2*variance*s)
	return math.Exp(math.Min(logL, 700)), nil
}

// AlwaysValidP folds the likelihood ratios of successive looks into the
// always-valid p-value min(1, 1/max Λ): it never increases, and under H0
// it falls to α or below with probability at most α over any number of
// looks.
func AlwaysValidP(ratios []float64) float64 {
	p := 1.0
	for _, l := range ratios {
		if l > 0 {
			p = math.Min(p, 1/l)
		}
	}
	return p
}
