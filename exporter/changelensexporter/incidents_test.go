package changelensexporter

import (
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/changelens/changelens/internal/eventspan"
	"github.com/changelens/changelens/testkit/chtest"
)

func TestEncodeIncidents(t *testing.T) {
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	opened := now.Add(-time.Hour).UnixNano()
	td := ptrace.NewTraces()
	ok := eventspan.Incident{ID: "pagerduty:Q1", Resource: eventspan.Resource{Service: "cart", Environment: "prod"},
		Source: eventspan.IncidentSourcePagerDuty, Severity: "P1", Title: "t", Opened: opened, DeploymentID: "d"}
	res := ok
	res.Resolved, res.ResolvedAt = true, opened+int64(10*time.Minute)
	noID, noService, future, expired := ok, ok, ok, ok
	noID.ID = ""
	noService.Service = ""
	future.Opened = now.Add(48 * time.Hour).UnixNano()
	expired.Opened = now.AddDate(0, 0, -10).UnixNano()
	for _, in := range []eventspan.Incident{ok, res, noID, noService, future, expired} {
		eventspan.AppendIncident(td, in)
	}
	var e encoder
	e.reset(now, 3)
	e.encode(td)
	c := &e.inc
	if c.rows() != 2 || e.ignored != 0 {
		t.Fatalf("%d rows, %d ignored", c.rows(), e.ignored)
	}
	want := [numReasons]int64{rMissingIncidentID: 1, rMissingService: 1, rFutureTimestamp: 1, rExpired: 1}
	if e.invalid != want {
		t.Errorf("invalid = %v, want %v", e.invalid, want)
	}
	if c.status[0] != "open" || c.resolvedTimeNs[0] != 0 || c.status[1] != "resolved" || c.resolvedTimeNs[1] != uint64(res.ResolvedAt) {
		t.Errorf("statuses %v, resolutions %v", c.status, c.resolvedTimeNs)
	}
	if c.ver[1] <= c.ver[0] || c.ver[1]&verResolvedBit == 0 {
		t.Errorf("ver: resolved %x not above open %x", c.ver[1], c.ver[0])
	}
	if c.deploymentID[0] != "d" || c.openedTime[0] != opened/1e9 || c.severity[0] != "P1" || len(c.traceIDs) != 32 {
		t.Errorf("columns: %+v", c)
	}
}

type incidentRow struct {
	ID         string `ch:"id"`
	Status     string `ch:"i_status"`
	Severity   string `ch:"i_severity"`
	ResolvedNs uint64 `ch:"i_resolved_ns"`
	Rows       uint64 `ch:"n"`
}

// The opening and the resolution of one incident, each delivered twice and
// the opening replayed after the resolution, by two collectors: one row per
// incident and unit reads back, resolved, and merges leave one row.
func TestIntegrationIncidentResolutionReplacesOpening(t *testing.T) {
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	c1 := startExporter(t, testConfig(srv, db), nopSettings())
	c2 := startExporter(t, testConfig(srv, db), nopSettings())
	opened := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	open := eventspan.Incident{ID: "pagerduty:Q1", Resource: eventspan.Resource{Service: "cart", Environment: "prod"},
		Source: eventspan.IncidentSourcePagerDuty, Severity: "P2", Title: "broken button", Opened: opened.UnixNano(),
		TraceID: pcommon.TraceID{1}, SpanID: pcommon.SpanID{1}}
	other := open // the same incident, another service
	other.Service = "checkout"
	resolved := open
	resolved.Resolved, resolved.ResolvedAt, resolved.Severity = true, opened.Add(20*time.Minute).UnixNano(), "P1"

	send := func(e *chExporter, ins ...eventspan.Incident) {
		td := ptrace.NewTraces()
		for _, in := range ins {
			eventspan.AppendIncident(td, in)
		}
		push(t, e, td)
	}
	send(c1, open, other)
	send(c2, open)
	send(c1, resolved)
	send(c2, resolved)
	send(c2, open) // a late replay of the opening

	conn := srv.Conn(t, db)
	read := func(stage string) {
		t.Helper()
		var rows []incidentRow
		if err := conn.Select(tctx(t), &rows, `
			SELECT id, tupleElement(w, 1) AS i_status, tupleElement(w, 2) AS i_severity, tupleElement(w, 3) AS i_resolved_ns, n
			FROM (
			    SELECT service, id, argMax((CAST(status AS String), CAST(severity AS String), resolved_time_ns), (ver, resolved_time_ns, row_hash)) AS w,
			           count() AS n
			    FROM incident_events GROUP BY service, environment, id
			) ORDER BY service`); err != nil {
			t.Fatal(err)
		}
		if len(rows) != 2 {
			t.Fatalf("%s: %+v", stage, rows)
		}
		if r := rows[0]; r.ID != "pagerduty:Q1" || r.Status != "resolved" || r.Severity != "P1" || r.ResolvedNs != uint64(resolved.ResolvedAt) {
			t.Errorf("%s: cart = %+v, want resolved, P1", stage, r)
		}
		if r := rows[1]; r.Status != "open" || r.ResolvedNs != 0 {
			t.Errorf("%s: checkout = %+v, want open", stage, r)
		}
	}
	read("before merges")
	optimizeFinal(t, conn, db, "incident_events")
	read("after merges")
	var n uint64
	if err := conn.QueryRow(tctx(t), "SELECT count() FROM incident_events").Scan(&n); err != nil || n != 2 {
		t.Errorf("after merges %d rows (%v), want 2: one per incident and unit", n, err)
	}
}
