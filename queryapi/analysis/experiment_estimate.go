package analysis

import (
	"math"

	"github.com/changelens/changelens/internal/schema"
	"github.com/changelens/changelens/internal/stats"
)

// MetricBucket is one bucket of a variant's metric as the store can give it
// cheaply, already aggregated: a time bucket (a minute, an hour, a day) or,
// for a per-unit ratio, one randomization unit.
//
//   - KindProportion: Num successes (crashed sessions, converted units) of
//     Den trials (sessions, units).
//   - KindRatio: Num (errors, response bytes, CPU seconds, memory
//     byte-seconds, self-time seconds) over Den (requests).
//   - KindPercentile: Hist, the bucket's histogram in the layout of
//     internal/schema (durations in nanoseconds).
//
// Buckets are the clusters of the cluster-robust variances: observations
// of one hour share their fortunes, observations of different hours far
// less.
type MetricBucket struct {
	Num, Den float64
	Hist     stats.Hist
}

// UnitValue is one randomization unit's value of a unit-level metric (a
// user's conversion 0/1, retention 0/1), with its pre-period value X
// (converted in the four weeks before) when HasX — what CUPED adjusts with.
type UnitValue struct {
	Y, X float64
	HasX bool
}

// MetricSeries is a variant's data for one metric: Units when the store has
// per-unit values (then the estimate is their mean, CUPED-adjusted when
// pre-period values exist), else Buckets.
type MetricSeries struct {
	Buckets []MetricBucket
	Units   []UnitValue
}

// VariantData is one variant's data since the experiment started.
type VariantData struct {
	Name string
	// Units is the number of randomization units assigned to the variant
	// (the sample-ratio-mismatch test's count).
	Units   float64
	Metrics map[string]MetricSeries
}

// ExperimentConfig holds what the estimators need beyond a definition.
type ExperimentConfig struct {
	// Edges gives a histogram bucket's [lo, hi) in milliseconds. Default:
	// the latency layout of internal/schema.
	Edges func(uint16) (lo, hi float64)
	// MinClusters: with at least this many time buckets a percentile's
	// variance is cluster-robust (never below the binomial). Default 10.
	MinClusters int
	// SRMAlpha: the sample-ratio-mismatch test flags p below it. Default
	// 0.001, the industry's threshold: the test runs at every look, and a
	// real mismatch is usually extreme.
	SRMAlpha float64
}

// DefaultExperimentConfig returns the defaults of docs/experiments.md.
func DefaultExperimentConfig() ExperimentConfig {
	return ExperimentConfig{Edges: schemaEdgesMs, MinClusters: 10, SRMAlpha: 0.001}
}

func (c ExperimentConfig) withDefaults() ExperimentConfig {
	d := DefaultExperimentConfig()
	if c.Edges == nil {
		c.Edges = d.Edges
	}
	if c.MinClusters == 0 {
		c.MinClusters = d.MinClusters
	}
	if c.SRMAlpha == 0 {
		c.SRMAlpha = d.SRMAlpha
	}
	return c
}

// schemaEdgesMs is the schema's latency bucket i in milliseconds; bucket 0
// also holds everything shorter, given a lower edge one bucket below so
// that interpolation stays geometric.
func schemaEdgesMs(i uint16) (lo, hi float64) {
	lo = schema.HistMinNs * math.Pow(schema.HistGamma, float64(i)) / 1e6
	return lo, lo * schema.HistGamma
}

// estimate is one variant's value of a metric and the variance of its log.
type estimate struct {
	value, logVar float64
	// x, n: a proportion's counts (for the log relative risk and
	// Newcombe's interval); n also counts observations for the others.
	x, n float64
	// cuped: the value is CUPED-adjusted; vrf the variance factor 1 − ρ².
	cuped bool
	vrf   float64
	// counts: a proportion from counts (x of n), compared by the log
	// relative risk. hasCounts: x and n are counts though the estimate is
	// a ratio (error_rate), for the comparison of an arm without events.
	counts, hasCounts bool
	ok                bool
}

// cupedAdjust holds one metric's pooled CUPED regression.
type cupedAdjust struct {
	theta, meanX, vrf float64
	ok                bool
}

// pooledCUPED fits θ on the units with a pre-period value, over every
// variant together.
func pooledCUPED(series []MetricSeries) cupedAdjust {
	var xs, ys []float64
	for _, s := range series {
		for _, u := range s.Units {
			if u.HasX {
				xs, ys = append(xs, u.X), append(ys, u.Y)
			}
		}
	}
	theta, mx, _, vrf, ok := stats.CUPED(xs, ys)
	return cupedAdjust{theta: theta, meanX: mx, vrf: vrf, ok: ok}
}

// estimateMetric estimates metric m from one variant's series.
func estimateMetric(m ExperimentMetric, s MetricSeries, adj cupedAdjust, cfg ExperimentConfig) estimate {
	if len(s.Units) > 0 {
		return estimateUnits(s.Units, adj)
	}
	switch m.Kind {
	case KindProportion:
		var x, n float64
		for _, b := range s.Buckets {
			x, n = x+b.Num, n+b.Den
		}
		if !(n > 0) || x < 0 || x > n {
			return estimate{}
		}
		p := x / n
		// The log relative risk carries the comparison; logVar is only for
		// a single arm's display and the power calculation.
		lv := math.Inf(1)
		if x > 0 {
			lv = (1 - p) / x
		}
		return estimate{value: p, logVar: lv, x: x, n: n, counts: true, ok: true}
	case KindRatio:
		num, den := make([]float64, len(s.Buckets)), make([]float64, len(s.Buckets))
		for i, b := range s.Buckets {
			num[i], den[i] = b.Num, b.Den
		}
		r, v, ok := stats.RatioOfSums(num, den)
		n, x := 0.0, 0.0
		for i, d := range den {
			n, x = n+d, x+num[i]
		}
		if ok && r == 0 && m.Name == ExpErrorRate {
			// No error at all in this arm: no log ratio exists, but the
			// other arm's errors are still evidence (see logChange).
			return estimate{value: 0, logVar: math.Inf(1), x: 0, n: n, hasCounts: true, ok: true}
		}
		if !ok || !(r > 0) {
			return estimate{}
		}
		return estimate{value: r * m.Scale, logVar: v / (r * r), x: x, n: n, hasCounts: m.Name == ExpErrorRate, ok: true}
	case KindPercentile:
		hs := make([]stats.Hist, len(s.Buckets))
		for i, b := range s.Buckets {
			hs[i] = b.Hist
		}
		v, se, n, ok := stats.QuantileLogSE(hs, m.Quantile, cfg.MinClusters, cfg.Edges)
		if !ok || math.IsInf(se, 0) {
			return estimate{}
		}
		return estimate{value: v, logVar: se * se, n: n, ok: true}
	}
	return estimate{}
}

// estimateUnits is the mean of per-unit values with the variance of that
// mean, CUPED-adjusted when the pooled regression exists.
func estimateUnits(us []UnitValue, adj cupedAdjust) estimate {
	ys := make([]float64, len(us))
	for i, u := range us {
		ys[i] = u.Y
		if adj.ok && u.HasX {
			// Units without pre-period data (new users) keep their value:
			// the adjustment of a missing x is taken at x̄, i.e. none.
			ys[i] = u.Y - adj.theta*(u.X-adj.meanX)
		}
	}
	mean, v, ok := stats.MeanVariance(ys)
	if !ok || !(mean > 0) {
		return estimate{}
	}
	return estimate{value: mean, logVar: v / (mean * mean), n: float64(len(us)), cuped: adj.ok, vrf: adj.vrf, ok: true}
}

// logChange is the treatment's log change over the control and its
// variance: the log relative risk for proportion counts, else the
// difference of the logs of two independent estimates.
func logChange(m ExperimentMetric, t, c estimate) (d, v float64, ok bool) {
	if !t.ok || !c.ok {
		return 0, 0, false
	}
	if t.counts && c.counts {
		// No event in either arm: nothing to compare (a guardrail on crashes
		// cannot fail on zero crashes).
		if d, v, err := stats.LogRelativeRisk(t.x, t.n, c.x, c.n); err == nil && t.x+c.x > 0 {
			return d, v, true
		}
		return 0, 0, false
	}
	if t.hasCounts && c.hasCounts && (t.x == 0 || c.x == 0) && t.x <= t.n && c.x <= c.n {
		// An arm without errors: the log relative risk with ½ added (the
		// binomial variance, not the clustered one — with no events there
		// is no clustering to measure).
		if d, v, err := stats.LogRelativeRisk(t.x, t.n, c.x, c.n); err == nil && t.x+c.x > 0 {
			return d, v, true
		}
		return 0, 0, false
	}
	if math.IsInf(t.logVar, 0) || math.IsInf(c.logVar, 0) {
		return 0, 0, false
	}
	return math.Log(t.value) - math.Log(c.value), t.logVar + c.logVar, true
}
