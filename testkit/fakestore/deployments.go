package fakestore

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"time"

	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/inference"
	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/store"
)

func matches(f store.UnitFilter, service, environment string) bool {
	return (f.Service == "" || f.Service == service) && (f.Environment == "" || f.Environment == environment)
}

// neighbours per unit (as sql/deployments.sql: LIMIT 4 BY unit).
const neighbours = 4

// DeploymentRows reads the CI deployments of f in [from, to), failed
// attempts included, and each unit's 4 latest successful ones in
// [before, from) and 4 earliest in [to, after); superseded rows and
// inferred rows are dropped, every part is limited to limit+1 rows. A row
// naming its commit without its time takes it from the commits added
// (store.FillCommitTimes, the store's rule).
func (s *Store) DeploymentRows(ctx context.Context, f store.UnitFilter, from, to, before, after time.Time, limit int) ([]analysis.Row, int, error) {
	defer s.mu.Unlock()
	if err := s.begin(ctx, "DeploymentRows"); err != nil {
		return nil, 0, err
	}
	var live []analysis.Row
	for _, d := range s.deployments {
		r := d.row
		if d.supersededBy == "" && r.Source != report.SourceInferred && matches(f, r.Service, r.Environment) {
			live = append(live, r)
		}
	}
	byTime := func(a, b analysis.Row) int {
		return cmp.Or(a.DeployTime.Compare(b.DeployTime), cmp.Compare(a.ID, b.ID))
	}
	slices.SortFunc(live, byTime)

	var rangeRows []analysis.Row
	for _, r := range live {
		if !r.DeployTime.Before(from) && r.DeployTime.Before(to) && len(rangeRows) <= limit {
			rangeRows = append(rangeRows, r)
		}
	}
	type unit struct{ service, environment string }
	var beforeRows, afterRows []analysis.Row
	perUnit := map[unit]int{}
	for i := len(live) - 1; i >= 0; i-- { // latest first
		r := live[i]
		u := unit{r.Service, r.Environment}
		if !r.Failed && r.DeployTime.Before(from) && !r.DeployTime.Before(before) && perUnit[u] < neighbours && len(beforeRows) <= limit {
			perUnit[u]++
			beforeRows = append(beforeRows, r)
		}
	}
	clear(perUnit)
	for _, r := range live {
		u := unit{r.Service, r.Environment}
		if !r.Failed && !r.DeployTime.Before(to) && r.DeployTime.Before(after) && perUnit[u] < neighbours && len(afterRows) <= limit {
			perUnit[u]++
			afterRows = append(afterRows, r)
		}
	}
	seen := map[string]bool{}
	var out []analysis.Row
	for _, part := range [][]analysis.Row{rangeRows, beforeRows, afterRows} {
		for _, r := range part {
			if !seen[r.ID] {
				seen[r.ID] = true
				out = append(out, r)
			}
		}
	}
	store.FillCommitTimes(out, slices.Collect(maps.Values(s.commits)))
	return out, len(rangeRows), nil
}

// DeploymentByID reads the unit, deploy time and superseded_by of a CI
// deployment.
func (s *Store) DeploymentByID(ctx context.Context, id string) (store.UnitFilter, time.Time, string, bool, error) {
	defer s.mu.Unlock()
	if err := s.begin(ctx, "DeploymentByID"); err != nil {
		return store.UnitFilter{}, time.Time{}, "", false, err
	}
	d, ok := s.deployments[id]
	if !ok || d.row.Source == report.SourceInferred {
		return store.UnitFilter{}, time.Unix(0, 0).UTC(), "", false, nil
	}
	return store.UnitFilter{Service: d.row.Service, Environment: d.row.Environment}, d.row.DeployTime, d.supersededBy, true, nil
}

// presence is one version's five-minute bucket of a unit: its first and
// last minute (ns), as version_presence keeps them.
type presence struct {
	bucket      time.Time
	first, last int64
}

// presenceLocked folds the traffic into version_presence's buckets.
func (s *Store) presenceLocked() map[store.UnitFilter]map[string]map[time.Time]*presence {
	out := map[store.UnitFilter]map[string]map[time.Time]*presence{}
	for _, m := range s.minutes {
		if m.Version == "" || m.Requests <= 0 {
			continue
		}
		u := store.UnitFilter{Service: m.Service, Environment: m.Environment}
		if out[u] == nil {
			out[u] = map[string]map[time.Time]*presence{}
		}
		if out[u][m.Version] == nil {
			out[u][m.Version] = map[time.Time]*presence{}
		}
		b := m.Minute.Truncate(store.BucketSize)
		first, last := m.Minute.UnixNano(), m.Minute.UnixNano()
		if !m.First.IsZero() {
			first = m.First.UnixNano()
		}
		if !m.Last.IsZero() {
			last = m.Last.UnixNano()
		}
		p := out[u][m.Version][b]
		if p == nil {
			out[u][m.Version][b] = &presence{bucket: b, first: first, last: last}
			continue
		}
		p.first, p.last = min(p.first, first), max(p.last, last)
	}
	return out
}

// Episodes folds the version presence of f's units in the buckets of
// [since, before) into episodes, split at gaps of reappear or more (as
// sql/episodes.sql).
func (s *Store) Episodes(ctx context.Context, f store.UnitFilter, since, before time.Time, reappear time.Duration) (map[store.UnitFilter]store.UnitEpisodes, error) {
	defer s.mu.Unlock()
	if err := s.begin(ctx, "Episodes"); err != nil {
		return nil, err
	}
	out := map[store.UnitFilter]store.UnitEpisodes{}
	for u, versions := range s.presenceLocked() {
		if !matches(f, u.Service, u.Environment) {
			continue
		}
		for v, buckets := range versions {
			var ps []presence
			for b, p := range buckets {
				if in(b, since, before) {
					ps = append(ps, *p)
				}
			}
			if len(ps) == 0 {
				continue
			}
			slices.SortFunc(ps, func(a, b presence) int { return cmp.Or(cmp.Compare(a.first, b.first), cmp.Compare(a.last, b.last)) })
			if out[u] == nil {
				out[u] = store.UnitEpisodes{}
			}
			cur := inference.Episode{Version: v, First: ps[0].first, Last: ps[0].last}
			for _, p := range ps[1:] {
				if p.first-cur.Last >= int64(reappear) {
					out[u][v] = append(out[u][v], cur)
					cur = inference.Episode{Version: v, First: p.first}
				}
				cur.Last = max(cur.Last, p.last)
			}
			out[u][v] = append(out[u][v], cur)
		}
	}
	return out, nil
}

// InferredUnits lists the units whose traffic shows versions.
func (s *Store) InferredUnits(ctx context.Context) ([]store.UnitFilter, error) {
	defer s.mu.Unlock()
	if err := s.begin(ctx, "InferredUnits"); err != nil {
		return nil, err
	}
	out := slices.Collect(maps.Keys(s.presenceLocked()))
	slices.SortFunc(out, func(a, b store.UnitFilter) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.Environment, b.Environment))
	})
	return out, nil
}
