package stats

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/changelens/changelens/testkit/statstest"
)

func TestTwoProportionZTestVectors(t *testing.T) {
	tests := []struct {
		name           string
		x1, n1, x2, n2 float64
		alt            Alternative
		z, p           float64
	}{
		// statsmodels proportions_ztest docs: count = [5, 12], nobs = [83, 99].
		{"statsmodels/two-sided", 5, 83, 12, 99, TwoSided, -1.4078304151258787, 0.15918129181156992},
		// One-sided values from statsmodels 0.15.0 ("larger" / "smaller").
		{"statsmodels/greater", 5, 83, 12, 99, Greater, -1.4078304151258787, 0.9204093540942151},
		{"statsmodels/less", 5, 83, 12, 99, Less, -1.4078304151258787, 0.07959064590578496},
		{"30of1000-vs-10of1000/two-sided", 30, 1000, 10, 1000, TwoSided, 3.1943828249996993, 0.0014013015809602137},
		{"30of1000-vs-10of1000/greater", 30, 1000, 10, 1000, Greater, 3.1943828249996993, 0.0007006507904801069},
		{"30of1000-vs-10of1000/less", 30, 1000, 10, 1000, Less, 3.1943828249996993, 0.9992993492095199},
		{"0of50-vs-3of60/two-sided", 0, 50, 3, 60, TwoSided, -1.6031511026549947, 0.10890129793272194},
		{"0of50-vs-3of60/less", 0, 50, 3, 60, Less, -1.6031511026549947, 0.05445064896636097},
		// Equal proportions: z = 0 exactly, p = 1 two-sided, ½ one-sided.
		{"equal/two-sided", 10, 100, 20, 200, TwoSided, 0, 1},
		{"equal/greater", 10, 100, 20, 200, Greater, 0, 0.5},
		// Zero pooled variance: both groups without successes, or all successes.
		{"none/two-sided", 0, 10, 0, 20, TwoSided, 0, 1},
		{"none/greater", 0, 10, 0, 20, Greater, 0, 1},
		{"all/less", 10, 10, 20, 20, Less, 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			z, p, err := TwoProportionZTest(tc.x1, tc.n1, tc.x2, tc.n2, tc.alt)
			if err != nil {
				t.Fatal(err)
			}
			statstest.AssertClose(t, "z", z, tc.z, 1e-12)
			statstest.AssertClose(t, "p", p, tc.p, 1e-12)
		})
	}
}

func TestTwoProportionZTestErrors(t *testing.T) {
	tests := []struct {
		name           string
		x1, n1, x2, n2 float64
		alt            Alternative
		want           error
	}{
		{"0/0 first", 0, 0, 1, 10, TwoSided, ErrZeroTrials},
		{"0/0 second", 1, 10, 0, 0, TwoSided, ErrZeroTrials},
		{"0/0 both", 0, 0, 0, 0, TwoSided, ErrZeroTrials},
		{"x > n", 11, 10, 1, 10, TwoSided, ErrInvalidCount},
		{"negative", -1, 10, 1, 10, TwoSided, ErrInvalidCount},
		{"NaN", math.NaN(), 10, 1, 10, TwoSided, ErrInvalidCount},
		{"Inf", 1, math.Inf(1), 1, 10, TwoSided, ErrInvalidCount},
		{"alternative", 1, 10, 1, 10, Alternative(-1), ErrInvalidAlternative},
	}
	for _, tc := range tests {
		if _, _, err := TwoProportionZTest(tc.x1, tc.n1, tc.x2, tc.n2, tc.alt); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
}

// Swapping the groups negates z, keeps the two-sided p and swaps the
// one-sided p-values; weighted (fractional) counts are accepted.
func TestTwoProportionZTestSymmetry(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for trial := 0; trial < 500; trial++ {
		n1 := 1 + rng.Float64()*1000
		n2 := 1 + rng.Float64()*1000
		x1 := rng.Float64() * n1
		x2 := rng.Float64() * n2
		res := map[Alternative][2]float64{}
		for _, alt := range []Alternative{TwoSided, Greater, Less} {
			z1, p1, err := TwoProportionZTest(x1, n1, x2, n2, alt)
			if err != nil {
				t.Fatal(err)
			}
			z2, p2, err := TwoProportionZTest(x2, n2, x1, n1, alt)
			if err != nil {
				t.Fatal(err)
			}
			statstest.AssertProb(t, "p1", p1)
			statstest.AssertProb(t, "p2", p2)
			statstest.AssertClose(t, "z swap", z1, -z2, 1e-12)
			res[alt] = [2]float64{p1, p2}
		}
		statstest.AssertClose(t, "two-sided", res[TwoSided][0], res[TwoSided][1], 1e-12)
		statstest.AssertClose(t, "greater/less", res[Greater][0], res[Less][1], 1e-12)
		statstest.AssertClose(t, "less/greater", res[Less][0], res[Greater][1], 1e-12)
		// Without continuity correction the one-sided p-values sum to 1.
		statstest.AssertClose(t, "one-sided sum", res[Greater][0]+res[Less][0], 1, 1e-12)
	}
}
