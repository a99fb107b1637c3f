package stats

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/changelens/changelens/testkit/statstest"
)

func TestHistBucket(t *testing.T) {
	for _, c := range []struct {
		d    uint64
		want uint16
	}{
		{0, 0}, {1, 0}, {999, 0}, {1000, 0}, {1039, 0}, {1041, 1},
		{1_000_000, 176},         // 1 ms: ln(1000)/ln(1.04) = 176.1
		{3_600_000_000_000, 561}, // 1 h
		{math.MaxUint64, 954},    // the largest bucket: a state has ≤ 955 keys
	} {
		if got := HistBucket(c.d); got != c.want {
			t.Errorf("HistBucket(%d) = %d, want %d", c.d, got, c.want)
		}
	}
	// Every duration is within 1.98 % of its bucket's value (above 1 µs).
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 100000; i++ {
		d := uint64(math.Exp(math.Log(1000) + rng.Float64()*math.Log(1e13)))
		v := HistValue(HistBucket(d))
		if rel := math.Abs(v-float64(d)) / float64(d); rel > 0.0199 {
			t.Fatalf("d=%d: bucket value %v, relative error %.4f", d, v, rel)
		}
	}
	if got, want := HistValue(0), 1000*math.Sqrt(1.04); math.Abs(got-want) > 1e-9 {
		t.Errorf("HistValue(0) = %v, want %v", got, want)
	}
}

func TestHistQuantilesMatchRaw(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	qs := []float64{0, 0.5, 0.9, 0.95, 0.99, 1}
	for trial := 0; trial < 200; trial++ {
		n := 1 + rng.IntN(2000)
		xs, ws := make([]float64, n), make([]float64, n)
		hist := map[uint16]float64{}
		for i := range xs {
			d := uint64(math.Exp(math.Log(20e6) + 0.8*rng.NormFloat64()))
			xs[i] = float64(d)
			ws[i] = []float64{1, 1, 2, 2.5, 10, 0.3}[rng.IntN(6)]
			hist[HistBucket(d)] += ws[i]
		}
		var keys []uint16
		for k := range hist {
			keys = append(keys, k)
		}
		rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
		vals := make([]float64, len(keys))
		for i, k := range keys {
			vals[i] = hist[k]
		}
		got, ok := HistQuantiles(keys, vals, qs)
		if !ok {
			t.Fatal("not ok")
		}
		for j, q := range qs {
			want := statstest.LowerQuantile(xs, ws, q)
			if rel := math.Abs(got[j]-want) / want; rel > 0.0199 {
				t.Errorf("trial %d n=%d q=%v: hist %v, raw %v (rel %.4f)", trial, n, q, got[j], want, rel)
			}
		}
	}
}

func TestHistQuantilesEdgeCases(t *testing.T) {
	if _, ok := HistQuantiles(nil, nil, []float64{0.5}); ok {
		t.Error("empty histogram must not be ok")
	}
	if _, ok := HistQuantiles([]uint16{1}, []float64{1, 2}, []float64{0.5}); ok {
		t.Error("length mismatch must not be ok")
	}
	if _, ok := HistQuantiles([]uint16{1}, []float64{1}, []float64{1.5}); ok {
		t.Error("level > 1 must not be ok")
	}
	if _, ok := HistQuantiles([]uint16{1, 2}, []float64{0, math.NaN()}, []float64{0.5}); ok {
		t.Error("no positive weight must not be ok")
	}
	// Non-positive, NaN and infinite weights are skipped.
	got, ok := HistQuantiles([]uint16{1, 5, 9, 12}, []float64{-1, 3, math.Inf(1), 1}, []float64{0, 0.5, 0.75, 0.76, 1})
	if !ok {
		t.Fatal("not ok")
	}
	want := []float64{HistValue(5), HistValue(5), HistValue(5), HistValue(12), HistValue(12)}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("level %d: %v, want %v", i, got[i], want[i])
		}
	}
	// Weighted walk: p50 of {b10: 1, b20: 1, b30: 2} is b20 (cumulative 2 ≥ 2).
	got, _ = HistQuantiles([]uint16{30, 10, 20}, []float64{2, 1, 1}, []float64{0.5, 0.51, 0.25})
	if got[0] != HistValue(20) || got[1] != HistValue(30) || got[2] != HistValue(10) {
		t.Errorf("weighted walk = %v", got)
	}
}
