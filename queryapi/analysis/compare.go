package analysis

import (
	"math"
	"math/rand/v2"
	"slices"

	"github.com/changelens/changelens/internal/stats"
	"github.com/changelens/changelens/queryapi/report"
)

// CohortMinute is one cohort's statistics in one minute.
type CohortMinute struct {
	Requests, Errors           float64 // weighted
	P50Ms, P90Ms, P95Ms, P99Ms float64
	MeanMs                     float64
	// HistKeys and HistWeights are the minute's latency histogram (bucket →
	// weight, CompareConfig.BucketValue gives a bucket's milliseconds): the
	// cohorts' percentiles over all compared minutes come from the merged
	// histograms, not from averaging per-minute percentiles, which is biased
	// for a small cohort (a 5 % canary serves a few dozen requests a minute).
	HistKeys    []uint16
	HistWeights []float64
	// Body sizes in bytes (the minute's percentiles); 0 when the spans
	// carry none.
	RespP50Bytes, RespP95Bytes float64
	ReqP50Bytes, ReqP95Bytes   float64
	// RespHistKeys/Weights and ReqHistKeys/Weights are the minute's size
	// histograms (CompareConfig.SizeValue gives a bucket's bytes): as for
	// latency, the cohorts' size percentiles come from the merged
	// histograms — a canary minute holds a request or two, whose
	// "percentile" is biased low.
	RespHistKeys, ReqHistKeys       []uint16
	RespHistWeights, ReqHistWeights []float64
}

// MinutePair is a minute in which both cohorts served requests (the
// same-window rule: only such minutes are compared).
type MinutePair struct{ Control, Treatment CohortMinute }

// Metric names of a comparison.
const (
	MetricLatencyP50   = "latency_p50_ms"
	MetricLatencyP90   = "latency_p90_ms"
	MetricLatencyP95   = "latency_p95_ms"
	MetricLatencyP99   = "latency_p99_ms"
	MetricLatencyMean  = "latency_mean_ms"
	MetricErrorRate    = "error_rate"
	MetricRespP50      = "response_size_p50_bytes"
	MetricRespP95      = "response_size_p95_bytes"
	MetricReqP50       = "request_size_p50_bytes"
	MetricReqP95       = "request_size_p95_bytes"
	MetricRequestShare = "request_share"
)

// Test names of a comparison.
const TestWilcoxon = "wilcoxon-signed-rank (per-minute)"

// CompareConfig holds what a same-window comparison needs beyond the
// before/after thresholds (Config: MinRequests per cohort, LatencyRatio,
// Alpha, the error-rate thresholds and MinExpectedCount apply alike).
type CompareConfig struct {
	// MinOverlapMinutes: fewer minutes in which both cohorts served →
	// INSUFFICIENT_DATA. Default 10.
	MinOverlapMinutes int
	// BootstrapResamples and Level of the confidence intervals of the
	// relative changes (a paired bootstrap over minutes, seeded by Seed).
	// Defaults 1000, 0.95.
	BootstrapResamples int
	Level              float64
	Seed               uint64
	// SRMAlpha: a sample-ratio-mismatch test p-value below it flags the
	// split as broken. Default 0.001.
	SRMAlpha float64
	// BucketValue is the value in milliseconds of a histogram bucket (the
	// store's layout). Nil: percentiles are the means of the per-minute
	// ones.
	BucketValue func(uint16) float64
	// SizeValue is the value in bytes of a size histogram bucket. Nil:
	// size percentiles are the means of the per-minute ones.
	SizeValue func(uint16) float64
}

// DefaultCompareConfig returns the defaults of docs/analysis.md.
func DefaultCompareConfig() CompareConfig {
	return CompareConfig{MinOverlapMinutes: 10, BootstrapResamples: 1000, Level: 0.95, Seed: 1, SRMAlpha: 0.001}
}

// MetricComparison is one metric of a comparison. Control and Treatment are
// the metric over all compared minutes (percentiles of the merged latency
// or size histograms, the weighted mean, the pooled error rate); RelativeChange is treatment ÷ control − 1 (for
// request_share: the treatment's share), with a Level confidence interval
// from a paired bootstrap over minutes.
type MetricComparison struct {
	Metric                        string
	Control, Treatment            float64
	RelativeChange, CILow, CIHigh float64
	PValue                        float64 // of the test in the direction the metric moved; 1 when not tested
	Test                          string
	Verdict                       report.CompareVerdict
	// Guarded metrics (p95, p99, error rate) decide the overall verdict.
	Guarded bool
}

// Comparison is the same-window comparison of a treatment with a control.
type Comparison struct {
	OverlapMinutes                     int
	ControlRequests, TreatmentRequests float64
	Metrics                            []MetricComparison
	Verdict                            report.CompareVerdict
	SRM                                *report.SampleRatio // nil when no expected share was given
}

// Compare applies the same-window rules of docs/analysis.md to the minutes
// both cohorts served. expectedShare (the treatment's expected share of
// the pair's requests, in (0, 1)) enables the sample-ratio-mismatch check;
// 0 leaves it out.
//
//   - Fewer than MinOverlapMinutes minutes, or fewer than MinRequests
//     weighted requests in either cohort → INSUFFICIENT_DATA for every
//     metric (the split and SRM are still reported).
//   - Latency (p50 … p99, mean): the cohorts' values are the percentiles
//     of their merged histograms (the weighted mean), body sizes those of
//     the merged size histograms; WORSE when treatment ≥ LatencyRatio ×
//     control and a one-sided Wilcoxon signed-rank test on the per-minute
//     differences has p ≤ Alpha; BETTER in mirror image.
//   - Every interval comes from resampling the minutes (one bootstrap for
//     the pooled statistics, seeded).
//   - Error rate: pooled over the minutes, the before/after rule with
//     control as before and treatment as after (two-proportion z-test,
//     Fisher's exact test for small expected counts, both thresholds).
//   - Overall: WORSE when a guarded metric (p95, p99, error rate) is
//     WORSE; else BETTER when one is BETTER; else NO_DIFFERENCE.
func Compare(pairs []MinutePair, expectedShare float64, cfg Config, cc CompareConfig) Comparison {
	var c Comparison
	c.OverlapMinutes = len(pairs)
	for _, p := range pairs {
		c.ControlRequests += p.Control.Requests
		c.TreatmentRequests += p.Treatment.Requests
	}
	if expectedShare > 0 && expectedShare < 1 && c.ControlRequests+c.TreatmentRequests > 0 {
		_, pv, err := stats.ChiSquareGOF([]float64{c.ControlRequests, c.TreatmentRequests}, []float64{1 - expectedShare, expectedShare})
		if err == nil {
			c.SRM = &report.SampleRatio{ExpectedShare: expectedShare, ObservedShare: c.TreatmentRequests / (c.ControlRequests + c.TreatmentRequests),
				PValue: pv, Mismatch: pv < cc.SRMAlpha}
		}
	}
	enough := c.OverlapMinutes >= cc.MinOverlapMinutes && c.ControlRequests >= cfg.MinRequests && c.TreatmentRequests >= cfg.MinRequests
	seed := cc.Seed
	boot := func(ctrl, treat []float64, stat func(x, y []float64) float64) (lo, hi float64) {
		seed++
		lo, hi, ok := stats.PairedBootstrap(treat, ctrl, stat, cc.BootstrapResamples, cc.Level, seed)
		if !ok {
			return math.NaN(), math.NaN()
		}
		return lo, hi
	}
	ratioOfMeans := func(treat, ctrl []float64) float64 { return mean(treat)/mean(ctrl) - 1 }

	haveHist, haveSizes := cc.BucketValue != nil, cc.SizeValue != nil
	for _, p := range pairs {
		haveHist = haveHist && len(p.Control.HistKeys) > 0 && len(p.Treatment.HistKeys) > 0
		haveSizes = haveSizes && (len(p.Control.RespHistKeys)+len(p.Control.ReqHistKeys) > 0 || len(p.Treatment.RespHistKeys)+len(p.Treatment.ReqHistKeys) > 0)
	}
	// The pooled statistics of both cohorts over all minutes, and the
	// intervals of their relative changes, from one shared bootstrap.
	pool := pooledBootstrap(pairs, cc, haveHist, haveSizes)

	latency := []struct {
		name    string
		get     func(CohortMinute) float64
		guarded bool
		pooled  int  // index of the pooled estimate
		size    bool // a body size (left out when absent; pooled from the size histograms)
	}{
		{MetricLatencyP50, func(m CohortMinute) float64 { return m.P50Ms }, false, 0, false},
		{MetricLatencyP90, func(m CohortMinute) float64 { return m.P90Ms }, false, 1, false},
		{MetricLatencyP95, func(m CohortMinute) float64 { return m.P95Ms }, true, 2, false},
		{MetricLatencyP99, func(m CohortMinute) float64 { return m.P99Ms }, true, 3, false},
		{MetricLatencyMean, func(m CohortMinute) float64 { return m.MeanMs }, false, pooledMean, false},
		{MetricRespP50, func(m CohortMinute) float64 { return m.RespP50Bytes }, false, pooledRespP50, true},
		{MetricRespP95, func(m CohortMinute) float64 { return m.RespP95Bytes }, false, pooledRespP95, true},
		{MetricReqP50, func(m CohortMinute) float64 { return m.ReqP50Bytes }, false, pooledReqP50, true},
		{MetricReqP95, func(m CohortMinute) float64 { return m.ReqP95Bytes }, false, pooledReqP95, true},
	}
	for _, l := range latency {
		var ctrl, treat []float64
		for _, p := range pairs {
			cv, tv := l.get(p.Control), l.get(p.Treatment)
			if cv > 0 && tv > 0 { // sizes are absent (0) where spans carry none
				ctrl, treat = append(ctrl, cv), append(treat, tv)
			}
		}
		if l.size && len(ctrl) == 0 { // no sizes: the metric is left out
			continue
		}
		m := MetricComparison{Metric: l.name, Test: TestWilcoxon, PValue: 1, Guarded: l.guarded, Verdict: report.CompareInsufficientData}
		switch k := l.pooled; {
		case len(ctrl) > 0 && ((!l.size && haveHist) || (l.size && haveSizes)) && pool.control[k] > 0 && pool.treatment[k] > 0:
			m.Control, m.Treatment = pool.control[k], pool.treatment[k]
			m.RelativeChange = m.Treatment/m.Control - 1
			m.CILow, m.CIHigh = pool.lo[k], pool.hi[k]
		case len(ctrl) > 0:
			m.Control, m.Treatment = mean(ctrl), mean(treat)
			m.RelativeChange = m.Treatment/m.Control - 1
			m.CILow, m.CIHigh = boot(ctrl, treat, ratioOfMeans)
		}
		if enough && len(ctrl) >= cc.MinOverlapMinutes {
			m.Verdict = report.CompareNoDifference
			up, errUp := stats.WilcoxonSignedRank(treat, ctrl, stats.Greater)
			down, errDown := stats.WilcoxonSignedRank(treat, ctrl, stats.Less)
			if errUp == nil && errDown == nil {
				m.PValue = up.P
				if m.Treatment < m.Control {
					m.PValue = down.P
				}
				switch {
				case atLeastRatio(m.Treatment, m.Control, cfg.LatencyRatio) && up.P <= cfg.CompareAlpha:
					m.Verdict = report.CompareWorse
				case atLeastRatio(m.Control, m.Treatment, cfg.LatencyRatio) && down.P <= cfg.CompareAlpha:
					m.Verdict = report.CompareBetter
				}
			}
		}
		c.Metrics = append(c.Metrics, m)
	}

	// Error rate: pooled counts, the before/after rule (control = before).
	var ce, te float64
	for _, p := range pairs {
		ce += p.Control.Errors
		te += p.Treatment.Errors
	}
	em := MetricComparison{Metric: MetricErrorRate, PValue: 1, Guarded: true, Verdict: report.CompareInsufficientData, Test: TestNotRun}
	if c.ControlRequests > 0 && c.TreatmentRequests > 0 {
		em.Control, em.Treatment = ce/c.ControlRequests, te/c.TreatmentRequests
		if em.Control > 0 {
			em.RelativeChange = em.Treatment/em.Control - 1
		}
		em.CILow, em.CIHigh = pool.lo[pooledErrorRate], pool.hi[pooledErrorRate]
	}
	if enough {
		d, err := decide(Side{Requests: c.ControlRequests, Errors: math.Min(ce, c.ControlRequests)},
			Side{Requests: c.TreatmentRequests, Errors: math.Min(te, c.TreatmentRequests)}, cfg)
		if err == nil {
			em.Verdict = report.CompareNoDifference
			em.Test = TestZ
			if d.ErrorRate.Method == ErrorRateFisherExact {
				em.Test = TestFisher
			}
			em.PValue = d.ErrorRate.PIncrease
			if em.Treatment < em.Control {
				em.PValue = d.ErrorRate.PDecrease
			}
			for _, r := range d.Rules {
				switch r {
				case RuleErrorRateRegression:
					em.Verdict = report.CompareWorse
				case RuleErrorRateImprovement:
					em.Verdict = report.CompareBetter
				}
			}
		}
	}
	c.Metrics = append(c.Metrics, em)

	// The traffic split.
	share := MetricComparison{Metric: MetricRequestShare, PValue: 1, Test: TestNotRun, Verdict: report.CompareNoDifference}
	if total := c.ControlRequests + c.TreatmentRequests; total > 0 {
		share.Control, share.Treatment = c.ControlRequests/total, c.TreatmentRequests/total
		share.RelativeChange = share.Treatment
		share.CILow, share.CIHigh = pool.lo[pooledShare], pool.hi[pooledShare]
	}
	if c.SRM != nil {
		share.PValue = c.SRM.PValue
	}
	c.Metrics = append(c.Metrics, share)

	c.Verdict = report.CompareNoDifference
	insufficient := true
	for _, m := range c.Metrics {
		if !m.Guarded {
			continue
		}
		if m.Verdict != report.CompareInsufficientData {
			insufficient = false
		}
		switch {
		case m.Verdict == report.CompareWorse:
			c.Verdict = report.CompareWorse
		case m.Verdict == report.CompareBetter && c.Verdict != report.CompareWorse:
			c.Verdict = report.CompareBetter
		}
	}
	if insufficient {
		c.Verdict = report.CompareInsufficientData
	}
	return c
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	return sum(xs) / float64(len(xs))
}

func sum(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s
}

// pooledLevels are the quantile levels of the pooled latency.
var pooledLevels = []float64{0.5, 0.9, 0.95, 0.99}

// Indices of the pooled statistics after the pooledLevels quantiles.
const (
	pooledMean      = 4 // weighted mean latency
	pooledErrorRate = 5
	pooledShare     = 6 // the cohort's share of the two cohorts' requests
	pooledRespP50   = 7 // body sizes: quantiles of the merged size histograms
	pooledRespP95   = 8
	pooledReqP50    = 9
	pooledReqP95    = 10
	numPooled       = 11
)

// sizeLevels are the quantile levels of the pooled body sizes.
var sizeLevels = []float64{0.5, 0.95}

// pooledStats holds both cohorts' pooled statistics over all minutes and
// the interval of each one's relative change (for the share: of the
// treatment's share itself).
type pooledStats struct {
	control, treatment, lo, hi [numPooled]float64
}

// pooledOver merges the blocks of one cohort, each counts[i] times: the
// quantiles of the merged histograms (latency with hist, sizes with sizes,
// added from the blocks' runs; the dense buffers are reused) and the
// weighted mean, the error rate and the requests (left in the share slot).
func pooledOver(runs []blockRuns, counts []float64, treatment, hist, sizes bool, buf *denseBufs, cc CompareConfig) (out [numPooled]float64) {
	buf.reset()
	var requests, errs, durations float64
	side := 0
	if treatment {
		side = 1
	}
	for i, n := range counts {
		if n == 0 {
			continue
		}
		r := &runs[i][side]
		if hist {
			buf.latency.addRun(r.latency, n)
		}
		if sizes {
			buf.resp.addRun(r.resp, n)
			buf.req.addRun(r.req, n)
		}
		requests, errs, durations = requests+n*r.requests, errs+n*r.errors, durations+n*r.requests*r.meanMs
	}
	for i := range out {
		out[i] = math.NaN()
	}
	if hist {
		buf.latency.quantilesOf(pooledLevels, cc.BucketValue, out[:len(pooledLevels)], buf.latencyKeys)
	}
	if sizes {
		buf.resp.quantilesOf(sizeLevels, cc.SizeValue, out[pooledRespP50:pooledRespP95+1], buf.respKeys)
		buf.req.quantilesOf(sizeLevels, cc.SizeValue, out[pooledReqP50:pooledReqP95+1], buf.reqKeys)
	}
	out[pooledMean] = durations / requests
	out[pooledErrorRate] = errs / requests
	out[pooledShare] = requests
	return out
}

// run is a histogram over the compact bucket indices lo, lo+1, …: its
// weights from its first bucket to its last, zero where a bucket is
// absent. Adding zeros leaves every sum as it was, and a loop over
// consecutive weights has no index to load and no bounds to check per
// element: the resamples' merging is most of a comparison's CPU.
type run struct {
	lo int
	w  []float64
}

// runOf is the run of a histogram over compact keys (a key given twice
// counts its weights' sum).
func runOf(keys []uint16, weights []float64) run {
	if len(keys) == 0 {
		return run{}
	}
	lo, hi := slices.Min(keys), slices.Max(keys)
	r := run{lo: int(lo), w: make([]float64, int(hi)-int(lo)+1)}
	for j, k := range keys {
		r.w[int(k)-r.lo] += weights[j]
	}
	return r
}

// cohortRuns are one cohort's histograms in a block, as runs, with its
// requests, errors and mean (what pooledOver reads of a block, gathered).
type cohortRuns struct {
	latency, resp, req       run
	requests, errors, meanMs float64
}

// blockRuns are a block's control and treatment runs.
type blockRuns [2]cohortRuns

// addRun adds n times run r (its indices below len(d)).
func (d dense) addRun(r run, n float64) {
	if len(r.w) == 0 {
		return
	}
	d = d[r.lo : r.lo+len(r.w)]
	w := r.w[:len(d)]
	j := 0
	for ; j+4 <= len(d); j += 4 { // four at a time: fewer loop steps per weight
		dd, ww := d[j:j+4:j+4], w[j:j+4:j+4]
		dd[0] += n * ww[0]
		dd[1] += n * ww[1]
		dd[2] += n * ww[2]
		dd[3] += n * ww[3]
	}
	for ; j < len(d); j++ {
		d[j] += n * w[j]
	}
}

// dense is a histogram over bucket indices.
type dense []float64

// maxHistKey is the largest bucket of either cohort's histogram keys (which
// keys picks) over pairs; -1 when there are none.
func maxHistKey(pairs []MinutePair, keys func(CohortMinute) []uint16) int {
	m := -1
	for _, p := range pairs {
		for _, k := range keys(p.Control) {
			m = max(m, int(k))
		}
		for _, k := range keys(p.Treatment) {
			m = max(m, int(k))
		}
	}
	return m
}

func latencyKeys(c CohortMinute) []uint16 { return c.HistKeys }

func (d dense) add(keys []uint16, weights []float64) {
	for j, k := range keys {
		if int(k) < len(d) && weights[j] > 0 {
			d[k] += weights[j]
		}
	}
}

// quantiles writes the levels' quantiles into out (NaN when empty),
// interpolated within the bucket they fall in (log-uniform between its
// edges): the bucket's middle alone would make every bootstrap resample of
// a large cohort land on the same value, and the interval collapse to a
// point that need not hold the truth.
func (d dense) quantiles(levels []float64, value func(uint16) float64, out []float64) {
	d.quantilesOf(levels, value, out, nil)
}

// quantilesOf is quantiles of a histogram whose index i is bucket keys[i]
// (compactKeys); nil keys: index i is bucket i.
func (d dense) quantilesOf(levels []float64, value func(uint16) float64, out []float64, keys []uint16) {
	total := 0.0
	for _, v := range d {
		total += v
	}
	if total <= 0 {
		return
	}
	cum, li := 0.0, 0
	for i, v := range d {
		if v == 0 {
			continue
		}
		k := i
		if keys != nil {
			k = int(keys[i])
		}
		before := cum
		cum += v
		for li < len(levels) && cum >= levels[li]*total*(1-1e-9) {
			f := math.Min(math.Max((levels[li]*total-before)/v, 0), 1)
			mid := value(uint16(k))
			out[li] = mid * math.Pow(value(uint16(min(k+1, 65535)))/mid, f-0.5)
			li++
		}
	}
}

// denseBufs are the merge buffers of one cohort's histograms, indexed as
// compactKeys numbers the buckets: index i is bucket latencyKeys[i], ….
type denseBufs struct {
	latency, resp, req             dense
	latencyKeys, respKeys, reqKeys []uint16
}

func (b *denseBufs) reset() {
	clear(b.latency)
	clear(b.resp)
	clear(b.req)
}

// pooledBootstrap computes the pooled statistics over all minutes and
// their relative changes' percentile intervals over resamples of minutes
// (seeded), one resample serving every statistic. Without hist the latency
// statistics are left out (NaN).
func pooledBootstrap(pairs []MinutePair, cc CompareConfig, hist, sizes bool) pooledStats {
	var buf denseBufs
	var runs []blockRuns
	both := func(counts []float64) (c, t [numPooled]float64) {
		c = pooledOver(runs, counts, false, hist, sizes, &buf, cc)
		t = pooledOver(runs, counts, true, hist, sizes, &buf, cc)
		total := c[pooledShare] + t[pooledShare]
		c[pooledShare], t[pooledShare] = c[pooledShare]/total, t[pooledShare]/total
		if !hist {
			c[pooledMean], t[pooledMean] = math.NaN(), math.NaN()
		}
		return c, t
	}
	// Resample blocks of consecutive minutes (at most maxBootstrapBlocks):
	// a day of minutes resampled a thousand times would merge 1.4 million
	// histograms per cohort; blocks keep the cost flat in the range and
	// keep the minutes' autocorrelation inside each block.
	pairs = blocks(pairs, maxBootstrapBlocks)
	// The buckets numbered as they occur in the blocks: a day's latency
	// histograms use a few hundred of the thousands of buckets up to their
	// largest, and every resample clears and scans its buffers.
	pairs = slices.Clone(pairs)
	if hist {
		buf.latencyKeys = compactKeys(pairs, func(c *CohortMinute) *[]uint16 { return &c.HistKeys },
			func(c *CohortMinute) *[]float64 { return &c.HistWeights })
		buf.latency = make(dense, len(buf.latencyKeys))
	}
	if sizes {
		buf.respKeys = compactKeys(pairs, func(c *CohortMinute) *[]uint16 { return &c.RespHistKeys },
			func(c *CohortMinute) *[]float64 { return &c.RespHistWeights })
		buf.reqKeys = compactKeys(pairs, func(c *CohortMinute) *[]uint16 { return &c.ReqHistKeys },
			func(c *CohortMinute) *[]float64 { return &c.ReqHistWeights })
		buf.resp, buf.req = make(dense, len(buf.respKeys)), make(dense, len(buf.reqKeys))
	}
	runs = make([]blockRuns, len(pairs))
	for i := range pairs {
		for side, c := range []*CohortMinute{&pairs[i].Control, &pairs[i].Treatment} {
			r := cohortRuns{requests: c.Requests, errors: c.Errors, meanMs: c.MeanMs}
			if hist {
				r.latency = runOf(c.HistKeys, c.HistWeights)
			}
			if sizes {
				r.resp, r.req = runOf(c.RespHistKeys, c.RespHistWeights), runOf(c.ReqHistKeys, c.ReqHistWeights)
			}
			runs[i][side] = r
		}
	}
	all := make([]float64, len(pairs))
	for i := range all {
		all[i] = 1
	}
	var ps pooledStats
	for k := range ps.lo {
		ps.lo[k], ps.hi[k] = math.NaN(), math.NaN()
	}
	if len(pairs) == 0 {
		return ps
	}
	ps.control, ps.treatment = both(all)
	rng := rand.New(rand.NewPCG(cc.Seed, 0x6a09e667f3bcc909))
	changes := make([][]float64, numPooled)
	// A resample is how many times each block is drawn (len(pairs) draws
	// with replacement, in the same order as ever: the same resamples).
	counts := make([]float64, len(pairs))
	for range cc.BootstrapResamples {
		clear(counts)
		for range counts {
			counts[rng.IntN(len(pairs))]++
		}
		c, t := both(counts)
		for k := range changes {
			r := t[k]/c[k] - 1
			if k == pooledShare {
				r = t[k]
			}
			if !math.IsNaN(r) && !math.IsInf(r, 0) {
				changes[k] = append(changes[k], r)
			}
		}
	}
	a := (1 - cc.Level) / 2
	for k, vs := range changes {
		if 2*len(vs) >= cc.BootstrapResamples {
			slices.Sort(vs)
			ps.lo[k], _ = stats.Quantile(vs, a)
			ps.hi[k], _ = stats.Quantile(vs, 1-a)
		}
	}
	return ps
}

// compactKeys renumbers one histogram of every pair's cohorts (field, with
// its weights) by the buckets that occur, in ascending order, and returns
// those buckets: index i of a renumbered histogram is bucket keys[i];
// entries without a positive weight are left out. The pairs get new
// slices; the slices they held are not changed.
func compactKeys(pairs []MinutePair, field func(*CohortMinute) *[]uint16, weights func(*CohortMinute) *[]float64) (keys []uint16) {
	top := maxHistKey(pairs, func(c CohortMinute) []uint16 { return *field(&c) })
	index := make([]uint16, top+1)
	seen := make([]bool, top+1)
	for i := range pairs {
		for _, k := range *field(&pairs[i].Control) {
			seen[k] = true
		}
		for _, k := range *field(&pairs[i].Treatment) {
			seen[k] = true
		}
	}
	for k, ok := range seen {
		if ok {
			index[k] = uint16(len(keys))
			keys = append(keys, uint16(k))
		}
	}
	for i := range pairs {
		for _, c := range []*CohortMinute{&pairs[i].Control, &pairs[i].Treatment} {
			old, oldWeights := *field(c), *weights(c)
			renumbered, kept := make([]uint16, 0, len(old)), make([]float64, 0, len(old))
			for j, k := range old {
				if oldWeights[j] > 0 { // what dense.add skips, left out once
					renumbered, kept = append(renumbered, index[k]), append(kept, oldWeights[j])
				}
			}
			*field(c), *weights(c) = renumbered, kept
		}
	}
	return keys
}

// maxBootstrapBlocks bounds the units the bootstrap resamples.
const maxBootstrapBlocks = 120

// blocks merges consecutive pairs into at most n blocks of (almost) equal
// length: each block's cohorts hold the summed requests, errors and
// duration (as a weighted mean) and the merged histograms of its minutes.
// The pooled statistics over all blocks equal those over all minutes.
func blocks(pairs []MinutePair, n int) []MinutePair {
	if len(pairs) <= n {
		return pairs
	}
	// One accumulator per histogram, reused by every block: a day of
	// minutes is ~300 000 histogram entries, which maps made a third of a
	// comparison's cost.
	var lat, resp, req histAccum
	out := make([]MinutePair, n)
	for b := range n {
		lo, hi := b*len(pairs)/n, (b+1)*len(pairs)/n
		out[b] = MinutePair{
			Control:   mergeMinutes(pairs[lo:hi], false, &lat, &resp, &req),
			Treatment: mergeMinutes(pairs[lo:hi], true, &lat, &resp, &req),
		}
	}
	return out
}

func mergeMinutes(pairs []MinutePair, treatment bool, lat, resp, req *histAccum) CohortMinute {
	var out CohortMinute
	durations := 0.0
	for _, p := range pairs {
		m := p.Control
		if treatment {
			m = p.Treatment
		}
		out.Requests += m.Requests
		out.Errors += m.Errors
		durations += m.Requests * m.MeanMs
		lat.add(m.HistKeys, m.HistWeights)
		resp.add(m.RespHistKeys, m.RespHistWeights)
		req.add(m.ReqHistKeys, m.ReqHistWeights)
	}
	if out.Requests > 0 {
		out.MeanMs = durations / out.Requests
	}
	out.HistKeys, out.HistWeights = lat.flush()
	out.RespHistKeys, out.RespHistWeights = resp.flush()
	out.ReqHistKeys, out.ReqHistWeights = req.flush()
	return out
}

// histAccum sums sparse histograms (keys, weights) into a dense array and
// gives back the sum as keys ascending with their weights.
type histAccum struct {
	w       []float64
	seen    []bool
	touched []uint16
}

func (a *histAccum) add(keys []uint16, weights []float64) {
	for j, k := range keys {
		if int(k) >= len(a.w) {
			n := max(int(k)+1, 2*len(a.w))
			a.w, a.seen = slices.Grow(a.w, n-len(a.w))[:n], slices.Grow(a.seen, n-len(a.seen))[:n]
		}
		if !a.seen[k] {
			a.seen[k] = true
			a.touched = append(a.touched, k)
		}
		a.w[k] += weights[j]
	}
}

// flush returns the sum (nil, nil when empty) and resets the accumulator.
func (a *histAccum) flush() ([]uint16, []float64) {
	if len(a.touched) == 0 {
		return nil, nil
	}
	slices.Sort(a.touched)
	keys := slices.Clone(a.touched)
	weights := make([]float64, len(keys))
	for i, k := range keys {
		weights[i] = a.w[k]
		a.w[k], a.seen[k] = 0, false
	}
	a.touched = a.touched[:0]
	return keys, weights
}
