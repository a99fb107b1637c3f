package fakestore

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/changelens/changelens/internal/schema"
	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/store"
)

// cohortOf is m's value of dimension d ("" when it has none).
func cohortOf(m Minute, d string) string {
	if d == schema.DimensionVersion {
		return m.Version
	}
	return m.Cohorts[d]
}

// CohortMinutes merges, minute by minute over [q.Start, q.End), the traffic
// of q's two cohorts (and, with byOperation, per operation), ordered by
// (operation,) minute, cohort. Body sizes are left zero.
func (s *Store) CohortMinutes(ctx context.Context, q report.CompareQuery, byOperation bool, limit int) ([]store.CohortMinute, error) {
	defer s.mu.Unlock()
	if err := s.begin(ctx, "CohortMinutes"); err != nil {
		return nil, err
	}
	type key struct {
		op     string
		minute time.Time
		cohort string
	}
	d := versionDim(q.Dimension)
	acc := map[key]*hist{}
	for _, m := range s.minutes {
		c := cohortOf(m, d)
		if m.Service != q.Service || m.Environment != q.Environment || !in(m.Minute, minuteFrom(q.Start), q.End) ||
			(c != q.Control && c != q.Treatment) || (q.Operation != "" && m.Operation != q.Operation) {
			continue
		}
		k := key{minute: m.Minute, cohort: c}
		if byOperation {
			k.op = m.Operation
		}
		if acc[k] == nil {
			acc[k] = &hist{}
		}
		acc[k].add(m)
	}
	keys := slices.SortedFunc(maps.Keys(acc), func(a, b key) int {
		return cmp.Or(strings.Compare(a.op, b.op), a.minute.Compare(b.minute), strings.Compare(a.cohort, b.cohort))
	})
	if len(keys) > limit {
		return nil, invalid("more than %d cohort minutes: narrow the range", limit)
	}
	out := make([]store.CohortMinute, 0, len(keys))
	for _, k := range keys {
		h := acc[k]
		c := store.CohortMinute{Minute: k.minute, Cohort: k.cohort, Operation: k.op}
		c.Requests, c.Errors, c.DurationSumNs = h.requests, h.errors, h.durationMs*1e6
		if h.requests > 0 {
			c.MeanMs = h.durationMs / h.requests
		}
		c.HistKeys, c.HistWeights = h.arrays()
		c.P50Ms, c.P90Ms, c.P95Ms, c.P99Ms = percentilesMs(c.HistKeys, c.HistWeights)
		out = append(out, c)
	}
	return out, nil
}

// CohortExemplars returns what SetExemplars set for q's cohorts.
func (s *Store) CohortExemplars(ctx context.Context, q report.CompareQuery) (map[string]store.Exemplars, error) {
	defer s.mu.Unlock()
	if err := s.begin(ctx, "CohortExemplars"); err != nil {
		return nil, err
	}
	out := map[string]store.Exemplars{}
	for _, c := range []string{q.Control, q.Treatment} {
		if e, ok := s.exemplars[exemplarKey{q.Service, q.Environment, versionDim(q.Dimension), c}]; ok {
			out[c] = e
		}
	}
	return out, nil
}

// CohortValues lists the unit's dimensions over [from, to) — "version"
// first, then the others by name — with each value's requests, busiest
// first (then by value), at most limit per dimension.
func (s *Store) CohortValues(ctx context.Context, service, environment string, from, to time.Time, limit int) ([]report.CohortDimension, error) {
	defer s.mu.Unlock()
	if err := s.begin(ctx, "CohortValues"); err != nil {
		return nil, err
	}
	requests := map[string]map[string]float64{}
	count := func(d, v string, n float64) {
		if requests[d] == nil {
			requests[d] = map[string]float64{}
		}
		requests[d][v] += n
	}
	for _, m := range s.minutes {
		if m.Service != service || m.Environment != environment || !in(m.Minute, minuteFrom(from), to) {
			continue
		}
		count(schema.DimensionVersion, m.Version, m.Requests)
		for d, v := range m.Cohorts {
			count(d, v, m.Requests)
		}
	}
	rank := func(d string) int {
		if d == schema.DimensionVersion {
			return 0
		}
		return 1
	}
	dims := slices.SortedFunc(maps.Keys(requests), func(a, b string) int {
		return cmp.Or(cmp.Compare(rank(a), rank(b)), strings.Compare(a, b))
	})
	var out []report.CohortDimension
	for _, d := range dims {
		cd := report.CohortDimension{Dimension: d}
		for v, n := range requests[d] {
			cd.Values = append(cd.Values, report.CohortValue{Value: v, Requests: n})
		}
		slices.SortFunc(cd.Values, func(a, b report.CohortValue) int {
			return cmp.Or(cmp.Compare(b.Requests, a.Requests), strings.Compare(a.Value, b.Value))
		})
		cd.Values = cd.Values[:min(len(cd.Values), limit)]
		out = append(out, cd)
	}
	return out, nil
}

// FlagMinutes merges unit u's traffic per feature flag, variant and minute
// over [from, to).
func (s *Store) FlagMinutes(ctx context.Context, u analysis.UnitKey, from, to time.Time) ([]store.FlagMinute, error) {
	defer s.mu.Unlock()
	if err := s.begin(ctx, "FlagMinutes"); err != nil {
		return nil, err
	}
	type key struct {
		flag, variant string
		minute        time.Time
	}
	acc := map[key]*analysis.MinuteSums{}
	for _, m := range s.minutes {
		if unitOf(m) != u || !in(m.Minute, minuteFrom(from), to) {
			continue
		}
		for d, v := range m.Cohorts {
			flag, ok := strings.CutPrefix(d, schema.DimensionFeatureFlag)
			if !ok {
				continue
			}
			k := key{flag, v, m.Minute}
			if acc[k] == nil {
				acc[k] = &analysis.MinuteSums{}
			}
			acc[k].Requests += m.Requests
			acc[k].Errors += m.Errors
			acc[k].DurationMs += m.DurationMs
		}
	}
	keys := slices.SortedFunc(maps.Keys(acc), func(a, b key) int {
		return cmp.Or(strings.Compare(a.flag, b.flag), strings.Compare(a.variant, b.variant), a.minute.Compare(b.minute))
	})
	out := make([]store.FlagMinute, 0, len(keys))
	for _, k := range keys {
		out = append(out, store.FlagMinute{Flag: k.flag, Variant: k.variant, Minute: k.minute, MinuteSums: *acc[k]})
	}
	return out, nil
}
