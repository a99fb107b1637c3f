package stats

import (
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/changelens/changelens/testkit/statstest"
)

var (
	ozoneMay, ozoneAug = statstest.OzoneMay, statstest.OzoneAug

	// SciPy mannwhitneyu documentation example (ages of males / females).
	spMales   = []float64{19, 22, 16, 29, 24}
	spFemales = []float64{20, 11, 17, 12}

	// 12 and 15 distinct values (rounded normal draws); reference p-values
	// computed with SciPy 1.17.1 mannwhitneyu.
	sampA = []float64{0.0012, 0.2987, -0.2741, -0.8906, -0.4547, -0.9916, 0.0601, 1.3402, -0.4922, -0.6205, 0.4898, 0.3569}
	sampB = []float64{0.9054, -0.1305, 0.7707, 1.4953, -0.5442, 0.3424, -1.1012, -0.4895, -1.0417, 0.5649, -0.4674, 1.0713, 0.9568, 0.6131, -1.7168}

	// SciPy 1.17.1 mannwhitneyu docs-style data with ties in the second sample.
	tieX = []float64{1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30}
	tieY = []float64{0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29}
)

func TestMannWhitneyVectors(t *testing.T) {
	if len(ozoneMay) != 26 || len(ozoneAug) != 26 {
		t.Fatalf("airquality data: %d May, %d Aug values, want 26 each", len(ozoneMay), len(ozoneAug))
	}
	tests := []struct {
		name   string
		x, y   []float64
		alt    Alternative
		method MannWhitneyMethod
		u1, p  float64
		exact  bool
	}{
		// SciPy docs: U1 = 17, asymptotic p = 0.11134688653314041, exact p = 0.1111111111111111.
		{"scipy/two-sided/asymptotic", spMales, spFemales, TwoSided, MannWhitneyAsymptotic, 17, 0.11134688653314041, false},
		{"scipy/two-sided/exact", spMales, spFemales, TwoSided, MannWhitneyExact, 17, 0.1111111111111111, true},
		{"scipy/two-sided/auto-is-exact", spMales, spFemales, TwoSided, MannWhitneyAuto, 17, 0.1111111111111111, true},
		// Exact one-sided by hand: C(9,4) = 126 arrangements; U ≥ 17 in 7 of
		// them (= U ≤ 3: partitions of 0,1,2,3 → 1+1+2+3), U ≥ 18 in 4.
		{"scipy/greater/exact", spMales, spFemales, Greater, MannWhitneyExact, 17, 7.0 / 126, true},
		{"scipy/less/exact", spMales, spFemales, Less, MannWhitneyExact, 17, 122.0 / 126, true},
		// SciPy 1.17.1.
		{"scipy/greater/asymptotic", spMales, spFemales, Greater, MannWhitneyAsymptotic, 17, 0.055673443266570206, false},
		{"scipy/less/asymptotic", spMales, spFemales, Less, MannWhitneyAsymptotic, 17, 0.9669037101389033, false},
		// R ?wilcox.test: W = 127.5, p-value = 0.0001208 (two-sided, continuity
		// correction); full-precision p from docs/analysis.md, one-sided from SciPy 1.17.1.
		{"airquality/two-sided", ozoneMay, ozoneAug, TwoSided, MannWhitneyAuto, 127.5, 0.000120807830769, false},
		{"airquality/less", ozoneMay, ozoneAug, Less, MannWhitneyAuto, 127.5, 6.040391538438717e-05, false},
		{"airquality/greater", ozoneMay, ozoneAug, Greater, MannWhitneyAuto, 127.5, 0.9999439498752809, false},
		// SciPy 1.17.1, exact and asymptotic on 12 vs 15 distinct values.
		{"ab/two-sided/exact", sampA, sampB, TwoSided, MannWhitneyAuto, 76, 0.5163649500168548, true},
		{"ab/greater/exact", sampA, sampB, Greater, MannWhitneyExact, 76, 0.7571900602052708, true},
		{"ab/less/exact", sampA, sampB, Less, MannWhitneyExact, 76, 0.2581824750084274, true},
		{"ab/two-sided/asymptotic", sampA, sampB, TwoSided, MannWhitneyAsymptotic, 76, 0.5100675275575344, false},
		{"ab/greater/asymptotic", sampA, sampB, Greater, MannWhitneyAsymptotic, 76, 0.7603806517764151, false},
		{"ab/less/asymptotic", sampA, sampB, Less, MannWhitneyAsymptotic, 76, 0.2550337637787672, false},
		// SciPy 1.17.1 with ties (auto → asymptotic).
		{"ties/two-sided", tieX, tieY, TwoSided, MannWhitneyAuto, 58, 0.13291945818531892, false},
		{"ties/greater", tieX, tieY, Greater, MannWhitneyAuto, 58, 0.06645972909265946, false},
		{"ties/less", tieX, tieY, Less, MannWhitneyAuto, 58, 0.9442044002897128, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := MannWhitneyU(tc.x, tc.y, tc.alt, tc.method)
			if err != nil {
				t.Fatal(err)
			}
			statstest.AssertClose(t, "U1", r.U1, tc.u1, 1e-12)
			statstest.AssertClose(t, "U2", r.U2, float64(len(tc.x)*len(tc.y))-tc.u1, 1e-12)
			statstest.AssertClose(t, "p", r.P, tc.p, 1e-9)
			if r.Exact != tc.exact {
				t.Errorf("Exact = %v, want %v", r.Exact, tc.exact)
			}
		})
	}
}

// R ?wilcox.test airquality example: σ and z as given in docs/analysis.md.
func TestMannWhitneyAirqualitySigmaZ(t *testing.T) {
	r, err := MannWhitneyU(ozoneMay, ozoneAug, TwoSided, MannWhitneyAuto)
	if err != nil {
		t.Fatal(err)
	}
	statstest.AssertClose(t, "U1", r.U1, 127.5, 0)
	statstest.AssertClose(t, "sigma", r.Sigma, 54.6237576697245, 1e-12)
	statstest.AssertClose(t, "z", r.Z, -3.84448102728007, 1e-12)
	statstest.AssertClose(t, "p", r.P, 0.000120807830769, 1e-9)
	// Relative precision of the small p-value as well (R prints 0.0001208).
	if math.Abs(r.P-0.000120807830769)/0.000120807830769 > 1e-9 {
		t.Errorf("p relative error too large: %v", r.P)
	}
}

func TestMannWhitneyScipySigmaZ(t *testing.T) {
	r, err := MannWhitneyU(spMales, spFemales, TwoSided, MannWhitneyAsymptotic)
	if err != nil {
		t.Fatal(err)
	}
	// No ties: σ² = n1 n2 (n+1)/12 = 5·4·10/12; z = (17 − 10 − ½)/σ.
	sigma := math.Sqrt(200.0 / 12)
	statstest.AssertClose(t, "sigma", r.Sigma, sigma, 1e-14)
	statstest.AssertClose(t, "z", r.Z, 6.5/sigma, 1e-14)
}

// bruteForceU enumerates every way of choosing which n1 of the ranks
// 1..n1+n2 belong to the first sample and counts the resulting U values.
func bruteForceU(n1, n2 int) []int64 {
	n := n1 + n2
	counts := make([]int64, n1*n2+1)
	for mask := 0; mask < 1<<n; mask++ {
		if popcount(mask) != n1 {
			continue
		}
		rankSum := 0
		for i := 0; i < n; i++ {
			if mask&(1<<i) != 0 {
				rankSum += i + 1
			}
		}
		counts[rankSum-n1*(n1+1)/2]++
	}
	return counts
}

func popcount(v int) int {
	c := 0
	for ; v != 0; v &= v - 1 {
		c++
	}
	return c
}

func TestExactUDistMatchesEnumeration(t *testing.T) {
	for n1 := 1; n1 <= 7; n1++ {
		for n2 := 1; n2 <= 7; n2++ {
			counts := bruteForceU(n1, n2)
			total := new(big.Int).Binomial(int64(n1+n2), int64(n1)).Int64()
			dist := exactUDist(n1, n2)
			if len(dist) != len(counts) {
				t.Fatalf("(%d,%d): len %d, want %d", n1, n2, len(dist), len(counts))
			}
			for k := range counts {
				want := float64(counts[k]) / float64(total)
				if !statstest.Close(dist[k], want, 1e-13) {
					t.Errorf("(%d,%d) P(U=%d) = %v, want %v", n1, n2, k, dist[k], want)
				}
			}
		}
	}
}

// The p-values of a concrete no-tie sample must equal tail counts of the
// enumerated permutation distribution.
func TestMannWhitneyExactPValuesMatchEnumeration(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 40; trial++ {
		n1, n2 := 1+rng.IntN(7), 1+rng.IntN(7)
		perm := rng.Perm(n1 + n2)
		x := make([]float64, n1)
		y := make([]float64, n2)
		u := 0
		for i := range x {
			x[i] = float64(perm[i])
		}
		for j := range y {
			y[j] = float64(perm[n1+j])
		}
		for _, a := range x {
			for _, b := range y {
				if a > b {
					u++
				}
			}
		}
		counts := bruteForceU(n1, n2)
		var ge, le, total int64
		for k, c := range counts {
			total += c
			if k >= u {
				ge += c
			}
			if k <= u {
				le += c
			}
		}
		want := map[Alternative]float64{
			Greater:  float64(ge) / float64(total),
			Less:     float64(le) / float64(total),
			TwoSided: math.Min(1, 2*float64(min(ge, le))/float64(total)),
		}
		for alt, p := range want {
			r, err := MannWhitneyU(x, y, alt, MannWhitneyExact)
			if err != nil {
				t.Fatal(err)
			}
			if r.U1 != float64(u) {
				t.Fatalf("U1 = %v, want %d", r.U1, u)
			}
			statstest.AssertClose(t, "exact p "+alt.String(), r.P, p, 1e-12)
		}
	}
}

func TestExactUDistProperties(t *testing.T) {
	for _, sz := range [][2]int{{49, 49}, {1, 2500}, {30, 40}, {3, 200}} {
		dist := exactUDist(sz[0], sz[1])
		sum := 0.0
		for k, p := range dist {
			sum += p
			if p < 0 {
				t.Fatalf("%v: negative probability at %d", sz, k)
			}
			if !statstest.Close(p, dist[len(dist)-1-k], 1e-12) {
				t.Fatalf("%v: not symmetric at %d: %v vs %v", sz, k, p, dist[len(dist)-1-k])
			}
		}
		statstest.AssertClose(t, "total probability", sum, 1, 1e-12)
	}
	// Order of the sizes does not matter.
	a, b := exactUDist(3, 8), exactUDist(8, 3)
	for k := range a {
		statstest.AssertClose(t, "P(U=k) (3,8) vs (8,3)", a[k], b[k], 1e-15)
	}
}

// For moderately large samples the exact and normal p-values agree closely.
func TestMannWhitneyExactVersusNormal(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	x := make([]float64, 45)
	y := make([]float64, 48)
	for i := range x {
		x[i] = rng.NormFloat64() + 0.4
	}
	for i := range y {
		y[i] = rng.NormFloat64()
	}
	for _, alt := range []Alternative{TwoSided, Greater, Less} {
		ex, err := MannWhitneyU(x, y, alt, MannWhitneyAuto)
		if err != nil {
			t.Fatal(err)
		}
		if !ex.Exact {
			t.Fatal("auto should use the exact distribution for 45 x 48 without ties")
		}
		as, err := MannWhitneyU(x, y, alt, MannWhitneyAsymptotic)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(ex.P-as.P) > 0.005 {
			t.Errorf("%v: exact %v vs normal %v", alt, ex.P, as.P)
		}
	}
}

func TestMannWhitneyAutoRule(t *testing.T) {
	mk := func(n int, off float64) []float64 {
		s := make([]float64, n)
		for i := range s {
			s[i] = float64(2*i) + off
		}
		return s
	}
	cases := []struct {
		n1, n2 int
		exact  bool
	}{{49, 49, true}, {50, 10, false}, {10, 50, false}, {1, 1, true}}
	for _, c := range cases {
		r, err := MannWhitneyU(mk(c.n1, 0), mk(c.n2, 1), TwoSided, MannWhitneyAuto)
		if err != nil {
			t.Fatal(err)
		}
		if r.Exact != c.exact {
			t.Errorf("%d x %d: Exact = %v, want %v", c.n1, c.n2, r.Exact, c.exact)
		}
	}
	// Ties force the normal approximation under Auto, and are refused by Exact.
	r, err := MannWhitneyU([]float64{1, 2, 2}, []float64{2, 3}, TwoSided, MannWhitneyAuto)
	if err != nil || r.Exact {
		t.Errorf("ties: Exact = %v, err = %v; want normal approximation", r.Exact, err)
	}
	if _, err := MannWhitneyU([]float64{1, 2, 2}, []float64{2, 3}, TwoSided, MannWhitneyExact); !errors.Is(err, ErrExactNotAvailable) {
		t.Errorf("forced exact with ties: err = %v", err)
	}
	if _, err := MannWhitneyU(mk(51, 0), mk(50, 1), TwoSided, MannWhitneyExact); !errors.Is(err, ErrExactNotAvailable) {
		t.Errorf("forced exact with 51*50 pairs: err = %v", err)
	}
}

func TestMannWhitneyEdgeCases(t *testing.T) {
	if _, err := MannWhitneyU(nil, []float64{1}, TwoSided, MannWhitneyAuto); !errors.Is(err, ErrEmptySample) {
		t.Errorf("empty x: %v", err)
	}
	if _, err := MannWhitneyU([]float64{1}, []float64{}, TwoSided, MannWhitneyAuto); !errors.Is(err, ErrEmptySample) {
		t.Errorf("empty y: %v", err)
	}
	if _, err := MannWhitneyU([]float64{1, math.NaN()}, []float64{2}, TwoSided, MannWhitneyAuto); !errors.Is(err, ErrNaN) {
		t.Errorf("NaN: %v", err)
	}
	if _, err := MannWhitneyU([]float64{1}, []float64{2}, Alternative(7), MannWhitneyAuto); !errors.Is(err, ErrInvalidAlternative) {
		t.Errorf("bad alternative: %v", err)
	}
	if _, err := MannWhitneyU([]float64{1}, []float64{2}, TwoSided, MannWhitneyMethod(9)); !errors.Is(err, ErrInvalidMethod) {
		t.Errorf("bad method: %v", err)
	}

	// n = 1 each: U ∈ {0, 1} with probability ½ each.
	r, err := MannWhitneyU([]float64{5}, []float64{3}, Greater, MannWhitneyAuto)
	if err != nil {
		t.Fatal(err)
	}
	statstest.AssertClose(t, "n=1 U1", r.U1, 1, 0)
	statstest.AssertClose(t, "n=1 greater p", r.P, 0.5, 1e-15)
	r, _ = MannWhitneyU([]float64{5}, []float64{3}, TwoSided, MannWhitneyAuto)
	statstest.AssertClose(t, "n=1 two-sided p", r.P, 1, 1e-15)
	r, _ = MannWhitneyU([]float64{5}, []float64{3}, Less, MannWhitneyAuto)
	statstest.AssertClose(t, "n=1 less p", r.P, 1, 1e-15)

	// Every observation tied: zero variance, no evidence either way.
	for _, alt := range []Alternative{TwoSided, Greater, Less} {
		r, err := MannWhitneyU([]float64{7, 7, 7}, []float64{7, 7}, alt, MannWhitneyAuto)
		if err != nil {
			t.Fatal(err)
		}
		if r.Sigma != 0 || r.Z != 0 || r.P != 1 || r.U1 != 3 || r.Exact {
			t.Errorf("all ties %v: %+v, want U1=3 sigma=0 z=0 p=1 asymptotic", alt, r)
		}
	}

	// Infinities are ordinary values.
	r, err = MannWhitneyU([]float64{math.Inf(1), 10}, []float64{math.Inf(-1), 1}, Greater, MannWhitneyAuto)
	if err != nil {
		t.Fatal(err)
	}
	statstest.AssertClose(t, "inf U1", r.U1, 4, 0)
	statstest.AssertClose(t, "inf p", r.P, 1.0/6, 1e-15) // the most extreme of C(4,2) = 6 splits

	// Complete separation with large samples gives a tiny but positive p.
	x := make([]float64, 300)
	y := make([]float64, 300)
	for i := range x {
		x[i] = float64(1000 + i)
		y[i] = float64(i)
	}
	r, _ = MannWhitneyU(x, y, Greater, MannWhitneyAuto)
	if !(r.P > 0 && r.P < 1e-80) {
		t.Errorf("separated samples: p = %v, want tiny and positive", r.P)
	}

	// Inputs are not modified.
	in := []float64{3, 1, 2}
	_, _ = MannWhitneyU(in, []float64{0}, TwoSided, MannWhitneyAuto)
	if in[0] != 3 || in[1] != 1 || in[2] != 2 {
		t.Errorf("input modified: %v", in)
	}
}

// Swapping the samples swaps U1 and U2, keeps the two-sided p, and swaps
// the one-sided p-values.
func TestMannWhitneySymmetry(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for trial := 0; trial < 200; trial++ {
		n1, n2 := 1+rng.IntN(70), 1+rng.IntN(70)
		x := make([]float64, n1)
		y := make([]float64, n2)
		for i := range x {
			x[i] = math.Round(rng.NormFloat64()*4) + 0.5 // ties likely
		}
		for i := range y {
			y[i] = math.Round(rng.NormFloat64()*4 + 1)
		}
		if trial%2 == 0 { // and some without ties
			for i := range x {
				x[i] = rng.Float64()
			}
			for i := range y {
				y[i] = rng.Float64() + 0.1
			}
		}
		for _, m := range []MannWhitneyMethod{MannWhitneyAuto, MannWhitneyAsymptotic} {
			xy := map[Alternative]MannWhitneyResult{}
			yx := map[Alternative]MannWhitneyResult{}
			for _, alt := range []Alternative{TwoSided, Greater, Less} {
				a, err := MannWhitneyU(x, y, alt, m)
				if err != nil {
					t.Fatal(err)
				}
				b, err := MannWhitneyU(y, x, alt, m)
				if err != nil {
					t.Fatal(err)
				}
				statstest.AssertProb(t, "p", a.P)
				statstest.AssertClose(t, "U1(x,y) vs U2(y,x)", a.U1, b.U2, 1e-12)
				xy[alt], yx[alt] = a, b
			}
			statstest.AssertClose(t, "two-sided p swap", xy[TwoSided].P, yx[TwoSided].P, 1e-12)
			statstest.AssertClose(t, "greater(x,y) vs less(y,x)", xy[Greater].P, yx[Less].P, 1e-12)
			statstest.AssertClose(t, "less(x,y) vs greater(y,x)", xy[Less].P, yx[Greater].P, 1e-12)
			// The two-sided p is twice the smaller one-sided p (capped at 1).
			statstest.AssertClose(t, "two-sided = 2 min one-sided", xy[TwoSided].P,
				math.Min(1, 2*math.Min(xy[Greater].P, xy[Less].P)), 1e-12)
		}
	}
}

func TestExactUDistMemoMatchesDirect(t *testing.T) {
	for _, sz := range [][2]int{{5, 4}, {4, 5}, {30, 28}, {1, 1}} {
		direct := exactUDist(sz[0], sz[1])
		for range 2 { // the second call is served from the memo
			memo := exactUDistMemo(sz[0], sz[1])
			if len(memo) != len(direct) {
				t.Fatalf("%v: length %d, want %d", sz, len(memo), len(direct))
			}
			for k := range direct {
				if memo[k] != direct[k] {
					t.Fatalf("%v: P(U=%d) = %v, want %v", sz, k, memo[k], direct[k])
				}
			}
		}
	}
}

func TestAlternativeString(t *testing.T) {
	for a, s := range map[Alternative]string{TwoSided: "two-sided", Greater: "greater", Less: "less", Alternative(5): "invalid"} {
		if a.String() != s {
			t.Errorf("%d: %q, want %q", a, a.String(), s)
		}
	}
}
