package changelensprocessor

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
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
	assert.Equal(t, int64(2), droppedCount(t, h, reasonNotEntry))
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
