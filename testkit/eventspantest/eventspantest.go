// Package eventspantest builds pdata traces in the processor's event encoding
// (see internal/eventspan), for tests of anything that consumes it.
package eventspantest

import (
	"encoding/binary"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/changelens/changelens/internal/eventspan"
)

// Latency is one latency event.
type Latency struct {
	Service, Environment, Version string
	Operation                     string
	Start                         time.Time
	Duration                      time.Duration
	Error                         bool
	HTTPStatus                    int64   // 0: attribute absent
	Weight                        float64 // 0 or 1: attribute absent (weight 1)
	TraceID                       pcommon.TraceID
	SpanID                        pcommon.SpanID
}

// Deployment is one deployment event.
type Deployment struct {
	ID                            string // 32 hex chars
	Service, Environment, Version string
	PreviousVersion               string
	Source                        string // eventspan.SourceExplicit / SourceInferred
	Status                        string // eventspan.StatusSucceeded / StatusFailed
	RolloutStart, DeployTime      time.Time
	CommitSHA                     string
	CommitTime                    time.Time // zero: attribute absent
	RollbackCandidate             bool
	ExternalID                    string
	PipelineName, PipelineRunID   string
	SupersededBy                  string
	TraceID                       pcommon.TraceID
	SpanID                        pcommon.SpanID
}

// AppendLatency appends latency events to td the way the processor emits
// them: consecutive events of the same (service, environment, version) share
// one ResourceSpans with one changelens ScopeSpans marked EventLatency.
func AppendLatency(td ptrace.Traces, events ...Latency) {
	var spans ptrace.SpanSlice
	var cur *Latency
	for i := range events {
		e := &events[i]
		if cur == nil || cur.Service != e.Service || cur.Environment != e.Environment || cur.Version != e.Version {
			rs := td.ResourceSpans().AppendEmpty()
			res := rs.Resource().Attributes()
			res.PutStr(eventspan.AttrServiceName, e.Service)
			res.PutStr(eventspan.AttrDeploymentEnvironment, e.Environment)
			if e.Version != "" {
				res.PutStr(eventspan.AttrServiceVersion, e.Version)
			}
			res.PutStr("host.name", "test-host")
			ss := rs.ScopeSpans().AppendEmpty()
			MarkScope(ss.Scope(), eventspan.EventLatency)
			spans = ss.Spans()
			cur = e
		}
		FillLatencySpan(spans.AppendEmpty(), e)
	}
}

// FillLatencySpan writes e's span-level fields into s (name, times, IDs,
// status, attributes, including a few typical unrelated attributes).
func FillLatencySpan(s ptrace.Span, e *Latency) {
	s.SetName(e.Operation)
	s.SetKind(ptrace.SpanKindServer)
	s.SetStartTimestamp(pcommon.NewTimestampFromTime(e.Start))
	s.SetEndTimestamp(pcommon.NewTimestampFromTime(e.Start.Add(e.Duration)))
	s.SetTraceID(e.TraceID)
	s.SetSpanID(e.SpanID)
	if e.Error {
		s.Status().SetCode(ptrace.StatusCodeError)
	}
	a := s.Attributes()
	a.PutStr("http.request.method", "GET")
	a.PutStr("url.path", "/api/v1/items/12345")
	a.PutStr("http.route", "/api/v1/items/{id}")
	if e.HTTPStatus != 0 {
		a.PutInt(eventspan.AttrHTTPStatusCode, e.HTTPStatus)
	}
	a.PutStr("server.address", "api.example.com")
	a.PutStr("user_agent.original", "Mozilla/5.0")
	if e.Weight != 0 && e.Weight != 1 {
		a.PutDouble(eventspan.AttrWeight, e.Weight)
	}
}

// AppendDeployment appends each deployment event in its own ResourceSpans, as
// the processor does.
func AppendDeployment(td ptrace.Traces, events ...Deployment) {
	for i := range events {
		d := &events[i]
		rs := td.ResourceSpans().AppendEmpty()
		res := rs.Resource().Attributes()
		res.PutStr(eventspan.AttrServiceName, d.Service)
		res.PutStr(eventspan.AttrDeploymentEnvironment, d.Environment)
		res.PutStr(eventspan.AttrServiceVersion, d.Version)
		ss := rs.ScopeSpans().AppendEmpty()
		MarkScope(ss.Scope(), eventspan.EventDeployment)
		s := ss.Spans().AppendEmpty()
		s.SetName("deploy " + d.Service + " " + d.Version)
		s.SetKind(ptrace.SpanKindInternal)
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(d.RolloutStart))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(d.DeployTime))
		s.SetTraceID(d.TraceID)
		s.SetSpanID(d.SpanID)
		a := s.Attributes()
		a.PutStr(eventspan.AttrDeploymentID, d.ID)
		a.PutStr(eventspan.AttrTaskType, eventspan.TaskTypeDeploy)
		a.PutStr(eventspan.AttrServiceName, d.Service)
		a.PutStr(eventspan.AttrDeploymentEnvironment, d.Environment)
		a.PutStr(eventspan.AttrServiceVersion, d.Version)
		a.PutStr(eventspan.AttrSource, d.Source)
		a.PutStr(eventspan.AttrPreviousVersion, d.PreviousVersion)
		a.PutBool(eventspan.AttrRollbackCandidate, d.RollbackCandidate)
		status := d.Status
		if status == "" {
			status = eventspan.StatusSucceeded
		}
		a.PutStr(eventspan.AttrDeploymentStatus, status)
		if status == eventspan.StatusFailed {
			s.Status().SetCode(ptrace.StatusCodeError)
		}
		if d.CommitSHA != "" {
			a.PutStr(eventspan.AttrCommitSHA, d.CommitSHA)
		}
		if !d.CommitTime.IsZero() {
			a.PutInt(eventspan.AttrCommitTime, d.CommitTime.UnixNano())
		}
		if d.ExternalID != "" {
			a.PutStr(eventspan.AttrExternalID, d.ExternalID)
		}
		if d.PipelineName != "" {
			a.PutStr(eventspan.AttrPipelineName, d.PipelineName)
		}
		if d.PipelineRunID != "" {
			a.PutStr(eventspan.AttrPipelineRunID, d.PipelineRunID)
		}
		if d.SupersededBy != "" {
			a.PutStr(eventspan.AttrSupersededBy, d.SupersededBy)
		}
	}
}

// AppendForeign appends n ordinary spans that are not changelens events (a
// user scope, no event-type attribute), for tests of "ignored" accounting.
func AppendForeign(td ptrace.Traces, n int) {
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr(eventspan.AttrServiceName, "foreign")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("io.opentelemetry.http")
	for i := 0; i < n; i++ {
		s := ss.Spans().AppendEmpty()
		s.SetName("GET /")
		s.SetTraceID(TraceID(uint64(i + 1)))
		s.SetSpanID(SpanID(uint64(i + 1)))
	}
}

// MarkScope sets the scope name, version and event-type attribute.
func MarkScope(sc pcommon.InstrumentationScope, eventType string) {
	sc.SetName(eventspan.ScopeName)
	sc.SetVersion(eventspan.SchemaVersion)
	sc.Attributes().PutStr(eventspan.AttrEventType, eventType)
}

// TraceID returns a deterministic non-zero trace ID derived from n.
func TraceID(n uint64) pcommon.TraceID {
	var id pcommon.TraceID
	binary.BigEndian.PutUint64(id[:8], n*0x9E3779B97F4A7C15+1)
	binary.BigEndian.PutUint64(id[8:], n+1)
	return id
}

// SpanID returns a deterministic non-zero span ID derived from n.
func SpanID(n uint64) pcommon.SpanID {
	var id pcommon.SpanID
	binary.BigEndian.PutUint64(id[:], n*0xBF58476D1CE4E5B9+1)
	return id
}
