package store

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/changelens/changelens/internal/eventspan"
	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/testkit/chtest"
	"github.com/changelens/changelens/testkit/pipelinetest"
)

// Which stored commit a deployment names: its own ID, or the one commit of
// its service an abbreviation of 7 or more hexadecimal digits begins.
func TestFillCommitTimes(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	full := "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
	twinA, twinB := "abcdef1000000000000000000000000000000000", "abcdef1999999999999999999999999999999999"
	commits := []Commit{
		{Service: "cart", SHA: full, Time: t0},
		{Service: "cart", SHA: twinA, Time: t0.Add(time.Minute)},
		{Service: "cart", SHA: twinB, Time: t0.Add(2 * time.Minute)},
		{Service: "search", SHA: "0123456789abcdef0123456789abcdef01234567", Time: t0.Add(3 * time.Minute)},
	}
	own := t0.Add(-time.Hour)
	for _, c := range []struct {
		name, service, sha string
		has                time.Time
		want               time.Time
	}{
		{"the full ID", "cart", full, time.Time{}, t0},
		{"an abbreviation, upper case", "cart", "6113728F", time.Time{}, t0},
		{"GitHub's short ID", "cart", full[:7], time.Time{}, t0},
		{"an abbreviation two commits share", "cart", "abcdef1", time.Time{}, time.Time{}},
		{"a longer abbreviation tells them apart", "cart", "abcdef19", time.Time{}, t0.Add(2 * time.Minute)},
		{"too short to be sure", "cart", full[:6], time.Time{}, time.Time{}},
		{"not a commit ID", "cart", "release-1", time.Time{}, time.Time{}},
		{"another service's commit", "cart", "0123456789abcdef0123456789abcdef01234567", time.Time{}, time.Time{}},
		{"unknown", "cart", "ffffffffffffffffffffffffffffffffffffffff", time.Time{}, time.Time{}},
		{"no commit", "cart", "", time.Time{}, time.Time{}},
		{"the span's own time wins", "cart", full, own, own},
	} {
		rows := []analysis.Row{{ID: "d", Service: c.service, CommitSHA: c.sha, CommitTime: c.has}}
		FillCommitTimes(rows, commits)
		if !rows[0].CommitTime.Equal(c.want) {
			t.Errorf("%s (%s %q): commit time %v, want %v", c.name, c.service, c.sha, rows[0].CommitTime, c.want)
		}
		if rows[0].CommitSHA != c.sha {
			t.Errorf("%s: the named commit changed to %q", c.name, rows[0].CommitSHA)
		}
	}
}

// appendGitHubDeploySpan appends the deploy span the webhook receiver makes
// of a GitHub deployment_status: the commit named (vcs.ref.head.revision),
// its time not (changelens.commit.time absent) unless commitTime is set.
func appendGitHubDeploySpan(td ptrace.Traces, service, version, sha string, end, commitTime time.Time, seq byte) {
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "github")
	s := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	s.SetTraceID(pcommon.TraceID{0x9, seq})
	s.SetSpanID(pcommon.SpanID{0x9, seq})
	s.SetKind(ptrace.SpanKindInternal)
	s.SetName("deploy " + service)
	s.SetStartTimestamp(pcommon.NewTimestampFromTime(end.Add(-2 * time.Second)))
	s.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
	a := s.Attributes()
	a.PutStr("cicd.pipeline.task.type", "deploy")
	a.PutStr("cicd.pipeline.task.run.result", "success")
	a.PutStr("service.name", service)
	a.PutStr("service.version", version)
	a.PutStr("deployment.environment.name", "production")
	a.PutStr("deployment.id", fmt.Sprintf("github:%d", seq))
	a.PutStr("vcs.ref.head.revision", sha)
	a.PutStr("changelens.webhook.source", "github")
	if !commitTime.IsZero() {
		a.PutInt("changelens.commit.time", commitTime.UnixNano())
	}
}

// GitHub deployments name their commit (deployment.sha) but not its time;
// the push webhooks stored it in commit_events. Through the real processor
// and exporter on this leg's server: the deployment of a pushed commit
// reads back with the commit's time, so its lead time is deploy − commit;
// a short ID finds its commit; a commit pushed for another service, or an
// abbreviation two commits share, gives none; a deploy span's own commit
// time wins.
func TestDeploymentRowsTakeCommitTimesFromPushes(t *testing.T) {
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	p := pipelinetest.New(t, srv.Addr(), db, 1, nil)
	t0 := time.Now().UTC().Add(-6 * time.Hour).Truncate(time.Second)
	const (
		shaA    = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
		shaB    = "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"
		shaC    = "0123456789abcdef0123456789abcdef01234567"
		twinOne = "abcdef1000000000000000000000000000000000"
		twinTwo = "abcdef1999999999999999999999999999999999"
	)
	commitA := t0.Add(-3 * time.Hour)
	commitB := t0.Add(-90 * time.Minute)
	td := ptrace.NewTraces()
	push := func(service, sha string, at, pushed time.Time, ref string) {
		eventspan.AppendCommit(td, eventspan.Commit{Service: service, Repository: "shop/" + service, SHA: sha,
			Time: at.UnixNano(), Pushed: pushed.UnixNano(), Ref: ref})
	}
	push("cart", shaA, commitA, commitA.Add(time.Minute), "refs/heads/feature")
	push("cart", shaA, commitA, t0.Add(-time.Hour), "refs/heads/main") // the same commit, merged
	push("cart", shaB, commitB, commitB.Add(time.Minute), "refs/heads/main")
	push("search", shaC, commitA, commitA.Add(time.Minute), "refs/heads/main")
	push("cart", twinOne, commitA, commitA, "refs/heads/main")
	push("cart", twinTwo, commitB, commitB, "refs/heads/main")
	own := t0.Add(-10 * time.Minute)
	appendGitHubDeploySpan(td, "cart", "1", shaA, t0, time.Time{}, 1)
	appendGitHubDeploySpan(td, "cart", "2", "F95F852", t0.Add(time.Hour), time.Time{}, 2) // a short ID, upper case
	appendGitHubDeploySpan(td, "cart", "3", shaC, t0.Add(2*time.Hour), time.Time{}, 3)    // pushed for search only
	appendGitHubDeploySpan(td, "cart", "4", "abcdef1", t0.Add(3*time.Hour), time.Time{}, 4)
	appendGitHubDeploySpan(td, "cart", "5", shaB, t0.Add(4*time.Hour), own, 5)
	p.Send(t, td)
	p.Send(t, td) // a replay of every delivery changes nothing
	p.Close(t)

	dsn := fmt.Sprintf("clickhouse://%s:%s@%s/%s", chtest.ReadOnlyUser, url.QueryEscape(chtest.ReadOnlyPassword), srv.Addr(), db)
	st, err := Open(context.Background(), Config{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rows, inRange, err := st.DeploymentRows(context.Background(), UnitFilter{Service: "cart", Environment: "production"},
		t0, t0.Add(5*time.Hour), t0.Add(-time.Hour), t0.Add(6*time.Hour), 100)
	if err != nil {
		t.Fatal(err)
	}
	if inRange != 5 || len(rows) != 5 {
		t.Fatalf("%d in range, rows %+v; want the 5 deployments", inRange, rows)
	}
	want := map[string]time.Time{"1": commitA, "2": commitB, "3": {}, "4": {}, "5": own}
	for _, r := range rows {
		if !r.CommitTime.Equal(want[r.Version]) {
			t.Errorf("deployment of %s (commit %s): commit time %v, want %v", r.Version, r.CommitSHA, r.CommitTime, want[r.Version])
		}
	}
	// The lead time every report shows: deploy time − commit time.
	lead := map[string]time.Duration{}
	for _, it := range analysis.NewTimeline(rows, analysis.DefaultConfig()).Items() {
		if it.Deployment.HasLeadTime {
			lead[it.Deployment.Version] = it.Deployment.LeadTime
		}
	}
	wantLead := map[string]time.Duration{"1": 3 * time.Hour, "2": time.Hour + 90*time.Minute, "5": 4*time.Hour + 10*time.Minute}
	if fmt.Sprint(lead) != fmt.Sprint(wantLead) {
		t.Errorf("lead times %v, want %v", lead, wantLead)
	}
}
