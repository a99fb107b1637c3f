package store

import (
	"context"
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
