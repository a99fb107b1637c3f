package usecase

import (
	"context"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/store"
	"github.com/changelens/changelens/testkit/fakestore"
)

// fakeFromTruth is an in-memory store holding what the scenario sent: every
// generated request as per-minute traffic, and the CI rows as ClickHouse
// holds them (their IDs are the exporter's).
func fakeFromTruth(t *testing.T, f *fixture, ch *store.Store) *fakestore.Store {
	t.Helper()
	st := fakestore.New()
	type key struct {
		service, env, version, op string
		minute                    time.Time
	}
	acc := map[key]*fakestore.Minute{}
	var order []key
	for _, s := range f.truth {
		k := key{s.service, s.env, s.version, s.op, s.start.Truncate(time.Minute)}
		m := acc[k]
		if m == nil {
			m = &fakestore.Minute{Service: s.service, Environment: s.env, Version: s.version, Operation: s.op, Minute: k.minute}
			acc[k] = m
			order = append(order, k)
		}
		m.ObserveSpan(s.start, s.dur, s.err, s.weight)
	}
	for _, k := range order {
		st.AddTraffic(*acc[k])
	}
	rows, _, err := ch.DeploymentRows(context.Background(), store.UnitFilter{}, f.start.Add(-24*h), f.start.Add(48*h), f.start.Add(-24*h), f.start.Add(48*h), 100000)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		st.AddDeployment(r)
	}
	return st
}

// TestFakeAgreesWithClickHouse answers the scenario's questions twice —
// from ClickHouse, and from the in-memory store given the requests the
// scenario sent — and compares: the in-memory tests stand on the fake
// answering as the store does (versions from traffic, windows, histograms,
// the before/after evidence, units, latency).
func TestFakeAgreesWithClickHouse(t *testing.T) {
	f := loadFixture(t)
	ch := f.open(t, func(c *Config) { c.CacheSize = -1 })
	mem := newService(t, fakeFromTruth(t, f, ch.clickhouse()), &f.now, noCache)
	ctx := context.Background()
	day := report.DeploymentQuery{Start: f.start, End: f.start.Add(24 * h)}

	want, got := allDeployments(t, ch, day), allDeployments(t, mem, day)
	if len(got) != len(want) {
		t.Fatalf("in memory %d deployments, ClickHouse %d", len(got), len(want))
	}
	t.Logf("%d deployments compared", len(want))
	near := func(a, b, rel float64) bool { return math.Abs(a-b) <= rel*math.Max(math.Abs(a), math.Abs(b)) }
	for i, w := range want {
		g := got[i]
		if g.ID != w.ID || g.Version != w.Version || g.PreviousVersion != w.PreviousVersion || !g.DeployTime.Equal(w.DeployTime) ||
			g.Verdict != w.Verdict || g.ChangeFailure != w.ChangeFailure || !reflect.DeepEqual(g.FailureReasons, w.FailureReasons) || g.Rollback != w.Rollback {
			t.Errorf("deployment %d: in memory %s %s/%s %s→%s at %s %v %v, ClickHouse %s %s/%s %s→%s at %s %v %v", i,
				g.ID, g.Service, g.Environment, g.PreviousVersion, g.Version, g.DeployTime, g.Verdict, g.FailureReasons,
				w.ID, w.Service, w.Environment, w.PreviousVersion, w.Version, w.DeployTime, w.Verdict, w.FailureReasons)
			continue
		}
		if w.Failed {
			continue
		}
		wi, err := ch.Impact(ctx, w.ID)
		if err != nil {
			t.Fatal(err)
		}
		gi, err := mem.Impact(ctx, w.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, side := range []struct {
			name string
			g, w report.Window
		}{{"before", gi.Before, wi.Before}, {"after", gi.After, wi.After}} {
			// Counts are exact; a percentile may sit one histogram bucket
			// (4 %) apart where a duration lies on a bucket boundary.
			if !side.g.Start.Equal(side.w.Start) || !side.g.End.Equal(side.w.End) || !near(side.g.Requests, side.w.Requests, 1e-9) ||
				!near(side.g.Errors, side.w.Errors, 1e-9) || !near(side.g.P95Ms, side.w.P95Ms, 0.041) {
				t.Errorf("%s/%s %s %s window: in memory %+v, ClickHouse %+v", w.Service, w.Version, w.ID, side.name, side.g, side.w)
			}
		}
		if (gi.Canary == nil) != (wi.Canary == nil) || (gi.Canary != nil && (gi.Canary.OverlapMinutes != wi.Canary.OverlapMinutes || gi.Canary.Verdict != wi.Canary.Verdict)) {
			t.Errorf("%s canary: in memory %+v, ClickHouse %+v", w.ID, gi.Canary, wi.Canary)
		}
	}

	wu, err := ch.Units(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	gu, err := mem.Units(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gu, wu) {
		t.Errorf("units: in memory %+v\nClickHouse %+v", gu, wu)
	}

	for _, g := range []report.GroupBy{report.GroupByNone, report.GroupByVersion, report.GroupByOperation} {
		q := report.LatencyQuery{Service: "checkout", Environment: prod, Start: f.start, End: f.start.Add(6 * h), Step: 10 * m, GroupBy: g}
		wp, err := ch.Latency(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		gp, err := mem.Latency(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(gp) != len(wp) {
			t.Fatalf("group %v: in memory %d points, ClickHouse %d", g, len(gp), len(wp))
		}
		for i := range wp {
			if !gp[i].Time.Equal(wp[i].Time) || gp[i].Group != wp[i].Group || gp[i].Count != wp[i].Count || gp[i].ErrorCount != wp[i].ErrorCount ||
				!near(gp[i].P50Ms, wp[i].P50Ms, 0.041) || !near(gp[i].P99Ms, wp[i].P99Ms, 0.041) {
				t.Errorf("group %v point %d: in memory %+v, ClickHouse %+v", g, i, gp[i], wp[i])
			}
		}
	}
}
