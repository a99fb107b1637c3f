package eventspan

import (
	"math"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Kind is the kind of event a span carries.
type Kind uint8

const (
	KindNone Kind = iota // not a changelens event
	KindLatency
	KindDeployment
	KindCall
	KindIncident
	KindCommit
	KindFlagEvaluation
	KindResourceUsage
	KindOutcome
)

// ScopeKind is the kind of every span in a scope the processor marked, else
// KindNone.
func ScopeKind(sc pcommon.InstrumentationScope) Kind {
	if sc.Name() != ScopeName {
		return KindNone
	}
	return kindOf(sc.Attributes().Get(AttrEventType))
}

// SpanKind is the kind of a span marked one by one (keep_non_entry_spans),
// else KindNone.
func SpanKind(s ptrace.Span) Kind { return kindOf(s.Attributes().Get(AttrEventType)) }

func kindOf(v pcommon.Value, ok bool) Kind {
	if !ok || v.Type() != pcommon.ValueTypeStr {
		return KindNone
	}
	switch v.Str() {
	case EventLatency:
		return KindLatency
	case EventDeployment:
		return KindDeployment
	case EventCall:
		return KindCall
	case EventIncident:
		return KindIncident
	case EventCommit:
		return KindCommit
	case EventFlagEvaluation:
		return KindFlagEvaluation
	case EventResourceUsage:
		return KindResourceUsage
	case EventOutcome:
		return KindOutcome
	}
	return KindNone
}

// EventKind is the kind of span s of a scope of kind scope. In a latency
// scope a CLIENT or PRODUCER span is a call event unless marked a latency
// event itself (client configured as an entry kind): calls are common and
// cost no attribute that way, client entry spans are rare. Spans of
// unmarked scopes (keep_non_entry_spans) are marked one by one.
func EventKind(scope Kind, s ptrace.Span) Kind {
	if scope == KindNone {
		return SpanKind(s)
	}
	if k := s.Kind(); scope == KindLatency && (k == ptrace.SpanKindClient || k == ptrace.SpanKindProducer) {
		if SpanKind(s) == KindLatency {
			return KindLatency
		}
		return KindCall
	}
	return scope
}

// MarkScope makes sc a changelens scope of the given event type (EventLatency,
// EventDeployment, EventIncident, EventCommit or EventFlagEvaluation), leaving
// it alone when it already is one.
func MarkScope(sc pcommon.InstrumentationScope, eventType string) {
	if sc.Name() != ScopeName {
		sc.SetName(ScopeName)
		sc.SetVersion(SchemaVersion)
	}
	attrs := sc.Attributes()
	if v, ok := attrs.Get(AttrEventType); ok && attrs.Len() == 1 && v.Str() == eventType {
		return
	}
	attrs.Clear()
	attrs.PutStr(AttrEventType, eventType)
}

// MarkLatencySpan marks one span as a latency event (for a scope that also
// holds other spans).
func MarkLatencySpan(s ptrace.Span) { s.Attributes().PutStr(AttrEventType, EventLatency) }

// MarkCallSpan marks one span as a call event (in a scope the processor
// does not mark: keep_non_entry_spans).
func MarkCallSpan(s ptrace.Span) { s.Attributes().PutStr(AttrEventType, EventCall) }

// SetWeight records a latency event's sampling weight (adjusted count); 1 is
// the default and not written.
func SetWeight(s ptrace.Span, w float64) {
	if w != 1 {
		s.Attributes().PutDouble(AttrWeight, w)
	}
}

// Resource is the deployed unit a ResourceSpans describes.
type Resource struct {
	Service, Environment, Version string
}

// ReadResource reads the unit from resource attributes (the deprecated
// deployment.environment when the current name is absent).
func ReadResource(attrs pcommon.Map) Resource {
	var r Resource
	var envOld string
	for k, v := range attrs.All() {
		if v.Type() != pcommon.ValueTypeStr {
			continue
		}
		switch k {
		case AttrServiceName:
			r.Service = v.Str()
		case AttrDeploymentEnvironment:
			r.Environment = v.Str()
		case AttrDeploymentEnvironmentOld:
			envOld = v.Str()
		case AttrServiceVersion:
			r.Version = v.Str()
		}
	}
	if r.Environment == "" {
		r.Environment = envOld
	}
	return r
}

func (r Resource) put(attrs pcommon.Map) {
	attrs.PutStr(AttrServiceName, r.Service)
	attrs.PutStr(AttrDeploymentEnvironment, r.Environment)
	if r.Version != "" {
		attrs.PutStr(AttrServiceVersion, r.Version)
	}
}

// Latency is one latency event. Strings decoded from pdata point into it.
type Latency struct {
	Resource
	Operation  string
	Start, End int64 // unix ns
	Error      bool
	HTTPStatus uint16  // 0: unknown or not a status
	Weight     float64 // sampling weight; NaN when the attribute is not a number
	TraceID    pcommon.TraceID
	SpanID     pcommon.SpanID
	// ParentSpanID is the span's parent as received (empty for a root): the
	// call event of the caller, if the caller is instrumented.
	ParentSpanID pcommon.SpanID
	// Cohorts are the recorded cohort dimensions (nil when none).
	Cohorts []Cohort
	// ResponseSize and RequestSize are the HTTP body sizes in bytes, NoSize
	// when the span has none.
	ResponseSize, RequestSize int64
	// ErrorKind is a failed request's error kind (AttrErrorKind); "" when
	// the event carries none.
	ErrorKind string
	// SelfTime is the request's self time in ns (AttrSelfTime); 0 when not
	// measured (an entry span always starts before its children, so a
	// measured self time is never 0).
	SelfTime int64
}

// Cohort is one cohort dimension of a latency event ("feature_flag.<key>" or
// "attribute.<name>") and the event's value of it.
type Cohort struct{ Dimension, Value string }

// NoSize marks an absent body size.
const NoSize = -1

// DecodeLatency reads a latency event span of resource res.
func DecodeLatency(res Resource, s ptrace.Span) Latency {
	l := Latency{
		Resource:  res,
		Operation: s.Name(),
		Start:     int64(s.StartTimestamp()),
		End:       int64(s.EndTimestamp()),
		Error:     s.Status().Code() == ptrace.StatusCodeError,
		Weight:    1,
		TraceID:   s.TraceID(),
		SpanID:    s.SpanID(),

		ParentSpanID: s.ParentSpanID(),
		ResponseSize: NoSize,
		RequestSize:  NoSize,
	}
	current := false
	for k, v := range s.Attributes().All() {
		switch k {
		case AttrHTTPStatusCode:
			l.HTTPStatus, current = statusOf(v), true
		case AttrHTTPStatusCodeOld:
			if !current {
				l.HTTPStatus = statusOf(v)
			}
		case AttrWeight:
			l.Weight = weightOf(v)
		case AttrHTTPResponseBodySize:
			l.ResponseSize = sizeOf(v)
		case AttrHTTPRequestBodySize:
			l.RequestSize = sizeOf(v)
		case AttrErrorKind:
			l.ErrorKind = strOf(v)
		case AttrSelfTime:
			if v.Type() == pcommon.ValueTypeInt && v.Int() > 0 {
				l.SelfTime = v.Int()
			}
		default:
			if dim, ok := strings.CutPrefix(k, AttrCohortPrefix); ok && dim != "" && v.Type() == pcommon.ValueTypeStr {
				l.Cohorts = append(l.Cohorts, Cohort{dim, v.Str()})
			}
		}
	}
	return l
}

// weightOf reads AttrWeight; NaN when it is not a number.
func weightOf(v pcommon.Value) float64 {
	switch v.Type() {
	case pcommon.ValueTypeDouble:
		return v.Double()
	case pcommon.ValueTypeInt:
		return float64(v.Int())
	}
	return math.NaN()
}

// sizeOf reads a body size: a non-negative int, double or decimal string;
// anything else is NoSize.
func sizeOf(v pcommon.Value) int64 {
	switch v.Type() {
	case pcommon.ValueTypeInt:
		if n := v.Int(); n >= 0 {
			return n
		}
	case pcommon.ValueTypeDouble:
		if d := v.Double(); d >= 0 && d < math.MaxInt64 {
			return int64(d)
		}
	case pcommon.ValueTypeStr:
		if n, err := strconv.ParseInt(v.Str(), 10, 64); err == nil && n >= 0 {
			return n
		}
	}
	return NoSize
}

// AppendLatency appends latency events to td as the processor emits them:
// consecutive events of one unit share a ResourceSpans with one scope marked
// EventLatency.
func AppendLatency(td ptrace.Traces, events ...Latency) {
	var (
		spans ptrace.SpanSlice
		cur   *Resource
	)
	for i := range events {
		e := &events[i]
		if cur == nil || *cur != e.Resource {
			rs := td.ResourceSpans().AppendEmpty()
			e.Resource.put(rs.Resource().Attributes())
			ss := rs.ScopeSpans().AppendEmpty()
			MarkScope(ss.Scope(), EventLatency)
			spans = ss.Spans()
			cur = &e.Resource
		}
		s := spans.AppendEmpty()
		s.SetName(e.Operation)
		s.SetKind(ptrace.SpanKindServer)
		s.SetStartTimestamp(pcommon.Timestamp(e.Start))
		s.SetEndTimestamp(pcommon.Timestamp(e.End))
		s.SetTraceID(e.TraceID)
		s.SetSpanID(e.SpanID)
		s.SetParentSpanID(e.ParentSpanID)
		if e.Error {
			s.Status().SetCode(ptrace.StatusCodeError)
		}
		if e.HTTPStatus != 0 {
			s.Attributes().PutInt(AttrHTTPStatusCode, int64(e.HTTPStatus))
		}
		if e.Weight != 0 {
			SetWeight(s, e.Weight)
		}
		if e.ResponseSize >= 0 {
			s.Attributes().PutInt(AttrHTTPResponseBodySize, e.ResponseSize)
		}
		if e.RequestSize >= 0 {
			s.Attributes().PutInt(AttrHTTPRequestBodySize, e.RequestSize)
		}
		for _, c := range e.Cohorts {
			s.Attributes().PutStr(AttrCohortPrefix+c.Dimension, c.Value)
		}
		if e.ErrorKind != "" {
			s.Attributes().PutStr(AttrErrorKind, e.ErrorKind)
		}
		if e.SelfTime > 0 {
			s.Attributes().PutInt(AttrSelfTime, e.SelfTime)
		}
	}
}

// Call is one call event: a unit's outgoing CLIENT or PRODUCER span. Strings
// decoded from pdata point into it.
type Call struct {
	Resource  // the caller
	Operation string
	// Peer names what was called as the caller saw it (PeerAttributes); ""
	// when the span names nothing.
	Peer       string
	Start, End int64 // unix ns
	Error      bool
	Weight     float64 // sampling weight; NaN when the attribute is not a number
	TraceID    pcommon.TraceID
	SpanID     pcommon.SpanID
}

// DecodeCall reads a call event span of resource res.
func DecodeCall(res Resource, s ptrace.Span) Call {
	c := Call{
		Resource:  res,
		Operation: s.Name(),
		Start:     int64(s.StartTimestamp()),
		End:       int64(s.EndTimestamp()),
		Error:     s.Status().Code() == ptrace.StatusCodeError,
		Weight:    1,
		TraceID:   s.TraceID(),
		SpanID:    s.SpanID(),
	}
	rank := len(PeerAttributes)
	for k, v := range s.Attributes().All() {
		if k == AttrWeight {
			c.Weight = weightOf(v)
			continue
		}
		if v.Type() != pcommon.ValueTypeStr || v.Str() == "" {
			continue
		}
		for i := 0; i < rank; i++ {
			if PeerAttributes[i] == k {
				c.Peer, rank = v.Str(), i
				break
			}
		}
	}
	return c
}

// AppendCall appends call events to td as the processor emits them: CLIENT
// spans in a latency scope of their unit's ResourceSpans, unmarked.
func AppendCall(td ptrace.Traces, calls ...Call) {
	for i := range calls {
		c := &calls[i]
		rs := td.ResourceSpans().AppendEmpty()
		c.Resource.put(rs.Resource().Attributes())
		ss := rs.ScopeSpans().AppendEmpty()
		MarkScope(ss.Scope(), EventLatency)
		s := ss.Spans().AppendEmpty()
		s.SetName(c.Operation)
		s.SetKind(ptrace.SpanKindClient)
		s.SetStartTimestamp(pcommon.Timestamp(c.Start))
		s.SetEndTimestamp(pcommon.Timestamp(c.End))
		s.SetTraceID(c.TraceID)
		s.SetSpanID(c.SpanID)
		if c.Error {
			s.Status().SetCode(ptrace.StatusCodeError)
		}
		if c.Peer != "" {
			s.Attributes().PutStr(PeerAttributes[0], c.Peer)
		}
		SetWeight(s, c.Weight)
	}
}

// Source says where a deployment event comes from.
type Source uint8

const (
	Explicit Source = iota // a CI/CD deploy span
	Inferred               // a version change (collectors before schema v5)
)

func (s Source) String() string {
	if s == Inferred {
		return SourceInferred
	}
	return SourceExplicit
}

// Deployment is one deployment event. Strings decoded from pdata point into it.
type Deployment struct {
	ID string // changelens' deterministic ID, 32 hex digits
	Resource
	Source            Source
	Failed            bool  // a failed deploy attempt
	RolloutStart      int64 // unix ns
	DeployTime        int64 // unix ns
	PreviousVersion   string
	RollbackCandidate bool
	CommitSHA         string
	CommitTime        int64 // unix ns; 0 = unknown
	ExternalID        string
	PipelineName      string
	PipelineRunID     string
	SupersededBy      string
	Rework            string // ReworkHotfix, ReworkRevert or ""
	TraceID           pcommon.TraceID
	SpanID            pcommon.SpanID
}

// AppendDeployment appends d to td in its own ResourceSpans, the encoding
// every reader decodes with DecodeDeployment.
func AppendDeployment(td ptrace.Traces, d Deployment) {
	rs := td.ResourceSpans().AppendEmpty()
	res := rs.Resource().Attributes()
	res.PutStr(AttrServiceName, d.Service)
	res.PutStr(AttrDeploymentEnvironment, d.Environment)
	res.PutStr(AttrServiceVersion, d.Version)
	ss := rs.ScopeSpans().AppendEmpty()
	MarkScope(ss.Scope(), EventDeployment)
	s := ss.Spans().AppendEmpty()
	s.SetName("deploy " + d.Service + " " + d.Version)
	s.SetKind(ptrace.SpanKindInternal)
	s.SetStartTimestamp(pcommon.Timestamp(d.RolloutStart))
	s.SetEndTimestamp(pcommon.Timestamp(d.DeployTime))
	s.SetTraceID(d.TraceID)
	s.SetSpanID(d.SpanID)
	a := s.Attributes()
	a.EnsureCapacity(16)
	a.PutStr(AttrDeploymentID, d.ID)
	a.PutStr(AttrTaskType, TaskTypeDeploy)
	a.PutStr(AttrServiceName, d.Service)
	a.PutStr(AttrDeploymentEnvironment, d.Environment)
	a.PutStr(AttrServiceVersion, d.Version)
	a.PutStr(AttrSource, d.Source.String())
	if d.PreviousVersion != "" {
		a.PutStr(AttrPreviousVersion, d.PreviousVersion)
	}
	if d.RollbackCandidate {
		a.PutBool(AttrRollbackCandidate, true)
	}
	if d.Failed {
		a.PutStr(AttrDeploymentStatus, StatusFailed)
		s.Status().SetCode(ptrace.StatusCodeError)
	} else {
		a.PutStr(AttrDeploymentStatus, StatusSucceeded)
	}
	putStr := func(k, v string) {
		if v != "" {
			a.PutStr(k, v)
		}
	}
	putStr(AttrCommitSHA, d.CommitSHA)
	if d.CommitTime > 0 {
		a.PutInt(AttrCommitTime, d.CommitTime)
	}
	putStr(AttrExternalID, d.ExternalID)
	putStr(AttrPipelineName, d.PipelineName)
	putStr(AttrPipelineRunID, d.PipelineRunID)
	putStr(AttrSupersededBy, d.SupersededBy)
	putStr(AttrRework, d.Rework)
}

// DecodeDeployment reads a deployment event span of resource res. The span's
// own unit attributes win over the resource's; a missing status follows the
// span status; an end of 0 is the start, a start of 0 or after the end is the
// end.
func DecodeDeployment(res Resource, s ptrace.Span) Deployment {
	d := Deployment{
		Resource:     res,
		RolloutStart: int64(s.StartTimestamp()),
		DeployTime:   int64(s.EndTimestamp()),
		TraceID:      s.TraceID(),
		SpanID:       s.SpanID(),
		Failed:       s.Status().Code() == ptrace.StatusCodeError,
	}
	for k, v := range s.Attributes().All() {
		switch k {
		case AttrDeploymentID:
			d.ID = strOf(v)
		case AttrServiceName:
			d.Service = strOf(v)
		case AttrDeploymentEnvironment:
			d.Environment = strOf(v)
		case AttrServiceVersion:
			d.Version = strOf(v)
		case AttrPreviousVersion:
			d.PreviousVersion = strOf(v)
		case AttrSource:
			if strOf(v) == SourceInferred {
				d.Source = Inferred
			}
		case AttrDeploymentStatus:
			switch strOf(v) {
			case StatusFailed:
				d.Failed = true
			case StatusSucceeded:
				d.Failed = false
			}
		case AttrCommitSHA:
			d.CommitSHA = strOf(v)
		case AttrCommitTime:
			d.CommitTime = intOf(v)
		case AttrRollbackCandidate:
			d.RollbackCandidate = v.Type() == pcommon.ValueTypeBool && v.Bool()
		case AttrExternalID:
			d.ExternalID = strOf(v)
		case AttrPipelineName:
			d.PipelineName = strOf(v)
		case AttrPipelineRunID:
			d.PipelineRunID = strOf(v)
		case AttrSupersededBy:
			d.SupersededBy = strOf(v)
		case AttrRework:
			d.Rework = strOf(v)
		}
	}
	if d.DeployTime == 0 {
		d.DeployTime = d.RolloutStart
	}
	if d.RolloutStart == 0 || d.RolloutStart > d.DeployTime {
		d.RolloutStart = d.DeployTime
	}
	return d
}

// Incident is one incident event: one incident as it affects one unit.
// Strings decoded from pdata point into it.
type Incident struct {
	ID string // the source's stable ID ("pagerduty:Q1ABC")
	Resource
	Source   string // IncidentSource*
	Resolved bool
	Severity string
	Title    string
	Opened   int64 // unix ns
	// ResolvedAt is when it was resolved (unix ns); 0 while open.
	ResolvedAt   int64
	DeploymentID string // the deployment the source names; "" when none
	TraceID      pcommon.TraceID
	SpanID       pcommon.SpanID
}

// Status is IncidentResolved or IncidentOpen.
func (in *Incident) Status() string {
	if in.Resolved {
		return IncidentResolved
	}
	return IncidentOpen
}

// AppendIncident appends in to td in its own ResourceSpans, the encoding
// every reader decodes with DecodeIncident.
func AppendIncident(td ptrace.Traces, in Incident) {
	rs := td.ResourceSpans().AppendEmpty()
	res := rs.Resource().Attributes()
	res.PutStr(AttrServiceName, in.Service)
	res.PutStr(AttrDeploymentEnvironment, in.Environment)
	if in.Version != "" {
		res.PutStr(AttrServiceVersion, in.Version)
	}
	ss := rs.ScopeSpans().AppendEmpty()
	MarkScope(ss.Scope(), EventIncident)
	s := ss.Spans().AppendEmpty()
	s.SetName("incident " + in.ID)
	s.SetKind(ptrace.SpanKindInternal)
	s.SetStartTimestamp(pcommon.Timestamp(in.Opened))
	end := in.Opened
	if in.Resolved && in.ResolvedAt > in.Opened {
		end = in.ResolvedAt
	}
	s.SetEndTimestamp(pcommon.Timestamp(end))
	s.SetTraceID(in.TraceID)
	s.SetSpanID(in.SpanID)
	a := s.Attributes()
	a.EnsureCapacity(9)
	a.PutStr(AttrIncidentID, in.ID)
	a.PutStr(AttrServiceName, in.Service)
	a.PutStr(AttrDeploymentEnvironment, in.Environment)
	a.PutStr(AttrIncidentSource, in.Source)
	a.PutStr(AttrIncidentStatus, in.Status())
	if in.Severity != "" {
		a.PutStr(AttrIncidentSeverity, in.Severity)
	}
	if in.Title != "" {
		a.PutStr(AttrIncidentTitle, in.Title)
	}
	if in.DeploymentID != "" {
		a.PutStr(AttrIncidentDeploymentID, in.DeploymentID)
	}
}

// DecodeIncident reads an incident event span of resource res. The span's
// own unit attributes win over the resource's. A resolved incident's
// resolution is the span end, never before its opening; an open one has
// none, whatever its end says.
func DecodeIncident(res Resource, s ptrace.Span) Incident {
	in := Incident{
		Resource: res,
		Opened:   int64(s.StartTimestamp()),
		TraceID:  s.TraceID(),
		SpanID:   s.SpanID(),
	}
	for k, v := range s.Attributes().All() {
		switch k {
		case AttrIncidentID:
			in.ID = strOf(v)
		case AttrServiceName:
			in.Service = strOf(v)
		case AttrDeploymentEnvironment:
			in.Environment = strOf(v)
		case AttrIncidentSource:
			in.Source = strOf(v)
		case AttrIncidentStatus:
			in.Resolved = strOf(v) == IncidentResolved
		case AttrIncidentSeverity:
			in.Severity = strOf(v)
		case AttrIncidentTitle:
			in.Title = strOf(v)
		case AttrIncidentDeploymentID:
			in.DeploymentID = strOf(v)
		}
	}
	if in.Resolved {
		in.ResolvedAt = max(int64(s.EndTimestamp()), in.Opened)
	}
	return in
}

// Commit is one commit event: a commit of a repository as a push carried
// it. Strings decoded from pdata point into it.
type Commit struct {
	Service    string // the service the repository is
	Repository string // the repository's full name ("owner/name")
	SHA        string // the commit's full ID, lower case
	Time       int64  // the commit's time, unix ns
	Pushed     int64  // when the push carrying it happened, unix ns; 0 when unknown
	Ref        string // the ref the push updated; "" when unknown
	TraceID    pcommon.TraceID
	SpanID     pcommon.SpanID
}

// AppendCommit appends c to td in its own ResourceSpans, the encoding every
// reader decodes with DecodeCommit.
func AppendCommit(td ptrace.Traces, c Commit) {
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr(AttrServiceName, c.Service)
	ss := rs.ScopeSpans().AppendEmpty()
	MarkScope(ss.Scope(), EventCommit)
	s := ss.Spans().AppendEmpty()
	s.SetName("commit " + c.SHA)
	s.SetKind(ptrace.SpanKindInternal)
	s.SetStartTimestamp(pcommon.Timestamp(c.Time))
	s.SetEndTimestamp(pcommon.Timestamp(max(c.Pushed, c.Time)))
	s.SetTraceID(c.TraceID)
	s.SetSpanID(c.SpanID)
	a := s.Attributes()
	a.EnsureCapacity(5)
	a.PutStr(AttrServiceName, c.Service)
	a.PutStr(AttrCommitSHA, c.SHA)
	a.PutStr(AttrCommitRepository, c.Repository)
	if c.Ref != "" {
		a.PutStr(AttrCommitRef, c.Ref)
	}
	if c.Pushed > 0 {
		a.PutInt(AttrCommitPushedTime, c.Pushed)
	}
}

// DecodeCommit reads a commit event span of resource res; the span's own
// service.name wins over the resource's.
func DecodeCommit(res Resource, s ptrace.Span) Commit {
	c := Commit{
		Service: res.Service,
		Time:    int64(s.StartTimestamp()),
		TraceID: s.TraceID(),
		SpanID:  s.SpanID(),
	}
	for k, v := range s.Attributes().All() {
		switch k {
		case AttrServiceName:
			if sv := strOf(v); sv != "" {
				c.Service = sv
			}
		case AttrCommitSHA:
			c.SHA = strOf(v)
		case AttrCommitRepository:
			c.Repository = strOf(v)
		case AttrCommitRef:
			c.Ref = strOf(v)
		case AttrCommitPushedTime:
			c.Pushed = intOf(v)
		}
	}
	return c
}

func strOf(v pcommon.Value) string {
	if v.Type() == pcommon.ValueTypeStr {
		return v.Str()
	}
	return ""
}

// intOf reads an int attribute (also a whole double); anything else is 0.
func intOf(v pcommon.Value) int64 {
	switch v.Type() {
	case pcommon.ValueTypeInt:
		return v.Int()
	case pcommon.ValueTypeDouble:
		if d := v.Double(); d > 0 && d < math.MaxInt64 {
			return int64(d)
		}
	}
	return 0
}

// statusOf reads an HTTP status: an int, or a string of up to 5 digits, in
// 0..65535; anything else is 0.
func statusOf(v pcommon.Value) uint16 {
	var n int64
	switch v.Type() {
	case pcommon.ValueTypeInt:
		n = v.Int()
	case pcommon.ValueTypeStr:
		s := v.Str()
		if len(s) == 0 || len(s) > 5 {
			return 0
		}
		for i := 0; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				return 0
			}
			n = n*10 + int64(s[i]-'0')
		}
	default:
		return 0
	}
	if n < 0 || n > math.MaxUint16 {
		return 0
	}
	return uint16(n)
}
