package changelensexporter

import (
	"fmt"
	"math"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/changelens/changelens/internal/eventspan"
	"github.com/changelens/changelens/testkit/eventspantest"
)

var testNow = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

func encodeOnce(td ptrace.Traces, retentionDays int) *encoder {
	e := &encoder{}
	e.reset(testNow, retentionDays)
	e.encode(td)
	return e
}

func TestEncodeLatencyFields(t *testing.T) {
	start := testNow.Add(-time.Hour).Add(123456789 * time.Nanosecond)
	td := ptrace.NewTraces()
	eventspantest.AppendLatency(td,
		eventspantest.Latency{Service: "checkout", Environment: "production", Version: "1.4.2",
			Operation: "GET /api/v1/items/{id}", Start: start, Duration: 1500 * time.Microsecond,
			HTTPStatus: 200, TraceID: eventspantest.TraceID(1), SpanID: eventspantest.SpanID(1)},
		eventspantest.Latency{Service: "checkout", Environment: "production", Version: "1.4.2",
			Operation: "POST /api/v1/orders", Start: start.Add(time.Second), Duration: 2 * time.Second,
			Error: true, HTTPStatus: 503, Weight: 4.5, TraceID: eventspantest.TraceID(2), SpanID: eventspantest.SpanID(2)},
		eventspantest.Latency{Service: "search", Environment: "staging",
			Operation: "search.Svc/Query", Start: start, Duration: 0,
			TraceID: eventspantest.TraceID(3), SpanID: eventspantest.SpanID(3)},
	)
	e := encodeOnce(td, 0)
	c := &e.lat
	if c.rows() != 3 || e.ignored != 0 || e.invalid != [numReasons]int64{} {
		t.Fatalf("rows=%d ignored=%d invalid=%v", c.rows(), e.ignored, e.invalid)
	}
	// Every column has one value per row.
	for name, n := range map[string]int{
		"environment": len(c.environment), "version": len(c.version), "operation": len(c.operation),
		"time": len(c.time), "start": len(c.startNs), "duration": len(c.durationNs), "is_error": len(c.isError),
		"http_status": len(c.httpStatus), "weight": len(c.weight), "trace_id": len(c.traceIDs) / 16, "span_id": len(c.spanIDs) / 8,
	} {
		if n != 3 {
			t.Errorf("column %s has %d rows", name, n)
		}
	}
	check := func(i int, service, env, version, op string, st time.Time, dur time.Duration, isErr uint8, status uint16, w float64, n uint64) {
		t.Helper()
		if c.service[i] != service || c.environment[i] != env || c.version[i] != version || c.operation[i] != op {
			t.Errorf("row %d strings = %q %q %q %q", i, c.service[i], c.environment[i], c.version[i], c.operation[i])
		}
		if c.time[i] != st.Unix() || c.startNs[i] != uint64(st.UnixNano()) || c.durationNs[i] != uint64(dur) {
			t.Errorf("row %d times = %d %d %d", i, c.time[i], c.startNs[i], c.durationNs[i])
		}
		if c.isError[i] != isErr || c.httpStatus[i] != status || c.weight[i] != w {
			t.Errorf("row %d is_error=%d status=%d weight=%v", i, c.isError[i], c.httpStatus[i], c.weight[i])
		}
		tid, sid := eventspantest.TraceID(n), eventspantest.SpanID(n)
		if string(c.traceIDs[i*16:i*16+16]) != string(tid[:]) || string(c.spanIDs[i*8:i*8+8]) != string(sid[:]) {
			t.Errorf("row %d ids differ", i)
		}
	}
	check(0, "checkout", "production", "1.4.2", "GET /api/v1/items/{id}", start, 1500*time.Microsecond, 0, 200, 1, 1)
	check(1, "checkout", "production", "1.4.2", "POST /api/v1/orders", start.Add(time.Second), 2*time.Second, 1, 503, 4.5, 2)
	check(2, "search", "staging", "", "search.Svc/Query", start, 0, 0, 0, 1, 3)
}

func TestEncodeHTTPStatusVariants(t *testing.T) {
	td := ptrace.NewTraces()
	eventspantest.AppendLatency(td, eventspantest.Latency{Service: "s", Environment: "e", Operation: "op",
		Start: testNow, Duration: time.Millisecond, TraceID: eventspantest.TraceID(1), SpanID: eventspantest.SpanID(1)})
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	base := spans.At(0)
	for _, tc := range []struct {
		name string
		set  func(s ptrace.Span)
		want uint16
	}{
		{"old int", func(s ptrace.Span) { s.Attributes().PutInt(eventspan.AttrHTTPStatusCodeOld, 404) }, 404},
		{"string", func(s ptrace.Span) { s.Attributes().PutStr(eventspan.AttrHTTPStatusCode, "502") }, 502},
		{"new wins over old", func(s ptrace.Span) {
			s.Attributes().PutInt(eventspan.AttrHTTPStatusCodeOld, 404)
			s.Attributes().PutInt(eventspan.AttrHTTPStatusCode, 201)
		}, 201},
		{"out of range", func(s ptrace.Span) { s.Attributes().PutInt(eventspan.AttrHTTPStatusCode, 70000) }, 0},
		{"negative", func(s ptrace.Span) { s.Attributes().PutInt(eventspan.AttrHTTPStatusCode, -1) }, 0},
		{"garbage string", func(s ptrace.Span) { s.Attributes().PutStr(eventspan.AttrHTTPStatusCode, "5xx") }, 0},
		{"double", func(s ptrace.Span) { s.Attributes().PutDouble(eventspan.AttrHTTPStatusCode, 200) }, 0},
	} {
		s := spans.AppendEmpty()
		base.CopyTo(s)
		tc.set(s)
		t.Run(tc.name, func(t *testing.T) {
			one := ptrace.NewTraces()
			td.ResourceSpans().At(0).Resource().CopyTo(one.ResourceSpans().AppendEmpty().Resource())
			ss := one.ResourceSpans().At(0).ScopeSpans().AppendEmpty()
			td.ResourceSpans().At(0).ScopeSpans().At(0).Scope().CopyTo(ss.Scope())
			s.CopyTo(ss.Spans().AppendEmpty())
			e := encodeOnce(one, 0)
			if e.lat.rows() != 1 || e.lat.httpStatus[0] != tc.want {
				t.Fatalf("rows=%d status=%v, want %d", e.lat.rows(), e.lat.httpStatus, tc.want)
			}
		})
	}
}

func TestEncodeInvalidAndIgnored(t *testing.T) {
	ok := eventspantest.Latency{Service: "s", Environment: "e", Version: "1", Operation: "op",
		Start: testNow.Add(-time.Minute), Duration: time.Millisecond,
		TraceID: eventspantest.TraceID(1), SpanID: eventspantest.SpanID(1)}
	mod := func(f func(l *eventspantest.Latency)) eventspantest.Latency { l := ok; f(&l); return l }

	td := ptrace.NewTraces()
	eventspantest.AppendLatency(td,
		ok,
		mod(func(l *eventspantest.Latency) { l.Service = "" }),                        // missing service
		mod(func(l *eventspantest.Latency) { l.Duration = -time.Second }),             // end < start
		mod(func(l *eventspantest.Latency) { l.Start = time.Unix(0, 0) }),             // zero time
		mod(func(l *eventspantest.Latency) { l.Start = testNow.Add(48 * time.Hour) }), // far future
		mod(func(l *eventspantest.Latency) { l.Start = testNow.AddDate(0, 0, -40) }),  // older than retention
		mod(func(l *eventspantest.Latency) { l.Weight = math.NaN() }),                 // bad weight
		mod(func(l *eventspantest.Latency) { l.Weight = -2 }),                         // bad weight
		mod(func(l *eventspantest.Latency) { l.Weight = math.Inf(1) }),                // bad weight
		mod(func(l *eventspantest.Latency) { l.Start = testNow.Add(23 * time.Hour) }), // clock skew: accepted
		mod(func(l *eventspantest.Latency) { l.Start = testNow.AddDate(0, 0, -29) }),  // within retention
	)
	eventspantest.AppendDeployment(td,
		eventspantest.Deployment{Service: "s", Environment: "e", Version: "2", DeployTime: testNow}, // no id
	)
	eventspantest.AppendForeign(td, 5)
	// A changelens scope with an unknown event type is not an event either.
	rs := td.ResourceSpans().AppendEmpty()
	ss := rs.ScopeSpans().AppendEmpty()
	eventspan.MarkScope(ss.Scope(), "metrics")
	ss.Spans().AppendEmpty()

	e := encodeOnce(td, 30)
	if e.lat.rows() != 3 {
		t.Errorf("latency rows = %d, want 3", e.lat.rows())
	}
	if e.dep.rows() != 0 {
		t.Errorf("deployment rows = %d, want 0", e.dep.rows())
	}
	if e.ignored != 6 {
		t.Errorf("ignored = %d, want 6", e.ignored)
	}
	want := [numReasons]int64{rMissingService: 1, rInvalidTimestamps: 2, rFutureTimestamp: 1, rExpired: 1, rInvalidWeight: 3, rMissingID: 1}
	if e.invalid != want {
		t.Errorf("invalid = %v, want %v", e.invalid, want)
	}
}

// A processor configured to keep non-entry spans marks events per span.
func TestEncodeSpanLevelMarking(t *testing.T) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr(eventspan.AttrServiceName, "api")
	rs.Resource().Attributes().PutStr(eventspan.AttrDeploymentEnvironmentOld, "prod")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("net/http")
	entry := ss.Spans().AppendEmpty()
	entry.SetName("GET /")
	entry.SetStartTimestamp(pcommon.NewTimestampFromTime(testNow))
	entry.SetEndTimestamp(pcommon.NewTimestampFromTime(testNow.Add(time.Millisecond)))
	entry.SetTraceID(eventspantest.TraceID(9))
	entry.SetSpanID(eventspantest.SpanID(9))
	eventspan.MarkLatencySpan(entry)
	ss.Spans().AppendEmpty().SetName("db query") // not an event

	e := encodeOnce(td, 0)
	if e.lat.rows() != 1 || e.ignored != 1 {
		t.Fatalf("rows=%d ignored=%d", e.lat.rows(), e.ignored)
	}
	if e.lat.service[0] != "api" || e.lat.environment[0] != "prod" {
		t.Errorf("unit = %q/%q (deprecated deployment.environment must be read)", e.lat.service[0], e.lat.environment[0])
	}
}

func TestEncodeDeploymentFields(t *testing.T) {
	d := eventspantest.Deployment{
		ID: "0123456789abcdef0123456789abcdef", Service: "checkout", Environment: "production",
		Version: "1.5.0", PreviousVersion: "1.4.2", Source: eventspan.SourceExplicit, Status: eventspan.StatusSucceeded,
		RolloutStart: testNow.Add(-10 * time.Minute), DeployTime: testNow.Add(-5 * time.Minute),
		CommitSHA: "abc123", CommitTime: testNow.Add(-3 * time.Hour), RollbackCandidate: true,
		ExternalID: "gh-42", PipelineName: "deploy-prod", PipelineRunID: "9001",
		TraceID: eventspantest.TraceID(5), SpanID: eventspantest.SpanID(5),
	}
	failed := d
	failed.ID, failed.Status, failed.Source, failed.CommitTime, failed.RollbackCandidate = "ffffffffffffffffffffffffffffffff", eventspan.StatusFailed, eventspan.SourceInferred, time.Time{}, false
	failed.SupersededBy = d.ID
	td := ptrace.NewTraces()
	eventspantest.AppendDeployment(td, d, failed)

	e := encodeOnce(td, 30)
	c := &e.dep
	if c.rows() != 2 || e.lat.rows() != 0 || e.ignored != 0 {
		t.Fatalf("dep rows=%d lat rows=%d ignored=%d invalid=%v", c.rows(), e.lat.rows(), e.ignored, e.invalid)
	}
	if c.id[0] != d.ID || c.service[0] != "checkout" || c.environment[0] != "production" || c.version[0] != "1.5.0" ||
		c.previousVersion[0] != "1.4.2" || c.source[0] != "explicit" || c.status[0] != "succeeded" ||
		c.commitSHA[0] != "abc123" || c.externalID[0] != "gh-42" || c.pipelineName[0] != "deploy-prod" ||
		c.pipelineRunID[0] != "9001" || c.supersededBy[0] != "" {
		t.Errorf("strings: %+v", c)
	}
	if c.rolloutStart[0] != d.RolloutStart.Unix() || c.rolloutStartNs[0] != uint64(d.RolloutStart.UnixNano()) ||
		c.deployTime[0] != d.DeployTime.Unix() || c.deployTimeNs[0] != uint64(d.DeployTime.UnixNano()) ||
		c.commitTime[0] != d.CommitTime.Unix() || c.commitTimeNs[0] != uint64(d.CommitTime.UnixNano()) ||
		c.rollbackCandidate[0] != 1 || c.observedTime[0] != testNow.Unix() {
		t.Errorf("times/flags: %+v", c)
	}
	tid := eventspantest.TraceID(5)
	if string(c.traceIDs[:16]) != string(tid[:]) {
		t.Error("trace id")
	}
	if c.status[1] != "failed" || c.commitTime[1] != 0 || c.commitTimeNs[1] != 0 || c.rollbackCandidate[1] != 0 ||
		c.supersededBy[1] != d.ID {
		t.Errorf("second row: status=%q commit=%d/%d rb=%d sup=%q", c.status[1], c.commitTime[1], c.commitTimeNs[1], c.rollbackCandidate[1], c.supersededBy[1])
	}
	if c.ver[1] < c.ver[0] {
		t.Error("a superseded row must outrank every other row")
	}
}

func TestEncodeDeploymentFallsBackToResource(t *testing.T) {
	td := ptrace.NewTraces()
	eventspantest.AppendDeployment(td, eventspantest.Deployment{ID: "aa", Service: "svc", Environment: "env", Version: "v9",
		Source: eventspan.SourceInferred, RolloutStart: testNow, DeployTime: testNow})
	attrs := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes()
	attrs.Remove(eventspan.AttrServiceName)
	attrs.Remove(eventspan.AttrDeploymentEnvironment)
	attrs.Remove(eventspan.AttrServiceVersion)
	e := encodeOnce(td, 0)
	if e.dep.rows() != 1 || e.dep.service[0] != "svc" || e.dep.environment[0] != "env" || e.dep.version[0] != "v9" {
		t.Fatalf("rows=%d %+v", e.dep.rows(), e.dep)
	}
}

func TestDeploymentVerOrder(t *testing.T) {
	t0 := testNow.Unix()
	type row struct {
		name                 string
		superseded, explicit bool
		deploy, rollout      int64
	}
	// Strictly increasing preference.
	rows := []row{
		{"inferred, later", false, false, t0 + 60, t0 + 60},
		{"inferred, earlier deploy", false, false, t0, t0},
		{"inferred, same deploy, earlier rollout", false, false, t0, t0 - 30},
		{"explicit, late", false, true, t0 + 3600, t0 + 3000},
		{"explicit, earlier", false, true, t0 + 1800, t0 + 1700},
		{"superseded inferred", true, false, t0 + 7200, t0 + 7200},
	}
	for i := 1; i < len(rows); i++ {
		a, b := rows[i-1], rows[i]
		va := deploymentVer(a.superseded, a.explicit, a.deploy, a.rollout)
		vb := deploymentVer(b.superseded, b.explicit, b.deploy, b.rollout)
		if !(vb > va) {
			t.Errorf("%q (%d) should outrank %q (%d)", b.name, vb, a.name, va)
		}
	}
	// Out-of-range inputs saturate instead of wrapping.
	if deploymentVer(false, false, -5, 10) != deploymentVer(false, false, 0, 0) {
		t.Error("negative times must clamp")
	}
}

func TestEncodeReuseDoesNotAllocate(t *testing.T) {
	td := benchTraces(2000, 20)
	e := &encoder{}
	e.reset(testNow, 30)
	e.encode(td)
	allocs := testing.AllocsPerRun(20, func() {
		e.release()
		e.reset(testNow, 30)
		e.encode(td)
	})
	if allocs != 0 {
		t.Fatalf("encode allocates %.1f times per batch once warmed up", allocs)
	}
	if e.lat.rows() != 2000 || e.call.rows() != 2000 {
		t.Fatalf("rows = %d latency, %d calls", e.lat.rows(), e.call.rows())
	}
}

func TestEncodeCallFields(t *testing.T) {
	start := testNow.Add(-time.Hour).Add(123456789 * time.Nanosecond).UnixNano()
	web := eventspan.Resource{Service: "web", Environment: "production", Version: "7"}
	td := ptrace.NewTraces()
	eventspan.AppendCall(td,
		eventspan.Call{Resource: web, Operation: "GET", Peer: "checkout", Start: start, End: start + 1500e3, Error: true, Weight: 2.5,
			TraceID: eventspantest.TraceID(1), SpanID: eventspantest.SpanID(1)},
		eventspan.Call{Resource: eventspan.Resource{Service: "worker", Environment: "staging"}, Operation: "publish", Start: start, End: start,
			Weight: 1, TraceID: eventspantest.TraceID(2), SpanID: eventspantest.SpanID(2)},
	)
	e := encodeOnce(td, 30)
	c := &e.call
	if c.rows() != 2 || e.lat.rows() != 0 || e.ignored != 0 || e.invalid != [numReasons]int64{} {
		t.Fatalf("call rows=%d latency rows=%d ignored=%d invalid=%v", c.rows(), e.lat.rows(), e.ignored, e.invalid)
	}
	for name, n := range map[string]int{
		"environment": len(c.environment), "version": len(c.version), "operation": len(c.operation), "peer": len(c.peer),
		"time": len(c.time), "start": len(c.startNs), "duration": len(c.durationNs), "is_error": len(c.isError),
		"weight": len(c.weight), "trace_id": len(c.traceIDs) / 16, "span_id": len(c.spanIDs) / 8,
	} {
		if n != 2 {
			t.Errorf("column %s has %d rows", name, n)
		}
	}
	if c.service[0] != "web" || c.environment[0] != "production" || c.version[0] != "7" || c.operation[0] != "GET" || c.peer[0] != "checkout" ||
		c.time[0] != start/1e9 || c.startNs[0] != uint64(start) || c.durationNs[0] != 1500e3 || c.isError[0] != 1 || c.weight[0] != 2.5 {
		t.Errorf("row 0: %+v", c)
	}
	if c.service[1] != "worker" || c.version[1] != "" || c.peer[1] != "" || c.isError[1] != 0 || c.durationNs[1] != 0 || c.weight[1] != 1 {
		t.Errorf("row 1: %+v", c)
	}
	tid, sid := eventspantest.TraceID(2), eventspantest.SpanID(2)
	if string(c.traceIDs[16:32]) != string(tid[:]) || string(c.spanIDs[8:16]) != string(sid[:]) {
		t.Error("row 1 ids differ")
	}
}

// Calls are held to the latency events' rules.
func TestEncodeInvalidCalls(t *testing.T) {
	ok := eventspan.Call{Resource: eventspan.Resource{Service: "s", Environment: "e"}, Operation: "GET",
		Start: testNow.Add(-time.Minute).UnixNano(), End: testNow.UnixNano(), Weight: 1}
	mod := func(f func(c *eventspan.Call)) eventspan.Call { c := ok; f(&c); return c }
	td := ptrace.NewTraces()
	eventspan.AppendCall(td,
		ok,
		mod(func(c *eventspan.Call) { c.Service = "" }),
		mod(func(c *eventspan.Call) { c.End = c.Start - 1 }),
		mod(func(c *eventspan.Call) { c.Start, c.End = 0, 0 }),
		mod(func(c *eventspan.Call) {
			c.Start, c.End = testNow.Add(48*time.Hour).UnixNano(), testNow.Add(49*time.Hour).UnixNano()
		}),
		mod(func(c *eventspan.Call) { c.Start = testNow.AddDate(0, 0, -40).UnixNano() }),
		mod(func(c *eventspan.Call) { c.Weight = math.NaN() }),
		mod(func(c *eventspan.Call) { c.Weight = 0 }),
	)
	e := encodeOnce(td, 30)
	if e.call.rows() != 1 {
		t.Errorf("call rows = %d, want 1", e.call.rows())
	}
	want := [numReasons]int64{rMissingService: 1, rInvalidTimestamps: 2, rFutureTimestamp: 1, rExpired: 1, rInvalidWeight: 2}
	if e.invalid != want {
		t.Errorf("invalid = %v, want %v", e.invalid, want)
	}
}

// In a latency scope (how the processor emits a unit's events) a CLIENT or
// PRODUCER span is a call and a SERVER span a latency event, unless the
// client span is itself marked a latency event (client as an entry kind); in
// a user scope (keep_non_entry_spans) each event is marked and the rest is
// ignored. Latency events keep their parent span ID.
func TestEncodeKindResolution(t *testing.T) {
	td := ptrace.NewTraces()
	entry := eventspan.Latency{Resource: eventspan.Resource{Service: "web", Environment: "prod", Version: "1"}, Operation: "GET /",
		Start: testNow.UnixNano(), End: testNow.Add(time.Millisecond).UnixNano(), Weight: 1,
		TraceID: eventspantest.TraceID(1), SpanID: eventspantest.SpanID(1), ParentSpanID: eventspantest.SpanID(7),
		ResponseSize: eventspan.NoSize, RequestSize: eventspan.NoSize}
	eventspan.AppendLatency(td, entry)
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	clientEntry := spans.AppendEmpty()
	spans.At(0).CopyTo(clientEntry)
	clientEntry.SetKind(ptrace.SpanKindClient)
	clientEntry.SetSpanID(eventspantest.SpanID(2))
	clientEntry.SetParentSpanID(pcommon.SpanID{})
	eventspan.MarkLatencySpan(clientEntry)
	callSpan := spans.AppendEmpty()
	spans.At(0).CopyTo(callSpan)
	callSpan.SetKind(ptrace.SpanKindClient)
	callSpan.SetName("GET")
	callSpan.SetSpanID(eventspantest.SpanID(3))
	callSpan.Attributes().PutStr("peer.service", "checkout")
	producer := spans.AppendEmpty()
	callSpan.CopyTo(producer)
	producer.SetKind(ptrace.SpanKindProducer)
	producer.SetSpanID(eventspantest.SpanID(4))

	// A processor keeping non-entry spans: a user scope, marked per span.
	ss := td.ResourceSpans().At(0).ScopeSpans().AppendEmpty()
	ss.Scope().SetName("net/http")
	marked := ss.Spans().AppendEmpty()
	callSpan.CopyTo(marked)
	marked.SetSpanID(eventspantest.SpanID(5))
	eventspan.MarkCallSpan(marked)
	unmarked := ss.Spans().AppendEmpty()
	callSpan.CopyTo(unmarked) // a CLIENT span the processor did not mark: not an event
	unmarked.SetSpanID(eventspantest.SpanID(6))

	e := encodeOnce(td, 0)
	if e.lat.rows() != 2 || e.call.rows() != 3 || e.ignored != 1 {
		t.Fatalf("latency rows=%d call rows=%d ignored=%d", e.lat.rows(), e.call.rows(), e.ignored)
	}
	parent := eventspantest.SpanID(7)
	if string(e.lat.parentSpanIDs) != string(parent[:])+string(make([]byte, 8)) {
		t.Errorf("parent span ids = %x", e.lat.parentSpanIDs)
	}
	for i, op := range e.call.operation {
		if op != "GET" || e.call.peer[i] != "checkout" || e.call.service[i] != "web" {
			t.Errorf("call %d: %q %q %q", i, e.call.service[i], op, e.call.peer[i])
		}
	}
	var ids []byte
	for _, n := range []uint64{3, 4, 5} {
		id := eventspantest.SpanID(n)
		ids = append(ids, id[:]...)
	}
	if string(e.call.spanIDs) != string(ids) {
		t.Errorf("call span ids = %x, want %x", e.call.spanIDs, ids)
	}
}

// keep compacts every column of both span tables alike.
func TestSpanRowsKeep(t *testing.T) {
	td := benchTraces(50, 2)
	e := encodeOnce(td, 30)
	keep := make([]bool, 50)
	for i := range keep {
		keep[i] = i%3 == 1
	}
	for _, c := range []struct {
		name string
		rows spanRows
		// row returns row i of every column, as one string
		row func(i int) string
	}{
		{"latency", &e.lat, func(i int) string {
			c := &e.lat
			return fmt.Sprint(c.service[i], c.environment[i], c.version[i], c.operation[i], c.time[i], c.startNs[i], c.durationNs[i],
				c.isError[i], c.httpStatus[i], c.weight[i], c.traceIDs[16*i:16*i+16], c.spanIDs[8*i:8*i+8], c.cohortKeys[i],
				c.cohortValues[i], c.responseSize[i], c.requestSize[i], c.parentSpanIDs[8*i:8*i+8])
		}},
		{"call", &e.call, func(i int) string {
			c := &e.call
			return fmt.Sprint(c.service[i], c.environment[i], c.version[i], c.operation[i], c.peer[i], c.time[i], c.startNs[i],
				c.durationNs[i], c.isError[i], c.weight[i], c.traceIDs[16*i:16*i+16], c.spanIDs[8*i:8*i+8])
		}},
	} {
		if c.rows.rows() != len(keep) {
			t.Fatalf("%s: %d rows", c.name, c.rows.rows())
		}
		var want []string
		for i, k := range keep {
			if k {
				want = append(want, c.row(i))
			}
		}
		c.rows.keep(keep)
		times, tids, sids := c.rows.spans()
		if c.rows.rows() != len(want) || len(times) != len(want) || len(tids) != 16*len(want) || len(sids) != 8*len(want) {
			t.Fatalf("%s: %d rows after keep, want %d", c.name, c.rows.rows(), len(want))
		}
		for i, w := range want {
			if got := c.row(i); got != w {
				t.Errorf("%s row %d = %s, want %s", c.name, i, got, w)
			}
		}
	}
}

// benchTraces builds a realistic processor output batch: n latency events
// spread over `resources` service instances (a few versions, operations,
// errors, sampled weights), each entry span making one call (a call event in
// its unit's latency scope, with a client span's attributes) and, but a
// unit's first, the child of the previous one's call; plus a deployment
// event per 1000 latency events.
func benchTraces(n, resources int) ptrace.Traces {
	td := ptrace.NewTraces()
	ops := []string{"GET /api/v1/items/{id}", "POST /api/v1/orders", "GET /healthz", "checkout.Cart/AddItem", "GET /api/v1/search"}
	per := n / resources
	base := testNow.Add(-10 * time.Minute)
	k := 0
	for r := 0; r < resources; r++ {
		evs := make([]eventspantest.Latency, 0, per)
		for i := 0; i < per; i++ {
			k++
			ev := eventspantest.Latency{
				Service:     fmt.Sprintf("service-%02d", r%10),
				Environment: "production",
				Version:     fmt.Sprintf("1.%d.0", r%3),
				Operation:   ops[k%len(ops)],
				Start:       base.Add(time.Duration(k) * time.Millisecond),
				Duration:    time.Duration(1+k%250) * time.Millisecond,
				HTTPStatus:  200,
				TraceID:     eventspantest.TraceID(uint64(k)),
				SpanID:      eventspantest.SpanID(uint64(k)),
			}
			if k%50 == 0 {
				ev.Error, ev.HTTPStatus = true, 500
			}
			if r%4 == 0 {
				ev.Weight = 4
			}
			evs = append(evs, ev)
		}
		eventspantest.AppendLatency(td, evs...)
		rss := td.ResourceSpans()
		rs := rss.At(rss.Len() - 1)
		spans := rs.ScopeSpans().At(0).Spans()
		res := eventspan.ReadResource(rs.Resource().Attributes())
		calls := ptrace.NewTraces()
		for i, ev := range evs {
			if i > 0 {
				spans.At(i).SetParentSpanID(benchCallSpanID(evs[i-1].SpanID))
			}
			eventspan.AppendCall(calls, eventspan.Call{Resource: res, Operation: "GET", Peer: "inventory",
				Start: ev.Start.Add(time.Millisecond).UnixNano(), End: ev.Start.Add(ev.Duration).UnixNano(),
				Error: ev.Error, Weight: max(ev.Weight, 1), TraceID: ev.TraceID, SpanID: benchCallSpanID(ev.SpanID)})
		}
		for _, crs := range calls.ResourceSpans().All() {
			s := spans.AppendEmpty()
			crs.ScopeSpans().At(0).Spans().At(0).CopyTo(s)
			a := s.Attributes()
			a.PutStr("http.request.method", "GET")
			a.PutStr("url.full", "http://inventory:8080/api/v1/stock/12345")
			a.PutStr("server.address", "inventory")
			a.PutInt("server.port", 8080)
			a.PutInt("http.response.status_code", 200)
		}
	}
	for i := 0; i < n/1000; i++ {
		eventspantest.AppendDeployment(td, eventspantest.Deployment{
			ID: fmt.Sprintf("%032x", i+1), Service: fmt.Sprintf("service-%02d", i%10), Environment: "production",
			Version: "1.9.0", PreviousVersion: "1.8.0", Source: eventspan.SourceInferred,
			RolloutStart: base, DeployTime: base.Add(time.Minute),
			TraceID: eventspantest.TraceID(uint64(i + 1)), SpanID: eventspantest.SpanID(uint64(i + 1)),
		})
	}
	return td
}

// benchCallSpanID is the span ID of the call benchTraces makes from the entry
// span whose ID is entry.
func benchCallSpanID(entry pcommon.SpanID) pcommon.SpanID {
	entry[0] ^= 0xff
	return entry
}

// BenchmarkEncode measures row encoding (pdata -> column slices) per event.
// docs/performance.md target: <= 300 ns per event (contrib clickhouseexporter ≈ 1.8 µs per span).
func BenchmarkEncode(b *testing.B) {
	for _, n := range []int{1000, 8192, 50000} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			td := benchTraces(n, 20)
			e := &encoder{}
			e.reset(testNow, 30)
			e.encode(td)
			events := e.lat.rows() + e.dep.rows() + e.call.rows()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				e.release()
				e.reset(testNow, 30)
				e.encode(td)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*events), "ns/event")
			b.ReportMetric(0, "ns/op")
		})
	}
}
