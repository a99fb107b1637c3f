package stats

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/changelens/changelens/testkit/statstest"
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
		if ok != tc.ok || (ok && !statstest.Close(got, tc.want, 1e-15)) {
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
		if !ok || !statstest.Close(got, tc.want, 1e-12) {
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
