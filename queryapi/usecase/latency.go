package usecase

import (
	"context"
	"time"

	"github.com/changelens/changelens/queryapi/report"
)

func (s *Service) checkLatency(q report.LatencyQuery, series bool) error {
	if q.Service == "" || q.Environment == "" {
		return invalid("service and environment are required")
	}
	if err := checkRange(q.Start, q.End, s.cfg.Limits.MaxLatencyRange); err != nil {
		return err
	}
	if series {
		if q.Step < time.Minute || q.Step%time.Minute != 0 {
			return invalid("step must be a whole number of minutes (the histograms' resolution), got %s", q.Step)
		}
		if n := (q.End.Sub(q.Start) + q.Step - 1) / q.Step; n > time.Duration(s.cfg.Limits.MaxSeriesPoints) {
			return invalid("%d buckets exceed the maximum of %d points: raise step_seconds or narrow the range", n, s.cfg.Limits.MaxSeriesPoints)
		}
	}
	return nil
}

// Latency returns the series of q: one point per (bucket, group) that has
// requests, ordered by time then group. Buckets are aligned to multiples of
// Step since the Unix epoch.
func (s *Service) Latency(ctx context.Context, q report.LatencyQuery) ([]report.LatencyPoint, error) {
	if err := s.checkLatency(q, true); err != nil {
		return nil, err
	}
	return s.seriesPoints(ctx, q)
}

// LatencySummary returns one row per group over the whole range
// (Time = q.Start).
func (s *Service) LatencySummary(ctx context.Context, q report.LatencyQuery) ([]report.LatencyPoint, error) {
	if err := s.checkLatency(q, false); err != nil {
		return nil, err
	}
	return s.st.LatencyPoints(ctx, q, false, s.cfg.Limits.MaxGroups)
}

// Units lists the units seen (of one environment, or all when environment
// is empty), within UnitsLookback.
func (s *Service) Units(ctx context.Context, environment string) ([]report.Unit, error) {
	since := time.Unix(0, 0)
	if s.cfg.UnitsLookback > 0 {
		since = s.cfg.Now().Add(-s.cfg.UnitsLookback)
	}
	return s.st.UnitRows(ctx, environment, since, s.cfg.Limits.MaxUnits)
}
