package changelensprocessor

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"

	"github.com/changelens/changelens/internal/eventspan"
)

// request builds one request of service api: an entry SERVER span and a
// CLIENT child, with feature-flag evaluations on either.
type flagReq struct {
	trace        byte
	onEntry      []flagEval
	onChild      []flagEval
	olderVariant bool // feature_flag.variant instead of feature_flag.result.variant
	spanAttrs    map[string]string
}

func flagTraces(resAttrs map[string]string, reqs ...flagReq) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "api")
	rs.Resource().Attributes().PutStr("service.version", "1.0")
	for k, v := range resAttrs {
		rs.Resource().Attributes().PutStr(k, v)
	}
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	at := time.Now().Add(-time.Minute)
	addFlags := func(s ptrace.Span, fs []flagEval, older bool) {
		for _, f := range fs {
			e := s.Events().AppendEmpty()
			e.SetName("feature_flag.evaluation")
			e.Attributes().PutStr("feature_flag.key", f.key)
			if older {
				e.Attributes().PutStr("feature_flag.variant", f.variant)
			} else {
				e.Attributes().PutStr("feature_flag.result.variant", f.variant)
			}
		}
	}
	for _, r := range reqs {
		tid := pcommon.TraceID{r.trace, 1}
		entry := spans.AppendEmpty()
		entry.SetTraceID(tid)
		entry.SetSpanID(pcommon.SpanID{r.trace, 1})
		entry.SetKind(ptrace.SpanKindServer)
		entry.SetName("GET /")
		entry.SetStartTimestamp(pcommon.NewTimestampFromTime(at))
		entry.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(time.Millisecond)))
		for k, v := range r.spanAttrs {
			entry.Attributes().PutStr(k, v)
		}
		addFlags(entry, r.onEntry, r.olderVariant)
		child := spans.AppendEmpty()
		child.SetTraceID(tid)
		child.SetSpanID(pcommon.SpanID{r.trace, 2})
		child.SetParentSpanID(pcommon.SpanID{r.trace, 1})
		child.SetKind(ptrace.SpanKindClient)
		child.SetName("SELECT")
		child.SetStartTimestamp(pcommon.NewTimestampFromTime(at))
		child.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(time.Millisecond)))
		addFlags(child, r.onChild, r.olderVariant)
	}
	return td
}

// cohortsOf returns the cohort attributes of each latency event, by trace.
func cohortsOf(h *harness) map[byte]map[string]string {
	out := map[byte]map[string]string{}
	for _, td := range h.sink.AllTraces() {
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				scope := eventspan.ScopeKind(ss.Scope())
				for _, s := range ss.Spans().All() {
					if eventspan.EventKind(scope, s) != eventspan.KindLatency {
						continue
					}
					m := map[string]string{}
					for k, v := range s.Attributes().All() {
						if len(k) > len(eventspan.AttrCohortPrefix) && k[:len(eventspan.AttrCohortPrefix)] == eventspan.AttrCohortPrefix {
							m[k[len(eventspan.AttrCohortPrefix):]] = v.AsString()
						}
					}
					out[s.TraceID()[0]] = m
				}
			}
		}
	}
	return out
}

func TestCohortDimensions(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Cohorts.Attributes = []string{"api.protocol", "cloud.region"} })
	h.send(flagTraces(map[string]string{"cloud.region": "eu-1"},
		flagReq{trace: 1, onEntry: []flagEval{{"new-checkout", "on"}}, spanAttrs: map[string]string{"api.protocol": "grpc"}},
		flagReq{trace: 2, onChild: []flagEval{{"new-checkout", "off"}, {"new-checkout", "on"}}},
		flagReq{trace: 3, onChild: []flagEval{{"search-v2", "treatment"}}, olderVariant: true},
		flagReq{trace: 4},
	))
	h.stop()
	got := cohortsOf(h)
	require.Len(t, got, 4, "one latency event per request; the CLIENT children are call events")
	assert.Equal(t, map[string]string{"feature_flag.new-checkout": "on", "attribute.api.protocol": "grpc", "attribute.cloud.region": "eu-1"}, got[1],
		"a flag on the entry span; a span attribute; a resource attribute")
	assert.Equal(t, map[string]string{"feature_flag.new-checkout": "off", "attribute.cloud.region": "eu-1"}, got[2],
		"a flag evaluated in a descendant belongs to the entry span; the first evaluation counts")
	assert.Equal(t, map[string]string{"feature_flag.search-v2": "treatment", "attribute.cloud.region": "eu-1"}, got[3],
		"the older feature_flag.variant attribute")
	assert.Equal(t, map[string]string{"attribute.cloud.region": "eu-1"}, got[4])
}

func TestCohortBounds(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Cohorts.MaxValuesPerKey, c.Cohorts.MaxKeysPerUnit = 2, 1 })
	h.send(flagTraces(nil,
		flagReq{trace: 1, onEntry: []flagEval{{"color", "red"}}},
		flagReq{trace: 2, onEntry: []flagEval{{"color", "green"}}},
		flagReq{trace: 3, onEntry: []flagEval{{"color", "blue"}, {"size", "xl"}}},
		flagReq{trace: 4, onEntry: []flagEval{{"color", "red"}}},
	))
	h.stop()
	got := cohortsOf(h)
	assert.Equal(t, "red", got[1]["feature_flag.color"])
	assert.Equal(t, "green", got[2]["feature_flag.color"])
	assert.Equal(t, otherValue, got[3]["feature_flag.color"], "a third value folds into __other__")
	assert.NotContains(t, got[3], "feature_flag.size", "a second key of the unit is not recorded")
	assert.Equal(t, "red", got[4]["feature_flag.color"], "a known value stays")
	assert.Equal(t, int64(1), counterValue(t, h, "otelcol_processor_changelens_cohort_folds", attribute.String("reason", "values")))
	assert.Equal(t, int64(1), counterValue(t, h, "otelcol_processor_changelens_cohort_folds", attribute.String("reason", "keys")))

	// flag_keys: only the listed flags.
	h = newHarness(t, func(c *Config) { c.Cohorts.FlagKeys = []string{"size"} })
	h.send(flagTraces(nil, flagReq{trace: 1, onEntry: []flagEval{{"color", "red"}, {"size", "xl"}}}))
	h.stop()
	assert.Equal(t, map[string]string{"feature_flag.size": "xl"}, cohortsOf(h)[1])

	// Off: nothing recorded.
	h = newHarness(t, func(c *Config) { c.Cohorts.FeatureFlags = false })
	h.send(flagTraces(nil, flagReq{trace: 1, onEntry: []flagEval{{"color", "red"}}}))
	h.stop()
	assert.Empty(t, cohortsOf(h)[1])
}

// Parent links that loop (bad data) credit each span of the loop once.
func TestFlagIndexCycles(t *testing.T) {
	td := ptrace.NewTraces()
	spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	span := func(trace, id, parent byte, flag string) ptrace.Span {
		s := spans.AppendEmpty()
		s.SetTraceID(pcommon.TraceID{trace})
		s.SetSpanID(pcommon.SpanID{id})
		s.SetParentSpanID(pcommon.SpanID{parent})
		if flag != "" {
			e := s.Events().AppendEmpty()
			e.SetName("feature_flag.evaluation")
			e.Attributes().PutStr("feature_flag.key", flag)
			e.Attributes().PutStr("feature_flag.result.variant", "on")
		}
		return s
	}
	self := span(1, 1, 1, "a")                    // its own parent
	b, c := span(2, 2, 3, ""), span(2, 3, 2, "b") // b ⇄ c
	d := span(3, 2, 0, "")                        // another trace's span with b's ID
	m := flagIndex(td, &entryRule{root: true}).m
	assert.Equal(t, []flagEval{{"a", "on"}}, m.of(self))
	assert.Equal(t, []flagEval{{"b", "on"}}, m.of(c))
	assert.Equal(t, []flagEval{{"b", "on"}}, m.of(b))
	assert.Nil(t, m.of(d), "a span ID shared with another trace")
}
