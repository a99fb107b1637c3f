package changelensprocessor

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/changelens/changelens/internal/eventspan"
)

func TestOutcomesConfigValidation(t *testing.T) {
	cfg := defaultConfig()
	cfg.Outcomes = []OutcomeConfig{
		{Name: "purchase", SpanName: "checkout"},
		{Name: "", SpanEvent: "x"},
		{Name: "purchase", LogEvent: "y"},
		{Name: "signup"},
		{Name: "both", SpanName: "a", LogEvent: "b"},
		{Name: "crash", LogEvent: "c"},
		{Name: "attrs", SpanName: "a", Attributes: map[string]any{" ": "v"}},
		{Name: "nested", SpanName: "a", Attributes: map[string]any{"k": []any{"v"}}},
	}
	err := cfg.Validate()
	require.Error(t, err)
	for _, want := range []string{
		"outcomes[1].name: must not be empty",
		`outcomes[2].name: "purchase" is also outcomes[0]'s`,
		"outcomes[3]: set exactly one of span_name, span_event and log_event (0 set)",
		"outcomes[4]: set exactly one of span_name, span_event and log_event (2 set)",
		`outcomes[5].name: "crash" is reserved for crashes`,
		"outcomes[6].attributes: empty attribute name",
		"outcomes[7].attributes.k: want a string, number or boolean, got []interface {}",
	} {
		require.Contains(t, err.Error(), want)
	}
	require.NotContains(t, err.Error(), "outcomes[0]:")
	cfg.Outcomes = cfg.Outcomes[:1]
	require.NoError(t, cfg.Validate())
}

// outcomesOf decodes the outcome events of the processor's output.
func outcomesOf(tds []ptrace.Traces) []eventspan.Outcome {
	var out []eventspan.Outcome
	for _, td := range tds {
		for _, rs := range td.ResourceSpans().All() {
			res := eventspan.ReadResource(rs.Resource().Attributes())
			for _, ss := range rs.ScopeSpans().All() {
				if eventspan.ScopeKind(ss.Scope()) != eventspan.KindOutcome {
					continue
				}
				for _, s := range ss.Spans().All() {
					out = append(out, eventspan.DecodeOutcome(res, s))
				}
			}
		}
	}
	return out
}

// A browser app's spans: a span named as an outcome (with the matching
// attribute, and one without), a span event outcome, and an uncaught
// exception on a child span (a crash outcome); the same shapes on a
// server's resource make only the configured outcomes.
func TestOutcomesFromSpans(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Outcomes = []OutcomeConfig{
			{Name: "purchase", SpanName: "checkout", Attributes: map[string]any{"payment.ok": true}},
			{Name: "signup", SpanEvent: "user.signup"},
		}
	})
	build := func(client bool, service string) ptrace.Traces {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		ra := rs.Resource().Attributes()
		ra.PutStr("service.name", service)
		ra.PutStr("service.version", "2.1.0")
		if client {
			ra.PutStr("telemetry.sdk.language", "webjs")
		}
		spans := rs.ScopeSpans().AppendEmpty().Spans()
		mk := func(name string, id byte, parent bool, attrs map[string]any) ptrace.Span {
			s := spans.AppendEmpty()
			s.SetName(name)
			s.SetTraceID(pcommon.TraceID{id})
			s.SetSpanID(pcommon.SpanID{id, 1})
			if parent {
				s.SetParentSpanID(pcommon.SpanID{id, 9})
			}
			s.SetStartTimestamp(pcommon.NewTimestampFromTime(t0))
			s.SetEndTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Second)))
			putAttrs(s.Attributes(), attrs)
			return s
		}
		mk("checkout", 1, true, map[string]any{"session.id": "s1", "enduser.id": "u1", "payment.ok": true})
		mk("checkout", 2, true, map[string]any{"session.id": "s2", "payment.ok": false})
		root := mk("documentLoad", 3, false, map[string]any{"session.id": "s3", "user.id": "u3"})
		ev := root.Events().AppendEmpty()
		ev.SetName("user.signup")
		ev.SetTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Millisecond)))
		child := mk("click", 4, true, map[string]any{"session.id": "s4"})
		ex := child.Events().AppendEmpty()
		ex.SetName("exception")
		ex.SetTimestamp(pcommon.NewTimestampFromTime(t0.Add(2 * time.Millisecond)))
		ex.Attributes().PutBool("exception.escaped", true)
		handled := mk("click", 5, true, map[string]any{"session.id": "s5"})
		hx := handled.Events().AppendEmpty()
		hx.SetName("exception")
		hx.SetTimestamp(pcommon.NewTimestampFromTime(t0))
		return td
	}
	h.send(build(true, "web"))
	h.send(build(false, "api"))
	got := map[string]string{}
	for _, o := range outcomesOf(h.sink.AllTraces()) {
		require.Equal(t, "default", o.Environment)
		got[o.Service+"/"+o.Name+"/"+o.SessionID+"/"+o.UserID] = o.TraceID.String()[:2]
	}
	require.Equal(t, map[string]string{
		"web/purchase/s1/u1": "01", "web/signup/s3/u3": "03", "web/crash/s4/": "04",
		"api/purchase/s1/u1": "01", "api/signup/s3/u3": "03",
	}, got)
	require.Equal(t, int64(5), counterValue(t, h, "otelcol_processor_changelens_outcome_events"))
	// Latency events are unchanged: the root span is still one.
	lat, _ := h.decode()
	require.Len(t, lat, 2)
}

// Crash log records (device.crash) and log_event outcomes become outcome
// events in a logs pipeline, leaving the flag evaluations where they were.
func TestOutcomesFromLogs(t *testing.T) {
	cfg := defaultConfig()
	cfg.Outcomes = []OutcomeConfig{{Name: "purchase", LogEvent: "app.purchase", Attributes: map[string]any{"plan": "pro"}}}
	require.NoError(t, cfg.Validate())
	tel := componenttest.NewTelemetry()
	h := newLogHarness(t, cfg, tel)
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "app")
	rl.Resource().Attributes().PutStr("os.name", "Android")
	rl.Resource().Attributes().PutStr("session.id", "res-session")
	evalRecord(rl, 7, t0, map[string]any{"feature_flag.key": "f", "feature_flag.result.variant": "on"})
	recs := rl.ScopeLogs().At(0).LogRecords()
	crash := recs.AppendEmpty()
	crash.SetEventName("device.crash")
	crash.SetTimestamp(pcommon.NewTimestampFromTime(t0))
	crash.Attributes().PutStr("session.id", "s9")
	buy := recs.AppendEmpty()
	buy.Attributes().PutStr("event.name", "app.purchase")
	buy.Attributes().PutStr("plan", "pro")
	buy.Attributes().PutStr("enduser.id", "u9")
	buy.SetObservedTimestamp(pcommon.NewTimestampFromTime(t0))
	other := recs.AppendEmpty()
	other.Attributes().PutStr("event.name", "app.purchase")
	other.Attributes().PutStr("plan", "free")
	other.SetTimestamp(pcommon.NewTimestampFromTime(t0))
	h.send(t, ld)

	var outs []string
	flags := 0
	for _, l := range h.sink.AllLogs() {
		for _, rl := range l.ResourceLogs().All() {
			res := eventspan.ReadResource(rl.Resource().Attributes())
			for _, sl := range rl.ScopeLogs().All() {
				switch eventspan.ScopeKind(sl.Scope()) {
				case eventspan.KindOutcome:
					for _, lr := range sl.LogRecords().All() {
						o := eventspan.DecodeOutcomeLog(res, lr)
						outs = append(outs, strings.Join([]string{o.Service, o.Environment, o.Name, o.SessionID, o.UserID}, "/"))
						require.Equal(t, t0.UnixNano(), o.Time)
					}
				case eventspan.KindFlagEvaluation:
					flags += sl.LogRecords().Len()
				}
			}
		}
	}
	require.Equal(t, 1, flags)
	require.ElementsMatch(t, []string{"app/default/crash/s9/", "app/default/purchase/res-session/u9"}, outs)
}
