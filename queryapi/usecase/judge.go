package usecase

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

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

// analyze judges items and completes their analysis (see judgeAll).
func (s *Service) analyze(ctx context.Context, tl *analysis.Timeline, items []*analysis.Item, full bool) ([]report.Impact, error) {
	res, err := s.judgeAll(ctx, tl, items, full, false)
	if err != nil {
		return nil, err
	}
	out := make([]report.Impact, len(items))
	for i, it := range items {
		out[i] = tl.Impact(it, res[i].j, res[i].stats[0], res[i].stats[1])
	}
	return out, nil
}

// judgeAll returns the window statistics and judgement of each item. They
// come from the cache and then from the stored verdicts where possible; the
// rest are fetched in batched queries. With full, every judgement reports
// its latency test (Impact); without, the test is skipped where it cannot
// change the verdict (listings, DORA). With fresh, every item is judged
// from its windows as they are now (what changelens-worker stores), and
// nothing is cached.
func (s *Service) judgeAll(ctx context.Context, tl *analysis.Timeline, items []*analysis.Item, full, fresh bool) ([]cached, error) {
	now := s.cfg.Now()
	res := make([]cached, len(items))
	have := make([]bool, len(items))
	var missing []int
	for i, it := range items {
		if s.cache != nil && !fresh {
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
	if len(missing) > 0 && !s.cfg.IgnoreStoredVerdicts && !fresh {
		var err error
		if missing, err = s.useStored(ctx, tl, items, missing, res, have, now, full); err != nil {
			return nil, err
		}
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
	for i, it := range items {
		if have[i] {
			continue
		}
		c := &res[i]
		j, err := tl.Judge(it, c.stats[0], c.stats[1], now, full)
		if err != nil {
			return nil, fmt.Errorf("usecase: judging deployment %s: %w", it.Deployment.ID, err)
		}
		c.j = j
		if s.cache != nil && !fresh && !now.Before(it.After.End.Add(s.cfg.CacheSettle)) {
			s.cache.put(cacheKey(it), *c)
		}
	}
	return res, nil
}

// useStored fills res from the verdicts changelens-worker stored for the
// settled items among missing whose windows are still the stored ones, and
// returns the items left to compute.
func (s *Service) useStored(ctx context.Context, tl *analysis.Timeline, items []*analysis.Item, missing []int,
	res []cached, have []bool, now time.Time, full bool) ([]int, error) {
	var ids []string
	for _, i := range missing {
		if it := items[i]; !now.Before(it.After.End.Add(s.cfg.CacheSettle)) {
			ids = append(ids, it.Deployment.ID)
		}
	}
	if len(ids) == 0 {
		return missing, nil
	}
	stored, err := s.st.StoredVerdicts(ctx, s.configHash, ids)
	if err != nil {
		return nil, err
	}
	left := missing[:0:0]
	for _, i := range missing {
		it := items[i]
		v, ok := stored[it.Deployment.ID]
		b, a := it.MinuteWindows()
		if !ok || !v.Before.Start.Equal(b.Start) || !v.Before.End.Equal(b.End) || !v.After.Start.Equal(a.Start) || !v.After.End.Equal(a.End) {
			left = append(left, i)
			continue
		}
		c := cached{stats: v.Stats, j: v.Judgement}
		if full && !c.j.Complete {
			j, err := tl.Judge(it, c.stats[0], c.stats[1], now, true)
			if err != nil {
				return nil, err
			}
			c.j = j
		}
		res[i], have[i] = c, true
		if s.cache != nil {
			s.cache.put(cacheKey(it), c)
		}
	}
	return left, nil
}

// ConfigHash identifies the analysis settings verdicts are judged with
// (stored verdicts are keyed by it): 16 hex digits of a hash of the
// settings and of verdictAlgorithm.
func ConfigHash(cfg analysis.Config) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s|%+v", verdictAlgorithm, cfg)))
	return hex.EncodeToString(sum[:8])
}

// verdictAlgorithm changes when the rules that turn window statistics into
// a verdict change, so that verdicts stored by an older worker are judged
// again.
const verdictAlgorithm = "verdict-v1"
