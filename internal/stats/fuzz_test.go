package stats

import (
	"math"
	"testing"

	"github.com/changelens/changelens/testkit/statstest"
)

func hasNaN(xs []float64) bool {
	for _, v := range xs {
		if math.IsNaN(v) {
			return true
		}
	}
	return false
}

func FuzzMannWhitneyU(f *testing.F) {
	f.Add([]byte{19, 22, 16, 29, 24}, []byte{20, 11, 17, 12}, uint8(0), uint8(0))
	f.Add([]byte{1, 1, 1}, []byte{1, 1}, uint8(2), uint8(1))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0xf0, 0x7f}, []byte{1, 2, 3, 4, 5, 6, 7, 8}, uint8(1), uint8(2))
	f.Fuzz(func(t *testing.T, bx, by []byte, mode, alt uint8) {
		x := statstest.FloatsFrom(bx, mode, 60)
		y := statstest.FloatsFrom(by, mode, 60)
		a := Alternative(alt % 3)
		for _, m := range []MannWhitneyMethod{MannWhitneyAuto, MannWhitneyAsymptotic, MannWhitneyExact} {
			r, err := MannWhitneyU(x, y, a, m)
			switch {
			case len(x) == 0 || len(y) == 0:
				if err == nil {
					t.Fatal("empty sample accepted")
				}
				continue
			case hasNaN(x) || hasNaN(y):
				if err == nil {
					t.Fatal("NaN accepted")
				}
				continue
			case err != nil:
				if m == MannWhitneyExact {
					continue // ties or too large
				}
				t.Fatal(err)
			}
			if !(r.P >= 0 && r.P <= 1) || math.IsNaN(r.Z) || math.IsNaN(r.Sigma) {
				t.Fatalf("bad result %+v", r)
			}
			if r.U1 < 0 || r.U2 < 0 || r.U1+r.U2 != float64(len(x)*len(y)) {
				t.Fatalf("U1 %v U2 %v for %d×%d", r.U1, r.U2, len(x), len(y))
			}
			s, err := MannWhitneyU(y, x, mirrorAlt(a), m)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(s.P-r.P) > 1e-12 {
				t.Fatalf("swap changed p: %v vs %v", r.P, s.P)
			}
		}
	})
}

func mirrorAlt(a Alternative) Alternative {
	switch a {
	case Greater:
		return Less
	case Less:
		return Greater
	}
	return a
}

func FuzzFisherExact(f *testing.F) {
	f.Add(int64(6), int64(2), int64(1), int64(4), uint8(0))
	f.Add(int64(0), int64(0), int64(0), int64(0), uint8(1))
	f.Add(int64(-1), int64(5), int64(3), int64(9), uint8(2))
	f.Add(int64(1e6), int64(0), int64(0), int64(1e6), uint8(0))
	f.Fuzz(func(t *testing.T, a, b, c, d int64, alt uint8) {
		// Keep the tables small enough to be fast, but allow negatives.
		clip := func(v int64) int64 { return v % 100000 }
		tb := [2][2]int64{{clip(a), clip(b)}, {clip(c), clip(d)}}
		al := Alternative(alt % 3)
		p, err := FisherExact(tb, al)
		if tb[0][0] < 0 || tb[0][1] < 0 || tb[1][0] < 0 || tb[1][1] < 0 {
			if err == nil {
				t.Fatal("negative cell accepted")
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if !(p >= 0 && p <= 1) {
			t.Fatalf("p = %v", p)
		}
		tr := [2][2]int64{{tb[0][0], tb[1][0]}, {tb[0][1], tb[1][1]}}
		q, err := FisherExact(tr, al)
		if err != nil || math.Abs(p-q) > 1e-9 {
			t.Fatalf("transpose: %v vs %v (%v)", p, q, err)
		}
	})
}

func FuzzTwoProportionZTest(f *testing.F) {
	f.Add(5.0, 83.0, 12.0, 99.0, uint8(0))
	f.Add(0.0, 0.0, 0.0, 0.0, uint8(1))
	f.Fuzz(func(t *testing.T, x1, n1, x2, n2 float64, alt uint8) {
		z, p, err := TwoProportionZTest(x1, n1, x2, n2, Alternative(alt%3))
		if err != nil {
			return
		}
		if !(p >= 0 && p <= 1) || math.IsNaN(z) {
			t.Fatalf("z %v p %v for %v/%v vs %v/%v", z, p, x1, n1, x2, n2)
		}
	})
}

func FuzzQuantiles(f *testing.F) {
	f.Add([]byte{3, 1, 4, 1, 5, 9}, []byte{1, 2, 3, 4, 5, 6}, 0.5, uint8(0))
	f.Add([]byte{}, []byte{}, 0.95, uint8(1))
	f.Fuzz(func(t *testing.T, bx, _ []byte, q float64, mode uint8) {
		xs := statstest.FloatsFrom(bx, mode, 200)
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, v := range xs {
			if !math.IsNaN(v) {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
		within := func(v float64) bool { return math.IsNaN(v) || (v >= lo && v <= hi) }
		if v, ok := Quantile(xs, q); ok && !within(v) {
			t.Fatalf("Quantile %v outside [%v, %v]", v, lo, hi)
		}
		if v, ok := Median(xs); ok && !within(v) {
			t.Fatalf("Median %v outside [%v, %v]", v, lo, hi)
		}
	})
}
