package fakestore

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/changelens/changelens/internal/schema"
	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/store"
)

// firstOf is an error kind's first occurrence in minute m.
func firstOf(m Minute, k ErrorKind) time.Time {
	if k.First.IsZero() {
		return m.Minute
	}
	return k.First
}

// ErrorKinds reads each deployment's error kinds minute by minute in its
// windows (every version) and, with history > 0, their occurrences under
// every other version over [before window's start − history, its start)
// and the unit's requests over that lookback, as
// sql/window_error_kinds.sql and error_kind_history.sql.
func (s *Store) ErrorKinds(ctx context.Context, items []*analysis.Item, idx []int, history time.Duration) ([]store.ErrorKindWindows, error) {
	defer s.mu.Unlock()
	if err := s.begin(ctx, "ErrorKinds"); err != nil {
		return nil, err
	}
	out := make([]store.ErrorKindWindows, len(idx))
	for j, i := range idx {
		it := items[i]
		b, a := it.MinuteWindows()
		at := map[string]int{}
		kind := func(name string) *analysis.ErrorKindCounts {
			k, ok := at[name]
			if !ok {
				k = len(out[j].Kinds)
				at[name] = k
				out[j].Kinds = append(out[j].Kinds, analysis.ErrorKindCounts{Kind: name, Folded: name == schema.ErrorKindFolded,
					Before: make([]float64, minutesOf(b)), After: make([]float64, minutesOf(a))})
			}
			return &out[j].Kinds[k]
		}
		s.windowMinutes(it, func(after bool, offset int, m Minute) {
			for _, ek := range m.ErrorKinds {
				c := kind(ek.Kind)
				if !after {
					c.Before[offset] += ek.Count
					continue
				}
				c.After[offset] += ek.Count
				if f := firstOf(m, ek); ek.Count > 0 && (c.FirstSeen.IsZero() || f.Before(c.FirstSeen)) {
					c.FirstSeen, c.FirstTraceID = f, ek.FirstTraceID
				}
			}
		})
		if history <= 0 || b.Empty() {
			continue
		}
		from, to := b.Start.Add(-history), b.Start
		u := it.Unit()
		for _, m := range s.minutes {
			if unitOf(m) != u || m.Version == it.Deployment.Version {
				continue
			}
			if in(m.Minute, from, to) {
				for _, ek := range m.ErrorKinds {
					kind(ek.Kind).History += ek.Count
				}
			}
			if in(m.Minute, from, to) {
				out[j].HistoryRequests += m.Requests
			}
		}
	}
	return out, nil
}

func minutesOf(s analysis.Span) int {
	if s.Empty() {
		return 0
	}
	return int(s.End.Sub(s.Start) / time.Minute)
}

// CohortErrorKinds reads the error kinds of q's two cohorts minute by
// minute, ordered by minute, cohort, kind (sql/cohort_error_kinds.sql);
// more than limit rows is an invalid-argument error.
func (s *Store) CohortErrorKinds(ctx context.Context, q report.CompareQuery, limit int) ([]store.CohortKindMinute, bool, error) {
	defer s.mu.Unlock()
	if err := s.begin(ctx, "CohortErrorKinds"); err != nil {
		return nil, false, err
	}
	type key struct {
		m            time.Time
		cohort, kind string
	}
	acc := map[key]*store.CohortKindMinute{}
	dim := versionDim(q.Dimension)
	for _, m := range s.minutes {
		if m.Service != q.Service || m.Environment != q.Environment || !in(m.Minute, minuteFrom(q.Start), q.End) ||
			(q.Operation != "" && m.Operation != q.Operation) {
			continue
		}
		cohort := m.Version
		if dim != schema.DimensionVersion {
			v, ok := m.Cohorts[dim]
			if !ok {
				continue
			}
			cohort = v
		}
		if cohort != q.Control && cohort != q.Treatment {
			continue
		}
		for _, ek := range m.ErrorKinds {
			k := key{m.Minute, cohort, ek.Kind}
			r := acc[k]
			if r == nil {
				r = &store.CohortKindMinute{Minute: m.Minute, Cohort: cohort, Kind: ek.Kind}
				acc[k] = r
			}
			r.Occurrences += ek.Count
			f := uint64(firstOf(m, ek).UnixNano())
			if r.FirstNs == 0 || f < r.FirstNs {
				r.FirstNs, r.FirstTraceID = f, ek.FirstTraceID
			}
		}
	}
	out := make([]store.CohortKindMinute, 0, len(acc))
	for _, r := range acc {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b store.CohortKindMinute) int {
		return cmp.Or(a.Minute.Compare(b.Minute), cmp.Compare(a.Cohort, b.Cohort), cmp.Compare(a.Kind, b.Kind))
	})
	if len(out) > limit {
		return nil, false, invalid("more than %d error-kind minutes: narrow the range", limit)
	}
	return out, true, nil
}
