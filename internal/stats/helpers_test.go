package stats

import (
	"math"
	"testing"
)

// close reports whether got is within tol of want, relatively for large
// magnitudes and absolutely near zero.
func closeTo(got, want, tol float64) bool {
	if math.IsNaN(got) || math.IsNaN(want) {
		return false
	}
	if got == want {
		return true
	}
	return math.Abs(got-want) <= tol*math.Max(1, math.Abs(want))
}

func assertClose(t *testing.T, name string, got, want, tol float64) {
	t.Helper()
	if !closeTo(got, want, tol) {
		t.Errorf("%s = %.17g, want %.17g (tol %g, diff %g)", name, got, want, tol, got-want)
	}
}

func assertProb(t *testing.T, name string, p float64) {
	t.Helper()
	if !(p >= 0 && p <= 1) {
		t.Errorf("%s = %v, want a probability in [0, 1]", name, p)
	}
}
