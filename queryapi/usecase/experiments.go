package usecase

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
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
	if spec.StartTime.Before(now) {
		// Started: a variant that never served while another did names the
		// wrong cohort (a typo, a version never deployed).
		to := now
		if end := spec.End(); end.Before(to) {
			to = end
		}
		data, _, err := s.experimentData(ctx, spec, spec.StartTime, to)
		if err != nil {
			return ExperimentPlan{}, err
		}
		var fe *analysis.FieldError
		if _, err := analysis.EvaluateExperiment(spec.Definition(), spec.StartTime, to, data, analysis.DefaultExperimentConfig()); errors.As(err, &fe) {
			return ExperimentPlan{}, invalid("experiment.%s", fe)
		}
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
	server, dim, valueOf := spec.ServerSide()
	variantOf := map[string]string{} // the server's cohort value → the variant
	control := ""
	for _, v := range spec.Variants {
		variantOf[valueOf(v.Name)] = v.Name
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
		rows, err := s.st.CohortMinutes(ctx, report.CompareQuery{Service: server.Service, Environment: server.Environment,
			Start: from, End: to, Dimension: dim, Control: valueOf(control), Treatment: valueOf(v.Name)}, false, maxExperimentRows)
		if err != nil {
			return nil, nil, err
		}
		for value, series := range hourSeries(rows, from) {
			d := data[variantOf[value]]
			if d == nil || (variantOf[value] == control && len(d.Metrics) > 0) {
				continue // the control is read with every treatment: once is enough
			}
			maps.Copy(d.Metrics, series.metrics)
			if spec.Randomization() == experimentspec.UnitRequest {
				d.Units = series.requests
			}
		}
	}
	if err := s.experimentExtras(ctx, spec, from, to, data, notes); err != nil {
		return nil, nil, err
	}
	out := make([]analysis.VariantData, 0, len(data))
	for _, v := range spec.Variants {
		out = append(out, *data[v.Name])
	}
	return out, notes, nil
}

// uses reports whether the report shows metric m.
func uses(spec experimentspec.Spec, m string) bool { return slices.Contains(usedMetrics(spec), m) }

// usesLoad reports whether a load percentile is shown.
func usesLoad(spec experimentspec.Spec) bool {
	return uses(spec, analysis.ExpLoadP50) || uses(spec, analysis.ExpLoadP75) || uses(spec, analysis.ExpLoadP95)
}

// retentionDays lists the N of every retention_d<N> the report shows.
func retentionDays(spec experimentspec.Spec) map[string]int {
	out := map[string]int{}
	for _, m := range usedMetrics(spec) {
		if n, ok := strings.CutPrefix(m, "retention_d"); ok {
			if d, err := strconv.Atoi(n); err == nil {
				out[m] = d
			}
		}
	}
	return out
}

// maxClientRows bounds a client read (variants × hours of 90 days).
const maxClientRows = 50_000

// maxCovariateUnits caps the users CUPED reads (a deterministic sample).
const maxCovariateUnits = 200_000

// covariateLookback is the pre-period of CUPED's per-user values.
const covariateLookback = 28 * 24 * time.Hour

// experimentExtras adds what other signals than the unit's requests give:
// cost from resource-usage metrics, the client's loads, crashes,
// conversions and retention, and the randomization units the sample-ratio
// check counts when they are sessions or users.
func (s *Service) experimentExtras(ctx context.Context, spec experimentspec.Spec, from, to time.Time,
	data map[string]*analysis.VariantData, notes map[string]string) error {
	unit := spec.Randomization()
	server, serverDim, valueOf := spec.ServerSide()
	variantOf := map[string]string{}
	for _, v := range spec.Variants {
		variantOf[valueOf(v.Name)] = v.Name
	}
	dim := experimentspec.CohortDimension(spec.Dimension)
	if uses(spec, analysis.ExpCPUPerRequest) || uses(spec, analysis.ExpMemoryPerRequest) {
		if serverDim != schema.DimensionVersion {
			const why = "not measured: one process serves every variant of a flag, so its CPU and memory cannot be split (self_time is the proxy)"
			notes[analysis.ExpCPUPerRequest], notes[analysis.ExpMemoryPerRequest] = why, why
		} else {
			pts, err := s.st.ResourceUsage(ctx, store.UsageQuery{Service: server.Service, Environment: server.Environment,
				From: from.Truncate(experimentBucket), To: ceilTo(to, experimentBucket), Bucket: experimentBucket})
			if err != nil {
				return err
			}
			cpu, mem := map[string][]analysis.MetricBucket{}, map[string][]analysis.MetricBucket{}
			hasCPU, hasMem := map[string]bool{}, map[string]bool{}
			for _, p := range pts {
				if p.Requests <= 0 {
					continue
				}
				cpu[p.Version] = append(cpu[p.Version], analysis.MetricBucket{Num: p.CPUSeconds, Den: p.Requests})
				mem[p.Version] = append(mem[p.Version], analysis.MetricBucket{Num: p.MemoryByteAvg * experimentBucket.Seconds(), Den: p.Requests})
				hasCPU[p.Version] = hasCPU[p.Version] || p.CPUSeconds > 0
				hasMem[p.Version] = hasMem[p.Version] || p.MemoryByteAvg > 0
			}
			// A version whose instances sent no CPU (or memory) metric has
			// none measured, not zero.
			for name, d := range data {
				if v := valueOf(name); hasCPU[v] {
					d.Metrics[analysis.ExpCPUPerRequest] = analysis.MetricSeries{Buckets: cpu[v]}
				}
				if v := valueOf(name); hasMem[v] {
					d.Metrics[analysis.ExpMemoryPerRequest] = analysis.MetricSeries{Buckets: mem[v]}
				}
			}
		}
	}
	if uses(spec, analysis.ExpSelfTime) {
		notes[analysis.ExpSelfTime] = "proxy for CPU: time in the request's own spans, outside its traced calls (the processor's self_time.enabled)"
		control := ""
		for _, v := range spec.Variants {
			if v.Control {
				control = v.Name
			}
		}
		for _, v := range spec.Variants {
			if v.Control || control == "" { // a plan's pre-period has no variants to compare
				continue
			}
			st, err := s.st.CohortSelfTime(ctx, report.CompareQuery{Service: server.Service, Environment: server.Environment,
				Start: from, End: to, Dimension: serverDim, Control: valueOf(control), Treatment: valueOf(v.Name)})
			if err != nil {
				return err
			}
			for value, t := range st {
				if d := data[variantOf[value]]; d != nil && t.Requests > 0 {
					// One bucket: the read gives the range's mean.
					d.Metrics[analysis.ExpSelfTime] = analysis.MetricSeries{Buckets: []analysis.MetricBucket{{Num: t.MeanMs * t.Requests / 1e3, Den: t.Requests}}}
				}
			}
		}
	}
	retention := retentionDays(spec)
	client := usesLoad(spec) || uses(spec, analysis.ExpCrashRate) || uses(spec, analysis.ExpConversionRate) || len(retention) > 0 ||
		unit != experimentspec.UnitRequest
	if !client {
		return nil
	}
	q := store.ClientQuery{Service: spec.Unit.Service, Environment: spec.Unit.Environment, Dimension: dim, From: from, To: to}
	if usesLoad(spec) || uses(spec, analysis.ExpCrashRate) || unit == experimentspec.UnitSession {
		cohorts, err := s.st.ClientCohorts(ctx, q, spec.LoadOperations, maxClientRows)
		if err != nil {
			return err
		}
		for _, c := range cohorts {
			d := data[c.Variant]
			if d == nil {
				continue
			}
			var loads []analysis.MetricBucket
			for _, h := range c.Hours {
				var hist store.Histogram
				for _, op := range spec.LoadOperations {
					hist.Add(h.Loads[op])
				}
				if len(hist.Keys) > 0 {
					loads = append(loads, analysis.MetricBucket{Hist: stats.Hist{Keys: hist.Keys, Weights: hist.Weights}})
				}
			}
			if len(loads) > 0 {
				for _, m := range []string{analysis.ExpLoadP50, analysis.ExpLoadP75, analysis.ExpLoadP95} {
					d.Metrics[m] = analysis.MetricSeries{Buckets: loads}
				}
			}
			if c.Sessions > 0 {
				d.Metrics[analysis.ExpCrashRate] = analysis.MetricSeries{Buckets: []analysis.MetricBucket{{Num: float64(c.CrashedSessions), Den: float64(c.Sessions)}}}
			}
			if unit == experimentspec.UnitSession {
				d.Units = float64(c.Sessions)
			}
		}
	}
	if uses(spec, analysis.ExpConversionRate) {
		by := store.BySession
		if unit == experimentspec.UnitUser {
			by = store.ByUser
		}
		conv, err := s.st.Conversions(ctx, q, by, spec.ConversionOutcome, "", maxClientRows)
		if err != nil {
			return err
		}
		for _, c := range conv {
			if d := data[c.Variant]; d != nil && c.Units > 0 {
				d.Metrics[analysis.ExpConversionRate] = analysis.MetricSeries{Buckets: []analysis.MetricBucket{{Num: float64(c.Converted), Den: float64(c.Units)}}}
			}
		}
		if by == store.ByUser {
			// CUPED: each user's conversions in the four weeks before.
			cov, err := s.st.UnitCovariates(ctx, q, from.Add(-covariateLookback), store.CovariateMetric{Outcome: spec.ConversionOutcome}, maxCovariateUnits)
			if err != nil {
				return err
			}
			units := map[string][]analysis.UnitValue{}
			for _, u := range cov {
				units[u.Variant] = append(units[u.Variant], analysis.UnitValue{Y: min(u.Value, 1), X: min(u.Pre, 1), HasX: true})
			}
			if len(cov) < maxCovariateUnits { // the whole population: the per-user means are the estimate
				for name, us := range units {
					if d := data[name]; d != nil && len(us) > 0 {
						d.Metrics[analysis.ExpConversionRate] = analysis.MetricSeries{Units: us}
					}
				}
			}
		}
	}
	for m, days := range retention {
		rows, err := s.st.Retention(ctx, q, days, to, maxClientRows)
		if err != nil {
			return err
		}
		for _, r := range rows {
			if d := data[r.Variant]; d != nil && r.Eligible > 0 {
				d.Metrics[m] = analysis.MetricSeries{Buckets: []analysis.MetricBucket{{Num: float64(r.Retained), Den: float64(r.Eligible)}}}
			}
		}
		if to.Sub(from) < time.Duration(days)*24*time.Hour {
			notes[m] = fmt.Sprintf("only users first seen at least %d days before the look count", days)
		}
	}
	if unit == experimentspec.UnitUser {
		rows, err := s.st.Retention(ctx, q, 1, to, maxClientRows)
		if err != nil {
			return err
		}
		for _, r := range rows {
			if d := data[r.Variant]; d != nil {
				d.Units = float64(r.Users)
			}
		}
	}
	return nil
}

// ceilTo rounds t up to a multiple of d.
func ceilTo(t time.Time, d time.Duration) time.Time {
	if r := t.Truncate(d); r.Before(t) {
		return r.Add(d)
	}
	return t
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

// baselineData reads the pre-period of a plan: every metric of the report
// over [from, to) along the version dimension (before the experiment its
// variants do not exist), all versions together.
func (s *Service) baselineData(ctx context.Context, spec experimentspec.Spec, from, to time.Time) (baseline, error) {
	out := baseline{Metrics: map[string]analysis.MetricSeries{}}
	server, _, _ := spec.ServerSide()
	if err := s.baselineOf(ctx, spec, server, true, from, to, &out); err != nil {
		return out, err
	}
	if server != spec.Unit { // the client's own metrics and units from its unit
		if err := s.baselineOf(ctx, spec, spec.Unit, false, from, to, &out); err != nil {
			return out, err
		}
	}
	return out, nil
}

// baselineOf adds to out the pre-period of unit u along its versions, all
// together: its server metrics and cost when server, else (or also, for a
// unit that is both) its client metrics.
func (s *Service) baselineOf(ctx context.Context, spec experimentspec.Spec, u analysis.ExperimentUnit, server bool, from, to time.Time, out *baseline) error {
	dims, err := s.st.CohortValues(ctx, u.Service, u.Environment, from, to, maxBaselineVersions)
	if err != nil {
		return err
	}
	var versions []string
	for _, d := range dims {
		if d.Dimension == schema.DimensionVersion || d.Dimension == "" {
			for _, v := range d.Values {
				versions = append(versions, v.Value)
			}
		}
	}
	if len(versions) == 0 {
		return nil
	}
	pre := spec
	pre.Unit, pre.Dimension, pre.Backend, pre.Variants = u, schema.DimensionVersion, nil, nil
	data := map[string]*analysis.VariantData{}
	for _, v := range versions {
		pre.Variants = append(pre.Variants, analysis.ExperimentVariant{Name: v})
		data[v] = &analysis.VariantData{Name: v, Metrics: map[string]analysis.MetricSeries{}}
	}
	if server {
		// The server metrics, a pair of versions at a time (the cohort read
		// takes two).
		for i := 0; i < len(versions); i += 2 {
			q := report.CompareQuery{Service: u.Service, Environment: u.Environment, Start: from, End: to,
				Dimension: schema.DimensionVersion, Control: versions[i], Treatment: versions[i] + "\x00none"}
			if i+1 < len(versions) {
				q.Treatment = versions[i+1]
			}
			rows, err := s.st.CohortMinutes(ctx, q, false, maxExperimentRows)
			if err != nil {
				return err
			}
			for v, series := range hourSeries(rows, from) {
				if d := data[v]; d != nil {
					maps.Copy(d.Metrics, series.metrics)
					if spec.Randomization() == experimentspec.UnitRequest {
						d.Units = series.requests
					}
				}
			}
		}
	}
	if err := s.experimentExtras(ctx, pre, from, to, data, map[string]string{}); err != nil {
		return err
	}
	for _, v := range versions {
		d := data[v]
		out.Units += d.Units
		for m, series := range d.Metrics {
			all := out.Metrics[m]
			all.Buckets = append(all.Buckets, series.Buckets...)
			all.Units = append(all.Units, series.Units...)
			out.Metrics[m] = all
		}
	}
	return nil
}

// maxBaselineVersions bounds the versions a plan reads the pre-period of.
const maxBaselineVersions = 10
