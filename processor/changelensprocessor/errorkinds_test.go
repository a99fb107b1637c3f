package changelensprocessor

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"

	"github.com/changelens/changelens/internal/eventspan"
)

// errReq is one request of service api (one trace): an entry SERVER span,
// an INTERNAL child and a CLIENT grandchild, with what each carries.
type errReq struct {
	trace      byte
	service    string // "" is api
	failed     bool   // the entry span's status is ERROR
	entryAttrs map[string]any
	// exceptions on the entry span, the child and the grandchild
	onEntry, onChild, onGrandchild []string
	// grandchildFirst puts the grandchild before its parent in the batch.
	grandchildFirst bool
}

func errTraces(reqs ...errReq) ptrace.Traces {
	td := ptrace.NewTraces()
	at := time.Now().Add(-time.Minute)
	scopes := map[string]ptrace.SpanSlice{}
	for _, r := range reqs {
		svc := r.service
		if svc == "" {
			svc = "api"
		}
		spans, ok := scopes[svc]
		if !ok {
			rs := td.ResourceSpans().AppendEmpty()
			rs.Resource().Attributes().PutStr("service.name", svc)
			rs.Resource().Attributes().PutStr("service.version", "2.0")
			spans = rs.ScopeSpans().AppendEmpty().Spans()
			scopes[svc] = spans
		}
		tid := pcommon.TraceID{r.trace, 7}
		mk := func(id, parent byte, kind ptrace.SpanKind, name string, excs []string, offset time.Duration) {
			s := spans.AppendEmpty()
			s.SetTraceID(tid)
			s.SetSpanID(pcommon.SpanID{r.trace, id})
			if parent != 0 {
				s.SetParentSpanID(pcommon.SpanID{r.trace, parent})
			}
			s.SetKind(kind)
			s.SetName(name)
			s.SetStartTimestamp(pcommon.NewTimestampFromTime(at))
			s.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(10 * time.Millisecond)))
			for i, typ := range excs {
				e := s.Events().AppendEmpty()
				e.SetName("exception")
				e.SetTimestamp(pcommon.NewTimestampFromTime(at.Add(offset + time.Duration(i)*time.Microsecond)))
				e.Attributes().PutStr("exception.type", typ)
				e.Attributes().PutStr("exception.message", "boom")
			}
			if id == 1 {
				if r.failed {
					s.Status().SetCode(ptrace.StatusCodeError)
				}
				for k, v := range r.entryAttrs {
					switch v := v.(type) {
					case string:
						s.Attributes().PutStr(k, v)
					case int:
						s.Attributes().PutInt(k, int64(v))
					}
				}
			}
		}
		mk(1, 0, ptrace.SpanKindServer, "GET /", r.onEntry, 3*time.Millisecond)
		if r.grandchildFirst {
			mk(3, 2, ptrace.SpanKindClient, "SELECT", r.onGrandchild, time.Millisecond)
			mk(2, 1, ptrace.SpanKindInternal, "handle", r.onChild, 2*time.Millisecond)
		} else {
			mk(2, 1, ptrace.SpanKindInternal, "handle", r.onChild, 2*time.Millisecond)
			mk(3, 2, ptrace.SpanKindClient, "SELECT", r.onGrandchild, time.Millisecond)
		}
	}
	return td
}

// errorKindsOf decodes the latency events with the exporter's codec: each
// trace's error kind ("" none), and whether it failed.
func errorKindsOf(h *harness) map[byte]eventspan.Latency {
	lat, _ := h.decode()
	out := map[byte]eventspan.Latency{}
	for _, l := range lat {
		out[l.TraceID[0]] = l
	}
	return out
}

func TestErrorKinds(t *testing.T) {
	h := newHarness(t, nil)
	h.send(errTraces(
		// error.type wins over everything
		errReq{trace: 1, failed: true, entryAttrs: map[string]any{"error.type": "timeout", "http.response.status_code": 504},
			onEntry: []string{"java.io.IOException"}},
		// the entry span's own exception wins over its descendants'
		errReq{trace: 2, failed: true, onEntry: []string{"EntryError"}, onGrandchild: []string{"DeepError"}},
		// an exception on a descendant (two levels down, before its parent in the batch)
		errReq{trace: 3, failed: true, onGrandchild: []string{"java.lang.NullPointerException"}, grandchildFirst: true},
		// the earliest of the descendants' exceptions
		errReq{trace: 4, failed: true, onChild: []string{"Wrapper"}, onGrandchild: []string{"RootCause"}},
		// a SERVER span with status 503: an error by its status code, kind 5xx
		errReq{trace: 5, entryAttrs: map[string]any{"http.response.status_code": 503}},
		// a 4xx the instrumentation called an error
		errReq{trace: 6, failed: true, entryAttrs: map[string]any{"http.response.status_code": "429"}},
		// gRPC status names
		errReq{trace: 7, failed: true, entryAttrs: map[string]any{"rpc.grpc.status_code": 14}},
		// nothing to go by
		errReq{trace: 8, failed: true},
		// not failed: no kind, whatever it carries
		errReq{trace: 9, onEntry: []string{"Handled"}, entryAttrs: map[string]any{"http.response.status_code": 404}},
	))
	h.stop()
	got := errorKindsOf(h)
	require.Len(t, got, 9, "one latency event per request")
	for trace, want := range map[byte]string{
		1: "timeout", 2: "EntryError", 3: "java.lang.NullPointerException", 4: "RootCause",
		5: "5xx", 6: "4xx", 7: "UNAVAILABLE", 8: "_OTHER", 9: "",
	} {
		assert.Equal(t, want, got[trace].ErrorKind, "trace %d", trace)
		assert.Equal(t, want != "", got[trace].Error, "trace %d: a kind exactly on failed events", trace)
	}
}

// An exception is credited to the nearest entry span above it, in its own
// trace only; a chain that leaves the batch credits nothing.
func TestErrorKindsNearestEntry(t *testing.T) {
	td := errTraces(errReq{trace: 1, failed: true, onGrandchild: []string{"Inner"}})
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	// The INTERNAL child becomes an entry span itself (a CONSUMER), failed:
	// the grandchild's exception is its, not the outer request's.
	child := spans.At(1)
	child.SetKind(ptrace.SpanKindConsumer)
	child.Status().SetCode(ptrace.StatusCodeError)
	// Another trace's span with the child's span ID and an exception.
	other := spans.AppendEmpty()
	other.SetTraceID(pcommon.TraceID{9, 9})
	other.SetSpanID(pcommon.SpanID{1, 3})
	other.SetParentSpanID(pcommon.SpanID{1, 1}) // the outer entry span's ID, but in trace 9: not in the batch
	other.SetKind(ptrace.SpanKindInternal)
	other.SetName("elsewhere")
	other.SetStartTimestamp(child.StartTimestamp())
	other.SetEndTimestamp(child.EndTimestamp())
	e := other.Events().AppendEmpty()
	e.SetName("exception")
	e.Attributes().PutStr("exception.type", "OtherTrace")

	h := newHarness(t, nil)
	h.send(td)
	h.stop()
	lat, _ := h.decode()
	kinds := map[string]string{}
	for _, l := range lat {
		kinds[l.Operation] = l.ErrorKind
	}
	assert.Equal(t, map[string]string{"GET /": "_OTHER", "handle": "Inner"}, kinds)
}

func TestErrorKindBounds(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.ErrorKinds.MaxKindsPerUnit, c.ErrorKinds.MaxUnits, c.ErrorKinds.MaxKindLength = 2, 2, 16
	})
	h.send(errTraces(
		errReq{trace: 1, failed: true, onEntry: []string{"A"}},
		errReq{trace: 2, failed: true, onEntry: []string{"B"}},
		errReq{trace: 3, failed: true, onEntry: []string{"C"}},
		errReq{trace: 4, failed: true, onEntry: []string{"A"}},
		errReq{trace: 5, service: "db", failed: true, onEntry: []string{strings.Repeat("é", 20)}},
		errReq{trace: 6, service: "cache", failed: true, onEntry: []string{"A"}},
		errReq{trace: 7, service: "db", failed: true, onEntry: []string{"bad\xffutf8"}},
	))
	h.stop()
	got := errorKindsOf(h)
	assert.Equal(t, "A", got[1].ErrorKind)
	assert.Equal(t, "B", got[2].ErrorKind)
	assert.Equal(t, eventspan.ErrorKindFolded, got[3].ErrorKind, "a third kind of the unit folds")
	assert.Equal(t, "A", got[4].ErrorKind, "a known kind stays")
	assert.Equal(t, strings.Repeat("é", 8), got[5].ErrorKind, "cut to 16 bytes at a rune boundary")
	assert.Equal(t, eventspan.ErrorKindFolded, got[6].ErrorKind, "a third unit folds")
	assert.Equal(t, "bad\uFFFDutf8", got[7].ErrorKind, "made valid UTF-8")
	assert.Equal(t, int64(1), counterValue(t, h, "otelcol_processor_changelens_error_kind_folds", attribute.String("reason", "kinds")))
	assert.Equal(t, int64(1), counterValue(t, h, "otelcol_processor_changelens_error_kind_folds", attribute.String("reason", "units")))

	// Off: no kind.
	h = newHarness(t, func(c *Config) { c.ErrorKinds.Enabled = false })
	h.send(errTraces(errReq{trace: 1, failed: true, onEntry: []string{"A"}}))
	h.stop()
	assert.Empty(t, errorKindsOf(h)[1].ErrorKind)
	assert.True(t, errorKindsOf(h)[1].Error)
}

// Parent links that loop (bad data) end the walk; the pooled index is
// empty again for the next batch.
func TestErrorKindIndexCycles(t *testing.T) {
	td := ptrace.NewTraces()
	spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	span := func(trace, id, parent byte, exc string) {
		s := spans.AppendEmpty()
		s.SetTraceID(pcommon.TraceID{trace})
		s.SetSpanID(pcommon.SpanID{id})
		s.SetParentSpanID(pcommon.SpanID{parent})
		s.SetKind(ptrace.SpanKindInternal)
		if exc != "" {
			e := s.Events().AppendEmpty()
			e.SetName("exception")
			e.Attributes().PutStr("exception.type", exc)
		}
	}
	span(1, 1, 1, "Self") // its own parent
	span(2, 2, 3, "")     // a loop of two
	span(2, 3, 2, "X")
	var x excIndex
	x.index(td, &entryRule{kinds: [8]bool{ptrace.SpanKindServer: true}})
	assert.Empty(t, x.credit, "no entry span in a loop")
	x.reset()
	assert.Empty(t, x.found)
	assert.Empty(t, x.links)
}
