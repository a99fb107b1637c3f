package eventspan

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

func flagEvaluations() []FlagEvaluation {
	return []FlagEvaluation{
		{Resource: Resource{Service: "checkout", Environment: "production"}, Key: "new-checkout", Variant: "on",
			Time: 1_700_000_000_123_456_789, TraceID: pcommon.TraceID{1, 2}, SpanID: pcommon.SpanID{3}},
		{Resource: Resource{Service: "checkout", Environment: "production"}, Key: "color", Variant: "__other__",
			Time: 1_700_000_001_000_000_000, TraceID: pcommon.TraceID{4}, SpanID: pcommon.SpanID{5}},
		{Resource: Resource{Service: "cart", Environment: "staging"}, Key: "new-checkout", Variant: "off",
			Time: 1_700_000_002_000_000_000, TraceID: pcommon.TraceID{6}, SpanID: pcommon.SpanID{7}},
	}
}

// Both encodings decode to what was appended; consecutive evaluations of
// one unit share a resource and scope.
func TestFlagEvaluationRoundTrip(t *testing.T) {
	want := flagEvaluations()

	td := ptrace.NewTraces()
	AppendFlagEvaluations(td, want...)
	require.Equal(t, 2, td.ResourceSpans().Len())
	var got []FlagEvaluation
	for _, rs := range td.ResourceSpans().All() {
		res := ReadResource(rs.Resource().Attributes())
		for _, ss := range rs.ScopeSpans().All() {
			scope := ScopeKind(ss.Scope())
			for _, s := range ss.Spans().All() {
				require.Equal(t, KindFlagEvaluation, EventKind(scope, s))
				got = append(got, DecodeFlagEvaluation(res, s))
			}
		}
	}
	assert.Equal(t, want, got, "spans")

	ld := plog.NewLogs()
	AppendFlagEvaluationLogs(ld, want...)
	require.Equal(t, 2, ld.ResourceLogs().Len())
	got = nil
	for _, rl := range ld.ResourceLogs().All() {
		res := ReadResource(rl.Resource().Attributes())
		for _, sl := range rl.ScopeLogs().All() {
			require.Equal(t, KindFlagEvaluation, ScopeKind(sl.Scope()))
			for _, lr := range sl.LogRecords().All() {
				assert.Equal(t, FlagEvaluationEvent, lr.EventName())
				got = append(got, DecodeFlagEvaluationLog(res, lr))
			}
		}
	}
	assert.Equal(t, want, got, "log records")
}

// A record without a timestamp is read at its observed time.
func TestFlagEvaluationLogObservedTime(t *testing.T) {
	lr := plog.NewLogRecord()
	lr.SetObservedTimestamp(42)
	lr.Attributes().PutStr(AttrFlagKey, "k")
	lr.Attributes().PutStr(AttrFlagVariant, "v")
	e := DecodeFlagEvaluationLog(Resource{Service: "s", Environment: "e", Version: "1"}, lr)
	assert.Equal(t, FlagEvaluation{Resource: Resource{Service: "s", Environment: "e"}, Key: "k", Variant: "v", Time: 42}, e)
}
