package changelensexporter

import (
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/changelens/changelens/internal/eventspan"
	"github.com/changelens/changelens/testkit/chtest"
)

func TestEncodeCommits(t *testing.T) {
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	at := now.Add(-time.Hour).UnixNano()
	ok := eventspan.Commit{Service: "cart", Repository: "shop/cart", SHA: "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
		Time: at, Pushed: at + int64(time.Minute), Ref: "refs/heads/main"}
	later := ok // the same commit pushed again, to another ref
	later.Pushed, later.Ref = at+int64(time.Hour), "refs/tags/v1"
	unknownPush := ok
	unknownPush.Pushed = 0
	noSHA, noService, future, expired := ok, ok, ok, ok
	noSHA.SHA = ""
	noService.Service = ""
	future.Time = now.Add(48 * time.Hour).UnixNano()
	expired.Time = now.AddDate(0, 0, -10).UnixNano()
	td := ptrace.NewTraces()
	for _, c := range []eventspan.Commit{ok, later, unknownPush, noSHA, noService, future, expired} {
		eventspan.AppendCommit(td, c)
	}
	var e encoder
	e.reset(now, 3)
	e.encode(td)
	c := &e.com
	if c.rows() != 3 || e.ignored != 0 {
		t.Fatalf("%d rows, %d ignored", c.rows(), e.ignored)
	}
	want := [numReasons]int64{rMissingCommitSHA: 1, rMissingService: 1, rFutureTimestamp: 1, rExpired: 1}
	if e.invalid != want {
		t.Errorf("invalid = %v, want %v", e.invalid, want)
	}
	if c.sha[0] != ok.SHA || c.service[0] != "cart" || c.repository[0] != "shop/cart" || c.ref[0] != "refs/heads/main" ||
		c.commitTime[0] != at/1e9 || c.commitTimeNs[0] != uint64(at) || c.pushedTimeNs[0] != uint64(ok.Pushed) ||
		len(c.traceIDs) != 48 || len(c.spanIDs) != 24 {
		t.Errorf("columns: %+v", c)
	}
	if !(c.ver[0] > c.ver[1] && c.ver[1] > c.ver[2]) || c.ver[2] != 0 || c.pushedTimeNs[2] != 0 {
		t.Errorf("ver %v (pushed %v): the earliest push must win, an unknown push lose", c.ver, c.pushedTimeNs)
	}
}

type commitRow struct {
	Service  string `ch:"service"`
	SHA      string `ch:"sha"`
	CommitNs uint64 `ch:"c_commit_ns"`
	PushedNs uint64 `ch:"c_pushed_ns"`
	Ref      string `ch:"c_ref"`
	Rows     uint64 `ch:"n"`
}

// One commit pushed to a branch, then to main, each push delivered twice
// through two collectors (and a replay of the first push last): one commit
// reads back per service and sha, its earliest push, and merges leave one
// row. A push of commits spread over 150 days (more partitions than
// max_partitions_per_insert_block) is stored in one insert on every server.
func TestIntegrationCommitEventsCollapse(t *testing.T) {
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	c1 := startExporter(t, testConfig(srv, db), nopSettings())
	c2 := startExporter(t, testConfig(srv, db), nopSettings())
	at := time.Now().Add(-3 * time.Hour).Truncate(time.Second)
	branch := eventspan.Commit{Service: "cart", Repository: "shop/cart", SHA: "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
		Time: at.UnixNano(), Pushed: at.Add(time.Minute).UnixNano(), Ref: "refs/heads/feature",
		TraceID: pcommon.TraceID{1}, SpanID: pcommon.SpanID{1}}
	onMain := branch
	onMain.Pushed, onMain.Ref = at.Add(time.Hour).UnixNano(), "refs/heads/main"
	other := branch // the same repository mapped to a second service
	other.Service = "checkout"

	send := func(e *chExporter, cs ...eventspan.Commit) {
		td := ptrace.NewTraces()
		for _, c := range cs {
			eventspan.AppendCommit(td, c)
		}
		push(t, e, td)
	}
	send(c1, branch, other)
	send(c2, branch)
	send(c1, onMain)
	send(c2, onMain)
	send(c2, branch)

	conn := srv.Conn(t, db)
	read := func(stage string) {
		t.Helper()
		var rows []commitRow
		if err := conn.Select(tctx(t), &rows, `
			SELECT CAST(service AS String) AS service, sha, tupleElement(w, 1) AS c_commit_ns, tupleElement(w, 2) AS c_pushed_ns,
			       tupleElement(w, 3) AS c_ref, n
			FROM (
			    SELECT service, sha, argMax((commit_time_ns, pushed_time_ns, ref), (ver, row_hash)) AS w, count() AS n
			    FROM commit_events GROUP BY service, sha
			) ORDER BY service`); err != nil {
			t.Fatal(err)
		}
		if len(rows) != 2 || rows[0].Service != "cart" || rows[1].Service != "checkout" {
			t.Fatalf("%s: %+v", stage, rows)
		}
		for _, r := range rows {
			if r.SHA != branch.SHA || r.CommitNs != uint64(branch.Time) || r.PushedNs != uint64(branch.Pushed) || r.Ref != "refs/heads/feature" {
				t.Errorf("%s: %+v, want the first push of the commit", stage, r)
			}
		}
	}
	read("before merges")
	optimizeFinal(t, conn, db, "commit_events")
	read("after merges")
	var n uint64
	if err := conn.QueryRow(tctx(t), "SELECT count() FROM commit_events").Scan(&n); err != nil || n != 2 {
		t.Errorf("after merges %d rows (%v), want 2: one per service and commit", n, err)
	}

	// 150 commits, one a day: 150 daily partitions in one insert.
	var old []eventspan.Commit
	for i := range 150 {
		ct := at.AddDate(0, 0, -i)
		old = append(old, eventspan.Commit{Service: "history", Repository: "shop/history", SHA: fmt.Sprintf("%040x", i+1),
			Time: ct.UnixNano(), Pushed: at.UnixNano()})
	}
	send(c1, old...)
	if err := conn.QueryRow(tctx(t), "SELECT count() FROM commit_events WHERE service = 'history'").Scan(&n); err != nil || n != 150 {
		t.Errorf("history: %d rows (%v), want 150", n, err)
	}
}
