package stats

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/changelens/changelens/testkit/statstest"
)

func TestLongRunVarianceByHand(t *testing.T) {
	r := []float64{1, -2, 3, 0.5}
	// Σr² = 14.25; lag 1: 1·−2 + −2·3 + 3·0.5 = −6.5; lag 2: 1·3 + −2·0.5 = 2.
	statstest.AssertClose(t, "lags 0", LongRunVariance(r, 0), 14.25, 1e-15)
	statstest.AssertClose(t, "lags 1", LongRunVariance(r, 1), 14.25+2*0.5*-6.5, 1e-15)
	statstest.AssertClose(t, "lags 2", LongRunVariance(r, 2), 14.25+2*(2.0/3)*-6.5+2*(1.0/3)*2, 1e-15)
	if v := LongRunVariance([]float64{5, -5, 5, -5}, 1); v < 0 {
		t.Errorf("negative variance %v", v)
	}
}

// On an AR(1) series the Bartlett estimator with a few lags comes much
// closer to the true variance of the sum than the independent-cluster one,
// which the autocorrelation makes too small.
func TestLongRunVarianceAR1(t *testing.T) {
	const (
		n, runs = 60, 4000
		rho     = 0.5
	)
	rng := rand.New(rand.NewPCG(1, 2))
	var sums, v0, v3 []float64
	for range runs {
		r := make([]float64, n)
		x := rng.NormFloat64() / math.Sqrt(1-rho*rho)
		for i := range r {
			r[i] = x
			x = rho*x + rng.NormFloat64()
		}
		mean := 0.0
		for _, v := range r {
			mean += v / n
		}
		s := 0.0
		for i := range r {
			s += r[i]
			r[i] -= mean
		}
		sums = append(sums, s)
		v0 = append(v0, LongRunVariance(r, 0))
		v3 = append(v3, LongRunVariance(r, 3))
	}
	truth := 0.0
	for _, s := range sums {
		truth += s * s / runs
	}
	avg := func(xs []float64) float64 {
		a := 0.0
		for _, x := range xs {
			a += x / float64(len(xs))
		}
		return a
	}
	if a0, a3 := avg(v0), avg(v3); !(a3 > 1.6*a0 && a3 < truth) || a0 > 0.5*truth {
		t.Errorf("true variance %.1f; lags 0 → %.1f, lags 3 → %.1f", truth, a0, a3)
	}
}
