package store

import (
	"context"
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
		return "''", true
	case report.GroupByVersion:
		return "version", true
	case report.GroupByOperation:
		return "operation", true
	}
	return "", false
}

func (s *Store) checkLatency(q report.LatencyQuery, series bool) (latencyVariant, error) {
	if q.Service == "" || q.Environment == "" {
		return latencyVariant{}, invalid("service and environment are required")
	}
	if err := s.checkRange(q.Start, q.End, s.cfg.Limits.MaxLatencyRange); err != nil {
		return latencyVariant{}, err
	}
	g, ok := groupExpr(q.GroupBy)
	if !ok {
		return latencyVariant{}, invalid("unknown group_by %d", q.GroupBy)
	}
	if series {
		if q.Step < time.Minute || q.Step%time.Minute != 0 {
			return latencyVariant{}, invalid("step must be a whole number of minutes (the histograms' resolution), got %s", q.Step)
		}
		if n := (q.End.Sub(q.Start) + q.Step - 1) / q.Step; n > time.Duration(s.cfg.Limits.MaxSeriesPoints) {
			return latencyVariant{}, invalid("%d buckets exceed the maximum of %d points: raise step_seconds or narrow the range", n, s.cfg.Limits.MaxSeriesPoints)
		}
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

// Latency returns the series of q: one point per (bucket, group) that has
// requests, ordered by time then group. Buckets are aligned to multiples of
// Step since the Unix epoch.
func (s *Store) Latency(ctx context.Context, q report.LatencyQuery) ([]report.LatencyPoint, error) {
	v, err := s.checkLatency(q, true)
	if err != nil {
		return nil, err
	}
	return s.latency(ctx, q, v, s.cfg.Limits.MaxSeriesPoints)
}

// LatencySummary returns one row per group over the whole range
// (Time = q.Start).
func (s *Store) LatencySummary(ctx context.Context, q report.LatencyQuery) ([]report.LatencyPoint, error) {
	v, err := s.checkLatency(q, false)
	if err != nil {
		return nil, err
	}
	return s.latency(ctx, q, v, s.cfg.Limits.MaxGroups)
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

// Units lists the units seen in latency_hist_1m or deployed (of one environment, or all
// when environment is empty), ordered by service and environment; versions
// newest last-seen first. First/last seen are minutes.
func (s *Store) Units(ctx context.Context, environment string) ([]report.Unit, error) {
	since := time.Unix(0, 0)
	if s.cfg.UnitsLookback > 0 {
		since = s.cfg.Now().Add(-s.cfg.UnitsLookback)
	}
	var out []report.Unit
	n := 0
	err := s.query(ctx, "units", struct{ Environment bool }{environment != ""}, func(rows driver.Rows) error {
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
		clickhouse.Named("limit", s.cfg.Limits.MaxUnits+1),
		clickhouse.Named("status_failed", schema.StatusFailed),
	)
	if err != nil {
		return nil, err
	}
	if n > s.cfg.Limits.MaxUnits {
		return nil, invalid("more than %d unit versions: filter by environment", s.cfg.Limits.MaxUnits)
	}
	for i := range out {
		out[i].Versions = slices.Clip(out[i].Versions)
	}
	return out, nil
}
