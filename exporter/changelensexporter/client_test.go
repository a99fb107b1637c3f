package changelensexporter

import (
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/changelens/changelens/internal/eventspan"
	"github.com/changelens/changelens/testkit/chtest"
)

// clientTraces is one latency event of a browser app (session s1, user
// u1, crashed by an uncaught exception) and one of a server whose span
// names a session too (ignored: servers have none).
func clientTraces(at time.Time) ptrace.Traces {
	td := ptrace.NewTraces()
	for i, lang := range []string{"webjs", "go"} {
		rs := td.ResourceSpans().AppendEmpty()
		ra := rs.Resource().Attributes()
		ra.PutStr("service.name", []string{"web", "api"}[i])
		ra.PutStr("deployment.environment.name", "production")
		ra.PutStr("service.version", "1.0")
		ra.PutStr("telemetry.sdk.language", lang)
		ra.PutStr("user.id", "res-user")
		ss := rs.ScopeSpans().AppendEmpty()
		eventspan.MarkScope(ss.Scope(), eventspan.EventLatency)
		s := ss.Spans().AppendEmpty()
		s.SetName("documentLoad")
		s.SetKind(ptrace.SpanKindInternal)
		s.SetTraceID(pcommon.TraceID{byte(i + 1)})
		s.SetSpanID(pcommon.SpanID{byte(i + 1)})
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(at))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(time.Second)))
		s.Attributes().PutStr("session.id", "s1")
		s.Attributes().PutStr("enduser.id", "u1")
		ev := s.Events().AppendEmpty()
		ev.SetName("exception")
		ev.Attributes().PutStr("exception.escaped", "true")
	}
	return td
}

func TestEncodeClientSessions(t *testing.T) {
	now := time.Now()
	var enc encoder
	enc.reset(now, 30)
	enc.encode(clientTraces(now.Add(-time.Minute)))
	c := &enc.lat
	if c.rows() != 2 {
		t.Fatalf("%d rows, want 2", c.rows())
	}
	if c.sessionID[0] != "s1" || c.userID[0] != "u1" || c.crashed[0] != 1 {
		t.Errorf("client row: session %q user %q crashed %d", c.sessionID[0], c.userID[0], c.crashed[0])
	}
	if c.sessionID[1] != "" || c.userID[1] != "" || c.crashed[1] != 0 {
		t.Errorf("server row: session %q user %q crashed %d, want none", c.sessionID[1], c.userID[1], c.crashed[1])
	}
	// A handled exception is no crash; the resource's user.id stands in.
	td := clientTraces(now.Add(-time.Minute))
	s := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	s.Events().At(0).Attributes().PutBool("exception.escaped", false)
	s.Attributes().Remove("enduser.id")
	enc.reset(now, 30)
	enc.encode(td)
	if c.crashed[0] != 0 || c.userID[0] != "res-user" {
		t.Errorf("handled exception: crashed %d user %q", c.crashed[0], c.userID[0])
	}
}

func TestEncodeOutcomes(t *testing.T) {
	now := time.Now()
	at := now.Add(-time.Minute)
	o := func(name, session, user string) eventspan.Outcome {
		return eventspan.Outcome{Resource: eventspan.Resource{Service: "web", Environment: "production"}, Name: name,
			Time: at.UnixNano(), SessionID: session, UserID: user, TraceID: pcommon.TraceID{1}, SpanID: pcommon.SpanID{2}}
	}
	var enc encoder
	enc.reset(now, 30)
	td := ptrace.NewTraces()
	eventspan.AppendOutcomes(td, o("purchase", "s1", ""), o("", "s1", ""), o("purchase", "", ""))
	enc.encode(td)
	ld := plog.NewLogs()
	eventspan.AppendOutcomeLogs(ld, o("crash", "", "u1"))
	enc.encodeLogs(ld)
	c := &enc.out
	if c.rows() != 2 || c.name[0] != "purchase" || c.sessionID[0] != "s1" || c.name[1] != "crash" || c.userID[1] != "u1" ||
		c.time[1] != at.Unix() || c.timeNs[1] != uint64(at.UnixNano()) {
		t.Fatalf("rows %d: %v %v %v", c.rows(), c.name, c.sessionID, c.userID)
	}
	if enc.invalid[rInvalidOutcome] != 2 {
		t.Errorf("invalid outcomes %d, want 2", enc.invalid[rInvalidOutcome])
	}
}

// Sessions and crashes are stored on the client's rows; an outcome sent
// twice through two exporters is one row after merges.
func TestIntegrationClientSessionsAndOutcomes(t *testing.T) {
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	e1 := startExporter(t, testConfig(srv, db), nopSettings())
	e2 := startExporter(t, testConfig(srv, db), nopSettings())
	push(t, e1, clientTraces(at))
	out := eventspan.Outcome{Resource: eventspan.Resource{Service: "web", Environment: "production"}, Name: "purchase",
		Time: at.UnixNano(), SessionID: "s1", UserID: "u1", TraceID: pcommon.TraceID{1}, SpanID: pcommon.SpanID{2}}
	for _, e := range []*chExporter{e1, e2} {
		td := ptrace.NewTraces()
		eventspan.AppendOutcomes(td, out)
		push(t, e, td)
	}
	conn := srv.Conn(t, db)
	var session, user string
	var crashed uint8
	if err := conn.QueryRow(tctx(t), "SELECT session_id, user_id, crashed FROM latency_events WHERE service = 'web'").Scan(&session, &user, &crashed); err != nil ||
		session != "s1" || user != "u1" || crashed != 1 {
		t.Errorf("client row %q %q %d, %v", session, user, crashed, err)
	}
	if err := conn.QueryRow(tctx(t), "SELECT session_id, user_id, crashed FROM latency_events WHERE service = 'api'").Scan(&session, &user, &crashed); err != nil ||
		session != "" || user != "" || crashed != 0 {
		t.Errorf("server row %q %q %d, %v", session, user, crashed, err)
	}
	optimizeFinal(t, conn, db, "outcome_events")
	var n uint64
	var name string
	if err := conn.QueryRow(tctx(t), "SELECT count(), any(name) FROM outcome_events").Scan(&n, &name); err != nil || n != 1 || name != "purchase" {
		t.Errorf("outcome rows %d (%q), %v; want one", n, name, err)
	}
}
