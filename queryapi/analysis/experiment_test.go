package analysis

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/changelens/changelens/internal/schema"
	"github.com/changelens/changelens/internal/stats"
)

func storyDefinition() ExperimentDefinition {
	return ExperimentDefinition{
		ID:        "graphql-vs-rest",
		Unit:      ExperimentUnit{Service: "mobile-bff", Environment: "production"},
		Dimension: "flag:api-style",
		Variants: []ExperimentVariant{
			{Name: "rest", Control: true, Share: 0.5},
			{Name: "graphql", Share: 0.5},
		},
		Primary:         &PrimaryMetric{Metric: ExpLoadP75, MinEffect: 0.05},
		Guardrails:      []Guardrail{{Metric: ExpCPUPerRequest, MaxDegradation: 0.10}, {Metric: ExpCrashRate, MaxDegradation: 0.20}, {Metric: ExpLatencyP95, MaxDegradation: 0.10}},
		PlannedDuration: 14 * 24 * time.Hour,
	}
}

func TestValidateNamesTheField(t *testing.T) {
	if err := storyDefinition().Validate(); err != nil {
		t.Fatalf("story definition: %v", err)
	}
	for _, tc := range []struct {
		name  string
		edit  func(*ExperimentDefinition)
		field string
	}{
		{"no primary", func(d *ExperimentDefinition) { d.Primary = nil }, "primary_metric"},
		{"unknown primary", func(d *ExperimentDefinition) { d.Primary.Metric = "latency_p42" }, "primary_metric.metric"},
		{"no min effect", func(d *ExperimentDefinition) { d.Primary.MinEffect = 0 }, "primary_metric.min_effect"},
		{"bad direction", func(d *ExperimentDefinition) { d.Primary.Direction = "up" }, "primary_metric.direction"},
		{"one variant", func(d *ExperimentDefinition) { d.Variants = d.Variants[:1] }, "variants"},
		{"bad share", func(d *ExperimentDefinition) { d.Variants[1].Share = 1.5 }, "variants[1].share"},
		{"shares", func(d *ExperimentDefinition) { d.Variants[1].Share = 0.4 }, "variants"},
		{"two controls", func(d *ExperimentDefinition) { d.Variants[1].Control = true }, "variants"},
		{"no name", func(d *ExperimentDefinition) { d.Variants[0].Name = "" }, "variants[0].name"},
		{"unknown guardrail", func(d *ExperimentDefinition) { d.Guardrails[0].Metric = "cpu" }, "guardrails[0].metric"},
		{"negative tolerance", func(d *ExperimentDefinition) { d.Guardrails[1].MaxDegradation = -0.1 }, "guardrails[1].max_degradation"},
		{"dimension", func(d *ExperimentDefinition) { d.Dimension = "colour" }, "dimension"},
		{"duration", func(d *ExperimentDefinition) { d.PlannedDuration = 0 }, "planned_duration"},
		{"alpha", func(d *ExperimentDefinition) { d.Alpha = 0.7 }, "alpha"},
		{"service", func(d *ExperimentDefinition) { d.Unit.Service = "" }, "unit.service"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := storyDefinition()
			p := *d.Primary
			d.Primary = &p
			d.Variants = append([]ExperimentVariant(nil), d.Variants...)
			d.Guardrails = append([]Guardrail(nil), d.Guardrails...)
			tc.edit(&d)
			err := d.Validate()
			if !errors.Is(err, ErrInvalidExperiment) {
				t.Fatalf("err = %v, want ErrInvalidExperiment", err)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("no FieldError in %v", err)
			}
			found := false
			for _, e := range err.(ValidationErrors) {
				found = found || e.Field == tc.field
			}
			if !found {
				t.Errorf("err = %v, want field %q", err, tc.field)
			}
		})
	}
}

func TestMetricVocabulary(t *testing.T) {
	for _, n := range ExperimentMetricNames() {
		m, ok := LookupExperimentMetric(n)
		if !ok || m.Estimator == "" || m.Label == "" || m.Kind == 0 {
			t.Errorf("%s: %+v", n, m)
		}
	}
	if m, ok := LookupExperimentMetric("retention_d30"); !ok || m.Direction != HigherIsBetter || m.Kind != KindProportion {
		t.Errorf("retention_d30: %+v %v", m, ok)
	}
	for _, bad := range []string{"retention_d0", "retention_d", "latency_p90", "cpu"} {
		if _, ok := LookupExperimentMetric(bad); ok {
			t.Errorf("%s accepted", bad)
		}
	}
}

// histOf puts durations in milliseconds into the schema's buckets.
func histOf(ms []float64) stats.Hist {
	acc := map[uint16]float64{}
	for _, v := range ms {
		acc[schema.HistBucket(uint64(v*1e6))]++
	}
	var h stats.Hist
	for k, w := range acc {
		h.Keys = append(h.Keys, k)
		h.Weights = append(h.Weights, w)
	}
	return h
}

// storyVariant simulates `hours` hours of one arm of the GraphQL-vs-REST
// story: page loads log-normal around loadMs, server latency around 80 ms,
// payloads of mean `bytes`, CPU `cpu` seconds per 1000 requests, 0.5 %
// crashed sessions.
func storyVariant(rng *rand.Rand, name string, units float64, hours int, loadMs, bytes, cpu, crash float64) VariantData {
	v := VariantData{Name: name, Units: units, Metrics: map[string]MetricSeries{}}
	var load, lat, pay, cpus, crashes []MetricBucket
	for range hours {
		loads := make([]float64, 200)
		for i := range loads {
			loads[i] = loadMs * math.Exp(0.5*rng.NormFloat64())
		}
		lats := make([]float64, 400)
		for i := range lats {
			lats[i] = 80 * math.Exp(0.4*rng.NormFloat64())
		}
		req := 400.0
		load = append(load, MetricBucket{Hist: histOf(loads)})
		lat = append(lat, MetricBucket{Hist: histOf(lats)})
		pay = append(pay, MetricBucket{Num: req * bytes * (1 + 0.05*rng.NormFloat64()), Den: req})
		cpus = append(cpus, MetricBucket{Num: req * cpu / 1000 * (1 + 0.05*rng.NormFloat64()), Den: req})
		sessions := 200.0
		c := 0.0
		for range int(sessions) {
			if rng.Float64() < crash {
				c++
			}
		}
		crashes = append(crashes, MetricBucket{Num: c, Den: sessions})
	}
	v.Metrics[ExpLoadP75] = MetricSeries{Buckets: load}
	v.Metrics[ExpLatencyP95] = MetricSeries{Buckets: lat}
	v.Metrics[ExpPayloadSize] = MetricSeries{Buckets: pay}
	v.Metrics[ExpCPUPerRequest] = MetricSeries{Buckets: cpus}
	v.Metrics[ExpCrashRate] = MetricSeries{Buckets: crashes}
	return v
}

// The story: GraphQL has 40 % smaller payloads and 200 ms faster
// page loads but 2 × CPU per request: DON'T SHIP on the cost guardrail,
// with the line a team would write.
func TestExperimentStoryDontShipOnCost(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 1))
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	hours := 14 * 24
	data := []VariantData{
		storyVariant(rng, "rest", 10000, hours, 1000, 5000, 2, 0.005),
		storyVariant(rng, "graphql", 10050, hours, 800, 3000, 4, 0.005),
	}
	rep, err := EvaluateExperiment(storyDefinition(), start, start.Add(14*24*time.Hour), data, ExperimentConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Decision != DecisionDontShip || rep.Reason != ReasonGuardrailFailed || rep.Running {
		t.Fatalf("decision %s %s running %v: %s", rep.Decision, rep.Reason, rep.Running, rep.Summary)
	}
	t.Log(rep.Summary)
	for _, want := range []string{"ms load p75", "−40 % payload", "2.0 × CPU per request", ": guardrail cost failed"} {
		if !strings.Contains(rep.Summary, want) {
			t.Errorf("summary %q lacks %q", rep.Summary, want)
		}
	}
	byName := map[string]MetricResult{}
	for _, m := range rep.Treatments[0].Metrics {
		byName[m.Metric] = m
	}
	if m := byName[ExpCPUPerRequest]; m.Verdict != VerdictFailed || math.Abs(m.Relative-1) > 0.05 {
		t.Errorf("cpu: %+v", m)
	}
	if m := byName[ExpLoadP75]; m.Verdict != VerdictBetter || m.Role != RolePrimary || math.Abs(m.Relative+0.2) > 0.03 {
		t.Errorf("load: %+v", m)
	}
	if m := byName[ExpPayloadSize]; m.Role != RoleSecondary {
		t.Errorf("payload role %q", m.Role)
	}
	if m := byName[ExpCrashRate]; m.Verdict == VerdictFailed {
		t.Errorf("crash rate failed on equal rates: %+v", m)
	}
	if rep.SRM == nil || rep.SRM.Mismatch {
		t.Errorf("srm %+v", rep.SRM)
	}
}

// Without the cost guardrail the same data ship; an A/A experiment at the
// planned duration is inconclusive, no difference; while running it says
// so.
func TestExperimentShipAndAA(t *testing.T) {
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	def := storyDefinition()
	def.Guardrails = def.Guardrails[1:]
	rng := rand.New(rand.NewPCG(25, 2))
	data := []VariantData{
		storyVariant(rng, "rest", 10000, 72, 1000, 5000, 2, 0.005),
		storyVariant(rng, "graphql", 10000, 72, 800, 3000, 4, 0.005),
	}
	rep, err := EvaluateExperiment(def, start, start.Add(72*time.Hour), data, ExperimentConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Decision != DecisionShip || !rep.Running || !strings.Contains(rep.Summary, "sequential boundary crossed") {
		t.Errorf("early ship: %s %s %s", rep.Decision, rep.Reason, rep.Summary)
	}

	aa := []VariantData{
		storyVariant(rng, "rest", 10000, 14*24, 1000, 5000, 2, 0.005),
		storyVariant(rng, "graphql", 10000, 14*24, 1000, 5000, 2, 0.005),
	}
	rep, _ = EvaluateExperiment(def, start, start.Add(14*24*time.Hour), aa, ExperimentConfig{})
	if rep.Decision != DecisionInconclusive || rep.Reason != ReasonNoDifference {
		t.Errorf("A/A: %s %s %s", rep.Decision, rep.Reason, rep.Summary)
	}
	rep, _ = EvaluateExperiment(def, start, start.Add(3*24*time.Hour), aa, ExperimentConfig{})
	if rep.Decision != DecisionInconclusive || rep.Reason != ReasonRunning || !strings.Contains(rep.Summary, "running: 3 days of 14 days") {
		t.Errorf("A/A running: %s %s %s", rep.Decision, rep.Reason, rep.Summary)
	}
}

func TestExperimentSRMInvalidates(t *testing.T) {
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(25, 3))
	data := []VariantData{
		storyVariant(rng, "rest", 10400, 48, 1000, 5000, 2, 0.005),
		storyVariant(rng, "graphql", 9600, 48, 800, 3000, 2, 0.005),
	}
	rep, _ := EvaluateExperiment(storyDefinition(), start, start.Add(14*24*time.Hour), data, ExperimentConfig{})
	if rep.Decision != DecisionInconclusive || rep.Reason != ReasonSRM || !rep.SRM.Mismatch {
		t.Errorf("SRM: %s %s %+v", rep.Decision, rep.Reason, rep.SRM)
	}
	// χ²(10400, 9600 | ½, ½) = 32, p = 1.54e-8 (SciPy chisquare).
	if math.Abs(rep.SRM.ChiSquare-32) > 1e-9 {
		t.Errorf("chi2 %v", rep.SRM.ChiSquare)
	}
}

// A crash-rate rise from 0.5 % to 1 % of sessions fails a 20 % guardrail.
func TestExperimentCrashRateGuardrail(t *testing.T) {
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(25, 4))
	def := storyDefinition()
	def.Guardrails = []Guardrail{{Metric: ExpCrashRate, MaxDegradation: 0.2}}
	data := []VariantData{
		storyVariant(rng, "rest", 10000, 14*24, 1000, 5000, 2, 0.005),
		storyVariant(rng, "graphql", 10000, 14*24, 1000, 5000, 2, 0.010),
	}
	rep, _ := EvaluateExperiment(def, start, start.Add(14*24*time.Hour), data, ExperimentConfig{})
	if rep.Decision != DecisionDontShip || !strings.HasSuffix(rep.Summary, "guardrail crashes failed") {
		t.Errorf("crash: %s %s", rep.Decision, rep.Summary)
	}
	ms := rep.Treatments[0].Metrics
	m := ms[len(ms)-1]
	if m.Metric != ExpCrashRate || !(m.DeltaLow > 0) || math.Abs(m.Relative-1) > 0.3 {
		t.Errorf("crash metric %+v", m)
	}
}

// CUPED: per-user conversion with pre-period values narrows the interval
// and the report says so.
func TestExperimentCUPEDUnits(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 5))
	units := func(n int, lift float64) []UnitValue {
		out := make([]UnitValue, n)
		for i := range out {
			x := 10 + 3*rng.NormFloat64()
			out[i] = UnitValue{X: x, HasX: true, Y: (1 + lift) * (x + 2*rng.NormFloat64())}
		}
		return out
	}
	def := storyDefinition()
	def.Primary = &PrimaryMetric{Metric: ExpConversionRate, MinEffect: 0.02}
	def.Guardrails = nil
	data := []VariantData{
		{Name: "rest", Units: 5000, Metrics: map[string]MetricSeries{ExpConversionRate: {Units: units(5000, 0)}}},
		{Name: "graphql", Units: 5000, Metrics: map[string]MetricSeries{ExpConversionRate: {Units: units(5000, 0.03)}}},
	}
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	rep, _ := EvaluateExperiment(def, start, start.Add(15*24*time.Hour), data, ExperimentConfig{})
	m := rep.Treatments[0].Metrics[0]
	if !m.CUPED || math.Abs(m.VarianceFactor-(1-9.0/13)) > 0.05 {
		t.Errorf("cuped %v factor %v (want ≈ %v)", m.CUPED, m.VarianceFactor, 1-9.0/13)
	}
	if rep.Decision != DecisionShip {
		t.Errorf("%s %s", rep.Decision, rep.Summary)
	}
}

// The plan's message for a short planned duration.
func TestPlanExperimentMessage(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 6))
	def := storyDefinition()
	def.PlannedDuration = 7 * 24 * time.Hour
	def.Primary = &PrimaryMetric{Metric: ExpLoadP75, MinEffect: -0.05}
	var pre []MetricBucket
	for range 7 * 24 {
		loads := make([]float64, 40)
		for i := range loads {
			loads[i] = 1000 * math.Exp(0.6*rng.NormFloat64())
		}
		pre = append(pre, MetricBucket{Hist: histOf(loads)})
	}
	base := ExperimentBaseline{Days: 7, Metrics: map[string]MetricSeries{ExpLoadP75: {Buckets: pre}}}
	plan, err := PlanExperiment(def, base, ExperimentConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(plan.Message)
	// 960 loads a day: log-normal σ 0.6 gives var(log p75) ≈
	// 0.75·0.25·(0.6/φ(0.674))²/n = 0.667/n; two arms of ½ at
	// z = 1.96 + 0.84: T ≈ 7.85·0.667·4 / (960·ln(0.95)²) ≈ 8.3 → 9 days.
	if plan.Sufficient || plan.Primary.DaysNeeded < 8 || plan.Primary.DaysNeeded > 11 {
		t.Errorf("plan %+v", plan.Primary)
	}
	if !strings.HasPrefix(plan.Message, "at your traffic, detecting −5 % on load_p75 needs ") || !strings.Contains(plan.Message, "; planned 7 days") {
		t.Errorf("message %q", plan.Message)
	}
}

// A variant the data never saw is a 400 naming it; before any variant
// served, the report is merely early.
func TestExperimentVariantNeverServed(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 7))
	data := []VariantData{storyVariant(rng, "rest", 1000, 24, 1000, 5000, 2, 0.005)}
	_, err := EvaluateExperiment(storyDefinition(), simStart, simStart.Add(24*time.Hour), data, ExperimentConfig{})
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "variants[1]" || !strings.Contains(fe.Problem, `"graphql" never served`) {
		t.Errorf("err = %v", err)
	}
	rep, err := EvaluateExperiment(storyDefinition(), simStart, simStart.Add(time.Hour), nil, ExperimentConfig{})
	if err != nil || rep.Decision != DecisionInconclusive || rep.Reason != ReasonInsufficientData {
		t.Errorf("no data yet: %v %s %s", err, rep.Decision, rep.Reason)
	}
}

// Three arms: the primary is tested at α/2, the experiment ships the
// treatment with the better primary effect, and the summary names it.
func TestExperimentThreeArms(t *testing.T) {
	def := simDef(ExpConversionRate, 0.05, 14)
	def.Variants = []ExperimentVariant{{Name: "a", Control: true, Share: 0.4}, {Name: "b", Share: 0.3}, {Name: "c", Share: 0.3}}
	conv := func(x, n float64) map[string]MetricSeries {
		return map[string]MetricSeries{ExpConversionRate: {Buckets: []MetricBucket{{Num: x / 2, Den: n / 2}, {Num: x / 2, Den: n / 2}}}}
	}
	data := []VariantData{
		{Name: "a", Units: 40000, Metrics: conv(4000, 40000)},
		{Name: "b", Units: 30000, Metrics: conv(3300, 30000)},
		{Name: "c", Units: 30000, Metrics: conv(3600, 30000)},
	}
	rep, err := EvaluateExperiment(def, simStart, simStart.Add(14*24*time.Hour), data, ExperimentConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Decision != DecisionShip || !strings.HasPrefix(rep.Summary, "c: +20 % conversion") {
		t.Errorf("%s %s", rep.Decision, rep.Summary)
	}
	// The primary's interval is at level 1 − α/2 = 97.5 %: z = 2.2414.
	m := rep.Treatments[0].Metrics[0]
	d, v, _ := stats.LogRelativeRisk(3300, 30000, 4000, 40000)
	if math.Abs(math.Log1p(m.RelHigh)-(d+2.241402727604947*math.Sqrt(v))) > 1e-9 {
		t.Errorf("level: high %v", m.RelHigh)
	}
}

// Garbage in the data never panics and never decides.
func TestExperimentBadNumbers(t *testing.T) {
	bad := []float64{math.NaN(), math.Inf(1), -1, 0}
	for _, x := range bad {
		data := []VariantData{
			{Name: "rest", Units: 100, Metrics: map[string]MetricSeries{
				ExpLoadP75:       {Buckets: []MetricBucket{{Hist: stats.Hist{Keys: []uint16{300}, Weights: []float64{x}}}}},
				ExpCPUPerRequest: {Buckets: []MetricBucket{{Num: x, Den: 10}, {Num: 1, Den: x}}},
				ExpCrashRate:     {Buckets: []MetricBucket{{Num: x, Den: 10}}},
				ExpLatencyP95:    {Units: []UnitValue{{Y: x}, {Y: x, X: x, HasX: true}, {Y: 1}}},
			}},
			{Name: "graphql", Units: 100, Metrics: map[string]MetricSeries{
				ExpLoadP75:   {Buckets: []MetricBucket{{Hist: stats.Hist{Keys: []uint16{300}, Weights: []float64{1}}}}},
				ExpCrashRate: {Buckets: []MetricBucket{{Num: 1, Den: 10}}},
			}},
		}
		rep, err := EvaluateExperiment(storyDefinition(), simStart, simStart.Add(15*24*time.Hour), data, ExperimentConfig{})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Decision == DecisionShip || rep.Decision == DecisionDontShip {
			t.Errorf("x = %v decided %s: %s", x, rep.Decision, rep.Summary)
		}
	}
}

// An error-rate guardrail fails when the control had no error at all and
// the treatment fails 2 % of its requests.
func TestExperimentErrorRateFromZero(t *testing.T) {
	def := storyDefinition()
	def.Guardrails = []Guardrail{{Metric: ExpErrorRate, MaxDegradation: 0.5}}
	hours := func(errs float64) []MetricBucket {
		out := make([]MetricBucket, 48)
		for i := range out {
			out[i] = MetricBucket{Num: errs, Den: 500}
		}
		return out
	}
	data := []VariantData{
		{Name: "rest", Units: 1000, Metrics: map[string]MetricSeries{ExpErrorRate: {Buckets: hours(0)}}},
		{Name: "graphql", Units: 1000, Metrics: map[string]MetricSeries{ExpErrorRate: {Buckets: hours(10)}}},
	}
	rep, err := EvaluateExperiment(def, simStart, simStart.Add(15*24*time.Hour), data, ExperimentConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Decision != DecisionDontShip || !strings.HasSuffix(rep.Summary, "guardrail errors failed") {
		t.Errorf("%s %s", rep.Decision, rep.Summary)
	}
}

// The plan's closed form on exact inputs. Conversion 10 % of 20 000 units a
// day for 7 days: V_day = 0.9 / (0.1 · 20 000) = 4.5e-4; at α 0.05, power
// 0.8 (z 1.959964 + 0.841621), 50/50 (1/s_t + 1/s_c = 4) and +5 %:
// T = 7.84887 · 4.5e-4 · 4 / ln(1.05)² = 5.936 → 6 days; at 14 planned days
// the detectable effect is e^{2.801585·√(4.5e-4·4/14)} − 1 = +3.23 %.
func TestPlanExperimentClosedForm(t *testing.T) {
	def := simDef(ExpConversionRate, 0.05, 14)
	base := ExperimentBaseline{Days: 7, Metrics: map[string]MetricSeries{
		ExpConversionRate: {Buckets: []MetricBucket{{Num: 7000, Den: 70000}, {Num: 7000, Den: 70000}}},
	}}
	plan, err := PlanExperiment(def, base, ExperimentConfig{})
	if err != nil {
		t.Fatal(err)
	}
	p := plan.Primary
	z := 1.959963984540054 + 0.8416212335729143
	if math.Abs(p.DailyLogVariance-4.5e-4) > 1e-15 || p.DaysNeeded != 6 || !plan.Sufficient {
		t.Errorf("plan %+v", p)
	}
	if want := math.Expm1(z * math.Sqrt(4.5e-4*4/14)); math.Abs(p.MDEAtPlanned-want) > 1e-12 {
		t.Errorf("MDE %v, want %v", p.MDEAtPlanned, want)
	}
	if plan.Message != "at your traffic, detecting +5 % on conversion_rate needs 6 days; planned 14 days" {
		t.Errorf("message %q", plan.Message)
	}
	// Per-unit values with a pre-period correlation: CUPED's factor is
	// planned for. y = x exactly for half the units → ρ = 1 would be
	// degenerate; y = x + e with var(x) = var(e) gives ρ² = ½.
	var us []UnitValue
	for i := range 1000 {
		x := float64(i%2)*2 - 1 // ±1
		e := float64((i/2)%2)*2 - 1
		us = append(us, UnitValue{X: x, HasX: true, Y: 10 + x + e})
	}
	def.Primary = &PrimaryMetric{Metric: ExpConversionRate, MinEffect: 0.01}
	plan, _ = PlanExperiment(def, ExperimentBaseline{UnitsPerDay: 1000, Metrics: map[string]MetricSeries{ExpConversionRate: {Units: us}}}, ExperimentConfig{})
	// var(y) = 2 (sample variance of ±1 ± 1 with n − 1: 2·1000/999), ȳ = 10.
	want := 2 * 1000.0 / 999 * 0.5 / (100 * 1000)
	if math.Abs(plan.Primary.CUPEDFactor-0.5) > 1e-9 || math.Abs(plan.Primary.DailyLogVariance-want) > 1e-12 {
		t.Errorf("cuped plan %+v, want V_day %v", plan.Primary, want)
	}
}
