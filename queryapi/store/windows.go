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

// cacheKey identifies the statistics of an item: its unit and the exact
// minute windows (a deployment's windows change when a neighbour appears).
func cacheKey(it *analysis.Item) string {
	b, a := it.MinuteWindows()
	d := it.Deployment
	return fmt.Sprintf("%s\x00%s\x00%s\x00%d:%d:%d:%d", d.ID, d.Service, d.Environment,
		b.Start.Unix(), b.End.Unix(), a.Start.Unix(), a.End.Unix())
}

// analyze fetches the window statistics of items (from the cache where
// possible, the rest in batched queries) and completes their analysis.
func (s *Store) analyze(ctx context.Context, tl *analysis.Timeline, items []*analysis.Item) ([]report.Impact, error) {
	now := s.cfg.Now()
	stats := make([]windowPair, len(items))
	var missing []int
	for i, it := range items {
		if s.cache != nil {
			if p, ok := s.cache.get(cacheKey(it)); ok {
				stats[i] = p
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
			stats[i] = got[j]
			it := items[i]
			if s.cache != nil && !now.Before(it.After.End.Add(s.cfg.CacheSettle)) {
				s.cache.put(cacheKey(it), got[j])
			}
		}
	}
	out := make([]report.Impact, len(items))
	for i, it := range items {
		im, err := tl.Analyze(it, stats[i][0], stats[i][1], now)
		if err != nil {
			return nil, fmt.Errorf("store: analysing deployment %s: %w", it.Deployment.ID, err)
		}
		out[i] = im
	}
	return out, nil
}

// windowStats runs sql/windows.sql for items[idx...]: window 2j is the
// before window of items[idx[j]], 2j+1 its after window.
func (s *Store) windowStats(ctx context.Context, items []*analysis.Item, idx []int) ([]windowPair, error) {
	out := make([]windowPair, len(idx))
	tbl, err := ext.NewTable("_cl_windows",
		ext.Column("service", "String"),
		ext.Column("environment", "String"),
		ext.Column("m", "UInt32"),
		ext.Column("w", "UInt32"),
	)
	if err != nil {
		return nil, err
	}
	var lo, hi time.Time
	rowsAdded := 0
	for j, i := range idx {
		it := items[i]
		b, a := it.MinuteWindows()
		for side, span := range []analysis.Span{b, a} {
			w := uint32(2*j + side)
			for m := span.Start; m.Before(span.End); m = m.Add(time.Minute) {
				if err := tbl.Append(it.Deployment.Service, it.Deployment.Environment, uint32(m.Unix()), w); err != nil {
					return nil, err
				}
				rowsAdded++
			}
			if span.Empty() {
				continue
			}
			if lo.IsZero() || span.Start.Before(lo) {
				lo = span.Start
			}
			if span.End.After(hi) {
				hi = span.End
			}
		}
	}
	if rowsAdded == 0 {
		return out, nil // every window is empty
	}
	qctx := clickhouse.Context(ctx, clickhouse.WithExternalTable(tbl))
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
	}, clickhouse.Named("from", unixSeconds(lo)), clickhouse.Named("to", ceilSeconds(hi)))
	if err != nil {
		return nil, err
	}
	return out, nil
}
