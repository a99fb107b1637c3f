package analysis

import (
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/changelens/changelens/internal/stats"
	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/testkit/statstest"
)

func p95(t *testing.T, xs []float64) float64 {
	t.Helper()
	v, ok := stats.Quantile(xs, 0.95)
	if !ok {
		t.Fatal("no p95")
	}
	return v
}

func seq(n int, start, step float64) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = start + float64(i)*step
	}
	return s
}

func shift(xs []float64, d float64) []float64 {
	out := make([]float64, len(xs))
	for i, v := range xs {
		out[i] = v + d
	}
	return out
}

// binomRatio returns C(a, k) / C(b, k) exactly, rounded to float64.
func binomRatio(a, b, k int64) float64 {
	v, _ := new(big.Rat).SetFrac(new(big.Int).Binomial(a, k), new(big.Int).Binomial(b, k)).Float64()
	return v
}

func TestDecide(t *testing.T) {
	cfg := DefaultConfig()
	// Latency windows from R's airquality ozone (May = before, Aug = after):
	// one-sided p for "Aug > May" is SciPy's mannwhitneyu(may, aug,
	// alternative='less') = 6.040391538438717e-05.
	may := Side{LatenciesMs: statstest.OzoneMay, P95Ms: p95(t, statstest.OzoneMay), Requests: 1000, Errors: 20}
	aug := Side{LatenciesMs: statstest.OzoneAug, P95Ms: p95(t, statstest.OzoneAug), Requests: 1000, Errors: 20}
	const pAugGreater = 6.040391538438717e-05

	base := seq(200, 100, 0.1) // 100 .. 119.9 ms
	quiet := func(lat []float64, req, errs float64) Side {
		return Side{LatenciesMs: lat, P95Ms: p95(t, lat), Requests: req, Errors: errs}
	}

	tests := []struct {
		name          string
		before, after Side
		verdict       report.Verdict
		reasons       []Rule
		check         func(t *testing.T, d Decision)
	}{
		{
			name: "latency regression (airquality)", before: may, after: aug,
			verdict: report.VerdictDegraded, reasons: []Rule{RuleLatencyRegression},
			check: func(t *testing.T, d Decision) {
				if !d.Latency.Tested || d.Latency.Exact {
					t.Errorf("latency tested=%v exact=%v, want tested with normal approximation (ties)", d.Latency.Tested, d.Latency.Exact)
				}
				statstest.AssertClose(t, "PIncrease", d.Latency.PIncrease, pAugGreater, 1e-9)
				statstest.AssertClose(t, "U", d.Latency.U, 26*26-127.5, 0)
				statstest.AssertClose(t, "AfterP95Ms", d.Latency.AfterP95Ms, 121, 1e-12)  // type 7: 118 + .75·(122 − 118)
				statstest.AssertClose(t, "BeforeP95Ms", d.Latency.BeforeP95Ms, 44, 1e-12) // 41 + .75·(45 − 41)
			},
		},
		{
			name: "latency improvement is the mirror image", before: aug, after: may,
			verdict: report.VerdictImproved, reasons: []Rule{RuleLatencyImprovement},
			check: func(t *testing.T, d Decision) {
				statstest.AssertClose(t, "PDecrease", d.Latency.PDecrease, pAugGreater, 1e-9)
			},
		},
		{
			name:   "significant shift but p95 ratio below 1.2",
			before: quiet(base, 1000, 10), after: quiet(shift(base, 3), 1000, 10),
			verdict: report.VerdictNoChange,
			check: func(t *testing.T, d Decision) {
				if d.Latency.PIncrease > cfg.CompareAlpha {
					t.Errorf("PIncrease = %v; the test should be significant so that only the ratio gate stops it", d.Latency.PIncrease)
				}
			},
		},
		{
			// 3 vs 3 without ties: the smallest exact one-sided p is 1/C(6,3) = 0.05.
			name:    "p95 ratio met but too few latencies to be significant",
			before:  Side{LatenciesMs: []float64{10, 11, 12}, P95Ms: 12, Requests: 500},
			after:   Side{LatenciesMs: []float64{30, 31, 32}, P95Ms: 32, Requests: 500},
			verdict: report.VerdictNoChange,
			check: func(t *testing.T, d Decision) {
				if !d.Latency.Exact {
					t.Error("want the exact distribution")
				}
				statstest.AssertClose(t, "PIncrease", d.Latency.PIncrease, 0.05, 1e-15)
				statstest.AssertClose(t, "PDecrease", d.Latency.PDecrease, 1, 1e-15)
			},
		},
		{
			// statsmodels (two-proportion, 'larger'): 30/1000 vs 10/1000 → p = 0.0007006507904801069.
			name:   "error-rate regression (z-test)",
			before: quiet(base, 1000, 10), after: quiet(base, 1000, 30),
			verdict: report.VerdictDegraded, reasons: []Rule{RuleErrorRateRegression},
			check: func(t *testing.T, d Decision) {
				if d.ErrorRate.Method != ErrorRateZTest {
					t.Errorf("method %v", d.ErrorRate.Method)
				}
				statstest.AssertClose(t, "z", d.ErrorRate.Z, 3.1943828249996993, 1e-12)
				statstest.AssertClose(t, "PIncrease", d.ErrorRate.PIncrease, 0.0007006507904801069, 1e-12)
				statstest.AssertClose(t, "PDecrease", d.ErrorRate.PDecrease, 0.9992993492095199, 1e-12)
				statstest.AssertClose(t, "AfterRate", d.ErrorRate.AfterRate, 0.03, 1e-15)
				statstest.AssertClose(t, "BeforeRate", d.ErrorRate.BeforeRate, 0.01, 1e-15)
			},
		},
		{
			name:   "error-rate improvement (z-test)",
			before: quiet(base, 1000, 30), after: quiet(base, 1000, 10),
			verdict: report.VerdictImproved, reasons: []Rule{RuleErrorRateImprovement},
			check: func(t *testing.T, d Decision) {
				statstest.AssertClose(t, "PDecrease", d.ErrorRate.PDecrease, 0.0007006507904801069, 1e-12)
			},
		},
		{
			// 0.1 % → 0.5 %: five times worse and hugely significant, but only +0.004.
			name:   "error rate below the absolute delta",
			before: quiet(base, 1e6, 1000), after: quiet(base, 1e6, 5000),
			verdict: report.VerdictNoChange,
			check: func(t *testing.T, d Decision) {
				if d.ErrorRate.PIncrease > 1e-100 {
					t.Errorf("PIncrease = %v, want overwhelming significance", d.ErrorRate.PIncrease)
				}
			},
		},
		{
			// 10 % → 12 %: +0.02 and significant, but only 1.2× worse.
			name:   "error rate below the relative ratio",
			before: quiet(base, 1e6, 100000), after: quiet(base, 1e6, 120000),
			verdict: report.VerdictNoChange,
		},
		{
			// 2 % → 3 %: both thresholds hit exactly (0.03 − 0.02 and 1.5 · 0.02 round
			// the wrong way in float64); z ≈ 4.5.
			name:   "error thresholds are inclusive",
			before: quiet(base, 10000, 200), after: quiet(base, 10000, 300),
			verdict: report.VerdictDegraded, reasons: []Rule{RuleErrorRateRegression},
		},
		{
			// 0/60 → 8/60: smallest expected cell 60·8/120 = 4 < 5 → Fisher;
			// P(X ≥ 8) = C(60,8)/C(120,8) ≈ 0.0032.
			name:   "error-rate regression with few errors (Fisher)",
			before: quiet(base, 60, 0), after: quiet(base, 60, 8),
			verdict: report.VerdictDegraded, reasons: []Rule{RuleErrorRateRegression},
			check: func(t *testing.T, d Decision) {
				if d.ErrorRate.Method != ErrorRateFisherExact || d.ErrorRate.Z != 0 {
					t.Errorf("method %v z %v, want Fisher", d.ErrorRate.Method, d.ErrorRate.Z)
				}
				statstest.AssertClose(t, "PIncrease", d.ErrorRate.PIncrease, binomRatio(60, 120, 8), 1e-12)
				statstest.AssertClose(t, "PDecrease", d.ErrorRate.PDecrease, 1, 1e-12)
			},
		},
		{
			// 0/60 → 6/60: P(X ≥ 6) = C(60,6)/C(120,6) ≈ 0.0137 > 0.01.
			name:   "few errors, not significant (Fisher)",
			before: quiet(base, 60, 0), after: quiet(base, 60, 6),
			verdict: report.VerdictNoChange,
			check: func(t *testing.T, d Decision) {
				statstest.AssertClose(t, "PIncrease", d.ErrorRate.PIncrease, binomRatio(60, 120, 6), 1e-12)
			},
		},
		{
			name:   "no errors at all",
			before: quiet(base, 500, 0), after: quiet(base, 500, 0),
			verdict: report.VerdictNoChange,
			check: func(t *testing.T, d Decision) {
				if d.ErrorRate.PIncrease != 1 || d.ErrorRate.PDecrease != 1 {
					t.Errorf("p-values %v %v, want 1", d.ErrorRate.PIncrease, d.ErrorRate.PDecrease)
				}
			},
		},
		{
			name:    "latency regression and error improvement → DEGRADED",
			before:  Side{LatenciesMs: statstest.OzoneMay, P95Ms: 44, Requests: 1000, Errors: 30},
			after:   Side{LatenciesMs: statstest.OzoneAug, P95Ms: 121, Requests: 1000, Errors: 10},
			verdict: report.VerdictDegraded, reasons: []Rule{RuleLatencyRegression, RuleErrorRateImprovement},
			check: func(t *testing.T, d Decision) {
				if got := d.FailureReasons(); !slices.Equal(got, []report.FailureReason{report.ReasonLatencyRegression}) {
					t.Errorf("FailureReasons = %v", got)
				}
			},
		},
		{
			name:    "both regress",
			before:  Side{LatenciesMs: statstest.OzoneMay, P95Ms: 44, Requests: 1000, Errors: 10},
			after:   Side{LatenciesMs: statstest.OzoneAug, P95Ms: 121, Requests: 1000, Errors: 30},
			verdict: report.VerdictDegraded, reasons: []Rule{RuleLatencyRegression, RuleErrorRateRegression},
		},
		{
			name:    "p95 ratio inclusive at exactly 1.2",
			before:  Side{LatenciesMs: base, P95Ms: 100, Requests: 1000},
			after:   Side{LatenciesMs: shift(base, 50), P95Ms: 120, Requests: 1000},
			verdict: report.VerdictDegraded, reasons: []Rule{RuleLatencyRegression},
		},
		{
			name:    "p95 ratio just below 1.2",
			before:  Side{LatenciesMs: base, P95Ms: 100, Requests: 1000},
			after:   Side{LatenciesMs: shift(base, 50), P95Ms: 119.99, Requests: 1000},
			verdict: report.VerdictNoChange,
		},
		{
			name:    "missing latency sample: only the error rule is evaluated",
			before:  Side{P95Ms: 100, Requests: 1000, Errors: 10},
			after:   Side{P95Ms: 500, Requests: 1000, Errors: 30},
			verdict: report.VerdictDegraded, reasons: []Rule{RuleErrorRateRegression},
			check: func(t *testing.T, d Decision) {
				if d.Latency.Tested || d.Latency.PIncrease != 0 {
					t.Errorf("latency should not be tested: %+v", d.Latency)
				}
			},
		},
		{
			name:    "insufficient data before",
			before:  Side{LatenciesMs: base, P95Ms: 100, Requests: 49.5, Errors: 1},
			after:   Side{LatenciesMs: shift(base, 500), P95Ms: 900, Requests: 1000, Errors: 900},
			verdict: report.VerdictInsufficientData,
			check: func(t *testing.T, d Decision) {
				if d.Latency.Tested || d.ErrorRate.Method != ErrorRateNotTested {
					t.Error("no test should run with insufficient data")
				}
				statstest.AssertClose(t, "BeforeRate", d.ErrorRate.BeforeRate, 1/49.5, 1e-15)
				statstest.AssertClose(t, "AfterRate", d.ErrorRate.AfterRate, 0.9, 1e-15)
			},
		},
		{
			name:   "insufficient data after (empty window)",
			before: quiet(base, 1000, 10), after: Side{},
			verdict: report.VerdictInsufficientData,
		},
		{
			name:   "exactly the minimum of 50 weighted requests is enough",
			before: quiet(base, 50, 0), after: quiet(base, 50, 0),
			verdict: report.VerdictNoChange,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := decide(tc.before, tc.after, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if d.Verdict != tc.verdict || !slices.Equal(d.Rules, tc.reasons) {
				t.Errorf("verdict %v reasons %v, want %v %v (latency %+v, errors %+v)",
					d.Verdict, d.Rules, tc.verdict, tc.reasons, d.Latency, d.ErrorRate)
			}
			for _, p := range []float64{d.Latency.PIncrease, d.Latency.PDecrease, d.ErrorRate.PIncrease, d.ErrorRate.PDecrease} {
				statstest.AssertProb(t, "p", p)
			}
			if tc.check != nil {
				tc.check(t, d)
			}
		})
	}
}

func mirror(r Rule) Rule {
	switch r {
	case RuleLatencyRegression:
		return RuleLatencyImprovement
	case RuleLatencyImprovement:
		return RuleLatencyRegression
	case RuleErrorRateRegression:
		return RuleErrorRateImprovement
	case RuleErrorRateImprovement:
		return RuleErrorRateRegression
	}
	return r
}

// Swapping the windows mirrors every rule: regressions become improvements
// and vice versa.
func TestDecideMirror(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	cfg := DefaultConfig()
	cfg.CompareAlpha = 0.05 // fire rules more often
	gen := func() Side {
		n := 1 + rng.IntN(60)
		lat := make([]float64, n)
		scale := 50 + rng.Float64()*100
		for i := range lat {
			lat[i] = math.Round(rng.ExpFloat64() * scale)
		}
		req := float64(rng.IntN(3000))
		return Side{LatenciesMs: lat, P95Ms: p95(t, lat), Requests: req, Errors: math.Floor(req * rng.Float64() * 0.1)}
	}
	fired := 0
	for trial := 0; trial < 400; trial++ {
		a, b := gen(), gen()
		ab, err := decide(a, b, cfg)
		if err != nil {
			t.Fatal(err)
		}
		ba, err := decide(b, a, cfg)
		if err != nil {
			t.Fatal(err)
		}
		var want []Rule
		for _, r := range ba.Rules {
			want = append(want, mirror(r))
		}
		slices.Sort(want)
		got := slices.Sorted(slices.Values(ab.Rules))
		if !slices.Equal(got, want) {
			t.Fatalf("a→b reasons %v, b→a mirrored %v", ab.Rules, want)
		}
		if len(ab.Rules) > 0 {
			fired++
		}
		if ab.Verdict == report.VerdictInsufficientData && ba.Verdict != report.VerdictInsufficientData {
			t.Fatal("insufficient data must not depend on the order")
		}
		statstest.AssertClose(t, "latency p mirror", ab.Latency.PIncrease, ba.Latency.PDecrease, 1e-12)
		statstest.AssertClose(t, "error p mirror", ab.ErrorRate.PIncrease, ba.ErrorRate.PDecrease, 1e-12)
	}
	if fired < 20 {
		t.Errorf("only %d of 400 random cases fired a rule; the property was barely exercised", fired)
	}
}

func TestDecideInvalidInput(t *testing.T) {
	good := Side{LatenciesMs: []float64{1}, P95Ms: 1, Requests: 100, Errors: 1}
	cfg := DefaultConfig()
	badWindows := []Side{
		{Requests: -1},
		{Requests: math.NaN()},
		{Requests: math.Inf(1)},
		{Requests: 1e300},
		{Requests: 10, Errors: 11},
		{Requests: 10, Errors: -1},
		{Requests: 10, P95Ms: math.NaN()},
		{Requests: 10, P95Ms: -5},
		{Requests: 10, LatenciesMs: []float64{1, math.NaN()}},
	}
	for _, w := range badWindows {
		if _, err := decide(w, good, cfg); !errors.Is(err, ErrInvalidWindow) {
			t.Errorf("before %+v: err = %v", w, err)
		}
		if _, err := decide(good, w, cfg); !errors.Is(err, ErrInvalidWindow) {
			t.Errorf("after %+v: err = %v", w, err)
		}
	}
	mods := []func(*Config){
		func(c *Config) { c.CompareAlpha = 0 },
		func(c *Config) { c.CompareAlpha = 1 },
		func(c *Config) { c.CompareAlpha = math.NaN() },
		func(c *Config) { c.LatencyRatio = 0.9 },
		func(c *Config) { c.ErrorRateMinRatio = math.Inf(1) },
		func(c *Config) { c.ErrorRateMinDelta = -0.1 },
		func(c *Config) { c.MinRequests = -1 },
		func(c *Config) { c.MinExpectedCount = math.NaN() },
	}
	for i, m := range mods {
		c := DefaultConfig()
		m(&c)
		if _, err := decide(good, good, c); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("config mod %d: err = %v", i, err)
		}
	}
	// The zero config is invalid (alpha 0) rather than silently permissive.
	if _, err := decide(good, good, Config{}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("zero config: err = %v", err)
	}
}

func TestDecisionStrings(t *testing.T) {
	for r, s := range map[Rule]string{
		RuleLatencyRegression: "LATENCY_REGRESSION", RuleErrorRateRegression: "ERROR_RATE_REGRESSION",
		RuleLatencyImprovement: "LATENCY_IMPROVEMENT", RuleErrorRateImprovement: "ERROR_RATE_IMPROVEMENT",
		Rule(0): "UNSPECIFIED",
	} {
		if r.String() != s {
			t.Errorf("%d: %q, want %q", r, r.String(), s)
		}
	}
	for m, s := range map[ErrorRateMethod]string{ErrorRateNotTested: "NOT_TESTED", ErrorRateZTest: "TWO_PROPORTION_Z", ErrorRateFisherExact: "FISHER_EXACT"} {
		if m.String() != s {
			t.Errorf("%d: %q, want %q", m, m.String(), s)
		}
	}
	// Regressions are the change-failure reasons; improvements are none.
	for r, want := range map[Rule]report.FailureReason{RuleLatencyRegression: report.ReasonLatencyRegression, RuleErrorRateRegression: report.ReasonErrorRateRegression} {
		if got, ok := r.FailureReason(); !ok || got != want {
			t.Errorf("%s: failure reason %v %v", r, got, ok)
		}
	}
	for _, r := range []Rule{RuleLatencyImprovement, RuleErrorRateImprovement} {
		if _, ok := r.FailureReason(); ok {
			t.Errorf("%s is a failure reason", r)
		}
	}
}

// With MinRequests = 0 two empty windows are comparable and show no change.
func TestDecideEmptyWindowsWithoutMinimum(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MinRequests = 0
	d, err := decide(Side{}, Side{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if d.Verdict != report.VerdictNoChange || d.ErrorRate.Method != ErrorRateFisherExact ||
		d.ErrorRate.PIncrease != 1 || d.ErrorRate.PDecrease != 1 || d.Latency.Tested {
		t.Errorf("%+v", d)
	}
}
