package stats

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/changelens/changelens/testkit/statstest"
)

// unitEdges: bucket i is [i, i+1).
func unitEdges(i uint16) (float64, float64) { return float64(i), float64(i) + 1 }

// logEdges: the ±2 % layout of internal/schema (γ = 1.04 from 1).
func logEdges(i uint16) (float64, float64) {
	lo := math.Pow(1.04, float64(i))
	return lo, lo * 1.04
}

func TestHistQuantileInterpolates(t *testing.T) {
	// Weights 1, 2, 1 in [0,1), [1,2), [2,3), given unsorted. Bucket 0 has
	// lower edge 0, so it interpolates linearly; the others geometrically
	// (by hand): q = 0.25 ends bucket 0 → 1; q = 0.5 is halfway through
	// [1, 2) → √2; q = 0.875 halfway through [2, 3) → 2·√1.5; q = 1 → 3.
	h := []Hist{{Keys: []uint16{2, 0}, Weights: []float64{1, 1}}, {Keys: []uint16{1}, Weights: []float64{2}}}
	for _, tc := range []struct{ q, want float64 }{{0, 0}, {0.125, 0.5}, {0.25, 1}, {0.5, math.Sqrt2}, {0.875, 2 * math.Sqrt(1.5)}, {1, 3}} {
		v, n, ok := HistQuantile(h, tc.q, unitEdges)
		if !ok || n != 4 {
			t.Fatal("not ok")
		}
		statstest.AssertClose(t, "quantile", v, tc.want, 1e-12)
	}
	if _, _, ok := HistQuantile(nil, 0.5, unitEdges); ok {
		t.Error("empty histogram must not be ok")
	}
}

// On a log-normal sample of 200 000 in the ±2 % layout, the interpolated
// quantile is within 0.5 % of the exact one, the Woodruff standard error of
// its log within 10 % of the asymptotic σ·√(q(1−q)/n)/φ(z_q), and the
// density-based sparsity within 10 % of σ/φ(z_q).
func TestQuantileWoodruffAndDensity(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	const n, sigma = 200000, 0.6
	hours := make([]Hist, 100)
	for i := range n {
		x := math.Exp(5 + sigma*rng.NormFloat64())
		b := uint16(math.Floor(math.Log(x) / math.Log(1.04)))
		h := &hours[i%100]
		h.Keys = append(h.Keys, b)
		h.Weights = append(h.Weights, 1)
	}
	for _, q := range []float64{0.5, 0.75, 0.95} {
		zq := NormalQuantile(q)
		phi := math.Exp(-zq*zq/2) / math.Sqrt(2*math.Pi)
		v, se, m, ok := QuantileLogSE(hours, q, 10, logEdges)
		if !ok || m != n {
			t.Fatal("not ok")
		}
		statstest.AssertClose(t, "quantile", v, math.Exp(5+sigma*zq), 0.005)
		statstest.AssertClose(t, "se", se, sigma*math.Sqrt(q*(1-q)/n)/phi, 0.10)
		sp, ok := QuantileDensityLog(hours, q, n, logEdges)
		if !ok {
			t.Fatal("density not ok")
		}
		statstest.AssertClose(t, "sparsity", sp, sigma/phi, 0.10)
		if d := QuantileDesignEffect(hours, q, logEdges); d < 1 || d > 1.5 {
			t.Errorf("design effect of independent hours = %v", d)
		}
	}
}

// Hours whose level moves together (a shared log shift per hour) inflate
// the design effect and the cluster-robust standard error.
func TestQuantileClustered(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	hours := make([]Hist, 50)
	for h := range hours {
		shift := 0.2 * rng.NormFloat64()
		for range 2000 {
			x := math.Exp(5 + shift + 0.5*rng.NormFloat64())
			hours[h].Keys = append(hours[h].Keys, uint16(math.Floor(math.Log(x)/math.Log(1.04))))
			hours[h].Weights = append(hours[h].Weights, 1)
		}
	}
	d := QuantileDesignEffect(hours, 0.75, logEdges)
	if d < 5 {
		t.Errorf("design effect %v, want ≫ 1", d)
	}
	_, seCl, _, _ := QuantileLogSE(hours, 0.75, 10, logEdges)
	_, seBin, _, _ := QuantileLogSE(hours, 0.75, 0, logEdges)
	if seCl < 2*seBin {
		t.Errorf("cluster-robust se %v vs binomial %v", seCl, seBin)
	}
}

// Woodruff by hand: 100 buckets [i, i+1) of weight 1. The median is 50
// (the end of bucket 49); se_F = √(0.25/100) = 0.05, so the level's interval
// is 0.5 ± 1.959964·0.05 = [0.402, 0.598], mapped to 40·(41/40)^0.2002 and
// 59·(60/59)^0.7998 (geometric interpolation inside the bucket), and the
// standard error of log Q is their log ratio ÷ 2z.
func TestQuantileLogSEByHand(t *testing.T) {
	var h Hist
	for i := range 100 {
		h.Keys, h.Weights = append(h.Keys, uint16(i)), append(h.Weights, 1)
	}
	z := 1.959963984540054
	lo := 40 * math.Pow(41.0/40, 100*(0.5-z*0.05)-40)
	hi := 59 * math.Pow(60.0/59, 100*(0.5+z*0.05)-59)
	v, se, n, ok := QuantileLogSE([]Hist{h}, 0.5, 0, unitEdges)
	if !ok || n != 100 {
		t.Fatal("not ok")
	}
	statstest.AssertClose(t, "median", v, 50, 1e-12)
	statstest.AssertClose(t, "se", se, (math.Log(hi)-math.Log(lo))/(2*z), 1e-12)
	// Too few observations for the level: the interval is open-ended.
	if _, se, _, _ := QuantileLogSE([]Hist{{Keys: []uint16{1, 2}, Weights: []float64{1, 1}}}, 0.99, 0, unitEdges); !math.IsInf(se, 1) {
		t.Errorf("se = %v, want +Inf", se)
	}
}
