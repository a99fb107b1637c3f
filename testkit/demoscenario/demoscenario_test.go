package demoscenario

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/changelens/changelens/cmd/changelens-demo/plan"
	"github.com/changelens/changelens/testkit/chtest"
)

func TestMain(m *testing.M) { os.Exit(chtest.Main(m)) }

// TestWrite writes the shortest scenario at a low rate and checks that
// what Write reports is what the exporter stored: the services with
// traffic, one latency event per request span, the experiment, and the
// planned deployments' CI spans.
func TestWrite(t *testing.T) {
	ch := chtest.Shared(t)
	db := ch.NewDatabase(t)
	end := time.Now().UTC().Truncate(time.Minute).Add(-2 * time.Minute)
	sc := Write(t, ch, db, end.Add(30*time.Second), plan.MinScenarioPeriod, 5)

	if !sc.End.Equal(end) || !sc.Start.Equal(end.Add(-plan.MinScenarioPeriod)) {
		t.Errorf("scenario over [%s, %s), want [%s, %s) (whole minutes)", sc.Start, sc.End, end.Add(-plan.MinScenarioPeriod), end)
	}
	if sc.ExperimentID != ExperimentID {
		t.Errorf("ExperimentID %q, want %q", sc.ExperimentID, ExperimentID)
	}
	for _, s := range []string{GraphCaller, GraphCallee, OrdersService} {
		if !slices.Contains(sc.Services, s) {
			t.Errorf("Services %v lack %s", sc.Services, s)
		}
	}

	conn := ch.Conn(t, db)
	ctx := context.Background()
	var services []string
	rows, err := conn.Query(ctx, "SELECT DISTINCT service FROM latency_events ORDER BY service")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		services = append(services, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := slices.Sorted(slices.Values(sc.Services))
	if !slices.Equal(services, want) {
		t.Errorf("services stored %v, Write says %v", services, want)
	}
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM latency_events").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != uint64(sc.Requests) {
		t.Errorf("%d latency events stored, Write says %d requests", n, sc.Requests)
	}
	if err := conn.QueryRow(ctx, "SELECT count() FROM experiments").Scan(&n); err != nil || n != 1 {
		t.Errorf("experiments stored: %d (%v), want 1", n, err)
	}
	explicit := 0
	for _, d := range sc.Plan.Deployments {
		if d.Explicit && !d.CIEnd.Before(sc.Start) {
			explicit++
		}
	}
	if explicit == 0 {
		t.Fatal("the plan has no explicit deployment in two hours")
	}
	var planned []string
	for _, s := range sc.Plan.Services {
		planned = append(planned, s.Name)
	}
	if err := conn.QueryRow(ctx, "SELECT count() FROM deployment_events WHERE has(?, toString(service))", planned).Scan(&n); err != nil || n == 0 {
		t.Errorf("deployment events of the plan's services: %d (%v), want some (%d explicit deployments)", n, err, explicit)
	}
}
