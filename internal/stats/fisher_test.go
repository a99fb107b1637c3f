package stats

import (
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/changelens/changelens/testkit/statstest"
)

func TestFisherExactVectors(t *testing.T) {
	type tbl = [2][2]int64
	tests := []struct {
		name  string
		table tbl
		alt   Alternative
		p     float64
	}{
		// SciPy fisher_exact docs: [[6, 2], [1, 4]] two-sided p = 0.10256410256410257.
		// By hand, margins 8/5 and 7/6, C(13,7) = 1716; the weights of
		// a = 2..7 are 28, 280, 700, 560, 140, 8. Observed a = 6 (140):
		// two-sided = (28+140+8)/1716, greater = (140+8)/1716, less = 1708/1716.
		{"scipy-doc/two-sided", tbl{{6, 2}, {1, 4}}, TwoSided, 0.10256410256410257},
		{"scipy-doc/two-sided/rational", tbl{{6, 2}, {1, 4}}, TwoSided, 176.0 / 1716},
		{"scipy-doc/greater", tbl{{6, 2}, {1, 4}}, Greater, 148.0 / 1716},
		{"scipy-doc/less", tbl{{6, 2}, {1, 4}}, Less, 1708.0 / 1716},
		// R ?fisher.test tea tasting: greater p = 0.2429 = 17/70; two-sided 34/70.
		{"tea/greater", tbl{{3, 1}, {1, 3}}, Greater, 17.0 / 70},
		{"tea/two-sided", tbl{{3, 1}, {1, 3}}, TwoSided, 34.0 / 70},
		{"tea/less", tbl{{3, 1}, {1, 3}}, Less, 69.0 / 70},
		// SciPy 1.17.1 fisher_exact.
		{"large/two-sided", tbl{{1000, 2000}, {1100, 1900}}, TwoSided, 0.007364099121621419},
		{"large/greater", tbl{{1000, 2000}, {1100, 1900}}, Greater, 0.9968721592514448},
		{"large/less", tbl{{1000, 2000}, {1100, 1900}}, Less, 0.0036820495608107097},
		{"zero-cell/two-sided", tbl{{0, 10}, {5, 5}}, TwoSided, 0.032507739938080496},
		{"zero-cell/greater", tbl{{0, 10}, {5, 5}}, Greater, 1},
		{"zero-cell/less", tbl{{0, 10}, {5, 5}}, Less, 0.016253869969040248},
		{"12-5-29-2/two-sided", tbl{{12, 5}, {29, 2}}, TwoSided, 0.08026855207410463},
		{"12-5-29-2/greater", tbl{{12, 5}, {29, 2}}, Greater, 0.9945252060218822},
		{"12-5-29-2/less", tbl{{12, 5}, {29, 2}}, Less, 0.04455473783507688},
		{"2-7-8-2/two-sided", tbl{{2, 7}, {8, 2}}, TwoSided, 0.02301413756522116},
		{"2-7-8-2/greater", tbl{{2, 7}, {8, 2}}, Greater, 0.9990149169715733},
		{"2-7-8-2/less", tbl{{2, 7}, {8, 2}}, Less, 0.01852172595206651},
		// Million-request windows. SciPy 1.17.1 gives 0.004985127694067414,
		// 0.9976142564734434, 0.002492563847033707 (log-gamma rounding,
		// ≈2e-10 relative); these are 40-digit mpmath references (exact
		// ratio products summed over ±45 standard deviations).
		{"million/two-sided", tbl{{10000, 990000}, {10400, 989600}}, TwoSided, 0.0049851276929432563422},
		{"million/greater", tbl{{10000, 990000}, {10400, 989600}}, Greater, 0.99761425647404899867},
		{"million/less", tbl{{10000, 990000}, {10400, 989600}}, Less, 0.0024925638464716281711},
		{"ten-million/two-sided", tbl{{1e7, 1e7}, {1e7, 1e7 + 1e4}}, TwoSided, 0.11403613190974758752},
		{"ten-million/greater", tbl{{1e7, 1e7}, {1e7, 1e7 + 1e4}}, Greater, 0.057027101501248341385},
		{"ten-million/less", tbl{{1e7, 1e7}, {1e7, 1e7 + 1e4}}, Less, 0.94304524617714493852},
		{"rare/two-sided", tbl{{3, 1e8}, {40, 1e8}}, TwoSided, 3.021331297709030434e-9},
		{"rare/greater", tbl{{3, 1e8}, {40, 1e8}}, Greater, 0.99999999989233818586},
		{"rare/less", tbl{{3, 1e8}, {40, 1e8}}, Less, 1.5106760310882907363e-9},
		// Degenerate tables: only one table has these margins.
		{"empty", tbl{{0, 0}, {0, 0}}, TwoSided, 1},
		{"one-row", tbl{{3, 4}, {0, 0}}, Greater, 1},
		{"one-column", tbl{{3, 0}, {5, 0}}, Less, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := FisherExact(tc.table, tc.alt)
			if err != nil {
				t.Fatal(err)
			}
			// Relative accuracy, also for the tiny p-values.
			if rel := math.Abs(p-tc.p) / tc.p; rel > 1e-12 {
				t.Errorf("p = %.17g, want %.17g (relative error %g)", p, tc.p, rel)
			}
		})
	}
}

// fisherRational computes the three p-values with exact rational arithmetic
// on binomial coefficients, independently of the log-gamma implementation.
func fisherRational(tb [2][2]int64) map[Alternative]float64 {
	a, b, c, d := tb[0][0], tb[0][1], tb[1][0], tb[1][1]
	r1, r2, c1 := a+b, c+d, a+c
	lo := max(0, c1-r2)
	hi := min(r1, c1)
	w := func(x int64) *big.Int {
		return new(big.Int).Mul(new(big.Int).Binomial(r1, x), new(big.Int).Binomial(r2, c1-x))
	}
	total, ge, le, two := new(big.Int), new(big.Int), new(big.Int), new(big.Int)
	obs := w(a)
	for x := lo; x <= hi; x++ {
		v := w(x)
		total.Add(total, v)
		if x >= a {
			ge.Add(ge, v)
		}
		if x <= a {
			le.Add(le, v)
		}
		if v.Cmp(obs) <= 0 {
			two.Add(two, v)
		}
	}
	f := func(n *big.Int) float64 {
		v, _ := new(big.Rat).SetFrac(n, total).Float64()
		return v
	}
	return map[Alternative]float64{Greater: f(ge), Less: f(le), TwoSided: f(two)}
}

func TestFisherExactMatchesRational(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for trial := 0; trial < 200; trial++ {
		lim := int64(12)
		if trial%3 == 0 {
			lim = 400
		}
		tb := [2][2]int64{{rng.Int64N(lim), rng.Int64N(lim)}, {rng.Int64N(lim), rng.Int64N(lim)}}
		want := fisherRational(tb)
		for alt, p := range want {
			got, err := FisherExact(tb, alt)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(got-p) > 1e-13*p {
				t.Errorf("%v %v: p = %.17g, want %.17g", tb, alt, got, p)
			}
		}
	}
}

// Transposing the table keeps every p-value; swapping its rows swaps the
// one-sided p-values and keeps the two-sided one.
func TestFisherExactSymmetry(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for trial := 0; trial < 300; trial++ {
		tb := [2][2]int64{{rng.Int64N(30), rng.Int64N(30)}, {rng.Int64N(30), rng.Int64N(30)}}
		tr := [2][2]int64{{tb[0][0], tb[1][0]}, {tb[0][1], tb[1][1]}}
		sw := [2][2]int64{tb[1], tb[0]}
		get := func(x [2][2]int64, alt Alternative) float64 {
			p, err := FisherExact(x, alt)
			if err != nil {
				t.Fatal(err)
			}
			statstest.AssertProb(t, "p", p)
			return p
		}
		for _, alt := range []Alternative{TwoSided, Greater, Less} {
			statstest.AssertClose(t, "transpose "+alt.String(), get(tb, alt), get(tr, alt), 1e-12)
		}
		statstest.AssertClose(t, "row swap two-sided", get(tb, TwoSided), get(sw, TwoSided), 1e-12)
		statstest.AssertClose(t, "row swap greater/less", get(tb, Greater), get(sw, Less), 1e-12)
		// P(X ≥ a) + P(X ≤ a) = 1 + P(X = a) > 1, and the two-sided p is at
		// least the smaller one-sided p.
		if g, l := get(tb, Greater), get(tb, Less); g+l < 1-1e-12 || get(tb, TwoSided) < min(g, l)-1e-12 {
			t.Errorf("%v: inconsistent one-sided p-values %v, %v", tb, g, l)
		}
	}
}

// Tables whose observed cell is far beyond the bulk of the distribution:
// the true tail is below the smallest float64 (1/C(2e6, 1e6) ≈ 1e−602059).
func TestFisherExactExtremeTables(t *testing.T) {
	tests := []struct {
		table [2][2]int64
		alt   Alternative
		want  float64
	}{
		{[2][2]int64{{1e6, 0}, {0, 1e6}}, Greater, 0},
		{[2][2]int64{{1e6, 0}, {0, 1e6}}, Less, 1},
		{[2][2]int64{{1e6, 0}, {0, 1e6}}, TwoSided, 0},
		{[2][2]int64{{0, 1e6}, {1e6, 0}}, Greater, 1},
		{[2][2]int64{{0, 1e6}, {1e6, 0}}, Less, 0},
		{[2][2]int64{{0, 1e6}, {1e6, 0}}, TwoSided, 0},
	}
	for _, tc := range tests {
		p, err := FisherExact(tc.table, tc.alt)
		if err != nil || p != tc.want {
			t.Errorf("%v %v: (%v, %v), want %v", tc.table, tc.alt, p, err, tc.want)
		}
	}
}

func TestFisherExactErrors(t *testing.T) {
	if _, err := FisherExact([2][2]int64{{1e12, 1e12}, {1e12, 1e12}}, TwoSided); !errors.Is(err, ErrFisherTooLarge) {
		t.Errorf("sd 5e5: %v", err)
	}
	if _, err := FisherExact([2][2]int64{{math.MaxInt64, 1}, {1, 1}}, TwoSided); !errors.Is(err, ErrInvalidCount) {
		t.Errorf("overflowing total: %v", err)
	}
	if _, err := FisherExact([2][2]int64{{MaxFisherTotal / 2, MaxFisherTotal / 2}, {1, 0}}, Greater); !errors.Is(err, ErrInvalidCount) {
		t.Errorf("total 2^53 + 1: %v", err)
	}
	// A large accepted table still answers (sd ≈ 15811).
	if p, err := FisherExact([2][2]int64{{1e9, 1e9}, {1e9, 1e9}}, TwoSided); err != nil || !statstest.Close(p, 1, 1e-9) {
		t.Errorf("observed at the mode: (%v, %v), want 1", p, err)
	}

	if _, err := FisherExact([2][2]int64{{-1, 2}, {3, 4}}, TwoSided); !errors.Is(err, ErrInvalidCount) {
		t.Errorf("negative: %v", err)
	}
	if _, err := FisherExact([2][2]int64{{1, 2}, {3, 4}}, Alternative(3)); !errors.Is(err, ErrInvalidAlternative) {
		t.Errorf("alternative: %v", err)
	}
}
