// Package statstest holds reference implementations that tests compare the
// statistics code and the ClickHouse rollups against: deliberately naive, so
// they share no code with what they check.
package statstest

import "sort"

// LowerQuantile is the smallest x whose cumulative weight reaches q·W, W the
// total weight (to a relative 1e-9 of W, as stats.BucketQuantiles): the exact
// weighted quantile a log-bucket histogram approximates.
func LowerQuantile(xs, ws []float64, q float64) float64 {
	idx := make([]int, len(xs))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return xs[idx[a]] < xs[idx[b]] })
	total := 0.0
	for _, w := range ws {
		total += w
	}
	cum := 0.0
	for _, i := range idx {
		cum += ws[i]
		if cum >= q*total-1e-9*total {
			return xs[i]
		}
	}
	return xs[idx[len(idx)-1]]
}
