package stats

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/changelens/changelens/internal/schema"
	"github.com/changelens/changelens/testkit/statstest"
)

// The store's layout (log buckets, γ = 1.04): within 1.98 % of the raw quantile.
func TestBucketQuantilesMatchRaw(t *testing.T) {
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
			hist[schema.HistBucket(d)] += ws[i]
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
		got, ok := BucketQuantiles(keys, vals, qs, schema.HistValue)
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

func TestBucketQuantilesEdgeCases(t *testing.T) {
	if _, ok := BucketQuantiles(nil, nil, []float64{0.5}, schema.HistValue); ok {
		t.Error("empty histogram must not be ok")
	}
	if _, ok := BucketQuantiles([]uint16{1}, []float64{1, 2}, []float64{0.5}, schema.HistValue); ok {
		t.Error("length mismatch must not be ok")
	}
	if _, ok := BucketQuantiles([]uint16{1}, []float64{1}, []float64{1.5}, schema.HistValue); ok {
		t.Error("level > 1 must not be ok")
	}
	if _, ok := BucketQuantiles([]uint16{1, 2}, []float64{0, math.NaN()}, []float64{0.5}, schema.HistValue); ok {
		t.Error("no positive weight must not be ok")
	}
	// Non-positive, NaN and infinite weights are skipped.
	got, ok := BucketQuantiles([]uint16{1, 5, 9, 12}, []float64{-1, 3, math.Inf(1), 1}, []float64{0, 0.5, 0.75, 0.76, 1}, schema.HistValue)
	if !ok {
		t.Fatal("not ok")
	}
	want := []float64{schema.HistValue(5), schema.HistValue(5), schema.HistValue(5), schema.HistValue(12), schema.HistValue(12)}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("level %d: %v, want %v", i, got[i], want[i])
		}
	}
	// Weighted walk: p50 of {b10: 1, b20: 1, b30: 2} is b20 (cumulative 2 ≥ 2).
	got, _ = BucketQuantiles([]uint16{30, 10, 20}, []float64{2, 1, 1}, []float64{0.5, 0.51, 0.25}, schema.HistValue)
	if got[0] != schema.HistValue(20) || got[1] != schema.HistValue(30) || got[2] != schema.HistValue(10) {
		t.Errorf("weighted walk = %v", got)
	}
}
