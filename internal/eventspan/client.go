package eventspan

import (
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Client units are the apps browser and mobile OpenTelemetry SDKs report:
// their root spans (document load, page view, screen load) are latency
// events like a server's entry spans, and carry the session and user of
// the person using the app, which a server's spans do not. Whether a unit
// is a client is a property of its resource (IsClientResource), decided
// once per resource, so server spans pay nothing for it.
//
// Outcome events (AttrEventType = EventOutcome) are occurrences of what a
// team counts as success or failure of a session: a span, span event or log
// record matching one of the processor's configured outcomes, and the crash
// log records of mobile SDKs (OutcomeCrash). One event is one occurrence:
//   - resource service.name and deployment.environment.name (resolved as
//     for latency events): the unit it happened in;
//   - AttrOutcomeName: the outcome's configured name, or OutcomeCrash;
//   - AttrSessionID and AttrUserID when known;
//   - the time, and the trace and span IDs it came from (the span's own,
//     the span carrying the event, or the log record's context).
//
// They travel as spans in a traces pipeline (AppendOutcomes) and as log
// records in a logs pipeline (AppendOutcomeLogs); DecodeOutcome and
// DecodeOutcomeLog read both. The exporter stores them in outcome_events
// (schema v15).
const EventOutcome = "outcome"

// Semantic-convention names of client telemetry.
const (
	AttrSessionID    = "session.id"
	AttrEndUserID    = "enduser.id"
	AttrUserID       = "user.id"
	AttrSDKLanguage  = "telemetry.sdk.language"
	AttrOSName       = "os.name"
	AttrExcEscaped   = "exception.escaped"
	resBrowserPrefix = "browser."
)

// AttrOutcomeName is an outcome event's name.
const AttrOutcomeName = "changelens.outcome.name"

// OutcomeCrash is the name of the outcome events made of crash records.
const OutcomeCrash = "crash"

// CrashEventNames are the span event and log record names SDKs report a
// crash under: opentelemetry-android's crash instrumentation
// ("device.crash"), the older mobile events' "crash" (event.domain device),
// and "app.crash", which vendors' mobile SDKs use.
var CrashEventNames = []string{"device.crash", "app.crash", "crash"}

// IsCrashEventName reports whether a span event or log record of that name
// reports a crash.
func IsCrashEventName(name string) bool {
	for _, n := range CrashEventNames {
		if name == n {
			return true
		}
	}
	return false
}

// clientLanguages are the telemetry.sdk.language values of browser and
// mobile SDKs. Java is not among them: Android apps report "java" (or
// "android") with os.name Android, servers "java" without it.
var clientLanguages = []string{"webjs", "swift", "dart", "kotlin", "android", "objective-c"}

// clientOS are the os.name values of mobile platforms (compared without
// case).
var clientOS = []string{"android", "ios", "ipados", "watchos", "tvos"}

// IsClientResource reports whether a resource is a browser or mobile app:
// a client SDK's telemetry.sdk.language, a mobile os.name, or any browser.*
// attribute (the browser resource detector's).
func IsClientResource(attrs pcommon.Map) bool {
	for k, v := range attrs.All() {
		switch {
		case k == AttrSDKLanguage:
			if v.Type() == pcommon.ValueTypeStr && oneOf(v.Str(), clientLanguages) {
				return true
			}
		case k == AttrOSName:
			if v.Type() == pcommon.ValueTypeStr && oneOf(v.Str(), clientOS) {
				return true
			}
		case strings.HasPrefix(k, resBrowserPrefix):
			return true
		}
	}
	return false
}

// oneOf compares without case and without allocating: it runs for every
// resource of every batch, servers' included.
func oneOf(s string, set []string) bool {
	for _, x := range set {
		if strings.EqualFold(s, x) {
			return true
		}
	}
	return false
}

// Client is what a client unit's latency event says of its session.
type Client struct {
	SessionID, UserID string
	Crashed           bool
}

// ReadClient reads a client unit's span (the resource's attributes res
// where the span names no session or user): session.id; enduser.id, else
// user.id; crashed when an event on the span is an exception with
// exception.escaped = true or is named a crash (CrashEventNames).
func ReadClient(s ptrace.Span, res pcommon.Map) Client {
	var c Client
	var user string
	for k, v := range s.Attributes().All() {
		switch k {
		case AttrSessionID:
			c.SessionID = v.AsString()
		case AttrEndUserID:
			c.UserID = v.AsString()
		case AttrUserID:
			user = v.AsString()
		}
	}
	if c.UserID == "" {
		c.UserID = user
	}
	if c.SessionID == "" || c.UserID == "" {
		s2, u2 := sessionUser(res)
		if c.SessionID == "" {
			c.SessionID = s2
		}
		if c.UserID == "" {
			c.UserID = u2
		}
	}
	c.Crashed = SpanCrashed(s)
	return c
}

// sessionUser reads session.id and enduser.id (else user.id) from attrs.
func sessionUser(attrs pcommon.Map) (session, user string) {
	var u string
	for k, v := range attrs.All() {
		switch k {
		case AttrSessionID:
			session = v.AsString()
		case AttrEndUserID:
			user = v.AsString()
		case AttrUserID:
			u = v.AsString()
		}
	}
	if user == "" {
		user = u
	}
	return session, user
}

// SessionUser reads the session and user of a span, log record or
// resource's attributes, falling back to the resource's.
func SessionUser(attrs, res pcommon.Map) (session, user string) {
	session, user = sessionUser(attrs)
	if session == "" || user == "" {
		s2, u2 := sessionUser(res)
		if session == "" {
			session = s2
		}
		if user == "" {
			user = u2
		}
	}
	return session, user
}

// SpanCrashed reports whether one of s's events shows a crash.
func SpanCrashed(s ptrace.Span) bool {
	for _, ev := range s.Events().All() {
		if EventCrashed(ev) {
			return true
		}
	}
	return false
}

// EventCrashed reports whether a span event shows a crash: an exception
// that escaped the span (uncaught), or an event named a crash.
func EventCrashed(ev ptrace.SpanEvent) bool {
	name := ev.Name()
	if name == ExceptionEvent {
		v, ok := ev.Attributes().Get(AttrExcEscaped)
		return ok && (v.Type() == pcommon.ValueTypeBool && v.Bool() || v.Type() == pcommon.ValueTypeStr && v.Str() == "true")
	}
	return IsCrashEventName(name)
}

// Outcome is one outcome event. Strings decoded from pdata point into it.
type Outcome struct {
	Resource          // Service and Environment (Version is not recorded)
	Name              string
	Time              int64 // unix ns
	SessionID, UserID string
	TraceID           pcommon.TraceID
	SpanID            pcommon.SpanID
}

// AppendOutcomes appends outcomes to td as the processor emits them in a
// traces pipeline: consecutive outcomes of one unit share a ResourceSpans
// with one scope marked EventOutcome.
func AppendOutcomes(td ptrace.Traces, outs ...Outcome) {
	var (
		spans ptrace.SpanSlice
		cur   *Resource
	)
	for i := range outs {
		o := &outs[i]
		if cur == nil || cur.Service != o.Service || cur.Environment != o.Environment {
			rs := td.ResourceSpans().AppendEmpty()
			a := rs.Resource().Attributes()
			a.PutStr(AttrServiceName, o.Service)
			a.PutStr(AttrDeploymentEnvironment, o.Environment)
			ss := rs.ScopeSpans().AppendEmpty()
			MarkScope(ss.Scope(), EventOutcome)
			spans = ss.Spans()
			cur = &o.Resource
		}
		s := spans.AppendEmpty()
		s.SetName(o.Name)
		s.SetKind(ptrace.SpanKindInternal)
		s.SetStartTimestamp(pcommon.Timestamp(o.Time))
		s.SetEndTimestamp(pcommon.Timestamp(o.Time))
		s.SetTraceID(o.TraceID)
		s.SetSpanID(o.SpanID)
		putOutcome(s.Attributes(), o)
	}
}

func putOutcome(a pcommon.Map, o *Outcome) {
	a.EnsureCapacity(3)
	a.PutStr(AttrOutcomeName, o.Name)
	if o.SessionID != "" {
		a.PutStr(AttrSessionID, o.SessionID)
	}
	if o.UserID != "" {
		a.PutStr(AttrEndUserID, o.UserID)
	}
}

// DecodeOutcome reads an outcome event span of resource res.
func DecodeOutcome(res Resource, s ptrace.Span) Outcome {
	a := s.Attributes()
	return Outcome{
		Resource:  Resource{Service: res.Service, Environment: res.Environment},
		Name:      str(a, AttrOutcomeName),
		Time:      int64(s.StartTimestamp()),
		SessionID: str(a, AttrSessionID),
		UserID:    str(a, AttrEndUserID),
		TraceID:   s.TraceID(),
		SpanID:    s.SpanID(),
	}
}

// AppendOutcomeLogs appends outcomes to ld as the processor emits them in a
// logs pipeline: consecutive outcomes of one unit share a ResourceLogs with
// one scope marked EventOutcome.
func AppendOutcomeLogs(ld plog.Logs, outs ...Outcome) {
	var (
		records plog.LogRecordSlice
		cur     *Resource
	)
	for i := range outs {
		o := &outs[i]
		if cur == nil || cur.Service != o.Service || cur.Environment != o.Environment {
			rl := ld.ResourceLogs().AppendEmpty()
			a := rl.Resource().Attributes()
			a.PutStr(AttrServiceName, o.Service)
			a.PutStr(AttrDeploymentEnvironment, o.Environment)
			sl := rl.ScopeLogs().AppendEmpty()
			MarkScope(sl.Scope(), EventOutcome)
			records = sl.LogRecords()
			cur = &o.Resource
		}
		lr := records.AppendEmpty()
		lr.SetEventName(o.Name)
		lr.SetTimestamp(pcommon.Timestamp(o.Time))
		lr.SetTraceID(o.TraceID)
		lr.SetSpanID(o.SpanID)
		putOutcome(lr.Attributes(), o)
	}
}

// DecodeOutcomeLog reads a log record of a scope marked EventOutcome, of
// resource res. The time is the record's timestamp, else its observed
// timestamp.
func DecodeOutcomeLog(res Resource, lr plog.LogRecord) Outcome {
	t := lr.Timestamp()
	if t == 0 {
		t = lr.ObservedTimestamp()
	}
	a := lr.Attributes()
	return Outcome{
		Resource:  Resource{Service: res.Service, Environment: res.Environment},
		Name:      str(a, AttrOutcomeName),
		Time:      int64(t),
		SessionID: str(a, AttrSessionID),
		UserID:    str(a, AttrEndUserID),
		TraceID:   lr.TraceID(),
		SpanID:    lr.SpanID(),
	}
}
