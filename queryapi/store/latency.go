package store

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/changelens/changelens/internal/schema"
	"github.com/changelens/changelens/internal/stats"
	"github.com/changelens/changelens/queryapi/report"
)

type latencyVariant struct {
	Series             bool
	Group              string // a fixed SQL expression, from groupExpr
	Operation, Version bool
	Hourly             bool // whole hours from latency_hist_1h (see hourSpan)
	Head, Tail         bool // with Hourly: minutes before / after the whole hours
}

// latencyMinutes is a latencyVariant reading the minutes between two bound
// parameters (names such as "@from", fixed in latency.sql, never input).
type latencyMinutes struct {
	latencyVariant
	From, To string
}

// Minutes is the variant for the "latency_minutes" template of latency.sql.
func (v latencyVariant) Minutes(from, to string) latencyMinutes {
	return latencyMinutes{v, from, to}
}

// percentileLevels are the levels of report.LatencyPoint and
// analysis.WindowStats: p50, p90, p95, p99.
var percentileLevels = []float64{0.5, 0.9, 0.95, 0.99}

// percentilesMs are the percentiles of a merged histogram in milliseconds
// (zeros for an empty one).
func percentilesMs(keys []uint16, weights []float64) (p50, p90, p95, p99 float64) {
	q, ok := stats.BucketQuantiles(keys, weights, percentileLevels, schema.HistValue)
	if !ok {
		return 0, 0, 0, 0
	}
	return q[0] / 1e6, q[1] / 1e6, q[2] / 1e6, q[3] / 1e6
}

// hourSpan returns the whole hours [hfrom, hto) inside the seconds
// [from, to) and whether there is at least one. A series may read them from
// latency_hist_1h when its step is a whole number of hours (its buckets are
// then unions of whole hours), a summary always; the minutes of [from, to)
// outside them come from latency_hist_1m.
func hourSpan(from, to int64) (hfrom, hto int64, ok bool) {
	hfrom = (from + 3599) / 3600 * 3600
	hto = to / 3600 * 3600
	return hfrom, hto, hfrom < hto
}

// groupExpr maps GroupBy to its SQL expression (never from input).
func groupExpr(g report.GroupBy) (string, bool) {
	switch g {
	case report.GroupByNone:
		return "materialize('')", true // see latency.sql on constants
	case report.GroupByVersion:
		return "version", true
	case report.GroupByOperation:
		return "operation", true
	}
	return "", false
}

// planLatency chooses the tables a latency query reads: whole hours from
// latency_hist_1h for summaries and for series whose step is whole hours,
// the minutes around them from latency_hist_1m.
func planLatency(q report.LatencyQuery, series bool) (latencyVariant, error) {
	g, ok := groupExpr(q.GroupBy)
	if !ok {
		return latencyVariant{}, invalid("unknown group_by %d", q.GroupBy)
	}
	v := latencyVariant{Series: series, Group: g, Operation: q.Operation != "", Version: q.Version != ""}
	if !series || q.Step%time.Hour == 0 {
		from, to := ceilSeconds(q.Start), ceilSeconds(q.End)
		var hfrom, hto int64
		hfrom, hto, v.Hourly = hourSpan(from, to)
		v.Head, v.Tail = v.Hourly && from < hfrom, v.Hourly && hto < to
	}
	return v, nil
}

// LatencyPoints reads a latency series (series: one point per bucket of
// q.Step and group that has requests, ordered by time then group; buckets
// aligned to multiples of Step since the Unix epoch) or summary (one row per
// group, Time = q.Start). More than limit points is an invalid-argument
// error. The caller validates q (required names, range, step).
func (s *Store) LatencyPoints(ctx context.Context, q report.LatencyQuery, series bool, limit int) ([]report.LatencyPoint, error) {
	v, err := planLatency(q, series)
	if err != nil {
		return nil, err
	}
	return s.latency(ctx, q, v, limit)
}

func (s *Store) latency(ctx context.Context, q report.LatencyQuery, v latencyVariant, limit int) ([]report.LatencyPoint, error) {
	var out []report.LatencyPoint
	from, to := ceilSeconds(q.Start), ceilSeconds(q.End)
	hfrom, hto, _ := hourSpan(from, to)
	var (
		keys    []uint16
		weights []float64
	)
	err := s.query(ctx, "latency", v, func(rows driver.Rows) error {
		var (
			bucket    uint32
			group     string
			req, errs float64
		)
		keys, weights = keys[:0], weights[:0]
		if err := rows.Scan(&bucket, &group, &req, &errs, &keys, &weights); err != nil {
			return err
		}
		p := report.LatencyPoint{Time: q.Start, Group: group, Count: req, ErrorCount: errs}
		if v.Series {
			p.Time = time.Unix(int64(bucket), 0).UTC()
		}
		if req > 0 {
			p.ErrorRate = errs / req
		}
		p.P50Ms, p.P90Ms, p.P95Ms, p.P99Ms = percentilesMs(keys, weights)
		out = append(out, p)
		return nil
	},
		clickhouse.Named("service", q.Service),
		clickhouse.Named("environment", q.Environment),
		clickhouse.Named("operation", q.Operation),
		clickhouse.Named("version", q.Version),
		clickhouse.Named("from", from),
		clickhouse.Named("to", to),
		clickhouse.Named("hfrom", hfrom),
		clickhouse.Named("hto", hto),
		clickhouse.Named("step", int64(q.Step/time.Second)),
		clickhouse.Named("limit", limit+1),
	)
	if err != nil {
		return nil, err
	}
	if len(out) > limit {
		return nil, invalid("more than %d points: raise step_seconds, narrow the range or filter", limit)
	}
	return out, nil
}

// UnitRows lists the units seen in latency_hist_1m or deployed since since
// (of one environment, or all when environment is empty), ordered by
// service and environment; versions newest last-seen first. First/last seen
// are minutes. More than limit unit versions is an invalid-argument error.
func (s *Store) UnitRows(ctx context.Context, environment string, since time.Time, limit int) ([]report.Unit, error) {
	// The whole history comes from the daily summary (schema v18); a
	// database without it, or a bounded history, from every minute.
	v := unitsVariant{Environment: environment != "", Summary: unixSeconds(since) == 0}
	out, err := s.unitRows(ctx, v, environment, since, limit)
	var ex *clickhouse.Exception
	if v.Summary && errors.As(err, &ex) && ex.Code == errUnknownTable {
		v.Summary = false
		out, err = s.unitRows(ctx, v, environment, since, limit)
	}
	return out, err
}

// unitsVariant: .Summary reads unit_versions_1d instead of latency_hist_1m.
type unitsVariant struct{ Environment, Summary bool }

func (s *Store) unitRows(ctx context.Context, v unitsVariant, environment string, since time.Time, limit int) ([]report.Unit, error) {
	var out []report.Unit
	n := 0
	err := s.query(ctx, "units", v, func(rows driver.Rows) error {
		var (
			service, env, version string
			first, last           uint32
		)
		if err := rows.Scan(&service, &env, &version, &first, &last); err != nil {
			return err
		}
		n++
		f, l := time.Unix(int64(first), 0).UTC(), time.Unix(int64(last), 0).UTC()
		if k := len(out) - 1; k >= 0 && out[k].Service == service && out[k].Environment == env {
			u := &out[k]
			u.Versions = append(u.Versions, version)
			if f.Before(u.FirstSeen) {
				u.FirstSeen = f
			}
			if l.After(u.LastSeen) {
				u.LastSeen = l
			}
			return nil
		}
		out = append(out, report.Unit{Service: service, Environment: env, Versions: []string{version}, FirstSeen: f, LastSeen: l})
		return nil
	},
		clickhouse.Named("since", unixSeconds(since)),
		clickhouse.Named("environment", environment),
		clickhouse.Named("limit", limit+1),
		clickhouse.Named("status_failed", schema.StatusFailed),
	)
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, invalid("more than %d unit versions: filter by environment", limit)
	}
	for i := range out {
		out[i].Versions = slices.Clip(out[i].Versions)
	}
	return out, nil
}

// LatencySQL is the SQL LatencyPoints runs for q (for benchmarks that time
// the store's SQL by itself).
func (s *Store) LatencySQL(q report.LatencyQuery, series bool) (string, error) {
	v, err := planLatency(q, series)
	if err != nil {
		return "", err
	}
	return s.sql("latency", v)
}

// LatencyPointsFromMinutes is LatencyPoints reading every minute from
// latency_hist_1m, never whole hours from latency_hist_1h: the reference
// the hourly path must equal.
func (s *Store) LatencyPointsFromMinutes(ctx context.Context, q report.LatencyQuery, series bool, limit int) ([]report.LatencyPoint, error) {
	v, err := planLatency(q, series)
	if err != nil {
		return nil, err
	}
	v.Hourly, v.Head, v.Tail = false, false, false
	return s.latency(ctx, q, v, limit)
}

// LatencyReadsHours reports whether LatencyPoints reads whole hours of q
// from latency_hist_1h.
func LatencyReadsHours(q report.LatencyQuery, series bool) bool {
	v, err := planLatency(q, series)
	return err == nil && v.Hourly
}
