package stats

import (
	"math"
	"slices"
	"testing"
)

func TestReservoirBasics(t *testing.T) {
	r := NewReservoir(5, 1)
	for i := 0; i < 3; i++ {
		r.Add(float64(i))
	}
	if got := r.Sample(); !slices.Equal(got, []float64{0, 1, 2}) {
		t.Errorf("fewer than K values: sample %v, want all of them", got)
	}
	for i := 3; i < 1000; i++ {
		r.Add(float64(i))
	}
	if r.Seen() != 1000 || r.Cap() != 5 || len(r.Sample()) != 5 {
		t.Errorf("seen %d cap %d len %d", r.Seen(), r.Cap(), len(r.Sample()))
	}
	seen := map[float64]bool{}
	for _, v := range r.Sample() {
		if v < 0 || v >= 1000 || v != math.Trunc(v) || seen[v] {
			t.Errorf("sample value %v is not a distinct offered value", v)
		}
		seen[v] = true
	}
	// Sample returns a copy.
	s := r.Sample()
	s[0] = -1
	if r.Sample()[0] == -1 {
		t.Error("Sample exposes internal storage")
	}
}

func TestReservoirReproducible(t *testing.T) {
	run := func(seed uint64) []float64 {
		r := NewReservoir(10, seed)
		for i := 0; i < 10000; i++ {
			r.Add(float64(i))
		}
		return r.Sample()
	}
	if a, b := run(42), run(42); !slices.Equal(a, b) {
		t.Errorf("same seed, different samples: %v vs %v", a, b)
	}
	if a, b := run(42), run(43); slices.Equal(a, b) {
		t.Errorf("different seeds gave the same sample %v", a)
	}
	w := func(seed uint64) []float64 {
		r := NewWeightedReservoir(10, seed)
		for i := 0; i < 10000; i++ {
			r.Add(float64(i), float64(1+i%7))
		}
		return r.Sample()
	}
	if a, b := w(7), w(7); !slices.Equal(a, b) {
		t.Errorf("weighted: same seed, different samples")
	}
}

// Every one of N values is kept with probability K/N. Over many seeded runs
// the inclusion counts must be within 5 binomial standard deviations of
// the expectation (deterministic: the seeds are fixed).
func TestReservoirUniformInclusion(t *testing.T) {
	const n, k, runs = 20, 5, 20000
	counts := make([]int, n)
	for seed := uint64(0); seed < runs; seed++ {
		r := NewReservoir(k, seed)
		for i := 0; i < n; i++ {
			r.Add(float64(i))
		}
		for _, v := range r.Sample() {
			counts[int(v)]++
		}
	}
	p := float64(k) / n
	mean, sd := runs*p, math.Sqrt(runs*p*(1-p))
	chi2 := 0.0
	for i, c := range counts {
		if math.Abs(float64(c)-mean) > 5*sd {
			t.Errorf("value %d kept %d times, expected %.0f ± %.0f", i, c, mean, sd)
		}
		chi2 += (float64(c) - mean) * (float64(c) - mean) / mean
	}
	// The counts are not independent (they sum to k·runs), so chi2 here is
	// conservative; 19 degrees of freedom, 99.99th percentile ≈ 50.
	if chi2 > 50 {
		t.Errorf("inclusion counts too uneven: chi2 = %.1f (%v)", chi2, counts)
	}
}

// With K = 1, A-Res draws each value with probability w / W exactly.
func TestWeightedReservoirProportionalToWeight(t *testing.T) {
	weights := []float64{1, 2, 3, 4, 10}
	total := 20.0
	const runs = 40000
	counts := make([]int, len(weights))
	for seed := uint64(0); seed < runs; seed++ {
		r := NewWeightedReservoir(1, seed)
		for i, w := range weights {
			r.Add(float64(i), w)
		}
		s := r.Sample()
		if len(s) != 1 {
			t.Fatalf("sample size %d", len(s))
		}
		counts[int(s[0])]++
	}
	for i, w := range weights {
		p := w / total
		mean, sd := runs*p, math.Sqrt(runs*p*(1-p))
		if math.Abs(float64(counts[i])-mean) > 5*sd {
			t.Errorf("weight %v chosen %d times, expected %.0f ± %.0f", w, counts[i], mean, sd)
		}
	}
}

// With K = 2 of three values the inclusion probabilities of successive
// weighted sampling without replacement are known in closed form:
// P(i in sample) = p_i + Σ_{j≠i} p_j · p_i / (1 − p_j).
func TestWeightedReservoirWithoutReplacement(t *testing.T) {
	weights := []float64{1, 3, 6}
	p := []float64{0.1, 0.3, 0.6}
	const runs = 40000
	counts := make([]int, 3)
	for seed := uint64(0); seed < runs; seed++ {
		r := NewWeightedReservoir(2, seed)
		for i, w := range weights {
			r.Add(float64(i), w)
		}
		s := r.Sample()
		if len(s) != 2 || s[0] == s[1] {
			t.Fatalf("sample %v, want two distinct values", s)
		}
		for _, v := range s {
			counts[int(v)]++
		}
	}
	for i := range weights {
		incl := p[i]
		for j := range weights {
			if j != i {
				incl += p[j] * p[i] / (1 - p[j])
			}
		}
		mean, sd := runs*incl, math.Sqrt(runs*incl*(1-incl))
		if math.Abs(float64(counts[i])-mean) > 5*sd {
			t.Errorf("value %d included %d times, expected %.0f ± %.0f", i, counts[i], mean, sd)
		}
	}
}

func TestWeightedReservoirBasics(t *testing.T) {
	r := NewWeightedReservoir(3, 9)
	for _, w := range []float64{0, -1, math.NaN(), math.Inf(1)} {
		if r.Add(1, w) {
			t.Errorf("weight %v accepted", w)
		}
	}
	if r.Seen() != 0 || len(r.Sample()) != 0 {
		t.Errorf("invalid weights counted: seen %d", r.Seen())
	}
	r.Add(10, 2)
	r.Add(20, 0.5)
	xs, ws := r.SampleWithWeights()
	if len(xs) != 2 || r.TotalWeight() != 2.5 || r.Cap() != 3 {
		t.Fatalf("xs %v total %v", xs, r.TotalWeight())
	}
	for i, x := range xs {
		if (x == 10 && ws[i] != 2) || (x == 20 && ws[i] != 0.5) {
			t.Errorf("value %v paired with weight %v", x, ws[i])
		}
	}
	for i := 0; i < 1000; i++ {
		r.Add(float64(i), 1e-300) // tiny weights must not break the keys
	}
	if len(r.Sample()) != 3 || r.Seen() != 1002 {
		t.Errorf("len %d seen %d", len(r.Sample()), r.Seen())
	}
}

func TestReservoirPanicsOnZeroCapacity(t *testing.T) {
	for name, f := range map[string]func(){
		"uniform":  func() { NewReservoir(0, 1) },
		"weighted": func() { NewWeightedReservoir(-1, 1) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic for capacity < 1", name)
				}
			}()
			f()
		}()
	}
}
