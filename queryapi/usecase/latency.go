package usecase

import (
	"context"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

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
// is empty), within UnitsLookback: read once per UnitsTTL, requests at once
// sharing one read.
func (s *Service) Units(ctx context.Context, environment string) ([]report.Unit, error) {
	if s.units == nil {
		return s.readUnits(ctx, environment)
	}
	now := s.cfg.Now()
	if units, ok := s.units.get(environment, now.Add(-s.cfg.UnitsTTL)); ok {
		return cloneUnits(units), nil
	}
	v, err, _ := s.units.reads.Do(environment, func() (any, error) {
		if units, ok := s.units.get(environment, now.Add(-s.cfg.UnitsTTL)); ok {
			return units, nil
		}
		units, err := s.readUnits(context.WithoutCancel(ctx), environment)
		if err != nil {
			return nil, err
		}
		s.units.put(environment, unitsEntry{read: now, units: units})
		return units, nil
	})
	if err != nil {
		return nil, err
	}
	return cloneUnits(v.([]report.Unit)), nil
}

func (s *Service) readUnits(ctx context.Context, environment string) ([]report.Unit, error) {
	since := time.Unix(0, 0)
	if s.cfg.UnitsLookback > 0 {
		since = s.cfg.Now().Add(-s.cfg.UnitsLookback)
	}
	return s.st.UnitRows(ctx, environment, since, s.cfg.Limits.MaxUnits)
}

// unitsCache keeps the last list of units read per environment filter.
type unitsCache struct {
	mu    sync.Mutex
	m     map[string]unitsEntry
	reads singleflight.Group
}

type unitsEntry struct {
	read  time.Time
	units []report.Unit
}

// get returns the list of environment read after notBefore.
func (c *unitsCache) get(environment string, notBefore time.Time) ([]report.Unit, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[environment]
	if !ok || e.read.Before(notBefore) {
		return nil, false
	}
	return e.units, true
}

// maxUnitsFilters bounds the environments whose lists are kept: a request
// may name any environment.
const maxUnitsFilters = 64

// put keeps e, dropping the list read longest ago past maxUnitsFilters.
func (c *unitsCache) put(environment string, e unitsEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	putBounded(c.m, environment, e, maxUnitsFilters, func(e unitsEntry) time.Time { return e.read })
}

// cloneUnits copies units so that a caller may change its copy.
func cloneUnits(units []report.Unit) []report.Unit {
	out := slices.Clone(units)
	for i := range out {
		out[i].Versions = slices.Clone(out[i].Versions)
	}
	return out
}
