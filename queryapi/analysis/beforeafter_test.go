package analysis

import (
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/changelens/changelens/internal/schema"
	"github.com/changelens/changelens/queryapi/report"
)

// opTraffic describes one operation of a constructed deployment: requests
// per minute in each window, log-normal latencies (median, σ) multiplied by
// slower after the deploy, and errors per minute in each window.
type opTraffic struct {
	name                       string
	perMinute                  [2]int
	median, sigma              float64
	slower                     float64 // after ÷ before; 0 = 1
	errorsPerMinute            [2]float64
	beforeMinutes, afterMinute int
}

// evidenceOf builds the evidence of ops: each minute's latencies are the
// quantiles of the log-normal at evenly spaced levels (no sampling noise,
// so figures are exact and the dispersion is the binomial one), seeded
// only to place errors.
func evidenceOf(t *testing.T, cfg Config, ops ...opTraffic) *Evidence {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	const minutes = 30
	type cell struct {
		buckets []uint16
		n, errs float64
	}
	cells := make([][2][minutes]cell, len(ops))
	windows := make([]OperationWindows, len(ops))
	for i, op := range ops {
		windows[i].Operation = op.name
		for w := range 2 {
			mult := 1.0
			if w == 1 && op.slower > 0 {
				mult = op.slower
			}
			var acc histAccum
			side := &windows[i].Before
			if w == 1 {
				side = &windows[i].After
			}
			for m := range minutes {
				c := &cells[i][w][m]
				n := op.perMinute[w]
				for k := range n {
					level := (float64(k) + 0.5 + rng.Float64()*0.0) / float64(n)
					ms := op.median * mult * math.Exp(op.sigma*zQuantile(level))
					b := schema.HistBucket(uint64(ms * 1e6))
					c.buckets = append(c.buckets, b)
					acc.add([]uint16{b}, []float64{1})
				}
				c.n = float64(n)
				// Errors: whole errors spread over minutes.
				c.errs = math.Floor(op.errorsPerMinute[w]*float64(m+1)) - math.Floor(op.errorsPerMinute[w]*float64(m))
				side.Requests += c.n
				side.Errors += c.errs
				side.Samples += c.n
			}
			side.Keys, side.Weights = acc.flush()
		}
	}
	e := NewEvidence(windows, minutes, minutes, bucketMs, cfg)
	for i, op := range ops {
		slow, unit, ok := e.Thresholds(op.name)
		if !ok {
			t.Fatalf("no thresholds for %s", op.name)
		}
		for w := range 2 {
			for m := range minutes {
				c := cells[i][w][m]
				mc := MinuteCounts{Requests: c.n, Errors: c.errs}
				for _, b := range c.buckets {
					for l := range slow {
						if b > slow[l] {
							mc.Slow[l]++
						}
						if b > unit[l] {
							mc.UnitSlow[l]++
						}
					}
				}
				e.AddMinute(op.name, w == 1, m, mc)
			}
		}
	}
	return e
}

func steady(name string, perMinute int, median float64) opTraffic {
	return opTraffic{name: name, perMinute: [2]int{perMinute, perMinute}, median: median, sigma: 0.4}
}

func impactMetric(ms []report.ImpactMetric, name string) report.ImpactMetric {
	for _, m := range ms {
		if m.Metric == name {
			return m
		}
	}
	return report.ImpactMetric{}
}

func operation(j Judgement, name string) report.OperationImpact {
	for _, o := range j.Operations {
		if o.Operation == name && !o.Remainder {
			return o
		}
	}
	return report.OperationImpact{}
}

func TestJudgeEvidenceNoChange(t *testing.T) {
	cfg := DefaultConfig()
	e := evidenceOf(t, cfg, steady("GET /a", 300, 80), steady("GET /b", 100, 200), steady("POST /c", 40, 120))
	j := judgeEvidence(e, true, cfg)
	if j.Verdict != report.VerdictNoChange || len(j.Regressions) != 0 {
		t.Fatalf("verdict %v %v, want NO_CHANGE", j.Verdict, j.Regressions)
	}
	p95 := impactMetric(j.Metrics, MetricLatencyP95)
	if math.Abs(p95.RelativeChange) > 1e-9 || !(p95.CILow < 0 && p95.CIHigh > 0) {
		t.Errorf("p95 change %v [%v, %v], want 0 inside its interval", p95.RelativeChange, p95.CILow, p95.CIHigh)
	}
	if p95.MDE < cfg.LatencyFloor || math.IsInf(p95.MDE, 0) || !(p95.MDEValue > p95.Before) {
		t.Errorf("p95 MDE %v (%v ms), want a finite MDE ≥ the floor", p95.MDE, p95.MDEValue)
	}
	if len(j.Operations) != 3 {
		t.Fatalf("operations %+v, want 3", j.Operations)
	}
	for _, o := range j.Operations {
		if !o.Judged || o.Remainder || o.Verdict != report.CompareNoDifference || o.Rank != 0 {
			t.Errorf("operation %+v, want judged, no difference", o)
		}
	}
	// Busiest first.
	if j.Operations[0].Operation != "GET /a" || j.Operations[2].Operation != "POST /c" {
		t.Errorf("order %s, %s, %s", j.Operations[0].Operation, j.Operations[1].Operation, j.Operations[2].Operation)
	}
}

// One operation of three twice as slow: DEGRADED, that operation ranked
// first, named in the regressions and the explanation with its figures.
func TestJudgeEvidenceOneOperationRegressed(t *testing.T) {
	cfg := DefaultConfig()
	slow := steady("GET /api/export", 60, 150)
	slow.slower = 2
	e := evidenceOf(t, cfg, steady("GET /a", 300, 80), slow, steady("POST /c", 40, 120))
	j := judgeEvidence(e, true, cfg)
	if j.Verdict != report.VerdictDegraded || !slices.Equal(j.Regressions, []report.FailureReason{report.ReasonLatencyRegression}) {
		t.Fatalf("verdict %v %v, want DEGRADED [LATENCY_REGRESSION]", j.Verdict, j.Regressions)
	}
	if j.Operations[0].Operation != "GET /api/export" || j.Operations[0].Rank != 1 || j.Operations[0].Verdict != report.CompareWorse {
		t.Fatalf("first operation %+v, want GET /api/export ranked 1", j.Operations[0])
	}
	m := impactMetric(j.Operations[0].Metrics, MetricLatencyP95)
	if m.Verdict != report.CompareWorse || math.Abs(m.RelativeChange-1) > 0.05 || !(m.CILow < 1 && m.CIHigh > 1) || m.AdjustedPValue > cfg.Alpha {
		t.Errorf("p95 of the slow operation %+v, want +100 %% inside its interval, significant", m)
	}
	for _, name := range []string{"GET /a", "POST /c"} {
		if o := operation(j, name); o.Verdict != report.CompareNoDifference || o.Rank != 0 {
			t.Errorf("%s: %+v, want no difference", name, o)
		}
	}
	var found bool
	for _, r := range j.RegressionList() {
		if r.Operation == "GET /api/export" && r.Metric == MetricLatencyP95 {
			found = true
		}
	}
	if !found {
		t.Errorf("regressions %+v do not name GET /api/export p95", j.RegressionList())
	}
}

// Traffic moving to a slower operation raises the unit's raw p95 but no
// operation changed: the stratified tests see no regression.
func TestJudgeEvidenceMixShiftIsNotARegression(t *testing.T) {
	cfg := DefaultConfig()
	fast := opTraffic{name: "GET /fast", perMinute: [2]int{400, 200}, median: 20, sigma: 0.3}
	slow := opTraffic{name: "GET /slow", perMinute: [2]int{50, 250}, median: 400, sigma: 0.3}
	e := evidenceOf(t, cfg, fast, slow)
	before, after := e.Windows()
	if after.P95Ms < 1.3*before.P95Ms {
		t.Fatalf("the raw p95 should rise with the mix: %v → %v", before.P95Ms, after.P95Ms)
	}
	j := judgeEvidence(e, true, cfg)
	if j.Verdict != report.VerdictNoChange {
		t.Fatalf("verdict %v %+v, want NO_CHANGE (the mix moved, no operation did)", j.Verdict, j.Metrics)
	}
	if m := impactMetric(j.Metrics, MetricLatencyP95); math.Abs(m.RelativeChange) > 0.02 {
		t.Errorf("unit p95 at the before window's mix changed %v, want ~0", m.RelativeChange)
	}
}

// Errors four times as frequent at a low base (0.2 % → 0.8 %): DEGRADED
// for the error rate, which the old +1 point threshold silenced.
func TestJudgeEvidenceLowBaseErrorRate(t *testing.T) {
	cfg := DefaultConfig()
	op := steady("GET /a", 600, 80)
	op.errorsPerMinute = [2]float64{1.2, 4.8}
	j := judgeEvidence(evidenceOf(t, cfg, op), true, cfg)
	if j.Verdict != report.VerdictDegraded || !slices.Equal(j.Regressions, []report.FailureReason{report.ReasonErrorRateRegression}) {
		t.Fatalf("verdict %v %v, want DEGRADED [ERROR_RATE_REGRESSION]", j.Verdict, j.Regressions)
	}
	m := impactMetric(j.Metrics, MetricErrorRate)
	if math.Abs(m.Before-0.002) > 1e-4 || math.Abs(m.After-0.008) > 1e-4 || math.Abs(m.RelativeChange-3) > 0.01 || !(m.CILow > 1.5 && m.CIHigh < 6) {
		t.Errorf("error rate %+v, want 0.2 %% → 0.8 %%, ×4 with an interval around it", m)
	}
	if !strings.Contains(Explain(report.Impact{Verdict: j.Verdict, Metrics: j.Metrics, Operations: j.Operations,
		Before: report.Window{Requests: 18000}, After: report.Window{Requests: 18000}}, cfg), "error rate 0.20 % → 0.80 % (×4.0") {
		t.Errorf("explanation does not state the error rate")
	}
}

// A change smaller than the floor, beyond doubt at a large volume, is not a
// regression: the interval rules out a 5 % rise.
func TestJudgeEvidenceBelowTheFloor(t *testing.T) {
	cfg := DefaultConfig()
	op := steady("GET /a", 6000, 80)
	op.slower = 1.02
	j := judgeEvidence(evidenceOf(t, cfg, op), true, cfg)
	m := impactMetric(j.Metrics, MetricLatencyP95)
	if m.AdjustedPValue > cfg.Alpha || m.CIHigh >= cfg.LatencyFloor {
		t.Fatalf("p95 %+v: want significant with an interval below +5 %%", m)
	}
	if j.Verdict != report.VerdictNoChange {
		t.Errorf("verdict %v, want NO_CHANGE: +2 %% is below the floor", j.Verdict)
	}
	cfg.LatencyFloor = 0.01
	if j := judgeEvidence(evidenceOf(t, cfg, op), true, cfg); j.Verdict != report.VerdictDegraded {
		t.Errorf("floor 1 %%: verdict %v, want DEGRADED", j.Verdict)
	}
}

func TestJudgeEvidenceImproved(t *testing.T) {
	cfg := DefaultConfig()
	op := steady("GET /a", 300, 80)
	op.slower = 0.7
	j := judgeEvidence(evidenceOf(t, cfg, op), true, cfg)
	if j.Verdict != report.VerdictImproved || len(j.Regressions) != 0 {
		t.Fatalf("verdict %v %v, want IMPROVED", j.Verdict, j.Regressions)
	}
	if m := impactMetric(j.Metrics, MetricLatencyP95); m.Verdict != report.CompareBetter || m.Z >= 0 || math.Abs(m.RelativeChange+0.3) > 0.03 {
		t.Errorf("p95 %+v, want BETTER by 30 %%", m)
	}
}

func TestJudgeEvidenceInsufficientAndPending(t *testing.T) {
	cfg := DefaultConfig()
	op := opTraffic{name: "GET /a", perMinute: [2]int{1, 3}, median: 80, sigma: 0.4} // 30 vs 90 requests
	j := judgeEvidence(evidenceOf(t, cfg, op), true, cfg)
	if j.Verdict != report.VerdictInsufficientData || len(j.Regressions) != 0 {
		t.Fatalf("verdict %v, want INSUFFICIENT_DATA", j.Verdict)
	}
	for _, m := range j.Metrics {
		if m.Test != TestNotRun || m.Verdict != report.CompareInsufficientData {
			t.Errorf("%s tested on insufficient data: %+v", m.Metric, m)
		}
	}
	if j.RequestsNeeded < 1000 || j.RequestsNeeded > 100000 {
		t.Errorf("requests needed %v, want thousands", j.RequestsNeeded)
	}
	slow := steady("GET /a", 300, 80)
	slow.slower = 2
	if j := judgeEvidence(evidenceOf(t, cfg, slow), false, cfg); j.Verdict != report.VerdictPending || len(j.Regressions) != 0 ||
		impactMetric(j.Metrics, MetricLatencyP95).Verdict != report.CompareWorse {
		t.Errorf("open window: verdict %v %v, p95 %+v; want PENDING with the finding so far", j.Verdict, j.Regressions, impactMetric(j.Metrics, MetricLatencyP95))
	}
}

// Operations with too little traffic pool into the remainder, which counts
// in the unit's tests and is listed last; MaxOperations bounds the
// operations judged one by one.
func TestJudgeEvidenceRemainderAndBound(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxOperations = 2
	ops := []opTraffic{steady("GET /a", 300, 80), steady("GET /b", 200, 80), steady("GET /c", 100, 80),
		steady("GET /rare1", 1, 80), steady("GET /rare2", 1, 80)}
	e := evidenceOf(t, cfg, ops...)
	if len(e.Strata) != 3 || !e.Strata[2].Remainder || e.Strata[2].Operations != 3 {
		t.Fatalf("strata %+v, want /a, /b and a remainder of 3", e.Strata)
	}
	j := judgeEvidence(e, true, cfg)
	last := j.Operations[len(j.Operations)-1]
	if !last.Remainder || last.Operations != 3 || !last.Judged || last.BeforeRequests != 30*(100+1+1) {
		t.Errorf("remainder %+v", last)
	}
	// A regression inside the remainder is found and named as such.
	ops[2].slower = 3
	j = judgeEvidence(evidenceOf(t, cfg, ops...), true, cfg)
	if j.Verdict != report.VerdictDegraded || !j.Operations[0].Remainder || j.Operations[0].Rank != 1 {
		t.Fatalf("verdict %v, first %+v; want DEGRADED in the remainder", j.Verdict, j.Operations[0])
	}
	im := report.Impact{Verdict: j.Verdict, Metrics: j.Metrics, Operations: j.Operations,
		Before: report.Window{Requests: 12060}, After: report.Window{Requests: 12060}}
	if s := Explain(im, cfg); !strings.Contains(s, "of the 3 other operations") {
		t.Errorf("explanation %q does not name the remainder", s)
	}
}

func TestExplain(t *testing.T) {
	cfg := DefaultConfig()
	slow := steady("GET /api/export", 60, 310)
	slow.slower = 2
	ops := []opTraffic{slow}
	for _, n := range []string{"GET /a", "GET /b", "GET /c"} {
		ops = append(ops, steady(n, 100, 50))
	}
	j := judgeEvidence(evidenceOf(t, cfg, ops...), true, cfg)
	tl := NewTimeline([]Row{row("d1", "shop", "2", "1", time.Hour)}, cfg)
	it := tl.Items()[0]
	e := evidenceOf(t, cfg, ops...)
	before, after := e.Windows()
	im := tl.Impact(it, j, before, after)
	s := im.Explanation
	for _, want := range []string{"DEGRADED: p95 of GET /api/export ", "(+10", "%, [+", "1 800 vs 1 800 requests", "; other 3 operations within ±"} {
		if !strings.Contains(s, want) {
			t.Errorf("explanation %q lacks %q", s, want)
		}
	}
	if im.Deployment.Explanation != s || len(im.Deployment.Regressions) == 0 || im.Deployment.Regressions[0].Operation != "GET /api/export" {
		t.Errorf("deployment carries %q, regressions %+v", im.Deployment.Explanation, im.Deployment.Regressions)
	}
	if !im.Deployment.ChangeFailure || !slices.Equal(im.Deployment.FailureReasons, []report.FailureReason{report.ReasonLatencyRegression}) {
		t.Errorf("deployment %+v: want a change failure for latency", im.Deployment)
	}
	if im.LatencyTest.Name != TestSlowShare || !im.LatencyTest.Significant || im.LatencyTest.Direction != DirectionIncrease {
		t.Errorf("latency test %+v", im.LatencyTest)
	}

	// Without explanations (DORA's figures) the impact is the same but
	// for its sentence.
	quiet := NewTimeline([]Row{row("d1", "shop", "2", "1", time.Hour)}, cfg)
	quiet.SkipExplanations()
	bare := quiet.Impact(quiet.Items()[0], j, before, after)
	if bare.Explanation != "" || bare.Deployment.Explanation != "" {
		t.Errorf("explanation %q with SkipExplanations", bare.Explanation)
	}
	bare.Explanation, bare.Deployment.Explanation = im.Explanation, im.Deployment.Explanation
	if !reflect.DeepEqual(bare, im) {
		t.Errorf("impact without explanations\n%+v\ndiffers from\n%+v", bare, im)
	}

	// NO_CHANGE says what would have been seen.
	j = judgeEvidence(evidenceOf(t, cfg, ops[1:]...), true, cfg)
	im = tl.Impact(it, j, before, after)
	for _, want := range []string{"NO_CHANGE: nothing larger than +", "on p95 (", "an error rate of ", "3 operations judged, within ±0 % on p95"} {
		if !strings.Contains(im.Explanation, want) {
			t.Errorf("explanation %q lacks %q", im.Explanation, want)
		}
	}
}

// Latencies that pile up in one bucket per window (a fixed delay): the
// threshold moves below the pile so that slow requests can be counted.
func TestJudgeEvidenceDiscreteLatencies(t *testing.T) {
	cfg := DefaultConfig()
	op := opTraffic{name: "GET /cart", perMinute: [2]int{10, 10}, median: 20, sigma: 0, slower: 3}
	j := judgeEvidence(evidenceOf(t, cfg, op), true, cfg)
	if j.Verdict != report.VerdictDegraded {
		t.Fatalf("verdict %v %+v, want DEGRADED", j.Verdict, j.Metrics)
	}
	if m := impactMetric(j.Metrics, MetricLatencyP95); m.Verdict != report.CompareWorse || math.Abs(m.RelativeChange-2) > 0.1 {
		t.Errorf("p95 %+v, want WORSE by +200 %%", m)
	}
}
