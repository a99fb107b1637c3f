package usecase

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/changelens/changelens/internal/schema"
	"github.com/changelens/changelens/internal/stats"
	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/experimentspec"
	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/store"
)

// Experiment statuses.
const (
	ExperimentNotStarted = "NOT_STARTED"
	ExperimentRunning    = "RUNNING"
	ExperimentComplete   = "COMPLETE"
)

// ExperimentResult is an experiment's report at one look: its definition,
// plan, and — once started — the analysis of every metric
// (docs/experiments.md).
type ExperimentResult struct {
	Spec      experimentspec.Spec
	Source    string
	AppliedAt time.Time
	Status    string
	AsOf      time.Time
	Plan      ExperimentPlan
	// Report is zero before the start.
	Report analysis.ExperimentReport
	// Notes per metric: what a reader must know about how it was measured.
	Notes map[string]string
}

// ExperimentPlan is the power calculation with the traffic it rests on.
type ExperimentPlan struct {
	analysis.ExperimentPlan
	UnitsPerDay float64
}

// planLookback is the pre-period a plan is computed from.
const planLookback = 7 * 24 * time.Hour

// experimentBucket is the time bucket of every series: the clusters of the
// estimators' cluster-robust variances, and the granularity of peeking.
const experimentBucket = time.Hour

// Experiments lists the stored experiments with their current reports.
func (s *Service) Experiments(ctx context.Context, now time.Time) ([]ExperimentResult, error) {
	stored, err := s.st.Experiments(ctx, "")
	if err != nil {
		return nil, err
	}
	out := make([]ExperimentResult, 0, len(stored))
	for _, e := range stored {
		r, err := s.experiment(ctx, e, now)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// ExperimentReport is one experiment's report as of asOf (capped at its
// planned end); report.ErrNotFound when no experiment has the id.
func (s *Service) ExperimentReport(ctx context.Context, id string, asOf time.Time) (ExperimentResult, error) {
	stored, err := s.st.Experiments(ctx, id)
	if err != nil {
		return ExperimentResult{}, err
	}
	if len(stored) == 0 {
		return ExperimentResult{}, fmt.Errorf("experiment %q: %w", id, report.ErrNotFound)
	}
	return s.experiment(ctx, stored[0], asOf)
}

func (s *Service) experiment(ctx context.Context, e store.StoredExperiment, asOf time.Time) (ExperimentResult, error) {
	spec, err := experimentspec.Decode(e.Definition)
	if err != nil {
		return ExperimentResult{}, fmt.Errorf("experiment %q: stored definition: %w", e.ID, err)
	}
	r := ExperimentResult{Spec: spec, Source: e.Source, AppliedAt: e.AppliedAt, AsOf: asOf.UTC()}
	if end := spec.End(); r.AsOf.After(end) {
		r.AsOf = end
	}
	if r.Plan, err = s.plan(ctx, spec, asOf); err != nil {
		return ExperimentResult{}, err
	}
	if !r.AsOf.After(spec.StartTime) {
		r.Status = ExperimentNotStarted
		return r, nil
	}
	data, notes, err := s.experimentData(ctx, spec, spec.StartTime, r.AsOf)
	if err != nil {
		return ExperimentResult{}, err
	}
	r.Notes = notes
	err = s.compute(ctx, func() {
		r.Report, err = analysis.EvaluateExperiment(spec.Definition(), spec.StartTime, r.AsOf, data, analysis.DefaultExperimentConfig())
	})
	if err != nil {
		var fe *analysis.FieldError
		if errors.As(err, &fe) { // a variant that never served: the definition names the wrong one
			return ExperimentResult{}, invalid("%s", err)
		}
		return ExperimentResult{}, err
	}
	r.Status = ExperimentRunning
	if !r.Report.Running {
		r.Status = ExperimentComplete
	}
	return r, nil
}

// PlanExperiment checks a definition (an *report.InvalidArgumentError
// naming the field) and computes its plan from the unit's own traffic.
func (s *Service) PlanExperiment(ctx context.Context, spec experimentspec.Spec, now time.Time) (ExperimentPlan, error) {
	if err := spec.Validate(); err != nil {
		return ExperimentPlan{}, invalid("experiment.%s", err)
	}
	return s.plan(ctx, spec, now)
}

// plan is the power calculation from the week before the start (or before
// now, for an experiment not started yet), all variants' traffic together.
func (s *Service) plan(ctx context.Context, spec experimentspec.Spec, now time.Time) (ExperimentPlan, error) {
	end := spec.StartTime
	if end.After(now) {
		end = now
	}
	from := end.Add(-planLookback)
	pre, err := s.baselineData(ctx, spec, from, end)
	if err != nil {
		return ExperimentPlan{}, err
	}
	base := analysis.ExperimentBaseline{Days: planLookback.Hours() / 24, Metrics: pre.Metrics}
	base.UnitsPerDay = pre.Units / base.Days
	var p analysis.ExperimentPlan
	err = s.compute(ctx, func() { p, err = analysis.PlanExperiment(spec.Definition(), base, analysis.DefaultExperimentConfig()) })
	if err != nil {
		return ExperimentPlan{}, invalid("experiment.%s", err)
	}
	return ExperimentPlan{ExperimentPlan: p, UnitsPerDay: base.UnitsPerDay}, nil
}

// cohortDimension is the comparison's name of an experiment's dimension.
func cohortDimension(d string) string {
	if key, ok := strings.CutPrefix(d, "flag:"); ok {
		return schema.DimensionFeatureFlag + key
	}
	return d
}

// serverMetrics are the metrics the unit's own requests give
// (cohort_hist_1m / latency_hist_1m).
var serverMetrics = []string{analysis.ExpLatencyP50, analysis.ExpLatencyP95, analysis.ExpLatencyP99,
	analysis.ExpErrorRate, analysis.ExpPayloadSize}

// usedMetrics are the metrics the report shows: the declared ones and the
// server's always (they cost one read).
func usedMetrics(spec experimentspec.Spec) []string {
	seen := map[string]bool{}
	var out []string
	add := func(m string) {
		if m != "" && !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	if spec.PrimaryMetric != nil {
		add(spec.PrimaryMetric.Metric)
	}
	for _, g := range spec.Guardrails {
		add(g.Metric)
	}
	for _, m := range spec.SecondaryMetrics {
		add(m)
	}
	for _, m := range serverMetrics {
		add(m)
	}
	return out
}

// maxExperimentRows bounds a read of cohort minutes (90 days of two
// cohorts is 259 200).
const maxExperimentRows = 300_000

// experimentData reads every variant's series of the metrics the report
// shows over [from, to), in hour buckets.
func (s *Service) experimentData(ctx context.Context, spec experimentspec.Spec, from, to time.Time) ([]analysis.VariantData, map[string]string, error) {
	dim := cohortDimension(spec.Dimension)
	control := ""
	for _, v := range spec.Variants {
		if v.Control {
			control = v.Name
		}
	}
	data := map[string]*analysis.VariantData{}
	for _, v := range spec.Variants {
		data[v.Name] = &analysis.VariantData{Name: v.Name, Metrics: map[string]analysis.MetricSeries{}}
	}
	notes := map[string]string{}
	for _, v := range spec.Variants {
		if v.Control {
			continue
		}
		rows, err := s.st.CohortMinutes(ctx, report.CompareQuery{Service: spec.Unit.Service, Environment: spec.Unit.Environment,
			Start: from, End: to, Dimension: dim, Control: control, Treatment: v.Name}, false, maxExperimentRows)
		if err != nil {
			return nil, nil, err
		}
		for variant, series := range hourSeries(rows, from) {
			d := data[variant]
			if d == nil || (variant == control && len(d.Metrics) > 0) {
				continue // the control is read with every treatment: once is enough
			}
			for m, s := range series.metrics {
				d.Metrics[m] = s
			}
			if spec.Randomization() == experimentspec.UnitRequest {
				d.Units = series.requests
			}
		}
	}
	out := make([]analysis.VariantData, 0, len(data))
	for _, v := range spec.Variants {
		out = append(out, *data[v.Name])
	}
	used := usedMetrics(spec)
	for _, m := range used {
		if !slices.Contains(serverMetrics, m) {
			if _, ok := notes[m]; !ok {
				notes[m] = "not measured: this server has no source for it yet"
			}
		}
	}
	return out, notes, nil
}

// variantSeries is one cohort's server metrics over a range.
type variantSeries struct {
	metrics  map[string]analysis.MetricSeries
	requests float64
}

// hourSeries folds a comparison's cohort minutes into hour buckets per
// cohort: latency histograms merged, errors over requests, response bytes
// (from the size histogram) over responses.
func hourSeries(rows []store.CohortMinute, from time.Time) map[string]variantSeries {
	type acc struct {
		hist             map[uint16]float64
		requests, errors float64
		bytes, responses float64
	}
	byCohort := map[string]map[int64]*acc{}
	for _, r := range rows {
		h := int64(r.Minute.Sub(from) / experimentBucket)
		m := byCohort[r.Cohort]
		if m == nil {
			m = map[int64]*acc{}
			byCohort[r.Cohort] = m
		}
		a := m[h]
		if a == nil {
			a = &acc{hist: map[uint16]float64{}}
			m[h] = a
		}
		a.requests += r.Requests
		a.errors += r.Errors
		for i, k := range r.HistKeys {
			a.hist[k] += r.HistWeights[i]
		}
		for i, k := range r.RespHistKeys {
			a.bytes += r.RespHistWeights[i] * schema.SizeValue(k)
			a.responses += r.RespHistWeights[i]
		}
	}
	out := map[string]variantSeries{}
	for cohort, hours := range byCohort {
		vs := variantSeries{metrics: map[string]analysis.MetricSeries{}}
		keys := slices.Sorted(maps.Keys(hours))
		var lat, errs, pay []analysis.MetricBucket
		for _, h := range keys {
			a := hours[h]
			vs.requests += a.requests
			hk := slices.Sorted(maps.Keys(a.hist))
			hw := make([]float64, len(hk))
			for i, k := range hk {
				hw[i] = a.hist[k]
			}
			lat = append(lat, analysis.MetricBucket{Hist: stats.Hist{Keys: hk, Weights: hw}})
			errs = append(errs, analysis.MetricBucket{Num: a.errors, Den: a.requests})
			if a.responses > 0 {
				pay = append(pay, analysis.MetricBucket{Num: a.bytes, Den: a.responses})
			}
		}
		for _, m := range []string{analysis.ExpLatencyP50, analysis.ExpLatencyP95, analysis.ExpLatencyP99} {
			vs.metrics[m] = analysis.MetricSeries{Buckets: lat}
		}
		vs.metrics[analysis.ExpErrorRate] = analysis.MetricSeries{Buckets: errs}
		if len(pay) > 0 {
			vs.metrics[analysis.ExpPayloadSize] = analysis.MetricSeries{Buckets: pay}
		}
		out[cohort] = vs
	}
	return out
}

// baseline is the unit's traffic before an experiment, all variants
// together.
type baseline struct {
	Units   float64
	Metrics map[string]analysis.MetricSeries
}

// baselineData reads the pre-period of a plan: the server metrics of the
// unit's two busiest versions over [from, to) (all its traffic but what
// older versions still served).
func (s *Service) baselineData(ctx context.Context, spec experimentspec.Spec, from, to time.Time) (baseline, error) {
	out := baseline{Metrics: map[string]analysis.MetricSeries{}}
	dims, err := s.st.CohortValues(ctx, spec.Unit.Service, spec.Unit.Environment, from, to, 2)
	if err != nil {
		return out, err
	}
	var versions []string
	for _, d := range dims {
		if d.Dimension == schema.DimensionVersion || d.Dimension == "" {
			for _, v := range d.Values[:min(2, len(d.Values))] {
				versions = append(versions, v.Value)
			}
		}
	}
	if len(versions) == 0 {
		return out, nil
	}
	q := report.CompareQuery{Service: spec.Unit.Service, Environment: spec.Unit.Environment, Start: from, End: to,
		Dimension: schema.DimensionVersion, Control: versions[0], Treatment: versions[0] + "\x00none"}
	if len(versions) > 1 {
		q.Treatment = versions[1]
	}
	rows, err := s.st.CohortMinutes(ctx, q, false, maxExperimentRows)
	if err != nil {
		return out, err
	}
	for i := range rows {
		rows[i].Cohort = "" // the versions together
	}
	all := hourSeries(rows, from)[""]
	out.Metrics = all.metrics
	if spec.Randomization() == experimentspec.UnitRequest {
		out.Units = all.requests
	}
	return out, nil
}
