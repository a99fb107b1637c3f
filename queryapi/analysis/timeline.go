package analysis

import (
	"cmp"
	"slices"
	"time"

	"github.com/changelens/changelens/queryapi/report"
)

// Row is one deployment as read from storage: one row per ID after the
// reader's argMax(…, ver) dedupe, rows marked superseded already dropped.
type Row struct {
	ID              string
	Service         string
	Environment     string
	Version         string
	PreviousVersion string
	Source          report.DeploySource
	Failed          bool // a failed deploy attempt
	RolloutStart    time.Time
	DeployTime      time.Time
	CommitSHA       string
	CommitTime      time.Time // zero when unknown
	// RollbackHint says the unit served this version before (inference over
	// the unit's whole stored history; rollback_candidate of stored rows).
	RollbackHint bool
	// ReworkMark is what the source said of it: "hotfix", "revert" or "".
	ReworkMark string
}

// UnitKey names a deployed unit (report.Unit is one seen in the data, with
// its versions).
type UnitKey struct{ Service, Environment string }

// Span is the half-open time interval [Start, End). It is empty when
// End ≤ Start.
type Span struct{ Start, End time.Time }

// Empty reports whether the span contains no time.
func (s Span) Empty() bool { return !s.End.After(s.Start) }

// Contains reports whether t is in [Start, End).
func (s Span) Contains(t time.Time) bool { return !t.Before(s.Start) && t.Before(s.End) }

// MinuteSpan returns the whole minutes inside s: [Start rounded up to a
// minute, End rounded down to a minute). The result may be empty.
func (s Span) MinuteSpan() Span {
	start := s.Start.Truncate(time.Minute)
	if start.Before(s.Start) {
		start = start.Add(time.Minute)
	}
	end := s.End.Truncate(time.Minute)
	if end.Before(start) {
		end = start
	}
	return Span{Start: start.UTC(), End: end.UTC()}
}

// Item is one deployment (or failed deploy attempt) of a Timeline with its
// place in the unit's sequence.
type Item struct {
	// Deployment has the identity fields, Rollback and the lead time set;
	// the verdict-dependent fields are filled by Timeline.Impact.
	Deployment report.Deployment
	// Prev and Next are the unit's neighbouring successful deployments
	// (for a failed attempt: the last one at or before it and the first one
	// after it); nil when none is known.
	Prev, Next *Item
	// Before and After are the analysis windows, cut at Prev and Next.
	Before, After Span
	// Aliases are the IDs of duplicate rows merged into this one.
	Aliases []string
	// Incidents are those linked to this deployment (LinkIncidents): each
	// makes it a change failure.
	Incidents []report.Incident

	hint bool
}

// Unit returns the item's unit.
func (it *Item) Unit() UnitKey {
	return UnitKey{it.Deployment.Service, it.Deployment.Environment}
}

// Timeline is the analysed deployment history of a set of units.
type Timeline struct {
	cfg   Config
	items []*Item // by unit, then deploy time, then ID
	byID  map[string]*Item
	// incidents are the last LinkIncidents linked.
	incidents []report.Incident
	alias     map[string]string
	// noExplanations: Impact leaves Explanation empty (SkipExplanations).
	noExplanations bool
}

// SkipExplanations makes Impact leave every explanation empty: for figures
// that show none (DORA counts a year of deployments per request, and their
// sentences cost more than the rest of their impact).
func (t *Timeline) SkipExplanations() { t.noExplanations = true }

// NewTimeline merges duplicates, orders each unit's deployments, marks
// rollbacks and computes the analysis windows (see the package
// documentation). rows may come in any order; IDs must be unique.
func NewTimeline(rows []Row, cfg Config) *Timeline {
	t := &Timeline{cfg: cfg, byID: make(map[string]*Item, len(rows)), alias: map[string]string{}}
	sorted := slices.Clone(rows)
	slices.SortFunc(sorted, compareRows)

	for start := 0; start < len(sorted); {
		end := start + 1
		for end < len(sorted) && sorted[end].Service == sorted[start].Service && sorted[end].Environment == sorted[start].Environment {
			end++
		}
		t.addUnit(sorted[start:end])
		start = end
	}
	for _, it := range t.items {
		t.byID[it.Deployment.ID] = it
		for _, a := range it.Aliases {
			t.alias[a] = it.Deployment.ID
		}
	}
	return t
}

func compareRows(a, b Row) int {
	return cmp.Or(
		cmp.Compare(a.Service, b.Service),
		cmp.Compare(a.Environment, b.Environment),
		a.DeployTime.Compare(b.DeployTime),
		cmp.Compare(a.ID, b.ID),
	)
}

// cluster is a group of duplicate rows being merged.
type cluster struct {
	rows []Row
}

// survivor picks the row that stands for the cluster: the earliest explicit
// row, else the earliest row (rows are in time order).
func (c *cluster) survivor() (Row, []string) {
	best := 0
	for i, r := range c.rows {
		if r.Source == report.SourceExplicit {
			best = i
			break
		}
	}
	s := c.rows[best]
	var aliases []string
	for i, r := range c.rows {
		if i == best {
			continue
		}
		aliases = append(aliases, r.ID)
		if r.RolloutStart.Before(s.RolloutStart) {
			s.RolloutStart = r.RolloutStart
		}
		s.RollbackHint = s.RollbackHint || r.RollbackHint
		if s.ReworkMark == "" {
			s.ReworkMark = r.ReworkMark
		}
		if s.PreviousVersion == "" {
			s.PreviousVersion = r.PreviousVersion
		}
		if s.CommitTime.IsZero() && !r.CommitTime.IsZero() {
			s.CommitSHA, s.CommitTime = r.CommitSHA, r.CommitTime
		}
	}
	return s, aliases
}

// addUnit builds the items of one unit from its rows (sorted by time).
func (t *Timeline) addUnit(rows []Row) {
	var (
		ok     []*Item // successful deployments, after merging
		failed []*Item
		cur    *cluster
	)
	flush := func() {
		if cur == nil {
			return
		}
		s, aliases := cur.survivor()
		it := newItem(s)
		it.Aliases = aliases
		ok = append(ok, it)
		cur = nil
	}
	for _, r := range rows {
		if r.Failed {
			failed = append(failed, newItem(r))
			continue
		}
		if cur != nil {
			first := cur.rows[0]
			samePrev := r.PreviousVersion == first.PreviousVersion || r.PreviousVersion == "" || first.PreviousVersion == ""
			if r.Version == first.Version && samePrev &&
				r.DeployTime.Sub(first.DeployTime) <= t.cfg.MergeWindow {
				cur.rows = append(cur.rows, r)
				continue
			}
		}
		flush()
		cur = &cluster{rows: []Row{r}}
	}
	flush()
	// The survivor of a cluster may carry a later deploy time than the
	// cluster's first row: order again.
	slices.SortStableFunc(ok, compareItems)

	// Sequence, rollbacks and windows of the successful deployments.
	ran := map[string]bool{} // versions the unit ran before the previous deployment
	for i, it := range ok {
		d := &it.Deployment
		if i > 0 {
			p := ok[i-1]
			it.Prev, p.Next = p, it
			pd := &p.Deployment
			// A deploy span of a unit without traffic names no previous
			// version; the unit's history does.
			if d.PreviousVersion == "" && pd.Version != d.Version {
				d.PreviousVersion = pd.Version
			}
			ranBeforeP := ran[d.Version] || (pd.PreviousVersion != "" && pd.PreviousVersion == d.Version)
			d.Rollback = d.Version != "" && d.Version != pd.Version && (ranBeforeP || it.hint)
			// Everything up to and including P ran before the next one's P.
			if pd.PreviousVersion != "" {
				ran[pd.PreviousVersion] = true
			}
			ran[pd.Version] = true
		} else {
			// Nothing known before: trust the hint.
			d.Rollback = d.Version != "" && d.Version != d.PreviousVersion && it.hint
		}
	}
	for _, it := range ok {
		t.setWindows(it)
	}
	// Failed attempts sit between the successful deployments around them.
	for _, f := range failed {
		i, _ := slices.BinarySearchFunc(ok, f.Deployment.DeployTime, func(it *Item, at time.Time) int {
			if it.Deployment.DeployTime.After(at) {
				return 1
			}
			return -1
		})
		if i > 0 {
			f.Prev = ok[i-1]
		}
		if i < len(ok) {
			f.Next = ok[i]
		}
		t.setWindows(f)
	}
	all := append(ok, failed...)
	slices.SortStableFunc(all, compareItems)
	t.items = append(t.items, all...)
}

func compareItems(a, b *Item) int {
	return cmp.Or(a.Deployment.DeployTime.Compare(b.Deployment.DeployTime), cmp.Compare(a.Deployment.ID, b.Deployment.ID))
}

func newItem(r Row) *Item {
	d := report.Deployment{
		ID:              r.ID,
		Service:         r.Service,
		Environment:     r.Environment,
		Version:         r.Version,
		PreviousVersion: r.PreviousVersion,
		DeployTime:      r.DeployTime.UTC(),
		RolloutStart:    r.RolloutStart.UTC(),
		Source:          r.Source,
		Failed:          r.Failed,
		CommitSHA:       r.CommitSHA,
		ReworkMark:      r.ReworkMark,
	}
	if !r.CommitTime.IsZero() {
		d.CommitTime = r.CommitTime.UTC()
		if lt := d.DeployTime.Sub(d.CommitTime); lt > 0 {
			d.LeadTime, d.HasLeadTime = lt, true
		}
	}
	return &Item{Deployment: d, hint: r.RollbackHint}
}

func (t *Timeline) setWindows(it *Item) {
	at := it.Deployment.DeployTime
	it.Before = Span{Start: at.Add(-t.cfg.BeforeWindow), End: at}
	if it.Prev != nil && it.Prev.Deployment.DeployTime.After(it.Before.Start) {
		it.Before.Start = it.Prev.Deployment.DeployTime
	}
	it.After = Span{Start: at.Add(t.cfg.AfterGap), End: at.Add(t.cfg.AfterGap + t.cfg.AfterWindow)}
	if it.Next != nil && it.Next.Deployment.DeployTime.Before(it.After.End) {
		it.After.End = it.Next.Deployment.DeployTime
	}
	for _, s := range []*Span{&it.Before, &it.After} {
		if s.End.Before(s.Start) {
			s.End = s.Start
		}
	}
}

// Items returns every item: per unit (ordered by service, environment), in
// deploy-time order. The slice is the timeline's own.
func (t *Timeline) Items() []*Item { return t.items }

// Get returns the item with the given ID, resolving IDs of merged duplicates
// to their survivor.
func (t *Timeline) Get(id string) (*Item, bool) {
	if it, ok := t.byID[id]; ok {
		return it, true
	}
	if s, ok := t.alias[id]; ok {
		return t.byID[s], true
	}
	return nil, false
}

// MinuteWindows returns the whole-minute before and after windows whose
// rollup minutes the statistics must cover.
func (it *Item) MinuteWindows() (before, after Span) {
	return it.Before.MinuteSpan(), it.After.MinuteSpan()
}
