package stats

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/changelens/changelens/testkit/statstest"
)

// The closed form equals the mixture integral
// ∫ φ(θ̂; θ, v) / φ(θ̂; 0, v) · φ(θ; 0, τ²) dθ, computed here by quadrature.
func TestMixtureSPRTIsTheMixtureIntegral(t *testing.T) {
	for _, c := range []struct{ est, v, tau2 float64 }{
		{0, 1, 1}, {1.5, 0.5, 0.2}, {-0.3, 0.01, 0.04}, {0.12, 0.0004, 0.0001}, {2, 1, 10},
	} {
		got, err := MixtureSPRT(c.est, c.v, c.tau2)
		if err != nil {
			t.Fatal(err)
		}
		tau := math.Sqrt(c.tau2)
		const steps = 200000
		lo, hi := -12*tau, 12*tau
		h := (hi - lo) / steps
		sum := 0.0
		for i := 0; i <= steps; i++ {
			th := lo + float64(i)*h
			w := h
			if i == 0 || i == steps {
				w = h / 2
			}
			lr := math.Exp((2*th*c.est - th*th) / (2 * c.v))
			sum += w * lr * math.Exp(-th*th/(2*c.tau2)) / (tau * math.Sqrt(2*math.Pi))
		}
		statstest.AssertClose(t, "Λ", got, sum, 1e-6)
	}
	// Λ at θ̂ = 0 is √(v/(v+τ²)); the known value for v = τ² is 1/√2.
	if l, _ := MixtureSPRT(0, 2, 2); math.Abs(l-1/math.Sqrt2) > 1e-15 {
		t.Errorf("Λ(0; v = τ²) = %v, want 1/√2", l)
	}
	for _, bad := range [][3]float64{{math.NaN(), 1, 1}, {0, 0, 1}, {0, 1, 0}, {0, math.Inf(1), 1}, {0, 1, -1}} {
		if _, err := MixtureSPRT(bad[0], bad[1], bad[2]); err == nil {
			t.Errorf("MixtureSPRT%v: no error", bad)
		}
	}
}

// Looked at after every observation of a null stream, the always-valid
// p-value falls to α in at most α of the runs (seeded simulation: 2000 runs
// of 200 looks, N(0, 1) observations, α = 0.05; bound α + 3σ), while a
// fixed-level z-test repeated at every look rejects far more often.
func TestAlwaysValidUnderContinuousMonitoring(t *testing.T) {
	const runs, looks, alpha = 2000, 200, 0.05
	rng := rand.New(rand.NewPCG(7, 7))
	valid, naive := 0, 0
	for range runs {
		sum := 0.0
		ratios := make([]float64, 0, looks)
		rejectedNaive := false
		for n := 1; n <= looks; n++ {
			sum += rng.NormFloat64()
			est, v := sum/float64(n), 1/float64(n)
			l, err := MixtureSPRT(est, v, 1)
			if err != nil {
				t.Fatal(err)
			}
			ratios = append(ratios, l)
			if math.Abs(est/math.Sqrt(v)) > 1.959963984540054 {
				rejectedNaive = true
			}
		}
		if AlwaysValidP(ratios) <= alpha {
			valid++
		}
		if rejectedNaive {
			naive++
		}
	}
	bound := alpha + 3*math.Sqrt(alpha*(1-alpha)/runs)
	t.Logf("rejections of a true null over %d looks: mSPRT %d/%d, repeated z-test %d/%d", looks, valid, runs, naive, runs)
	if float64(valid)/runs > bound {
		t.Errorf("mSPRT rejected %d of %d null runs, above α + 3σ = %.3f", valid, runs, bound)
	}
	if float64(naive)/runs < 2*alpha {
		t.Errorf("the repeated fixed test rejected only %d of %d: the simulation does not show the peeking problem", naive, runs)
	}
}
