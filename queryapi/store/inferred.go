package store

import (
	"context"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/inference"
	"github.com/changelens/changelens/queryapi/report"
)

type episodesVariant struct{ Service, Environment bool }

// inferred returns the inferred deployments of the filtered units, derived
// from every version observation stored (see package inference), as rows
// for analysis.
func (s *Store) inferred(ctx context.Context, f unitFilter) ([]analysis.Row, error) {
	type unitEpisodes struct {
		unit analysis.Unit
		eps  []inference.Episode
	}
	var units []unitEpisodes
	err := s.query(ctx, "episodes", episodesVariant{f.Service != "", f.Environment != ""}, func(rs driver.Rows) error {
		var (
			service, env, version string
			starts, ends          []uint64
		)
		if err := rs.Scan(&service, &env, &version, &starts, &ends); err != nil {
			return err
		}
		if n := len(units); n == 0 || units[n-1].unit != (analysis.Unit{Service: service, Environment: env}) {
			units = append(units, unitEpisodes{unit: analysis.Unit{Service: service, Environment: env}})
		}
		u := &units[len(units)-1]
		for i := range min(len(starts), len(ends)) {
			u.eps = append(u.eps, inference.Episode{Version: version, First: int64(starts[i]), Last: int64(ends[i])})
		}
		return nil
	},
		clickhouse.Named("reappear_ns", int64(s.cfg.Analysis.ReappearAfter)),
		clickhouse.Named("service", f.Service),
		clickhouse.Named("environment", f.Environment))
	if err != nil {
		return nil, err
	}
	var rows []analysis.Row
	for _, u := range units {
		for _, d := range inference.Infer(u.unit.Service, u.unit.Environment, u.eps, s.cfg.Analysis.ReappearAfter) {
			rows = append(rows, analysis.Row{
				ID:              d.ID,
				Service:         u.unit.Service,
				Environment:     u.unit.Environment,
				Version:         d.Version,
				PreviousVersion: d.PreviousVersion,
				Source:          report.SourceInferred,
				RolloutStart:    d.At,
				DeployTime:      d.At,
				RollbackHint:    d.RanBefore,
			})
		}
	}
	return rows, nil
}

// inferredDeployment finds the unit and time of an inferred deployment ID
// (its first half names the unit); ok is false when no unit has it.
func (s *Store) inferredDeployment(ctx context.Context, id string) (unitFilter, time.Time, bool, error) {
	prefix, ok := inference.IDPrefix(id)
	if !ok {
		return unitFilter{}, time.Time{}, false, nil
	}
	var matches []unitFilter
	err := s.query(ctx, "inferred_units", nil, func(rs driver.Rows) error {
		var u unitFilter
		if err := rs.Scan(&u.Service, &u.Environment); err != nil {
			return err
		}
		if inference.UnitPrefix(u.Service, u.Environment) == prefix {
			matches = append(matches, u)
		}
		return nil
	})
	if err != nil {
		return unitFilter{}, time.Time{}, false, err
	}
	for _, u := range matches {
		rows, err := s.inferred(ctx, u)
		if err != nil {
			return unitFilter{}, time.Time{}, false, err
		}
		for _, r := range rows {
			if r.ID == id {
				return u, r.DeployTime, true, nil
			}
		}
	}
	return unitFilter{}, time.Time{}, false, nil
}
