package statstest

import (
	"encoding/binary"
	"math"
	"testing"
)

// Close reports whether got is within tol of want, relatively for large
// magnitudes and absolutely near zero; NaN is close to nothing.
func Close(got, want, tol float64) bool {
	if math.IsNaN(got) || math.IsNaN(want) {
		return false
	}
	if got == want {
		return true
	}
	return math.Abs(got-want) <= tol*math.Max(1, math.Abs(want))
}

// AssertClose fails t unless Close(got, want, tol).
func AssertClose(t testing.TB, name string, got, want, tol float64) {
	t.Helper()
	if !Close(got, want, tol) {
		t.Errorf("%s = %.17g, want %.17g (tol %g, diff %g)", name, got, want, tol, got-want)
	}
}

// AssertProb fails t unless p is a probability.
func AssertProb(t testing.TB, name string, p float64) {
	t.Helper()
	if !(p >= 0 && p <= 1) {
		t.Errorf("%s = %v, want a probability in [0, 1]", name, p)
	}
}

// FloatsFrom decodes fuzz input b into at most max values: one byte per
// value (small integers, so ties are common) when mode is even, eight bytes
// (any bit pattern, including NaN and ±Inf) when it is odd.
func FloatsFrom(b []byte, mode uint8, max int) []float64 {
	var out []float64
	if mode%2 == 0 {
		for _, c := range b {
			if len(out) == max {
				break
			}
			out = append(out, float64(c%16))
		}
		return out
	}
	for len(b) >= 8 && len(out) < max {
		out = append(out, math.Float64frombits(binary.LittleEndian.Uint64(b)))
		b = b[8:]
	}
	return out
}
