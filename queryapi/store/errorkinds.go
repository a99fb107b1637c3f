package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/changelens/changelens/internal/schema"
	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/report"
)

// Error kinds (schema v13): a failed request's error kind is its
// latency_events row's error_kind, rolled up per unit, version, kind and
// minute by error_kinds_1m (count, first occurrence and its trace). The
// new-error-kind rule (analysis.JudgeErrorKinds) reads each kind's
// occurrences minute by minute in a deployment's windows (every version,
// as the windows' requests are counted) and, over a longer lookback before
// the before window, under every version but the deployed one (the
// history: a kind seen there is known). A database of an older schema has
// no error kinds: the readers answer none read (nil), and the rule is not
// applied.

// ErrorKindWindows are a deployment's error kinds: their occurrences in
// each minute of its MinuteWindows, and the history.
type ErrorKindWindows struct {
	// Kinds: Before and After indexed by the minute's offset in its window
	// (as analysis.Evidence.MinuteRequests), History the lookback's
	// occurrences, FirstTraceID and FirstSeen the first occurrence in the
	// after window.
	Kinds []analysis.ErrorKindCounts
	// HistoryRequests are the unit's requests (every version but the
	// deployed one) over the lookback; 0 when no history was read.
	HistoryRequests float64
}

// ErrorKinds reads the error kinds of items[idx...] (window_error_kinds.sql,
// and with history > 0 error_kind_history.sql over [before window's start −
// history, its start)). The result is nil when the database has no error
// kinds (a schema before v13).
func (s *Store) ErrorKinds(ctx context.Context, items []*analysis.Item, idx []int, history time.Duration) ([]ErrorKindWindows, error) {
	out := make([]ErrorKindWindows, len(idx))
	wq, err := WindowsQuery(items, idx)
	if err != nil {
		return nil, err
	}
	if wq.Rows == 0 {
		return out, nil
	}
	at := make([]map[string]int, len(idx))
	kindOf := func(j int, kind string) *analysis.ErrorKindCounts {
		if at[j] == nil {
			at[j] = map[string]int{}
		}
		k, ok := at[j][kind]
		if !ok {
			b, a := items[idx[j]].MinuteWindows()
			k = len(out[j].Kinds)
			at[j][kind] = k
			out[j].Kinds = append(out[j].Kinds, analysis.ErrorKindCounts{Kind: kind, Folded: kind == schema.ErrorKindFolded,
				Before: make([]float64, spanMinutes(b)), After: make([]float64, spanMinutes(a))})
		}
		return &out[j].Kinds[k]
	}
	firstNs := make([]map[string]uint64, len(idx))
	qctx := clickhouse.Context(ctx, clickhouse.WithExternalTable(wq.Table))
	err = s.query(qctx, "window_error_kinds", nil, func(rows driver.Rows) error {
		var (
			w, o        uint32
			kind, trace string
			n           float64
			first       uint64
		)
		if err := rows.Scan(&w, &o, &kind, &n, &first, &trace); err != nil {
			return err
		}
		j := int(w / 2)
		if j >= len(out) {
			return fmt.Errorf("unexpected window row %d", w)
		}
		c := kindOf(j, kind)
		side := &c.Before
		if w%2 == 1 {
			side = &c.After
		}
		if int(o) >= len(*side) {
			return fmt.Errorf("minute %d beyond window %d", o, w)
		}
		(*side)[o] += n
		if w%2 == 1 && n > 0 {
			if firstNs[j] == nil {
				firstNs[j] = map[string]uint64{}
			}
			if f, ok := firstNs[j][kind]; !ok || first < f {
				firstNs[j][kind] = first
				c.FirstTraceID, c.FirstSeen = trace, time.Unix(0, int64(first)).UTC()
			}
		}
		return nil
	}, wq.Args...)
	if missingErrorKinds(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if history <= 0 {
		return out, nil
	}
	if err := s.errorKindHistory(ctx, items, idx, history, out, kindOf); err != nil {
		return nil, err
	}
	return out, nil
}

// errorKindHistory adds the history of items[idx...] to out.
func (s *Store) errorKindHistory(ctx context.Context, items []*analysis.Item, idx []int, history time.Duration,
	out []ErrorKindWindows, kindOf func(j int, kind string) *analysis.ErrorKindCounts) error {
	tbl, err := ext.NewTable("_cl_history", ext.Column("j", "UInt32"), ext.Column("u", "UInt64"), ext.Column("v", "String"),
		ext.Column("f", "UInt32"), ext.Column("t", "UInt32"))
	if err != nil {
		return err
	}
	// The minutes of each lookback outside its whole hours.
	edges, err := ext.NewTable("_cl_history_edges", ext.Column("k", "UInt64"), ext.Column("j", "UInt32"), ext.Column("v", "String"))
	if err != nil {
		return err
	}
	edge := func(j int, no uint64, version string, from, to time.Time) error {
		for m := from; m.Before(to); m = m.Add(time.Minute) {
			if err := edges.Append(no<<32+uint64(m.Unix()), uint32(j), version); err != nil {
				return err
			}
		}
		return nil
	}
	unitNo := map[analysis.UnitKey]uint64{}
	var units []string
	var serviceSet, envSet []any
	services, envs := map[string]bool{}, map[string]bool{}
	var lo, hi time.Time
	for j, i := range idx {
		it := items[i]
		b, _ := it.MinuteWindows()
		if b.Empty() {
			continue
		}
		u := it.Unit()
		no, ok := unitNo[u]
		if !ok {
			units = append(units, u.Service+"\n"+u.Environment)
			no = uint64(len(units))
			unitNo[u] = no
			if !services[u.Service] {
				services[u.Service] = true
				serviceSet = append(serviceSet, u.Service)
			}
			if !envs[u.Environment] {
				envs[u.Environment] = true
				envSet = append(envSet, u.Environment)
			}
		}
		from, to := b.Start.Add(-history), b.Start
		if err := tbl.Append(uint32(j), no, it.Deployment.Version, uint32(unixSeconds(from)), uint32(unixSeconds(to))); err != nil {
			return err
		}
		// Whole hours [hs, he) come from the hourly table (the query's
		// condition), the rest minute by minute.
		hs, he := from.Truncate(time.Hour), to.Truncate(time.Hour)
		if hs.Before(from) {
			hs = hs.Add(time.Hour)
		}
		if hs.Before(he) {
			err = errors.Join(edge(j, no, it.Deployment.Version, from, hs), edge(j, no, it.Deployment.Version, he, to))
		} else {
			err = edge(j, no, it.Deployment.Version, from, to)
		}
		if err != nil {
			return err
		}
		if lo.IsZero() || from.Before(lo) {
			lo = from
		}
		if to.After(hi) {
			hi = to
		}
	}
	if len(units) == 0 {
		return nil
	}
	qctx := clickhouse.Context(ctx, clickhouse.WithExternalTable(tbl, edges))
	return s.query(qctx, "error_kind_history", nil, func(rows driver.Rows) error {
		var (
			j    uint32
			kind string
			n    float64
		)
		if err := rows.Scan(&j, &kind, &n); err != nil {
			return err
		}
		if int(j) >= len(out) {
			return fmt.Errorf("unexpected history row %d", j)
		}
		if kind == "" {
			out[j].HistoryRequests += n
			return nil
		}
		kindOf(int(j), kind).History += n
		return nil
	},
		clickhouse.Named("units", units),
		clickhouse.Named("services", clickhouse.GroupSet{Value: serviceSet}),
		clickhouse.Named("environments", clickhouse.GroupSet{Value: envSet}),
		clickhouse.Named("from", unixSeconds(lo)),
		clickhouse.Named("to", ceilSeconds(hi)))
}

// spanMinutes is the number of whole minutes of a minute span.
func spanMinutes(s analysis.Span) int {
	if s.Empty() {
		return 0
	}
	return int(s.End.Sub(s.Start) / time.Minute)
}

// missingErrorKinds reports whether err says the database predates schema
// v13: no error_kinds_1m (UNKNOWN_TABLE), no error_kind column
// (UNKNOWN_IDENTIFIER, NO_SUCH_COLUMN_IN_TABLE).
func missingErrorKinds(err error) bool {
	var ex *clickhouse.Exception
	return errors.As(err, &ex) && (ex.Code == codeUnknownTable || ex.Code == 47 || ex.Code == 16)
}

// CohortKindMinute is one error kind of one cohort in one minute: its
// weighted occurrences and its first one (unix ns, trace).
type CohortKindMinute struct {
	Minute       time.Time
	Cohort, Kind string
	Occurrences  float64
	FirstNs      uint64
	FirstTraceID string
}

// cohortKindsVariant selects cohort_error_kinds.sql's source.
type cohortKindsVariant struct{ Rollup, Cohort, Stored, Operation bool }

// CohortErrorKinds reads the error kinds of q's two cohorts minute by
// minute over [q.Start, q.End) (sql/cohort_error_kinds.sql), ordered by
// minute, cohort, kind; more than limit rows is an invalid-argument error.
// ok is false when the database has no error kinds (a schema before v13).
func (s *Store) CohortErrorKinds(ctx context.Context, q report.CompareQuery, limit int) (rows []CohortKindMinute, ok bool, err error) {
	v := cohortKindsVariant{Cohort: !isVersion(q.Dimension), Operation: q.Operation != ""}
	v.Rollup = !v.Cohort && !v.Operation
	if v.Stored, err = s.storedFlag(ctx, q); err != nil {
		return nil, false, err
	}
	err = s.query(ctx, "cohort_error_kinds", v, func(rs driver.Rows) error {
		var (
			m uint32
			r CohortKindMinute
		)
		if err := rs.Scan(&m, &r.Cohort, &r.Kind, &r.Occurrences, &r.FirstNs, &r.FirstTraceID); err != nil {
			return err
		}
		r.Minute = time.Unix(int64(m), 0).UTC()
		rows = append(rows, r)
		return nil
	}, cohortArgs(q, clickhouse.Named("limit", limit+1))...)
	if missingErrorKinds(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if len(rows) > limit {
		return nil, false, invalid("more than %d error-kind minutes: narrow the range", limit)
	}
	return rows, true, nil
}
