package analysis

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/changelens/changelens/internal/stats"
	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/testkit/statstest"
)

// perMinute is minutes minutes of v each.
func perMinute(minutes int, v float64) []float64 {
	out := make([]float64, minutes)
	for i := range out {
		out[i] = v
	}
	return out
}

// spread is a window of minutes minutes holding k occurrences, one in each
// even minute (0, 2, 4, …) in turn: a kind scattered over the window.
func spread(minutes, k int) []float64 {
	out := make([]float64, minutes)
	for i := range k {
		out[(2*i)%minutes]++
	}
	return out
}

func findingOf(t *testing.T, j ErrorKindJudgement, kind string) ErrorKindFinding {
	t.Helper()
	for _, f := range j.Kinds {
		if f.Kind == kind {
			return f
		}
	}
	t.Fatalf("kind %q not in the judgement", kind)
	return ErrorKindFinding{}
}

// The exact conditional rate test's p-values for small counts, by hand:
// given N occurrences, those after are Binomial(N, π), π the after
// window's share of the requests; a kind absent before has p = π^x.
func TestErrorKindsVectors(t *testing.T) {
	cfg := DefaultConfig()
	equal := func(kinds ...ErrorKindCounts) ErrorKindEvidence {
		return ErrorKindEvidence{BeforeRequests: perMinute(30, 600), AfterRequests: perMinute(30, 600), Kinds: kinds}
	}
	tests := []struct {
		name     string
		in       ErrorKindEvidence
		kind     string
		p, adj   float64
		verdict  report.CompareVerdict
		isNew    bool
		degraded bool
		family   int
	}{
		// 0 of 18 000 before, 13 of 18 000 after: p = 2^−13.
		{name: "new, 13 after", in: equal(ErrorKindCounts{Kind: "NPE", Before: perMinute(30, 0), After: spread(30, 13)}),
			kind: "NPE", p: 1.220703125e-4, adj: 1.220703125e-4, verdict: report.CompareWorse, isNew: true, degraded: true, family: 1},
		// 0 in an hour's baseline and 3 after is weak evidence: p = 1/8,
		// which could never reach α: not tested (Tarone).
		{name: "new, 3 after", in: equal(ErrorKindCounts{Kind: "NPE", Before: perMinute(30, 0), After: spread(30, 3)}),
			kind: "NPE", p: 0.125, adj: 1, verdict: report.CompareInsufficientData, isNew: true, family: 0},
		// A before window cut to 10 minutes: π = 0.75, p = 0.75^10.
		{name: "new, short baseline", in: ErrorKindEvidence{BeforeRequests: perMinute(10, 600), AfterRequests: perMinute(30, 600),
			Kinds: []ErrorKindCounts{{Kind: "NPE", Before: perMinute(10, 0), After: spread(30, 10)}}},
			kind: "NPE", p: 0.05631351470947265625, adj: 1, verdict: report.CompareInsufficientData, isNew: true, family: 0},
		// 1 before, 14 after: p = P(X ≥ 14 | N = 15, ½) = 16/2^15; it rose
		// (×14), which is listed but not NEW_ERROR_KIND.
		{name: "rose, 1 → 14", in: equal(ErrorKindCounts{Kind: "Timeout", Before: spread(30, 1), After: spread(30, 14)}),
			kind: "Timeout", p: 4.8828125e-4, adj: 4.8828125e-4, verdict: report.CompareWorse, family: 1},
		// Seen in the history: known, so a rise, not new.
		{name: "seen before, in the history", in: ErrorKindEvidence{BeforeRequests: perMinute(30, 600), AfterRequests: perMinute(30, 600),
			HistoryRequests: 6e6, Kinds: []ErrorKindCounts{{Kind: "NPE", Before: perMinute(30, 0), After: spread(30, 13), History: 2}}},
			kind: "NPE", p: 1.220703125e-4, adj: 1.220703125e-4, verdict: report.CompareWorse, family: 1},
		// Not seen in the history either: new.
		{name: "history read, never seen", in: ErrorKindEvidence{BeforeRequests: perMinute(30, 600), AfterRequests: perMinute(30, 600),
			HistoryRequests: 6e6, Kinds: []ErrorKindCounts{{Kind: "NPE", Before: perMinute(30, 0), After: spread(30, 13)}}},
			kind: "NPE", p: 1.220703125e-4, adj: 1.220703125e-4, verdict: report.CompareWorse, isNew: true, degraded: true, family: 1},
		// The fold bucket is never new, never tested.
		{name: "folded", in: equal(ErrorKindCounts{Kind: "other", Folded: true, Before: perMinute(30, 0), After: spread(30, 20)}),
			kind: "other", p: 1, adj: 1, verdict: report.CompareInsufficientData, family: 0},
		// 30 occurrences in one minute: a burst, deflated to about one.
		{name: "burst", in: equal(ErrorKindCounts{Kind: "Reset", Before: perMinute(30, 0), After: append(perMinute(29, 0), 30)}),
			kind: "Reset", verdict: report.CompareNoDifference, isNew: true, family: 1, p: math.NaN(), adj: math.NaN()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j := JudgeErrorKinds(tc.in, cfg)
			f := findingOf(t, j, tc.kind)
			if !math.IsNaN(tc.p) {
				statstest.AssertClose(t, "p", f.PValue, tc.p, 1e-9)
				statstest.AssertClose(t, "adjusted p", f.AdjustedPValue, tc.adj, 1e-9)
				if f.Phi != 1 {
					t.Errorf("φ = %v, want 1 (occurrences scattered)", f.Phi)
				}
			}
			if f.Verdict != tc.verdict || f.New != tc.isNew || j.NewErrorKind != tc.degraded || j.Family != tc.family {
				t.Errorf("verdict %v new %v NEW_ERROR_KIND %v family %d, want %v %v %v %d", f.Verdict, f.New, j.NewErrorKind, j.Family,
					tc.verdict, tc.isNew, tc.degraded, tc.family)
			}
		})
	}
}

func TestErrorKindsBurst(t *testing.T) {
	in := ErrorKindEvidence{BeforeRequests: perMinute(30, 600), AfterRequests: perMinute(30, 600),
		Kinds: []ErrorKindCounts{{Kind: "Reset", Before: perMinute(30, 0), After: append(perMinute(29, 0), 30)}}}
	j := JudgeErrorKinds(in, DefaultConfig())
	f := j.Kinds[0]
	// Undeflated, 30 occurrences against none would give p = 2^−30.
	if f.Phi < 15 || f.PValue < 0.1 || f.Verdict == report.CompareWorse || j.NewErrorKind {
		t.Errorf("a burst in one minute: φ %v, p %v, verdict %v", f.Phi, f.PValue, f.Verdict)
	}
	// Two minutes of 15 each: the same.
	in.Kinds[0].After = append(perMinute(28, 0), 15, 15)
	if j := JudgeErrorKinds(in, DefaultConfig()); j.NewErrorKind || j.Kinds[0].Phi < 10 {
		t.Errorf("a burst over two minutes: φ %v, NEW_ERROR_KIND %v", j.Kinds[0].Phi, j.NewErrorKind)
	}
}

// Tarone: kinds seen once or twice could never be significant and do not
// dilute the level. A new kind with 9 occurrences (p = 2^−9 ≈ 0.002) beside
// 20 kinds seen once is NEW; Bonferroni over all 21 would have needed
// 0.005/21.
func TestErrorKindsTarone(t *testing.T) {
	in := ErrorKindEvidence{BeforeRequests: perMinute(30, 600), AfterRequests: perMinute(30, 600)}
	in.Kinds = append(in.Kinds, ErrorKindCounts{Kind: "NPE", Before: perMinute(30, 0), After: spread(30, 9)})
	for i := range 20 {
		c := ErrorKindCounts{Kind: "rare" + string(rune('a'+i)), Before: perMinute(30, 0), After: perMinute(30, 0)}
		if i%2 == 0 {
			c.Before[i] = 1
		} else {
			c.After[i] = 1
		}
		in.Kinds = append(in.Kinds, c)
	}
	j := JudgeErrorKinds(in, DefaultConfig())
	f := findingOf(t, j, "NPE")
	statstest.AssertClose(t, "p", f.PValue, 0.001953125, 1e-12)
	statstest.AssertClose(t, "adjusted p", f.AdjustedPValue, 0.001953125, 1e-12)
	if j.Family != 1 || !j.NewErrorKind || j.Kinds[0].Kind != "NPE" {
		t.Errorf("family %d, NEW_ERROR_KIND %v, first %q", j.Family, j.NewErrorKind, j.Kinds[0].Kind)
	}
	// The ten rare kinds absent before are new but untested.
	untested := 0
	for _, f := range j.Kinds {
		if f.New && f.Kind != "NPE" && f.Verdict == report.CompareInsufficientData && f.After == 1 {
			untested++
		}
	}
	if untested != 10 {
		t.Errorf("%d rare new kinds untested, want 10", untested)
	}

	for _, tc := range []struct {
		pmin  []float64
		alpha float64
		k     int
	}{
		{nil, 0.005, 1},
		{[]float64{1e-4}, 0.005, 1},
		{[]float64{1e-4, 1e-3, 0.5, 0.25}, 0.005, 2},
		{[]float64{1e-4, 1e-4, 1e-4}, 0.005, 3},
		{[]float64{0.5, 0.5}, 0.005, 1},
	} {
		cand := make([]int, len(tc.pmin))
		for i := range cand {
			cand[i] = i
		}
		if k := tarone(cand, tc.pmin, tc.alpha); k != tc.k {
			t.Errorf("tarone(%v) = %d, want %d", tc.pmin, k, tc.k)
		}
	}
}

// Holm over the family: 13 and 10 occurrences absent before, p = 2^−13 and
// 2^−10; K = 2 (both could reach 0.0025); adjusted 2·2^−13 and 2^−10.
func TestErrorKindsHolm(t *testing.T) {
	in := ErrorKindEvidence{BeforeRequests: perMinute(30, 600), AfterRequests: perMinute(30, 600), Kinds: []ErrorKindCounts{
		{Kind: "B", Before: perMinute(30, 0), After: spread(30, 10)},
		{Kind: "A", Before: perMinute(30, 0), After: spread(30, 13)},
	}}
	j := JudgeErrorKinds(in, DefaultConfig())
	if j.Family != 2 || j.Kinds[0].Kind != "A" || j.Kinds[1].Kind != "B" {
		t.Fatalf("family %d, order %q %q", j.Family, j.Kinds[0].Kind, j.Kinds[1].Kind)
	}
	statstest.AssertClose(t, "A", j.Kinds[0].AdjustedPValue, 2*1.220703125e-4, 1e-12)
	statstest.AssertClose(t, "B", j.Kinds[1].AdjustedPValue, 9.765625e-4, 1e-12)
	if j.Kinds[0].Verdict != report.CompareWorse || j.Kinds[1].Verdict != report.CompareWorse {
		t.Errorf("verdicts %v %v", j.Kinds[0].Verdict, j.Kinds[1].Verdict)
	}
}

// The floor: 20 new occurrences among 1.8 million requests a window are
// significant (p = 2^−20) but at 0.0011 %, their interval rules out the
// 0.05 % floor: listed, not NEW_ERROR_KIND. The minute guard likewise.
func TestErrorKindsFloorAndMinutes(t *testing.T) {
	in := ErrorKindEvidence{BeforeRequests: perMinute(30, 60000), AfterRequests: perMinute(30, 60000),
		Kinds: []ErrorKindCounts{{Kind: "NPE", Before: perMinute(30, 0), After: spread(30, 20)}}}
	j := JudgeErrorKinds(in, DefaultConfig())
	f := j.Kinds[0]
	statstest.AssertClose(t, "p", f.PValue, math.Pow(2, -20), 1e-12)
	if f.Verdict != report.CompareNoDifference || j.NewErrorKind || !(f.RateHigh < 0.0005) {
		t.Errorf("below the floor: verdict %v, rate interval [%v, %v]", f.Verdict, f.RateLow, f.RateHigh)
	}
	cfg := DefaultConfig()
	cfg.ErrorKindFloor = 0
	if j := JudgeErrorKinds(in, cfg); !j.NewErrorKind {
		t.Error("floor 0: want NEW_ERROR_KIND")
	}
	cfg.ErrorKindMinMinutes = 16 // the kind is in 15 distinct minutes
	if j := JudgeErrorKinds(in, cfg); j.NewErrorKind || j.Kinds[0].Minutes != 15 {
		t.Errorf("in %d minutes, 16 needed: NEW_ERROR_KIND %v", j.Kinds[0].Minutes, j.NewErrorKind)
	}
}

// The intervals: Garwood's for the after rate, the exact rate ratio's
// (R's poisson.test) — against 30-digit mpmath quantiles.
func TestErrorKindsIntervals(t *testing.T) {
	lo, hi := poissonRateCI(13, 1, 0.95)
	statstest.AssertClose(t, "lo", lo, 6.92195249100380213, 1e-9)
	statstest.AssertClose(t, "hi", hi, 22.2303959181588780, 1e-9)
	lo, hi = poissonRateCI(0, 1, 0.95)
	statstest.AssertClose(t, "hi of 0", hi, 3.68887945411393630, 1e-9)
	if lo != 0 {
		t.Errorf("lo of 0 = %v", lo)
	}
	in := ErrorKindEvidence{BeforeRequests: perMinute(30, 600), AfterRequests: perMinute(30, 600),
		Kinds: []ErrorKindCounts{{Kind: "NPE", Before: perMinute(30, 0), After: spread(30, 13)}}}
	f := JudgeErrorKinds(in, DefaultConfig()).Kinds[0]
	statstest.AssertClose(t, "ratio lo", f.RatioLow, 3.04772038903747138, 1e-9)
	if !math.IsInf(f.RatioHigh, 1) || !math.IsInf(f.RateRatio, 1) {
		t.Errorf("ratio %v, upper %v: want +Inf", f.RateRatio, f.RatioHigh)
	}
	statstest.AssertClose(t, "rate", f.AfterRate, 13.0/18000, 1e-15)
	statstest.AssertClose(t, "rate hi", f.RateHigh, 22.2303959181588780/18000, 1e-9)
}

// The stated MDE: at 18 000 requests a window and a family of one (two with
// the new kind), 9 occurrences reach 0.0025 (2^−9 ≈ 0.00195); the MDE is
// the rate whose Poisson count reaches 9 with the power the verdict needs.
func TestErrorKindsMDE(t *testing.T) {
	cfg := DefaultConfig()
	mde := newKindMDE(18000, 18000, 2, cfg)
	p := 1 - distuv.Poisson{Lambda: mde * 18000}.CDF(8)
	statstest.AssertClose(t, "power", p, mdePower(cfg.Power), 1e-6)
	if mde < cfg.ErrorKindFloor || mde > 0.001 {
		t.Errorf("MDE %v", mde)
	}
	// At 1.8 million requests a window the floor is the limit.
	if m := newKindMDE(1.8e6, 1.8e6, 2, cfg); m != cfg.ErrorKindFloor {
		t.Errorf("MDE at high traffic %v, want the floor", m)
	}
	// A before window a tenth of the after window: 10 occurrences give
	// (10/11)^10 = 0.39; the count needed is large but finite.
	if m := newKindMDE(18000, 1800, 2, cfg); math.IsInf(m, 0) || m < 0.003 {
		t.Errorf("MDE with a short baseline %v", m)
	}
}

func TestErrorKindsInsufficient(t *testing.T) {
	in := ErrorKindEvidence{BeforeRequests: perMinute(4, 10), AfterRequests: perMinute(30, 600),
		Kinds: []ErrorKindCounts{{Kind: "NPE", Before: perMinute(4, 0), After: spread(30, 30)}}}
	j := JudgeErrorKinds(in, DefaultConfig())
	if j.Tested || j.NewErrorKind || j.Kinds[0].Verdict != report.CompareInsufficientData || !j.Kinds[0].New || j.Kinds[0].After != 30 {
		t.Errorf("40 requests before: %+v", j)
	}
	if j := JudgeErrorKinds(ErrorKindEvidence{}, DefaultConfig()); j.Tested || len(j.Kinds) != 0 {
		t.Errorf("empty: %+v", j)
	}
}

// The integration test's case: a version that throws a new exception at
// 0.3 % of requests while the unit's error rate stays within noise (its
// known kinds a little lower) — NEW_ERROR_KIND, named with its rate and
// first trace.
func TestErrorKindsExplanation(t *testing.T) {
	first := time.Date(2025, 3, 1, 12, 4, 0, 0, time.UTC)
	in := ErrorKindEvidence{BeforeRequests: perMinute(30, 600), AfterRequests: perMinute(30, 600), Kinds: []ErrorKindCounts{
		{Kind: "HTTP 5xx", Before: spread(30, 60), After: spread(30, 40)},
		{Kind: "java.net.SocketTimeoutException", Before: spread(30, 12), After: spread(30, 11)},
		{Kind: "java.lang.NullPointerException", Before: perMinute(30, 0), After: spread(30, 54),
			FirstTraceID: "4bf92f3577b34da6a3ce929d0e0e4736", FirstSeen: first},
	}}
	j := JudgeErrorKinds(in, DefaultConfig())
	want := "NEW_ERROR_KIND: java.lang.NullPointerException at 0.30 % of requests after (0 in 18 000 before; first trace 4bf92f3577b34da6a3ce929d0e0e4736)."
	if !j.NewErrorKind || j.Explanation != want {
		t.Errorf("explanation\n%s\nwant\n%s", j.Explanation, want)
	}
	f := j.Kinds[0]
	if f.Kind != "java.lang.NullPointerException" || !f.New || !f.FirstSeen.Equal(first) || f.Verdict != report.CompareWorse {
		t.Errorf("first finding %+v", f)
	}
	// The unit's error rate: 72 → 105 errors, which the before/after
	// rule's floor (+0.1 point) is not sure of.
	p, _ := stats.PoissonRateTest(105, 18000, 72, 18000, stats.Greater)
	if p < 0.005/3 {
		t.Errorf("the unit's error rate is significant (p %v): not the case meant", p)
	}

	// With a history and a rise beside it.
	in.HistoryRequests = 6048000
	in.Kinds[1].After = spread(30, 40)
	j = JudgeErrorKinds(in, DefaultConfig())
	want = "NEW_ERROR_KIND: java.lang.NullPointerException at 0.30 % of requests after (0 in 18 000 before and 6 048 000 earlier; first trace 4bf92f3577b34da6a3ce929d0e0e4736); " +
		"error kinds that rose: java.net.SocketTimeoutException 0.067 % → 0.22 % (×3.3, 12 vs 40)."
	if j.Explanation != want {
		t.Errorf("explanation\n%s\nwant\n%s", j.Explanation, want)
	}

	// Nothing new.
	in.Kinds = in.Kinds[:1]
	in.Kinds = append(in.Kinds, ErrorKindCounts{Kind: "rare", Before: perMinute(30, 0), After: spread(30, 2)})
	j = JudgeErrorKinds(in, DefaultConfig())
	if !strings.HasPrefix(j.Explanation, "no new error kind (1 kind absent before seen after, none at a significant rate; one at 0.0") ||
		!strings.HasSuffix(j.Explanation, "of requests would be found with 80 % power; 18 000 vs 18 000 requests).") {
		t.Errorf("explanation %s", j.Explanation)
	}
}

func TestKindRate(t *testing.T) {
	for v, want := range map[float64]string{0.0031: "0.31 %", 0.003: "0.30 %", 4.2e-5: "0.0042 %", 0.012: "1.20 %", 0.25: "25.00 %", 0: "0 %"} {
		if got := kindRate(v); got != want {
			t.Errorf("kindRate(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestEvidenceMinuteRequests(t *testing.T) {
	e := &Evidence{Strata: []Stratum{
		{BeforeMinutes: []MinuteCounts{{Requests: 1}, {Requests: 2}}, AfterMinutes: []MinuteCounts{{Requests: 5}}},
		{BeforeMinutes: []MinuteCounts{{Requests: 10}, {Requests: 20}, {Requests: 30}}, AfterMinutes: []MinuteCounts{{Requests: 7}}},
	}}
	b, a := e.MinuteRequests()
	if len(b) != 3 || b[0] != 11 || b[1] != 22 || b[2] != 30 || len(a) != 1 || a[0] != 12 {
		t.Errorf("before %v, after %v", b, a)
	}
}

// The dispersion's margin: a kind scattered at random (Poisson, 0.6
// occurrences a minute: 0.1 % of 10 requests/s) over 30 minutes, 2000
// seeded windows (PCG(24, 2)). Its raw estimate is 1.3 or more often
// enough to cost power for nothing; less its margin it exceeds 1 rarely.
func TestKindDispersionNoise(t *testing.T) {
	rng := rand.New(rand.NewPCG(24, 2))
	n := perMinute(30, 600)
	const runs = 2000
	raw, deflated := 0, 0
	for range runs {
		x := make([]float64, 30)
		for i := range x {
			x[i] = float64(poissonDraw(rng, 0.6))
		}
		est, _ := dispersionEstimate([2][]float64{nil, x}, [2][]float64{n, n}, DefaultConfig().DispersionLags)
		if est >= 1.3 {
			raw++
		}
		if kindDispersion([2][]float64{nil, x}, [2][]float64{n, n}, DefaultConfig().DispersionLags) > 1 {
			deflated++
		}
	}
	t.Logf("raw estimate ≥ 1.3 in %d of %d windows; less its margin > 1 in %d", raw, runs, deflated)
	if raw < runs/10 || deflated > runs/20 {
		t.Errorf("raw ≥ 1.3 in %d, deflated in %d of %d", raw, deflated, runs)
	}
}
