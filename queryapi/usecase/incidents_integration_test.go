package usecase

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/changelens/changelens/internal/eventspan"
	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/store"
	"github.com/changelens/changelens/testkit/chtest"
	"github.com/changelens/changelens/testkit/fakestore"
	"github.com/changelens/changelens/testkit/pipelinetest"
)

// Incidents through the collector (the processor passes the webhook
// receivers' incident events through) into ClickHouse, read back linked to
// the deployments they followed, on this leg's server and on the in-memory
// store alike: dep v2 a change failure for INCIDENT restored at the
// resolution, the resolution winning over a replayed opening.
func TestIncidentsOnClickHouse(t *testing.T) {
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	start := scenarioStart()
	at := func(d time.Duration) time.Time { return start.Add(d) }
	p := pipelinetest.New(t, srv.Addr(), db, 1, nil)

	td := ptrace.NewTraces()
	for i, v := range []string{"v2", "v3"} {
		appendDeploySpan(td, "cart", prod, v, at(time.Duration(i*2+1)*h), uint64(i+1))
	}
	opened := eventspan.Incident{ID: "pagerduty:Q1", Resource: eventspan.Resource{Service: "cart", Environment: prod},
		Source: eventspan.IncidentSourcePagerDuty, Severity: "P2", Title: "broken button", Opened: at(90 * m).UnixNano(),
		TraceID: pcommon.TraceID{7}, SpanID: pcommon.SpanID{7}}
	resolved := opened
	resolved.Resolved, resolved.ResolvedAt = true, at(2*h).UnixNano()
	named := eventspan.Incident{ID: "alertmanager:fp", Resource: eventspan.Resource{Service: "cart", Environment: prod},
		Source: eventspan.IncidentSourceAlertmanager, Opened: at(4 * h).UnixNano(), TraceID: pcommon.TraceID{8}, SpanID: pcommon.SpanID{8}}
	other := eventspan.Incident{ID: "otlp:x", Resource: eventspan.Resource{Service: "search", Environment: staging},
		Source: eventspan.IncidentSourceOTLP, Opened: at(30 * m).UnixNano(), TraceID: pcommon.TraceID{9}, SpanID: pcommon.SpanID{9}}
	for _, in := range []eventspan.Incident{opened, other, resolved, opened, named} {
		eventspan.AppendIncident(td, in)
	}
	p.Send(t, td)
	p.Close(t)

	dsn := fmt.Sprintf("clickhouse://%s:%s@%s/%s", chtest.ReadOnlyUser, url.QueryEscape(chtest.ReadOnlyPassword), srv.Addr(), db)
	now := at(6 * h)
	ch := openService(t, dsn, Config{Now: func() time.Time { return now }})
	ctx := context.Background()

	rows, err := ch.clickhouse().IncidentRows(ctx, store.UnitFilter{Service: "cart", Environment: prod}, at(0), at(6*h), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].ID != "pagerduty:Q1" || rows[0].Status != report.IncidentResolved || !rows[0].Resolved.Equal(at(2*h)) ||
		rows[0].Severity != "P2" || rows[0].Title != "broken button" || rows[0].Source != "pagerduty" || !rows[0].Opened.Equal(at(90*m)) ||
		rows[1].ID != "alertmanager:fp" || rows[1].Status != report.IncidentOpen || !rows[1].Resolved.IsZero() {
		t.Fatalf("cart's incidents: %+v", rows)
	}
	if _, err := ch.clickhouse().IncidentRows(ctx, store.UnitFilter{}, at(0), at(6*h), 2); err == nil {
		t.Error("3 incidents with a limit of 2: no error")
	}
	if got, err := ch.clickhouse().IncidentRows(ctx, store.UnitFilter{Environment: staging}, at(0), at(30*m), 10); err != nil || len(got) != 0 {
		t.Errorf("opened at the range's end: %+v, %v", got, err)
	}

	// The same events in memory.
	mem := fakestore.New()
	for i, v := range []string{"v2", "v3"} {
		mem.AddDeployment(analysis.Row{ID: deploymentIDOf(t, ch, v, at(time.Duration(i*2+1)*h)), Service: "cart", Environment: prod,
			Version: v, DeployTime: at(time.Duration(i*2+1) * h), RolloutStart: at(time.Duration(i*2+1)*h - 4*m)})
	}
	for _, r := range []report.Incident{rows[1], rows[0], {ID: "otlp:x", Source: "otlp", Service: "search", Environment: staging, Opened: at(30 * m)}} {
		mem.AddIncident(r)
	}
	inMem := newService(t, mem, &now, noCache)

	for name, svc := range map[string]*Service{"clickhouse": ch, "in memory": inMem} {
		deps := allDeployments(t, svc, report.DeploymentQuery{Service: "cart", Environment: prod, Start: at(0), End: at(6 * h)})
		if len(deps) != 2 {
			t.Fatalf("%s: %d deployments", name, len(deps))
		}
		v3, v2 := deps[0], deps[1]
		if !slices.Contains(v2.FailureReasons, report.ReasonIncident) || !v2.ChangeFailure ||
			!v2.RestoreTime.Equal(at(2*h)) || v2.TimeToRestore != h {
			t.Errorf("%s: v2 reasons %v, restored %v after %v; want INCIDENT, at 2h after 1h", name, v2.FailureReasons, v2.RestoreTime, v2.TimeToRestore)
		}
		if !slices.Contains(v3.FailureReasons, report.ReasonIncident) || !v3.RestoreTime.IsZero() {
			t.Errorf("%s: v3 reasons %v, restored %v; want INCIDENT, open", name, v3.FailureReasons, v3.RestoreTime)
		}
		got, err := svc.Incidents(ctx, report.IncidentQuery{Environment: prod, Start: at(0), End: at(6 * h)})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].LinkedDeploymentID != v2.ID || got[1].LinkedDeploymentID != v3.ID {
			t.Errorf("%s: incidents %+v, want linked to %s and %s", name, got, v2.ID, v3.ID)
		}
		rep, err := svc.DORA(ctx, report.DORAQuery{Service: "cart", Environment: prod, Start: at(0), End: at(6 * h), Interval: report.IntervalAll})
		if err != nil {
			t.Fatal(err)
		}
		if s := rep.Summary; s.FailedChangeCount != 2 || s.ChangeCount != 2 || s.RestoreSampleCount != 1 {
			t.Errorf("%s: DORA %+v, want both changes failed, one restored", name, s)
		}
	}
}

// appendDeploySpan is a CI system's successful deploy span of a unit.
func appendDeploySpan(td ptrace.Traces, service, env, version string, end time.Time, seq uint64) {
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "github-actions")
	ss := rs.ScopeSpans().AppendEmpty()
	s := ss.Spans().AppendEmpty()
	s.SetTraceID(pcommon.TraceID{0xd, byte(seq)})
	s.SetSpanID(pcommon.SpanID{0xd, byte(seq)})
	s.SetKind(ptrace.SpanKindInternal)
	s.SetName("deploy " + service)
	s.SetStartTimestamp(pcommon.NewTimestampFromTime(end.Add(-4 * time.Minute)))
	s.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
	a := s.Attributes()
	a.PutStr("cicd.pipeline.task.type", "deploy")
	a.PutStr("service.name", service)
	a.PutStr("service.version", version)
	a.PutStr("deployment.environment.name", env)
	a.PutStr("cicd.pipeline.task.run.result", "success")
}

// deploymentIDOf is the ID ClickHouse holds for the unit's deployment of
// version at deployTime.
func deploymentIDOf(t *testing.T, svc *Service, version string, deployTime time.Time) string {
	t.Helper()
	rows, _, err := svc.clickhouse().DeploymentRows(context.Background(), store.UnitFilter{Service: "cart", Environment: prod},
		deployTime, deployTime.Add(time.Second), deployTime, deployTime.Add(time.Second), 10)
	if err != nil || len(rows) != 1 || rows[0].Version != version {
		t.Fatalf("deployment of %s: %+v, %v", version, rows, err)
	}
	return rows[0].ID
}
