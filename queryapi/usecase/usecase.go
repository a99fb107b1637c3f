// Package usecase answers the API's questions (report.Source) for input the
// server has validated: it applies the limits to what a request reads,
// pages, caches,
// derives inferred deployments, builds each unit's timeline and judges its
// deployments — reading through the Storage interfaces (storage.go), which
// queryapi/store (a pure reader of the ClickHouse tables) implements, and
// deciding with queryapi/analysis (the product rules) and
// queryapi/inference (the rule for inferred deployments).
//
// # Deployments
//
// A timeline is read for the requested range plus a neighbour horizon on
// each side: the CI deployments (store.DeploymentRows) and the deployments
// inferred from every unit's version episodes (store.Episodes through an
// episode cache: the settled history once per EpisodesRebuild, the recent
// buckets on every request; see docs/deployments.md). A deploy span that
// names no previous version takes the one the traffic showed before its
// rollout began. analysis.NewTimeline merges, orders and cuts windows.
//
// # Verdicts
//
// A settled deployment's verdict is the one changelens-worker stored when it
// counted the same events in the same windows (a cheap fingerprint read,
// store.WindowTotals); otherwise the deployment is judged from its windows
// (batched store.OperationWindows and OperationMinutes reads, the controls,
// and for a regression the attribution) through Timeline.Judge, the one
// verdict entry point. Settled judgements are kept in an LRU cache
// (CacheSettle), so a DORA report or listing reads only recent windows.
// What an impact shows beside the verdict — the canary comparison, the graph
// around the unit — is read the same way from what the worker stored for
// the deployment's windows and versions (Evidence), and computed only when
// nothing fits.
//
// # Paging
//
// /v1/deployments pages are newest first; a page token is the base64url
// encoding of the last row's (deploy time in ns, ID), so it stays valid
// while data are added.
package usecase

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"

	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/store"
)

// Service answers the API's questions. It is safe for concurrent use.
type Service struct {
	cfg      Config
	st       Storage
	owned    bool // Open opened st: Close closes it
	cache    *lru[verdictKey, cached]
	episodes *episodeCache                 // nil: every request reads the whole history
	series   *lru[seriesKey, seriesBucket] // nil: every series is read whole
	units    *unitsCache                   // nil: every list of units is read
	claims   claims                        // settled verdicts being got (with the cache)
	// cpu holds a token per CPU-bound analysis running (see compute);
	// spare the one token of the core compute leaves free, which
	// computeSpare may take while nothing waits for cpu; waiting counts
	// the computations waiting for cpu.
	cpu, spare chan struct{}
	waiting    atomic.Int32
	// configHash keys the verdicts stored for cfg.Analysis.
	configHash string
}

var _ report.Source = (*Service)(nil)

// compute runs fn, CPU-bound work in this process (a comparison's
// bootstrap), once a compute slot is free: one per core but one, at least
// one. Many requests computing at once finish no sooner in total than
// taking turns, and the core left free keeps the process answering
// everything else — liveness probes, cached and ClickHouse-bound requests —
// promptly under load. Waiting ends with ctx.
func (s *Service) compute(ctx context.Context, fn func()) error {
	select {
	case s.cpu <- struct{}{}:
	default:
		s.waiting.Add(1)
		select {
		case s.cpu <- struct{}{}:
			s.waiting.Add(-1)
		case <-ctx.Done():
			s.waiting.Add(-1)
			return ctx.Err()
		}
	}
	defer func() { <-s.cpu }()
	fn()
	return nil
}

// computeSpare runs fn like compute, or on the free core's slot when no
// compute slot is free and no computation waits for one: work a request
// splits into parts (a comparison's per-operation breakdown) uses both
// cores of an idle process, and under load, when computations queue, it
// takes its turn like any other.
func (s *Service) computeSpare(ctx context.Context, fn func()) error {
	if s.waiting.Load() == 0 {
		select {
		case s.cpu <- struct{}{}:
			defer func() { <-s.cpu }()
			fn()
			return nil
		case s.spare <- struct{}{}:
			defer func() { <-s.spare }()
			fn()
			return nil
		default:
		}
	}
	return s.compute(ctx, fn)
}

// New returns a Service reading through st: a *store.Store, or an in-memory
// Storage in tests. The caller keeps st (Close does not close it).
func New(st Storage, cfg Config) (*Service, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, st: st, configHash: ConfigHash(cfg.Analysis),
		cpu: make(chan struct{}, max(1, runtime.GOMAXPROCS(0)-1))}
	if runtime.GOMAXPROCS(0) > 1 { // one core: nothing spare (a nil channel is never ready)
		s.spare = make(chan struct{}, 1)
	}
	if cfg.CacheSize > 0 {
		s.cache = newLRU[verdictKey, cached](cfg.CacheSize)
		s.episodes = newEpisodeCache()
		if cfg.UnitsTTL > 0 {
			s.units = &unitsCache{m: map[string]unitsEntry{}}
		}
		if cfg.SeriesCacheBuckets > 0 {
			s.series = newLRU[seriesKey, seriesBucket](cfg.SeriesCacheBuckets)
		}
	}
	return s, nil
}

// Open opens a store on dsn (its per-query timeout: the limits'
// QueryTimeout) and a Service reading through it; Close closes both.
func Open(ctx context.Context, dsn string, cfg Config) (*Service, error) {
	cfg = cfg.withDefaults()
	st, err := store.Open(ctx, store.Config{DSN: dsn, QueryTimeout: cfg.Limits.QueryTimeout})
	if err != nil {
		return nil, err
	}
	s, err := New(st, cfg)
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	s.owned = true
	return s, nil
}

// Close closes the store if Open opened it.
func (s *Service) Close() error {
	if s.owned {
		return s.st.Close()
	}
	return nil
}

// Ping checks that the storage answers (for health checks).
func (s *Service) Ping(ctx context.Context) error { return s.st.Ping(ctx) }

func invalid(format string, args ...any) error {
	return &report.InvalidArgumentError{Reason: fmt.Sprintf(format, args...)}
}
