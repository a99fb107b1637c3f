package changelensprocessor

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/changelens/changelens/internal/eventspan"
)

func TestOperationNaming(t *testing.T) {
	tests := []struct {
		name  string
		span  string
		attrs map[string]any
		want  string
	}{
		{"http method and route", "GET", map[string]any{"http.request.method": "GET", "http.route": "/users/{id}"}, "GET /users/{id}"},
		{"already conventional name kept", "POST /orders", map[string]any{"http.request.method": "POST", "http.route": "/orders"}, "POST /orders"},
		{"old http.method with route", "HTTP GET", map[string]any{"http.method": "GET", "http.route": "/a"}, "GET /a"},
		{"method without route falls back to span name", "GET", map[string]any{"http.request.method": "GET"}, "GET"},
		{"rpc service and method", "grpc call", map[string]any{"rpc.service": "shop.Cart", "rpc.method": "Add"}, "shop.Cart/Add"},
		{"http wins over rpc", "x", map[string]any{"rpc.service": "S", "rpc.method": "M", "http.request.method": "PUT", "http.route": "/r"}, "PUT /r"},
		{"rpc service without method falls back", "process", map[string]any{"rpc.service": "S"}, "process"},
		{"plain span name", "consume orders", nil, "consume orders"},
		{"over-long operation cut", strings.Repeat("é", 200), nil, strings.Repeat("é", 128)},
		{"invalid utf-8 repaired", "bad\xffname", nil, "bad\uFFFDname"},
		{"repaired then cut: still within the bound", strings.Repeat("a\xff", 200), nil, strings.Repeat("a\uFFFD", 64)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			sp := request("svc", "v1", t0, 1)
			sp.name, sp.attrs = tt.span, tt.attrs
			h.send(buildTraces(sp))
			h.stop()
			_, lat := h.events()
			require.Len(t, lat, 1)
			assert.Equal(t, tt.want, lat[0].Operation)
		})
	}
}

func TestOperationCacheSharesStrings(t *testing.T) {
	var c opCache
	c.m = map[string]string{}
	a := c.join("HTTP GET", "GET", ' ', "/x")
	b := c.join("other", "GET", ' ', "/x")
	require.Equal(t, "GET /x", a)
	require.Equal(t, a, b)
	assert.Same(t, unsafeData(a), unsafeData(b), "second join must reuse the interned string")
}

func TestErrorClassification(t *testing.T) {
	tests := []struct {
		name   string
		kind   ptrace.SpanKind
		status ptrace.StatusCode
		code   any
		want   bool
	}{
		{"server 500", ptrace.SpanKindServer, ptrace.StatusCodeUnset, 500, true},
		{"server 503 as string", ptrace.SpanKindServer, ptrace.StatusCodeUnset, "503", true},
		{"server 404 is not an error", ptrace.SpanKindServer, ptrace.StatusCodeUnset, 404, false},
		{"server 200", ptrace.SpanKindServer, ptrace.StatusCodeOk, 200, false},
		{"status error without code", ptrace.SpanKindServer, ptrace.StatusCodeError, nil, true},
		{"consumer status error", ptrace.SpanKindConsumer, ptrace.StatusCodeError, nil, true},
		{"consumer with 500 attribute is not a server error", ptrace.SpanKindConsumer, ptrace.StatusCodeUnset, 500, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			sp := request("svc", "v1", t0, 1)
			sp.kind, sp.status = tt.kind, tt.status
			sp.attrs = map[string]any{}
			if tt.code != nil {
				sp.attrs["http.response.status_code"] = tt.code
			}
			h.send(buildTraces(sp))
			h.stop()
			_, lat := h.events()
			require.Len(t, lat, 1)
			assert.Equal(t, tt.want, lat[0].Error)
		})
	}
}

func TestSamplingWeight(t *testing.T) {
	tests := []struct {
		traceState string
		want       float64
	}{
		{"", 1},
		{"ot=th:0", 1}, // threshold 0: always sampled
		{"ot=th:8", 2}, // probability 1/2
		{"ot=th:c", 4}, // probability 1/4
		{"ot=th:e", 8}, // probability 1/8
		{"ot=th:f;rv:abcdef12345678", 16},
		{"vendor=x,ot=th:8", 2},
		{"ot=rv:abcdef12345678", 1}, // randomness only, no threshold
		{"ot=th:zz", 1},             // unparsable threshold
		{"vendor=x", 1},
	}
	for _, tt := range tests {
		t.Run(tt.traceState, func(t *testing.T) {
			assert.InDelta(t, tt.want, samplingWeight(tt.traceState), 1e-9)
		})
	}
	// And through the processor, onto the event.
	h := newHarness(t, nil)
	sp := request("svc", "v1", t0, 1)
	sp.traceState = "ot=th:8"
	h.send(buildTraces(sp, request("svc", "v1", t0, 2)))
	h.stop()
	_, lat := h.events()
	require.Len(t, lat, 2)
	assert.Equal(t, 2.0, lat[0].Weight)
	assert.Equal(t, 1.0, lat[1].Weight)
}

func TestEntrySpanSelectionAndEnvironment(t *testing.T) {
	h := newHarness(t, nil)
	server := request("svc", "v1", t0, 1)
	client := request("svc", "v1", t0, 2)
	client.kind = ptrace.SpanKindClient
	internalRoot := request("svc", "v1", t0, 3)
	internalRoot.kind, internalRoot.parent, internalRoot.name, internalRoot.attrs = ptrace.SpanKindInternal, false, "cron job", nil
	internalChild := request("svc", "v1", t0, 4)
	internalChild.kind = ptrace.SpanKindInternal
	consumerSpan := request("svc", "v1", t0, 5)
	consumerSpan.kind, consumerSpan.name, consumerSpan.attrs = ptrace.SpanKindConsumer, "orders process", nil
	oldEnv := request("svc", "v1", t0, 6)
	oldEnv.env = ""
	td := buildTraces(server, client, internalRoot, internalChild, consumerSpan, oldEnv)
	td.ResourceSpans().At(5).Resource().Attributes().PutStr("deployment.environment", "staging")
	noEnv := request("svc", "v1", t0, 7)
	noEnv.env = ""
	buildTraces(noEnv).ResourceSpans().MoveAndAppendTo(td.ResourceSpans())
	h.send(td)
	h.stop()
	_, lat := h.events()
	var ops, envs []string
	for _, l := range lat {
		ops = append(ops, l.Operation)
		envs = append(envs, l.Env)
	}
	assert.Equal(t, []string{"GET /items", "cron job", "orders process", "GET /items", "GET /items"}, ops)
	assert.Equal(t, []string{"production", "production", "production", "staging", "default"}, envs)
	assert.Equal(t, int64(1), droppedCount(t, h, reasonNotEntry), "the internal child; the client span is a call event")
	_, calls := h.decode()
	assert.Len(t, calls, 1)
}

func TestKeepNonEntrySpans(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.KeepNonEntrySpans = true })
	client := request("svc", "v1", t0, 2)
	client.kind = ptrace.SpanKindClient
	h.send(buildTraces(request("svc", "v1", t0, 1), client))
	h.stop()
	all := h.sink.AllTraces()
	require.Len(t, all, 1)
	assert.Equal(t, 2, all[0].SpanCount(), "both spans pass through")
	marked := 0
	for _, rs := range all[0].ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			assert.Equal(t, "test-instrumentation", ss.Scope().Name(), "scopes untouched in keep mode")
			for _, s := range ss.Spans().All() {
				if v, ok := s.Attributes().Get("changelens.event.type"); ok && v.Str() == "latency" {
					marked++
				}
			}
		}
	}
	assert.Equal(t, 1, marked, "only the entry span is marked as a latency event")
}

func TestMalformedSpansCountedAndDropped(t *testing.T) {
	h := newHarness(t, nil)
	good := request("svc", "v1", t0, 1)
	noService := request("", "v1", t0, 2)
	negative := request("svc", "v1", t0, 3)
	negative.dur = -time.Second
	zeroStart := request("svc", "v1", time.Unix(0, 0), 4)
	future := request("svc", "v1", time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC), 5)
	td := buildTraces(good, noService, negative, zeroStart, future)
	noIDs := buildTraces(request("svc", "v1", t0, 6))
	s := noIDs.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	s.SetTraceID([16]byte{})
	noIDs.ResourceSpans().MoveAndAppendTo(td.ResourceSpans())
	h.send(td)
	h.stop()
	_, lat := h.events()
	require.Len(t, lat, 1)
	for reason, want := range map[dropReason]int64{
		reasonMissingServiceName: 1, reasonInvalidTimestamps: 2, reasonFutureTimestamp: 1, reasonInvalidIDs: 1,
	} {
		assert.Equal(t, want, droppedCount(t, h, reason), reason.String())
	}
}

func TestHugeAttributeCountDoesNotBreak(t *testing.T) {
	h := newHarness(t, nil)
	sp := request("svc", "v1", t0, 1)
	attrs := map[string]any{"http.request.method": "GET", "http.route": "/big"}
	for i := range 10000 {
		attrs["k"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+itoa(i)] = strings.Repeat("v", 100)
	}
	sp.attrs = attrs
	h.send(buildTraces(sp))
	h.stop()
	_, lat := h.events()
	require.Len(t, lat, 1)
	assert.Equal(t, "GET /big", lat[0].Operation)
}

// outgoing is a span of service other than its entry span: a CLIENT or
// PRODUCER call, or INTERNAL work.
func outgoing(service string, kind ptrace.SpanKind, name string, seq uint64, attrs map[string]any) spanSpec {
	sp := request(service, "v1", t0, seq)
	sp.kind, sp.name, sp.attrs = kind, name, attrs
	return sp
}

// checkoutRequest is one request to checkout as its SDK exports it, in one
// scope and one trace (its entry span, in-process work, an HTTP call to cart
// with a sampling threshold, a failed publish with an over-long name, a query
// with a broken name), then cart's entry span for that HTTP call.
func checkoutRequest() ptrace.Traces {
	server := request("checkout", "v1", t0, 1)
	server.parent = false
	work := outgoing("checkout", ptrace.SpanKindInternal, "render", 2, nil)
	toCart := outgoing("checkout", ptrace.SpanKindClient, "GET", 3, map[string]any{
		"http.request.method": "GET", "server.address": "cart.internal", "peer.service": "cart", "http.response.status_code": 500})
	toCart.traceState = "ot=th:8"
	publish := outgoing("checkout", ptrace.SpanKindProducer, strings.Repeat("é", 200), 4, map[string]any{"messaging.system": "kafka"})
	publish.status = ptrace.StatusCodeError
	query := outgoing("checkout", ptrace.SpanKindClient, "SELECT\xffitems", 5, map[string]any{"db.system.name": "postgresql"})
	td := buildScope(server, work, toCart, publish, query)
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	for _, s := range spans.All() {
		s.SetTraceID(spans.At(0).TraceID())
	}
	cart := buildTraces(request("cart", "v7", t0.Add(time.Millisecond), 6))
	cs := cart.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	cs.SetTraceID(spans.At(2).TraceID())
	cs.SetParentSpanID(spans.At(2).SpanID())
	cart.ResourceSpans().MoveAndAppendTo(td.ResourceSpans())
	return td
}

func spanIDs(td ptrace.Traces) (trace pcommon.TraceID, span []pcommon.SpanID) {
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, s := range ss.Spans().All() {
				trace = s.TraceID()
				span = append(span, s.SpanID())
			}
		}
	}
	return trace, span
}

func TestCallEvents(t *testing.T) {
	h := newHarness(t, nil)
	td := checkoutRequest()
	trace, ids := spanIDs(td)
	h.send(td)
	h.stop()

	lat, calls := h.decode()
	caller := eventspan.Resource{Service: "checkout", Environment: "production", Version: "v1"}
	start, end := t0.UnixNano(), t0.Add(20*time.Millisecond).UnixNano()
	assert.Equal(t, []eventspan.Call{
		// peer.service wins over server.address; a CLIENT span's 500 is the
		// callee's answer, not the call's status.
		{Resource: caller, Operation: "GET", Peer: "cart", Start: start, End: end, Weight: 2, TraceID: trace, SpanID: ids[2]},
		{Resource: caller, Operation: strings.Repeat("é", 128), Peer: "kafka", Start: start, End: end, Error: true, Weight: 1, TraceID: trace, SpanID: ids[3]},
		{Resource: caller, Operation: "SELECT\uFFFDitems", Peer: "postgresql", Start: start, End: end, Weight: 1, TraceID: trace, SpanID: ids[4]},
	}, calls)

	require.Len(t, lat, 2)
	assert.Equal(t, "checkout", lat[0].Service)
	assert.Equal(t, "cart", lat[1].Service)
	assert.Equal(t, calls[0].SpanID, lat[1].ParentSpanID, "the callee's latency event joins its caller's call event")
	assert.Equal(t, calls[0].TraceID, lat[1].TraceID)

	out := h.sink.AllTraces()[0].ResourceSpans().At(0).ScopeSpans().At(0)
	require.Equal(t, eventspan.KindLatency, eventspan.ScopeKind(out.Scope()), "calls share their scope with the entry span")
	toCart := out.Spans().At(1)
	assert.Equal(t, ptrace.SpanKindClient, toCart.Kind(), "passed through as received")
	assert.Equal(t, map[string]any{
		"http.request.method": "GET", "server.address": "cart.internal", "peer.service": "cart", "http.response.status_code": int64(500),
		eventspan.AttrWeight: 2.0,
	}, toCart.Attributes().AsRaw(), "attributes as received, plus the weight: its kind in the latency scope makes it a call")

	assert.Equal(t, int64(3), counterValue(t, h, "otelcol_processor_changelens_call_events"))
	assert.Equal(t, int64(2), counterValue(t, h, "otelcol_processor_changelens_latency_events"))
	assert.Equal(t, int64(6), counterValue(t, h, "otelcol_processor_changelens_spans_received"))
	assert.Equal(t, int64(1), droppedCount(t, h, reasonNotEntry), "the internal span")
}

func TestServiceGraphDisabledDropsCalls(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.ServiceGraph.Enabled = false })
	h.send(checkoutRequest())
	h.stop()
	lat, calls := h.decode()
	assert.Len(t, lat, 2)
	assert.Empty(t, calls)
	assert.Equal(t, 2, h.sink.SpanCount(), "only the entry spans")
	assert.Equal(t, int64(4), droppedCount(t, h, reasonNotEntry), "the internal span and the three calls")
	assert.Zero(t, counterValue(t, h, "otelcol_processor_changelens_call_events"))
}

// A scope holding nothing but calls is marked latency like any other; the
// spans' own marks make them calls.
func TestScopeOfCallsOnly(t *testing.T) {
	h := newHarness(t, nil)
	h.send(buildTraces(
		outgoing("worker", ptrace.SpanKindClient, "GET", 1, nil),
		outgoing("worker", ptrace.SpanKindProducer, "orders publish", 2, nil),
	))
	h.stop()
	for _, rs := range h.sink.AllTraces()[0].ResourceSpans().All() {
		ss := rs.ScopeSpans().At(0)
		assert.Equal(t, eventspan.KindLatency, eventspan.ScopeKind(ss.Scope()))
		assert.Equal(t, eventspan.KindCall, eventspan.EventKind(eventspan.ScopeKind(ss.Scope()), ss.Spans().At(0)))
	}
	_, calls := h.decode()
	assert.Len(t, calls, 2)
}

func TestMalformedCallSpans(t *testing.T) {
	specs := func() ptrace.Traces {
		good := outgoing("svc", ptrace.SpanKindClient, "good", 1, nil)
		noService := outgoing("", ptrace.SpanKindClient, "no service", 2, nil)
		negative := outgoing("svc", ptrace.SpanKindProducer, "negative", 3, nil)
		negative.dur = -time.Second
		zeroStart := outgoing("svc", ptrace.SpanKindClient, "zero start", 4, nil)
		zeroStart.start = time.Unix(0, 0)
		future := outgoing("svc", ptrace.SpanKindClient, "future", 5, nil)
		future.start = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
		noIDs := outgoing("svc", ptrace.SpanKindClient, "no span id", 6, nil)
		td := buildTraces(good, noService, negative, zeroStart, future, noIDs)
		td.ResourceSpans().At(5).ScopeSpans().At(0).Spans().At(0).SetSpanID(pcommon.SpanID{})
		return td
	}
	wantDropped := map[dropReason]int64{
		reasonMissingServiceName: 1, reasonInvalidTimestamps: 2, reasonFutureTimestamp: 1, reasonInvalidIDs: 1, reasonNotEntry: 0,
	}

	t.Run("dropped", func(t *testing.T) {
		h := newHarness(t, nil)
		h.send(specs())
		h.stop()
		_, calls := h.decode()
		require.Len(t, calls, 1)
		assert.Equal(t, "good", calls[0].Operation)
		assert.Equal(t, 1, h.sink.SpanCount())
		for reason, want := range wantDropped {
			assert.Equal(t, want, droppedCount(t, h, reason), reason.String())
		}
		assert.Equal(t, int64(1), counterValue(t, h, "otelcol_processor_changelens_call_events"))
	})
	// keep_non_entry_spans passed these spans through before call events
	// existed; they still pass, unmarked.
	t.Run("kept unmarked", func(t *testing.T) {
		h := newHarness(t, func(c *Config) { c.KeepNonEntrySpans = true })
		h.send(specs())
		h.stop()
		assert.Equal(t, 6, h.sink.SpanCount())
		assert.Equal(t, map[string]eventspan.Kind{
			"good": eventspan.KindCall, "no service": eventspan.KindNone, "negative": eventspan.KindNone,
			"zero start": eventspan.KindNone, "future": eventspan.KindNone, "no span id": eventspan.KindNone,
		}, h.kinds())
		for reason, want := range wantDropped {
			assert.Equal(t, want, droppedCount(t, h, reason), reason.String())
		}
	})
}

func TestEntryKindsWinOverCalls(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.EntrySpans.Kinds = []string{"server", "consumer", "client"} })
	h.send(buildScope(
		request("svc", "v1", t0, 1),
		outgoing("svc", ptrace.SpanKindClient, "GET", 2, map[string]any{"peer.service": "cart"}),
		outgoing("svc", ptrace.SpanKindProducer, "orders publish", 3, nil),
	))
	h.stop()
	assert.Equal(t, map[string]eventspan.Kind{
		"GET /items": eventspan.KindLatency, "GET": eventspan.KindLatency, "orders publish": eventspan.KindCall,
	}, h.kinds())
	out := h.sink.AllTraces()[0].ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(1)
	v, marked := out.Attributes().Get(eventspan.AttrEventType)
	assert.True(t, marked && v.Str() == eventspan.EventLatency,
		"an entry client span is marked latency: unmarked, its scope would make it a call")
	assert.Equal(t, int64(1), counterValue(t, h, "otelcol_processor_changelens_call_events"))
	assert.Equal(t, int64(2), counterValue(t, h, "otelcol_processor_changelens_latency_events"))
}

func TestKeepNonEntrySpansMarksCallsPerSpan(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.KeepNonEntrySpans = true })
	toCart := outgoing("svc", ptrace.SpanKindClient, "GET", 2, map[string]any{"peer.service": "cart"})
	toCart.traceState = "ot=th:c"
	h.send(buildScope(
		request("svc", "v1", t0, 1),
		outgoing("svc", ptrace.SpanKindInternal, "render", 3, nil),
		toCart,
		outgoing("svc", ptrace.SpanKindProducer, "orders publish", 4, nil),
	))
	h.stop()
	ss := h.sink.AllTraces()[0].ResourceSpans().At(0).ScopeSpans().At(0)
	assert.Equal(t, "test-instrumentation", ss.Scope().Name(), "scopes untouched in keep mode")
	assert.Equal(t, map[string]eventspan.Kind{
		"GET /items": eventspan.KindLatency, "render": eventspan.KindNone,
		"GET": eventspan.KindCall, "orders publish": eventspan.KindCall,
	}, h.kinds())
	lat, calls := h.decode()
	assert.Len(t, lat, 1)
	require.Len(t, calls, 2)
	assert.Equal(t, "cart", calls[0].Peer)
	assert.Equal(t, 4.0, calls[0].Weight)
	assert.Equal(t, 1.0, calls[1].Weight)
	assert.Equal(t, int64(2), counterValue(t, h, "otelcol_processor_changelens_call_events"))
	assert.Equal(t, int64(1), droppedCount(t, h, reasonNotEntry), "the internal span, passed through")
}

// A kept call, like an entry span of a marked scope, allocates nothing: its
// kind in the latency scope makes it a call. Only a client entry span (client
// configured as an entry kind) pays for its mark.
func TestCallSpanAllocations(t *testing.T) {
	p, err := newProcessor(componenttest.NewNopTelemetrySettings(), defaultConfig(), consumertest.NewNop())
	require.NoError(t, err)
	defer func() { require.NoError(t, p.shutdown(context.Background())) }()
	res := pcommon.NewMap()
	res.PutStr("service.name", "svc")
	allocs := func(kind ptrace.SpanKind) float64 {
		const runs = 100
		spans := ptrace.NewSpanSlice()
		for i := range runs + 1 {
			sp := outgoing("svc", kind, "GET /items", uint64(i), map[string]any{"http.request.method": "GET", "peer.service": "cart"})
			s := spans.AppendEmpty()
			fillSpan(s, sp)
			s.Attributes().EnsureCapacity(8) // room, as decoding leaves
		}
		b := &batchState{}
		maxStart := time.Now().UnixNano()
		i := 0
		return testing.AllocsPerRun(runs, func() {
			require.True(t, p.processSpan(spans.At(i), b, true, unitKey{"svc", "production"}, res, maxStart))
			i++
		})
	}
	assert.Zero(t, allocs(ptrace.SpanKindServer), "entry span")
	assert.Zero(t, allocs(ptrace.SpanKindClient), "call span")
}

// An incident event a webhook receiver appended ahead of the processor is
// not traffic: it reaches the exporter as it was encoded, next to the
// latency events of the same request.
func TestIncidentEventsPassThrough(t *testing.T) {
	h := newHarness(t, nil)
	td := buildTraces(request("checkout", "v1", t0, 1))
	in := eventspan.Incident{
		ID: "pagerduty:Q1ABC", Resource: eventspan.Resource{Service: "checkout", Environment: "production"},
		Source: eventspan.IncidentSourcePagerDuty, Severity: "P1", Title: "broken button",
		Opened: t0.UnixNano(), TraceID: pcommon.TraceID{9}, SpanID: pcommon.SpanID{9},
	}
	eventspan.AppendIncident(td, in)
	h.send(td)
	h.stop()

	var got []eventspan.Incident
	for _, out := range h.sink.AllTraces() {
		for _, rs := range out.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				if eventspan.ScopeKind(ss.Scope()) != eventspan.KindIncident {
					continue
				}
				for _, s := range ss.Spans().All() {
					got = append(got, eventspan.DecodeIncident(eventspan.ReadResource(rs.Resource().Attributes()), s))
				}
			}
		}
	}
	assert.Equal(t, []eventspan.Incident{in}, got)
	_, lat := h.events()
	assert.Len(t, lat, 1, "the traffic is processed as ever")
}

// A commit event the webhook receiver appended (a GitHub push) passes
// through as encoded, even though its resource names no environment and
// its span is no entry span.
func TestCommitEventsPassThrough(t *testing.T) {
	h := newHarness(t, nil)
	td := buildTraces(request("checkout", "v1", t0, 1))
	c := eventspan.Commit{
		Service: "checkout", Repository: "shop/checkout", SHA: "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
		Time: t0.Add(-time.Hour).UnixNano(), Pushed: t0.UnixNano(), Ref: "refs/heads/main",
		TraceID: pcommon.TraceID{7}, SpanID: pcommon.SpanID{7},
	}
	eventspan.AppendCommit(td, c)
	h.send(td)
	h.stop()

	var got []eventspan.Commit
	for _, out := range h.sink.AllTraces() {
		for _, rs := range out.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				if eventspan.ScopeKind(ss.Scope()) != eventspan.KindCommit {
					continue
				}
				for _, s := range ss.Spans().All() {
					got = append(got, eventspan.DecodeCommit(eventspan.ReadResource(rs.Resource().Attributes()), s))
				}
			}
		}
	}
	assert.Equal(t, []eventspan.Commit{c}, got)
	_, lat := h.events()
	assert.Len(t, lat, 1, "the traffic is processed as ever")
}
