package store

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/changelens/changelens/processor/changelensprocessor"
	"github.com/changelens/changelens/testkit/chtest"
	"github.com/changelens/changelens/testkit/pipelinetest"
)

// browserApp builds a browser SDK's telemetry: documentLoad root spans
// (INTERNAL, no parent) of app "web" carrying session.id and enduser.id,
// the variant of flag checkout-api as a span event, an uncaught exception
// on a crashed load, and a checkout child span for a purchase.
type browserApp struct {
	td  ptrace.Traces
	seq uint32
}

func newBrowserApp() *browserApp { return &browserApp{td: ptrace.NewTraces()} }

func (b *browserApp) spans() ptrace.SpanSlice {
	rs := b.td.ResourceSpans().AppendEmpty()
	ra := rs.Resource().Attributes()
	ra.PutStr("service.name", "web")
	ra.PutStr("service.version", "1.0")
	ra.PutStr("deployment.environment.name", "production")
	ra.PutStr("telemetry.sdk.language", "webjs")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("@opentelemetry/instrumentation-document-load")
	return ss.Spans()
}

func (b *browserApp) load(session, user, variant string, at time.Time, dur time.Duration, crash, purchase bool) {
	b.seq++
	spans := b.spans()
	s := spans.AppendEmpty()
	tid := pcommon.TraceID{0xc1, byte(b.seq >> 16), byte(b.seq >> 8), byte(b.seq)}
	s.SetTraceID(tid)
	s.SetSpanID(pcommon.SpanID{1, byte(b.seq >> 16), byte(b.seq >> 8), byte(b.seq)})
	s.SetKind(ptrace.SpanKindInternal)
	s.SetName("documentLoad")
	s.SetStartTimestamp(pcommon.NewTimestampFromTime(at))
	s.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(dur)))
	s.Attributes().PutStr("session.id", session)
	s.Attributes().PutStr("enduser.id", user)
	if variant != "" {
		ev := s.Events().AppendEmpty()
		ev.SetName("feature_flag.evaluation")
		ev.SetTimestamp(pcommon.NewTimestampFromTime(at))
		ev.Attributes().PutStr("feature_flag.key", "checkout-api")
		ev.Attributes().PutStr("feature_flag.result.variant", variant)
	}
	if crash {
		ev := s.Events().AppendEmpty()
		ev.SetName("exception")
		ev.SetTimestamp(pcommon.NewTimestampFromTime(at.Add(dur)))
		ev.Attributes().PutStr("exception.type", "TypeError")
		ev.Attributes().PutBool("exception.escaped", true)
	}
	if purchase {
		c := spans.AppendEmpty()
		c.SetTraceID(tid)
		c.SetSpanID(pcommon.SpanID{2, byte(b.seq >> 16), byte(b.seq >> 8), byte(b.seq)})
		c.SetParentSpanID(s.SpanID())
		c.SetKind(ptrace.SpanKindInternal)
		c.SetName("checkout")
		c.SetStartTimestamp(pcommon.NewTimestampFromTime(at.Add(dur)))
		c.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(dur + time.Millisecond)))
		c.Attributes().PutStr("session.id", session)
		c.Attributes().PutStr("enduser.id", user)
	}
}

// crashLog is a mobile SDK's crash record (device.crash) of a session.
func crashLog(session string, at time.Time) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	ra := rl.Resource().Attributes()
	ra.PutStr("service.name", "web")
	ra.PutStr("deployment.environment.name", "production")
	ra.PutStr("telemetry.sdk.language", "webjs")
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetEventName("device.crash")
	lr.SetTimestamp(pcommon.NewTimestampFromTime(at))
	lr.Attributes().PutStr("session.id", session)
	return ld
}

// serverPurchases are checkout spans of a server (service checkout-api)
// that name the app's session and user: the first n graphql sessions'.
func serverPurchases(at time.Time, n int) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "checkout-api")
	rs.Resource().Attributes().PutStr("deployment.environment.name", "production")
	rs.Resource().Attributes().PutStr("telemetry.sdk.language", "go")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	for i := range n {
		s := spans.AppendEmpty()
		s.SetTraceID(pcommon.TraceID{0xd1, byte(i)})
		s.SetSpanID(pcommon.SpanID{0xd1, byte(i)})
		s.SetKind(ptrace.SpanKindServer)
		s.SetName("checkout")
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(at.Add(30 * time.Minute)))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(30*time.Minute + 5*time.Millisecond)))
		s.Attributes().PutStr("session.id", fmt.Sprintf("graphql-s%d", i))
	}
	return td
}

// flagLog is an evaluation on the Logs API in the context of a trace.
func flagLog(trace pcommon.TraceID, variant string, at time.Time) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "web")
	rl.Resource().Attributes().PutStr("deployment.environment.name", "production")
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetEventName("feature_flag.evaluation")
	lr.SetTimestamp(pcommon.NewTimestampFromTime(at))
	lr.SetTraceID(trace)
	lr.SetSpanID(pcommon.SpanID{9})
	lr.Attributes().PutStr("feature_flag.key", "checkout-api")
	lr.Attributes().PutStr("feature_flag.result.variant", variant)
	return ld
}

// An experiment on a browser app's checkout API, 200 sessions (and users)
// per variant over one hour: rest loads in 300 ms, 1 session crashed (0.5
// %), 50 purchase; graphql loads in 200 ms, 2 crashed (1 %: one by an
// uncaught exception, one by a crash record), 60 purchase. One user's
// session saw both variants (rest first). Two days later 100 rest users
// and 50 graphql users come back. 10 rest users loaded pages in the day
// before (500 ms). One more graphql session's variant is a stored
// evaluation (a log record), credited by trace. The checkout API records
// purchases of 10 graphql sessions too (server spans naming the session).
func TestIntegrationClientReads(t *testing.T) {
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	at := time.Now().Add(-72 * time.Hour).Truncate(time.Hour)
	p := pipelinetest.New(t, srv.Addr(), db, 2, nil, func(c *changelensprocessor.Config) {
		c.Outcomes = []changelensprocessor.OutcomeConfig{{Name: "purchase", SpanName: "checkout"}}
	})
	app := newBrowserApp()
	for i := range 200 {
		for v, variant := range []string{"rest", "graphql"} {
			session, user := fmt.Sprintf("%s-s%d", variant, i), fmt.Sprintf("%s-u%d", variant, i)
			t0 := at.Add(time.Duration(i)*10*time.Second + time.Duration(v)*time.Second)
			dur := []time.Duration{300 * time.Millisecond, 200 * time.Millisecond}[v]
			app.load(session, user, variant, t0, dur, i == 0, false)
			buys := []int{50, 60}[v]
			app.load(session, user, variant, t0.Add(time.Minute), dur, false, i < buys)
			if i < []int{100, 50}[v] {
				app.load(fmt.Sprintf("%s-later%d", variant, i), user, "", at.Add(49*time.Hour), dur, false, false)
			}
			if v == 0 && i < 10 {
				app.load(fmt.Sprintf("pre%d", i), user, variant, at.Add(-12*time.Hour), 500*time.Millisecond, false, false)
			}
		}
	}
	app.load("mixed-s", "mixed-u", "rest", at.Add(time.Minute), 300*time.Millisecond, false, false)
	app.load("mixed-s", "mixed-u", "graphql", at.Add(2*time.Minute), 200*time.Millisecond, false, false)
	// A load whose flag evaluation came as a log record (stored apart,
	// credited by trace when read).
	app.load("stored-s", "stored-u", "", at.Add(3*time.Minute), 200*time.Millisecond, false, false)
	storedTrace := pcommon.TraceID{0xc1, byte(app.seq >> 16), byte(app.seq >> 8), byte(app.seq)}
	// The purchases once more through the other replica: replays are one.
	again := newBrowserApp()
	for _, rs := range app.td.ResourceSpans().All() {
		for _, sp := range rs.ScopeSpans().At(0).Spans().All() {
			if sp.Name() == "checkout" {
				sp.CopyTo(again.spans().AppendEmpty())
			}
		}
	}
	p.Send(t, app.td)
	p.Send(t, serverPurchases(at, 10))
	if err := p.Replicas[1].ConsumeTraces(context.Background(), again.td); err != nil {
		t.Fatal(err)
	}
	p.SendLogs(t, 1, crashLog("graphql-s1", at.Add(5*time.Minute)))
	p.SendLogs(t, 0, flagLog(storedTrace, "graphql", at.Add(3*time.Minute)))
	p.Close(t)

	dsn := fmt.Sprintf("clickhouse://%s:%s@%s/%s", chtest.ReadOnlyUser, url.QueryEscape(chtest.ReadOnlyPassword), srv.Addr(), db)
	st, err := Open(context.Background(), Config{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	q := ClientQuery{Service: "web", Environment: "production", Dimension: "feature_flag.checkout-api", From: at, To: at.Add(time.Hour)}

	cohorts, err := st.ClientCohorts(ctx, q, []string{"documentLoad"}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][3]float64{"rest": {201, 1, 401}, "graphql": {202, 2, 402}} // sessions, crashed, requests
	wantP50 := map[string]time.Duration{"rest": 300 * time.Millisecond, "graphql": 200 * time.Millisecond}
	if len(cohorts) != 2 {
		t.Fatalf("cohorts %+v", cohorts)
	}
	for _, c := range cohorts {
		w := want[c.Variant]
		if float64(c.Sessions) != w[0] || float64(c.CrashedSessions) != w[1] || c.Requests != w[2] {
			t.Errorf("%s: sessions %d crashed %d requests %v, want %v", c.Variant, c.Sessions, c.CrashedSessions, c.Requests, w)
		}
		qs, ok := c.Loads["documentLoad"].Quantiles(0.5, 0.95)
		if !ok || math.Abs(float64(qs[0]-wantP50[c.Variant])) > 0.02*float64(wantP50[c.Variant]) {
			t.Errorf("%s: load p50 %v, want %v", c.Variant, qs, wantP50[c.Variant])
		}
		if len(c.Hours) != 1 || !c.Hours[0].Hour.Equal(at) || c.Hours[0].Sessions != c.Sessions ||
			c.Hours[0].CrashedSessions != c.CrashedSessions || c.Hours[0].Requests != c.Requests {
			t.Errorf("%s: hours %+v", c.Variant, c.Hours)
		}
	}
	// By version: one variant, every session.
	vq := q
	vq.Dimension = "version"
	if vc, err := st.ClientCohorts(ctx, vq, nil, 1000); err != nil || len(vc) != 1 || vc[0].Variant != "1.0" || vc[0].Sessions != 402 || vc[0].CrashedSessions != 3 {
		t.Errorf("by version: %+v, %v", vc, err)
	}

	for _, by := range []ConversionsBy{BySession, ByUser} {
		conv, err := st.Conversions(ctx, q, by, "purchase", "", 1000)
		if err != nil {
			t.Fatal(err)
		}
		wantConv := []Conversion{
			{Variant: "graphql", Units: 201, Converted: 60},
			{Variant: "rest", Units: 201, Converted: 50, Mixed: 1},
		}
		if fmt.Sprint(conv) != fmt.Sprint(wantConv) {
			t.Errorf("conversions by %s: %+v, want %+v", by, conv, wantConv)
		}
	}

	// The server's purchases count for the app's sessions when named.
	conv, err := st.Conversions(ctx, q, BySession, "purchase", "checkout-api", 1000)
	if want := []Conversion{{Variant: "graphql", Units: 201, Converted: 10}, {Variant: "rest", Units: 201, Mixed: 1}}; err != nil || fmt.Sprint(conv) != fmt.Sprint(want) {
		t.Errorf("conversions to the server's purchases: %+v, %v; want %+v", conv, err, want)
	}

	ret, err := st.Retention(ctx, q, 2, time.Now(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	wantRet := []RetentionRow{{Variant: "graphql", Users: 201, Eligible: 201, Retained: 50}, {Variant: "rest", Users: 201, Eligible: 201, Retained: 100}}
	if fmt.Sprint(ret) != fmt.Sprint(wantRet) {
		t.Errorf("retention: %+v, want %+v", ret, wantRet)
	}
	// Four days after the window nobody of it is eligible yet.
	if ret, err := st.Retention(ctx, q, 4, time.Now(), 1000); err != nil || len(ret) != 2 || ret[0].Eligible != 0 || ret[1].Eligible != 0 {
		t.Errorf("retention after 3 days: %+v, %v", ret, err)
	}

	covs, err := st.UnitCovariates(ctx, q, at.Add(-24*time.Hour), CovariateMetric{Operations: []string{"documentLoad"}}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	withPre := 0
	for _, u := range covs {
		wantV := map[string]float64{"rest": 300, "graphql": 200}[u.Variant]
		if u.User == "mixed-u" {
			wantV = 250
		}
		if math.Abs(u.Value-wantV) > 1e-6 {
			t.Errorf("%s (%s): value %v, want %v", u.User, u.Variant, u.Value, wantV)
		}
		if u.PreN > 0 {
			withPre++
			if u.Pre != 500 {
				t.Errorf("%s: pre %v, want 500", u.User, u.Pre)
			}
		}
	}
	if len(covs) != 402 || withPre != 10 {
		t.Errorf("%d users, %d with pre-period loads; want 402, 10", len(covs), withPre)
	}
	sample, err := st.UnitCovariates(ctx, q, at.Add(-24*time.Hour), CovariateMetric{Operations: []string{"documentLoad"}}, 7)
	if err != nil || len(sample) != 7 {
		t.Fatalf("sample: %d, %v", len(sample), err)
	}
	for i := range sample {
		if sample[i] != covs[i] {
			t.Errorf("sample row %d %+v is not the full read's %+v", i, sample[i], covs[i])
		}
	}
	bought, err := st.UnitCovariates(ctx, q, at.Add(-24*time.Hour), CovariateMetric{Outcome: "purchase"}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]float64{}
	for _, u := range bought {
		n[u.Variant] += u.Value
	}
	if n["rest"] != 50 || n["graphql"] != 60 {
		t.Errorf("purchases per variant %v, want rest 50, graphql 60", n)
	}
}
