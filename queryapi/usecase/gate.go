package usecase

import (
	"context"
	"time"

	"github.com/changelens/changelens/internal/schema"
	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/store"
)

// Gate answers whether the rollout of q.Version may continue: it reads the
// evidence — the version's newest deployment, the minutes it and its
// baseline both served since the rollout began, and, when that is what
// decides, the deployment's before/after judgement so far — and leaves the
// decision to the gate's rule (analysis.Gate; docs/analysis.md, "Gate").
func (s *Service) Gate(ctx context.Context, q report.GateQuery) (report.GateAnswer, error) {
	now := s.cfg.Now()
	dep, err := s.latestDeployment(ctx, q, now)
	if err != nil {
		return report.GateAnswer{}, err
	}
	ev := analysis.GateEvidence{Version: q.Version, Baseline: q.BaselineVersion, Deployment: dep, Now: now}
	if ev.Baseline == "" && dep != nil {
		ev.Baseline = dep.PreviousVersion
	}
	cc := compareConfig()
	if ev.Baseline != "" {
		// The minutes both served, since the rollout began (or the longest
		// comparison range when no deployment is known).
		start := now.Add(-s.cfg.Limits.CompareRange()).Truncate(time.Minute).Add(time.Minute)
		if dep != nil && dep.RolloutStart.After(start) {
			start = dep.RolloutStart.Truncate(time.Minute)
		}
		rows, err := s.st.CohortMinutes(ctx, report.CompareQuery{Service: q.Service, Environment: q.Environment, Start: start, End: now,
			Dimension: schema.DimensionVersion, Control: ev.Baseline, Treatment: q.Version}, false, 2*maxCompareMinutes)
		if err != nil {
			return report.GateAnswer{}, err
		}
		ev.Pairs, ev.LastShared = pairsOf(rows, q.Version), lastShared(rows)
	}
	if analysis.GateModeOf(ev, cc) == report.GateBeforeAfter {
		im, err := s.Impact(ctx, dep.ID)
		if err != nil {
			return report.GateAnswer{}, err
		}
		ev.Impact = &im
	}
	var a report.GateAnswer
	// The sequential comparison is CPU-bound like Compare: on a compute slot.
	if err := s.compute(ctx, func() { a = analysis.Gate(ev, s.cfg.Analysis, cc, analysis.DefaultGateConfig()) }); err != nil {
		return report.GateAnswer{}, err
	}
	return a, nil
}

// latestDeployment is the newest successful deployment of q.Version to the
// unit within gateLookback, or nil.
func (s *Service) latestDeployment(ctx context.Context, q report.GateQuery, now time.Time) (*report.Deployment, error) {
	dq := report.DeploymentQuery{Service: q.Service, Environment: q.Environment, Start: now.Add(-analysis.GateLookback), End: now.Add(time.Minute), PageSize: 500}
	for {
		deps, next, err := s.Deployments(ctx, dq)
		if err != nil {
			return nil, err
		}
		for i := range deps {
			if d := &deps[i]; d.Version == q.Version && !d.Failed {
				return d, nil
			}
		}
		if next == "" {
			return nil, nil
		}
		dq.PageToken = next
	}
}

// lastShared is the latest minute in rows (ordered by minute, cohort) in
// which both cohorts served.
func lastShared(rows []store.CohortMinute) time.Time {
	var last time.Time
	for i := 0; i+1 < len(rows); i++ {
		if rows[i].Minute.Equal(rows[i+1].Minute) && rows[i].Requests > 0 && rows[i+1].Requests > 0 {
			last = rows[i].Minute
		}
	}
	return last
}
