package analysis

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/changelens/changelens/queryapi/report"
)

// series returns n per-minute p95 values base, base+step, ...
func series(n int, base, step float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = base + float64(i)*step
	}
	return out
}

func win(requests, errors, p95 float64, minutes []float64) WindowStats {
	return WindowStats{Requests: requests, Errors: errors, P50Ms: p95 / 2, P90Ms: p95 * 0.9, P95Ms: p95, P99Ms: p95 * 1.2, MinuteP95Ms: minutes}
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol*math.Max(1, math.Abs(b)) }

func TestJudgeInsufficientData(t *testing.T) {
	j, err := Judge(win(49, 0, 100, series(30, 100, 1)), win(1000, 0, 300, series(30, 300, 1)), true, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if j.Verdict != report.VerdictInsufficientData || len(j.Regressions) != 0 {
		t.Errorf("verdict = %v %v, want INSUFFICIENT_DATA", j.Verdict, j.Regressions)
	}
	if j.LatencyTest.Name != TestNotRun || j.ErrorRateTest.Name != TestNotRun {
		t.Errorf("tests run on insufficient data: %+v %+v", j.LatencyTest, j.ErrorRateTest)
	}
	// 50 is enough (the rule is "fewer than 50").
	j, _ = Judge(win(50, 0, 100, series(30, 100, 1)), win(50, 0, 100, series(30, 100, 1)), true, DefaultConfig())
	if j.Verdict != report.VerdictNoChange {
		t.Errorf("50 requests: verdict %v, want NO_CHANGE", j.Verdict)
	}
}

func TestJudgeLatencyRegression(t *testing.T) {
	// Before: minute p95s 100..129 ms; after: 200..229 ms. Every after minute
	// exceeds every before minute, so U = 30·30 = 900 and, with no ties and
	// n < 50, the exact one-sided p = 1 / C(60, 30).
	before := win(3000, 30, 120, series(30, 100, 1))
	after := win(3000, 30, 240, series(30, 200, 1))
	j, err := Judge(before, after, true, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if j.Verdict != report.VerdictDegraded || !slices.Equal(j.Regressions, []report.FailureReason{report.ReasonLatencyRegression}) {
		t.Fatalf("verdict = %v %v, want DEGRADED [LATENCY_REGRESSION]", j.Verdict, j.Regressions)
	}
	c6030 := 1.0
	for i := 0; i < 30; i++ { // C(60,30) = Π (31+i)/(1+i)
		c6030 *= float64(31+i) / float64(1+i)
	}
	lt := j.LatencyTest
	if lt.Name != TestMannWhitney || lt.Statistic != 900 || lt.Direction != DirectionIncrease || !lt.Significant || !near(lt.PValue, 1/c6030, 1e-9) {
		t.Errorf("latency test = %+v, want U=900 p=%g increase", lt, 1/c6030)
	}
	if j.LatencyRatio != 2 {
		t.Errorf("ratio = %v, want 2", j.LatencyRatio)
	}
	if j.ErrorRateTest.Significant || j.ErrorRateDelta != 0 {
		t.Errorf("error test = %+v, delta %v", j.ErrorRateTest, j.ErrorRateDelta)
	}

	// The mirror image is an improvement.
	j, _ = Judge(after, before, true, DefaultConfig())
	if j.Verdict != report.VerdictImproved || len(j.Regressions) != 0 || j.LatencyTest.Direction != DirectionDecrease || j.LatencyTest.Statistic != 0 {
		t.Errorf("mirror: %v %v %+v, want IMPROVED", j.Verdict, j.Regressions, j.LatencyTest)
	}

	// Significant, but below the ratio: after p95 = 1.19 × before.
	j, _ = Judge(before, win(3000, 30, 120*1.19, series(30, 200, 1)), true, DefaultConfig())
	if j.Verdict != report.VerdictNoChange {
		t.Errorf("ratio 1.19: verdict %v, want NO_CHANGE", j.Verdict)
	}
	// Exactly 1.2 counts (≥).
	j, _ = Judge(before, win(3000, 30, 144, series(30, 200, 1)), true, DefaultConfig())
	if j.Verdict != report.VerdictDegraded {
		t.Errorf("ratio 1.2: verdict %v, want DEGRADED", j.Verdict)
	}
	// Above the ratio but not significant: the minute series overlap
	// completely (identical), U = 450 = n²/2.
	j, _ = Judge(win(3000, 30, 100, series(30, 100, 1)), win(3000, 30, 300, series(30, 100, 1)), true, DefaultConfig())
	if j.Verdict != report.VerdictNoChange || j.LatencyTest.Significant || j.LatencyTest.Statistic != 450 {
		t.Errorf("not significant: %v %+v", j.Verdict, j.LatencyTest)
	}
}

func TestJudgeErrorRateZ(t *testing.T) {
	// 10/1000 before, 50/1000 after. Pooled p = 60/2000 = 0.03,
	// z = (0.05 − 0.01) / sqrt(0.03·0.97·(1/1000 + 1/1000)) = 5.2432…
	flat := series(30, 100, 0.5)
	j, err := Judge(win(1000, 10, 100, flat), win(1000, 50, 100, flat), true, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	wantZ := 0.04 / math.Sqrt(0.03*0.97*0.002)
	et := j.ErrorRateTest
	if j.Verdict != report.VerdictDegraded || !slices.Equal(j.Regressions, []report.FailureReason{report.ReasonErrorRateRegression}) {
		t.Fatalf("verdict = %v %v", j.Verdict, j.Regressions)
	}
	// One-sided p = P(Z ≥ z) = erfc(z/√2)/2.
	if et.Name != TestZ || !near(et.Statistic, wantZ, 1e-12) || !near(et.PValue, math.Erfc(wantZ/math.Sqrt2)/2, 1e-9) || et.Direction != DirectionIncrease || !et.Significant {
		t.Errorf("error test = %+v, want z = %v", et, wantZ)
	}
	if !near(j.ErrorRateDelta, 0.04, 1e-12) {
		t.Errorf("delta = %v", j.ErrorRateDelta)
	}
	// Significant and 1.5×, but the absolute rise is below 0.01:
	// 1000/100000 → 1900/100000 is +0.009.
	j, _ = Judge(win(100000, 1000, 100, flat), win(100000, 1900, 100, flat), true, DefaultConfig())
	if j.Verdict != report.VerdictNoChange || !j.ErrorRateTest.Significant {
		t.Errorf("abs delta 0.009: %v %+v", j.Verdict, j.ErrorRateTest)
	}
	// +0.01 absolute but only 1.4×: 25 % → 35 %.
	j, _ = Judge(win(1000, 250, 100, flat), win(1000, 350, 100, flat), true, DefaultConfig())
	if j.Verdict != report.VerdictNoChange {
		t.Errorf("ratio 1.4: %v", j.Verdict)
	}
	// Both a latency and an error regression: both reasons, latency first.
	j, _ = Judge(win(1000, 10, 100, series(30, 100, 1)), win(1000, 50, 300, series(30, 300, 1)), true, DefaultConfig())
	if !slices.Equal(j.Regressions, []report.FailureReason{report.ReasonLatencyRegression, report.ReasonErrorRateRegression}) {
		t.Errorf("both: %v", j.Regressions)
	}
}

func TestJudgeErrorRateFisher(t *testing.T) {
	// 0/60 before, k/60 after: the smallest expected cell is 60·k/120 < 5, so
	// Fisher's exact test. With all k errors after, the one-sided p is
	// P(X = k) = C(60, k) / C(120, k) = Π_{i<k} (60 − i)/(120 − i).
	flat := series(30, 100, 0.5)
	p := func(k int) float64 {
		v := 1.0
		for i := 0; i < k; i++ {
			v *= float64(60-i) / float64(120-i)
		}
		return v
	}
	// k = 6: p = 0.0137… > 0.01: not significant.
	j, err := Judge(win(60, 0, 100, flat), win(60, 6, 100, flat), true, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if j.ErrorRateTest.Name != TestFisher || !near(j.ErrorRateTest.PValue, p(6), 1e-9) || j.ErrorRateTest.Significant || j.Verdict != report.VerdictNoChange {
		t.Errorf("k=6: %v %+v, want p = %v", j.Verdict, j.ErrorRateTest, p(6))
	}
	// Odds ratio with the ½ correction: (6.5·60.5)/(54.5·0.5).
	if !near(j.ErrorRateTest.Statistic, 6.5*60.5/(54.5*0.5), 1e-12) {
		t.Errorf("odds ratio = %v", j.ErrorRateTest.Statistic)
	}
	// k = 7: p = 0.0063… ≤ 0.01: an error-rate regression.
	j, _ = Judge(win(60, 0, 100, flat), win(60, 7, 100, flat), true, DefaultConfig())
	if j.ErrorRateTest.Name != TestFisher || !near(j.ErrorRateTest.PValue, p(7), 1e-9) || j.Verdict != report.VerdictDegraded {
		t.Errorf("k=7: %v %+v, want p = %v", j.Verdict, j.ErrorRateTest, p(7))
	}
}

func TestJudgePending(t *testing.T) {
	j, err := Judge(win(3000, 30, 100, series(30, 100, 1)), win(3000, 30, 300, series(10, 300, 1)), false, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if j.Verdict != report.VerdictPending || len(j.Regressions) != 0 || !j.LatencyTest.Significant {
		t.Errorf("pending: %v %v %+v", j.Verdict, j.Regressions, j.LatencyTest)
	}
	// No after data at all yet.
	j, _ = Judge(win(3000, 30, 100, series(30, 100, 1)), WindowStats{}, false, DefaultConfig())
	if j.Verdict != report.VerdictPending {
		t.Errorf("pending without data: %v", j.Verdict)
	}
}

func TestAnalyze(t *testing.T) {
	cfg := DefaultConfig()
	tl := NewTimeline([]Row{
		explicit(row("d1", "svc", "v2", "v1", time.Hour), 0),   // degraded, fixed forward by d2
		explicit(row("d2", "svc", "v3", "v2", 2*time.Hour), 0), // rolled back by d3
		row("d3", "svc", "v2", "v3", 2*time.Hour+45*time.Minute),
		row("d4", "svc", "v4", "v2", 5*time.Hour), // pending
		{ID: "f", Service: "svc", Environment: "production", Version: "v9", Failed: true, Source: report.SourceExplicit,
			DeployTime: at(4 * time.Hour)},
	}, cfg)
	now := at(5*time.Hour + 10*time.Minute)
	good := win(3000, 30, 100, series(30, 100, 1))
	bad := win(3000, 30, 300, series(30, 300, 1))
	get := func(id string) *Item { it, _ := tl.Get(id); return it }

	im, err := tl.Analyze(get("d1"), good, bad, now)
	if err != nil {
		t.Fatal(err)
	}
	d := im.Deployment
	if d.Verdict != report.VerdictDegraded || !d.ChangeFailure || !slices.Equal(d.FailureReasons, []report.FailureReason{report.ReasonLatencyRegression}) ||
		!d.RestoreTime.Equal(at(2*time.Hour)) || d.TimeToRestore != time.Hour || !im.WindowsComplete {
		t.Errorf("d1 = %+v", d)
	}
	if !im.Before.Start.Equal(at(30*time.Minute)) || !im.After.End.Equal(at(time.Hour+32*time.Minute)) || im.After.ErrorRate != 0.01 {
		t.Errorf("d1 windows = %+v / %+v", im.Before, im.After)
	}

	im, _ = tl.Analyze(get("d2"), good, good, now)
	d = im.Deployment
	if d.Verdict != report.VerdictNoChange || !d.ChangeFailure || !slices.Equal(d.FailureReasons, []report.FailureReason{report.ReasonRolledBack}) ||
		d.TimeToRestore != 45*time.Minute || d.Rollback {
		t.Errorf("d2 = %+v", d)
	}
	// Rolled back and degraded: both reasons, ROLLED_BACK first.
	im, _ = tl.Analyze(get("d2"), good, win(3000, 300, 100, series(30, 100, 1)), now)
	if !slices.Equal(im.Deployment.FailureReasons, []report.FailureReason{report.ReasonRolledBack, report.ReasonErrorRateRegression}) ||
		!slices.Equal(im.Reasons, im.Deployment.FailureReasons) {
		t.Errorf("d2 reasons = %v", im.Deployment.FailureReasons)
	}

	im, _ = tl.Analyze(get("d3"), good, good, now)
	if d := im.Deployment; !d.Rollback || d.ChangeFailure || !d.RestoreTime.IsZero() {
		t.Errorf("d3 = %+v", d)
	}
	// Degraded d3 is restored by the next deployment, d4 (2h15m later).
	im, _ = tl.Analyze(get("d3"), good, bad, now)
	if d := im.Deployment; !d.ChangeFailure || !d.RestoreTime.Equal(at(5*time.Hour)) || d.TimeToRestore != 2*time.Hour+15*time.Minute {
		t.Errorf("d3 degraded = %+v", d)
	}

	// Pending: after window [5:02, 5:32) is open at 5:10; not a failure even
	// if the data so far look bad.
	im, _ = tl.Analyze(get("d4"), good, bad, now)
	if d := im.Deployment; d.Verdict != report.VerdictPending || d.ChangeFailure || im.WindowsComplete {
		t.Errorf("d4 = %+v", d)
	}
	im, _ = tl.Analyze(get("d4"), good, bad, at(5*time.Hour+32*time.Minute))
	if d := im.Deployment; d.Verdict != report.VerdictDegraded || !d.ChangeFailure || !d.RestoreTime.IsZero() {
		t.Errorf("d4 closed = %+v", d)
	}

	// A failed attempt is analysed but never a change failure.
	im, _ = tl.Analyze(get("f"), good, bad, now)
	if d := im.Deployment; d.Verdict != report.VerdictDegraded || d.ChangeFailure || len(d.FailureReasons) != 0 || !d.Failed {
		t.Errorf("failed attempt = %+v", d)
	}
}

func TestQuickJudgeAgreesWithJudge(t *testing.T) {
	cfg := DefaultConfig()
	rng := rand.New(rand.NewPCG(1, 2))
	skipped := 0
	for i := 0; i < 600; i++ {
		mk := func(scale float64) WindowStats {
			n := 1 + rng.IntN(35)
			ms := make([]float64, n)
			for k := range ms {
				ms[k] = scale * (80 + 40*rng.Float64())
			}
			req := float64(rng.IntN(3000))
			return WindowStats{Requests: req, Errors: math.Floor(req * rng.Float64() * 0.1), P95Ms: scale * (90 + 20*rng.Float64()), MinuteP95Ms: ms}
		}
		// Ratios around the 1.2 threshold in both directions, and exactly on it.
		before, after := mk(1), mk([]float64{0.7, 0.85, 1, 1.15, 1.25, 1.5}[rng.IntN(6)])
		if i%10 == 0 {
			after.P95Ms = before.P95Ms * cfg.LatencyRatio
		}
		closed := rng.IntN(5) > 0
		full, err := Judge(before, after, closed, cfg)
		if err != nil {
			t.Fatal(err)
		}
		quick, err := QuickJudge(before, after, closed, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if quick.Verdict != full.Verdict || !slices.Equal(quick.Regressions, full.Regressions) {
			t.Fatalf("case %d: quick %v %v, full %v %v", i, quick.Verdict, quick.Regressions, full.Verdict, full.Regressions)
		}
		if !full.Complete {
			t.Fatal("Judge must be complete")
		}
		if !quick.Complete {
			skipped++
			if quick.LatencyTest.Name != TestNotRun {
				t.Fatalf("skipped test reported: %+v", quick.LatencyTest)
			}
		}
	}
	if skipped == 0 || skipped == 600 {
		t.Errorf("skipped %d of 600: the shortcut is never or always taken", skipped)
	}
}
