package usecase

import (
	"context"
	"fmt"

	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/store"
)

// cached is what the cache keeps per deployment: its window statistics and
// their judgement (the windows are closed and settled, so neither changes).
type cached struct {
	stats store.WindowPair
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
func (s *Service) analyze(ctx context.Context, tl *analysis.Timeline, items []*analysis.Item, full bool) ([]report.Impact, error) {
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
		got, err := s.st.WindowStats(ctx, items, batch)
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
				return nil, fmt.Errorf("usecase: judging deployment %s: %w", it.Deployment.ID, err)
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
