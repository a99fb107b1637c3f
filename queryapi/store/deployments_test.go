package store

import (
	"context"
	"fmt"
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/changelens/changelens/internal/schema"
	"github.com/changelens/changelens/testkit/chtest"
	"github.com/changelens/changelens/testkit/pipelinetest"
)

// DeploymentRows' parts and DeploymentByID on rows written straight into
// deployment_events: the contract testkit/fakestore keeps too (its
// TestDeploymentRowsNeighbours expects the same), so the use cases' fast
// tests rest on what this store does.
func TestDeploymentRowsParts(t *testing.T) {
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	pipelinetest.New(t, srv.Addr(), db, 1, nil).Close(t) // the schema
	conn := srv.Conn(t, db)
	ctx := context.Background()
	t0 := time.Now().UTC().Add(-48 * time.Hour).Truncate(24 * time.Hour)
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO deployment_events (id, service, environment, version, previous_version, source, status, "+
		"rollout_start, rollout_start_ns, deploy_time, deploy_time_ns, superseded_by, observed_time, ver, rework)")
	if err != nil {
		t.Fatal(err)
	}
	add := func(id, service, version, status, supersededBy string, at time.Time, ver uint64) {
		ns := uint64(at.UnixNano())
		rework := ""
		if id == "d7" {
			rework = "hotfix"
		}
		if err := batch.Append(id, service, "prod", version, "", schema.SourceExplicit, status, at, ns, at, ns, supersededBy, at, ver, rework); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 { // one deployment an hour, 00:00 … 09:00
		add(fmt.Sprintf("d%d", i), "a", fmt.Sprint(i), schema.StatusSucceeded, "", t0.Add(time.Duration(i)*time.Hour), 1)
	}
	add("d5", "a", "5-stale", schema.StatusSucceeded, "", t0.Add(5*time.Hour), 0) // an older row of d5: argMax(ver) drops it
	add("failed", "a", "x", schema.StatusFailed, "", t0.Add(30*time.Minute), 1)
	add("old", "a", "y", schema.StatusSucceeded, "d5", t0.Add(5*time.Hour+time.Minute), 1)
	add("other", "b", "1", schema.StatusSucceeded, "", t0.Add(5*time.Hour), 1)
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}

	dsn := fmt.Sprintf("clickhouse://%s:%s@%s/%s", chtest.ReadOnlyUser, url.QueryEscape(chtest.ReadOnlyPassword), srv.Addr(), db)
	st, err := Open(ctx, Config{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// [05:00, 06:00): d5 in range; before it the 4 latest successful
	// (d1–d4, not the failed attempt); after it the 4 earliest (d6–d9);
	// superseded "old" and the other unit's row left out.
	rows, inRange, err := st.DeploymentRows(ctx, UnitFilter{Service: "a"}, t0.Add(5*time.Hour), t0.Add(6*time.Hour), t0, t0.Add(24*time.Hour), 100)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range rows {
		got[r.ID] = r.Version
		if want := map[bool]string{true: "hotfix"}[r.ID == "d7"]; r.ReworkMark != want {
			t.Errorf("%s: rework mark %q, want %q", r.ID, r.ReworkMark, want)
		}
	}
	want := map[string]string{"d1": "1", "d2": "2", "d3": "3", "d4": "4", "d5": "5", "d6": "6", "d7": "7", "d8": "8", "d9": "9"}
	if inRange != 1 || !reflect.DeepEqual(got, want) {
		t.Errorf("in range %d, rows %v; want 1 and %v", inRange, got, want)
	}
	// inRange stops at limit+1.
	if _, inRange, err = st.DeploymentRows(ctx, UnitFilter{}, t0, t0.Add(24*time.Hour), t0, t0.Add(24*time.Hour), 3); err != nil || inRange != 4 {
		t.Errorf("in range %d at limit 3 (%v), want 4", inRange, err)
	}
	unit, at, by, found, err := st.DeploymentByID(ctx, "old")
	if err != nil || !found || by != "d5" || unit.Service != "a" || !at.Equal(t0.Add(5*time.Hour+time.Minute)) {
		t.Errorf("DeploymentByID(old) = %v %v %q %v %v", unit, at, by, found, err)
	}
	if _, _, _, found, err := st.DeploymentByID(ctx, "nope"); found || err != nil {
		t.Errorf("DeploymentByID(nope): found %v, %v", found, err)
	}
}
