package eventspan

import (
	"math"
	"reflect"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

func TestDeploymentRoundTrip(t *testing.T) {
	for _, d := range []Deployment{
		{
			ID: "0123456789abcdef0123456789abcdef", Resource: Resource{"checkout", "production", "1.5.0"},
			Source: Explicit, RolloutStart: 1_700_000_000_000_000_000, DeployTime: 1_700_000_180_000_000_000,
			CommitSHA: "c0ffee", CommitTime: 1_699_990_000_000_000_000, ExternalID: "42", PipelineName: "deploy",
			PipelineRunID: "7", Rework: ReworkHotfix, TraceID: pcommon.TraceID{1}, SpanID: pcommon.SpanID{2},
		},
		{
			ID: "fedcba9876543210fedcba9876543210", Resource: Resource{"cart", "staging", "2"}, Source: Inferred,
			Failed: true, RolloutStart: 5e18, DeployTime: 5e18, PreviousVersion: "1", RollbackCandidate: true,
			SupersededBy: "0123456789abcdef0123456789abcdef", TraceID: pcommon.TraceID{3}, SpanID: pcommon.SpanID{4},
		},
	} {
		td := ptrace.NewTraces()
		AppendDeployment(td, d)
		rs := td.ResourceSpans().At(0)
		ss := rs.ScopeSpans().At(0)
		if k := ScopeKind(ss.Scope()); k != KindDeployment {
			t.Fatalf("scope kind %d", k)
		}
		got := DecodeDeployment(ReadResource(rs.Resource().Attributes()), ss.Spans().At(0))
		if got != d {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, d)
		}
	}
}

func TestLatencyRoundTrip(t *testing.T) {
	in := []Latency{
		{Resource: Resource{"api", "prod", "3"}, Operation: "GET /x", Start: 10, End: 30, HTTPStatus: 200, Weight: 1,
			TraceID: pcommon.TraceID{1}, SpanID: pcommon.SpanID{1}, ParentSpanID: pcommon.SpanID{9}, ResponseSize: 0, RequestSize: 512,
			Cohorts: []Cohort{{"feature_flag.new-checkout", "on"}, {"attribute.api.protocol", "grpc"}}},
		{Resource: Resource{"api", "prod", "3"}, Operation: "GET /y", Start: 11, End: 12, Error: true, HTTPStatus: 503,
			Weight: 4.5, TraceID: pcommon.TraceID{2}, SpanID: pcommon.SpanID{2}, ResponseSize: 1 << 40, RequestSize: NoSize,
			ErrorKind: "java.lang.NullPointerException"},
		{Resource: Resource{"db", "prod", ""}, Operation: "q", Start: 1, End: 2, Weight: 1,
			TraceID: pcommon.TraceID{3}, SpanID: pcommon.SpanID{3}, ResponseSize: NoSize, RequestSize: NoSize},
	}
	td := ptrace.NewTraces()
	AppendLatency(td, in...)
	if n := td.ResourceSpans().Len(); n != 2 {
		t.Fatalf("%d resources, want 2 (one per unit and version)", n)
	}
	var got []Latency
	for _, rs := range td.ResourceSpans().All() {
		res := ReadResource(rs.Resource().Attributes())
		for _, ss := range rs.ScopeSpans().All() {
			if ScopeKind(ss.Scope()) != KindLatency {
				t.Fatal("scope not marked latency")
			}
			for _, s := range ss.Spans().All() {
				got = append(got, DecodeLatency(res, s))
			}
		}
	}
	for i := range in {
		if !reflect.DeepEqual(got[i], in[i]) {
			t.Errorf("event %d:\n got %+v\nwant %+v", i, got[i], in[i])
		}
	}
}

// What other writers send: the deprecated environment name, the older
// status attribute, statuses as strings, weights that are not numbers.
func TestDecodeTolerates(t *testing.T) {
	attrs := pcommon.NewMap()
	attrs.PutStr(AttrServiceName, "api")
	attrs.PutStr(AttrDeploymentEnvironmentOld, "legacy")
	if r := ReadResource(attrs); r.Environment != "legacy" {
		t.Errorf("environment %q, want the deprecated attribute's", r.Environment)
	}
	s := ptrace.NewSpan()
	s.Attributes().PutStr(AttrHTTPStatusCodeOld, "404")
	s.Attributes().PutStr(AttrWeight, "2")
	s.Attributes().PutStr(AttrHTTPResponseBodySize, "1500")
	s.Attributes().PutInt(AttrHTTPRequestBodySize, -3)
	s.Attributes().PutInt(AttrCohortPrefix+"feature_flag.x", 1) // not a string: not a cohort
	s.Attributes().PutInt(AttrErrorKind, 5)                     // not a string: no kind
	l := DecodeLatency(Resource{}, s)
	if l.HTTPStatus != 404 || !math.IsNaN(l.Weight) {
		t.Errorf("status %d weight %v, want 404 and NaN", l.HTTPStatus, l.Weight)
	}
	if l.ErrorKind != "" {
		t.Errorf("error kind %q from an int, want none", l.ErrorKind)
	}
	if l.ResponseSize != 1500 || l.RequestSize != NoSize || l.Cohorts != nil {
		t.Errorf("sizes %d/%d cohorts %v, want 1500 (a decimal string), NoSize (negative), none", l.ResponseSize, l.RequestSize, l.Cohorts)
	}
	s.Attributes().PutDouble(AttrHTTPResponseBodySize, 2048.7)
	if l := DecodeLatency(Resource{}, s); l.ResponseSize != 2048 {
		t.Errorf("size %d from a double, want 2048", l.ResponseSize)
	}
	s.Attributes().PutInt(AttrHTTPStatusCode, 70000)
	if l := DecodeLatency(Resource{}, s); l.HTTPStatus != 0 {
		t.Errorf("out-of-range status %d, want 0 (the current attribute wins over the older one)", l.HTTPStatus)
	}
	// A deployment span without a status attribute follows its span status.
	d := ptrace.NewSpan()
	d.Status().SetCode(ptrace.StatusCodeError)
	if !DecodeDeployment(Resource{}, d).Failed {
		t.Error("span status ERROR without deployment.status: not failed")
	}
}

func TestMarkScopeIsIdempotent(t *testing.T) {
	sc := pcommon.NewInstrumentationScope()
	sc.SetName("io.opentelemetry.http")
	sc.Attributes().PutStr("x", "y")
	MarkScope(sc, EventLatency)
	MarkScope(sc, EventLatency)
	if sc.Name() != ScopeName || sc.Version() != SchemaVersion || sc.Attributes().Len() != 1 || ScopeKind(sc) != KindLatency {
		t.Errorf("scope %s %s %v", sc.Name(), sc.Version(), sc.Attributes().AsRaw())
	}
	s := ptrace.NewSpan()
	if SpanKind(s) != KindNone {
		t.Error("an unmarked span has a kind")
	}
	MarkLatencySpan(s)
	if SpanKind(s) != KindLatency {
		t.Error("MarkLatencySpan did not mark")
	}
}

func TestCallRoundTrip(t *testing.T) {
	in := []Call{
		{Resource: Resource{"web", "prod", "7"}, Operation: "GET", Peer: "checkout", Start: 10, End: 40, Error: true,
			Weight: 2, TraceID: pcommon.TraceID{1}, SpanID: pcommon.SpanID{5}},
		{Resource: Resource{"web", "prod", "7"}, Operation: "publish", Start: 11, End: 12, Weight: 1,
			TraceID: pcommon.TraceID{2}, SpanID: pcommon.SpanID{6}},
	}
	td := ptrace.NewTraces()
	AppendCall(td, in...)
	var got []Call
	for _, rs := range td.ResourceSpans().All() {
		res := ReadResource(rs.Resource().Attributes())
		for _, ss := range rs.ScopeSpans().All() {
			for _, s := range ss.Spans().All() {
				if k := EventKind(ScopeKind(ss.Scope()), s); k != KindCall {
					t.Fatalf("kind %d, want call", k)
				}
				got = append(got, DecodeCall(res, s))
			}
		}
	}
	if !reflect.DeepEqual(got, in) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, in)
	}
}

// The peer is the most specific name the span carries, whatever the order
// of its attributes.
func TestDecodeCallPeer(t *testing.T) {
	for _, tc := range []struct {
		attrs map[string]any
		want  string
	}{
		{map[string]any{"server.address": "10.0.0.7", "peer.service": "payments"}, "payments"},
		{map[string]any{"db.system": "postgresql", "server.address": "db-1"}, "db-1"},
		{map[string]any{"db.system.name": "redis", "db.system": "redis-old"}, "redis"},
		{map[string]any{"messaging.system": "kafka", "peer.service": ""}, "kafka"},
		{map[string]any{"http.request.method": "GET"}, ""},
	} {
		s := ptrace.NewSpan()
		if err := s.Attributes().FromRaw(tc.attrs); err != nil {
			t.Fatal(err)
		}
		if got := DecodeCall(Resource{}, s).Peer; got != tc.want {
			t.Errorf("%v: peer %q, want %q", tc.attrs, got, tc.want)
		}
	}
}

// In a latency scope an unmarked CLIENT span is a call and a marked one a
// latency event (client configured as an entry kind); in an unmarked scope
// only marks count.
func TestEventKind(t *testing.T) {
	client := ptrace.NewSpan()
	client.SetKind(ptrace.SpanKindClient)
	if k := EventKind(KindLatency, client); k != KindCall {
		t.Errorf("unmarked client span in a latency scope: kind %d, want call", k)
	}
	if k := EventKind(KindNone, client); k != KindNone {
		t.Errorf("unmarked span in an unmarked scope: kind %d", k)
	}
	MarkCallSpan(client)
	if k := EventKind(KindNone, client); k != KindCall {
		t.Errorf("marked call in an unmarked scope: kind %d", k)
	}
	entry := ptrace.NewSpan()
	entry.SetKind(ptrace.SpanKindClient)
	MarkLatencySpan(entry)
	if k := EventKind(KindLatency, entry); k != KindLatency {
		t.Errorf("client span marked latency in a latency scope: kind %d", k)
	}
	server := ptrace.NewSpan()
	server.SetKind(ptrace.SpanKindServer)
	if k := EventKind(KindLatency, server); k != KindLatency {
		t.Errorf("server span in a latency scope: kind %d", k)
	}
	if k := EventKind(KindDeployment, client); k != KindDeployment {
		t.Errorf("client span in a deployment scope: kind %d", k)
	}
}

func TestIncidentRoundTrip(t *testing.T) {
	for _, in := range []Incident{
		{
			ID: "pagerduty:Q1ABC", Resource: Resource{Service: "checkout", Environment: "production"},
			Source: IncidentSourcePagerDuty, Severity: "P1", Title: "Checkout button does nothing",
			Opened: 1_700_000_000_000_000_000, DeploymentID: "0123456789abcdef0123456789abcdef",
			TraceID: pcommon.TraceID{1}, SpanID: pcommon.SpanID{2},
		},
		{
			ID: "alertmanager:5e1c0a7f", Resource: Resource{Service: "cart", Environment: "staging"},
			Source: IncidentSourceAlertmanager, Resolved: true, Severity: "critical",
			Opened: 1_700_000_000_000_000_000, ResolvedAt: 1_700_000_900_000_000_000,
			TraceID: pcommon.TraceID{3}, SpanID: pcommon.SpanID{4},
		},
	} {
		td := ptrace.NewTraces()
		AppendIncident(td, in)
		rs := td.ResourceSpans().At(0)
		ss := rs.ScopeSpans().At(0)
		if k := ScopeKind(ss.Scope()); k != KindIncident {
			t.Fatalf("scope kind %d", k)
		}
		span := ss.Spans().At(0)
		if k := EventKind(KindIncident, span); k != KindIncident {
			t.Fatalf("event kind %d", k)
		}
		got := DecodeIncident(ReadResource(rs.Resource().Attributes()), span)
		if got != in {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, in)
		}
	}
}

// An open incident has no resolution whatever its span's end says, and a
// resolution before the opening is the opening.
func TestDecodeIncidentTimes(t *testing.T) {
	td := ptrace.NewTraces()
	AppendIncident(td, Incident{ID: "x", Resource: Resource{Service: "a", Environment: "p"}, Opened: 100})
	span := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	span.SetEndTimestamp(500)
	if got := DecodeIncident(Resource{}, span); got.Resolved || got.ResolvedAt != 0 {
		t.Errorf("open: %+v", got)
	}
	span.Attributes().PutStr(AttrIncidentStatus, IncidentResolved)
	span.SetEndTimestamp(50)
	if got := DecodeIncident(Resource{}, span); !got.Resolved || got.ResolvedAt != 100 {
		t.Errorf("resolved before opened: %+v", got)
	}
}

func TestCommitRoundTrip(t *testing.T) {
	for _, c := range []Commit{
		{
			Service: "Hello-World", Repository: "Codertocat/Hello-World", SHA: "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
			Time: 1_557_933_641_000_000_000, Pushed: 1_557_933_657_000_000_000, Ref: "refs/tags/simple-tag",
			TraceID: pcommon.TraceID{5}, SpanID: pcommon.SpanID{6},
		},
		// unknown push time and ref; a commit time after the push (a
		// committer's clock ahead) keeps both
		{
			Service: "cart", Repository: "shop/cart", SHA: "0123456789abcdef0123456789abcdef01234567",
			Time: 1_700_000_900_000_000_000, TraceID: pcommon.TraceID{7}, SpanID: pcommon.SpanID{8},
		},
		{
			Service: "cart", Repository: "shop/cart", SHA: "89abcdef0123456789abcdef0123456789abcdef",
			Time: 1_700_000_900_000_000_000, Pushed: 1_700_000_000_000_000_000, Ref: "refs/heads/main",
		},
	} {
		td := ptrace.NewTraces()
		AppendCommit(td, c)
		rs := td.ResourceSpans().At(0)
		ss := rs.ScopeSpans().At(0)
		if k := ScopeKind(ss.Scope()); k != KindCommit {
			t.Fatalf("scope kind %d", k)
		}
		span := ss.Spans().At(0)
		if k := EventKind(KindCommit, span); k != KindCommit {
			t.Fatalf("event kind %d", k)
		}
		if span.EndTimestamp() < span.StartTimestamp() {
			t.Errorf("span ends before it starts: %v < %v", span.EndTimestamp(), span.StartTimestamp())
		}
		got := DecodeCommit(ReadResource(rs.Resource().Attributes()), span)
		if got != c {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, c)
		}
	}
}
