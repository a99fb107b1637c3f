package analysis

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/changelens/changelens/internal/schema"
	"github.com/changelens/changelens/internal/stats"
	"github.com/changelens/changelens/queryapi/report"
)

// cohortSim draws one cohort's minute: n requests with log-normal latencies
// (median 40 ms × slow, σ 0.35), each failing with probability errRate.
func cohortSim(rng *rand.Rand, n int, slow, errRate float64) CohortMinute {
	xs := make([]float64, n)
	m := CohortMinute{Requests: float64(n)}
	for i := range xs {
		xs[i] = 40 * slow * math.Exp(0.35*rng.NormFloat64())
		if rng.Float64() < errRate {
			m.Errors++
		}
	}
	m.P50Ms, _ = stats.Quantile(xs, 0.5)
	m.P90Ms, _ = stats.Quantile(xs, 0.9)
	m.P95Ms, _ = stats.Quantile(xs, 0.95)
	m.P99Ms, _ = stats.Quantile(xs, 0.99)
	m.MeanMs = mean(xs)
	h := map[uint16]float64{}
	for _, x := range xs {
		h[schema.HistBucket(uint64(x*1e6))]++
	}
	for k, w := range h {
		m.HistKeys, m.HistWeights = append(m.HistKeys, k), append(m.HistWeights, w)
	}
	return m
}

// experiment simulates minutes of a split: perMinute requests a minute (10
// requests/s = 600), share of them to the treatment.
func experiment(rng *rand.Rand, minutes, perMinute int, share, slow, ctrlErr, treatErr float64) []MinutePair {
	pairs := make([]MinutePair, minutes)
	for i := range pairs {
		nt := 0
		for range perMinute {
			if rng.Float64() < share {
				nt++
			}
		}
		pairs[i] = MinutePair{Control: cohortSim(rng, perMinute-nt, 1, ctrlErr), Treatment: cohortSim(rng, nt, slow, treatErr)}
	}
	return pairs
}

func metric(c Comparison, name string) MetricComparison {
	for _, m := range c.Metrics {
		if m.Metric == name {
			return m
		}
	}
	return MetricComparison{}
}

// Simulations (seeded, 500 experiments each, 60 minutes at 10 requests/s,
// a 5 % canary): the false WORSE/BETTER rate of A/A splits stays within α
// plus a binomial tolerance; a 1.5× slower canary is WORSE on p95 in ≥ 90 %
// of runs.
func TestCompareSimulation(t *testing.T) {
	if testing.Short() {
		t.Skip("simulation")
	}
	cfg := DefaultConfig()
	cc := DefaultCompareConfig()
	cc.BucketValue = msValue
	cc.BootstrapResamples = 500
	const runs = 500
	rng := rand.New(rand.NewPCG(2026, 11))
	var falseCalls, detected, covered int
	for r := 0; r < runs; r++ {
		aa := Compare(experiment(rng, 60, 600, 0.05, 1, 0.01, 0.01), 0, cfg, cc)
		if aa.Verdict == report.CompareWorse || aa.Verdict == report.CompareBetter {
			falseCalls++
		}
		slow := Compare(experiment(rng, 60, 600, 0.05, 1.5, 0.01, 0.01), 0, cfg, cc)
		p95 := metric(slow, MetricLatencyP95)
		if slow.Verdict == report.CompareWorse && p95.Verdict == report.CompareWorse {
			detected++
		}
		if p95.CILow <= 0.5 && 0.5 <= p95.CIHigh {
			covered++
		}
	}
	fp, power, cover := float64(falseCalls)/runs, float64(detected)/runs, float64(covered)/runs
	tol := 3 * math.Sqrt(cfg.Alpha*(1-cfg.Alpha)/runs)
	t.Logf("A/A: WORSE or BETTER in %d of %d (%.3f; bound α + 3σ = %.3f); 1.5× p95 canary: WORSE in %d of %d (%.3f); p95 interval holds +50 %% in %d of %d",
		falseCalls, runs, fp, cfg.Alpha+tol, detected, runs, power, covered, runs)
	if fp > cfg.Alpha+tol {
		t.Errorf("A/A false-call rate %.3f above %.3f", fp, cfg.Alpha+tol)
	}
	if power < 0.9 {
		t.Errorf("1.5× canary detected in %.3f of runs, want ≥ 0.9", power)
	}
	if cover < 0.8 {
		t.Errorf("the p95 interval held the true +50 %% in %.3f of runs, want ≥ 0.8", cover)
	}
}

func TestCompareErrorRateSRMAndInsufficient(t *testing.T) {
	cfg, cc := DefaultConfig(), DefaultCompareConfig()
	cc.BucketValue = msValue
	rng := rand.New(rand.NewPCG(5, 6))
	// A 50/50 flag experiment: 3 % against 0.5 % errors.
	flag := Compare(experiment(rng, 60, 600, 0.5, 1, 0.005, 0.03), 0.5, cfg, cc)
	em := metric(flag, MetricErrorRate)
	if em.Verdict != report.CompareWorse || flag.Verdict != report.CompareWorse {
		t.Errorf("error rate %v overall %v, want WORSE: %+v", em.Verdict, flag.Verdict, em)
	}
	if !(em.CILow <= 5 && 5 <= em.CIHigh) { // true relative change: 0.03 / 0.005 − 1
		t.Errorf("error-rate interval [%.2f, %.2f] misses +500 %%", em.CILow, em.CIHigh)
	}
	if flag.SRM == nil || flag.SRM.Mismatch {
		t.Errorf("a 50/50 split flagged: %+v", flag.SRM)
	}
	// The split is 10 % where 5 % was expected: a broken experiment.
	wrong := Compare(experiment(rng, 60, 600, 0.10, 1, 0.01, 0.01), 0.05, cfg, cc)
	if wrong.SRM == nil || !wrong.SRM.Mismatch || math.Abs(wrong.SRM.ObservedShare-0.10) > 0.01 {
		t.Errorf("SRM %+v, want a mismatch at about 10 %%", wrong.SRM)
	}
	if s := metric(wrong, MetricRequestShare); !(s.CILow <= s.Treatment && s.Treatment <= s.CIHigh && s.CIHigh-s.CILow < 0.02) {
		t.Errorf("share interval [%.3f, %.3f] around %.3f", s.CILow, s.CIHigh, s.Treatment)
	}
	// Five minutes of overlap: no verdict, whatever the data say.
	short := Compare(experiment(rng, 5, 600, 0.5, 2, 0.01, 0.2), 0, cfg, cc)
	if short.Verdict != report.CompareInsufficientData {
		t.Errorf("5 minutes: %v, want INSUFFICIENT_DATA", short.Verdict)
	}
	for _, m := range short.Metrics {
		if m.Metric != MetricRequestShare && m.Verdict != report.CompareInsufficientData {
			t.Errorf("%s: %v with 5 minutes", m.Metric, m.Verdict)
		}
	}
	// A faster, smaller treatment is BETTER on latency.
	fast := Compare(experiment(rng, 60, 600, 0.5, 0.6, 0.01, 0.01), 0, cfg, cc)
	if fast.Verdict != report.CompareBetter || metric(fast, MetricLatencyP95).Verdict != report.CompareBetter {
		t.Errorf("0.6× latency: %v, p95 %v", fast.Verdict, metric(fast, MetricLatencyP95).Verdict)
	}
	// Response sizes are compared only when the spans carry them.
	if metric(fast, MetricRespP95).Metric != "" {
		t.Error("response size compared without sizes")
	}
}

// msValue is the store's bucket value in milliseconds.
func msValue(i uint16) float64 { return schema.HistValue(i) / 1e6 }

// A canary minute holds a request or two: the mean of its per-minute p95
// sizes is far below the distribution's p95. Pooled from the merged size
// histograms, equal sizes compare equal (seeded, 60 minutes, 600 requests
// a minute of which 0.5 % canary, log-normal sizes σ 0.6), and a canary
// sending 40 % smaller responses is BETTER with an interval holding −40 %.
func TestCompareSizesOfASmallCohort(t *testing.T) {
	cfg := DefaultConfig()
	cc := DefaultCompareConfig()
	cc.BucketValue, cc.SizeValue = msValue, schema.SizeValue
	rng := rand.New(rand.NewPCG(9, 9))
	sizes := func(m *CohortMinute, n int, factor float64) {
		h := map[uint16]float64{}
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = 2000 * factor * math.Exp(0.6*rng.NormFloat64())
			h[schema.SizeBucket(uint64(xs[i]))]++
		}
		for k, w := range h {
			m.RespHistKeys, m.RespHistWeights = append(m.RespHistKeys, k), append(m.RespHistWeights, w)
		}
		m.RespP50Bytes, _ = stats.Quantile(xs, 0.5)
		m.RespP95Bytes, _ = stats.Quantile(xs, 0.95)
	}
	run := func(factor float64) MetricComparison {
		pairs := experiment(rng, 60, 600, 0.05, 1, 0.01, 0.01)
		for i := range pairs {
			sizes(&pairs[i].Control, int(pairs[i].Control.Requests), 1)
			sizes(&pairs[i].Treatment, max(1, int(pairs[i].Treatment.Requests)/10), factor) // one in ten canary requests has a body
		}
		return metric(Compare(pairs, 0, cfg, cc), MetricRespP95)
	}
	same := run(1)
	t.Logf("equal sizes: p95 %.0f → %.0f B, %+.3f [%+.3f, %+.3f] %v", same.Control, same.Treatment, same.RelativeChange, same.CILow, same.CIHigh, same.Verdict)
	if same.Verdict != report.CompareNoDifference || math.Abs(same.RelativeChange) > 0.15 {
		t.Errorf("equal sizes: %+v, want NO_DIFFERENCE near 0", same)
	}
	smaller := run(0.6)
	if smaller.Verdict != report.CompareBetter || !(smaller.CILow <= -0.4 && -0.4 <= smaller.CIHigh) {
		t.Errorf("40 %% smaller: %+v, want BETTER with −40 %% inside the interval", smaller)
	}
}
