package store

import (
	"context"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/changelens/changelens/internal/schema"
	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/report"
)

// UnitFilter selects units; empty fields match everything.
type UnitFilter struct{ Service, Environment string }

type deploymentsVariant struct {
	Parts                []string // of "range", "before", "after"; tagged 0, 1, 2 in that order
	Service, Environment bool
}

// DeploymentRows reads the CI deployments of the filtered units with deploy
// time in [from, to) (failed attempts included), plus each unit's 4 latest
// successful ones in [before, from) and 4 earliest in [to, after), one row
// per ID (one query, three parts). inRange counts the rows in [from, to),
// at most limit+1. A row that names its commit without its time (a GitHub
// deployment) takes the time of that commit as a push stored it
// (commit_events; FillCommitTimes), a second query only when one does.
func (s *Store) DeploymentRows(ctx context.Context, f UnitFilter, from, to, before, after time.Time, limit int) (rows []analysis.Row, inRange int, err error) {
	// Each part scans the seconds holding every deploy time its outer
	// filter accepts (deploy_time is the deploy time in whole seconds).
	args := []any{
		clickhouse.Named("range_scan_from", unixSeconds(from)),
		clickhouse.Named("range_scan_to", ceilSeconds(to)+1),
		clickhouse.Named("before_scan_from", unixSeconds(before)),
		clickhouse.Named("before_scan_to", ceilSeconds(from)+1),
		clickhouse.Named("after_scan_from", unixSeconds(to)),
		clickhouse.Named("after_scan_to", ceilSeconds(after)+1),
		clickhouse.Named("from_ns", unixNanos(from)),
		clickhouse.Named("to_ns", unixNanos(to)),
		clickhouse.Named("before_horizon_ns", unixNanos(before)),
		clickhouse.Named("after_horizon_ns", unixNanos(after)),
		clickhouse.Named("limit", limit+1),
		clickhouse.Named("service", f.Service),
		clickhouse.Named("environment", f.Environment),
		clickhouse.Named("status_failed", schema.StatusFailed),
		clickhouse.Named("source_inferred", schema.SourceInferred),
	}
	v := deploymentsVariant{Parts: []string{"range", "before", "after"}, Service: f.Service != "", Environment: f.Environment != ""}
	seen := map[string]bool{}
	err = s.query(ctx, "deployments", v, func(rs driver.Rows) error {
		var (
			part                          uint8
			r                             analysis.Row
			source, status                string
			rolloutNs, deployNs, commitNs uint64
			rollback                      uint8
		)
		if err := rs.Scan(&part, &r.ID, &r.Service, &r.Environment, &r.Version, &r.PreviousVersion, &source, &status,
			&rolloutNs, &deployNs, &r.CommitSHA, &commitNs, &rollback, &r.ReworkMark); err != nil {
			return err
		}
		if part == 0 {
			inRange++
		}
		if seen[r.ID] {
			return nil
		}
		seen[r.ID] = true
		r.Source = report.SourceInferred
		if source == schema.SourceExplicit {
			r.Source = report.SourceExplicit
		}
		r.Failed = status == schema.StatusFailed
		r.DeployTime = time.Unix(0, int64(deployNs)).UTC()
		r.RolloutStart = time.Unix(0, int64(rolloutNs)).UTC()
		if rolloutNs == 0 || r.RolloutStart.After(r.DeployTime) {
			r.RolloutStart = r.DeployTime
		}
		if commitNs > 0 {
			r.CommitTime = time.Unix(0, int64(commitNs)).UTC()
		}
		r.RollbackHint = rollback != 0
		rows = append(rows, r)
		return nil
	}, args...)
	if err == nil {
		err = s.fillCommitTimes(ctx, rows)
	}
	return rows, inRange, err
}

// DeploymentByID reads the unit, deploy time and superseded_by of a stored
// (CI) deployment; found is false when no row has the ID.
func (s *Store) DeploymentByID(ctx context.Context, id string) (unit UnitFilter, deployTime time.Time, supersededBy string, found bool, err error) {
	var deployNs uint64
	err = s.query(ctx, "deployment_by_id", nil, func(rows driver.Rows) error {
		found = true
		return rows.Scan(&unit.Service, &unit.Environment, &deployNs, &supersededBy)
	}, clickhouse.Named("id", id), clickhouse.Named("source_inferred", schema.SourceInferred))
	return unit, time.Unix(0, int64(deployNs)).UTC(), supersededBy, found, err
}
