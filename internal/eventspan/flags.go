package eventspan

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Flag evaluation events (AttrEventType = EventFlagEvaluation) are feature-
// flag evaluations the processor could not credit to an entry span of the
// same batch: every log-based evaluation (a feature_flag.evaluation log
// record), and the span events and per-evaluation spans whose request's
// entry span was not in the batch. One event is one evaluation:
//   - resource service.name and deployment.environment.name (resolved as
//     for latency events): the unit that evaluated;
//   - AttrFlagKey (string) and AttrFlagVariant (string): the flag and its
//     variant as recorded, within the processor's cohort bounds (a value
//     beyond them is "__other__");
//   - the time of the evaluation, and the trace and span IDs of the span
//     that was active when it happened.
//
// They travel in both signals: as spans in a traces pipeline
// (AppendFlagEvaluations: name FlagEvaluationEvent, kind INTERNAL, start and
// end the evaluation's time) and as the log records themselves in a logs
// pipeline (the processor keeps the evaluation records, resolved and bounded
// in place, in scopes marked like the spans'). DecodeFlagEvaluation and
// DecodeFlagEvaluationLog read both. The exporter stores them
// (flag_evaluations); the query side credits each to the latency events of
// its unit and trace that do not carry the flag themselves, so the cohort
// does not depend on which collector received which signal of a request.
const EventFlagEvaluation = "flag_evaluation"

// Semantic-convention names of feature-flag evaluations, which every shape
// (span event, log-based event, per-evaluation span) carries the same way.
const (
	// FlagEvaluationEvent is the event name (span event name, log record
	// event name) and the name of a per-evaluation span.
	FlagEvaluationEvent = "feature_flag.evaluation"
	// FlagEvaluationEventOld is the event name before semantic conventions
	// 1.27 ("feature_flag"), still sent by older OpenFeature hooks.
	FlagEvaluationEventOld = "feature_flag"
	// AttrEventName is a log record's event name before the log data model
	// had a field for it.
	AttrEventName      = "event.name"
	AttrFlagKey        = "feature_flag.key"
	AttrFlagVariant    = "feature_flag.result.variant"
	AttrFlagVariantOld = "feature_flag.variant" // before semantic conventions 1.32
	// AttrFlagValue is the evaluated value: the variant when the provider
	// names none.
	AttrFlagValue = "feature_flag.result.value"
)

// FlagEvaluation is one flag evaluation event. Strings decoded from pdata
// point into it.
type FlagEvaluation struct {
	Resource // Service and Environment (Version is not recorded)
	Key      string
	Variant  string
	Time     int64 // unix ns
	TraceID  pcommon.TraceID
	SpanID   pcommon.SpanID // the span active during the evaluation
}

// AppendFlagEvaluations appends evaluations to td as the processor emits
// them in a traces pipeline: consecutive evaluations of one unit share a
// ResourceSpans with one scope marked EventFlagEvaluation.
func AppendFlagEvaluations(td ptrace.Traces, evals ...FlagEvaluation) {
	var (
		spans ptrace.SpanSlice
		cur   *Resource
	)
	for i := range evals {
		e := &evals[i]
		if cur == nil || cur.Service != e.Service || cur.Environment != e.Environment {
			rs := td.ResourceSpans().AppendEmpty()
			a := rs.Resource().Attributes()
			a.PutStr(AttrServiceName, e.Service)
			a.PutStr(AttrDeploymentEnvironment, e.Environment)
			ss := rs.ScopeSpans().AppendEmpty()
			MarkScope(ss.Scope(), EventFlagEvaluation)
			spans = ss.Spans()
			cur = &e.Resource
		}
		s := spans.AppendEmpty()
		s.SetName(FlagEvaluationEvent)
		s.SetKind(ptrace.SpanKindInternal)
		s.SetStartTimestamp(pcommon.Timestamp(e.Time))
		s.SetEndTimestamp(pcommon.Timestamp(e.Time))
		s.SetTraceID(e.TraceID)
		s.SetSpanID(e.SpanID)
		a := s.Attributes()
		a.EnsureCapacity(2)
		a.PutStr(AttrFlagKey, e.Key)
		a.PutStr(AttrFlagVariant, e.Variant)
	}
}

// DecodeFlagEvaluation reads a flag evaluation event span of resource res.
func DecodeFlagEvaluation(res Resource, s ptrace.Span) FlagEvaluation {
	return FlagEvaluation{
		Resource: Resource{Service: res.Service, Environment: res.Environment},
		Key:      str(s.Attributes(), AttrFlagKey),
		Variant:  str(s.Attributes(), AttrFlagVariant),
		Time:     int64(s.StartTimestamp()),
		TraceID:  s.TraceID(),
		SpanID:   s.SpanID(),
	}
}

// AppendFlagEvaluationLogs appends evaluations to ld as the processor emits
// them in a logs pipeline: consecutive evaluations of one unit share a
// ResourceLogs with one scope marked EventFlagEvaluation.
func AppendFlagEvaluationLogs(ld plog.Logs, evals ...FlagEvaluation) {
	var (
		records plog.LogRecordSlice
		cur     *Resource
	)
	for i := range evals {
		e := &evals[i]
		if cur == nil || cur.Service != e.Service || cur.Environment != e.Environment {
			rl := ld.ResourceLogs().AppendEmpty()
			a := rl.Resource().Attributes()
			a.PutStr(AttrServiceName, e.Service)
			a.PutStr(AttrDeploymentEnvironment, e.Environment)
			sl := rl.ScopeLogs().AppendEmpty()
			MarkScope(sl.Scope(), EventFlagEvaluation)
			records = sl.LogRecords()
			cur = &e.Resource
		}
		lr := records.AppendEmpty()
		lr.SetEventName(FlagEvaluationEvent)
		lr.SetTimestamp(pcommon.Timestamp(e.Time))
		lr.SetTraceID(e.TraceID)
		lr.SetSpanID(e.SpanID)
		a := lr.Attributes()
		a.EnsureCapacity(2)
		a.PutStr(AttrFlagKey, e.Key)
		a.PutStr(AttrFlagVariant, e.Variant)
	}
}

// DecodeFlagEvaluationLog reads a log record of a scope marked
// EventFlagEvaluation, of resource res. The time is the record's timestamp,
// else its observed timestamp.
func DecodeFlagEvaluationLog(res Resource, lr plog.LogRecord) FlagEvaluation {
	t := lr.Timestamp()
	if t == 0 {
		t = lr.ObservedTimestamp()
	}
	return FlagEvaluation{
		Resource: Resource{Service: res.Service, Environment: res.Environment},
		Key:      str(lr.Attributes(), AttrFlagKey),
		Variant:  str(lr.Attributes(), AttrFlagVariant),
		Time:     int64(t),
		TraceID:  lr.TraceID(),
		SpanID:   lr.SpanID(),
	}
}

func str(m pcommon.Map, k string) string {
	if v, ok := m.Get(k); ok {
		return strOf(v)
	}
	return ""
}
