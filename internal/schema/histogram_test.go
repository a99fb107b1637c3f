package schema

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The layout: bucket boundaries, the largest bucket, the 1.98 % bound.
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

// The views' SQL is the expression the schema renders from the constants.
func TestHistBucketSQL(t *testing.T) {
	const want = "toUInt16(least(65535, greatest(0, floor(log(greatest(duration_ns, 1000) / 1000) / log(1.04)))))"
	if got := HistBucketSQL("duration_ns"); got != want {
		t.Errorf("HistBucketSQL = %s, want %s", got, want)
	}
}

// Body sizes use the latency layout over bytes, from 1 byte.
func TestSizeBucket(t *testing.T) {
	for _, c := range []struct {
		b    uint64
		want uint16
	}{{0, 0}, {1, 0}, {2, 17}, {1024, 176}, {1 << 20, 353}} { // ln(2)/ln(1.04) = 17.7
		if got := SizeBucket(c.b); got != c.want {
			t.Errorf("SizeBucket(%d) = %d, want %d", c.b, got, c.want)
		}
	}
	if got, want := SizeValue(SizeBucket(1000)), 1000.0; math.Abs(got-want)/want > 0.0199 {
		t.Errorf("SizeValue(SizeBucket(1000)) = %v, want within 1.98 %% of %v", got, want)
	}
	const want = "toUInt16(least(65535, greatest(0, floor(log(greatest(response_size, 1) / 1) / log(1.04)))))"
	if got := SizeBucketSQL("response_size"); got != want {
		t.Errorf("SizeBucketSQL = %s, want %s", got, want)
	}
}
