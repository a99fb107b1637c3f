package usecase

import (
	"cmp"
	"errors"
	"fmt"
	"time"

	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/limits"
)

// Config configures a Service. Zero values take the defaults listed with
// each field (see DefaultConfig).
type Config struct {
	// Limits are the API's bounds (queryapi/limits): QueryTimeout caps every
	// query on top of the caller's deadline; the ranges, points, groups,
	// page sizes, deployments and units bound what a request reads.
	Limits limits.Limits
	// UnitsLookback limits Units to data seen this recently. Default 0: all.
	UnitsLookback time.Duration
	// UnitsTTL is how long a list of units (Units: every page of the web UI
	// asks for it) is answered again from memory: on a year of data the
	// list costs ClickHouse 18.16 ~120 ms (a daily summary of 365
	// partitions), and a version or unit that appears shows after at most
	// this long. Default 15s; negative: every call reads (also with
	// CacheSize < 0).
	UnitsTTL time.Duration
	// NeighborHorizon is how far before and after a requested range the
	// neighbouring deployments of each unit are looked for (restore times,
	// rollbacks and window cuts need them). Default 90 days.
	NeighborHorizon time.Duration
	// WindowBatch is the number of deployments whose window counts one
	// query covers (the worker's cheap read). Default 5000.
	WindowBatch int
	// EvidenceBatch is the number of deployments judged from their windows
	// per pair of reads (each operation's merged windows, then its minutes).
	// Each read scans the minutes of its batch's range, so fewer, larger
	// batches cost less (a 30-day DORA in batches of 100 read 3.6× longer
	// than in one). Default 1000.
	EvidenceBatch int
	// CacheSize is the number of deployments whose window statistics and
	// verdicts are kept in memory once both windows are closed and settled.
	// Default 20000; negative disables the cache.
	CacheSize int
	// IgnoreStoredVerdicts: judge every deployment from its windows, never
	// from the verdicts changelens-worker stored (the worker itself, and
	// benchmarks of the computation).
	IgnoreStoredVerdicts bool
	// CacheSettle is how long after a deployment's after window closed its
	// statistics are still read from ClickHouse (late data) before they are
	// cached. Default 5m.
	CacheSettle time.Duration
	// StoredVerdictsTTL is how long a verdict read from those
	// changelens-worker stored is kept in the cache before it is read
	// again: a verdict the worker re-settles (late or replayed data) shows
	// after at most this long, and a running process does not read every
	// stored verdict of its range on every request. Default 10m.
	StoredVerdictsTTL time.Duration
	// EpisodesSettle and EpisodesRebuild bound the cost of inferring
	// deployments: the version episodes of buckets older than
	// EpisodesSettle are read once and kept (per unit filter) for
	// EpisodesRebuild; every request reads only the newer buckets and joins
	// them. Spans arriving more than EpisodesSettle late are seen at the next
	// rebuild. Defaults 1h and 10m; off with the cache (CacheSize < 0).
	EpisodesSettle, EpisodesRebuild time.Duration
	// EpisodesStoredAge: a rebuild takes the settled history from the
	// newest snapshot changelens-worker stored (schema v19) when that
	// snapshot reaches at least this close to now − EpisodesSettle, and
	// reads the history itself otherwise (no worker, or one that stopped).
	// The worker stores a snapshot whenever its settled part grows by a
	// bucket, so a running one keeps within minutes. Default 1h; negative:
	// stored snapshots are never used.
	EpisodesStoredAge time.Duration

	// SeriesCacheBuckets is the number of latency-series buckets (each the
	// points of one step of one series) kept in memory, so that a range
	// asked again a little later reads only its new buckets. Default
	// 100000 (about 40 MB at worst); negative disables it, as does
	// CacheSize < 0.
	SeriesCacheBuckets int
	// SeriesSettle is how long after a bucket's end it is still read from
	// ClickHouse (late spans) before it may be cached; SeriesTTL how long
	// a cached bucket is used (back-filled data shows after at most this
	// long). Defaults 10m and 10m.
	SeriesSettle, SeriesTTL time.Duration

	// Analysis holds the change-failure thresholds. Default
	// analysis.DefaultConfig(); a zero value means the default.
	Analysis analysis.Config

	// Now is the clock deciding whether windows are closed (PENDING) and
	// what may be cached. Default time.Now. Tests pass a scenario clock.
	Now func() time.Time
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Limits:             limits.Default(),
		NeighborHorizon:    90 * 24 * time.Hour,
		WindowBatch:        5000,
		EvidenceBatch:      1000,
		CacheSize:          20000,
		CacheSettle:        5 * time.Minute,
		StoredVerdictsTTL:  10 * time.Minute,
		UnitsTTL:           15 * time.Second,
		EpisodesSettle:     time.Hour,
		EpisodesRebuild:    10 * time.Minute,
		EpisodesStoredAge:  time.Hour,
		SeriesCacheBuckets: 100000,
		SeriesSettle:       10 * time.Minute,
		SeriesTTL:          10 * time.Minute,
		Analysis:           analysis.DefaultConfig(),
		Now:                time.Now,
	}
}

// withDefaults fills zero fields.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	c.Limits = c.Limits.WithDefaults()
	c.NeighborHorizon = cmp.Or(c.NeighborHorizon, d.NeighborHorizon)
	c.WindowBatch = cmp.Or(c.WindowBatch, d.WindowBatch)
	c.EvidenceBatch = cmp.Or(c.EvidenceBatch, d.EvidenceBatch)
	c.CacheSize = cmp.Or(c.CacheSize, d.CacheSize)
	c.CacheSettle = cmp.Or(c.CacheSettle, d.CacheSettle)
	c.StoredVerdictsTTL = cmp.Or(c.StoredVerdictsTTL, d.StoredVerdictsTTL)
	c.UnitsTTL = cmp.Or(c.UnitsTTL, d.UnitsTTL)
	c.EpisodesSettle = cmp.Or(c.EpisodesSettle, d.EpisodesSettle)
	c.EpisodesRebuild = cmp.Or(c.EpisodesRebuild, d.EpisodesRebuild)
	c.EpisodesStoredAge = cmp.Or(c.EpisodesStoredAge, d.EpisodesStoredAge)
	c.SeriesCacheBuckets = cmp.Or(c.SeriesCacheBuckets, d.SeriesCacheBuckets)
	c.SeriesSettle = cmp.Or(c.SeriesSettle, d.SeriesSettle)
	c.SeriesTTL = cmp.Or(c.SeriesTTL, d.SeriesTTL)
	if c.Analysis == (analysis.Config{}) {
		c.Analysis = d.Analysis
	}
	if c.Now == nil {
		c.Now = d.Now
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	pos := func(name string, v time.Duration) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("usecase: %s must be positive, got %s", name, v))
		}
	}
	posI := func(name string, v int) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("usecase: %s must be positive, got %d", name, v))
		}
	}
	pos("NeighborHorizon", c.NeighborHorizon)
	pos("CacheSettle", c.CacheSettle)
	pos("StoredVerdictsTTL", c.StoredVerdictsTTL)
	pos("EpisodesSettle", c.EpisodesSettle)
	pos("EpisodesRebuild", c.EpisodesRebuild)
	pos("SeriesSettle", c.SeriesSettle)
	pos("SeriesTTL", c.SeriesTTL)
	posI("WindowBatch", c.WindowBatch)
	posI("EvidenceBatch", c.EvidenceBatch)
	if c.UnitsLookback < 0 {
		errs = append(errs, fmt.Errorf("usecase: UnitsLookback must not be negative, got %s", c.UnitsLookback))
	}
	if err := c.Limits.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Analysis.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
