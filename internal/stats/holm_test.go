package stats

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/changelens/changelens/testkit/statstest"
)

// Equal weights: statsmodels 0.15.0 multipletests(method="holm").
func TestWeightedHolmEqualWeights(t *testing.T) {
	tests := []struct{ p, want []float64 }{
		{[]float64{0.01, 0.04, 0.03, 0.005}, []float64{0.03, 0.06, 0.06, 0.02}},
		{[]float64{0.2, 0.0001, 0.049, 0.012, 0.5, 0.0101}, []float64{0.4, 0.0006, 0.147, 0.0505, 0.5, 0.0505}},
	}
	for _, tc := range tests {
		w := make([]float64, len(tc.p))
		for i := range w {
			w[i] = 1
		}
		got, err := WeightedHolm(tc.p, w)
		if err != nil {
			t.Fatal(err)
		}
		for i := range got {
			statstest.AssertClose(t, "adjusted", got[i], tc.want[i], 1e-12)
		}
	}
}

// The adjusted p-values reproduce the step-down procedure: at any α,
// adjusted ≤ α exactly for the hypotheses the procedure rejects (checked
// by running the procedure itself over random p-values and weights).
func TestWeightedHolmMatchesStepDown(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	for range 2000 {
		n := 1 + rng.IntN(8)
		p, w := make([]float64, n), make([]float64, n)
		for i := range p {
			p[i] = rng.Float64() * rng.Float64() * 0.2
			w[i] = 0.1 + rng.Float64()
		}
		adj, err := WeightedHolm(p, w)
		if err != nil {
			t.Fatal(err)
		}
		for _, alpha := range []float64{0.001, 0.01, 0.05, 0.1} {
			rejected := make([]bool, n)
			for {
				remaining := 0.0
				for i := range p {
					if !rejected[i] {
						remaining += w[i]
					}
				}
				best := -1
				for i := range p {
					if !rejected[i] && (best < 0 || p[i]*w[best] < p[best]*w[i]) {
						best = i
					}
				}
				if best < 0 || p[best] > alpha*w[best]/remaining {
					break
				}
				rejected[best] = true
			}
			for i := range p {
				if (adj[i] <= alpha) != rejected[i] {
					t.Fatalf("p %v w %v α %v: adjusted %v, step-down rejects %v", p, w, alpha, adj, rejected)
				}
			}
		}
	}
}

func TestWeightedHolmErrors(t *testing.T) {
	if _, err := WeightedHolm([]float64{0.1}, []float64{1, 1}); !errors.Is(err, ErrLengthMismatch) {
		t.Errorf("lengths: %v", err)
	}
	if _, err := WeightedHolm([]float64{0.1}, []float64{0}); !errors.Is(err, ErrInvalidCount) {
		t.Errorf("zero weight: %v", err)
	}
	if _, err := WeightedHolm([]float64{1.5}, []float64{1}); !errors.Is(err, ErrInvalidCount) {
		t.Errorf("p > 1: %v", err)
	}
}
