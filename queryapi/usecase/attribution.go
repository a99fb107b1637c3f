package usecase

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/store"
)

// ownChange is a deployment as a change among others: from the end of its
// before window to the start of its after window (less the gap).
func ownChange(it *analysis.Item, cfg analysis.Config) analysis.Change {
	b, a := it.MinuteWindows()
	d := it.Deployment
	end := a.Start.Add(-cfg.AfterGap)
	if end.Before(b.End) {
		end = b.End
	}
	return analysis.Change{Kind: report.CauseOwnDeployment, DeploymentID: d.ID, Service: d.Service,
		Environment: d.Environment, Version: d.Version, Start: b.End, End: end}
}

// attributionRange is the minutes the attribution of it reads: its windows,
// and far enough either side for a change AttributionWindow away from it to
// be judged on AttributionWindow either side of itself.
func attributionRange(own analysis.Change, it *analysis.Item, cfg analysis.Config) (from, to time.Time) {
	b, a := it.MinuteWindows()
	reach := 2 * cfg.AttributionWindow
	from, to = b.Start, a.End
	if t := own.Start.Add(-reach).Truncate(time.Minute); t.Before(from) {
		from = t
	}
	if t := own.End.Add(reach).Truncate(time.Minute); t.After(to) {
		to = t
	}
	return from, to
}

// attributionFor reads the attribution evidence of item it (docs/analysis.md,
// "Attribution"): the unit's and its controls' traffic per minute, its calls
// by callee, its requests by caller, its flags' variants, and the
// deployments of its neighbours near it.
func (s *Service) attributionFor(ctx context.Context, it *analysis.Item, controls []analysis.ControlSeries) (*analysis.AttributionEvidence, analysis.Change, error) {
	cfg := s.cfg.Analysis
	own := ownChange(it, cfg)
	from, to := attributionRange(own, it, cfg)
	u := it.Unit()
	n := int(to.Sub(from) / time.Minute)
	e := &analysis.AttributionEvidence{Start: from, Unit: make([]analysis.MinuteSums, n)}
	index := func(m time.Time) int {
		i := int(m.Sub(from) / time.Minute)
		if i < 0 || i >= n {
			return -1
		}
		return i
	}

	units := []analysis.UnitKey{u}
	var dayEarlier bool
	for _, c := range controls {
		switch c.Kind {
		case analysis.ControlPreviousDay:
			dayEarlier = true
		default:
			units = append(units, analysis.UnitKey{Service: c.Service, Environment: c.Environment})
		}
	}
	minutes, err := s.st.UnitMinutes(ctx, units, from, to)
	if err != nil {
		return nil, own, err
	}
	if len(controls) > 0 {
		e.Control = make([]analysis.MinuteSums, n)
	}
	for _, m := range minutes {
		i := index(m.Minute)
		if i < 0 {
			continue
		}
		if m.Unit == u {
			e.Unit[i] = m.MinuteSums
		} else {
			addSums(&e.Control[i], m.MinuteSums)
		}
	}
	if dayEarlier {
		day := 24 * time.Hour
		earlier, err := s.st.UnitMinutes(ctx, []analysis.UnitKey{u}, from.Add(-day), to.Add(-day))
		if err != nil {
			return nil, own, err
		}
		for _, m := range earlier {
			if i := index(m.Minute.Add(day)); i >= 0 {
				addSums(&e.Control[i], m.MinuteSums)
			}
		}
	}

	calls, err := s.st.Calls(ctx, u.Environment, u.Service, from, to, true, 1)
	if err != nil {
		return nil, own, err
	}
	callees := map[analysis.UnitKey]int{}
	for _, c := range calls {
		k := analysis.UnitKey{Service: c.Callee, Environment: c.CalleeEnvironment}
		j, ok := callees[k]
		if !ok {
			j = len(e.Callees)
			callees[k] = j
			e.Callees = append(e.Callees, analysis.NeighbourSeries{Service: k.Service, Environment: k.Environment, Minutes: make([]analysis.MinuteSums, n)})
		}
		if i := index(c.Minute); i >= 0 {
			addSums(&e.Callees[j].Minutes[i], analysis.MinuteSums{Requests: c.Calls, Errors: c.Errors, DurationMs: c.DurationMs})
		}
	}
	served, err := s.st.Callers(ctx, u, from, to)
	if err != nil {
		return nil, own, err
	}
	callers := map[analysis.UnitKey]int{}
	for _, c := range served {
		k := analysis.UnitKey{Service: c.Caller, Environment: c.CallerEnvironment}
		j, ok := callers[k]
		if !ok {
			j = len(e.Callers)
			callers[k] = j
			e.Callers = append(e.Callers, analysis.NeighbourSeries{Service: k.Service, Environment: k.Environment, Minutes: make([]analysis.MinuteSums, n)})
		}
		if i := index(c.Minute); i >= 0 {
			addSums(&e.Callers[j].Minutes[i], c.MinuteSums)
		}
	}
	flags, err := s.st.FlagMinutes(ctx, u, from, to)
	if err != nil {
		return nil, own, err
	}
	flagAt, variantAt := map[string]int{}, map[[2]string]int{}
	for _, f := range flags {
		fi, ok := flagAt[f.Flag]
		if !ok {
			fi = len(e.Flags)
			flagAt[f.Flag] = fi
			e.Flags = append(e.Flags, analysis.FlagSeries{Key: f.Flag})
		}
		vk := [2]string{f.Flag, f.Variant}
		vi, ok := variantAt[vk]
		if !ok {
			vi = len(e.Flags[fi].Variants)
			variantAt[vk] = vi
			e.Flags[fi].Variants = append(e.Flags[fi].Variants, analysis.VariantSeries{Value: f.Variant, Minutes: make([]analysis.MinuteSums, n)})
		}
		if i := index(f.Minute); i >= 0 {
			addSums(&e.Flags[fi].Variants[vi].Minutes[i], f.MinuteSums)
		}
	}

	// The neighbours' deployments near this one.
	if len(callees)+len(callers) > 0 {
		tl, err := s.timeline(ctx, unitFilter{Environment: u.Environment}, own.Start.Add(-cfg.AttributionWindow), own.End.Add(cfg.AttributionWindow+time.Minute))
		var tooMany *report.InvalidArgumentError
		switch {
		case errors.As(err, &tooMany):
			// More deployments than a request may read: judged without them.
		case err != nil:
			return nil, own, err
		default:
			for _, other := range tl.Items() {
				d := other.Deployment
				ou := other.Unit()
				if d.Failed || ou == u || d.DeployTime.Before(own.Start.Add(-cfg.AttributionWindow)) || d.RolloutStart.After(own.End.Add(cfg.AttributionWindow)) {
					continue
				}
				c := analysis.Change{DeploymentID: d.ID, Service: d.Service, Environment: d.Environment, Version: d.Version,
					Start: d.RolloutStart, End: d.DeployTime}
				if _, ok := callees[ou]; ok {
					c.Kind = report.CauseCalleeDeployment
					e.Changes = append(e.Changes, c)
				}
				if _, ok := callers[ou]; ok {
					c.Kind = report.CauseCallerDeployment
					e.Changes = append(e.Changes, c)
				}
			}
		}
	}
	return e, own, nil
}

func addSums(m *analysis.MinuteSums, o analysis.MinuteSums) {
	m.Requests += o.Requests
	m.Errors += o.Errors
	m.DurationMs += o.DurationMs
}

// regressedSoFar reports whether a judgement found a regression, settled
// (DEGRADED) or not yet (a metric WORSE while PENDING).
func regressedSoFar(j analysis.Judgement) bool {
	// DEGRADED for a new error kind alone: nothing for attribution to
	// apportion (it explains rates, not kinds).
	if newKindOnly := slices.Equal(j.Regressions, []report.FailureReason{report.ReasonNewErrorKind}); !newKindOnly &&
		(j.Verdict == report.VerdictDegraded || j.Verdict == report.VerdictCausedByDependency) {
		return true
	}
	worse := func(ms []report.ImpactMetric) bool {
		return slices.ContainsFunc(ms, func(m report.ImpactMetric) bool { return m.Verdict == report.CompareWorse })
	}
	if worse(j.Metrics) {
		return true
	}
	return slices.ContainsFunc(j.Operations, func(o report.OperationImpact) bool { return worse(o.Metrics) })
}

// neighbourSample and neighbourSpan bound the graph read that keeps a
// deployment's neighbours out of its controls: one trace in 16 (edges are
// what matters, not their counts), over at most the last day of a batch's
// range — a judging of months of history uses the graph of its last day.
const (
	neighbourSample = 16
	neighbourSpan   = 24 * time.Hour
)

// neighboursOf are, per unit of env, the units its regression reaches or
// that its deployment's load reaches — everything upstream of it (its
// callers, theirs, …) and its direct callees — from the environment's calls
// over [from, to): they are no controls of its deployment.
func (s *Service) neighboursOf(ctx context.Context, env string, from, to time.Time) (map[analysis.UnitKey]map[analysis.UnitKey]bool, error) {
	edges, err := s.st.Calls(ctx, env, "", from, to, false, neighbourSample)
	if err != nil {
		return nil, err
	}
	callers := map[string][]string{}
	callees := map[string][]string{}
	for _, e := range edges {
		if e.CalleeEnvironment != env {
			continue // an uninstrumented peer, or another environment
		}
		callers[e.Callee] = append(callers[e.Callee], e.Caller)
		callees[e.Caller] = append(callees[e.Caller], e.Callee)
	}
	out := map[analysis.UnitKey]map[analysis.UnitKey]bool{}
	for svc := range mergeKeys(callers, callees) {
		set := map[analysis.UnitKey]bool{}
		for _, c := range callees[svc] {
			set[analysis.UnitKey{Service: c, Environment: env}] = true
		}
		queue := []string{svc}
		seen := map[string]bool{svc: true}
		for len(queue) > 0 {
			cur := queue[0]
			queue = queue[1:]
			for _, c := range callers[cur] {
				if !seen[c] {
					seen[c] = true
					set[analysis.UnitKey{Service: c, Environment: env}] = true
					queue = append(queue, c)
				}
			}
		}
		delete(set, analysis.UnitKey{Service: svc, Environment: env})
		out[analysis.UnitKey{Service: svc, Environment: env}] = set
	}
	return out, nil
}

func mergeKeys(a, b map[string][]string) map[string]bool {
	out := make(map[string]bool, len(a)+len(b))
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// Graph is the service graph of an environment over a range (/v1/graph),
// busiest edges first.
func (s *Service) Graph(ctx context.Context, q report.GraphQuery) ([]report.GraphEdge, error) {
	edges, err := s.st.Calls(ctx, q.Environment, "", q.Start, q.End, false, 1)
	if err != nil {
		return nil, err
	}
	out := store.GraphEdges(edges, q.Environment)
	if q.Service != "" {
		out = slices.DeleteFunc(out, func(e report.GraphEdge) bool {
			return e.CallerService != q.Service && !(e.CalleeService == q.Service && e.CalleeEnvironment == q.Environment)
		})
	}
	sortEdges(out)
	return out, nil
}

// sortEdges orders edges busiest first, then by caller and callee.
func sortEdges(es []report.GraphEdge) {
	slices.SortFunc(es, func(a, b report.GraphEdge) int {
		switch {
		case a.Calls != b.Calls:
			if a.Calls > b.Calls {
				return -1
			}
			return 1
		case a.CallerService != b.CallerService:
			return strings.Compare(a.CallerService, b.CallerService)
		case a.CalleeService != b.CalleeService:
			return strings.Compare(a.CalleeService, b.CalleeService)
		}
		return strings.Compare(a.CalleeEnvironment, b.CalleeEnvironment)
	})
}
