package usecase

import (
	"context"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/inference"
	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/store"
)

// unitFilter selects units; empty fields match everything.
type unitFilter = store.UnitFilter

// unitEpisodes are the episodes of one unit's versions.
type unitEpisodes = store.UnitEpisodes

// inferred returns the traffic history of each unit of f, derived from every
// version observation stored (see package inference).
func (s *Service) inferred(ctx context.Context, f unitFilter) (map[unitFilter]inference.History, error) {
	all, err := s.episodesOf(ctx, f)
	if err != nil {
		return nil, err
	}
	out := make(map[unitFilter]inference.History, len(all))
	for u, byVersion := range all {
		var eps []inference.Episode
		for _, e := range byVersion {
			eps = append(eps, e...)
		}
		out[u] = inference.Infer(u.Service, u.Environment, eps, s.cfg.Analysis.ReappearAfter)
	}
	return out, nil
}

// episodesOf returns every episode of the units of f. Without a cache it
// reads the whole history. With one, the settled part (buckets before
// now − EpisodesSettle) is read once per EpisodesRebuild and kept, and each
// call reads only the buckets since and joins them.
func (s *Service) episodesOf(ctx context.Context, f unitFilter) (map[unitFilter]unitEpisodes, error) {
	re := s.cfg.Analysis.ReappearAfter
	if s.episodes == nil {
		return s.st.Episodes(ctx, f, time.Time{}, time.Time{}, re)
	}
	settled, ok := s.episodes.get(f, time.Now().Add(-s.cfg.EpisodesRebuild))
	if !ok {
		// A page's requests arrive together and build the same timelines:
		// the first to miss reads the settled history (the costliest read
		// of a year of data), the others wait for it rather than read it
		// again. The read is not the first caller's alone: its end does not
		// end it (the store's query timeout bounds it).
		shared := context.WithoutCancel(ctx)
		v, err, _ := s.episodes.reads.Do(episodeKey(f), func() (any, error) {
			if e, ok := s.episodes.get(f, time.Now().Add(-s.cfg.EpisodesRebuild)); ok {
				return e, nil
			}
			units, upTo, err := s.settledEpisodes(shared, f, s.EpisodesBound(s.cfg.Now()))
			if err != nil {
				return nil, err
			}
			e := &settledEpisodes{upTo: upTo, built: time.Now(), units: units}
			s.episodes.put(f, e)
			return e, nil
		})
		if err != nil {
			return nil, err
		}
		settled = v.(*settledEpisodes)
	}
	recent, err := s.st.Episodes(ctx, f, settled.upTo, time.Time{}, re)
	if err != nil {
		return nil, err
	}
	return joinEpisodes(settled.units, recent, int64(s.cfg.Analysis.ReappearAfter)), nil
}

// settledEpisodes returns the episodes of f's units over the buckets
// before the returned bound: from the worker's newest stored snapshot when
// it reaches within EpisodesStoredAge of upTo (a few hundred rows instead
// of every bucket of the retained history), else read up to upTo.
func (s *Service) settledEpisodes(ctx context.Context, f unitFilter, upTo time.Time) (map[unitFilter]unitEpisodes, time.Time, error) {
	re := s.cfg.Analysis.ReappearAfter
	if s.cfg.EpisodesStoredAge > 0 {
		// The snapshot only spares a read: failing to read it (a server
		// whose schema predates v19, say) falls back to that read, which
		// reports what is really wrong.
		at, units, ok, err := s.st.StoredEpisodes(ctx, f, re)
		if err == nil && ok && !at.Before(upTo.Add(-s.cfg.EpisodesStoredAge)) {
			return units, at, nil
		}
	}
	units, err := s.st.Episodes(ctx, f, time.Time{}, upTo, re)
	return units, upTo, err
}

// EpisodesBound is where the settled part of the episode history ends at
// now: the start of the bucket holding now − EpisodesSettle.
func (s *Service) EpisodesBound(now time.Time) time.Time {
	return now.Add(-s.cfg.EpisodesSettle).Truncate(store.BucketSize)
}

// SettledEpisodes reads every unit's episodes over the buckets before upTo
// from the history itself, never from a stored snapshot: what
// changelens-worker stores as the next one. reappear is the setting they
// were split with.
func (s *Service) SettledEpisodes(ctx context.Context, upTo time.Time) (reappear time.Duration, units map[unitFilter]unitEpisodes, err error) {
	re := s.cfg.Analysis.ReappearAfter
	units, err = s.st.Episodes(ctx, unitFilter{}, time.Time{}, upTo, re)
	return re, units, err
}

// joinEpisodes returns the episodes of old followed by those of recent (all
// of whose buckets come later), joining a version's last old episode with
// its first recent one when the gap between them is shorter than re. Neither
// input is modified.
func joinEpisodes(old, recent map[unitFilter]unitEpisodes, re int64) map[unitFilter]unitEpisodes {
	out := make(map[unitFilter]unitEpisodes, len(old)+len(recent))
	for u, byVersion := range old {
		eps := make(unitEpisodes, len(byVersion))
		for v, e := range byVersion {
			eps[v] = slices.Clone(e)
		}
		out[u] = eps
	}
	for u, byVersion := range recent {
		eps := out[u]
		if eps == nil {
			eps = unitEpisodes{}
			out[u] = eps
		}
		for v, e := range byVersion {
			cur := eps[v]
			if n := len(cur); n > 0 && len(e) > 0 && e[0].First-cur[n-1].Last < re {
				cur[n-1].Last = e[0].Last
				e = e[1:]
			}
			eps[v] = append(cur, e...)
		}
	}
	return out
}

// settledEpisodes are the episodes of the buckets before upTo of the units
// of one filter, read at built.
type settledEpisodes struct {
	upTo  time.Time
	built time.Time
	units map[unitFilter]unitEpisodes
}

// episodeCache keeps settledEpisodes per unit filter (at most
// maxEpisodeFilters; the oldest goes first).
type episodeCache struct {
	mu    sync.Mutex
	m     map[unitFilter]*settledEpisodes
	reads singleflight.Group // one settled read per filter at a time
}

func episodeKey(f unitFilter) string { return f.Service + "\x00" + f.Environment }

const maxEpisodeFilters = 1024

func newEpisodeCache() *episodeCache { return &episodeCache{m: map[unitFilter]*settledEpisodes{}} }

// get returns f's entry if it was built after notBefore.
func (c *episodeCache) get(f unitFilter, notBefore time.Time) (*settledEpisodes, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[f]
	if !ok || e.built.Before(notBefore) {
		return nil, false
	}
	return e, true
}

func (c *episodeCache) put(f unitFilter, e *settledEpisodes) {
	c.mu.Lock()
	defer c.mu.Unlock()
	putBounded(c.m, f, e, maxEpisodeFilters, func(e *settledEpisodes) time.Time { return e.built })
}

// putBounded sets m[k] = v, first dropping the entry built longest ago
// when k is new and m already holds limit entries: the caches keyed by a
// request's filters stay bounded whatever filters requests name.
func putBounded[K comparable, V any](m map[K]V, k K, v V, limit int, built func(V) time.Time) {
	if _, ok := m[k]; !ok && len(m) >= limit {
		var oldest K
		first := true
		for key, e := range m {
			if first || built(e).Before(built(m[oldest])) {
				oldest, first = key, false
			}
		}
		delete(m, oldest)
	}
	m[k] = v
}

// inferredRows are a history's deployments as rows for analysis.
func inferredRows(u unitFilter, h inference.History) []analysis.Row {
	rows := make([]analysis.Row, 0, len(h.Deployments))
	for _, d := range h.Deployments {
		rows = append(rows, analysis.Row{
			ID:              d.ID,
			Service:         u.Service,
			Environment:     u.Environment,
			Version:         d.Version,
			PreviousVersion: d.PreviousVersion,
			Source:          report.SourceInferred,
			RolloutStart:    d.At,
			DeployTime:      d.At,
			RollbackHint:    d.RanBefore,
		})
	}
	return rows
}

// inferredDeployment finds the unit and time of an inferred deployment ID
// (its first half names the unit); ok is false when no unit has it.
func (s *Service) inferredDeployment(ctx context.Context, id string) (unitFilter, time.Time, bool, error) {
	prefix, ok := inference.IDPrefix(id)
	if !ok {
		return unitFilter{}, time.Time{}, false, nil
	}
	units, err := s.st.InferredUnits(ctx)
	if err != nil {
		return unitFilter{}, time.Time{}, false, err
	}
	var matches []unitFilter
	for _, u := range units {
		if inference.UnitPrefix(u.Service, u.Environment) == prefix {
			matches = append(matches, u)
		}
	}
	for _, u := range matches {
		hs, err := s.inferred(ctx, u)
		if err != nil {
			return unitFilter{}, time.Time{}, false, err
		}
		for _, d := range hs[u].Deployments {
			if d.ID == id {
				return u, d.At, true, nil
			}
		}
	}
	return unitFilter{}, time.Time{}, false, nil
}
