package stats

import (
	"math"
	"slices"
)

// WilcoxonResult is the outcome of a Wilcoxon signed-rank test.
type WilcoxonResult struct {
	// TPlus is the sum of the ranks of the positive differences (R's V,
	// SciPy's statistic for a one-sided alternative).
	TPlus float64
	// N is the number of non-zero differences the test used.
	N int
	// P is the p-value for the alternative.
	P float64
	// Exact reports whether the exact null distribution was used (no ties
	// among |d| and N ≤ 50); else the normal approximation with the tie
	// correction of the variance and no continuity correction.
	Exact bool
}

// WilcoxonSignedRank tests paired samples: x[i] − y[i] are the
// differences (zeros dropped, SciPy's zero_method "wilcox"); Greater means x
// tends to exceed y. The ranks of |d| are average ranks. As SciPy's
// wilcoxon(method="auto") and R's wilcox.test(paired = TRUE, exact = NULL,
// correct = FALSE): exact for N ≤ 50 without ties, else normal.
func WilcoxonSignedRank(x, y []float64, alt Alternative) (WilcoxonResult, error) {
	if !alt.valid() {
		return WilcoxonResult{}, ErrInvalidAlternative
	}
	if len(x) != len(y) {
		return WilcoxonResult{}, ErrLengthMismatch
	}
	var d []float64
	for i := range x {
		v := x[i] - y[i]
		if math.IsNaN(v) {
			return WilcoxonResult{}, ErrNaN
		}
		if v != 0 {
			d = append(d, v)
		}
	}
	n := len(d)
	if n == 0 {
		return WilcoxonResult{}, ErrEmptySample
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return cmpFloat(math.Abs(d[a]), math.Abs(d[b])) })
	ranks := make([]float64, n)
	tieTerm := 0.0
	ties := false
	for i := 0; i < n; {
		j := i + 1
		for j < n && math.Abs(d[idx[j]]) == math.Abs(d[idx[i]]) {
			j++
		}
		avg := float64(i+j+1) / 2 // ranks i+1 … j
		for k := i; k < j; k++ {
			ranks[idx[k]] = avg
		}
		if t := float64(j - i); t > 1 {
			ties = true
			tieTerm += t*t*t - t
		}
		i = j
	}
	tPlus := 0.0
	for i, v := range d {
		if v > 0 {
			tPlus += ranks[i]
		}
	}
	res := WilcoxonResult{TPlus: tPlus, N: n}
	if !ties && n <= 50 {
		res.Exact = true
		res.P = exactSignedRankP(n, int(tPlus), alt)
		return res, nil
	}
	nf := float64(n)
	mean := nf * (nf + 1) / 4
	sd := math.Sqrt(nf*(nf+1)*(2*nf+1)/24 - tieTerm/48)
	if sd == 0 {
		res.P = 1
		return res, nil
	}
	z := (tPlus - mean) / sd
	switch alt {
	case Greater:
		res.P = normUpper(z)
	case Less:
		res.P = normLower(z)
	default:
		res.P = clampP(2 * normUpper(math.Abs(z)))
	}
	return res, nil
}

// exactSignedRankP is the exact p-value of T+ = t under the null (each of
// the 2^n sign patterns equally likely), by the count of subsets of
// {1 … n} with each sum.
func exactSignedRankP(n, t int, alt Alternative) float64 {
	max := n * (n + 1) / 2
	counts := make([]float64, max+1)
	counts[0] = 1
	for k := 1; k <= n; k++ {
		for s := max; s >= k; s-- {
			counts[s] += counts[s-k]
		}
	}
	total := math.Ldexp(1, n)
	cdf := func(v int) float64 { // P(T+ ≤ v)
		c := 0.0
		for s := 0; s <= v && s <= max; s++ {
			c += counts[s]
		}
		return c / total
	}
	switch alt {
	case Greater:
		return clampP(1 - cdf(t-1))
	case Less:
		return clampP(cdf(t))
	}
	// Two-sided: twice the smaller tail (the distribution is symmetric).
	return clampP(2 * math.Min(cdf(t), 1-cdf(t-1)))
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ChiSquareGOF is Pearson's chi-square goodness-of-fit test of observed
// counts against expected proportions (normalised to the observed total),
// k − 1 degrees of freedom — SciPy's chisquare(f_obs, f_exp). It returns the
// statistic and its upper-tail p-value.
func ChiSquareGOF(observed, expectedShare []float64) (stat, p float64, err error) {
	if len(observed) != len(expectedShare) {
		return 0, 0, ErrLengthMismatch
	}
	if len(observed) < 2 {
		return 0, 0, ErrEmptySample
	}
	total, shares := 0.0, 0.0
	for i, o := range observed {
		e := expectedShare[i]
		if math.IsNaN(o) || math.IsNaN(e) || o < 0 || math.IsInf(o, 0) || !(e > 0) || math.IsInf(e, 0) {
			return 0, 0, ErrInvalidCount
		}
		total += o
		shares += e
	}
	if total == 0 {
		return 0, 0, ErrZeroTrials
	}
	for i, o := range observed {
		e := expectedShare[i] / shares * total
		stat += (o - e) * (o - e) / e
	}
	return stat, chiSquareUpper(stat, float64(len(observed)-1)), nil
}
