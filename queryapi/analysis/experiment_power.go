package analysis

import (
	"fmt"
	"math"

	"github.com/changelens/changelens/internal/stats"
)

// ExperimentBaseline is the unit's own traffic before the experiment, at
// full traffic (every variant's share together): what the power
// calculation plans from.
type ExperimentBaseline struct {
	// Days the pre-period covers.
	Days float64
	// UnitsPerDay: randomization units per day (for per-unit metrics).
	UnitsPerDay float64
	// Metrics: the pre-period data of each metric, in the shapes the report
	// reads (buckets of an hour or a day; or per-unit values, X then being
	// the value of the period before, for the CUPED correlation).
	Metrics map[string]MetricSeries
}

// MetricPlan is the power calculation of one metric.
type MetricPlan struct {
	Metric string
	// Effect is the relative change planned for (the primary metric's
	// minimum effect of interest in its good direction, a guardrail's
	// tolerance in its bad direction).
	Effect float64
	// DailyLogVariance: the variance of the log of the metric's estimate
	// from one day of full traffic; an arm with share s over T days has
	// DailyLogVariance / (s·T).
	DailyLogVariance float64
	// DaysNeeded: whole days for the treatment with the smallest share to
	// detect Effect at the definition's α (two-sided; α/k for k
	// treatments on the primary) and power. +Inf when not estimable.
	DaysNeeded float64
	// MDEAtPlanned: the relative change detectable at the planned
	// duration, in the same direction as Effect.
	MDEAtPlanned float64
	// CUPEDFactor: 1 − ρ² applied when the baseline has pre-period values.
	CUPEDFactor float64
	OK          bool
	Problem     string
}

// ExperimentPlan is the power calculation of a definition.
type ExperimentPlan struct {
	Primary    MetricPlan
	Guardrails []MetricPlan
	// Sufficient: the planned duration reaches the primary metric's
	// DaysNeeded.
	Sufficient bool
	// Message: "at your traffic, detecting −5.0 % on load_p75 needs 9 days;
	// planned 7".
	Message string
}

// PlanExperiment is the power calculation of docs/experiments.md ("Power"):
// per metric, the variance of the log estimate that one day of the unit's
// traffic gives, from its own pre-period data, then the days for the
// minimum effect of interest
//
//	T = (z_{1−α/2} + z_power)² · V_day · (1/s_t + 1/s_c) / ln(1 + effect)²
//
// and the effect detectable at the planned duration. V_day is
//
//   - proportions: (1 − p)/(p · trials per day) — the log relative risk;
//   - ratios: the cluster-robust delta-method variance of the pre-period
//     ratio (buckets as clusters) ÷ R², times the pre-period's days;
//   - percentiles: the asymptotic variance of a sample quantile
//     q(1−q)/(n f(Q)²) on the log scale — the density from the
//     histogram (QuantileDensityLog) — times the design effect of
//     clustering in time buckets, times the days;
//   - per-unit values: var(y)(1 − ρ²)/(ȳ² · units per day), ρ the
//     correlation with the previous period when it is given (CUPED).
func PlanExperiment(def ExperimentDefinition, base ExperimentBaseline, cfg ExperimentConfig) (ExperimentPlan, error) {
	def = def.WithDefaults()
	if err := def.Validate(); err != nil {
		return ExperimentPlan{}, err
	}
	cfg = cfg.withDefaults()
	ci := def.control()
	minT := 1.0
	sc := def.Variants[ci].Share
	for i, v := range def.Variants {
		if i != ci && v.Share < minT {
			minT = v.Share
		}
	}
	arms := 1/minT + 1/sc
	k := float64(len(def.Variants) - 1)
	planned := def.PlannedDuration.Hours() / 24

	plan := func(name string, effect, alpha float64) MetricPlan {
		mp := MetricPlan{Metric: name, Effect: effect, CUPEDFactor: 1, DaysNeeded: math.Inf(1), MDEAtPlanned: math.Inf(1)}
		m, _ := LookupExperimentMetric(name)
		s, ok := base.Metrics[name]
		if !ok {
			mp.Problem = "no pre-period data"
			return mp
		}
		vday, cf, problem := dailyLogVariance(m, s, base, cfg)
		if problem != "" {
			mp.Problem = problem
			return mp
		}
		mp.DailyLogVariance, mp.CUPEDFactor, mp.OK = vday, cf, true
		z := stats.NormalQuantile(1-alpha/2) + stats.NormalQuantile(def.Power)
		delta := math.Abs(math.Log1p(effect))
		mp.DaysNeeded = math.Ceil(z * z * vday * arms / (delta * delta))
		sd := math.Sqrt(vday * arms / planned)
		if effect < 0 {
			mp.MDEAtPlanned = math.Expm1(-z * sd)
		} else {
			mp.MDEAtPlanned = math.Expm1(z * sd)
		}
		return mp
	}
	var out ExperimentPlan
	out.Primary = plan(def.Primary.Metric, minEffectSigned(def), def.Alpha/k)
	for _, g := range def.Guardrails {
		m, _ := LookupExperimentMetric(g.Metric)
		eff := g.MaxDegradation
		if m.Direction == HigherIsBetter {
			eff = -eff
		}
		if g.MaxDegradation > 0 {
			out.Guardrails = append(out.Guardrails, plan(g.Metric, eff, def.Alpha))
		}
	}
	p := out.Primary
	if !p.OK {
		out.Message = fmt.Sprintf("cannot plan %s: %s", p.Metric, p.Problem)
		return out, nil
	}
	out.Sufficient = p.DaysNeeded <= math.Ceil(planned-1e-9)
	out.Message = fmt.Sprintf("at your traffic, detecting %s on %s needs %s; planned %s", fmtPct(p.Effect), p.Metric, fmtDayCount(p.DaysNeeded), fmtDayCount(planned))
	if !out.Sufficient {
		out.Message += fmt.Sprintf(" (detectable at %s: %s)", fmtDayCount(planned), fmtPct(p.MDEAtPlanned))
	}
	return out, nil
}

func fmtDayCount(d float64) string {
	if math.IsInf(d, 0) {
		return "more days than there is traffic for"
	}
	if d == math.Round(d) {
		if d == 1 {
			return "1 day"
		}
		return fmt.Sprintf("%.0f days", d)
	}
	return fmt.Sprintf("%.1f days", d)
}

// dailyLogVariance is V_day of PlanExperiment and the CUPED factor.
func dailyLogVariance(m ExperimentMetric, s MetricSeries, base ExperimentBaseline, cfg ExperimentConfig) (vday, cupedFactor float64, problem string) {
	cupedFactor = 1
	if len(s.Units) > 0 {
		if !(base.UnitsPerDay > 0) {
			return 0, 1, "per-unit baseline without units per day"
		}
		ys := make([]float64, len(s.Units))
		var xs, xy []float64
		for i, u := range s.Units {
			ys[i] = u.Y
			if u.HasX {
				xs, xy = append(xs, u.X), append(xy, u.Y)
			}
		}
		mean, vm, ok := stats.MeanVariance(ys)
		if !ok || !(mean > 0) {
			return 0, 1, "per-unit baseline mean is not positive"
		}
		if _, _, _, f, ok := stats.CUPED(xs, xy); ok {
			cupedFactor = f
		}
		perUnit := vm * float64(len(ys)) // var(y)
		return perUnit * cupedFactor / (mean * mean * base.UnitsPerDay), cupedFactor, ""
	}
	if !(base.Days > 0) {
		return 0, 1, "baseline without its length in days"
	}
	switch m.Kind {
	case KindProportion:
		var x, n float64
		for _, b := range s.Buckets {
			x, n = x+b.Num, n+b.Den
		}
		if !(x > 0) || !(n > x) {
			return 0, 1, "no events in the pre-period: the rate is unknown"
		}
		p := x / n
		return (1 - p) / (p * n / base.Days), 1, ""
	case KindRatio:
		e := estimateMetric(m, s, cupedAdjust{}, cfg)
		if !e.ok {
			return 0, 1, "fewer than two pre-period buckets, or a zero ratio"
		}
		return e.logVar * base.Days, 1, ""
	case KindPercentile:
		hs := make([]stats.Hist, len(s.Buckets))
		for i, b := range s.Buckets {
			hs[i] = b.Hist
		}
		_, n, ok := stats.HistQuantile(hs, m.Quantile, cfg.Edges)
		if !ok {
			return 0, 1, "empty pre-period histogram"
		}
		sp, ok := stats.QuantileDensityLog(hs, m.Quantile, n, cfg.Edges)
		if !ok {
			return 0, 1, "pre-period histogram too thin for a density"
		}
		deff := 1.0
		if len(hs) >= cfg.MinClusters {
			deff = stats.QuantileDesignEffect(hs, m.Quantile, cfg.Edges)
		}
		q := m.Quantile
		return q * (1 - q) * sp * sp * deff / n * base.Days, 1, ""
	}
	return 0, 1, "unknown metric kind"
}
