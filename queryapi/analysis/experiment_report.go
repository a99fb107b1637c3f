package analysis

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/changelens/changelens/internal/stats"
)

// ExperimentDecision is what the report concludes.
type ExperimentDecision string

const (
	DecisionShip         ExperimentDecision = "SHIP"
	DecisionDontShip     ExperimentDecision = "DONT_SHIP"
	DecisionInconclusive ExperimentDecision = "INCONCLUSIVE"
)

// DecisionReason says why.
type DecisionReason string

const (
	ReasonPrimaryBetter    DecisionReason = "PRIMARY_BETTER"
	ReasonGuardrailFailed  DecisionReason = "GUARDRAIL_FAILED"
	ReasonPrimaryWorse     DecisionReason = "PRIMARY_WORSE"
	ReasonSRM              DecisionReason = "SAMPLE_RATIO_MISMATCH"
	ReasonRunning          DecisionReason = "RUNNING"
	ReasonUnderpowered     DecisionReason = "UNDERPOWERED"
	ReasonNoDifference     DecisionReason = "NO_DIFFERENCE"
	ReasonInsufficientData DecisionReason = "INSUFFICIENT_DATA"
)

// Metric roles and verdicts of a report.
const (
	RolePrimary   = "primary"
	RoleGuardrail = "guardrail"
	RoleSecondary = "secondary"

	VerdictBetter       = "BETTER"
	VerdictWorse        = "WORSE"
	VerdictNoDifference = "NO_DIFFERENCE"
	VerdictInsufficient = "INSUFFICIENT_DATA"
	// Guardrails: FAILED when worse beyond the tolerance (the deciding
	// interval lies entirely past it), PASSED when the interval lies
	// entirely within it, else UNRESOLVED.
	VerdictFailed     = "FAILED"
	VerdictPassed     = "PASSED"
	VerdictUnresolved = "UNRESOLVED"
)

// MetricResult is one metric of one treatment against the control.
type MetricResult struct {
	Metric, Label, Role string
	Treatment           string
	// Control and TreatmentValue are the metric in its unit (ms for
	// percentiles, a share for rates, bytes, CPU seconds per 1000
	// requests); Delta = TreatmentValue − Control, with an interval
	// (Newcombe's for proportions from counts, the relative interval times
	// the control otherwise).
	Control, TreatmentValue    float64
	Delta, DeltaLow, DeltaHigh float64
	// Relative = TreatmentValue ÷ Control − 1 with the fixed-horizon
	// interval at level 1 − α (1 − α/k for the primary metric of k
	// treatments) and its two-sided p-value.
	Relative, RelLow, RelHigh float64
	PValue                    float64
	// SeqRelLow, SeqRelHigh: the always-valid interval (mSPRT confidence
	// sequence) at the same level. AlwaysValidP is 1/Λ of no change at this
	// look; the always-valid p-value over looks is the smallest of these.
	SeqRelLow, SeqRelHigh float64
	AlwaysValidP          float64
	// MDE is the relative change the fixed-horizon test finds with the
	// definition's power at this look's variance (in the metric's good
	// direction for the primary): larger than the minimum effect of
	// interest at the planned end means UNDERPOWERED.
	MDE            float64
	CUPED          bool
	VarianceFactor float64 // 1 − ρ² when CUPED
	Tolerance      float64 // a guardrail's max degradation
	Verdict        string
	Estimator      string
	// Sequential: the verdict came from the always-valid interval (the
	// experiment was still running).
	Sequential bool
}

// SampleRatioResult is the sample-ratio-mismatch test of the assignment
// counts against the expected shares.
type SampleRatioResult struct {
	Variants       []string
	Observed       []float64
	ExpectedShares []float64
	ChiSquare      float64
	PValue         float64
	Mismatch       bool
}

// TreatmentDecision is the decision about one treatment.
type TreatmentDecision struct {
	Treatment string
	Decision  ExperimentDecision
	Reason    DecisionReason
	Summary   string
	Metrics   []MetricResult
}

// ExperimentReport is the report of an experiment at one look.
type ExperimentReport struct {
	ID string
	// Elapsed since the start; Running while it is below the planned
	// duration (then every decision uses the always-valid intervals).
	Elapsed time.Duration
	Running bool
	SRM     *SampleRatioResult
	// Decision of the experiment: SHIP when a treatment ships (the one
	// with the best primary effect), DONT_SHIP when every treatment is
	// DONT_SHIP, else INCONCLUSIVE with the first treatment's reason.
	Decision   ExperimentDecision
	Reason     DecisionReason
	Summary    string
	Treatments []TreatmentDecision
}

// SampleRatioMismatch tests the variants' unit counts against the expected
// shares (Pearson's chi-square goodness of fit, SciPy's chisquare): a
// broken split — a variant that crashes before logging its exposure, a bot
// filter that treats variants differently — biases every comparison, and no
// metric can tell. nil when no unit was counted.
func SampleRatioMismatch(def ExperimentDefinition, variants []VariantData, srmAlpha float64) *SampleRatioResult {
	r := &SampleRatioResult{}
	total := 0.0
	for _, v := range def.Variants {
		r.Variants = append(r.Variants, v.Name)
		r.ExpectedShares = append(r.ExpectedShares, v.Share)
		o := 0.0
		if d := findVariant(variants, v.Name); d != nil {
			o = d.Units
		}
		r.Observed = append(r.Observed, o)
		total += o
	}
	if !(total > 0) {
		return nil
	}
	chi, p, err := stats.ChiSquareGOF(r.Observed, r.ExpectedShares)
	if err != nil {
		return nil
	}
	r.ChiSquare, r.PValue, r.Mismatch = chi, p, p < srmAlpha
	return r
}

func findVariant(vs []VariantData, name string) *VariantData {
	for i := range vs {
		if vs[i].Name == name {
			return &vs[i]
		}
	}
	return nil
}

// EvaluateExperiment reports an experiment that started at start, looked
// at now, from the data of its variants so far (docs/experiments.md,
// "Decision"). Metrics the data holds beyond the primary and the
// guardrails are reported as secondary and never decide. The definition
// must be valid (Validate).
//
//   - SRM (p < SRMAlpha) → INCONCLUSIVE, SAMPLE_RATIO_MISMATCH.
//   - Before the planned duration every verdict uses the always-valid
//     interval (the mSPRT confidence sequence, τ the minimum effect of
//     interest), so looking every hour keeps false SHIP ≤ α; from then on
//     the fixed-horizon interval at level 1 − α.
//   - A guardrail whose interval lies entirely beyond its tolerance, in its
//     bad direction → DONT_SHIP, GUARDRAIL_FAILED; else a primary metric
//     significantly worse → DONT_SHIP, PRIMARY_WORSE; else significantly
//     better → SHIP; else INCONCLUSIVE: RUNNING before the planned duration,
//     UNDERPOWERED when the effect detectable at the data's variance is
//     larger than the minimum effect of interest, else NO_DIFFERENCE.
//   - With k treatments the primary metric is tested at α/k (Bonferroni:
//     the chance that some treatment ships falsely stays ≤ α).
func EvaluateExperiment(def ExperimentDefinition, start, now time.Time, data []VariantData, cfg ExperimentConfig) (ExperimentReport, error) {
	def = def.WithDefaults()
	if err := def.Validate(); err != nil {
		return ExperimentReport{}, err
	}
	cfg = cfg.withDefaults()
	rep := ExperimentReport{ID: def.ID, Elapsed: now.Sub(start)}
	rep.Running = rep.Elapsed < def.PlannedDuration
	rep.SRM = SampleRatioMismatch(def, data, cfg.SRMAlpha)

	if err := checkServed(def, data); err != nil {
		return ExperimentReport{}, err
	}
	ci := def.control()
	ctrl := findVariant(data, def.Variants[ci].Name)
	// Primary, then secondary metrics (vocabulary order, then by name: the
	// summary must not depend on map iteration), then guardrails — the
	// order a team reads the result in: the goal, what else moved, what it
	// cost.
	declared := def.metrics()
	var secondary []string
	for _, v := range data {
		for name := range v.Metrics {
			if _, ok := LookupExperimentMetric(name); ok && !slices.Contains(declared, name) && !slices.Contains(secondary, name) {
				secondary = append(secondary, name)
			}
		}
	}
	vocab := ExperimentMetricNames()
	rank := func(n string) int {
		if i := slices.Index(vocab, n); i >= 0 {
			return i
		}
		return len(vocab)
	}
	slices.SortFunc(secondary, func(a, b string) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		return strings.Compare(a, b)
	})
	metrics := append(append([]string{declared[0]}, secondary...), declared[1:]...)

	// CUPED is fitted per metric over every variant.
	adjust := map[string]cupedAdjust{}
	for _, name := range metrics {
		var ss []MetricSeries
		for _, v := range data {
			ss = append(ss, v.Metrics[name])
		}
		adjust[name] = pooledCUPED(ss)
	}

	treatments := len(def.Variants) - 1
	for i, tv := range def.Variants {
		if i == ci {
			continue
		}
		td := TreatmentDecision{Treatment: tv.Name}
		tdata := findVariant(data, tv.Name)
		for _, name := range metrics {
			m, _ := LookupExperimentMetric(name)
			var ts, cs MetricSeries
			if tdata != nil {
				ts = tdata.Metrics[name]
			}
			if ctrl != nil {
				cs = ctrl.Metrics[name]
			}
			td.Metrics = append(td.Metrics, judgeMetric(def, m, tv.Name, ts, cs, adjust[name], treatments, len(secondary), rep.Running, cfg))
		}
		decideTreatment(def, &td, rep.SRM, rep.Running, rep.Elapsed)
		rep.Treatments = append(rep.Treatments, td)
	}

	// The experiment's decision.
	best := -1
	allDont := len(rep.Treatments) > 0
	for i, td := range rep.Treatments {
		if td.Decision == DecisionShip {
			if best < 0 || goodness(def, rep.Treatments[i]) > goodness(def, rep.Treatments[best]) {
				best = i
			}
		}
		allDont = allDont && td.Decision == DecisionDontShip
	}
	pick := 0
	switch {
	case best >= 0:
		pick = best
	case allDont:
	default:
		for i, td := range rep.Treatments {
			if td.Decision == DecisionInconclusive {
				pick = i
				break
			}
		}
	}
	if len(rep.Treatments) > 0 {
		t := rep.Treatments[pick]
		rep.Decision, rep.Reason, rep.Summary = t.Decision, t.Reason, t.Summary
		if len(rep.Treatments) > 1 {
			rep.Summary = t.Treatment + ": " + rep.Summary
		}
	}
	return rep, nil
}

// checkServed rejects data in which some variant served and another never
// did: a variant with no unit and no observation is a definition that names
// the wrong variant (a typo, a version never deployed), not an effect of
// size −100 %. When no variant has served yet the report is merely early.
func checkServed(def ExperimentDefinition, data []VariantData) error {
	served := func(v *VariantData) bool {
		if v == nil {
			return false
		}
		if v.Units > 0 {
			return true
		}
		for _, s := range v.Metrics {
			if len(s.Units) > 0 {
				return true
			}
			for _, b := range s.Buckets {
				if b.Den > 0 || len(b.Hist.Keys) > 0 {
					return true
				}
			}
		}
		return false
	}
	var never ValidationErrors
	anyServed := false
	for i, v := range def.Variants {
		if served(findVariant(data, v.Name)) {
			anyServed = true
		} else {
			never = append(never, &FieldError{Field: fmt.Sprintf("variants[%d]", i), Problem: fmt.Sprintf("variant %q never served (no units, no observations)", v.Name)})
		}
	}
	if anyServed && len(never) > 0 {
		return never
	}
	return nil
}

// goodness is a treatment's primary log effect in the good direction.
func goodness(def ExperimentDefinition, td TreatmentDecision) float64 {
	r := td.Metrics[0].Relative
	if def.Primary.Direction == LowerIsBetter {
		return -math.Log1p(r)
	}
	return math.Log1p(r)
}

// judgeMetric estimates one metric of a treatment against the control and
// gives its verdict.
func judgeMetric(def ExperimentDefinition, m ExperimentMetric, treatment string, ts, cs MetricSeries, adj cupedAdjust, treatments, secondaries int, running bool, cfg ExperimentConfig) MetricResult {
	r := MetricResult{Metric: m.Name, Label: m.Label, Role: RoleSecondary, Treatment: treatment, Estimator: m.Estimator, Verdict: VerdictInsufficient,
		AlwaysValidP: 1, PValue: 1, Sequential: running}
	dir := m.Direction
	alpha := def.Alpha
	tau := 0.05
	switch {
	case m.Name == def.Primary.Metric:
		r.Role, dir = RolePrimary, def.Primary.Direction
		alpha = def.Alpha / float64(treatments)
		tau = math.Abs(math.Log1p(math.Abs(def.Primary.MinEffect)))
	default:
		for _, g := range def.Guardrails {
			if g.Metric == m.Name {
				r.Role, r.Tolerance = RoleGuardrail, g.MaxDegradation
				tau = math.Max(tau, math.Log1p(g.MaxDegradation))
			}
		}
	}
	if r.Role == RoleSecondary {
		// Secondary metrics decide nothing, but a reader takes BETTER or
		// WORSE at face value: Bonferroni over them (and the treatments)
		// keeps false differences in an A/A report near the family-wise α
		// however many metrics it shows (7.6 % for seven, against 32.8 %
		// at α each: TestSimExperimentSecondaryAA).
		alpha = def.Alpha / float64(max(1, secondaries*treatments))
	}
	level := 1 - alpha
	t := estimateMetric(m, ts, adj, cfg)
	c := estimateMetric(m, cs, adj, cfg)
	if t.ok {
		r.TreatmentValue = t.value
	}
	if c.ok {
		r.Control = c.value
	}
	r.CUPED, r.VarianceFactor = t.cuped && c.cuped, 1
	if r.CUPED {
		r.VarianceFactor = t.vrf
	}
	d, v, ok := logChange(m, t, c)
	if !ok || !(v > 0) {
		r.MDE = math.Inf(1)
		return r
	}
	r.Relative, r.RelLow, r.RelHigh, r.PValue, _ = stats.LogChangeInterval(d, v, level)
	r.Delta = r.TreatmentValue - r.Control
	r.DeltaLow, r.DeltaHigh = r.Control*r.RelLow, r.Control*r.RelHigh
	if t.counts && c.counts {
		if lo, hi, err := stats.NewcombeInterval(t.x, t.n, c.x, c.n, level); err == nil {
			r.DeltaLow, r.DeltaHigh = lo, hi
		}
	}
	rad := stats.MixtureSPRTRadius(v, tau*tau, alpha)
	r.SeqRelLow, r.SeqRelHigh = math.Expm1(d-rad), math.Expm1(d+rad)
	if lr, err := stats.MixtureSPRT(d, v, tau*tau); err == nil {
		r.AlwaysValidP = math.Min(1, 1/lr)
	}
	z := stats.NormalQuantile(1-alpha/2) + stats.NormalQuantile(def.Power)
	r.MDE = math.Expm1(z * math.Sqrt(v))
	if dir == LowerIsBetter {
		r.MDE = math.Expm1(-z * math.Sqrt(v))
	}

	lo, hi := r.RelLow, r.RelHigh
	if running {
		lo, hi = r.SeqRelLow, r.SeqRelHigh
	}
	// Worse and better in the metric's direction.
	worseBeyond := func(tol float64) bool {
		if dir == LowerIsBetter {
			return lo > tol
		}
		return hi < -tol
	}
	withinTol := func(tol float64) bool {
		if dir == LowerIsBetter {
			return hi < tol
		}
		return lo > -tol
	}
	better := (dir == LowerIsBetter && hi < 0) || (dir == HigherIsBetter && lo > 0)
	switch {
	case r.Role == RoleGuardrail && worseBeyond(r.Tolerance):
		r.Verdict = VerdictFailed
	case r.Role == RoleGuardrail && withinTol(r.Tolerance):
		r.Verdict = VerdictPassed
	case r.Role == RoleGuardrail:
		r.Verdict = VerdictUnresolved
	case worseBeyond(0):
		r.Verdict = VerdictWorse
	case better:
		r.Verdict = VerdictBetter
	default:
		r.Verdict = VerdictNoDifference
	}
	return r
}

// decideTreatment applies the decision rules to a treatment's metrics.
func decideTreatment(def ExperimentDefinition, td *TreatmentDecision, srm *SampleRatioResult, running bool, elapsed time.Duration) {
	primary := td.Metrics[0]
	var failed []string
	for _, m := range td.Metrics {
		if m.Role == RoleGuardrail && m.Verdict == VerdictFailed {
			mm, _ := LookupExperimentMetric(m.Metric)
			if !slices.Contains(failed, mm.Category) {
				failed = append(failed, mm.Category)
			}
		}
	}
	var reason string
	switch {
	case srm != nil && srm.Mismatch:
		td.Decision, td.Reason = DecisionInconclusive, ReasonSRM
		reason = fmt.Sprintf("sample ratio mismatch (p = %.2g): the split is broken, no metric can be trusted", srm.PValue)
	case len(failed) > 0:
		td.Decision, td.Reason = DecisionDontShip, ReasonGuardrailFailed
		reason = "guardrail " + strings.Join(failed, ", ") + " failed"
		if len(failed) > 1 {
			reason = "guardrails " + strings.Join(failed, ", ") + " failed"
		}
	case primary.Verdict == VerdictWorse:
		td.Decision, td.Reason = DecisionDontShip, ReasonPrimaryWorse
		reason = "primary " + primary.Label + " worse"
	case primary.Verdict == VerdictBetter:
		td.Decision, td.Reason = DecisionShip, ReasonPrimaryBetter
		reason = "primary " + primary.Label + " better: ship"
		if running {
			reason += " (sequential boundary crossed)"
		}
	case primary.Verdict == VerdictInsufficient:
		td.Decision, td.Reason = DecisionInconclusive, ReasonInsufficientData
		reason = "not enough data for " + primary.Label
	case running:
		td.Decision, td.Reason = DecisionInconclusive, ReasonRunning
		reason = fmt.Sprintf("running: %s of %s", fmtDays(elapsed), fmtDays(def.PlannedDuration))
	case math.Abs(math.Log1p(primary.MDE)) > math.Abs(math.Log1p(minEffectSigned(def))):
		td.Decision, td.Reason = DecisionInconclusive, ReasonUnderpowered
		reason = fmt.Sprintf("underpowered: detectable %s, minimum effect of interest %s", fmtPct(primary.MDE), fmtPct(minEffectSigned(def)))
	default:
		td.Decision, td.Reason = DecisionInconclusive, ReasonNoDifference
		reason = "no difference on " + primary.Label
	}
	td.Summary = changesLine(td.Metrics) + ": " + reason
}

// minEffectSigned is the minimum effect of interest as a relative change
// in the good direction.
func minEffectSigned(def ExperimentDefinition) float64 {
	e := math.Abs(def.Primary.MinEffect)
	if def.Primary.Direction == LowerIsBetter {
		return -e
	}
	return e
}

// changesLine lists the metrics whose fixed-horizon interval excludes no
// change, as a team would write them: "−40 % payload, −200 ms load p75,
// 2.0 × CPU per request". Times as absolute milliseconds, costs as ratios,
// the rest as relative changes.
func changesLine(ms []MetricResult) string {
	var parts []string
	for _, m := range ms {
		// The line says what the verdicts say: while the experiment runs a
		// fixed-horizon interval may exclude 0 where the sequential one,
		// which decides, does not.
		switch m.Verdict {
		case VerdictBetter, VerdictWorse, VerdictFailed:
		default:
			continue
		}
		mm, _ := LookupExperimentMetric(m.Metric)
		switch {
		case mm.Cost:
			parts = append(parts, fmtRatio(1+m.Relative)+" "+m.Label)
		case mm.Time:
			parts = append(parts, fmtMs(m.Delta)+" "+m.Label)
		default:
			parts = append(parts, fmtPct(m.Relative)+" "+m.Label)
		}
	}
	if len(parts) == 0 {
		return "no significant change"
	}
	return strings.Join(parts, ", ")
}

const minus = "−"

func signed(s string, neg bool) string {
	if neg {
		return minus + s
	}
	return "+" + s
}

// fmtPct formats a relative change: whole percent from 10 %, one decimal
// below.
func fmtPct(r float64) string {
	a := math.Abs(r) * 100
	f := "%.1f %%"
	// Whole percents (a definition's −5 %) print whole.
	if a >= 9.95 || math.Abs(a-math.Round(a)) < 1e-9 {
		f = "%.0f %%"
	}
	return signed(fmt.Sprintf(f, a), r < 0)
}

// fmtMs formats a time difference in milliseconds.
func fmtMs(d float64) string {
	a := math.Abs(d)
	f := "%.1f ms"
	if a >= 9.95 {
		f = "%.0f ms"
	}
	return signed(fmt.Sprintf(f, a), d < 0)
}

// fmtRatio formats a cost ratio: 2.0 ×, 0.75 × near 1.
func fmtRatio(x float64) string {
	if x > 0.95 && x < 1.05 {
		return fmt.Sprintf("%.2f ×", x)
	}
	return fmt.Sprintf("%.1f ×", x)
}

// fmtDays formats a duration in days (hours below a day).
func fmtDays(d time.Duration) string {
	if d < 24*time.Hour {
		return fmt.Sprintf("%.0f h", d.Hours())
	}
	days := d.Hours() / 24
	if math.Abs(days-math.Round(days)) < 0.05 {
		return fmt.Sprintf("%.0f days", math.Round(days))
	}
	return fmt.Sprintf("%.1f days", days)
}
