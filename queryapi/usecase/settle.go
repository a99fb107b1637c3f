package usecase

import (
	"context"
	"fmt"
	"time"

	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/store"
)

// Settled is a deployment whose after window has closed and settled
// (CacheSettle), judged from its windows as they are now.
type Settled struct {
	Impact        report.Impact
	Before, After analysis.Span // the minute windows the statistics cover
	Stats         store.WindowPair
	Judgement     analysis.Judgement
	item          *analysis.Item // for Evidence
}

// Evidence computes what the impact of v shows beside its verdict (the
// canary comparison, the graph around the unit) as an impact request
// would: what changelens-worker stores so that the API reads it instead.
func (s *Service) Evidence(ctx context.Context, v Settled) (store.Evidence, error) {
	if v.item == nil {
		return store.Evidence{}, fmt.Errorf("usecase: %s: not a deployment Judge settled", v.Impact.Deployment.ID)
	}
	return s.evidence(ctx, v.item, v.Impact)
}

// Fits reports whether stored evidence e is still v's: computed for its
// windows, versions and rollout start as they are now.
func (v Settled) Fits(e store.Evidence) bool {
	return v.item != nil && evidenceFits(e, v.item, v.Impact)
}

// Judged is every deployment with deploy time in [from, to), with what can
// be said about it now: the settled ones (their stored verdict when it
// counted the same events in the same windows, else judged again from
// their windows — what changelens-worker stores), and the failed deploy
// attempts and those still open as their impact so far.
type Judged struct {
	Settled []Settled
	Open    []report.Impact // after window open or not settled yet
	Failed  []report.Deployment
}

// Judge judges every deployment with deploy time in [from, to) (all units).
// Its cost does not grow with the operations of the settled ones: a cheap
// read of every window's counts (store.WindowTotals) comes first, and a
// settled deployment whose stored verdict counted the same events in the
// same windows keeps it; only the others are judged from their windows.
func (s *Service) Judge(ctx context.Context, from, to time.Time) (Judged, error) {
	var out Judged
	tl, err := s.timeline(ctx, unitFilter{}, from, to)
	if err != nil {
		return out, err
	}
	now := s.cfg.Now()
	var items []*analysis.Item
	for _, it := range tl.Items() {
		d := &it.Deployment
		switch {
		case d.DeployTime.Before(from) || !d.DeployTime.Before(to):
		case d.Failed:
			out.Failed = append(out.Failed, tl.Impact(it, analysis.Judgement{}, analysis.WindowStats{}, analysis.WindowStats{}).Deployment)
		default:
			items = append(items, it)
		}
	}
	all := make([]int, len(items))
	for i := range all {
		all[i] = i
	}
	stored, err := s.storedFor(ctx, items, all, now)
	if err != nil {
		return out, err
	}
	res := make([]cached, len(items))
	var judge, known []int
	for i, it := range items {
		if v, ok := stored[it.Deployment.ID]; ok && sameWindows(v, it) {
			known = append(known, i)
		} else {
			judge = append(judge, i)
		}
	}
	// The fingerprint of the windows of the deployments with a stored
	// verdict: unchanged data keep it.
	for len(known) > 0 {
		n := min(len(known), s.cfg.WindowBatch)
		batch := known[:n]
		known = known[n:]
		totals, err := s.st.WindowTotals(ctx, items, batch)
		if err != nil {
			return out, err
		}
		for j, i := range batch {
			v := stored[items[i].Deployment.ID]
			if v.Stats[0].SameData(totals[j][0]) && v.Stats[1].SameData(totals[j][1]) {
				res[i] = cached{stats: v.Stats, j: v.Judgement}
			} else {
				judge = append(judge, i)
			}
		}
	}
	if err := s.judgeWindows(ctx, tl, items, judge, res, now); err != nil {
		return out, err
	}
	for i, it := range items {
		c := res[i]
		im := tl.Impact(it, c.j, c.stats[0], c.stats[1])
		if !s.settled(it, now) || c.j.Verdict == report.VerdictPending {
			out.Open = append(out.Open, im)
			continue
		}
		b, a := it.MinuteWindows()
		out.Settled = append(out.Settled, Settled{Impact: im, Before: b, After: a, Stats: c.stats, Judgement: c.j, item: it})
	}
	return out, nil
}

// ConfigHash is the hash of the service's analysis settings (see the
// package function).
func (s *Service) ConfigHash() string { return s.configHash }
