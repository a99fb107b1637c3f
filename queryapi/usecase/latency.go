package usecase

import (
	"context"
	"time"

	"github.com/changelens/changelens/queryapi/report"
)

// Latency returns the series of q: one point per (bucket, group) that has
// requests, ordered by time then group. Buckets are aligned to multiples of
// Step since the Unix epoch.
func (s *Service) Latency(ctx context.Context, q report.LatencyQuery) ([]report.LatencyPoint, error) {
	return s.seriesPoints(ctx, q)
}

// LatencySummary returns one row per group over the whole range
// (Time = q.Start).
func (s *Service) LatencySummary(ctx context.Context, q report.LatencyQuery) ([]report.LatencyPoint, error) {
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
