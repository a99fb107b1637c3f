package changelensprocessor

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/changelens/changelens/internal/eventspan"
	"github.com/changelens/changelens/processor/changelensprocessor/internal/metadata"
)

// t0 is an arbitrary event time far from the wall clock: outcomes must depend
// on event time only.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type spanSpec struct {
	service, env, version string
	kind                  ptrace.SpanKind
	name                  string
	start                 time.Time
	dur                   time.Duration
	attrs                 map[string]any
	traceState            string
	status                ptrace.StatusCode
	parent                bool
	seq                   uint64
}

// request is a SERVER span of service/version at the given time.
func request(service, version string, at time.Time, seq uint64) spanSpec {
	return spanSpec{service: service, env: "production", version: version, kind: ptrace.SpanKindServer,
		name: "GET /items", start: at, dur: 20 * time.Millisecond, parent: true, seq: seq,
		attrs: map[string]any{"http.request.method": "GET", "http.route": "/items", "http.response.status_code": 200}}
}

// buildTraces puts each spec in its own resource, as separate SDKs would.
func buildTraces(specs ...spanSpec) ptrace.Traces {
	td := ptrace.NewTraces()
	for _, sp := range specs {
		rs := td.ResourceSpans().AppendEmpty()
		if sp.service != "" {
			rs.Resource().Attributes().PutStr("service.name", sp.service)
		}
		if sp.env != "" {
			rs.Resource().Attributes().PutStr("deployment.environment.name", sp.env)
		}
		if sp.version != "" {
			rs.Resource().Attributes().PutStr("service.version", sp.version)
		}
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("test-instrumentation")
		fillSpan(ss.Spans().AppendEmpty(), sp)
	}
	return td
}

func fillSpan(s ptrace.Span, sp spanSpec) {
	var tid pcommon.TraceID
	binary.BigEndian.PutUint64(tid[8:], sp.seq+1)
	tid[0] = 0xab
	var sid pcommon.SpanID
	binary.BigEndian.PutUint64(sid[:], sp.seq+1)
	s.SetTraceID(tid)
	s.SetSpanID(sid)
	if sp.parent {
		s.SetParentSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
	}
	s.SetKind(sp.kind)
	s.SetName(sp.name)
	s.SetStartTimestamp(pcommon.NewTimestampFromTime(sp.start))
	s.SetEndTimestamp(pcommon.NewTimestampFromTime(sp.start.Add(sp.dur)))
	s.Status().SetCode(sp.status)
	if sp.traceState != "" {
		s.TraceState().FromRaw(sp.traceState)
	}
	for k, v := range sp.attrs {
		switch v := v.(type) {
		case string:
			s.Attributes().PutStr(k, v)
		case int:
			s.Attributes().PutInt(k, int64(v))
		case int64:
			s.Attributes().PutInt(k, v)
		case float64:
			s.Attributes().PutDouble(k, v)
		case bool:
			s.Attributes().PutBool(k, v)
		}
	}
}

type harness struct {
	t    *testing.T
	proc processor.Traces
	sink *consumertest.TracesSink
	tel  *componenttest.Telemetry
}

func newHarness(t *testing.T, mutate func(*Config)) *harness {
	t.Helper()
	cfg := defaultConfig()
	if mutate != nil {
		mutate(cfg)
	}
	require.NoError(t, cfg.Validate())
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	set := processortest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	sink := new(consumertest.TracesSink)
	p, err := NewFactory().CreateTraces(context.Background(), set, cfg, sink)
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	return &harness{t: t, proc: p, sink: sink, tel: tel}
}

func (h *harness) send(td ptrace.Traces) {
	h.t.Helper()
	require.NoError(h.t, h.proc.ConsumeTraces(context.Background(), td))
}

func (h *harness) stop() {
	h.t.Helper()
	require.NoError(h.t, h.proc.Shutdown(context.Background()))
}

// deployEvent is a deployment event read back from the output stream.
type deployEvent struct {
	ID, Service, Env, Version, Previous, Source, Status, CommitSHA, SupersededBy string
	Rework                                                                       string
	RolloutStart, DeployTime                                                     time.Time
	CommitTime                                                                   int64
	RollbackCandidate                                                            bool
}

type latencyEvent struct {
	Service, Env, Version, Operation string
	Error                            bool
	Weight                           float64
	Start                            time.Time
}

// events decodes everything the processor emitted. Deployments are keyed by
// ID with the last emitted state winning (events are re-emitted on change);
// superseded inferred deployments are left out, as the exporter's readers do.
func (h *harness) events() (deps []deployEvent, lat []latencyEvent) {
	byID := map[string]int{}
	for _, td := range h.sink.AllTraces() {
		for _, rs := range td.ResourceSpans().All() {
			res := rs.Resource().Attributes()
			for _, ss := range rs.ScopeSpans().All() {
				require.Equal(h.t, eventspan.ScopeName, ss.Scope().Name())
				scope := eventspan.ScopeKind(ss.Scope())
				require.NotEqual(h.t, eventspan.KindNone, scope, "scope without event type")
				for _, s := range ss.Spans().All() {
					a := s.Attributes()
					get := func(k string) string {
						if v, ok := a.Get(k); ok {
							return v.AsString()
						}
						return ""
					}
					switch k := eventspan.EventKind(scope, s); k {
					case eventspan.KindCall, eventspan.KindIncident, eventspan.KindCommit, eventspan.KindFlagEvaluation:
						// Read by decode; incidents, commits and flag evaluations by their tests.
					case eventspan.KindDeployment:
						var commitTime int64
						if ct, ok := a.Get(eventspan.AttrCommitTime); ok {
							commitTime = ct.Int()
						}
						rbv, hasRB := a.Get(eventspan.AttrRollbackCandidate)
						rb := hasRB && rbv.Bool()
						e := deployEvent{
							ID: get(eventspan.AttrDeploymentID), Service: get(eventspan.AttrServiceName), Env: get(eventspan.AttrDeploymentEnvironment),
							Version: get(eventspan.AttrServiceVersion), Previous: get(eventspan.AttrPreviousVersion), Source: get(eventspan.AttrSource),
							Status: get(eventspan.AttrDeploymentStatus), CommitSHA: get(eventspan.AttrCommitSHA), SupersededBy: get(eventspan.AttrSupersededBy),
							RolloutStart: s.StartTimestamp().AsTime(), DeployTime: s.EndTimestamp().AsTime(),
							CommitTime: commitTime, RollbackCandidate: rb, Rework: get(eventspan.AttrRework),
						}
						if i, ok := byID[e.ID]; ok {
							deps[i] = e
						} else {
							byID[e.ID] = len(deps)
							deps = append(deps, e)
						}
					case eventspan.KindLatency:
						w := 1.0
						if v, ok := a.Get(eventspan.AttrWeight); ok {
							w = v.Double()
						}
						lat = append(lat, latencyEvent{
							Service: strOf(res, "service.name"), Env: strOf(res, "deployment.environment.name"), Version: strOf(res, "service.version"),
							Operation: s.Name(), Error: s.Status().Code() == ptrace.StatusCodeError, Weight: w, Start: s.StartTimestamp().AsTime(),
						})
					default:
						h.t.Fatalf("span %q of unknown event kind %d", s.Name(), k)
					}
				}
			}
		}
	}
	kept := deps[:0]
	for _, d := range deps {
		if d.SupersededBy == "" {
			kept = append(kept, d)
		}
	}
	return kept, lat
}

// decode reads the latency and call events the processor emitted with the
// codec the exporter uses, whatever their scopes (keep_non_entry_spans leaves
// scopes alone and marks events per span).
func (h *harness) decode() (lat []eventspan.Latency, calls []eventspan.Call) {
	for _, td := range h.sink.AllTraces() {
		for _, rs := range td.ResourceSpans().All() {
			res := eventspan.ReadResource(rs.Resource().Attributes())
			for _, ss := range rs.ScopeSpans().All() {
				scope := eventspan.ScopeKind(ss.Scope())
				for _, s := range ss.Spans().All() {
					switch eventspan.EventKind(scope, s) {
					case eventspan.KindLatency:
						lat = append(lat, eventspan.DecodeLatency(res, s))
					case eventspan.KindCall:
						calls = append(calls, eventspan.DecodeCall(res, s))
					}
				}
			}
		}
	}
	return lat, calls
}

// kinds maps each output span's name to its event kind.
func (h *harness) kinds() map[string]eventspan.Kind {
	out := map[string]eventspan.Kind{}
	for _, td := range h.sink.AllTraces() {
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				scope := eventspan.ScopeKind(ss.Scope())
				for _, s := range ss.Spans().All() {
					out[s.Name()] = eventspan.EventKind(scope, s)
				}
			}
		}
	}
	return out
}

// buildScope puts every spec in one resource (the first spec's) and one
// scope, as one SDK's batch of a request arrives.
func buildScope(specs ...spanSpec) ptrace.Traces {
	td := buildTraces(specs[0])
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	for _, sp := range specs[1:] {
		fillSpan(spans.AppendEmpty(), sp)
	}
	return td
}

func strOf(m pcommon.Map, k string) string {
	if v, ok := m.Get(k); ok {
		return v.AsString()
	}
	return ""
}

// traffic yields one request per interval for version v over [from, to).
func traffic(service, version string, from, to time.Time, every time.Duration, seq *uint64) []spanSpec {
	var out []spanSpec
	for at := from; at.Before(to); at = at.Add(every) {
		*seq++
		out = append(out, request(service, version, at, *seq))
	}
	return out
}
