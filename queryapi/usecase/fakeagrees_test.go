package usecase

import (
	"context"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/changelens/changelens/internal/schema"
	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/store"
	"github.com/changelens/changelens/testkit/fakestore"
)

// fakeFromSpans is an in-memory store holding the requests a scenario sent,
// as per-minute traffic (with their flag variant and api.protocol cohorts).
func fakeFromSpans(sc *scenario, spans []genSpan) *fakestore.Store {
	st := fakestore.New()
	type key struct {
		service, env, version, op, variant, protocol string
		minute                                       time.Time
	}
	acc := map[key]*fakestore.Minute{}
	var order []key
	for _, s := range spans {
		k := key{s.service, s.env, s.version, s.op, s.variant, s.protocol, s.start.Truncate(time.Minute)}
		m := acc[k]
		if m == nil {
			m = &fakestore.Minute{Service: s.service, Environment: s.env, Version: s.version, Operation: s.op, Minute: k.minute}
			if s.variant != "" || s.protocol != "" {
				m.Cohorts = map[string]string{}
			}
			if s.variant != "" {
				m.Cohorts[schema.DimensionFeatureFlag+flagKeyOf(sc, s.service)] = s.variant
			}
			if s.protocol != "" {
				m.Cohorts[schema.DimensionAttribute+"api.protocol"] = s.protocol
			}
			acc[k] = m
			order = append(order, k)
		}
		m.ObserveSpan(s.start, s.dur, s.err, s.weight)
	}
	for _, k := range order {
		st.AddTraffic(*acc[k])
	}
	return st
}

// fakeFromTruth is fakeFromSpans of the fixture's requests, with the CI
// rows as ClickHouse holds them (their IDs are the exporter's).
func fakeFromTruth(t *testing.T, f *fixture, ch *store.Store) *fakestore.Store {
	t.Helper()
	st := fakeFromSpans(testScenario(f.start), f.truth)
	rows, _, err := ch.DeploymentRows(context.Background(), store.UnitFilter{}, f.start.Add(-24*h), f.start.Add(48*h), f.start.Add(-24*h), f.start.Add(48*h), 100000)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		st.AddDeployment(r)
	}
	return st
}

// checkFakeCompares compares the same comparisons answered from ClickHouse
// (ch) and from memory (mem): overlap, requests, verdicts and the latency
// and error metrics (body sizes and exemplars are the store's alone).
func checkFakeCompares(t *testing.T, ch, mem *Service, qs []report.CompareQuery) {
	t.Helper()
	ctx := context.Background()
	near := func(a, b, rel float64) bool { return math.Abs(a-b) <= rel*math.Max(math.Abs(a), math.Abs(b)) }
	for _, q := range qs {
		w, err := ch.Compare(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		g, err := mem.Compare(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		name := q.Service + " " + q.Dimension + " " + q.Control + "/" + q.Treatment
		if g.OverlapMinutes != w.OverlapMinutes || g.Control.Requests != w.Control.Requests || g.Treatment.Requests != w.Treatment.Requests ||
			g.Verdict != w.Verdict || (g.SRM == nil) != (w.SRM == nil) || len(g.Operations) != len(w.Operations) {
			t.Errorf("%s: in memory %d minutes, %v/%v requests, %v, %d operations; ClickHouse %d, %v/%v, %v, %d", name,
				g.OverlapMinutes, g.Control.Requests, g.Treatment.Requests, g.Verdict, len(g.Operations),
				w.OverlapMinutes, w.Control.Requests, w.Treatment.Requests, w.Verdict, len(w.Operations))
			continue
		}
		for _, wm := range w.Metrics {
			if !strings.HasPrefix(wm.Metric, "latency_") && wm.Metric != "error_rate" {
				continue
			}
			gm := compareMetric(g, wm.Metric)
			if gm.Verdict != wm.Verdict || !near(gm.Control, wm.Control, 0.041) || !near(gm.Treatment, wm.Treatment, 0.041) {
				t.Errorf("%s %s: in memory %+v, ClickHouse %+v", name, wm.Metric, gm, wm)
			}
		}
	}
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
