package store

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/report"
)

// windowPair are the statistics of a deployment's before and after windows.
type windowPair [2]analysis.WindowStats

// cached is what the cache keeps per deployment: its window statistics and
// their judgement (the windows are closed and settled, so neither changes).
type cached struct {
	stats windowPair
	j     analysis.Judgement
}

// cacheKey identifies the statistics of an item: its unit and the exact
// minute windows (a deployment's windows change when a neighbour appears).
func cacheKey(it *analysis.Item) string {
	b, a := it.MinuteWindows()
	d := it.Deployment
	return fmt.Sprintf("%s\x00%s\x00%s\x00%d:%d:%d:%d", d.ID, d.Service, d.Environment,
		b.Start.Unix(), b.End.Unix(), a.Start.Unix(), a.End.Unix())
}

// analyze judges items and completes their analysis. Window statistics and
// judgements come from the cache where possible; the rest are fetched in
// batched queries. With full, every judgement reports its latency test
// (Impact); without, the test is skipped where it cannot change the verdict
// (listings, DORA).
func (s *Store) analyze(ctx context.Context, tl *analysis.Timeline, items []*analysis.Item, full bool) ([]report.Impact, error) {
	now := s.cfg.Now()
	res := make([]cached, len(items))
	have := make([]bool, len(items))
	var missing []int
	for i, it := range items {
		if s.cache != nil {
			if c, ok := s.cache.get(cacheKey(it)); ok {
				if full && !c.j.Complete {
					j, err := tl.Judge(it, c.stats[0], c.stats[1], now, true)
					if err != nil {
						return nil, err
					}
					c.j = j
					s.cache.put(cacheKey(it), c)
				}
				res[i], have[i] = c, true
				continue
			}
		}
		missing = append(missing, i)
	}
	for len(missing) > 0 {
		n := min(len(missing), s.cfg.WindowBatch)
		batch := missing[:n]
		missing = missing[n:]
		got, err := s.windowStats(ctx, items, batch)
		if err != nil {
			return nil, err
		}
		for j, i := range batch {
			res[i].stats = got[j]
		}
	}
	out := make([]report.Impact, len(items))
	for i, it := range items {
		c := res[i]
		if !have[i] {
			j, err := tl.Judge(it, c.stats[0], c.stats[1], now, full)
			if err != nil {
				return nil, fmt.Errorf("store: judging deployment %s: %w", it.Deployment.ID, err)
			}
			c.j = j
			if s.cache != nil && !now.Before(it.After.End.Add(s.cfg.CacheSettle)) {
				s.cache.put(cacheKey(it), c)
			}
		}
		out[i] = tl.Impact(it, c.j, c.stats[0], c.stats[1])
	}
	return out, nil
}

// windowsQuery is the external table and parameters of one sql/windows.sql
// run.
type windowsQuery struct {
	table  *ext.Table
	args   []any
	rows   int
	lo, hi time.Time
}

// windowsTable prepares sql/windows.sql for items[idx...]: window 2j is the
// before window of items[idx[j]], 2j+1 its after window; the external table
// has one row per rollup minute of each window.
func windowsTable(items []*analysis.Item, idx []int) (*windowsQuery, error) {
	tbl, err := ext.NewTable("_cl_windows", ext.Column("k", "UInt64"), ext.Column("w", "UInt32"))
	if err != nil {
		return nil, err
	}
	q := &windowsQuery{table: tbl}
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
				q.rows++
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
	q.args = []any{
		clickhouse.Named("units", units),
		clickhouse.Named("services", clickhouse.GroupSet{Value: serviceSet}),
		clickhouse.Named("environments", clickhouse.GroupSet{Value: envSet}),
		clickhouse.Named("from", unixSeconds(q.lo)),
		clickhouse.Named("to", ceilSeconds(q.hi)),
	}
	return q, nil
}

// windowStats runs sql/windows.sql for items[idx...] (see windowsTable).
func (s *Store) windowStats(ctx context.Context, items []*analysis.Item, idx []int) ([]windowPair, error) {
	out := make([]windowPair, len(idx))
	wq, err := windowsTable(items, idx)
	if err != nil {
		return nil, err
	}
	if wq.rows == 0 {
		return out, nil // every window is empty
	}
	qctx := clickhouse.Context(ctx, clickhouse.WithExternalTable(wq.table))
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
	}, wq.args...)
	if err != nil {
		return nil, err
	}
	return out, nil
}
