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

// inferred returns the traffic history of each filtered unit, derived from
// every version observation stored (see package inference).
func (s *Store) inferred(ctx context.Context, f unitFilter) (map[unitFilter]inference.History, error) {
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
	out := make(map[unitFilter]inference.History, len(units))
	for _, u := range units {
		out[unitFilter{u.unit.Service, u.unit.Environment}] = inference.Infer(u.unit.Service, u.unit.Environment, u.eps, s.cfg.Analysis.ReappearAfter)
	}
	return out, nil
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
