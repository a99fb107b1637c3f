// Package flagtest builds one seeded feature-flag experiment as OpenTelemetry
// SDKs send it, in each shape an evaluation takes (docs/flags.md): span
// events on the span active during the evaluation, log-based events
// (feature_flag.evaluation log records in the active span's context) beside
// the request's spans, and one span per evaluation. The requests — trace and
// span IDs, times, durations, statuses, body sizes — are the same in every
// shape, so whatever reads the stored experiment must give one answer.
package flagtest

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// The experiment's unit and flag.
const (
	Service     = "checkout"
	Environment = "production"
	Version     = "3.1.0"
	Flag        = "new-checkout"
	Control     = "off"
	Treatment   = "on"
)

// Request is one request of the experiment: an entry SERVER span and the
// INTERNAL span active while the flag was evaluated.
type Request struct {
	Operation         string
	Route             string
	Start             time.Time
	Duration          time.Duration
	Status            int64
	ResponseSize      int64
	Variant           string
	TraceID           pcommon.TraceID
	EntryID, ActiveID pcommon.SpanID
	// OnEntry: the evaluation happened while the entry span was active
	// (a hook called in the handler itself), so its span event is on the
	// entry span and its log record in the entry span's context.
	OnEntry bool
}

// EvaluatedAt is when the flag was evaluated: just after the active span
// started.
func (r *Request) EvaluatedAt() time.Time { return r.activeStart().Add(100 * time.Microsecond) }

func (r *Request) activeStart() time.Time { return r.Start.Add(time.Millisecond) }

// ContextID is the span active during the evaluation.
func (r *Request) ContextID() pcommon.SpanID {
	if r.OnEntry {
		return r.EntryID
	}
	return r.ActiveID
}

// Experiment is minutes of requests, PerMinute a minute, from Start: half
// of them see the treatment, which is 1.3 times slower and fails 3 % of the
// time against the control's 1 %.
type Experiment struct {
	Start    time.Time
	Minutes  int
	Requests []Request
}

// New builds the experiment from seed.
func New(seed uint64, start time.Time, minutes, perMinute int) *Experiment {
	r := rand.New(rand.NewPCG(seed, seed))
	e := &Experiment{Start: start, Minutes: minutes}
	seq := uint64(0)
	for m := range minutes {
		for i := range perMinute {
			seq++
			q := Request{Operation: "GET /cart", Route: "/cart", Variant: Control, OnEntry: i%3 == 0}
			if i%4 == 3 {
				q.Operation, q.Route = "POST /checkout", "/checkout"
			}
			slow, errRate := 1.0, 0.01
			if r.Float64() < 0.5 {
				q.Variant, slow, errRate = Treatment, 1.3, 0.03
			}
			q.Start = start.Add(time.Duration(m)*time.Minute + time.Duration(i)*time.Minute/time.Duration(perMinute) +
				time.Duration(r.IntN(1000))*time.Microsecond)
			q.Duration = time.Duration(30e6*slow*math.Exp(0.4*r.NormFloat64())) + 2*time.Millisecond
			q.Status = 200
			if r.Float64() < errRate {
				q.Status = 500
			}
			q.ResponseSize = int64(200 + r.IntN(5000))
			binary.BigEndian.PutUint64(q.TraceID[:8], 0xf1a9)
			binary.BigEndian.PutUint64(q.TraceID[8:], seq)
			binary.BigEndian.PutUint64(q.EntryID[:], seq<<8|1)
			binary.BigEndian.PutUint64(q.ActiveID[:], seq<<8|2)
			e.Requests = append(e.Requests, q)
		}
	}
	return e
}

// minute returns the requests of minute m.
func (e *Experiment) minute(m int) []Request {
	from, to := e.Start.Add(time.Duration(m)*time.Minute), e.Start.Add(time.Duration(m+1)*time.Minute)
	var out []Request
	for _, q := range e.Requests {
		if !q.Start.Before(from) && q.Start.Before(to) {
			out = append(out, q)
		}
	}
	return out
}

// spans is a ResourceSpans of the experiment's unit, as its SDK exports.
func spans(td ptrace.Traces) ptrace.SpanSlice {
	rs := td.ResourceSpans().AppendEmpty()
	a := rs.Resource().Attributes()
	a.PutStr("service.name", Service)
	a.PutStr("service.version", Version)
	a.PutStr("deployment.environment.name", Environment)
	a.PutStr("telemetry.sdk.language", "go")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp")
	return ss.Spans()
}

// appendRequest appends q's entry span and active span.
func appendRequest(s ptrace.SpanSlice, q *Request) (entry, active ptrace.Span) {
	entry = s.AppendEmpty()
	entry.SetTraceID(q.TraceID)
	entry.SetSpanID(q.EntryID)
	entry.SetKind(ptrace.SpanKindServer)
	entry.SetName(q.Operation)
	entry.SetStartTimestamp(pcommon.NewTimestampFromTime(q.Start))
	entry.SetEndTimestamp(pcommon.NewTimestampFromTime(q.Start.Add(q.Duration)))
	a := entry.Attributes()
	a.PutStr("http.request.method", q.Operation[:len(q.Operation)-len(q.Route)-1])
	a.PutStr("http.route", q.Route)
	a.PutInt("http.response.status_code", q.Status)
	a.PutInt("http.response.body.size", q.ResponseSize)
	active = s.AppendEmpty()
	active.SetTraceID(q.TraceID)
	active.SetSpanID(q.ActiveID)
	active.SetParentSpanID(q.EntryID)
	active.SetKind(ptrace.SpanKindInternal)
	active.SetName("load cart")
	active.SetStartTimestamp(pcommon.NewTimestampFromTime(q.activeStart()))
	active.SetEndTimestamp(pcommon.NewTimestampFromTime(q.Start.Add(q.Duration - time.Millisecond)))
	return entry, active
}

// evaluationAttributes are what OpenFeature's hooks record of an evaluation.
func evaluationAttributes(a pcommon.Map, q *Request) {
	a.PutStr("feature_flag.key", Flag)
	a.PutStr("feature_flag.provider.name", "flagd")
	a.PutStr("feature_flag.result.variant", q.Variant)
	a.PutBool("feature_flag.result.value", q.Variant == Treatment)
	a.PutStr("feature_flag.result.reason", "TARGETING_MATCH")
}

// SpanEvents is the experiment with its evaluations as span events named
// feature_flag.evaluation on the active span (OpenFeature's Go, Java and
// .NET span-event hooks), one batch per minute of whole requests.
func (e *Experiment) SpanEvents() []ptrace.Traces {
	var out []ptrace.Traces
	for m := range e.Minutes {
		td := ptrace.NewTraces()
		s := spans(td)
		for _, q := range e.minute(m) {
			entry, active := appendRequest(s, &q)
			on := active
			if q.OnEntry {
				on = entry
			}
			ev := on.Events().AppendEmpty()
			ev.SetName("feature_flag.evaluation")
			ev.SetTimestamp(pcommon.NewTimestampFromTime(q.EvaluatedAt()))
			evaluationAttributes(ev.Attributes(), &q)
		}
		out = append(out, td)
	}
	return out
}

// LogEvents is the experiment with its evaluations as log-based events
// (OpenFeature's JavaScript EventHook: a feature_flag.evaluation event on
// the Logs API in the active span's context): the requests' spans, one
// batch per minute, and their evaluations, one batch per minute.
func (e *Experiment) LogEvents() ([]ptrace.Traces, []plog.Logs) {
	var traces []ptrace.Traces
	var logs []plog.Logs
	for m := range e.Minutes {
		td := ptrace.NewTraces()
		s := spans(td)
		ld := plog.NewLogs()
		rl := ld.ResourceLogs().AppendEmpty()
		a := rl.Resource().Attributes()
		a.PutStr("service.name", Service)
		a.PutStr("service.version", Version)
		a.PutStr("deployment.environment.name", Environment)
		sl := rl.ScopeLogs().AppendEmpty()
		sl.Scope().SetName("@openfeature/open-telemetry-hooks")
		for _, q := range e.minute(m) {
			appendRequest(s, &q)
			lr := sl.LogRecords().AppendEmpty()
			lr.SetEventName("feature_flag.evaluation")
			lr.SetTimestamp(pcommon.NewTimestampFromTime(q.EvaluatedAt()))
			lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(q.EvaluatedAt()))
			lr.SetTraceID(q.TraceID)
			lr.SetSpanID(q.ContextID())
			lr.SetSeverityNumber(plog.SeverityNumberInfo)
			evaluationAttributes(lr.Attributes(), &q)
		}
		traces = append(traces, td)
		logs = append(logs, ld)
	}
	return traces, logs
}

// EvaluationSpans is the experiment with one span per evaluation
// (OpenFeature's JavaScript SpanHook: a span named feature_flag.evaluation,
// a child of the active span, with the evaluation as attributes). Even
// minutes are one batch of whole requests; in odd minutes the batch is
// split as an SDK's batch processor may split requests: the entry spans in
// one batch, the active and evaluation spans in the next — Split says which
// batches hold the requests' second halves.
func (e *Experiment) EvaluationSpans() (batches []ptrace.Traces, split []bool) {
	for m := range e.Minutes {
		whole := ptrace.NewTraces()
		s := spans(whole)
		var rest ptrace.SpanSlice
		var restTd ptrace.Traces
		if m%2 == 1 {
			restTd = ptrace.NewTraces()
			rest = spans(restTd)
		}
		for _, q := range e.minute(m) {
			entry, active := appendRequest(s, &q)
			parent := active
			if q.OnEntry {
				parent = entry
			}
			ev := s.AppendEmpty()
			ev.SetTraceID(q.TraceID)
			ev.SetSpanID(pcommon.SpanID{0xee, q.ActiveID[1], q.ActiveID[2], q.ActiveID[3], q.ActiveID[4], q.ActiveID[5], q.ActiveID[6], q.ActiveID[7]})
			ev.SetParentSpanID(parent.SpanID())
			ev.SetKind(ptrace.SpanKindInternal)
			ev.SetName("feature_flag.evaluation")
			ev.SetStartTimestamp(pcommon.NewTimestampFromTime(q.EvaluatedAt()))
			ev.SetEndTimestamp(pcommon.NewTimestampFromTime(q.EvaluatedAt().Add(20 * time.Microsecond)))
			evaluationAttributes(ev.Attributes(), &q)
			if m%2 == 1 {
				// Move all but the entry span to the second batch.
				for _, sp := range []ptrace.Span{active, ev} {
					sp.CopyTo(rest.AppendEmpty())
				}
			}
		}
		if m%2 == 1 {
			s.RemoveIf(func(sp ptrace.Span) bool { return sp.Kind() != ptrace.SpanKindServer })
			batches, split = append(batches, whole, restTd), append(split, false, true)
			continue
		}
		batches, split = append(batches, whole), append(split, false)
	}
	return batches, split
}

// Counts are the experiment's requests and errors per variant.
func (e *Experiment) Counts() (requests, errors map[string]int) {
	requests, errors = map[string]int{}, map[string]int{}
	for _, q := range e.Requests {
		requests[q.Variant]++
		if q.Status >= 500 {
			errors[q.Variant]++
		}
	}
	return requests, errors
}
