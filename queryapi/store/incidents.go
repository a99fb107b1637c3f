package store

import (
	"context"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/changelens/changelens/queryapi/report"
)

type incidentsVariant struct{ Service, Environment bool }

// IncidentRows reads the incidents of the filtered units opened in [from,
// to), one per (service, environment, id), oldest first; more than limit is
// an *report.InvalidArgumentError. LinkedDeploymentID is left to the
// caller, who knows the deployments.
func (s *Store) IncidentRows(ctx context.Context, f UnitFilter, from, to time.Time, limit int) ([]report.Incident, error) {
	args := []any{
		clickhouse.Named("scan_from", unixSeconds(from)),
		clickhouse.Named("scan_to", ceilSeconds(to)+1),
		clickhouse.Named("from_ns", unixNanos(from)),
		clickhouse.Named("to_ns", unixNanos(to)),
		clickhouse.Named("limit", limit+1),
		clickhouse.Named("service", f.Service),
		clickhouse.Named("environment", f.Environment),
	}
	var out []report.Incident
	err := s.query(ctx, "incidents", incidentsVariant{Service: f.Service != "", Environment: f.Environment != ""}, func(rs driver.Rows) error {
		var (
			in                   report.Incident
			openedNs, resolvedNs uint64
		)
		if err := rs.Scan(&in.ID, &in.Service, &in.Environment, &in.Source, &in.Status, &in.Severity, &in.Title,
			&in.DeploymentID, &openedNs, &resolvedNs); err != nil {
			return err
		}
		in.Opened = time.Unix(0, int64(openedNs)).UTC()
		if in.Status == report.IncidentResolved {
			in.Resolved = time.Unix(0, int64(resolvedNs)).UTC()
		}
		out = append(out, in)
		return nil
	}, args...)
	if err != nil {
		return nil, err
	}
	if len(out) > limit {
		return nil, invalid("more than %d incidents in the range: narrow it or filter by service", limit)
	}
	return out, nil
}
