// Package eventspantest builds pdata traces of changelens events for tests,
// through the event codec (internal/eventspan) with test-friendly types.
package eventspantest

import (
	"encoding/binary"
	"maps"
	"slices"
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
	// Cohorts: dimension ("feature_flag.<key>", "attribute.<name>") → value.
	Cohorts                   map[string]string
	ResponseSize, RequestSize int64 // bytes; 0: attribute absent
	// ErrorKind is a failed request's error kind ("": attribute absent).
	ErrorKind string
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

// AppendLatency appends latency events to td with the event codec
// (eventspan.AppendLatency), plus a few typical unrelated attributes per span.
func AppendLatency(td ptrace.Traces, events ...Latency) {
	codec := make([]eventspan.Latency, len(events))
	for i, e := range events {
		w := e.Weight
		if w == 0 {
			w = 1
		}
		codec[i] = eventspan.Latency{
			Resource:   eventspan.Resource{Service: e.Service, Environment: e.Environment, Version: e.Version},
			Operation:  e.Operation,
			Start:      e.Start.UnixNano(),
			End:        e.Start.Add(e.Duration).UnixNano(),
			Error:      e.Error,
			HTTPStatus: uint16(e.HTTPStatus),
			Weight:     w,
			TraceID:    e.TraceID,
			SpanID:     e.SpanID,

			ResponseSize: orNoSize(e.ResponseSize),
			RequestSize:  orNoSize(e.RequestSize),
			ErrorKind:    e.ErrorKind,
		}
		for _, d := range slices.Sorted(maps.Keys(e.Cohorts)) {
			codec[i].Cohorts = append(codec[i].Cohorts, eventspan.Cohort{Dimension: d, Value: e.Cohorts[d]})
		}
	}
	from := td.ResourceSpans().Len()
	eventspan.AppendLatency(td, codec...)
	for _, rs := range td.ResourceSpans().All() {
		if from > 0 {
			from--
			continue
		}
		rs.Resource().Attributes().PutStr("host.name", "test-host")
		for _, ss := range rs.ScopeSpans().All() {
			for _, s := range ss.Spans().All() {
				a := s.Attributes()
				a.PutStr("http.request.method", "GET")
				a.PutStr("url.path", "/api/v1/items/12345")
				a.PutStr("http.route", "/api/v1/items/{id}")
				a.PutStr("server.address", "api.example.com")
				a.PutStr("user_agent.original", "Mozilla/5.0")
			}
		}
	}
}

func orNoSize(n int64) int64 {
	if n == 0 {
		return eventspan.NoSize
	}
	return n
}

// AppendDeployment appends deployment events with the event codec
// (eventspan.AppendDeployment).
func AppendDeployment(td ptrace.Traces, events ...Deployment) {
	for _, d := range events {
		source := eventspan.Explicit
		if d.Source == eventspan.SourceInferred {
			source = eventspan.Inferred
		}
		var commit int64
		if !d.CommitTime.IsZero() {
			commit = d.CommitTime.UnixNano()
		}
		eventspan.AppendDeployment(td, eventspan.Deployment{
			ID:                d.ID,
			Resource:          eventspan.Resource{Service: d.Service, Environment: d.Environment, Version: d.Version},
			Source:            source,
			Failed:            d.Status == eventspan.StatusFailed,
			RolloutStart:      d.RolloutStart.UnixNano(),
			DeployTime:        d.DeployTime.UnixNano(),
			PreviousVersion:   d.PreviousVersion,
			RollbackCandidate: d.RollbackCandidate,
			CommitSHA:         d.CommitSHA,
			CommitTime:        commit,
			ExternalID:        d.ExternalID,
			PipelineName:      d.PipelineName,
			PipelineRunID:     d.PipelineRunID,
			SupersededBy:      d.SupersededBy,
			TraceID:           d.TraceID,
			SpanID:            d.SpanID,
		})
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
