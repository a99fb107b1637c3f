package analysis

import (
	"math"
	"time"

	"gonum.org/v1/gonum/stat/distuv"
)

// CostReason says why a cost comparison has no estimate ("" when it has).
type CostReason string

const (
	// CostNotSeparable: the cohorts share their processes (a feature flag's
	// variants, an attribute's values are served by the same instances),
	// so the CPU time and memory the metrics report cannot be split between
	// them. The nearest measure is each cohort's self time (the time its
	// requests spent in their own entry span, outside their outgoing
	// calls): CompareSelfTime, a proxy to be labelled as one.
	CostNotSeparable CostReason = "cpu_not_separable"
	// CostTooFewBuckets: a version has fewer than MinCostBuckets buckets
	// with both resource usage and requests, too few for an interval.
	CostTooFewBuckets CostReason = "too_few_buckets"
	// CostNoRequests: a version served no request in its measured buckets.
	CostNoRequests CostReason = "no_requests"
)

// MinCostBuckets is the fewest measured buckets an estimate needs: the
// interval comes from the buckets' spread.
const MinCostBuckets = 3

// costLevel is the confidence level of the intervals.
const costLevel = 0.95

// RatioEstimate is a ratio of sums over buckets with its interval.
type RatioEstimate struct {
	Value, Low, High float64
}

// CostEstimate is one version's resource usage per 1 000 requests.
type CostEstimate struct {
	Version string
	// CPUSecondsPer1k: CPU seconds per 1 000 requests.
	CPUSecondsPer1k RatioEstimate
	// MemoryByteSecondsPer1k: memory held (byte-seconds) per 1 000
	// requests.
	MemoryByteSecondsPer1k RatioEstimate
	// Buckets are the buckets measured: with usage points and requests.
	Buckets              int
	CPUSeconds, Requests float64
	Reason               CostReason
}

// CostComparison compares two versions' cost per request.
type CostComparison struct {
	Control, Treatment CostEstimate
	// CPURatio and MemoryRatio: the treatment's cost per request over the
	// control's, with the interval.
	CPURatio, MemoryRatio RatioEstimate
	Reason                CostReason
}

// VersionCost estimates version's CPU seconds and memory byte-seconds per
// 1 000 requests from a unit's usage points (buckets of length bucket).
//
// The estimator is the ratio of sums over the version's measured buckets
// (those with usage points and requests; a bucket whose instances sent no
// metrics says nothing about its requests' cost): R = ΣC / ΣN. Its interval
// is the delta method's, clustered by bucket —
// Var(R) = n/(n−1) · Σ(C_i − R·N_i)² / (ΣN)², with Student's t on n−1
// degrees of freedom — so minute-to-minute changes of the load, and the
// correlation of CPU and requests within a bucket, widen it as they
// should.
func VersionCost(points []UsagePoint, version string, bucket time.Duration) CostEstimate {
	e := CostEstimate{Version: version}
	var cpu, mem, req []float64
	for _, p := range points {
		if p.Version != version || p.Instances == 0 || p.Requests <= 0 {
			continue
		}
		cpu = append(cpu, p.CPUSeconds)
		mem = append(mem, p.MemoryByteAvg*bucket.Seconds())
		req = append(req, p.Requests)
		e.CPUSeconds += p.CPUSeconds
		e.Requests += p.Requests
	}
	e.Buckets = len(req)
	switch {
	case e.Buckets == 0:
		e.Reason = CostNoRequests
		return e
	case e.Buckets < MinCostBuckets:
		e.Reason = CostTooFewBuckets
		return e
	}
	e.CPUSecondsPer1k = scale(ratioOfSums(cpu, req), 1000)
	e.MemoryByteSecondsPer1k = scale(ratioOfSums(mem, req), 1000)
	return e
}

// CompareCost compares the cost per request of two cohorts of dimension
// (report's dimensions: "version", "feature_flag.<key>", ...). Only
// versions have their own processes, hence their own CPU time; any other
// dimension answers CostNotSeparable. The ratio's interval adds the two
// estimates' variances on the log scale (the versions run on different
// instances, so their errors are independent).
func CompareCost(dimension string, points []UsagePoint, control, treatment string, bucket time.Duration) CostComparison {
	if dimension != "" && dimension != "version" {
		return CostComparison{Reason: CostNotSeparable}
	}
	c := CostComparison{Control: VersionCost(points, control, bucket), Treatment: VersionCost(points, treatment, bucket)}
	if c.Reason = c.Control.Reason; c.Reason == "" {
		c.Reason = c.Treatment.Reason
	}
	if c.Reason != "" {
		return c
	}
	dfC, dfT := float64(c.Control.Buckets-1), float64(c.Treatment.Buckets-1)
	c.CPURatio = logRatio(c.Treatment.CPUSecondsPer1k, c.Control.CPUSecondsPer1k, dfT, dfC)
	c.MemoryRatio = logRatio(c.Treatment.MemoryByteSecondsPer1k, c.Control.MemoryByteSecondsPer1k, dfT, dfC)
	return c
}

// ratioOfSums is ΣC/ΣN with its clustered delta-method interval.
func ratioOfSums(c, n []float64) RatioEstimate {
	var sc, sn float64
	for i := range c {
		sc += c[i]
		sn += n[i]
	}
	r := sc / sn
	var ss float64
	for i := range c {
		d := c[i] - r*n[i]
		ss += d * d
	}
	k := float64(len(c))
	se := math.Sqrt(k / (k - 1) * ss / (sn * sn))
	t := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: k - 1}.Quantile(1 - (1-costLevel)/2)
	return RatioEstimate{Value: r, Low: math.Max(0, r-t*se), High: r + t*se}
}

// seOf recovers the standard error from an interval ratioOfSums made (on
// df degrees of freedom), unclamped at 0.
func seOf(e RatioEstimate, df float64) float64 {
	t := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}.Quantile(1 - (1-costLevel)/2)
	return (e.High - e.Value) / t
}

// logRatio is a/b with the interval of log(a) − log(b) (delta method:
// Var(log R) ≈ Var(R)/R²), on the smaller of the two degrees of freedom.
func logRatio(a, b RatioEstimate, dfA, dfB float64) RatioEstimate {
	if a.Value <= 0 || b.Value <= 0 {
		return RatioEstimate{Value: math.NaN(), Low: math.NaN(), High: math.NaN()}
	}
	va := math.Pow(seOf(a, dfA)/a.Value, 2)
	vb := math.Pow(seOf(b, dfB)/b.Value, 2)
	lr := math.Log(a.Value / b.Value)
	t := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: math.Min(dfA, dfB)}.Quantile(1 - (1-costLevel)/2)
	h := t * math.Sqrt(va+vb)
	return RatioEstimate{Value: math.Exp(lr), Low: math.Exp(lr - h), High: math.Exp(lr + h)}
}

func scale(e RatioEstimate, k float64) RatioEstimate {
	return RatioEstimate{Value: e.Value * k, Low: e.Low * k, High: e.High * k}
}

// SelfTimeStats is one cohort's self time: over its requests whose self
// time was measured, their weighted count and the weighted mean and
// standard deviation (ms).
type SelfTimeStats struct {
	Requests       float64
	MeanMs, StdDev float64
}

// SelfTimeComparison is the proxy CompareCost points to when CPU cannot be
// split: the treatment's mean self time over the control's. Proxy names
// what it is, for every reader to label it so: self time counts a
// request's time outside its traced calls, on the CPU or blocked on
// anything untraced, not its CPU.
type SelfTimeComparison struct {
	Proxy              string // "self_time"
	Control, Treatment SelfTimeStats
	Ratio              RatioEstimate
	Reason             CostReason // CostNoRequests when a cohort has no measured request
}

// CompareSelfTime compares two cohorts' mean self time: the ratio of means
// with the interval of the difference of their logs, each mean's variance
// StdDev²/Requests (the delta method: Var(log m) ≈ Var(m)/m²), normal
// quantiles (self time is measured per request, so the counts are large).
func CompareSelfTime(control, treatment SelfTimeStats) SelfTimeComparison {
	c := SelfTimeComparison{Proxy: "self_time", Control: control, Treatment: treatment}
	if control.Requests <= 1 || treatment.Requests <= 1 || control.MeanMs <= 0 || treatment.MeanMs <= 0 {
		c.Reason = CostNoRequests
		c.Ratio = RatioEstimate{Value: math.NaN(), Low: math.NaN(), High: math.NaN()}
		return c
	}
	v := func(s SelfTimeStats) float64 { return s.StdDev * s.StdDev / s.Requests / (s.MeanMs * s.MeanMs) }
	lr := math.Log(treatment.MeanMs / control.MeanMs)
	h := distuv.UnitNormal.Quantile(1-(1-costLevel)/2) * math.Sqrt(v(control)+v(treatment))
	c.Ratio = RatioEstimate{Value: math.Exp(lr), Low: math.Exp(lr - h), High: math.Exp(lr + h)}
	return c
}
