package changelensprocessor

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// A latency event's self time is its duration outside the union of its
// CLIENT children in the batch: overlapping calls count once, a call
// reaching past the entry span counts inside it only, INTERNAL children and
// grandchildren' calls are the request's own time.
func TestSelfTime(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.SelfTime.Enabled = true })
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "checkout")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	tid := pcommon.TraceID{7}
	span := func(id byte, parent byte, kind ptrace.SpanKind, from, to time.Duration) ptrace.Span {
		s := spans.AppendEmpty()
		s.SetTraceID(tid)
		s.SetSpanID(pcommon.SpanID{id})
		if parent != 0 {
			s.SetParentSpanID(pcommon.SpanID{parent})
		}
		s.SetKind(kind)
		s.SetName("s")
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(t0.Add(from)))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(t0.Add(to)))
		return s
	}
	ms := time.Millisecond
	span(1, 0, ptrace.SpanKindServer, 0, 100*ms)
	span(2, 1, ptrace.SpanKindClient, 10*ms, 40*ms)
	span(3, 1, ptrace.SpanKindClient, 30*ms, 50*ms)  // overlaps the first: 10–50 waited once
	span(4, 1, ptrace.SpanKindClient, 90*ms, 130*ms) // past the end: 90–100 inside
	span(5, 1, ptrace.SpanKindInternal, 60*ms, 70*ms)
	span(6, 5, ptrace.SpanKindClient, 60*ms, 70*ms) // a grandchild: not the entry span's own call
	span(7, 0, ptrace.SpanKindServer, 0, 20*ms)     // no calls in the batch
	h.send(td)

	lat, _ := h.decode()
	got := map[byte]int64{}
	for _, l := range lat {
		got[l.SpanID[0]] = l.SelfTime
	}
	require.Equal(t, map[byte]int64{1: int64(50 * ms), 7: int64(20 * ms)}, got)
}

// Off (the default), latency events carry no self time.
func TestSelfTimeDisabled(t *testing.T) {
	h := newHarness(t, nil)
	h.send(buildTraces(request("checkout", "1", t0, 1)))
	lat, _ := h.decode()
	require.Len(t, lat, 1)
	require.Zero(t, lat[0].SelfTime)
}

func TestCovered(t *testing.T) {
	for _, c := range []struct {
		iv         [][2]int64
		start, end int64
		want       int64
	}{
		{nil, 0, 10, 0},
		{[][2]int64{{2, 4}, {3, 6}, {8, 20}}, 0, 10, 6},
		{[][2]int64{{-5, 2}, {12, 15}}, 0, 10, 2},
		{[][2]int64{{0, 10}, {1, 2}}, 0, 10, 10},
	} {
		var calls []childCall
		for _, iv := range c.iv {
			calls = append(calls, childCall{iv: iv})
		}
		require.Equal(t, c.want, covered(calls, c.start, c.end), "%v", c.iv)
	}
}
