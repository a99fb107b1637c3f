package stats

import (
	"math"
	"slices"
)

// WeightedHolm returns the adjusted p-values of the weighted Holm procedure
// (Holm 1979, §5): hypothesis i with p-value p[i] gets weight w[i] > 0 (its
// share of the family's α); in the order of p/w ascending, hypothesis (j)
// is rejected at level α when every earlier one was and
//
//	p(j) ≤ α · w(j) / Σ w over the hypotheses not yet rejected,
//
// which controls the family-wise error rate at α whatever the dependence
// between the tests. The adjusted p-value of (j) is the smallest α at which
// it is rejected: max over k ≤ j of min(1, p(k) · W(k) / w(k)), W(k) the
// weight still in play at step k. Equal weights give Holm's step-down
// adjustment (R's p.adjust(method = "holm")).
//
// Errors: ErrLengthMismatch, ErrInvalidCount for a weight that is not
// positive and finite or a p-value outside [0, 1].
func WeightedHolm(p, w []float64) ([]float64, error) {
	if len(p) != len(w) {
		return nil, ErrLengthMismatch
	}
	for i := range p {
		if !(p[i] >= 0 && p[i] <= 1) || !(w[i] > 0) || math.IsInf(w[i], 0) {
			return nil, ErrInvalidCount
		}
	}
	order := make([]int, len(p))
	remaining := 0.0
	for i := range order {
		order[i] = i
		remaining += w[i]
	}
	slices.SortStableFunc(order, func(a, b int) int {
		// p[a]/w[a] < p[b]/w[b], cross-multiplied (both weights positive).
		x, y := p[a]*w[b], p[b]*w[a]
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	})
	adj := make([]float64, len(p))
	running := 0.0
	for _, i := range order {
		running = math.Max(running, math.Min(1, p[i]*remaining/w[i]))
		adj[i] = running
		remaining -= w[i]
	}
	return adj, nil
}
