package fakestore

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/changelens/changelens/queryapi/report"
)

// LatencyPoints merges the traffic of q's unit (and operation, version) in
// [q.Start, q.End): per bucket of q.Step aligned to the epoch (series) or
// over the whole range (summary, Time = q.Start), per group; ordered by
// time then group.
func (s *Store) LatencyPoints(ctx context.Context, q report.LatencyQuery, series bool, limit int) ([]report.LatencyPoint, error) {
	defer s.mu.Unlock()
	if err := s.begin(ctx, "LatencyPoints"); err != nil {
		return nil, err
	}
	if series && q.Step < time.Minute {
		return nil, invalid("step %s is below a minute", q.Step)
	}
	type key struct {
		at    time.Time
		group string
	}
	acc := map[key]*hist{}
	from, to := minuteFrom(q.Start), q.End
	for _, m := range s.minutes {
		if m.Service != q.Service || m.Environment != q.Environment || !in(m.Minute, from, to) ||
			(q.Operation != "" && m.Operation != q.Operation) || (q.Version != "" && m.Version != q.Version) {
			continue
		}
		k := key{at: q.Start}
		if series {
			step := int64(q.Step / time.Second)
			k.at = time.Unix(m.Minute.Unix()/step*step, 0).UTC()
		}
		switch q.GroupBy {
		case report.GroupByNone:
		case report.GroupByVersion:
			k.group = m.Version
		case report.GroupByOperation:
			k.group = m.Operation
		default:
			return nil, invalid("unknown group_by %d", q.GroupBy)
		}
		if acc[k] == nil {
			acc[k] = &hist{}
		}
		acc[k].add(m)
	}
	keys := make([]key, 0, len(acc))
	for k := range acc {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int { return cmp.Or(a.at.Compare(b.at), cmp.Compare(a.group, b.group)) })
	if len(keys) > limit {
		return nil, invalid("more than %d points: raise step_seconds, narrow the range or filter", limit)
	}
	out := make([]report.LatencyPoint, 0, len(keys))
	for _, k := range keys {
		h := acc[k]
		p := report.LatencyPoint{Time: k.at, Group: k.group, Count: h.requests, ErrorCount: h.errors}
		if h.requests > 0 {
			p.ErrorRate = h.errors / h.requests
		}
		p.P50Ms, p.P90Ms, p.P95Ms, p.P99Ms = percentilesMs(h.arrays())
		out = append(out, p)
	}
	return out, nil
}

// UnitRows lists the units with traffic since since, and the versions
// deployed successfully since (seen at their deploy minutes), ordered by
// service and environment, versions newest last-seen first.
func (s *Store) UnitRows(ctx context.Context, environment string, since time.Time, limit int) ([]report.Unit, error) {
	defer s.mu.Unlock()
	if err := s.begin(ctx, "UnitRows"); err != nil {
		return nil, err
	}
	type uv struct{ service, environment, version string }
	type seen struct{ first, last time.Time }
	traffic, deployed := map[uv]*seen{}, map[uv]*seen{}
	note := func(m map[uv]*seen, k uv, t time.Time) {
		if x := m[k]; x == nil {
			m[k] = &seen{t, t}
		} else {
			x.first, x.last = minTime(x.first, t), maxTime(x.last, t)
		}
	}
	for _, m := range s.minutes {
		if !m.Minute.Before(since) && (environment == "" || m.Environment == environment) {
			note(traffic, uv{m.Service, m.Environment, m.Version}, m.Minute)
		}
	}
	for _, d := range s.deployments {
		r := d.row
		if !r.Failed && r.Version != "" && !r.DeployTime.Before(since) && (environment == "" || r.Environment == environment) {
			note(deployed, uv{r.Service, r.Environment, r.Version}, r.DeployTime.Truncate(time.Minute))
		}
	}
	// A version with traffic is seen when its traffic was, else at its
	// deploy times.
	for k, x := range deployed {
		if traffic[k] == nil {
			traffic[k] = x
		}
	}
	rows := make([]uv, 0, len(traffic))
	for k := range traffic {
		rows = append(rows, k)
	}
	slices.SortFunc(rows, func(a, b uv) int {
		return cmp.Or(cmp.Compare(a.service, b.service), cmp.Compare(a.environment, b.environment),
			traffic[b].last.Compare(traffic[a].last), cmp.Compare(a.version, b.version))
	})
	if len(rows) > limit {
		return nil, invalid("more than %d unit versions: filter by environment", limit)
	}
	var out []report.Unit
	for _, k := range rows {
		x := traffic[k]
		if n := len(out) - 1; n >= 0 && out[n].Service == k.service && out[n].Environment == k.environment {
			u := &out[n]
			u.Versions = append(u.Versions, k.version)
			u.FirstSeen, u.LastSeen = minTime(u.FirstSeen, x.first), maxTime(u.LastSeen, x.last)
			continue
		}
		out = append(out, report.Unit{Service: k.service, Environment: k.environment, Versions: []string{k.version}, FirstSeen: x.first, LastSeen: x.last})
	}
	return out, nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
