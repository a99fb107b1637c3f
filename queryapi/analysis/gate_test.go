package analysis

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/changelens/changelens/queryapi/report"
)

// pollGate asks the gate after every minute of pairs, as a rollout
// controller polling each minute would, and returns the first minute it
// said FAIL (0: never), and the same for the fixed-horizon comparison
// asked the same way (FAIL on an overall WORSE).
func pollGate(pairs []MinutePair, cfg Config, cc CompareConfig, gc GateConfig) (gateAt, fixedAt int) {
	for n := 1; n <= len(pairs); n++ {
		if gateAt == 0 && Canary(pairs[:n], cfg, cc, gc).Result == report.GateFail {
			gateAt = n
		}
		if fixedAt == 0 && Compare(pairs[:n], 0, cfg, cc).Verdict == report.CompareWorse {
			fixedAt = n
		}
	}
	return gateAt, fixedAt
}

// Simulations (seeded; 500 canaries each, 5 % of 10 requests/s, polled
// every minute for 60 minutes; intervals are not computed, the decision
// does not use them):
//   - A/A: the gate FAILs a healthy canary in at most α (+ 3σ) of runs;
//     the fixed-horizon comparison asked the same way fails more often.
//   - a canary with 1.5× the latency: FAIL in ≥ 90 % of runs; the median
//     minutes to detection are reported.
func TestCanaryGateSimulation(t *testing.T) {
	if testing.Short() {
		t.Skip("simulation")
	}
	cfg := DefaultConfig()
	cc := DefaultCompareConfig()
	cc.BucketValue = msValue
	cc.BootstrapResamples = 0
	gc := DefaultGateConfig()
	const runs = 500
	rng := rand.New(rand.NewPCG(2026, 12))
	var falseGate, falseFixed, detected, detectedFixed int
	var minutes, minutesFixed []float64
	for range runs {
		g, f := pollGate(experiment(rng, 60, 600, 0.05, 1, 0.01, 0.01), cfg, cc, gc)
		if g > 0 {
			falseGate++
		}
		if f > 0 {
			falseFixed++
		}
		g, f = pollGate(experiment(rng, 60, 600, 0.05, 1.5, 0.01, 0.01), cfg, cc, gc)
		if g > 0 {
			detected++
			minutes = append(minutes, float64(g))
		}
		if f > 0 {
			detectedFixed++
			minutesFixed = append(minutesFixed, float64(f))
		}
	}
	median := func(xs []float64) float64 {
		if len(xs) == 0 {
			return math.NaN()
		}
		slices.Sort(xs)
		return xs[len(xs)/2]
	}
	bound := cfg.Alpha + 3*math.Sqrt(cfg.Alpha*(1-cfg.Alpha)/runs)
	t.Logf("A/A polled 60×: sequential gate FAIL in %d of %d (bound α + 3σ = %.3f), repeated fixed test in %d of %d",
		falseGate, runs, bound, falseFixed, runs)
	t.Logf("1.5× canary: sequential gate FAIL in %d of %d, median %.0f minutes; repeated fixed test in %d of %d, median %.0f minutes",
		detected, runs, median(minutes), detectedFixed, runs, median(minutesFixed))
	if float64(falseGate)/runs > bound {
		t.Errorf("the gate failed %d of %d healthy canaries, above α + 3σ = %.3f", falseGate, runs, bound)
	}
	if float64(detected)/runs < 0.9 {
		t.Errorf("the gate caught %d of %d 1.5× canaries, want ≥ 90 %%", detected, runs)
	}

	// A quieter unit: 2.5 requests/s, the canary serving ~7 a minute (a
	// canary minute's own p95 is then its slowest request or so; the test
	// counts slow requests instead). 200 runs each.
	const low = 200
	falseLow, caughtLow := 0, 0
	var minutesLow []float64
	for range low {
		if g, _ := pollGate(experiment(rng, 60, 150, 0.05, 1, 0.01, 0.01), cfg, cc, gc); g > 0 {
			falseLow++
		}
		if g, _ := pollGate(experiment(rng, 60, 150, 0.05, 1.5, 0.01, 0.01), cfg, cc, gc); g > 0 {
			caughtLow++
			minutesLow = append(minutesLow, float64(g))
		}
	}
	boundLow := cfg.Alpha + 3*math.Sqrt(cfg.Alpha*(1-cfg.Alpha)/low)
	t.Logf("2.5 requests/s: A/A FAIL in %d of %d (bound %.3f); 1.5× canary FAIL in %d of %d, median %.0f minutes", falseLow, low, boundLow, caughtLow, low, median(minutesLow))
	if float64(falseLow)/low > boundLow {
		t.Errorf("quiet unit: the gate failed %d of %d healthy canaries, above %.3f", falseLow, low, boundLow)
	}
	if float64(caughtLow)/low < 0.8 {
		t.Errorf("quiet unit: the gate caught %d of %d 1.5× canaries, want ≥ 80 %%", caughtLow, low)
	}
}

// The gate's answers and their parts on single canaries.
func TestCanaryGate(t *testing.T) {
	cfg := DefaultConfig()
	cc := DefaultCompareConfig()
	cc.BucketValue = msValue
	gc := DefaultGateConfig()
	rng := rand.New(rand.NewPCG(5, 5))

	few := Canary(experiment(rng, 5, 600, 0.05, 3, 0.01, 0.01), cfg, cc, gc)
	if few.Result != report.GateInconclusive || len(few.Reasons) != 0 {
		t.Errorf("5 minutes of a 3× canary: %v %v, want INCONCLUSIVE (never FAIL on too little data)", few.Result, few.Reasons)
	}

	slow := Canary(experiment(rng, 30, 600, 0.05, 1.5, 0.01, 0.01), cfg, cc, gc)
	p95 := metric(slow.Comparison, MetricLatencyP95)
	if slow.Result != report.GateFail || !slices.Equal(slow.Reasons, []report.FailureReason{report.ReasonLatencyRegression}) ||
		p95.Test != TestMSPRT || !(p95.PValue <= cfg.Alpha) || p95.Verdict != report.CompareWorse || slow.Comparison.Verdict != report.CompareWorse {
		t.Errorf("1.5× canary: %v %v, p95 %+v", slow.Result, slow.Reasons, p95)
	}

	errs := Canary(experiment(rng, 30, 600, 0.5, 1, 0.005, 0.03), cfg, cc, gc)
	if errs.Result != report.GateFail || !slices.Equal(errs.Reasons, []report.FailureReason{report.ReasonErrorRateRegression}) {
		t.Errorf("3 %% against 0.5 %% errors: %v %v", errs.Result, errs.Reasons)
	}

	fast := Canary(experiment(rng, 30, 600, 0.05, 0.6, 0.01, 0.01), cfg, cc, gc)
	if fast.Result != report.GatePass || fast.Comparison.Verdict == report.CompareWorse {
		t.Errorf("a faster canary: %v (%v), want PASS", fast.Result, fast.Comparison.Verdict)
	}
	for _, m := range fast.Comparison.Metrics {
		if (m.Metric == MetricLatencyP95 || m.Metric == MetricLatencyP99 || m.Metric == MetricErrorRate) && m.Test != TestMSPRT {
			t.Errorf("%s decided by %q, want the sequential test", m.Metric, m.Test)
		}
	}
}
