package usecase

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"time"

	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/experimentspec"
	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/teams"
)

// MaxRetrospectiveExperiments bounds the experiments of a retrospective:
// each is a report computed from its data.
const MaxRetrospectiveExperiments = 20

// RetrospectiveQuery asks for a team's retrospective of one period.
type RetrospectiveQuery struct {
	Team        teams.Team
	Environment string
	Edition     string // "" for report.DefaultEdition
	Period      teams.Period
	Now         time.Time
}

// RetrospectiveMetric is one DORA metric this period against the previous
// and the team's target; NaN stands for null.
type RetrospectiveMetric struct {
	Metric, Unit      string
	Current, Previous float64
	Change            float64
	Trend             string
	Target            float64
	TargetMet         bool
	HasTargetMet      bool // TargetMet is known (current and target are)
	Focus             bool
}

// RetrospectiveExperiment is an experiment of the team's services whose
// planned end fell in the period, with its decision.
type RetrospectiveExperiment struct {
	ID, Description, Service string
	PlannedEnd               time.Time
	Decision                 string // SHIP, DONT_SHIP or INCONCLUSIVE
	Summary                  string
}

// Retrospective is a team's look back at one period (docs/teams.md).
type Retrospective struct {
	Team, Environment string
	Services          []string // the team's
	Period, Previous  teams.Period
	// End is the period's end, or now while it runs; the previous period
	// is whole.
	End               time.Time
	Link              string
	Current, Prior    report.DORAFigures
	Metrics           []RetrospectiveMetric
	FocusMetric       string
	FailedDeployments []report.Deployment // newest first
	Experiments       []RetrospectiveExperiment
	Markdown          string
}

// RetroLink is the stable link of a retrospective in the web UI.
func RetroLink(team, period, environment string) string {
	return "/ui/retro/" + url.PathEscape(team) + "/" + url.PathEscape(period) + "?environment=" + url.QueryEscape(environment)
}

// Retrospective computes a team's retrospective of q.Period: the DORA
// figures of its services over the period (up to now) and the whole
// previous period, the five metrics against each other and the team's
// targets, the change failures of the period and the experiments that
// ended in it. Only the team's services count; nothing is grouped by person.
func (s *Service) Retrospective(ctx context.Context, q RetrospectiveQuery) (Retrospective, error) {
	p := q.Period
	end := p.End
	if q.Now.Before(end) {
		end = q.Now
	}
	if !end.After(p.Start) {
		return Retrospective{}, invalid("period: %s has not started", p.Name)
	}
	edition := cmp.Or(q.Edition, report.DefaultEdition)
	prev := p.Previous()
	r := Retrospective{
		Team: q.Team.Name, Environment: q.Environment, Services: q.Team.Services, Period: p, Previous: prev, End: end,
		Link:        RetroLink(q.Team.Name, p.Name, q.Environment),
		FocusMetric: q.Team.FocusFor(p.Quarter()),
	}
	figures := func(start, end time.Time) (report.DORAFigures, []report.Deployment, error) {
		dq := report.DORAQuery{Services: q.Team.Services, Environment: q.Environment, Start: start, End: end, Edition: edition}
		deps, err := s.doraDeployments(ctx, dq, true)
		if err != nil {
			return report.DORAFigures{}, nil, err
		}
		rep, err := analysis.DORA(deps, start, end, report.IntervalAll, edition)
		if err != nil {
			return report.DORAFigures{}, nil, invalid("%v", err)
		}
		return rep.Summary, deps, nil
	}
	var deps []report.Deployment
	var err error
	if r.Current, deps, err = figures(p.Start, end); err != nil {
		return Retrospective{}, err
	}
	if r.Prior, _, err = figures(prev.Start, prev.End); err != nil {
		return Retrospective{}, err
	}
	for _, m := range teams.Metrics {
		rm := RetrospectiveMetric{Metric: m, Unit: teams.MetricUnit(m), Current: metricValue(r.Current, m),
			Previous: metricValue(r.Prior, m), Target: q.Team.Targets.Target(m), Focus: m == r.FocusMetric}
		rm.Change, rm.Trend = teams.Trend(m, rm.Current, rm.Previous)
		rm.TargetMet, rm.HasTargetMet = teams.TargetMet(m, rm.Current, rm.Target)
		r.Metrics = append(r.Metrics, rm)
	}
	// The deployments Figures counts as failed changes: change failures
	// that are not rollbacks (a rollback is the recovery, not a change).
	for _, d := range deps {
		if d.ChangeFailure && !d.Rollback {
			r.FailedDeployments = append(r.FailedDeployments, d)
		}
	}
	slices.SortFunc(r.FailedDeployments, func(a, b report.Deployment) int {
		return cmp.Or(b.DeployTime.Compare(a.DeployTime), cmp.Compare(b.ID, a.ID))
	})
	if r.Experiments, err = s.retroExperiments(ctx, q, end); err != nil {
		return Retrospective{}, err
	}
	r.Markdown = RetrospectiveMarkdown(r)
	return r, nil
}

// metricValue is one metric of f in its retrospective unit; NaN without
// samples (no lead time, no restore, no change, no deployment), so that
// "no data" never reads as a zero that improved or met a target.
func metricValue(f report.DORAFigures, metric string) float64 {
	switch metric {
	case "deployment_frequency":
		return f.DeploymentFrequencyPerDay
	case "lead_time":
		if f.LeadTimeSampleCount > 0 {
			return f.LeadTimeMedianSeconds
		}
	case "change_failure_rate":
		if f.ChangeCount > 0 {
			return f.ChangeFailureRate
		}
	case "failed_deployment_recovery_time":
		if f.RestoreSampleCount > 0 {
			return f.TimeToRestoreMedianSeconds
		}
	case "rework_rate":
		if f.DeploymentCount > 0 {
			return f.ReworkRate
		}
	}
	return math.NaN()
}

// retroExperiments are the experiments of the team's services in the
// environment whose planned end is in [period start, end) — ended, so
// their decision is final — earliest first, at most
// MaxRetrospectiveExperiments.
func (s *Service) retroExperiments(ctx context.Context, q RetrospectiveQuery, end time.Time) ([]RetrospectiveExperiment, error) {
	stored, err := s.st.Experiments(ctx, "")
	if err != nil {
		return nil, err
	}
	type cand struct {
		i    int
		spec experimentspec.Spec
	}
	var cands []cand
	for i, e := range stored {
		if e.Environment != q.Environment || !q.Team.Has(e.Service) {
			continue
		}
		spec, err := experimentspec.Decode(e.Definition)
		if err != nil {
			return nil, fmt.Errorf("experiment %q: stored definition: %w", e.ID, err)
		}
		if pe := spec.End(); !pe.Before(q.Period.Start) && pe.Before(end) {
			cands = append(cands, cand{i, spec})
		}
	}
	slices.SortFunc(cands, func(a, b cand) int {
		return cmp.Or(a.spec.End().Compare(b.spec.End()), cmp.Compare(a.spec.ID, b.spec.ID))
	})
	cands = cands[:min(len(cands), MaxRetrospectiveExperiments)]
	out := make([]RetrospectiveExperiment, 0, len(cands))
	for _, c := range cands {
		e := stored[c.i]
		re := RetrospectiveExperiment{ID: e.ID, Description: c.spec.Description, Service: e.Service,
			PlannedEnd: c.spec.End(), Decision: string(analysis.DecisionInconclusive)}
		res, err := s.experiment(ctx, e, end)
		var bad *report.InvalidArgumentError
		switch {
		case errors.As(err, &bad):
			// A definition its data cannot answer (a variant that never
			// served) is no reason to withhold the rest of the retrospective.
			re.Summary = "no report: " + bad.Reason
		case err != nil:
			return nil, err
		default:
			if res.Report.Decision != "" {
				re.Decision = string(res.Report.Decision)
			}
			re.Summary = res.Report.Summary
		}
		out = append(out, re)
	}
	return out, nil
}
