package stats

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/changelens/changelens/testkit/statstest"
)

// Reference values from statsmodels 0.15.0 / SciPy 1.17.1:
// proportion_confint(method="wilson"), confint_proportions_2indep
// (method="newcomb", compare="diff"; method="log", compare="ratio"). The
// 81/263 and 56/70 − 48/80 cases are the worked examples of Newcombe (1998),
// whose published intervals are 0.2553–0.3662 and 0.0524–0.3339.
func TestWilsonInterval(t *testing.T) {
	for _, tc := range []struct {
		x, n, level, lo, hi float64
	}{
		{81, 263, 0.95, 0.2552885198782742, 0.36620957698280004},
		{0, 20, 0.95, 0, 0.1611251580528194},
		{15, 148, 0.90, 0.06744326224687144, 0.14957293174640032},
	} {
		lo, hi, err := WilsonInterval(tc.x, tc.n, tc.level)
		if err != nil {
			t.Fatal(err)
		}
		statstest.AssertClose(t, "lo", lo, tc.lo, 1e-12)
		statstest.AssertClose(t, "hi", hi, tc.hi, 1e-12)
	}
	if _, _, err := WilsonInterval(0, 0, 0.95); !errors.Is(err, ErrZeroTrials) {
		t.Errorf("n = 0: %v", err)
	}
	if _, _, err := WilsonInterval(3, 2, 0.95); !errors.Is(err, ErrInvalidCount) {
		t.Errorf("x > n: %v", err)
	}
}

func TestNewcombeInterval(t *testing.T) {
	for _, tc := range []struct {
		x1, n1, x2, n2, lo, hi float64
	}{
		{56, 70, 48, 80, 0.05243147240236498, 0.33387265403690614},
		{9, 10, 3, 10, 0.1705227239345029, 0.809017973535488},
	} {
		lo, hi, err := NewcombeInterval(tc.x1, tc.n1, tc.x2, tc.n2, 0.95)
		if err != nil {
			t.Fatal(err)
		}
		statstest.AssertClose(t, "lo", lo, tc.lo, 1e-12)
		statstest.AssertClose(t, "hi", hi, tc.hi, 1e-12)
	}
}

func TestLogRelativeRisk(t *testing.T) {
	for _, tc := range []struct {
		x1, n1, x2, n2, lo, hi float64
	}{
		{56, 70, 48, 80, 1.0766264227631928, 1.6512485112663873},
		{5, 1000, 10, 1000, 0.17151590184279142, 1.457590796619813},
	} {
		d, v, err := LogRelativeRisk(tc.x1, tc.n1, tc.x2, tc.n2)
		if err != nil {
			t.Fatal(err)
		}
		_, lo, hi, _, ok := LogChangeInterval(d, v, 0.95)
		if !ok {
			t.Fatal("not ok")
		}
		statstest.AssertClose(t, "lo", 1+lo, tc.lo, 1e-12)
		statstest.AssertClose(t, "hi", 1+hi, tc.hi, 1e-12)
	}
	// A rare event seen in one arm only stays finite.
	d, v, err := LogRelativeRisk(3, 1000, 0, 1000)
	if err != nil || math.IsInf(d, 0) || math.IsInf(v, 0) || !(d > 0) {
		t.Errorf("zero cell: d %v v %v err %v", d, v, err)
	}
}

// The 5100/4900 split is the SRM example: χ² = 4, p = P(χ²₁ ≥ 4) =
// 0.04550026389635857 (scipy.stats.chisquare); three arms 25/25/50 from
// SciPy too.
func TestChiSquareGOFSRMVectors(t *testing.T) {
	for _, tc := range []struct {
		obs, shares []float64
		chi, p      float64
	}{
		{[]float64{5100, 4900}, []float64{0.5, 0.5}, 4, 0.04550026389635857},
		{[]float64{5200, 4800}, []float64{0.5, 0.5}, 16, 6.334248366623988e-05},
		{[]float64{5230, 4920, 10150}, []float64{0.25, 0.25, 0.5}, 9.467980295566502, 0.0087913222868672},
	} {
		chi, p, err := ChiSquareGOF(tc.obs, tc.shares)
		if err != nil {
			t.Fatal(err)
		}
		statstest.AssertClose(t, "chi2", chi, tc.chi, 1e-12)
		statstest.AssertClose(t, "p", p, tc.p, 1e-9)
	}
}

func TestNormalQuantile(t *testing.T) {
	statstest.AssertClose(t, "z.975", NormalQuantile(0.975), 1.959963984540054, 1e-14)
	statstest.AssertClose(t, "z.8", NormalQuantile(0.8), 0.8416212335729143, 1e-14)
}

// num = [2, 3, 5], den = [1, 2, 2]: R = 2, residuals 0, −1, 1, variance
// 3/2 · 2 / 5² = 0.12 (by hand; numpy agrees).
func TestRatioOfSums(t *testing.T) {
	r, v, ok := RatioOfSums([]float64{2, 3, 5}, []float64{1, 2, 2})
	if !ok {
		t.Fatal("not ok")
	}
	statstest.AssertClose(t, "ratio", r, 2, 1e-15)
	statstest.AssertClose(t, "variance", v, 0.12, 1e-14)
	if _, _, ok := RatioOfSums([]float64{1}, []float64{1}); ok {
		t.Error("one cluster must not be ok")
	}
	if _, _, ok := RatioOfSums([]float64{1, 2}, []float64{0, 0}); ok {
		t.Error("zero denominators must not be ok")
	}
}

// The delta-method variance is right for independent clusters: over 2000
// simulated experiments of 200 buckets each, the mean estimated variance
// matches the variance of the ratio across experiments within 10 %.
func TestRatioOfSumsCalibrated(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	const runs, k = 2000, 200
	var rs, vs []float64
	for range runs {
		num, den := make([]float64, k), make([]float64, k)
		for i := range k {
			den[i] = 50 + 50*rng.Float64()
			num[i] = den[i] * (0.2 + 0.05*rng.NormFloat64())
		}
		r, v, _ := RatioOfSums(num, den)
		rs, vs = append(rs, r), append(vs, v)
	}
	_, varR, _ := MeanVariance(rs)
	meanV, _, _ := MeanVariance(vs)
	emp := varR * runs
	if math.Abs(meanV/emp-1) > 0.1 {
		t.Errorf("estimated variance %.3g vs empirical %.3g", meanV, emp)
	}
}

func TestRelativeChange(t *testing.T) {
	// a = 110 ± 5 (var 25), b = 100 ± 4 (var 16): log ratio 0.0953102,
	// sd √(25/110² + 16/100²) = 0.0609918 (by hand).
	rel, lo, hi, p, ok := RelativeChange(110, 25, 100, 16, 0.95)
	if !ok {
		t.Fatal("not ok")
	}
	sd := math.Sqrt(25.0/(110*110) + 16.0/(100*100))
	statstest.AssertClose(t, "rel", rel, 0.1, 1e-14)
	statstest.AssertClose(t, "lo", lo, 1.1*math.Exp(-1.959963984540054*sd)-1, 1e-12)
	statstest.AssertClose(t, "hi", hi, 1.1*math.Exp(1.959963984540054*sd)-1, 1e-12)
	statstest.AssertClose(t, "p", p, 2*normUpper(math.Log(1.1)/sd), 1e-12)
	if _, _, _, _, ok := RelativeChange(0, 1, 1, 1, 0.95); ok {
		t.Error("a zero estimate must not be ok")
	}
}

// x = [1..5], y = [2, 4, 5, 4, 5]: scipy.stats.linregress gives slope 0.6,
// r = 0.7745966692414835, so 1 − ρ² = 0.4.
func TestCUPED(t *testing.T) {
	theta, mx, rho, f, ok := CUPED([]float64{1, 2, 3, 4, 5}, []float64{2, 4, 5, 4, 5})
	if !ok {
		t.Fatal("not ok")
	}
	statstest.AssertClose(t, "theta", theta, 0.6, 1e-14)
	statstest.AssertClose(t, "mean x", mx, 3, 1e-15)
	statstest.AssertClose(t, "rho", rho, 0.7745966692414835, 1e-14)
	statstest.AssertClose(t, "1-rho2", f, 0.4, 1e-14)
	if _, _, _, _, ok := CUPED([]float64{1, 1, 1}, []float64{1, 2, 3}); ok {
		t.Error("constant x must not be ok")
	}
	m, v, _ := MeanVariance([]float64{1, 2, 4, 7})
	statstest.AssertClose(t, "mean", m, 3.5, 1e-15)
	statstest.AssertClose(t, "var of mean", v, 1.75, 1e-15)
}

// The radius is where the mixture likelihood ratio reaches 1/α.
func TestMixtureSPRTRadius(t *testing.T) {
	for _, tc := range []struct{ v, tau2, alpha float64 }{
		{0.01, 0.0025, 0.05}, {1e-4, 0.0025, 0.05}, {0.5, 0.1, 0.01},
	} {
		r := MixtureSPRTRadius(tc.v, tc.tau2, tc.alpha)
		l, err := MixtureSPRT(r, tc.v, tc.tau2)
		if err != nil {
			t.Fatal(err)
		}
		statstest.AssertClose(t, "Λ(radius)", l, 1/tc.alpha, 1e-9)
		// Always wider than the fixed-horizon half-width.
		if r <= 1.959963984540054*math.Sqrt(tc.v) {
			t.Errorf("radius %v not wider than the fixed interval", r)
		}
	}
	if MixtureSPRTRadius(0, 1, 0.05) != 0 {
		t.Error("zero variance must give 0")
	}
}
