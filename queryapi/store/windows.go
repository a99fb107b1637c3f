package store

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/changelens/changelens/queryapi/analysis"
)

// WindowPair are the statistics of a deployment's before and after windows.
type WindowPair [2]analysis.WindowStats

// WindowsParams are the external table and parameters of one read of
// deployments' windows (sql/windows.sql, window_operations.sql,
// window_minutes.sql).
type WindowsParams struct {
	Table  *ext.Table // the external table _cl_windows
	Args   []any      // the query's parameters
	Rows   int        // rows of Table
	lo, hi time.Time
}

// WindowsQuery prepares a read of the windows of items[idx...]: window 2j is
// the before window of items[idx[j]], 2j+1 its after window; the external
// table has one row per rollup minute of each window, with the minute's
// offset in its window.
func WindowsQuery(items []*analysis.Item, idx []int) (*WindowsParams, error) {
	tbl, err := ext.NewTable("_cl_windows", ext.Column("k", "UInt64"), ext.Column("w", "UInt32"), ext.Column("o", "UInt32"))
	if err != nil {
		return nil, err
	}
	q := &WindowsParams{Table: tbl}
	unitNo := map[analysis.UnitKey]uint64{}
	var units []string
	services, envs := map[string]bool{}, map[string]bool{}
	var serviceSet, envSet []any
	for j, i := range idx {
		it := items[i]
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
		b, a := it.MinuteWindows()
		for side, span := range []analysis.Span{b, a} {
			w := uint32(2*j + side)
			offset := uint32(0)
			for m := span.Start; m.Before(span.End); m = m.Add(time.Minute) {
				if err := tbl.Append(no<<32+uint64(m.Unix()), w, offset); err != nil {
					return nil, err
				}
				offset++
				q.Rows++
			}
			if span.Empty() {
				continue
			}
			if q.lo.IsZero() || span.Start.Before(q.lo) {
				q.lo = span.Start
			}
			if span.End.After(q.hi) {
				q.hi = span.End
			}
		}
	}
	q.Args = []any{
		clickhouse.Named("units", units),
		clickhouse.Named("services", clickhouse.GroupSet{Value: serviceSet}),
		clickhouse.Named("environments", clickhouse.GroupSet{Value: envSet}),
		clickhouse.Named("from", unixSeconds(q.lo)),
		clickhouse.Named("to", ceilSeconds(q.hi)),
	}
	return q, nil
}

// WindowTotals runs sql/windows.sql for items[idx...] (see WindowsQuery):
// the counts of their MinuteWindows (requests, errors, stored events; no
// percentiles), the fingerprint of their data.
func (s *Store) WindowTotals(ctx context.Context, items []*analysis.Item, idx []int) ([]WindowPair, error) {
	out := make([]WindowPair, len(idx))
	wq, err := WindowsQuery(items, idx)
	if err != nil {
		return nil, err
	}
	if wq.Rows == 0 {
		return out, nil // every window is empty
	}
	qctx := clickhouse.Context(ctx, clickhouse.WithExternalTable(wq.Table))
	err = s.query(qctx, "windows", nil, func(rows driver.Rows) error {
		var (
			w                            uint32
			req, errs, samples, duration float64
		)
		if err := rows.Scan(&w, &req, &errs, &samples, &duration); err != nil {
			return err
		}
		if int(w/2) >= len(out) {
			return fmt.Errorf("unexpected window row %d", w)
		}
		out[w/2][w%2] = analysis.WindowStats{Requests: req, Errors: errs, Samples: samples, DurationMs: duration}
		return nil
	}, wq.Args...)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// OperationWindows runs sql/window_operations.sql for items[idx...] (see
// WindowsQuery): per deployment, its operations with both windows merged.
func (s *Store) OperationWindows(ctx context.Context, items []*analysis.Item, idx []int) ([][]analysis.OperationWindows, error) {
	out := make([][]analysis.OperationWindows, len(idx))
	wq, err := WindowsQuery(items, idx)
	if err != nil {
		return nil, err
	}
	if wq.Rows == 0 {
		return out, nil
	}
	at := make([]map[string]int, len(idx))
	qctx := clickhouse.Context(ctx, clickhouse.WithExternalTable(wq.Table))
	err = s.query(qctx, "window_operations", nil, func(rows driver.Rows) error {
		var (
			w                            uint32
			op                           string
			req, errs, samples, duration float64
			keys                         []uint16
			weights                      []float64
		)
		if err := rows.Scan(&w, &op, &req, &errs, &samples, &duration, &keys, &weights); err != nil {
			return err
		}
		j := int(w / 2)
		if j >= len(out) || len(keys) != len(weights) {
			return fmt.Errorf("unexpected window row %d (%d keys, %d weights)", w, len(keys), len(weights))
		}
		if at[j] == nil {
			at[j] = map[string]int{}
		}
		k, ok := at[j][op]
		if !ok {
			k = len(out[j])
			at[j][op] = k
			out[j] = append(out[j], analysis.OperationWindows{Operation: op})
		}
		h := analysis.Hist{Requests: req, Errors: errs, Samples: samples, DurationMs: duration, Keys: keys, Weights: weights}
		if w%2 == 0 {
			out[j][k].Before = h
		} else {
			out[j][k].After = h
		}
		return nil
	}, wq.Args...)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// OperationMinutes runs sql/window_minutes.sql for items[idx...] (see
// WindowsQuery), evidence[j] being the evidence of items[idx[j]] built from
// OperationWindows: it adds every operation's per-minute counts, slow
// requests counted against its stratum's thresholds and the unit's.
func (s *Store) OperationMinutes(ctx context.Context, items []*analysis.Item, idx []int, evidence []*analysis.Evidence) error {
	if len(evidence) != len(idx) {
		return fmt.Errorf("store: %d evidences for %d deployments", len(evidence), len(idx))
	}
	wq, err := WindowsQuery(items, idx)
	if err != nil {
		return err
	}
	slow, err := ext.NewTable("_cl_slow", ext.Column("j", "UInt32"), ext.Column("op", "String"),
		ext.Column("t1", "UInt16"), ext.Column("t2", "UInt16"), ext.Column("t3", "UInt16"), ext.Column("t4", "UInt16"))
	if err != nil {
		return err
	}
	n := 0
	for j, e := range evidence {
		for _, op := range e.Operations() {
			t, u, _ := e.Thresholds(op)
			if err := slow.Append(uint32(j), op, t[0], t[1], u[0], u[1]); err != nil {
				return err
			}
			n++
		}
	}
	if wq.Rows == 0 || n == 0 {
		return nil
	}
	qctx := clickhouse.Context(ctx, clickhouse.WithExternalTable(wq.Table, slow))
	return s.query(qctx, "window_minutes", nil, func(rows driver.Rows) error {
		var (
			w, o                                  uint32
			op                                    string
			req, errs, slow1, slow2, slow3, slow4 float64
		)
		if err := rows.Scan(&w, &o, &op, &req, &errs, &slow1, &slow2, &slow3, &slow4); err != nil {
			return err
		}
		j := int(w / 2)
		if j >= len(evidence) {
			return fmt.Errorf("unexpected window row %d", w)
		}
		evidence[j].AddMinute(op, w%2 == 1, int(o), analysis.MinuteCounts{Requests: req, Errors: errs,
			Slow: [analysis.NumLevels]float64{slow1, slow2}, UnitSlow: [analysis.NumLevels]float64{slow3, slow4}})
		return nil
	}, wq.Args...)
}
