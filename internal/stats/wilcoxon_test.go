package stats

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/changelens/changelens/testkit/statstest"
)

// R's wilcox.test documentation (Hollander & Wolfe, depression scale before
// and after therapy): wilcox.test(x, y, paired = TRUE, alternative =
// "greater") gives V = 40, p-value = 0.01953 (exactly 10/512).
func TestWilcoxonRExample(t *testing.T) {
	x := []float64{1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30}
	y := []float64{0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29}
	r, err := WilcoxonSignedRank(x, y, Greater)
	if err != nil {
		t.Fatal(err)
	}
	if r.TPlus != 40 || !r.Exact || r.N != 9 {
		t.Errorf("%+v, want V = 40, exact, 9 pairs", r)
	}
	statstest.AssertClose(t, "p", r.P, 10.0/512, 1e-15)
}

// SciPy's wilcoxon documentation (Fisher's Zea mays, cross- minus
// self-fertilised heights): wilcoxon(d) → statistic 24, p 0.041259765625;
// alternative="greater" → statistic 96, p 0.0206298828125.
func TestWilcoxonSciPyExample(t *testing.T) {
	d := []float64{6, 8, 14, 16, 23, 24, 28, 29, 41, -48, 49, 56, 60, -67, 75}
	zero := make([]float64, len(d))
	two, err := WilcoxonSignedRank(d, zero, TwoSided)
	if err != nil {
		t.Fatal(err)
	}
	if n := float64(two.N*(two.N+1)) / 2; math.Min(two.TPlus, n-two.TPlus) != 24 {
		t.Errorf("min(T+, T−) = %v, want 24", math.Min(two.TPlus, n-two.TPlus))
	}
	statstest.AssertClose(t, "two-sided p", two.P, 0.041259765625, 1e-15)
	up, err := WilcoxonSignedRank(d, zero, Greater)
	if err != nil {
		t.Fatal(err)
	}
	if up.TPlus != 96 {
		t.Errorf("T+ = %v, want 96", up.TPlus)
	}
	statstest.AssertClose(t, "greater p", up.P, 0.0206298828125, 1e-15)
}

// The exact distribution equals a brute-force enumeration of all sign
// patterns; with ties the normal approximation is used.
func TestWilcoxonExactMatchesEnumeration(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for trial := 0; trial < 30; trial++ {
		n := 1 + rng.IntN(12)
		x, y := make([]float64, n), make([]float64, n)
		for i := range x {
			x[i] = float64(i+1) * (1 + 0.001*float64(trial)) // distinct |d|
			if rng.IntN(2) == 0 {
				x[i] = -x[i]
			}
		}
		r, err := WilcoxonSignedRank(x, y, Greater)
		if err != nil || !r.Exact {
			t.Fatalf("%v %+v", err, r)
		}
		// Count sign patterns with T+ ≥ observed.
		ge := 0
		for mask := 0; mask < 1<<n; mask++ {
			s := 0
			for k := 0; k < n; k++ {
				if mask&(1<<k) != 0 {
					s += k + 1
				}
			}
			if float64(s) >= r.TPlus {
				ge++
			}
		}
		statstest.AssertClose(t, "p", r.P, float64(ge)/float64(int(1)<<n), 1e-12)
	}
	r, err := WilcoxonSignedRank([]float64{1, 1, 2, 3, -1}, make([]float64, 5), TwoSided)
	if err != nil || r.Exact {
		t.Errorf("ties must use the normal approximation: %v %+v", err, r)
	}
}

func TestWilcoxonErrors(t *testing.T) {
	if _, err := WilcoxonSignedRank([]float64{1}, []float64{1, 2}, Greater); err != ErrLengthMismatch {
		t.Errorf("lengths: %v", err)
	}
	if _, err := WilcoxonSignedRank([]float64{1, 2}, []float64{1, 2}, Greater); err != ErrEmptySample {
		t.Errorf("all zero differences: %v", err)
	}
	if _, err := WilcoxonSignedRank([]float64{math.NaN()}, []float64{1}, Greater); err != ErrNaN {
		t.Errorf("NaN: %v", err)
	}
}

// SciPy's chisquare documentation: chisquare([16, 18, 16, 14, 12, 12]) →
// statistic 2.0, p 0.84914503608460956; with f_exp [16, 16, 16, 16, 16, 8]
// → statistic 3.5, p 0.62338762774958223.
func TestChiSquareSciPyExamples(t *testing.T) {
	obs := []float64{16, 18, 16, 14, 12, 12}
	stat, p, err := ChiSquareGOF(obs, []float64{1, 1, 1, 1, 1, 1})
	if err != nil {
		t.Fatal(err)
	}
	statstest.AssertClose(t, "statistic", stat, 2.0, 1e-12)
	statstest.AssertClose(t, "p", p, 0.84914503608460956, 1e-12)
	stat, p, err = ChiSquareGOF(obs, []float64{16, 16, 16, 16, 16, 8})
	if err != nil {
		t.Fatal(err)
	}
	statstest.AssertClose(t, "statistic", stat, 3.5, 1e-12)
	statstest.AssertClose(t, "p", p, 0.62338762774958223, 1e-12)
	// Two cells: the statistic is z², the p-value the two-sided normal tail.
	stat, p, err = ChiSquareGOF([]float64{5300, 4700}, []float64{0.5, 0.5})
	if err != nil {
		t.Fatal(err)
	}
	statstest.AssertClose(t, "statistic", stat, 36, 1e-12)
	statstest.AssertClose(t, "p", p, 2*normUpper(6), 1e-9)
	if _, _, err := ChiSquareGOF([]float64{1, 2}, []float64{0, 1}); err == nil {
		t.Error("a zero expected share accepted")
	}
}

// The interval of the mean difference covers the true difference about
// level of the time (seeded simulation: 400 experiments of 30 pairs).
func TestPairedBootstrapCoverage(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	const runs, n, truth = 400, 30, 0.5
	covered := 0
	meanDiff := func(x, y []float64) float64 {
		s := 0.0
		for i := range x {
			s += x[i] - y[i]
		}
		return s / float64(len(x))
	}
	for r := 0; r < runs; r++ {
		x, y := make([]float64, n), make([]float64, n)
		for i := range x {
			shared := rng.NormFloat64() * 3 // the minute's load, common to both
			y[i] = 10 + shared + rng.NormFloat64()
			x[i] = 10 + truth + shared + rng.NormFloat64()
		}
		lo, hi, ok := PairedBootstrap(x, y, meanDiff, 500, 0.95, uint64(r))
		if !ok {
			t.Fatal("no interval")
		}
		if lo <= truth && truth <= hi {
			covered++
		}
	}
	// 95 % nominal; the percentile bootstrap undercovers slightly at n = 30.
	if c := float64(covered) / runs; c < 0.90 || c > 0.99 {
		t.Errorf("coverage %.3f over %d runs, want about 0.95", c, runs)
	}
	// Deterministic for a seed.
	x, y := []float64{1, 2, 3, 4}, []float64{0, 1, 1, 5}
	a1, b1, _ := PairedBootstrap(x, y, meanDiff, 200, 0.9, 7)
	a2, b2, _ := PairedBootstrap(x, y, meanDiff, 200, 0.9, 7)
	if a1 != a2 || b1 != b2 {
		t.Error("not reproducible for a seed")
	}
	if _, _, ok := PairedBootstrap(x, y[:3], meanDiff, 200, 0.9, 7); ok {
		t.Error("length mismatch accepted")
	}
}
