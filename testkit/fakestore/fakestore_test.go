package fakestore

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/store"
)

// The parts of the store's contract the use cases lean on hardest; the
// whole is checked against ClickHouse by queryapi/usecase's
// TestFakeAgreesWithClickHouse.

var t0 = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

func TestDeploymentRowsNeighbours(t *testing.T) {
	st := New()
	for i := range 10 { // one deployment an hour, 00:00 … 09:00
		st.AddDeployment(analysis.Row{ID: fmt.Sprintf("d%d", i), Service: "a", Environment: "prod", Version: fmt.Sprint(i), DeployTime: t0.Add(time.Duration(i) * time.Hour)})
	}
	st.AddDeployment(analysis.Row{ID: "failed", Service: "a", Environment: "prod", Version: "x", DeployTime: t0.Add(30 * time.Minute), Failed: true})
	st.AddDeployment(analysis.Row{ID: "old", Service: "a", Environment: "prod", Version: "y", DeployTime: t0.Add(5*time.Hour + time.Minute)})
	st.Supersede("old", "d5")
	st.AddDeployment(analysis.Row{ID: "other", Service: "b", Environment: "prod", Version: "1", DeployTime: t0.Add(5 * time.Hour)})
	ids := func(rows []analysis.Row) map[string]bool {
		out := map[string]bool{}
		for _, r := range rows {
			out[r.ID] = true
		}
		return out
	}
	// [05:00, 06:00): d5 in range; before it the 4 latest successful
	// (d1–d4, not the failed attempt); after it the 4 earliest (d6–d9).
	rows, inRange, err := st.DeploymentRows(context.Background(), store.UnitFilter{Service: "a"}, t0.Add(5*time.Hour), t0.Add(6*time.Hour), t0, t0.Add(24*time.Hour), 100)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"d1": true, "d2": true, "d3": true, "d4": true, "d5": true, "d6": true, "d7": true, "d8": true, "d9": true}
	if inRange != 1 || !reflect.DeepEqual(ids(rows), want) {
		t.Errorf("in range %d, rows %v; want 1 and %v", inRange, ids(rows), want)
	}
	// inRange stops at limit+1.
	if _, inRange, _ = st.DeploymentRows(context.Background(), store.UnitFilter{}, t0, t0.Add(24*time.Hour), t0, t0.Add(24*time.Hour), 3); inRange != 4 {
		t.Errorf("in range %d at limit 3, want 4", inRange)
	}
	unit, at, by, found, err := st.DeploymentByID(context.Background(), "old")
	if err != nil || !found || by != "d5" || unit.Service != "a" || !at.Equal(t0.Add(5*time.Hour+time.Minute)) {
		t.Errorf("DeploymentByID(old) = %v %v %q %v %v", unit, at, by, found, err)
	}
}

func TestEpisodes(t *testing.T) {
	st := New()
	serve := func(version string, from, to time.Duration) {
		for m := from; m < to; m += time.Minute {
			x := Minute{Service: "a", Environment: "prod", Version: version, Operation: "op", Minute: t0.Add(m)}
			x.Observe(time.Millisecond, false)
			st.AddTraffic(x)
		}
	}
	serve("1", 0, 20*time.Minute)              // 00:00–00:19
	serve("1", 29*time.Minute, 40*time.Minute) // gap 00:19 → 00:29: 10m, splits at reappear 10m
	serve("2", 40*time.Minute, 60*time.Minute) // 00:40–00:59
	serve("2", 68*time.Minute, 70*time.Minute) // gap 9m: joined
	got, err := st.Episodes(context.Background(), store.UnitFilter{}, time.Time{}, time.Time{}, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ns := func(d time.Duration) int64 { return t0.Add(d).UnixNano() }
	want := map[store.UnitFilter]store.UnitEpisodes{{Service: "a", Environment: "prod"}: {
		"1": {{Version: "1", First: ns(0), Last: ns(19 * time.Minute)}, {Version: "1", First: ns(29 * time.Minute), Last: ns(39 * time.Minute)}},
		"2": {{Version: "2", First: ns(40 * time.Minute), Last: ns(69 * time.Minute)}},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("episodes %+v\nwant %+v", got, want)
	}
	// Only the five-minute buckets in [00:30, 00:45).
	got, _ = st.Episodes(context.Background(), store.UnitFilter{}, t0.Add(30*time.Minute), t0.Add(45*time.Minute), 10*time.Minute)
	want = map[store.UnitFilter]store.UnitEpisodes{{Service: "a", Environment: "prod"}: {
		"1": {{Version: "1", First: ns(30 * time.Minute), Last: ns(39 * time.Minute)}},
		"2": {{Version: "2", First: ns(40 * time.Minute), Last: ns(44 * time.Minute)}},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("bucketed episodes %+v\nwant %+v", got, want)
	}
}

func TestLimitsAndErrors(t *testing.T) {
	st := New()
	for m := range 10 {
		x := Minute{Service: "a", Environment: "prod", Version: "1", Operation: "op", Minute: t0.Add(time.Duration(m) * time.Minute)}
		x.Observe(time.Millisecond, false)
		st.AddTraffic(x)
	}
	ctx := context.Background()
	q := report.LatencyQuery{Service: "a", Environment: "prod", Start: t0, End: t0.Add(time.Hour), Step: time.Minute}
	var ia *report.InvalidArgumentError
	if _, err := st.LatencyPoints(ctx, q, true, 9); !errors.As(err, &ia) {
		t.Errorf("10 points at limit 9: %v, want an invalid-argument error", err)
	}
	if pts, err := st.LatencyPoints(ctx, q, true, 10); err != nil || len(pts) != 10 || pts[3].Count != 1 || !pts[3].Time.Equal(t0.Add(3*time.Minute)) {
		t.Errorf("points %+v, %v", pts, err)
	}
	boom := errors.New("boom")
	st.SetError("UnitRows", boom)
	if _, err := st.UnitRows(ctx, "", t0, 10); !errors.Is(err, boom) || st.Reads("UnitRows") != 1 {
		t.Errorf("UnitRows: %v after %d reads", err, st.Reads("UnitRows"))
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := st.InferredUnits(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}
