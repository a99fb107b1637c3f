package changelensprocessor

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/otel/attribute"

	"github.com/changelens/changelens/internal/eventspan"
	"github.com/changelens/changelens/processor/changelensprocessor/internal/metadata"
)

// flagRequest is one request of service svc: a SERVER entry span
// {trace, 1} and an INTERNAL child {trace, 2}.
type flagRequest struct {
	trace  byte
	at     time.Time
	entry  ptrace.Span
	child  ptrace.Span
	spans  ptrace.SpanSlice
	resIdx int
}

func newFlagRequest(spans ptrace.SpanSlice, trace byte, at time.Time) flagRequest {
	tid := pcommon.TraceID{trace, 0xf1}
	entry := spans.AppendEmpty()
	entry.SetTraceID(tid)
	entry.SetSpanID(pcommon.SpanID{trace, 1})
	entry.SetKind(ptrace.SpanKindServer)
	entry.SetName("GET /")
	entry.SetStartTimestamp(pcommon.NewTimestampFromTime(at))
	entry.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(10 * time.Millisecond)))
	child := spans.AppendEmpty()
	child.SetTraceID(tid)
	child.SetSpanID(pcommon.SpanID{trace, 2})
	child.SetParentSpanID(entry.SpanID())
	child.SetKind(ptrace.SpanKindInternal)
	child.SetName("handler")
	child.SetStartTimestamp(pcommon.NewTimestampFromTime(at.Add(time.Millisecond)))
	child.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(9 * time.Millisecond)))
	return flagRequest{trace: trace, at: at, entry: entry, child: child, spans: spans}
}

// evalSpan appends an evaluation span under parent, as OpenFeature's
// JavaScript SpanHook makes one.
func evalSpan(spans ptrace.SpanSlice, parent ptrace.Span, id byte, name string, attrs map[string]any) ptrace.Span {
	s := spans.AppendEmpty()
	s.SetTraceID(parent.TraceID())
	s.SetSpanID(pcommon.SpanID{parent.SpanID()[0], id})
	s.SetParentSpanID(parent.SpanID())
	s.SetKind(ptrace.SpanKindInternal)
	s.SetName(name)
	s.SetStartTimestamp(parent.StartTimestamp() + 2000)
	s.SetEndTimestamp(parent.StartTimestamp() + 3000)
	putAttrs(s.Attributes(), attrs)
	return s
}

func putAttrs(m pcommon.Map, attrs map[string]any) {
	for k, v := range attrs {
		switch v := v.(type) {
		case string:
			m.PutStr(k, v)
		case bool:
			m.PutBool(k, v)
		case int:
			m.PutInt(k, int64(v))
		case float64:
			m.PutDouble(k, v)
		}
	}
}

func flagEvent(s ptrace.Span, name string, attrs map[string]any) {
	e := s.Events().AppendEmpty()
	e.SetName(name)
	e.SetTimestamp(s.StartTimestamp() + 500)
	putAttrs(e.Attributes(), attrs)
}

func flagTrace(service string) (ptrace.Traces, ptrace.SpanSlice) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", service)
	rs.Resource().Attributes().PutStr("deployment.environment", "staging") // the deprecated name
	return td, rs.ScopeSpans().AppendEmpty().Spans()
}

// flagEvents reads the flag evaluation events of the harness' output.
func flagEvents(h *harness) []eventspan.FlagEvaluation {
	var out []eventspan.FlagEvaluation
	for _, td := range h.sink.AllTraces() {
		for _, rs := range td.ResourceSpans().All() {
			res := eventspan.ReadResource(rs.Resource().Attributes())
			for _, ss := range rs.ScopeSpans().All() {
				scope := eventspan.ScopeKind(ss.Scope())
				for _, s := range ss.Spans().All() {
					if eventspan.EventKind(scope, s) == eventspan.KindFlagEvaluation {
						out = append(out, eventspan.DecodeFlagEvaluation(res, s))
					}
				}
			}
		}
	}
	return out
}

func flagCounter(t *testing.T, h *harness, source string) int64 {
	return counterValue(t, h, "otelcol_processor_changelens_flag_evaluations", attribute.String("source", source))
}

// An evaluation span below the entry span of its batch, whatever its name
// (OpenFeature's feature_flag.evaluation, a vendor's
// feature_flag_evaluation.<key>) is the request's cohort like a span event:
// on the entry span's latency event, the evaluation span itself consumed.
// Evaluations read the older event name and variant, and the evaluated
// value where no variant is named.
func TestEvaluationShapesCreditedInBatch(t *testing.T) {
	h := newHarness(t, nil)
	td, spans := flagTrace("api")
	at := time.Now().Add(-time.Minute)
	r1 := newFlagRequest(spans, 1, at)
	evalSpan(spans, r1.child, 3, "feature_flag.evaluation", map[string]any{"feature_flag.key": "new-checkout", "feature_flag.result.variant": "on",
		"feature_flag.provider.name": "flagd"})
	r2 := newFlagRequest(spans, 2, at)
	evalSpan(spans, r2.entry, 3, "feature_flag_evaluation.new-checkout", map[string]any{"feature_flag.key": "new-checkout", "feature_flag.variant": "off"})
	r3 := newFlagRequest(spans, 3, at)
	flagEvent(r3.child, "feature_flag", map[string]any{"feature_flag.key": "dark-mode", "feature_flag.result.value": true}) // Go hook without variant, older name
	r4 := newFlagRequest(spans, 4, at)
	flagEvent(r4.entry, "feature_flag.evaluation", map[string]any{"feature_flag.key": "limit", "feature_flag.result.value": 25})
	r5 := newFlagRequest(spans, 5, at)
	// A span named like one without an evaluation is an ordinary span.
	evalSpan(spans, r5.child, 3, "feature_flag_cache_refresh", map[string]any{"cache.size": 10})
	h.send(td)
	h.stop()

	got := cohortsOf(h)
	assert.Equal(t, map[string]string{"feature_flag.new-checkout": "on"}, got[1])
	assert.Equal(t, map[string]string{"feature_flag.new-checkout": "off"}, got[2])
	assert.Equal(t, map[string]string{"feature_flag.dark-mode": "true"}, got[3])
	assert.Equal(t, map[string]string{"feature_flag.limit": "25"}, got[4])
	assert.Empty(t, got[5])
	assert.Empty(t, flagEvents(h), "every evaluation met its entry span")
	assert.Equal(t, int64(2), droppedCount(t, h, reasonFlagEvaluation), "the two evaluation spans")
	assert.Equal(t, int64(5+1), droppedCount(t, h, reasonNotEntry), "the INTERNAL children and the cache span")
	for _, s := range []string{"span_event", "span", "log"} {
		assert.Zero(t, flagCounter(t, h, s))
	}
}

// Evaluations whose entry span is not in the batch (it went out in another
// one, maybe to another collector) become flag evaluation events of their
// unit, trace and active span; evaluations under a root that is no entry
// span belong to no request and are not kept.
func TestEvaluationsOfAnotherBatchEmitted(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.EntrySpans.IncludeRoot = false })
	td, spans := flagTrace("api")
	at := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	// Request 1: its entry span was in another batch; here a child with a
	// span event and an evaluation span below it.
	r1 := newFlagRequest(spans, 1, at)
	flagEvent(r1.child, "feature_flag.evaluation", map[string]any{"feature_flag.key": "new-checkout", "feature_flag.result.variant": "on"})
	flagEvent(r1.child, "feature_flag.evaluation", map[string]any{"feature_flag.key": "new-checkout", "feature_flag.result.variant": "off"})
	es := evalSpan(spans, r1.child, 3, "feature_flag.evaluation", map[string]any{"feature_flag.key": "color", "feature_flag.result.variant": "red"})
	spans.RemoveIf(func(s ptrace.Span) bool { return s.SpanID() == r1.entry.SpanID() })
	// Request 2: an evaluation span of a background job (a root INTERNAL span, no entry span).
	job := spans.AppendEmpty()
	job.SetTraceID(pcommon.TraceID{2, 0xf1})
	job.SetSpanID(pcommon.SpanID{2, 1})
	job.SetKind(ptrace.SpanKindInternal)
	job.SetName("refresh")
	job.SetStartTimestamp(pcommon.NewTimestampFromTime(at))
	job.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(time.Millisecond)))
	evalSpan(spans, job, 2, "feature_flag.evaluation", map[string]any{"feature_flag.key": "new-checkout", "feature_flag.result.variant": "on"})
	unit := eventspan.Resource{Service: "api", Environment: "staging"}
	tid := pcommon.TraceID{1, 0xf1}
	want := []eventspan.FlagEvaluation{
		{Resource: unit, Key: "new-checkout", Variant: "on", Time: int64(r1.child.StartTimestamp()) + 500, TraceID: tid, SpanID: r1.child.SpanID()},
		{Resource: unit, Key: "color", Variant: "red", Time: int64(es.StartTimestamp()), TraceID: tid, SpanID: r1.child.SpanID()},
	}
	h.send(td)
	h.stop()

	assert.ElementsMatch(t, want, flagEvents(h), "the first evaluation of a flag by a span counts; an evaluation span's is its parent's")
	assert.Equal(t, int64(1), flagCounter(t, h, "span_event"))
	assert.Equal(t, int64(1), flagCounter(t, h, "span"))
	lat, _ := h.decode()
	assert.Empty(t, lat)
}

// The bounds of a unit's dimensions hold for every shape together: values
// of a flag beyond max_values_per_key fold into __other__ whether they were
// on a latency event or emitted, keys beyond max_keys_per_unit are not
// kept, flag_keys filters all.
func TestEvaluationBoundsAcrossShapes(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Cohorts.MaxValuesPerKey, c.Cohorts.MaxKeysPerUnit = 2, 1 })
	td, spans := flagTrace("api")
	at := time.Now().Add(-time.Minute)
	r1 := newFlagRequest(spans, 1, at)
	flagEvent(r1.entry, "feature_flag.evaluation", map[string]any{"feature_flag.key": "color", "feature_flag.result.variant": "red"})
	r2 := newFlagRequest(spans, 2, at)
	evalSpan(spans, r2.child, 3, "feature_flag.evaluation", map[string]any{"feature_flag.key": "color", "feature_flag.result.variant": "green"})
	r3 := newFlagRequest(spans, 3, at)
	flagEvent(r3.child, "feature_flag.evaluation", map[string]any{"feature_flag.key": "color", "feature_flag.result.variant": "blue"})
	flagEvent(r3.child, "feature_flag.evaluation", map[string]any{"feature_flag.key": "size", "feature_flag.result.variant": "xl"})
	spans.RemoveIf(func(s ptrace.Span) bool { return s.SpanID() == r3.entry.SpanID() })
	h.send(td)
	h.stop()
	got := cohortsOf(h)
	assert.Equal(t, "red", got[1]["feature_flag.color"])
	ev := flagEvents(h)
	require.Len(t, ev, 1, "size is a second key of the unit")
	green, blue := got[2]["feature_flag.color"], ev[0].Variant
	assert.True(t, green == "green" && blue == otherValue || green == otherValue && blue == "blue",
		"of green (on a latency event) and blue (emitted), the value admitted second folds: %s, %s", green, blue)
	assert.Equal(t, int64(1), counterValue(t, h, "otelcol_processor_changelens_cohort_folds", attribute.String("reason", "values")))
	assert.Equal(t, int64(1), counterValue(t, h, "otelcol_processor_changelens_cohort_folds", attribute.String("reason", "keys")))

	h = newHarness(t, func(c *Config) { c.Cohorts.FlagKeys = []string{"size"} })
	td, spans = flagTrace("api")
	r := newFlagRequest(spans, 1, at)
	flagEvent(r.child, "feature_flag.evaluation", map[string]any{"feature_flag.key": "color", "feature_flag.result.variant": "red"})
	flagEvent(r.child, "feature_flag.evaluation", map[string]any{"feature_flag.key": "size", "feature_flag.result.variant": "xl"})
	spans.RemoveIf(func(s ptrace.Span) bool { return s.SpanID() == r.entry.SpanID() })
	h.send(td)
	h.stop()
	ev = flagEvents(h)
	require.Len(t, ev, 1)
	assert.Equal(t, "size", ev[0].Key)
}

// A second-tier processor (a gateway receiving the first tier's output)
// passes flag evaluation events through unchanged and does not read them
// as evaluations again.
func TestFlagEvaluationEventsPassThrough(t *testing.T) {
	h := newHarness(t, nil)
	td := ptrace.NewTraces()
	e := eventspan.FlagEvaluation{Resource: eventspan.Resource{Service: "api", Environment: "production"}, Key: "k", Variant: "v",
		Time: time.Now().Add(-time.Minute).UnixNano(), TraceID: pcommon.TraceID{9}, SpanID: pcommon.SpanID{9}}
	eventspan.AppendFlagEvaluations(td, e)
	h.send(td)
	h.stop()
	assert.Equal(t, []eventspan.FlagEvaluation{e}, flagEvents(h))
	assert.Zero(t, droppedCount(t, h, reasonFlagEvaluation))
	assert.Zero(t, flagCounter(t, h, "span"))
}

// logHarness runs the processor's logs path, beside an optional traces
// harness of the same configuration (the collector gives both the same
// *Config).
type logHarness struct {
	proc processor.Logs
	sink *consumertest.LogsSink
}

func newLogHarness(t *testing.T, cfg *Config, tel *componenttest.Telemetry) *logHarness {
	t.Helper()
	set := processortest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	sink := new(consumertest.LogsSink)
	p, err := NewFactory().CreateLogs(context.Background(), set, cfg, sink)
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	return &logHarness{proc: p, sink: sink}
}

func (h *logHarness) send(t *testing.T, ld plog.Logs) {
	t.Helper()
	require.NoError(t, h.proc.ConsumeLogs(context.Background(), ld))
}

// evalRecord appends a log record as OpenFeature's JavaScript EventHook
// emits one: event name feature_flag.evaluation, the evaluation as
// attributes, the active span's context.
func evalRecord(rl plog.ResourceLogs, trace byte, at time.Time, attrs map[string]any) plog.LogRecord {
	if rl.ScopeLogs().Len() == 0 {
		rl.ScopeLogs().AppendEmpty().Scope().SetName("@openfeature/open-telemetry-hooks")
	}
	lr := rl.ScopeLogs().At(0).LogRecords().AppendEmpty()
	lr.SetEventName("feature_flag.evaluation")
	lr.SetTimestamp(pcommon.NewTimestampFromTime(at))
	lr.SetTraceID(pcommon.TraceID{trace, 0xf1})
	lr.SetSpanID(pcommon.SpanID{trace, 2})
	putAttrs(lr.Attributes(), attrs)
	return lr
}

// Log records with a feature_flag.evaluation event (the event name field,
// or the event.name attribute of older SDKs, and the older event name) are
// kept as flag evaluation events — the variant read as for span events,
// written as feature_flag.result.variant; the time the timestamp, else the
// observed time; the resource's environment resolved — and every other
// record is dropped, counted by reason.
func TestLogBasedEvaluations(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	cfg := defaultConfig()
	h := newLogHarness(t, cfg, tel)
	at := time.Now().Add(-time.Minute).Truncate(time.Millisecond)

	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "api")
	evalRecord(rl, 1, at, map[string]any{"feature_flag.key": "new-checkout", "feature_flag.result.variant": "on", "feature_flag.provider.name": "flagd"})
	old := evalRecord(rl, 2, at, map[string]any{"feature_flag.key": "new-checkout", "feature_flag.variant": "off"})
	old.SetEventName("")
	old.Attributes().PutStr("event.name", "feature_flag")
	observed := evalRecord(rl, 3, at, map[string]any{"feature_flag.key": "dark-mode", "feature_flag.result.value": false})
	observed.SetTimestamp(0)
	observed.SetObservedTimestamp(pcommon.NewTimestampFromTime(at.Add(time.Second)))
	noTrace := evalRecord(rl, 4, at, map[string]any{"feature_flag.key": "new-checkout", "feature_flag.result.variant": "on"})
	noTrace.SetTraceID(pcommon.TraceID{})
	evalRecord(rl, 5, at, map[string]any{"feature_flag.key": "new-checkout"}) // no variant, no value
	evalRecord(rl, 6, at.Add(48*time.Hour), map[string]any{"feature_flag.key": "new-checkout", "feature_flag.result.variant": "on"})
	plain := rl.ScopeLogs().At(0).LogRecords().AppendEmpty()
	plain.Body().SetStr("GET / 200")
	plain.SetTraceID(pcommon.TraceID{7})
	plain.SetSpanID(pcommon.SpanID{7})
	anon := ld.ResourceLogs().AppendEmpty() // no service.name
	evalRecord(anon, 8, at, map[string]any{"feature_flag.key": "new-checkout", "feature_flag.result.variant": "on"})
	h.send(t, ld)
	require.NoError(t, h.proc.Shutdown(context.Background()))

	var got []eventspan.FlagEvaluation
	for _, out := range h.sink.AllLogs() {
		for _, rl := range out.ResourceLogs().All() {
			res := eventspan.ReadResource(rl.Resource().Attributes())
			for _, sl := range rl.ScopeLogs().All() {
				require.Equal(t, eventspan.KindFlagEvaluation, eventspan.ScopeKind(sl.Scope()))
				for _, lr := range sl.LogRecords().All() {
					got = append(got, eventspan.DecodeFlagEvaluationLog(res, lr))
				}
			}
		}
	}
	unit := eventspan.Resource{Service: "api", Environment: "default"}
	ev := func(trace byte, key, variant string, t time.Time) eventspan.FlagEvaluation {
		return eventspan.FlagEvaluation{Resource: unit, Key: key, Variant: variant, Time: t.UnixNano(),
			TraceID: pcommon.TraceID{trace, 0xf1}, SpanID: pcommon.SpanID{trace, 2}}
	}
	assert.Equal(t, []eventspan.FlagEvaluation{
		ev(1, "new-checkout", "on", at), ev(2, "new-checkout", "off", at), ev(3, "dark-mode", "false", at.Add(time.Second)),
	}, got)

	counter := func(name string, kv ...attribute.KeyValue) int64 {
		return counterValue(t, &harness{tel: tel}, name, kv...)
	}
	assert.Equal(t, int64(8), counter("otelcol_processor_changelens_log_records_received"))
	assert.Equal(t, int64(3), counter("otelcol_processor_changelens_flag_evaluations", attribute.String("source", "log")))
	for reason, want := range map[logDropReason]int64{logNotFlagEvaluation: 1, logInvalidEvaluation: 1, logMissingServiceName: 1,
		logMissingTrace: 1, logFutureTimestamp: 1} {
		assert.Equal(t, want, counter("otelcol_processor_changelens_log_records_dropped", attribute.String("reason", reason.String())), reason.String())
	}
}

// The traces and the logs processor of one configuration count a unit's
// cohort values together: a value the logs bring beyond the bound folds
// into __other__, counted in the same cohort_folds metric.
func TestLogEvaluationsShareBounds(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	cfg := defaultConfig()
	cfg.Cohorts.MaxValuesPerKey = 2
	set := processortest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	traces, err := NewFactory().CreateTraces(context.Background(), set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	require.NoError(t, traces.Start(context.Background(), componenttest.NewNopHost()))
	logs := newLogHarness(t, cfg, tel)

	td, spans := flagTrace("api")
	at := time.Now().Add(-time.Minute)
	for i, v := range []string{"red", "green"} {
		r := newFlagRequest(spans, byte(i+1), at)
		flagEvent(r.entry, "feature_flag.evaluation", map[string]any{"feature_flag.key": "color", "feature_flag.result.variant": v})
	}
	require.NoError(t, traces.ConsumeTraces(context.Background(), td))
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "api")
	rl.Resource().Attributes().PutStr("deployment.environment", "staging")
	evalRecord(rl, 3, at, map[string]any{"feature_flag.key": "color", "feature_flag.result.variant": "blue"})
	evalRecord(rl, 4, at, map[string]any{"feature_flag.key": "color", "feature_flag.result.variant": "red"})
	logs.send(t, ld)
	require.NoError(t, traces.Shutdown(context.Background()))
	require.NoError(t, logs.proc.Shutdown(context.Background()))

	var variants []string
	for _, out := range logs.sink.AllLogs() {
		for _, rl := range out.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					v, _ := lr.Attributes().Get("feature_flag.result.variant")
					variants = append(variants, v.Str())
				}
			}
		}
	}
	assert.Equal(t, []string{otherValue, "red"}, variants)
	assert.Equal(t, int64(1), counterValue(t, &harness{tel: tel}, "otelcol_processor_changelens_cohort_folds", attribute.String("reason", "values")))
	sharedCohorts.Lock()
	_, kept := sharedCohorts.m[cfg]
	sharedCohorts.Unlock()
	assert.False(t, kept, "the bounds are forgotten once both processors shut down")
}
