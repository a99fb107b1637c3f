package stats

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestMedian(t *testing.T) {
	tests := []struct {
		name string
		xs   []float64
		want float64
		ok   bool
	}{
		{"empty", nil, 0, false},
		{"only NaN", []float64{math.NaN()}, 0, false},
		{"one", []float64{42}, 42, true},
		{"two", []float64{1, 2}, 1.5, true},
		{"odd unsorted", []float64{9, 1, 5}, 5, true},
		{"even unsorted", []float64{7, 1, 3, 100}, 5, true},
		{"even equal middle", []float64{2, 2, 1, 3}, 2, true},
		{"NaN skipped", []float64{math.NaN(), 4, 2, math.NaN()}, 3, true},
		{"huge values do not overflow", []float64{math.MaxFloat64, math.MaxFloat64}, math.MaxFloat64, true},
		{"huge distinct", []float64{math.MaxFloat64, math.MaxFloat64 / 2}, 0.75 * math.MaxFloat64, true},
		{"negative", []float64{-3, -1, -2, -10}, -2.5, true},
		{"seconds", []float64{3600, 86400, 60, 7200}, 5400, true},
	}
	for _, tc := range tests {
		got, ok := Median(tc.xs)
		if ok != tc.ok || (ok && !closeTo(got, tc.want, 1e-15)) {
			t.Errorf("%s: Median = (%v, %v), want (%v, %v)", tc.name, got, ok, tc.want, tc.ok)
		}
	}
	in := []float64{3, 1, 2}
	Median(in)
	if !slices.Equal(in, []float64{3, 1, 2}) {
		t.Errorf("Median modified its input: %v", in)
	}
}

func TestQuantile(t *testing.T) {
	xs := []float64{3, 1, 4, 1, 5, 9, 2, 6}
	ys := []float64{10, 20, 30, 40, 50}
	tests := []struct {
		xs   []float64
		q    float64
		want float64
	}{
		// NumPy 2 percentile/quantile (linear, R type 7).
		{xs, 0, 1}, {xs, 0.25, 1.75}, {xs, 0.5, 3.5}, {xs, 0.9, 6.8999999999999995},
		{xs, 0.95, 7.949999999999998}, {xs, 1, 9},
		{ys, 0.1, 14}, {ys, 0.33, 23.2}, {ys, 0.95, 48},
		{[]float64{5}, 0.95, 5},
	}
	for _, tc := range tests {
		got, ok := Quantile(tc.xs, tc.q)
		if !ok || !closeTo(got, tc.want, 1e-12) {
			t.Errorf("Quantile(%v, %v) = (%v, %v), want %v", tc.xs, tc.q, got, ok, tc.want)
		}
	}
	for _, q := range []float64{-0.1, 1.1, math.NaN()} {
		if _, ok := Quantile(xs, q); ok {
			t.Errorf("Quantile(q=%v) ok, want not ok", q)
		}
	}
	if _, ok := Quantile(nil, 0.5); ok {
		t.Error("Quantile(empty) ok")
	}
	if v, ok := Quantile([]float64{math.Inf(-1), 0, math.Inf(1)}, 0.25); !ok || !math.IsInf(v, -1) {
		t.Errorf("Quantile next to -Inf = %v, want -Inf", v)
	}
	// Monotone in q.
	rng := rand.New(rand.NewPCG(1, 1))
	s := make([]float64, 37)
	for i := range s {
		s[i] = rng.ExpFloat64()
	}
	prev := math.Inf(-1)
	for q := 0.0; q <= 1; q += 0.01 {
		v, _ := Quantile(s, q)
		if v < prev {
			t.Fatalf("Quantile not monotone at q=%v", q)
		}
		prev = v
	}
}

// rType2 is R's quantile(type = 2) on an unweighted sample, written from its
// definition: j = ⌊nq⌋ (with a small fuzz), g = nq − j; x_{j+1} when g > 0, the mean of x_j and
// x_{j+1} when g = 0 (1-based, x_0 = x_1, x_{n+1} = x_n).
func rType2(xs []float64, q float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	at := func(i int) float64 { // 1-based with clamping
		return s[min(max(i, 1), n)-1]
	}
	// Like R, allow for rounding in n·q (e.g. 23·(13/23) = 13.000000000000002);
	// the fuzz matches WeightedQuantile's documented 1e-12 relative tolerance.
	nq := float64(n) * q
	fuzz := 1e-12 * float64(n)
	j := int(math.Floor(nq + fuzz))
	if nq-float64(j) > fuzz {
		return at(j + 1)
	}
	return (at(j) + at(j+1)) / 2
}

// With integer weights the weighted quantile must equal R's type-2 quantile
// of the sample in which every value is repeated weight times.
func TestWeightedQuantileMatchesExpandedSample(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 3))
	for trial := 0; trial < 300; trial++ {
		n := 1 + rng.IntN(12)
		xs := make([]float64, n)
		ws := make([]float64, n)
		var expanded []float64
		for i := range xs {
			xs[i] = float64(rng.IntN(20)) // repeats likely
			w := 1 + rng.IntN(4)
			ws[i] = float64(w)
			for k := 0; k < w; k++ {
				expanded = append(expanded, xs[i])
			}
		}
		for _, q := range []float64{0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1, float64(rng.IntN(len(expanded)+1)) / float64(len(expanded))} {
			got, ok := WeightedQuantile(xs, ws, q)
			want := rType2(expanded, q)
			if !ok || got != want {
				t.Fatalf("WeightedQuantile(%v, %v, %v) = (%v, %v), want %v", xs, ws, q, got, ok, want)
			}
		}
		// Equal weights at q = ½ give the Median.
		ones := make([]float64, n)
		for i := range ones {
			ones[i] = 1
		}
		m, _ := Median(xs)
		if got, _ := WeightedQuantile(xs, ones, 0.5); got != m {
			t.Fatalf("equal-weight median %v != Median %v for %v", got, m, xs)
		}
	}
}

func TestWeightedQuantileEdgeCases(t *testing.T) {
	tests := []struct {
		name   string
		xs, ws []float64
		q      float64
		want   float64
		ok     bool
	}{
		{"empty", nil, nil, 0.5, 0, false},
		{"length mismatch", []float64{1, 2}, []float64{1}, 0.5, 0, false},
		{"q out of range", []float64{1}, []float64{1}, 1.5, 0, false},
		{"all weights invalid", []float64{1, 2}, []float64{0, -1}, 0.5, 0, false},
		{"single", []float64{7}, []float64{3}, 0.3, 7, true},
		{"heavy value dominates", []float64{1, 100}, []float64{1, 99}, 0.5, 100, true},
		{"fractional weights hit boundary", []float64{1, 2, 3}, []float64{0.25, 0.25, 0.5}, 0.5, 2.5, true},
		{"skips NaN value and bad weights", []float64{math.NaN(), 1, 2, 50}, []float64{5, 1, 1, math.Inf(1)}, 0.5, 1.5, true},
		{"weights 0.1 (rounding at the boundary)", []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, []float64{.1, .1, .1, .1, .1, .1, .1, .1, .1, .1}, 0.3, 3.5, true},
	}
	for _, tc := range tests {
		got, ok := WeightedQuantile(tc.xs, tc.ws, tc.q)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("%s: = (%v, %v), want (%v, %v)", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}
