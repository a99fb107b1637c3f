package stats

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/changelens/changelens/testkit/statstest"
)

func TestPoissonRateTestVectors(t *testing.T) {
	tests := []struct {
		name           string
		x1, t1, x2, t2 float64
		greater, less  float64
	}{
		// R ?poisson.test: poisson.test(c(11, 6+8+7), c(800, 1083+1050+878)),
		// one-sided values from SciPy 1.17.1 binomtest(11, 32, 800/3811).
		{"R-eba1977", 11, 800, 21, 3011, 0.05600865978769968, 0.9759318232273121},
		{"none-first", 0, 1000, 3, 1000, 1, 0.125},
		{"9-vs-2", 9, 1000, 2, 1000, 0.03271484375, 0.994140625},
		{"0.2%-vs-0.6%", 36, 18000, 108, 18000, 0.9999999997572039, 7.478793747882465e-10},
		{"1-vs-0", 1, 50, 0, 70, 0.4166666666666667, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, err := PoissonRateTest(tc.x1, tc.t1, tc.x2, tc.t2, Greater)
			if err != nil {
				t.Fatal(err)
			}
			l, err := PoissonRateTest(tc.x1, tc.t1, tc.x2, tc.t2, Less)
			if err != nil {
				t.Fatal(err)
			}
			statstest.AssertClose(t, "greater", g, tc.greater, 1e-9)
			statstest.AssertClose(t, "less", l, tc.less, 1e-9)
		})
	}
}

// Real (non-integer) counts: the continuous extension through the
// regularized incomplete beta function, against 40-digit mpmath
// betainc(k, n−k+1, 0, π) and betainc(n−k, k+1, 0, 1−π).
func TestPoissonRateTestRealCounts(t *testing.T) {
	tests := []struct {
		x1, n, pi     float64
		greater, less float64
	}{
		{2.5, 7.25, 0.3, 0.53296661302913859375, 0.75681122832118344366},
		{10.4, 30.2, 0.5, 0.97169884082953934117, 0.062494567135751537224},
		{0.7, 3.1, 0.2, 0.66797879578439909726, 0.80918558698836135111},
	}
	for _, tc := range tests {
		// Exposures t1 = π, t2 = 1 − π give the share π.
		g, _ := PoissonRateTest(tc.x1, tc.pi, tc.n-tc.x1, 1-tc.pi, Greater)
		l, _ := PoissonRateTest(tc.x1, tc.pi, tc.n-tc.x1, 1-tc.pi, Less)
		statstest.AssertClose(t, "greater", g, tc.greater, 1e-9)
		statstest.AssertClose(t, "less", l, tc.less, 1e-9)
	}
}

// The exact interval of R's poisson.test (Clopper–Pearson on the share,
// mapped to the ratio); values from SciPy 1.17.1 betaincinv.
func TestPoissonRateRatioCIVectors(t *testing.T) {
	tests := []struct {
		x1, t1, x2, t2 float64
		lo, hi         float64
	}{
		{11, 800, 21, 3011, 0.8584264033916397, 4.277265943654075}, // R prints 0.8584264 4.2772659
		{0, 1000, 3, 1000, 0, 2.4199518933533923},
		{9, 1000, 2, 1000, 0.9314122581937676, 42.7997159352678},
		{36, 18000, 108, 18000, 0.22196728919938702, 0.49015403700676413},
		{1, 50, 0, 70, 0.0358974358974359, math.Inf(1)},
	}
	for _, tc := range tests {
		lo, hi, err := PoissonRateRatioCI(tc.x1, tc.t1, tc.x2, tc.t2, 0.95)
		if err != nil {
			t.Fatal(err)
		}
		statstest.AssertClose(t, "lo", lo, tc.lo, 1e-8)
		if math.IsInf(tc.hi, 1) {
			if !math.IsInf(hi, 1) {
				t.Errorf("hi = %v, want +Inf", hi)
			}
		} else {
			statstest.AssertClose(t, "hi", hi, tc.hi, 1e-8)
		}
	}
}

func TestPoissonRateTestErrors(t *testing.T) {
	for _, c := range [][4]float64{{-1, 1, 1, 1}, {1, math.NaN(), 1, 1}, {1, 1, math.Inf(1), 1}} {
		if _, err := PoissonRateTest(c[0], c[1], c[2], c[3], Greater); !errors.Is(err, ErrInvalidCount) {
			t.Errorf("%v: err = %v", c, err)
		}
	}
	if _, err := PoissonRateTest(1, 0, 1, 1, Greater); !errors.Is(err, ErrZeroTrials) {
		t.Errorf("zero exposure: err = %v", err)
	}
	if p, err := PoissonRateTest(0, 10, 0, 10, Greater); err != nil || p != 1 {
		t.Errorf("no events: p = %v, err = %v", p, err)
	}
	if _, err := PoissonRateTest(1, 1, 1, 1, Alternative(9)); !errors.Is(err, ErrInvalidAlternative) {
		t.Errorf("alternative: err = %v", err)
	}
}

// Under equal rates the test is exact: its false-alarm rate at α is at most
// α (conservative, discrete), over many seeded draws.
func TestPoissonRateTestNullRate(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	const runs = 20000
	rejected := 0
	for range runs {
		x1, x2 := poisson(rng, 4), poisson(rng, 4)
		p, err := PoissonRateTest(x1, 1, x2, 1, Greater)
		if err != nil {
			t.Fatal(err)
		}
		if p <= 0.05 {
			rejected++
		}
	}
	if rate := float64(rejected) / runs; rate > 0.05 {
		t.Errorf("null rejection rate %.4f > 0.05", rate)
	}
}

func poisson(rng *rand.Rand, mean float64) float64 {
	l, k, p := math.Exp(-mean), 0.0, 1.0
	for {
		p *= rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}
