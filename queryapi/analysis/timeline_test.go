package analysis

import (
	"slices"
	"testing"
	"time"

	"github.com/changelens/changelens/queryapi/report"
)

// t0 is a Monday.
var t0 = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func row(id, service, version, prev string, t time.Duration) Row {
	return Row{ID: id, Service: service, Environment: "production", Version: version, PreviousVersion: prev,
		Source: report.SourceInferred, RolloutStart: at(t), DeployTime: at(t)}
}

func explicit(r Row, commit time.Duration) Row {
	r.Source = report.SourceExplicit
	r.CommitSHA = "sha-" + r.ID
	r.CommitTime = at(commit)
	return r
}

func ids(items []*Item) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.Deployment.ID)
	}
	return out
}

func TestMinuteSpan(t *testing.T) {
	cases := []struct {
		in, want Span
	}{
		{Span{at(30 * time.Second), at(30*time.Minute + 30*time.Second)}, Span{at(time.Minute), at(30 * time.Minute)}},
		{Span{at(0), at(30 * time.Minute)}, Span{at(0), at(30 * time.Minute)}},
		{Span{at(10 * time.Second), at(50 * time.Second)}, Span{at(time.Minute), at(time.Minute)}},
		{Span{at(time.Minute), at(0)}, Span{at(time.Minute), at(time.Minute)}},
	}
	for _, c := range cases {
		got := c.in.MinuteSpan()
		if !got.Start.Equal(c.want.Start) || !got.End.Equal(c.want.End) {
			t.Errorf("MinuteSpan(%v) = %v, want %v", c.in, got, c.want)
		}
	}
	if !(Span{at(time.Minute), at(time.Minute)}).Empty() || (Span{at(0), at(time.Minute)}).Empty() {
		t.Error("Empty")
	}
}

func TestMergeDuplicates(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MergeWindow = 10 * time.Minute
	rows := []Row{
		// Two deploy rows of one version 10 s apart, same previous version.
		row("b", "svc", "v2", "v1", time.Hour+10*time.Second),
		row("a", "svc", "v2", "v1", time.Hour),
		// An explicit row within the window of the cluster's first row: it survives.
		explicit(row("e", "svc", "v2", "v1", time.Hour+9*time.Minute), -time.Hour),
		// Same version, but more than MergeWindow after the cluster's first row.
		row("late", "svc", "v2", "v1", time.Hour+10*time.Minute+time.Second),
		// Different previous version: not a duplicate.
		row("other", "svc", "v3", "v2", 2*time.Hour),
		row("other2", "svc", "v3", "v1", 2*time.Hour+time.Minute),
		// Failed attempts are never merged.
		{ID: "f", Service: "svc", Environment: "production", Version: "v3", PreviousVersion: "v1", Source: report.SourceExplicit,
			Failed: true, DeployTime: at(2*time.Hour + 2*time.Minute), RolloutStart: at(2*time.Hour + 2*time.Minute)},
	}
	tl := NewTimeline(rows, cfg)
	// Survivor "e" keeps its own deploy time (1h9m) and so sorts after... it is
	// still before "late" (1h10m1s).
	if got, want := ids(tl.Items()), []string{"e", "late", "other", "other2", "f"}; !slices.Equal(got, want) {
		t.Fatalf("items = %v, want %v", got, want)
	}
	e, ok := tl.Get("e")
	if !ok {
		t.Fatal("e missing")
	}
	if !slices.Equal(e.Aliases, []string{"a", "b"}) {
		t.Errorf("aliases = %v", e.Aliases)
	}
	if !e.Deployment.RolloutStart.Equal(at(time.Hour)) {
		t.Errorf("rollout start = %v, want the cluster's earliest", e.Deployment.RolloutStart)
	}
	if !e.Deployment.DeployTime.Equal(at(time.Hour + 9*time.Minute)) {
		t.Errorf("deploy time = %v", e.Deployment.DeployTime)
	}
	for _, alias := range []string{"a", "b"} {
		if it, ok := tl.Get(alias); !ok || it != e {
			t.Errorf("Get(%q) does not resolve to the survivor", alias)
		}
	}
	if _, ok := tl.Get("nope"); ok {
		t.Error("unknown ID found")
	}

	// Without an explicit row the earliest wins.
	tl = NewTimeline([]Row{row("b", "svc", "v2", "v1", time.Hour+10*time.Second), row("a", "svc", "v2", "v1", time.Hour)}, cfg)
	if got := ids(tl.Items()); !slices.Equal(got, []string{"a"}) {
		t.Errorf("items = %v, want [a]", got)
	}

	// Not adjacent: a different deployment in between keeps them apart.
	tl = NewTimeline([]Row{
		row("a", "svc", "v2", "v1", time.Hour),
		row("x", "svc", "v1", "v2", time.Hour+2*time.Minute),
		row("b", "svc", "v2", "v1", time.Hour+4*time.Minute),
	}, cfg)
	if got := ids(tl.Items()); !slices.Equal(got, []string{"a", "x", "b"}) {
		t.Errorf("items = %v, want [a x b]", got)
	}

	// Other units never merge.
	r := row("c", "svc", "v2", "v1", time.Hour)
	r.Environment = "staging"
	tl = NewTimeline([]Row{row("a", "svc", "v2", "v1", time.Hour), r}, cfg)
	if len(tl.Items()) != 2 {
		t.Errorf("items = %v", ids(tl.Items()))
	}
}

func TestRollbacksAndSequence(t *testing.T) {
	cfg := DefaultConfig()
	tl := NewTimeline([]Row{
		row("d1", "svc", "v2", "v1", 1*time.Hour),
		row("d2", "svc", "v3", "v2", 2*time.Hour),
		row("d3", "svc", "v1", "v3", 3*time.Hour), // v1 ran before d2 (d1's previous): rollback
		row("d4", "svc", "v4", "v1", 4*time.Hour),
		row("d5", "svc", "v4", "v4", 5*time.Hour), // redeploy of the same version: not a rollback
		row("d6", "svc", "v3", "v4", 6*time.Hour), // v3 ran before d5 (d2): rollback
		{ID: "f", Service: "svc", Environment: "production", Version: "v9", PreviousVersion: "v3", Failed: true,
			Source: report.SourceExplicit, DeployTime: at(6*time.Hour + 10*time.Minute)},
		// A unit whose first known deployment the processor flags: nothing
		// known before it, so the hint decides.
		{ID: "h1", Service: "other", Environment: "production", Version: "v5", PreviousVersion: "v6",
			Source: report.SourceInferred, DeployTime: at(time.Hour), RollbackHint: true},
		// v7 never seen in the timeline, but the processor remembers it.
		{ID: "h2", Service: "other", Environment: "production", Version: "v7", PreviousVersion: "v5",
			Source: report.SourceInferred, DeployTime: at(2 * time.Hour), RollbackHint: true},
	}, cfg)
	want := map[string]bool{"d1": false, "d2": false, "d3": true, "d4": false, "d5": false, "d6": true, "f": false, "h1": true, "h2": true}
	for id, rb := range want {
		it, _ := tl.Get(id)
		if it.Deployment.Rollback != rb {
			t.Errorf("%s rollback = %v, want %v", id, it.Deployment.Rollback, rb)
		}
	}
	d2, _ := tl.Get("d2")
	d3, _ := tl.Get("d3")
	if d2.Next != d3 || d3.Prev != d2 {
		t.Error("d2/d3 not neighbours")
	}
	f, _ := tl.Get("f")
	d6, _ := tl.Get("d6")
	if f.Prev != d6 || f.Next != nil || d6.Next != nil {
		t.Errorf("failed attempt neighbours wrong: prev %v next %v; d6.Next %v", f.Prev, f.Next, d6.Next)
	}
}

func TestWindows(t *testing.T) {
	cfg := DefaultConfig()
	tl := NewTimeline([]Row{
		row("a", "svc", "v2", "v1", time.Hour+30*time.Second),
		row("b", "svc", "v3", "v2", time.Hour+20*time.Minute+30*time.Second), // cuts a's after window
		row("c", "svc", "v4", "v3", 3*time.Hour),
		{ID: "f", Service: "svc", Environment: "production", Version: "v5", Failed: true,
			Source: report.SourceExplicit, DeployTime: at(3*time.Hour + 10*time.Minute)},
		row("d", "svc", "v5", "v4", 3*time.Hour+20*time.Minute),
	}, cfg)
	type w struct{ bs, be, as, ae time.Duration }
	want := map[string]w{
		// before [0:30:30, 1:00:30), after [1:02:30, 1:20:30) (cut at b)
		"a": {30*time.Minute + 30*time.Second, time.Hour + 30*time.Second, time.Hour + 2*time.Minute + 30*time.Second, time.Hour + 20*time.Minute + 30*time.Second},
		// before cut at a: [1:00:30, 1:20:30); after [1:22:30, 1:52:30)
		"b": {time.Hour + 30*time.Second, time.Hour + 20*time.Minute + 30*time.Second, time.Hour + 22*time.Minute + 30*time.Second, time.Hour + 52*time.Minute + 30*time.Second},
		// after cut at d (the failed attempt does not cut): [3:02, 3:20)
		"c": {2*time.Hour + 30*time.Minute, 3 * time.Hour, 3*time.Hour + 2*time.Minute, 3*time.Hour + 20*time.Minute},
		// the failed attempt sits between c and d: before [2:40, 3:10) cut
		// at c (3:00), after [3:12, 3:42) cut at d (3:20)
		"f": {3 * time.Hour, 3*time.Hour + 10*time.Minute, 3*time.Hour + 12*time.Minute, 3*time.Hour + 20*time.Minute},
		// before cut at c, not at the failed attempt: [3:00, 3:20)
		"d": {3 * time.Hour, 3*time.Hour + 20*time.Minute, 3*time.Hour + 22*time.Minute, 3*time.Hour + 52*time.Minute},
	}
	for id, ww := range want {
		it, _ := tl.Get(id)
		if !it.Before.Start.Equal(at(ww.bs)) || !it.Before.End.Equal(at(ww.be)) || !it.After.Start.Equal(at(ww.as)) || !it.After.End.Equal(at(ww.ae)) {
			t.Errorf("%s windows = %v / %v, want before [%v, %v) after [%v, %v)", id, it.Before, it.After, ww.bs, ww.be, ww.as, ww.ae)
		}
	}
	a, _ := tl.Get("a")
	bm, am := a.MinuteWindows()
	if !bm.Start.Equal(at(31*time.Minute)) || !bm.End.Equal(at(time.Hour)) || !am.Start.Equal(at(time.Hour+3*time.Minute)) || !am.End.Equal(at(time.Hour+20*time.Minute)) {
		t.Errorf("a minute windows = %v / %v", bm, am)
	}
	// Two deployments at the same instant: the second's before window is empty.
	tl = NewTimeline([]Row{row("x", "s", "v2", "v1", time.Hour), row("y", "s", "v3", "v2", time.Hour)}, cfg)
	y, _ := tl.Get("y")
	x, _ := tl.Get("x")
	if !y.Before.Empty() || !x.After.Empty() {
		t.Errorf("same-instant windows: x.After %v, y.Before %v", x.After, y.Before)
	}
}

func TestLeadTime(t *testing.T) {
	tl := NewTimeline([]Row{
		explicit(row("a", "s", "v2", "v1", time.Hour), -2*time.Hour),  // 3 h
		explicit(row("b", "s", "v3", "v2", 2*time.Hour), 3*time.Hour), // commit after deploy: ignored
		explicit(row("c", "s", "v4", "v3", 3*time.Hour), 3*time.Hour), // zero: ignored
		row("d", "s", "v5", "v4", 4*time.Hour),                        // unknown
	}, DefaultConfig())
	want := map[string]time.Duration{"a": 3 * time.Hour}
	for _, it := range tl.Items() {
		d := it.Deployment
		if lt, ok := want[d.ID]; ok != d.HasLeadTime || d.LeadTime != lt {
			t.Errorf("%s lead time = %v (%v), want %v (%v)", d.ID, d.LeadTime, d.HasLeadTime, lt, ok)
		}
	}
}

// Deploy spans of a unit without traffic name no previous version: the
// timeline fills it from the unit's own history (not for a redeploy).
func TestPreviousVersionFromHistory(t *testing.T) {
	rows := []Row{
		explicit(row("a", "job", "v1", "", 0), -time.Hour),
		explicit(row("b", "job", "v2", "", 2*time.Hour), time.Hour),
		explicit(row("c", "job", "v2", "", 4*time.Hour), 3*time.Hour),
		explicit(row("d", "job", "v3", "v2", 6*time.Hour), 5*time.Hour),
	}
	tl := NewTimeline(rows, DefaultConfig())
	var got []string
	for _, it := range tl.Items() {
		got = append(got, it.Deployment.PreviousVersion)
	}
	if want := []string{"", "v1", "", "v2"}; !slices.Equal(got, want) {
		t.Fatalf("previous versions %q, want %q", got, want)
	}
}

// An explicit row naming no previous version and an inferred row of the same
// version that does are one deployment: the explicit row stands for it and
// takes the inferred row's previous version.
func TestMergeExplicitWithoutPreviousVersion(t *testing.T) {
	rows := []Row{
		row("inf", "svc", "v2", "v1", time.Hour),
		explicit(row("ci", "svc", "v2", "", time.Hour+time.Minute), 0),
	}
	items := NewTimeline(rows, DefaultConfig()).Items()
	if len(items) != 1 {
		t.Fatalf("items %v, want one deployment", ids(items))
	}
	d := items[0].Deployment
	if d.ID != "ci" || d.PreviousVersion != "v1" || !slices.Equal(items[0].Aliases, []string{"inf"}) {
		t.Fatalf("survivor %s (previous %q, aliases %v), want ci with previous v1 and alias inf", d.ID, d.PreviousVersion, items[0].Aliases)
	}
}
