// Package statstest holds reference implementations that tests compare the
// statistics code and the ClickHouse rollups against — deliberately naive, so
// they share no code with what they check — and the tolerance assertions and
// fuzz-input decoding the statistics tests share.
package statstest

import "sort"

// R datasets::airquality, Ozone for Month 5 (May) and Month 8 (August), NA
// values dropped (5 in each month): the Mann-Whitney example of R's
// wilcox.test documentation, whose published results the tests check.
var (
	OzoneMay = []float64{41, 36, 12, 18, 28, 23, 19, 8, 7, 16, 11, 14, 18, 14, 34, 6, 30, 11, 1, 11, 4, 32, 23, 45, 115, 37}
	OzoneAug = []float64{39, 9, 16, 78, 35, 66, 122, 89, 110, 44, 28, 65, 22, 59, 23, 31, 44, 21, 9, 45, 168, 73, 76, 118, 84, 85}
)

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
