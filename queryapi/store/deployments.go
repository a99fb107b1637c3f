package store

import (
	"cmp"
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/changelens/changelens/internal/schema"
	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/report"
)

// unitFilter selects units; empty fields match everything.
type unitFilter struct{ Service, Environment string }

type deploymentsVariant struct {
	Parts                []string // of "range", "before", "after"; tagged 0, 1, 2 in that order
	Service, Environment bool
}

// timeline reads the deployments of the filtered units in [from, to) plus
// each unit's neighbours (one query, three parts), and analyses their
// sequence.
func (s *Store) timeline(ctx context.Context, f unitFilter, from, to time.Time) (*analysis.Timeline, error) {
	// Each part scans the seconds holding every deploy time its outer
	// filter accepts (deploy_time is the deploy time in whole seconds).
	before, after := from.Add(-s.cfg.NeighborHorizon), to.Add(s.cfg.NeighborHorizon)
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
		clickhouse.Named("limit", s.cfg.Limits.MaxDeployments+1),
		clickhouse.Named("service", f.Service),
		clickhouse.Named("environment", f.Environment),
		clickhouse.Named("status_failed", schema.StatusFailed),
		clickhouse.Named("source_inferred", schema.SourceInferred),
	}
	v := deploymentsVariant{Parts: []string{"range", "before", "after"}, Service: f.Service != "", Environment: f.Environment != ""}
	var (
		rows    []analysis.Row
		inRange int
	)
	seen := map[string]bool{}
	err := s.query(ctx, "deployments", v, func(rs driver.Rows) error {
		var (
			part                          uint8
			r                             analysis.Row
			source, status                string
			rolloutNs, deployNs, commitNs uint64
			rollback                      uint8
		)
		if err := rs.Scan(&part, &r.ID, &r.Service, &r.Environment, &r.Version, &r.PreviousVersion, &source, &status,
			&rolloutNs, &deployNs, &r.CommitSHA, &commitNs, &rollback); err != nil {
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
	if err != nil {
		return nil, err
	}
	histories, err := s.inferred(ctx, f)
	if err != nil {
		return nil, err
	}
	// A deploy span names no previous version: it is the one the unit's
	// traffic showed before the rollout began.
	for i := range rows {
		r := &rows[i]
		if h, ok := histories[unitFilter{r.Service, r.Environment}]; ok && r.PreviousVersion == "" {
			if v := h.VersionBefore(r.RolloutStart); v != r.Version {
				r.PreviousVersion = v
			}
		}
	}
	for u, h := range histories {
		for _, r := range inferredRows(u, h) {
			if r.DeployTime.Before(before) || !r.DeployTime.Before(after) || seen[r.ID] {
				continue
			}
			if !r.DeployTime.Before(from) && r.DeployTime.Before(to) {
				inRange++
			}
			seen[r.ID] = true
			rows = append(rows, r)
		}
	}
	if inRange > s.cfg.Limits.MaxDeployments {
		return nil, invalid("more than %d deployments in the range: narrow it or filter by service", s.cfg.Limits.MaxDeployments)
	}
	return analysis.NewTimeline(rows, s.cfg.Analysis), nil
}

// Deployments lists deployments (and failed deploy attempts) with deploy
// time in [Start, End), newest first, with their analysis.
func (s *Store) Deployments(ctx context.Context, q report.DeploymentQuery) ([]report.Deployment, string, error) {
	if err := s.checkRange(q.Start, q.End, s.cfg.Limits.MaxReportRange); err != nil {
		return nil, "", err
	}
	size := q.PageSize
	if size <= 0 {
		size = s.cfg.Limits.DefaultPageSize
	}
	size = min(size, s.cfg.Limits.MaxPageSize)
	var cur *cursor
	if q.PageToken != "" {
		c, err := decodeToken(q.PageToken)
		if err != nil {
			return nil, "", err
		}
		cur = &c
	}
	end := q.End
	if cur != nil && cur.at.Before(end) {
		// Nothing at or after the cursor is on this page; ties at the
		// cursor's instant are, so read up to just after it.
		end = cur.at.Add(time.Nanosecond)
	}
	if !end.After(q.Start) {
		return nil, "", nil
	}
	tl, err := s.timeline(ctx, unitFilter{q.Service, q.Environment}, q.Start, end)
	if err != nil {
		return nil, "", err
	}
	var page []*analysis.Item
	for _, it := range tl.Items() {
		d := &it.Deployment
		if d.DeployTime.Before(q.Start) || !d.DeployTime.Before(q.End) {
			continue
		}
		if cur != nil && !cur.before(d.DeployTime, d.ID) {
			continue
		}
		page = append(page, it)
	}
	slices.SortFunc(page, func(a, b *analysis.Item) int { // newest first
		return cmp.Or(b.Deployment.DeployTime.Compare(a.Deployment.DeployTime), cmp.Compare(b.Deployment.ID, a.Deployment.ID))
	})
	next := ""
	if len(page) > size {
		page = page[:size]
		last := page[size-1].Deployment
		next = encodeToken(cursor{at: last.DeployTime, id: last.ID})
	}
	impacts, err := s.analyze(ctx, tl, page, false)
	if err != nil {
		return nil, "", err
	}
	out := make([]report.Deployment, len(impacts))
	for i, im := range impacts {
		out[i] = im.Deployment
	}
	return out, next, nil
}

// maxIDLength bounds deployment IDs accepted from requests (ours are 32 hex
// characters).
const maxIDLength = 256

// Impact analyses one deployment. IDs of merged duplicates and of
// superseded inferred events resolve to the deployment that replaced them.
func (s *Store) Impact(ctx context.Context, id string) (report.Impact, error) {
	if id == "" || len(id) > maxIDLength {
		return report.Impact{}, invalid("deployment id must have 1 to %d characters", maxIDLength)
	}
	var (
		unit  unitFilter
		at    time.Time
		found bool
	)
	for hop := 0; hop < 4; hop++ { // follow superseded_by (one hop in practice)
		var (
			deployNs     uint64
			supersededBy string
		)
		found = false
		err := s.query(ctx, "deployment_by_id", nil, func(rows driver.Rows) error {
			found = true
			return rows.Scan(&unit.Service, &unit.Environment, &deployNs, &supersededBy)
		}, clickhouse.Named("id", id), clickhouse.Named("source_inferred", schema.SourceInferred))
		if err != nil {
			return report.Impact{}, err
		}
		if !found {
			// Not stored: an inferred deployment, derived from its unit's data.
			unit, at, found, err = s.inferredDeployment(ctx, id)
			if err != nil {
				return report.Impact{}, err
			}
			if !found {
				return report.Impact{}, fmt.Errorf("deployment %q: %w", id, report.ErrNotFound)
			}
			break
		}
		at = time.Unix(0, int64(deployNs)).UTC()
		if supersededBy == "" || supersededBy == id {
			break
		}
		id = supersededBy
	}
	// The range covers the merge window on both sides so that duplicates
	// of this deployment are merged as in a listing.
	w := s.cfg.Analysis.MergeWindow + time.Second
	tl, err := s.timeline(ctx, unit, at.Add(-w), at.Add(w))
	if err != nil {
		return report.Impact{}, err
	}
	it, ok := tl.Get(id)
	if !ok {
		return report.Impact{}, fmt.Errorf("deployment %q: %w", id, report.ErrNotFound)
	}
	impacts, err := s.analyze(ctx, tl, []*analysis.Item{it}, true)
	if err != nil {
		return report.Impact{}, err
	}
	return impacts[0], nil
}

// DORA computes the DORA figures of one environment (optionally one service).
func (s *Store) DORA(ctx context.Context, q report.DORAQuery) (report.DORAReport, error) {
	if err := s.checkRange(q.Start, q.End, s.cfg.Limits.MaxReportRange); err != nil {
		return report.DORAReport{}, err
	}
	if q.Environment == "" {
		return report.DORAReport{}, invalid("environment is required")
	}
	switch q.Interval {
	case report.IntervalAll, report.IntervalDay, report.IntervalWeek, report.IntervalMonth:
	default:
		return report.DORAReport{}, invalid("unknown interval %d", q.Interval)
	}
	tl, err := s.timeline(ctx, unitFilter{q.Service, q.Environment}, q.Start, q.End)
	if err != nil {
		return report.DORAReport{}, err
	}
	var items []*analysis.Item
	for _, it := range tl.Items() {
		d := &it.Deployment
		if !d.Failed && !d.DeployTime.Before(q.Start) && d.DeployTime.Before(q.End) {
			items = append(items, it)
		}
	}
	impacts, err := s.analyze(ctx, tl, items, false)
	if err != nil {
		return report.DORAReport{}, err
	}
	deps := make([]report.Deployment, len(impacts))
	for i, im := range impacts {
		deps[i] = im.Deployment
	}
	rep, err := analysis.DORA(deps, q.Start, q.End, q.Interval)
	if err != nil {
		return report.DORAReport{}, invalid("%v", err)
	}
	return rep, nil
}

// cursor is the position after which the next page starts (newest first).
type cursor struct {
	at time.Time
	id string
}

// before reports whether (at, id) comes after the cursor in newest-first order.
func (c cursor) before(at time.Time, id string) bool {
	return at.Before(c.at) || (at.Equal(c.at) && id < c.id)
}

const tokenPrefix = "v1:"

func encodeToken(c cursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte(tokenPrefix + strconv.FormatInt(c.at.UnixNano(), 10) + ":" + c.id))
}

func decodeToken(tok string) (cursor, error) {
	bad := invalid("invalid page_token")
	if len(tok) > 4*maxIDLength {
		return cursor{}, bad
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return cursor{}, bad
	}
	rest, ok := strings.CutPrefix(string(b), tokenPrefix)
	if !ok {
		return cursor{}, bad
	}
	ns, id, ok := strings.Cut(rest, ":")
	if !ok || id == "" {
		return cursor{}, bad
	}
	n, err := strconv.ParseInt(ns, 10, 64)
	if err != nil || n < 0 {
		return cursor{}, bad
	}
	return cursor{at: time.Unix(0, n).UTC(), id: id}, nil
}
