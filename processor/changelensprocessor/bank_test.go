package changelensprocessor

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/changelens/changelens/internal/eventspan"
)

// Attributes written with boxes and arrays taken from dropped spans (the
// bank, warm from earlier batches) are exactly what PutStr would write: a
// latency event keeps every attribute it arrived with and gains only its
// cohort dimension and error kind, each scope carries the mark alone.
func TestBankWritesAsPutStr(t *testing.T) {
	at := time.Now().Add(-time.Minute)
	batch := errorKindBatch(benchBatch(160, at))
	for _, rs := range batch.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, s := range ss.Spans().All() {
				if s.Kind() == ptrace.SpanKindServer {
					e := s.Events().AppendEmpty()
					e.SetName("feature_flag.evaluation")
					e.Attributes().PutStr("feature_flag.key", "new-checkout")
					e.Attributes().PutStr("feature_flag.result.variant", "on")
				}
			}
		}
	}
	in := map[pcommon.SpanID]map[string]any{}
	for _, rs := range batch.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, s := range ss.Spans().All() {
				in[s.SpanID()] = s.Attributes().AsRaw()
			}
		}
	}
	h := newHarness(t, nil)
	const sends = 4
	for range sends {
		td := ptrace.NewTraces()
		batch.CopyTo(td)
		h.send(td)
	}
	h.stop()
	require.Len(t, h.sink.AllTraces(), sends)
	for _, td := range h.sink.AllTraces() {
		latency := 0
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				assert.Equal(t, map[string]any{eventspan.AttrEventType: eventspan.EventLatency}, ss.Scope().Attributes().AsRaw())
				for _, s := range ss.Spans().All() {
					got := s.Attributes().AsRaw()
					want := in[s.SpanID()]
					if s.Kind() == ptrace.SpanKindServer {
						latency++
						assert.Equal(t, "on", got["changelens.cohort.feature_flag.new-checkout"])
						kind, _ := got[eventspan.AttrErrorKind].(string)
						assert.True(t, strings.HasPrefix(kind, "java.") || strings.HasPrefix(kind, "org."), "kind %q", kind)
						delete(got, "changelens.cohort.feature_flag.new-checkout")
						delete(got, eventspan.AttrErrorKind)
					}
					assert.Equal(t, want, got)
				}
			}
		}
		assert.Equal(t, 40, latency)
	}
}
