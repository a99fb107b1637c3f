package store

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/changelens/changelens/queryapi/inference"
)

type episodesVariant struct{ Service, Environment, Before, Since bool }

// UnitEpisodes are the episodes of one unit's versions, by version.
type UnitEpisodes map[string][]inference.Episode

// Episodes reads the version episodes (sql/episodes.sql) of the units of f
// over the buckets in [since, before) (zero: unbounded), with gaps of
// reappear or more splitting them.
func (s *Store) Episodes(ctx context.Context, f UnitFilter, since, before time.Time, reappear time.Duration) (map[UnitFilter]UnitEpisodes, error) {
	out := map[UnitFilter]UnitEpisodes{}
	v := episodesVariant{Service: f.Service != "", Environment: f.Environment != "", Before: !before.IsZero(), Since: !since.IsZero()}
	err := s.query(ctx, "episodes", v, func(rs driver.Rows) error {
		var (
			u            UnitFilter
			version      string
			starts, ends []uint64
		)
		if err := rs.Scan(&u.Service, &u.Environment, &version, &starts, &ends); err != nil {
			return err
		}
		eps := out[u]
		if eps == nil {
			eps = UnitEpisodes{}
			out[u] = eps
		}
		for i := range min(len(starts), len(ends)) {
			eps[version] = append(eps[version], inference.Episode{Version: version, First: int64(starts[i]), Last: int64(ends[i])})
		}
		return nil
	},
		clickhouse.Named("reappear_ns", int64(reappear)),
		clickhouse.Named("service", f.Service),
		clickhouse.Named("environment", f.Environment),
		clickhouse.Named("before", unixSeconds(before)),
		clickhouse.Named("since", unixSeconds(since)))
	return out, err
}

// BucketSize is the bucket of version_presence: Episodes' since and before
// are whole buckets.
const BucketSize = 5 * time.Minute

// InferredUnits lists the units whose traffic shows versions.
func (s *Store) InferredUnits(ctx context.Context) ([]UnitFilter, error) {
	var out []UnitFilter
	err := s.query(ctx, "inferred_units", nil, func(rs driver.Rows) error {
		var u UnitFilter
		if err := rs.Scan(&u.Service, &u.Environment); err != nil {
			return err
		}
		out = append(out, u)
		return nil
	})
	return out, err
}

// StoredEpisodes reads the newest snapshot of settled episodes
// changelens-worker stored for reappear (schema v19): the episodes of the
// units of f over the buckets before upTo. ok is false when there is none,
// or while some of its rows are not visible yet (a Distributed insert
// arrives shard by shard): the caller reads the history itself.
func (s *Store) StoredEpisodes(ctx context.Context, f UnitFilter, reappear time.Duration) (upTo time.Time, units map[UnitFilter]UnitEpisodes, ok bool, err error) {
	var (
		upToS int64
		want  uint32
		got   uint64
		found bool
	)
	err = s.query(ctx, "episodes_stored_head", nil, func(rs driver.Rows) error {
		found = true
		return rs.Scan(&upToS, &want, &got)
	}, clickhouse.Named("reappear_ns", int64(reappear)))
	if err != nil || !found || got < uint64(want) {
		return time.Time{}, nil, false, err
	}
	upTo = time.Unix(upToS, 0).UTC()
	units = map[UnitFilter]UnitEpisodes{}
	v := episodesVariant{Service: f.Service != "", Environment: f.Environment != ""}
	err = s.query(ctx, "episodes_stored", v, func(rs driver.Rows) error {
		var (
			u             UnitFilter
			versions      []string
			firsts, lasts []uint64
		)
		if err := rs.Scan(&u.Service, &u.Environment, &versions, &firsts, &lasts); err != nil {
			return err
		}
		if len(firsts) != len(versions) || len(lasts) != len(versions) {
			return fmt.Errorf("unit %s/%s: %d versions, %d firsts, %d lasts", u.Service, u.Environment, len(versions), len(firsts), len(lasts))
		}
		eps := UnitEpisodes{}
		for k, version := range versions {
			eps[version] = append(eps[version], inference.Episode{Version: version, First: int64(firsts[k]), Last: int64(lasts[k])})
		}
		units[u] = eps
		return nil
	},
		clickhouse.Named("reappear_ns", int64(reappear)),
		clickhouse.Named("up_to", upToS),
		clickhouse.Named("service", f.Service),
		clickhouse.Named("environment", f.Environment))
	if err != nil {
		return time.Time{}, nil, false, err
	}
	return upTo, units, true, nil
}

// FlattenEpisodes lays out a unit's episodes as the parallel arrays of a
// stored snapshot (StoredEpisodes reads them back): by version, then by
// first span, so that the same episodes are always the same row.
func FlattenEpisodes(eps UnitEpisodes) (versions []string, firsts, lasts []uint64) {
	for _, version := range slices.Sorted(maps.Keys(eps)) {
		byFirst := slices.SortedFunc(slices.Values(eps[version]), func(a, b inference.Episode) int { return cmp.Compare(a.First, b.First) })
		for _, e := range byFirst {
			versions = append(versions, version)
			firsts = append(firsts, uint64(e.First))
			lasts = append(lasts, uint64(e.Last))
		}
	}
	return versions, firsts, lasts
}
