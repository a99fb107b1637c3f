package usecase

import (
	"cmp"
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/changelens/changelens/internal/schema"

	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/inference"
	"github.com/changelens/changelens/queryapi/limits"
	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/store"
)

// timeline reads the deployments of the filtered units in [from, to) plus
// each unit's neighbours (one query, three parts) and, at the same time,
// their version history (the inferred deployments), and analyses their
// sequence.
func (s *Service) timeline(ctx context.Context, f unitFilter, from, to time.Time) (*analysis.Timeline, error) {
	before, after := from.Add(-s.cfg.NeighborHorizon), to.Add(s.cfg.NeighborHorizon)
	var (
		histories map[unitFilter]inference.History
		incidents []report.Incident
		histErr   error
		incErr    error
		done      = make(chan struct{}, 2)
	)
	go func() { // independent queries: their latencies overlap
		defer func() { done <- struct{}{} }()
		histories, histErr = s.inferred(ctx, f)
	}()
	go func() {
		defer func() { done <- struct{}{} }()
		// Over the neighbour horizon too: an incident after the range may
		// follow a deployment in it, and one before it the predecessor
		// whose failure makes a deployment in it a fix-forward.
		incidents, incErr = s.st.IncidentRows(ctx, f, before, after, s.cfg.Limits.MaxIncidents)
	}()
	rows, inRange, err := s.st.DeploymentRows(ctx, f, from, to, before, after, s.cfg.Limits.MaxDeployments)
	<-done
	<-done
	if err != nil {
		return nil, err
	}
	if histErr != nil {
		return nil, histErr
	}
	if incErr != nil {
		return nil, incErr
	}
	seen := make(map[string]bool, len(rows))
	for _, r := range rows {
		seen[r.ID] = true
	}
	// A deploy span names no previous version: it is the one the unit's
	// traffic showed before the rollout began.
	for i := range rows {
		r := &rows[i]
		if h, ok := histories[unitFilter{Service: r.Service, Environment: r.Environment}]; ok && r.PreviousVersion == "" {
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
	tl := analysis.NewTimeline(rows, s.cfg.Analysis)
	tl.LinkIncidents(incidents)
	return tl, nil
}

// teamFilter is the unit filter of a query on service (optional) or
// services (a team's, optional), and whether a service passes: a team of
// one service reads only that service; a larger one reads the environment
// and keeps its services, so that predecessors, neighbours and incidents
// are those the same service would see alone.
func teamFilter(service string, services []string, environment string) (unitFilter, func(string) bool) {
	f := unitFilter{Service: service, Environment: environment}
	if service == "" && len(services) == 1 {
		f.Service = services[0]
	}
	keep := func(svc string) bool {
		return (service == "" || svc == service) && (len(services) == 0 || slices.Contains(services, svc))
	}
	return f, keep
}

// Incidents lists the incidents opened in [Start, End), oldest first, each
// linked to the deployment it followed (analysis.LinkIncidents).
func (s *Service) Incidents(ctx context.Context, q report.IncidentQuery) ([]report.Incident, error) {
	f, keep := teamFilter(q.Service, q.Services, q.Environment)
	tl, err := s.timeline(ctx, f, q.Start, q.End)
	if err != nil {
		return nil, err
	}
	// The timeline read and linked those of its neighbour horizon, which
	// holds the range.
	var out []report.Incident
	for _, in := range tl.Incidents() {
		if !in.Opened.Before(q.Start) && in.Opened.Before(q.End) && keep(in.Service) {
			out = append(out, in)
		}
	}
	return out, nil
}

// Deployments lists deployments (and failed deploy attempts) with deploy
// time in [Start, End), newest first, with their analysis.
func (s *Service) Deployments(ctx context.Context, q report.DeploymentQuery) ([]report.Deployment, string, error) {
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
	f, keep := teamFilter(q.Service, q.Services, q.Environment)
	tl, err := s.timeline(ctx, f, q.Start, end)
	if err != nil {
		return nil, "", err
	}
	var page []*analysis.Item
	for _, it := range tl.Items() {
		d := &it.Deployment
		if d.DeployTime.Before(q.Start) || !d.DeployTime.Before(q.End) || !keep(d.Service) {
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
	if q.CauseKind != 0 || q.CausedBy != "" {
		return s.deploymentsByCause(ctx, tl, page, q, size)
	}
	next := ""
	if len(page) > size {
		page = page[:size]
		last := page[size-1].Deployment
		next = encodeToken(cursor{at: last.DeployTime, id: last.ID})
	}
	out, err := s.reworked(ctx, tl, page)
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// reworked analyses items and classifies their rework (analysis.MarkRework):
// whether a deployment is a fix-forward depends on its predecessor's
// verdict, so each item's predecessor is judged too, and only items are
// returned, in their order.
func (s *Service) reworked(ctx context.Context, tl *analysis.Timeline, items []*analysis.Item) ([]report.Deployment, error) {
	all := slices.Clone(items)
	in := make(map[*analysis.Item]bool, len(items))
	for _, it := range items {
		in[it] = true
	}
	for _, it := range items {
		if p := it.Prev; p != nil && !in[p] && !it.Deployment.Failed {
			in[p] = true
			all = append(all, p)
		}
	}
	impacts, err := s.analyze(ctx, tl, all)
	if err != nil {
		return nil, err
	}
	deps := make([]report.Deployment, len(impacts))
	for i, im := range impacts {
		deps[i] = im.Deployment
	}
	analysis.MarkRework(deps, s.cfg.Analysis.FixForwardWindow)
	return deps[:len(items)], nil
}

// deploymentsByCause pages through items (newest first) keeping the
// deployments whose verdict names the cause q asks for: the cause is only
// known once judged, so they are judged a page's worth at a time (stored
// verdicts make that a read) until the page is full.
func (s *Service) deploymentsByCause(ctx context.Context, tl *analysis.Timeline, items []*analysis.Item, q report.DeploymentQuery, size int) ([]report.Deployment, string, error) {
	var out []report.Deployment
	for start := 0; start < len(items); start += size {
		chunk := items[start:min(start+size, len(items))]
		impacts, err := s.analyze(ctx, tl, chunk)
		if err != nil {
			return nil, "", err
		}
		for _, im := range impacts {
			if !causeMatches(im.Deployment, q) {
				continue
			}
			if len(out) == size {
				last := out[size-1]
				return out, encodeToken(cursor{at: last.DeployTime, id: last.ID}), nil
			}
			out = append(out, im.Deployment)
		}
	}
	return out, "", nil
}

// causeMatches reports whether d's verdict names the cause q filters by.
func causeMatches(d report.Deployment, q report.DeploymentQuery) bool {
	var kind report.CauseKind
	var by string
	switch {
	case d.Cause != nil:
		kind = d.Cause.Kind
		by = d.Cause.DeploymentID
		if kind == report.CauseFeatureFlag {
			by = d.Cause.Flag
		}
	case d.Verdict == report.VerdictDegraded:
		kind, by = report.CauseOwnDeployment, d.ID
	default:
		return false
	}
	return (q.CauseKind == 0 || q.CauseKind == kind) && (q.CausedBy == "" || q.CausedBy == by)
}

// Impact analyses one deployment. IDs of merged duplicates and of
// superseded inferred events resolve to the deployment that replaced them.
func (s *Service) Impact(ctx context.Context, id string) (report.Impact, error) {
	var (
		unit  unitFilter
		at    time.Time
		found bool
	)
	for hop := 0; hop < 4; hop++ { // follow superseded_by (one hop in practice)
		var (
			supersededBy string
			err          error
		)
		unit, at, supersededBy, found, err = s.st.DeploymentByID(ctx, id)
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
	impacts, err := s.analyze(ctx, tl, []*analysis.Item{it})
	if err != nil {
		return report.Impact{}, err
	}
	im := impacts[0]
	e, ok, err := s.storedEvidence(ctx, it, im)
	if err != nil {
		return report.Impact{}, err
	}
	if !ok {
		if e, err = s.evidence(ctx, it, im); err != nil {
			return report.Impact{}, err
		}
	}
	im.Canary = e.Canary
	if e.WithNeighbours {
		im.Attribution.Neighbours = e.Neighbours
	}
	return im, nil
}

// evidence computes what im's impact adds to its judgement: the canary
// comparison and, when the judgement has no attribution (nothing
// regressed), the graph around the unit and its neighbours' deployments,
// still worth showing.
func (s *Service) evidence(ctx context.Context, it *analysis.Item, im report.Impact) (store.Evidence, error) {
	b, a := it.MinuteWindows()
	d := it.Deployment
	e := store.Evidence{Before: b, After: a, Version: d.Version, PreviousVersion: d.PreviousVersion, RolloutStart: d.RolloutStart}
	// The neighbours and the canary comparison read independently: their
	// latencies overlap (the impact page waits for the slower one only).
	var canaryErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.Canary, canaryErr = s.canary(ctx, it)
	}()
	if wantsNeighbours(im) {
		ev, own, err := s.attributionFor(ctx, it, nil)
		if err != nil {
			<-done
			return store.Evidence{}, err
		}
		e.WithNeighbours, e.Neighbours = true, analysis.Neighbours(ev, own, s.cfg.Analysis)
	}
	<-done
	return e, canaryErr
}

// storedEvidence is the evidence changelens-worker stored for it when it
// is settled and the evidence fits it (evidenceFits).
func (s *Service) storedEvidence(ctx context.Context, it *analysis.Item, im report.Impact) (store.Evidence, bool, error) {
	if s.cfg.IgnoreStoredVerdicts || !s.settled(it, s.cfg.Now()) {
		return store.Evidence{}, false, nil
	}
	d := it.Deployment
	stored, err := s.st.StoredEvidence(ctx, s.configHash, []string{d.ID})
	if err != nil {
		return store.Evidence{}, false, err
	}
	e, ok := stored[d.ID]
	if !ok {
		return store.Evidence{}, false, nil
	}
	return e, evidenceFits(e, it, im), nil
}

// evidenceFits reports whether e was computed for it's windows, versions
// and rollout start as they are now, and for a judgement that, like im's,
// did or did not carry its neighbours.
func evidenceFits(e store.Evidence, it *analysis.Item, im report.Impact) bool {
	b, a := it.MinuteWindows()
	d := it.Deployment
	return e.Before.Start.Equal(b.Start) && e.Before.End.Equal(b.End) && e.After.Start.Equal(a.Start) && e.After.End.Equal(a.End) &&
		e.Version == d.Version && e.PreviousVersion == d.PreviousVersion && e.RolloutStart.Equal(d.RolloutStart) &&
		e.WithNeighbours == wantsNeighbours(im)
}

// wantsNeighbours says whether im's evidence carries the graph around the
// unit: its judgement attributed nothing (nothing regressed) and the
// deployment did not fail.
func wantsNeighbours(im report.Impact) bool {
	return im.Attribution.Neighbours == nil && !im.Deployment.Failed
}

// canary compares a deployment's version with the previous one in the
// minutes both served, from the rollout start to the end of the after
// window (or now): the same-window view of a canary or a rolling update.
// nil when they never served in the same minute.
func (s *Service) canary(ctx context.Context, it *analysis.Item) (*report.Comparison, error) {
	d := it.Deployment
	if d.Failed || d.PreviousVersion == "" || d.Version == "" || d.PreviousVersion == d.Version {
		return nil, nil
	}
	start, end := d.RolloutStart.Truncate(time.Minute), it.After.End
	if now := s.cfg.Now(); now.Before(end) {
		end = now
	}
	if !end.After(start) || end.Sub(start) > s.cfg.Limits.CompareRange() {
		return nil, nil
	}
	c, err := s.Compare(ctx, report.CompareQuery{Service: d.Service, Environment: d.Environment, Start: start, End: end,
		Dimension: schema.DimensionVersion, Control: d.PreviousVersion, Treatment: d.Version})
	if err != nil || c.OverlapMinutes == 0 {
		return nil, err
	}
	return &c, nil
}

// DORA computes the DORA figures of one environment (optionally one service
// or a team's services).
func (s *Service) DORA(ctx context.Context, q report.DORAQuery) (report.DORAReport, error) {
	deps, err := s.doraDeployments(ctx, q, false)
	if err != nil {
		return report.DORAReport{}, err
	}
	rep, err := analysis.DORA(deps, q.Start, q.End, q.Interval, q.Edition)
	if err != nil {
		return report.DORAReport{}, invalid("%v", err)
	}
	return rep, nil
}

// doraDeployments are the analysed deployments a DORA report of q counts:
// those of q's units with deploy time in [Start, End), failed attempts
// excluded, rework classified; with their explanations if explain.
func (s *Service) doraDeployments(ctx context.Context, q report.DORAQuery, explain bool) ([]report.Deployment, error) {
	f, keep := teamFilter(q.Service, q.Services, q.Environment)
	tl, err := s.timeline(ctx, f, q.Start, q.End)
	if err != nil {
		return nil, err
	}
	if !explain {
		tl.SkipExplanations()
	}
	var items []*analysis.Item
	for _, it := range tl.Items() {
		d := &it.Deployment
		if !d.Failed && !d.DeployTime.Before(q.Start) && d.DeployTime.Before(q.End) && keep(d.Service) {
			items = append(items, it)
		}
	}
	return s.reworked(ctx, tl, items)
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
	if len(tok) > limits.MaxPageTokenLen {
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
