package usecase

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
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
	// read: when it was read from the verdicts changelens-worker stored
	// (zero: judged here). Such an entry is used for StoredVerdictsTTL,
	// then read again, so that a verdict the worker re-settles shows.
	read time.Time
}

// verdictKey identifies the statistics of an item: its unit and the exact
// minute windows (a deployment's windows change when a neighbour appears).
// A struct, not a formatted string: a year's DORA looks up thousands per
// request.
type verdictKey struct {
	id, service, environment string
	windows                  [4]int64 // before and after, start and end (unix seconds)
}

func cacheKey(it *analysis.Item) verdictKey {
	b, a := it.MinuteWindows()
	d := it.Deployment
	return verdictKey{id: d.ID, service: d.Service, environment: d.Environment,
		windows: [4]int64{b.Start.Unix(), b.End.Unix(), a.Start.Unix(), a.End.Unix()}}
}

// analyze judges items and completes their analysis (see judgeAll).
func (s *Service) analyze(ctx context.Context, tl *analysis.Timeline, items []*analysis.Item) ([]report.Impact, error) {
	res, err := s.judgeAll(ctx, tl, items)
	if err != nil {
		return nil, err
	}
	out := make([]report.Impact, len(items))
	for i, it := range items {
		out[i] = tl.Impact(it, res[i].j, res[i].stats[0], res[i].stats[1])
	}
	return out, nil
}

// judgeAll returns the window statistics and judgement of each item: from
// the cache, then from the stored verdicts where possible, the rest judged
// from their windows (judgeWindows). Stored verdicts that another request
// is reading at the same time are not read twice: this one waits for them
// to reach the cache (claims) once it has read its own.
func (s *Service) judgeAll(ctx context.Context, tl *analysis.Timeline, items []*analysis.Item) ([]cached, error) {
	now := s.cfg.Now()
	res := make([]cached, len(items))
	var keys []verdictKey
	missing := make([]int, len(items))
	for i := range missing {
		missing[i] = i
	}
	if s.cache != nil {
		keys = make([]verdictKey, len(items))
		for i, it := range items {
			keys[i] = cacheKey(it)
		}
		missing = s.fromCache(keys, missing, res, now)
	}
	if len(missing) > 0 && !s.cfg.IgnoreStoredVerdicts {
		var err error
		if missing, err = s.readStored(ctx, items, keys, missing, res, now); err != nil {
			return nil, err
		}
	}
	if err := s.judgeWindows(ctx, tl, items, missing, res, now); err != nil {
		return nil, err
	}
	if s.cache != nil {
		for _, i := range missing {
			if s.settled(items[i], now) {
				s.cache.put(keys[i], res[i])
			}
		}
	}
	return res, nil
}

// settled reports whether it's verdict can no longer change at now: its
// after window closed CacheSettle ago. Only such verdicts are stored by
// the worker and cached.
func (s *Service) settled(it *analysis.Item, now time.Time) bool {
	return !now.Before(it.After.End.Add(s.cfg.CacheSettle))
}

// fromCache fills res[i] for the items among idx whose keys the cache
// holds (a stored verdict only while it is fresh) and returns the others.
func (s *Service) fromCache(keys []verdictKey, idx []int, res []cached, now time.Time) (missing []int) {
	for _, i := range idx {
		if c, ok := s.cache.get(keys[i]); ok && (c.read.IsZero() || now.Sub(c.read) < s.cfg.StoredVerdictsTTL) {
			res[i] = c
			continue
		}
		missing = append(missing, i)
	}
	return missing
}

// readStored fills res[i] for the items among missing whose verdicts the
// worker stored, caches them (keys: the items' cache keys, nil without the
// cache), and returns the rest. With the cache, the settled items another
// request is reading are left to it: they are waited for once this
// request's own read is done (its claims released first, so no two
// requests wait for each other), then taken from the cache; any not there
// are returned with the rest.
func (s *Service) readStored(ctx context.Context, items []*analysis.Item, keys []verdictKey, missing []int, res []cached, now time.Time) ([]int, error) {
	if s.cache == nil {
		return s.useStored(ctx, items, missing, res, now)
	}
	var settled, unsettled []int
	for _, i := range missing {
		if s.settled(items[i], now) {
			settled = append(settled, i)
		} else {
			unsettled = append(unsettled, i) // never stored: useStored skips them too
		}
	}
	mine, theirs, waits, release := s.claims.claim(keys, settled)
	left, err := s.useStored(ctx, items, mine, res, now)
	if err == nil {
		for _, i := range mine {
			if !res[i].read.IsZero() {
				s.cache.put(keys[i], res[i])
			}
		}
	}
	release()
	if err != nil {
		return nil, err
	}
	for _, w := range waits {
		select {
		case <-w:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	left = append(append(left, unsettled...), s.fromCache(keys, theirs, res, now)...)
	slices.Sort(left) // in the items' order, as judgeWindows batches them
	return left, nil
}

// judgeWindows judges items[idx...] from their windows, a batch of
// EvidenceBatch deployments at a time: a first read merges each operation's
// windows (store.OperationWindows), from which the operations are grouped
// and their slow thresholds set (analysis.NewEvidence); a second counts
// every minute against them (store.OperationMinutes); a third reads the
// error kinds of the windows and the history (store.ErrorKinds); the control series
// are found and read (controlsFor); the rule then judges on a compute slot
// (it is CPU-bound); a deployment that regressed is judged again with its
// attribution evidence (attributionFor).
func (s *Service) judgeWindows(ctx context.Context, tl *analysis.Timeline, items []*analysis.Item, idx []int, res []cached, now time.Time) error {
	for len(idx) > 0 {
		n := min(len(idx), s.cfg.EvidenceBatch)
		batch := idx[:n]
		idx = idx[n:]
		ops, err := s.st.OperationWindows(ctx, items, batch)
		if err != nil {
			return err
		}
		evidence := make([]*analysis.Evidence, len(batch))
		for j, i := range batch {
			b, a := items[i].MinuteWindows()
			evidence[j] = analysis.NewEvidence(ops[j], minutes(b), minutes(a), bucketMs, s.cfg.Analysis)
		}
		if err := s.st.OperationMinutes(ctx, items, batch, evidence); err != nil {
			return err
		}
		kinds, err := s.st.ErrorKinds(ctx, items, batch, s.cfg.Analysis.ErrorKindHistory)
		if err != nil {
			return err
		}
		if kinds != nil { // nil: a database without error kinds
			for j := range batch {
				b, a := evidence[j].MinuteRequests()
				evidence[j].ErrorKinds = &analysis.ErrorKindEvidence{BeforeRequests: b, AfterRequests: a,
					HistoryRequests: kinds[j].HistoryRequests, Kinds: kinds[j].Kinds}
			}
		}
		controls, err := s.controlsFor(ctx, items, batch)
		if err != nil {
			return err
		}
		for j := range batch {
			evidence[j].Controls = controls[j]
		}
		err = s.compute(ctx, func() {
			for j, i := range batch {
				b, a := evidence[j].Windows()
				res[i] = cached{stats: store.WindowPair{b, a}, j: tl.Judge(items[i], evidence[j], now)}
			}
		})
		if err != nil {
			return err
		}
		// A regression is judged again with what else changed around it
		// (docs/analysis.md, "Attribution"): the few that regressed pay
		// for the graph and flag reads.
		var again []int
		for j, i := range batch {
			if !regressedSoFar(res[i].j) {
				continue
			}
			ev, own, err := s.attributionFor(ctx, items[i], controls[j])
			if err != nil {
				return err
			}
			evidence[j].Attribution, evidence[j].Own = ev, own
			again = append(again, j)
		}
		if len(again) == 0 {
			continue
		}
		err = s.compute(ctx, func() {
			for _, j := range again {
				i := batch[j]
				res[i].j = tl.Judge(items[i], evidence[j], now)
			}
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// minutes is the number of whole minutes of a minute span.
func minutes(s analysis.Span) int {
	if s.Empty() {
		return 0
	}
	return int(s.End.Sub(s.Start) / time.Minute)
}

// useStored fills res from the verdicts changelens-worker stored for the
// settled items among missing whose windows are still the stored ones, and
// returns the items left to judge.
func (s *Service) useStored(ctx context.Context, items []*analysis.Item, missing []int, res []cached, now time.Time) ([]int, error) {
	stored, err := s.storedFor(ctx, items, missing, now)
	if err != nil {
		return nil, err
	}
	left := missing[:0:0]
	for _, i := range missing {
		v, ok := stored[items[i].Deployment.ID]
		if !ok || !sameWindows(v, items[i]) {
			left = append(left, i)
			continue
		}
		res[i] = cached{stats: v.Stats, j: v.Judgement, read: now}
	}
	return left, nil
}

// storedFor reads the stored verdicts of the settled items among idx.
func (s *Service) storedFor(ctx context.Context, items []*analysis.Item, idx []int, now time.Time) (map[string]store.StoredVerdict, error) {
	var ids []string
	for _, i := range idx {
		if it := items[i]; s.settled(it, now) {
			ids = append(ids, it.Deployment.ID)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	return s.st.StoredVerdicts(ctx, s.configHash, ids)
}

// sameWindows reports whether a stored verdict was judged on it's current
// minute windows.
func sameWindows(v store.StoredVerdict, it *analysis.Item) bool {
	b, a := it.MinuteWindows()
	return v.Before.Start.Equal(b.Start) && v.Before.End.Equal(b.End) && v.After.Start.Equal(a.Start) && v.After.End.Equal(a.End)
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
const verdictAlgorithm = "verdict-v4"
