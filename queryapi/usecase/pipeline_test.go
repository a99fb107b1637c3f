package usecase

import (
	"context"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/changelens/changelens/testkit/pipelinetest"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// This file drives synthetic traffic through the real pipeline: pdata spans →
// changelens processor(s) → changelens exporter (exporterhelper queue) →
// ClickHouse. Nothing is inserted any other way.

// phase is a stretch of a service's life running one version.
type phase struct {
	at      time.Duration // offset from the scenario start when it begins
	version string
	latency float64 // multiplier of the base latency distribution
	errRate float64 // probability that a request fails
}

// svcSpec is one deployed unit's traffic.
type svcSpec struct {
	name, env string
	perMinute int
	// traceState, when set, is every span's W3C tracestate (e.g. "ot=th:8":
	// sampled with probability ½, weight 2).
	traceState string
	weight     float64 // the weight traceState implies (1 when unset)
	phases     []phase
	// split routes the spans to two collector replicas (see route).
	split *splitSpec
	// extra are additional single requests (start offsets) and the replica
	// (0 = A, 1 = B) that receives each.
	extra []extraSpan
	// flag, when set, splits the requests between two variants of a
	// feature flag; protocols labels them api.protocol "http" and "grpc"
	// alternately (an attribute cohort with no effect).
	flag      *flagSpec
	protocols bool
}

// flagSpec: a share of the requests gets variant "on" (the rest "off"),
// evaluated in a child span of the request as a flag client does, with the
// on variant's latency multiplier, error probability and response-size
// multiplier. Requests of a flagged unit carry http.response.body.size
// (log-normal around 2 KB).
type flagSpec struct {
	key                     string
	share                   float64
	latency, errRate, sizeX float64
}

type extraSpan struct {
	at      time.Duration
	replica int
}

// splitSpec: spans with odd sequence numbers go to replica B, except those
// starting in [onlyAFrom, onlyATo), which all go to A.
type splitSpec struct{ onlyAFrom, onlyATo time.Duration }

// ciSpec is a CI/CD deploy span.
type ciSpec struct {
	service, env, version string
	deploy                time.Duration // span end = deploy time
	lead                  time.Duration // commit time = deploy − lead; 0: none
	failed                bool
	deliverAt             time.Duration // batch (scenario minute) that carries it; 0: the deploy's minute
}

// genSpan is the ground truth of one generated request.
type genSpan struct {
	service, env, version, op string
	start                     time.Time
	dur                       time.Duration
	err                       bool
	weight                    float64
	replica                   int
	variant, protocol         string // "": none
	respSize                  int64
}

// scenario is traffic plus deploy spans over [start, start+length).
type scenario struct {
	start    time.Time
	length   time.Duration
	seed     uint64
	services []svcSpec
	ci       []ciSpec
	// baseMedian and sigma define the log-normal base latency.
	baseMedian time.Duration
	sigma      float64
}

// phaseAt is the phase running at off (phases are sorted by at).
func (s *svcSpec) phaseAt(off time.Duration) phase {
	i := sort.Search(len(s.phases), func(i int) bool { return s.phases[i].at > off })
	return s.phases[max(i-1, 0)]
}

// generator produces the scenario minute by minute, deterministically.
type generator struct {
	sc  *scenario
	rng *rand.Rand
	seq uint64
}

func newGenerator(sc *scenario) *generator {
	return &generator{sc: sc, rng: rand.New(rand.NewPCG(sc.seed, sc.seed^0x9e3779b97f4a7c15))}
}

func (g *generator) request(s *svcSpec, off time.Duration, replica int) genSpan {
	p := s.phaseAt(off)
	z := g.rng.NormFloat64()
	d := float64(g.sc.baseMedian) * math.Exp(g.sc.sigma*z) * p.latency
	g.seq++
	op := "GET /items"
	if g.seq%3 == 0 {
		op = "POST /orders"
	}
	w := s.weight
	if w == 0 {
		w = 1
	}
	gs := genSpan{service: s.name, env: s.env, version: p.version, op: op, start: g.sc.start.Add(off), weight: w, replica: replica}
	errRate := p.errRate
	if f := s.flag; f != nil {
		gs.variant, gs.respSize = "off", int64(2000*math.Exp(0.3*g.rng.NormFloat64()))
		if g.rng.Float64() < f.share {
			gs.variant, d, errRate = "on", d*f.latency, f.errRate
			gs.respSize = int64(float64(gs.respSize) * f.sizeX)
		}
	}
	if s.protocols {
		gs.protocol = []string{"http", "grpc"}[g.seq%2]
	}
	gs.dur, gs.err = time.Duration(d), g.rng.Float64() < errRate
	return gs
}

// minute returns the requests starting in scenario minute m.
func (g *generator) minute(m int) []genSpan {
	var out []genSpan
	from := time.Duration(m) * time.Minute
	to := from + time.Minute
	for i := range g.sc.services {
		s := &g.sc.services[i]
		for k := 0; k < s.perMinute; k++ {
			off := from + time.Duration((float64(k)+g.rng.Float64())*float64(time.Minute)/float64(s.perMinute))
			replica := 0
			if s.split != nil && g.seq%2 == 1 && !(off >= s.split.onlyAFrom && off < s.split.onlyATo) {
				replica = 1
			}
			out = append(out, g.request(s, off, replica))
		}
		// One request exactly when each version starts: it pins the
		// first-seen time of inferred deployments.
		for _, p := range s.phases[1:] {
			if p.at >= from && p.at < to {
				out = append(out, g.request(s, p.at, 0))
			}
		}
		for _, e := range s.extra {
			if e.at >= from && e.at < to {
				out = append(out, g.request(s, e.at, e.replica))
			}
		}
	}
	return out
}

func putIDs(s ptrace.Span, seq uint64) {
	var tid pcommon.TraceID
	binary.BigEndian.PutUint64(tid[:8], 0xc0ffee)
	binary.BigEndian.PutUint64(tid[8:], seq)
	var sid pcommon.SpanID
	binary.BigEndian.PutUint64(sid[:], seq)
	s.SetTraceID(tid)
	s.SetSpanID(sid)
}

// requestTraces encodes requests as SERVER root spans, one resource per
// (service, environment, version), as SDKs send them.
func (g *generator) requestTraces(spans []genSpan) ptrace.Traces {
	td := ptrace.NewTraces()
	type key struct{ service, env, version string }
	res := map[key]ptrace.SpanSlice{}
	states := map[string]string{}
	for _, s := range g.sc.services {
		states[s.name+"\x00"+s.env] = s.traceState
	}
	for _, sp := range spans {
		k := key{sp.service, sp.env, sp.version}
		ss, ok := res[k]
		if !ok {
			rs := td.ResourceSpans().AppendEmpty()
			a := rs.Resource().Attributes()
			a.PutStr("service.name", sp.service)
			a.PutStr("deployment.environment.name", sp.env)
			a.PutStr("service.version", sp.version)
			scope := rs.ScopeSpans().AppendEmpty()
			scope.Scope().SetName("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp")
			ss = scope.Spans()
			res[k] = ss
		}
		s := ss.AppendEmpty()
		g.seq++
		putIDs(s, g.seq)
		s.SetKind(ptrace.SpanKindServer)
		s.SetName(sp.op)
		method, route := "GET", "/items"
		if sp.op == "POST /orders" {
			method, route = "POST", "/orders"
		}
		s.Attributes().PutStr("http.request.method", method)
		s.Attributes().PutStr("http.route", route)
		status := int64(200)
		if sp.err {
			status = 500
		}
		s.Attributes().PutInt("http.response.status_code", status)
		if ts := states[sp.service+"\x00"+sp.env]; ts != "" {
			s.TraceState().FromRaw(ts)
		}
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(sp.start))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(sp.start.Add(sp.dur)))
		if sp.protocol != "" {
			s.Attributes().PutStr("api.protocol", sp.protocol)
		}
		if sp.variant != "" {
			s.Attributes().PutInt("http.response.body.size", sp.respSize)
			c := ss.AppendEmpty()
			c.SetTraceID(s.TraceID())
			g.seq++
			var sid pcommon.SpanID
			binary.BigEndian.PutUint64(sid[:], g.seq)
			c.SetSpanID(sid)
			c.SetParentSpanID(s.SpanID())
			c.SetKind(ptrace.SpanKindInternal)
			c.SetName("evaluate flags")
			c.SetStartTimestamp(s.StartTimestamp())
			c.SetEndTimestamp(s.StartTimestamp() + 1000)
			e := c.Events().AppendEmpty()
			e.SetName("feature_flag.evaluation")
			e.Attributes().PutStr("feature_flag.key", flagKeyOf(g.sc, sp.service))
			e.Attributes().PutStr("feature_flag.result.variant", sp.variant)
		}
	}
	return td
}

// flagKeyOf is the flag key of a unit's flagSpec.
func flagKeyOf(sc *scenario, service string) string {
	for _, s := range sc.services {
		if s.name == service && s.flag != nil {
			return s.flag.key
		}
	}
	return ""
}

// appendCI adds a CI system's deploy span (the resource is the CI system; the
// deployed unit is in the span's attributes).
func (g *generator) appendCI(td ptrace.Traces, c ciSpec) {
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "github-actions")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("cicd")
	s := ss.Spans().AppendEmpty()
	g.seq++
	putIDs(s, g.seq)
	s.SetKind(ptrace.SpanKindInternal)
	s.SetName("deploy " + c.service)
	end := g.sc.start.Add(c.deploy)
	s.SetStartTimestamp(pcommon.NewTimestampFromTime(end.Add(-4 * time.Minute)))
	s.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
	a := s.Attributes()
	a.PutStr("cicd.pipeline.task.type", "deploy")
	a.PutStr("cicd.pipeline.name", "release")
	a.PutStr("service.name", c.service)
	a.PutStr("service.version", c.version)
	a.PutStr("deployment.environment.name", c.env)
	a.PutStr("vcs.ref.head.revision", commitSHA(c.service, c.version))
	if c.lead > 0 {
		a.PutInt("changelens.commit.time", end.Add(-c.lead).Unix())
	}
	result := "success"
	if c.failed {
		result = "failure"
	}
	a.PutStr("cicd.pipeline.task.run.result", result)
}

func commitSHA(service, version string) string { return "sha-" + service + "-" + version }

// run feeds the whole scenario, minute by minute, through the pipeline and
// returns the ground truth of every request.
func (sc *scenario) run(tb testing.TB, p *pipelinetest.Pipeline) []genSpan {
	return sc.feed(tb, p, true)
}

// feed is run; without keep it returns no ground truth (large volumes).
func (sc *scenario) feed(tb testing.TB, p *pipelinetest.Pipeline, keep bool) []genSpan {
	tb.Helper()
	ctx := context.Background()
	g := newGenerator(sc)
	var truth []genSpan
	minutes := int(sc.length / time.Minute)
	for m := 0; m < minutes; m++ {
		spans := g.minute(m)
		if keep {
			truth = append(truth, spans...)
		}
		perReplica := make([][]genSpan, len(p.Replicas))
		for _, s := range spans {
			r := min(s.replica, len(p.Replicas)-1)
			perReplica[r] = append(perReplica[r], s)
		}
		for r, rs := range perReplica {
			td := g.requestTraces(rs)
			if r == 0 {
				for _, c := range sc.ci {
					at := c.deliverAt
					if at == 0 {
						at = c.deploy
					}
					if int(at/time.Minute) == m {
						g.appendCI(td, c)
					}
				}
			}
			if td.ResourceSpans().Len() == 0 {
				continue
			}
			if err := p.Replicas[r].ConsumeTraces(ctx, td); err != nil {
				tb.Fatal(err)
			}
		}
	}
	sort.SliceStable(truth, func(i, j int) bool { return truth[i].start.Before(truth[j].start) })
	return truth
}
