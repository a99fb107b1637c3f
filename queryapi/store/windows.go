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

// WindowsParams are the external table and parameters of one sql/windows.sql
// run.
type WindowsParams struct {
	Table  *ext.Table // the external table _cl_windows
	Args   []any      // the query's parameters
	Rows   int        // rows of Table
	lo, hi time.Time
}

// WindowsQuery prepares sql/windows.sql for items[idx...]: window 2j is the
// before window of items[idx[j]], 2j+1 its after window; the external table
// has one row per rollup minute of each window.
func WindowsQuery(items []*analysis.Item, idx []int) (*WindowsParams, error) {
	tbl, err := ext.NewTable("_cl_windows", ext.Column("k", "UInt64"), ext.Column("w", "UInt32"))
	if err != nil {
		return nil, err
	}
	q := &WindowsParams{Table: tbl}
	unitNo := map[analysis.Unit]uint64{}
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
			for m := span.Start; m.Before(span.End); m = m.Add(time.Minute) {
				if err := tbl.Append(no<<32+uint64(m.Unix()), w); err != nil {
					return nil, err
				}
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

// WindowStats runs sql/windows.sql for items[idx...] (see WindowsQuery):
// the statistics of their MinuteWindows.
func (s *Store) WindowStats(ctx context.Context, items []*analysis.Item, idx []int) ([]WindowPair, error) {
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
			w         uint32
			req, errs float64
			q, p95s   []float64
		)
		if err := rows.Scan(&w, &req, &errs, &q, &p95s); err != nil {
			return err
		}
		if int(w/2) >= len(out) || len(q) != 4 {
			return fmt.Errorf("unexpected window row %d (%d quantiles)", w, len(q))
		}
		ws := analysis.WindowStats{
			Requests: req, Errors: errs,
			P50Ms: q[0] / 1e6, P90Ms: q[1] / 1e6, P95Ms: q[2] / 1e6, P99Ms: q[3] / 1e6,
			MinuteP95Ms: make([]float64, len(p95s)),
		}
		for k, v := range p95s {
			ws.MinuteP95Ms[k] = v / 1e6
		}
		out[w/2][w%2] = ws
		return nil
	}, wq.Args...)
	if err != nil {
		return nil, err
	}
	return out, nil
}
