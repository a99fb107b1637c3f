package stats

import (
	"math"
	"sort"
	"sync"
)

// MannWhitneyMethod selects how the p-value of MannWhitneyU is computed.
type MannWhitneyMethod int

const (
	// MannWhitneyAuto uses the exact null distribution when there are no
	// ties and both samples have fewer than ExactMaxSampleSize observations
	// (R's wilcox.test rule: exact if n.x < 50 and n.y < 50 and no ties),
	// and the normal approximation otherwise.
	MannWhitneyAuto MannWhitneyMethod = iota
	// MannWhitneyExact forces the exact null distribution. It requires no
	// ties and n1*n2 ≤ ExactMaxPairs, else ErrExactNotAvailable.
	MannWhitneyExact
	// MannWhitneyAsymptotic forces the normal approximation (with tie and
	// continuity correction).
	MannWhitneyAsymptotic
)

const (
	// ExactMaxSampleSize: MannWhitneyAuto uses the exact distribution only
	// when both samples are smaller than this (and there are no ties).
	ExactMaxSampleSize = 50
	// ExactMaxPairs bounds n1*n2 for the exact distribution. The dynamic
	// program costs O(n1*n2*(n1*n2)) time and O(min(n1,n2)*n1*n2) memory.
	ExactMaxPairs = 2500
)

// MannWhitneyResult is the outcome of MannWhitneyU.
type MannWhitneyResult struct {
	// U1 is the statistic of the first sample x: the number of pairs
	// (x_i, y_j) with x_i > y_j, plus one half for each tied pair.
	// Equivalently U1 = R1 − n1(n1+1)/2 with R1 the mid-rank sum of x.
	// This is SciPy's U1 and R's W.
	U1 float64
	// U2 = n1*n2 − U1, the statistic of the second sample.
	U2 float64
	// Sigma is the tie-corrected standard deviation of U under H0:
	// sqrt(n1*n2/12 * ((n+1) − Σ(t³−t)/(n(n−1)))), t the tie-group sizes.
	Sigma float64
	// Z is the normal-approximation statistic with continuity correction,
	// signed like U1 − n1*n2/2 (see MannWhitneyU). It is reported even when
	// P comes from the exact distribution.
	Z float64
	// P is the p-value for the requested alternative.
	P float64
	// Exact reports whether P comes from the exact null distribution.
	Exact bool
}

// MannWhitneyU performs the Mann-Whitney U test (Wilcoxon rank-sum test) of
// H0 "x and y come from the same distribution" against alt, where Greater
// means x is stochastically larger than y.
//
// Definitions (Mann & Whitney 1947; the same as SciPy's
// scipy.stats.mannwhitneyu and R's wilcox.test):
//
//   - Ranks over the pooled sample, ties get their mid-rank; U1 = R1 − n1(n1+1)/2.
//   - Normal approximation: μ = n1*n2/2 and the tie-corrected σ above. With
//     d = U1 − μ the continuity-corrected statistic is
//     Greater: z = (d − ½)/σ, p = P(Z ≥ z);
//     Less: z = (d + ½)/σ, p = P(Z ≤ z);
//     TwoSided: z = (d − sign(d)·½)/σ, p = min(1, 2·min(P(Z ≤ z), P(Z ≥ z))).
//     When σ = 0 (every observation tied) there is no evidence of a
//     difference: Z = 0 and P = 1.
//   - Exact distribution (no ties): P(U = k) by the recurrence
//     p(m, n, k) = m/(m+n)·p(m−1, n, k−n) + n/(m+n)·p(m, n−1, k)
//     (condition on whether the largest observation is an x). Greater:
//     P(U ≥ U1); Less: P(U ≤ U1); TwoSided: min(1, 2·min of the two), as
//     R's pwilcox-based p-value.
//
// Errors: ErrEmptySample if either sample is empty, ErrNaN if any value is
// NaN (±Inf are ordinary, comparable values), ErrInvalidAlternative,
// ErrInvalidMethod, ErrExactNotAvailable for MannWhitneyExact with ties or
// n1*n2 > ExactMaxPairs. The inputs are not modified.
func MannWhitneyU(x, y []float64, alt Alternative, method MannWhitneyMethod) (MannWhitneyResult, error) {
	if !alt.valid() {
		return MannWhitneyResult{}, ErrInvalidAlternative
	}
	if method != MannWhitneyAuto && method != MannWhitneyExact && method != MannWhitneyAsymptotic {
		return MannWhitneyResult{}, ErrInvalidMethod
	}
	n1, n2 := len(x), len(y)
	if n1 == 0 || n2 == 0 {
		return MannWhitneyResult{}, ErrEmptySample
	}
	r1, tieTerm, groups, err := rankSumFirst(x, y)
	if err != nil {
		return MannWhitneyResult{}, err
	}
	fn1, fn2 := float64(n1), float64(n2)
	n := fn1 + fn2
	var res MannWhitneyResult
	res.U1 = r1 - fn1*(fn1+1)/2
	res.U2 = fn1*fn2 - res.U1

	// Tie-corrected standard deviation. A single tie group means every
	// observation is equal, so the variance is exactly zero.
	if groups > 1 {
		v := fn1 * fn2 / 12 * ((n + 1) - tieTerm/(n*(n-1)))
		if v > 0 {
			res.Sigma = math.Sqrt(v)
		}
	}

	d := res.U1 - fn1*fn2/2
	var pAsym float64
	if res.Sigma == 0 {
		res.Z, pAsym = 0, 1
	} else {
		switch alt {
		case Greater:
			res.Z = (d - 0.5) / res.Sigma
			pAsym = normUpper(res.Z)
		case Less:
			res.Z = (d + 0.5) / res.Sigma
			pAsym = normLower(res.Z)
		default:
			cc := 0.0
			if d > 0 {
				cc = 0.5
			} else if d < 0 {
				cc = -0.5
			}
			res.Z = (d - cc) / res.Sigma
			pAsym = 2 * math.Min(normLower(res.Z), normUpper(res.Z))
		}
	}

	ties := groups < n1+n2
	exactOK := !ties && n1*n2 <= ExactMaxPairs
	useExact := false
	switch method {
	case MannWhitneyExact:
		if !exactOK {
			return MannWhitneyResult{}, ErrExactNotAvailable
		}
		useExact = true
	case MannWhitneyAuto:
		useExact = !ties && n1 < ExactMaxSampleSize && n2 < ExactMaxSampleSize
	}
	if useExact {
		res.P = exactUPValue(n1, n2, int(math.Round(res.U1)), alt)
		res.Exact = true
	} else {
		res.P = clampP(pAsym)
	}
	return res, nil
}

// rankSumFirst returns the mid-rank sum of x within the pooled sample x∪y,
// the tie term Σ(t³−t) over tie groups, and the number of distinct values.
func rankSumFirst(x, y []float64) (r1, tieTerm float64, groups int, err error) {
	type obs struct {
		v     float64
		first bool
	}
	all := make([]obs, 0, len(x)+len(y))
	for _, v := range x {
		if math.IsNaN(v) {
			return 0, 0, 0, ErrNaN
		}
		all = append(all, obs{v, true})
	}
	for _, v := range y {
		if math.IsNaN(v) {
			return 0, 0, 0, ErrNaN
		}
		all = append(all, obs{v, false})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].v < all[j].v })
	for i := 0; i < len(all); {
		j := i + 1
		for j < len(all) && all[j].v == all[i].v {
			j++
		}
		// Positions i..j-1 hold ranks i+1..j; their mid-rank is (i+1+j)/2.
		mid := float64(i+1+j) / 2
		for k := i; k < j; k++ {
			if all[k].first {
				r1 += mid
			}
		}
		t := float64(j - i)
		tieTerm += t*t*t - t
		groups++
		i = j
	}
	return r1, tieTerm, groups, nil
}

// exactUDist returns P(U = k), k = 0..m*n, for the Mann-Whitney statistic of
// samples of sizes m and n under H0 with no ties. The distribution is the
// same for (m, n) and (n, m), so the inner dimension is the smaller size.
func exactUDist(m, n int) []float64 {
	if m < n {
		m, n = n, m // outer loop over m (larger), inner over j ≤ n (smaller)
	}
	size := m*n + 1
	// prev[j] holds p(i-1, j, ·), cur[j] holds p(i, j, ·).
	prev := make([][]float64, n+1)
	cur := make([][]float64, n+1)
	for j := 0; j <= n; j++ {
		prev[j] = make([]float64, size)
		cur[j] = make([]float64, size)
		prev[j][0] = 1 // p(0, j, 0) = 1: with no x's, U = 0.
	}
	for i := 1; i <= m; i++ {
		for k := range cur[0] {
			cur[0][k] = 0
		}
		cur[0][0] = 1 // p(i, 0, 0) = 1.
		for j := 1; j <= n; j++ {
			a := float64(i) / float64(i+j) // largest observation is an x: U += j
			b := float64(j) / float64(i+j) // largest observation is a y
			c, pv, left := cur[j], prev[j], cur[j-1]
			maxK := i * j
			for k := 0; k <= maxK; k++ {
				v := b * left[k]
				if k >= j {
					v += a * pv[k-j]
				}
				c[k] = v
			}
			for k := maxK + 1; k < size; k++ {
				c[k] = 0
			}
		}
		prev, cur = cur, prev
	}
	return prev[n]
}

// exactUDists memoizes exactUDist: the distribution depends only on the two
// sample sizes, and an API request tests hundreds of windows of about the
// same sizes. Bounded: past maxMemoUDists sizes it computes without storing.
var (
	exactUDistsMu sync.Mutex
	exactUDists   = map[[2]int][]float64{}
)

const maxMemoUDists = 256

// exactUDistMemo is exactUDist through the memo; callers must not modify the result.
func exactUDistMemo(m, n int) []float64 {
	key := [2]int{min(m, n), max(m, n)}
	exactUDistsMu.Lock()
	dist, ok := exactUDists[key]
	exactUDistsMu.Unlock()
	if ok {
		return dist
	}
	dist = exactUDist(m, n)
	exactUDistsMu.Lock()
	if len(exactUDists) < maxMemoUDists {
		exactUDists[key] = dist
	}
	exactUDistsMu.Unlock()
	return dist
}

// exactUPValue returns the exact p-value for an integer U1 (no ties).
func exactUPValue(n1, n2, u1 int, alt Alternative) float64 {
	dist := exactUDistMemo(n1, n2)
	// Sum the tails from their small ends for accuracy.
	upper := 0.0 // P(U ≥ u1)
	for k := len(dist) - 1; k >= u1; k-- {
		upper += dist[k]
	}
	lower := 0.0 // P(U ≤ u1)
	for k := 0; k <= u1 && k < len(dist); k++ {
		lower += dist[k]
	}
	switch alt {
	case Greater:
		return clampP(upper)
	case Less:
		return clampP(lower)
	}
	return clampP(2 * math.Min(upper, lower))
}
