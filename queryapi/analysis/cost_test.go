package analysis

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func usageSeries(rng *rand.Rand, version string, buckets int, cpuPerReq float64) []UsagePoint {
	var out []UsagePoint
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for i := range buckets {
		n := 500 + rng.Float64()*500
		out = append(out, UsagePoint{Version: version, Time: t0.Add(time.Duration(i) * time.Hour), Requests: n,
			CPUSeconds: n * cpuPerReq * (1 + 0.1*rng.NormFloat64()), MemoryByteAvg: 1e8, Instances: 2})
	}
	return out
}

// A version with twice the CPU per request reads 2.0, its interval covers
// the truth, and the estimate per 1 000 requests is the ratio of sums.
func TestCompareCostTwiceTheCPU(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pts := append(usageSeries(rng, "v1", 24, 0.01), usageSeries(rng, "v2", 24, 0.02)...)
	c := CompareCost("version", pts, "v1", "v2", time.Hour)
	if c.Reason != "" {
		t.Fatal(c.Reason)
	}
	if r := c.CPURatio; math.Abs(r.Value-2) > 0.2 || r.Low > 2 || r.High < 2 || r.Low >= r.Value || r.High <= r.Value {
		t.Errorf("CPU ratio %+v, want 2.0 ± 10 %% inside its interval", r)
	}
	if e := c.Control.CPUSecondsPer1k; math.Abs(e.Value-10) > 1 || e.Low > 10 || e.High < 10 {
		t.Errorf("control %+v, want 10 CPU seconds per 1 000 requests", e)
	}
	if c.Control.Buckets != 24 || c.Treatment.Buckets != 24 {
		t.Errorf("buckets %d %d", c.Control.Buckets, c.Treatment.Buckets)
	}
}

// The nominal 95 % interval of the ratio covers the truth in about 95 % of
// seeded runs.
func TestCompareCostCoverage(t *testing.T) {
	covered, runs := 0, 400
	for s := range runs {
		rng := rand.New(rand.NewPCG(uint64(s), 9))
		pts := append(usageSeries(rng, "a", 12, 0.01), usageSeries(rng, "b", 12, 0.015)...)
		r := CompareCost("", pts, "a", "b", time.Hour).CPURatio
		if r.Low <= 1.5 && 1.5 <= r.High {
			covered++
		}
	}
	if f := float64(covered) / float64(runs); f < 0.92 || f > 0.98 {
		t.Errorf("coverage %.3f, want about 0.95", f)
	}
}

// Flag variants share their processes: no CPU split, said so.
func TestCompareCostFlagCohortsNotSeparable(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	c := CompareCost("feature_flag.new-checkout", usageSeries(rng, "v1", 24, 0.01), "on", "off", time.Hour)
	if c.Reason != CostNotSeparable {
		t.Errorf("reason %q, want %q", c.Reason, CostNotSeparable)
	}
}

// Buckets without usage points are not measured; too few measured buckets
// give no estimate.
func TestVersionCostNeedsBuckets(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pts := usageSeries(rng, "v1", 5, 0.01)
	for i := range 3 {
		pts[i].Instances = 0
	}
	if e := VersionCost(pts, "v1", time.Hour); e.Reason != CostTooFewBuckets || e.Buckets != 2 {
		t.Errorf("%+v", e)
	}
	if e := VersionCost(pts, "v9", time.Hour); e.Reason != CostNoRequests {
		t.Errorf("%+v", e)
	}
	if e := VersionCost(pts[:0], "v1", time.Hour); e.Reason != CostNoRequests {
		t.Errorf("%+v", e)
	}
}

// The self-time proxy: twice the mean reads 2.0 inside its interval, and
// says what it is.
func TestCompareSelfTime(t *testing.T) {
	c := CompareSelfTime(SelfTimeStats{Requests: 1000, MeanMs: 20, StdDev: 8}, SelfTimeStats{Requests: 1000, MeanMs: 40, StdDev: 16})
	if c.Proxy != "self_time" || c.Reason != "" || c.Ratio.Value != 2 || c.Ratio.Low >= 2 || c.Ratio.High <= 2 || c.Ratio.Low < 1.8 || c.Ratio.High > 2.2 {
		t.Errorf("%+v", c)
	}
	if c := CompareSelfTime(SelfTimeStats{}, SelfTimeStats{Requests: 10, MeanMs: 1}); c.Reason != CostNoRequests {
		t.Errorf("%+v", c)
	}
}
