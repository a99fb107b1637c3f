package usecase

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/store"
)

// maxControls bounds the control series of one kind a deployment is judged
// against (the busiest are kept); maxControlCandidates the series whose
// windows are counted to choose them.
const (
	maxControls          = 5
	maxControlCandidates = 25
	// controlQuiet: a control must not have deployed from this long before
	// the before window to the end of the after window.
	controlQuiet = 15 * time.Minute
)

// controlsFor finds the control series of items[idx...] (docs/analysis.md,
// "Controls"): for each, in order of preference, the busiest other units of
// its environment that deployed nothing around its windows, else the same
// service in other environments, else the unit itself a day earlier when it
// deployed nothing then — each with enough traffic in both windows; never
// a unit upstream of it in the service graph or a callee of its. A cheap
// read of every candidate's window counts chooses them; one read of
// per-operation windows (summed) gives their histograms.
func (s *Service) controlsFor(ctx context.Context, items []*analysis.Item, idx []int) ([][]analysis.ControlSeries, error) {
	out := make([][]analysis.ControlSeries, len(idx))
	if len(idx) == 0 {
		return out, nil
	}
	var lo, hi time.Time
	for _, i := range idx {
		b, a := items[i].MinuteWindows()
		if lo.IsZero() || b.Start.Before(lo) {
			lo = b.Start
		}
		if a.End.After(hi) {
			hi = a.End
		}
	}
	units, err := s.st.UnitRows(ctx, "", lo.Add(-25*time.Hour), s.cfg.Limits.MaxUnits)
	if err != nil {
		return nil, err
	}
	// Every unit's deployments around the windows, and a day earlier.
	tl, err := s.timeline(ctx, unitFilter{}, lo.Add(-24*time.Hour-controlQuiet), hi)
	var tooMany *report.InvalidArgumentError
	switch {
	case errors.As(err, &tooMany):
		return out, nil // more deployments than a request may read: no controls
	case err != nil:
		return nil, err
	}
	deployed := map[analysis.UnitKey][]time.Time{}
	for _, it := range tl.Items() {
		d := it.Deployment
		if !d.Failed {
			deployed[it.Unit()] = append(deployed[it.Unit()], d.RolloutStart, d.DeployTime)
		}
	}
	// A deployment's neighbours in the service graph are no controls: its
	// callers (and theirs) wait on it, so its regression moves them too,
	// and its callees carry its load.
	neighbours := map[analysis.UnitKey]map[analysis.UnitKey]bool{}
	envs := map[string]bool{}
	for _, i := range idx {
		envs[items[i].Deployment.Environment] = true
	}
	graphFrom := lo
	if hi.Sub(lo) > neighbourSpan {
		graphFrom = hi.Add(-neighbourSpan)
	}
	for env := range envs {
		got, err := s.neighboursOf(ctx, env, graphFrom, hi)
		if err != nil {
			return nil, err
		}
		for u, set := range got {
			neighbours[u] = set
		}
	}
	quiet := func(u analysis.UnitKey, from, to time.Time) bool {
		for _, t := range deployed[u] {
			if !t.Before(from) && t.Before(to) {
				return false
			}
		}
		return true
	}

	// The candidates of every item, as items of their own over the same
	// windows (a day earlier for the previous day).
	type candidate struct {
		kind string
		item *analysis.Item
		of   int // position in idx
	}
	var cands []candidate
	for j, i := range idx {
		it := items[i]
		u := it.Unit()
		from, to := it.Before.Start.Add(-controlQuiet), it.After.End
		var env, elsewhere []candidate
		for _, r := range units {
			cu := analysis.UnitKey{Service: r.Service, Environment: r.Environment}
			if cu == u || r.LastSeen.Before(it.Before.Start) || r.FirstSeen.After(it.After.End) || !quiet(cu, from, to) || neighbours[u][cu] {
				continue
			}
			c := candidate{item: &analysis.Item{Deployment: report.Deployment{Service: r.Service, Environment: r.Environment},
				Before: it.Before, After: it.After}, of: j}
			switch {
			case r.Environment == u.Environment:
				c.kind = analysis.ControlEnvironment
				env = append(env, c)
			case r.Service == u.Service:
				c.kind = analysis.ControlService
				elsewhere = append(elsewhere, c)
			}
		}
		cands = append(cands, env[:min(len(env), maxControlCandidates)]...)
		cands = append(cands, elsewhere[:min(len(elsewhere), maxControlCandidates)]...)
		day := 24 * time.Hour
		if quiet(u, from.Add(-day), to.Add(-day)) {
			cands = append(cands, candidate{kind: analysis.ControlPreviousDay, of: j, item: &analysis.Item{
				Deployment: report.Deployment{Service: u.Service, Environment: u.Environment},
				Before:     analysis.Span{Start: it.Before.Start.Add(-day), End: it.Before.End.Add(-day)},
				After:      analysis.Span{Start: it.After.Start.Add(-day), End: it.After.End.Add(-day)},
			}})
		}
	}
	if len(cands) == 0 {
		return out, nil
	}

	// Count the candidates' windows; keep, per item, the preferred kind
	// that has series with enough traffic, its busiest maxControls.
	citems := make([]*analysis.Item, len(cands))
	all := make([]int, len(cands))
	for k, c := range cands {
		citems[k], all[k] = c.item, k
	}
	counts := make([]store.WindowPair, 0, len(cands))
	for start := 0; start < len(all); start += s.cfg.WindowBatch {
		got, err := s.st.WindowTotals(ctx, citems, all[start:min(start+s.cfg.WindowBatch, len(all))])
		if err != nil {
			return nil, err
		}
		counts = append(counts, got...)
	}
	busiest := func(k int) float64 { return min(counts[k][0].Requests, counts[k][1].Requests) }
	chosen := make([][]int, len(idx))
	for j := range idx {
		for _, kind := range []string{analysis.ControlEnvironment, analysis.ControlService, analysis.ControlPreviousDay} {
			var ks []int
			for k, c := range cands {
				if c.of == j && c.kind == kind && busiest(k) >= s.cfg.Analysis.MinRequests {
					ks = append(ks, k)
				}
			}
			if len(ks) > 0 {
				slices.SortStableFunc(ks, func(a, b int) int { return cmp.Compare(busiest(b), busiest(a)) })
				chosen[j] = ks[:min(len(ks), maxControls)]
				break
			}
		}
	}
	var read []int
	for _, ks := range chosen {
		read = append(read, ks...)
	}
	if len(read) == 0 {
		return out, nil
	}
	ops, err := s.st.OperationWindows(ctx, citems, read)
	if err != nil {
		return nil, err
	}
	at := make(map[int][]analysis.OperationWindows, len(read))
	for n, k := range read {
		at[k] = ops[n]
	}
	for j, ks := range chosen {
		for _, k := range ks {
			c := cands[k]
			cs := analysis.ControlSeries{Kind: c.kind, Service: c.item.Deployment.Service, Environment: c.item.Deployment.Environment}
			cs.Before, cs.After = analysis.SumOperations(at[k])
			out[j] = append(out[j], cs)
		}
	}
	return out, nil
}
