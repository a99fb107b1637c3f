package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/changelens/changelens/cmd/changelens-demo/plan"
)

// CI resource: the system that runs the deploy pipelines.
const (
	ciServiceName = "github-actions"
	commitTimeKey = attribute.Key("changelens.commit.time")
	reworkKey     = attribute.Key("changelens.deployment.rework")
	repoURLPrefix = "https://github.com/acme-shop/"
	scopeName     = "github.com/changelens/changelens/cmd/changelens-demo"
	// backfillChunk is the slice of simulated time generated at once in
	// backfill: the event-time disorder the collector sees stays below it,
	// far below the processor's allowed lateness (2 minutes by default).
	backfillChunk = time.Minute
	// liveChunk is the same in live mode, where it is also the pacing step.
	liveChunk = time.Second
	// idleTracer is how long (simulated) a version's TracerProvider is kept
	// after its last span; a rollback simply creates a new one.
	idleTracer = time.Hour
	// flagEvent is the span event an OpenFeature tracing hook records.
	flagEvent = "feature_flag.evaluation"
	// flagSpan is the in-process span the flag is evaluated in, a child of
	// the request: changelens credits the evaluation to the entry span.
	flagSpan = "evaluate flags"
	// errBodyBytes and errBodySigma are the log-normal size of an error
	// answer's body (a short JSON problem), whatever the route.
	errBodyBytes, errBodySigma = 180, 0.25
)

// stats are read by the progress printer while the emitter runs.
type stats struct {
	requests    atomic.Int64
	spans       atomic.Int64 // ended (handed to the batcher)
	exported    atomic.Int64
	failed      atomic.Int64
	deployments atomic.Int64
	simTime     atomic.Int64 // unix nanoseconds of the emitted frontier
	live        atomic.Bool
	firstErr    atomic.Value // string
	lastWarn    atomic.Int64 // unix nanoseconds
}

// warn prints a warning at most every 10 seconds and keeps the first one.
func (s *stats) warn(w io.Writer, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.firstErr.CompareAndSwap(nil, msg)
	now := time.Now().UnixNano()
	if last := s.lastWarn.Load(); now-last >= int64(10*time.Second) && s.lastWarn.CompareAndSwap(last, now) {
		fmt.Fprintln(w, "changelens-demo:", msg)
	}
}

// emitter turns the plan into spans, chunk by chunk of simulated time, on a
// single goroutine (so a seed gives the same spans, IDs included).
type emitter struct {
	plan *plan.Plan
	rps  float64
	// childFrac is the fraction of requests emitted with their child spans.
	childFrac float64
	proc      sdktrace.SpanProcessor // the shared SDK batcher
	ids       *seededIDs
	sample    sdktrace.Sampler
	st        *stats

	units   []*unitGen
	tracers map[tracerKey]*tracerEntry
	ci      *sdktrace.TracerProvider
	ciTr    trace.Tracer
	nextDep int
	// story is the order-screen experiment (nil: off).
	story *orderStory
}

type unitGen struct {
	key  plan.UnitKey
	svc  *plan.Service
	cum  []float64 // cumulative route weights
	rng  *rand.Rand
	next time.Time
	// serverAddr is the SERVER spans' server.address.
	serverAddr attribute.KeyValue
	// exp is the unit's feature-flag experiment (nil: none) and flagAttrs
	// the attributes of its evaluation event per variant (control, treatment).
	exp       *plan.Experiment
	flagAttrs [2]trace.SpanStartEventOption
}

type tracerKey struct {
	unit    plan.UnitKey
	version string
}

type tracerEntry struct {
	tp       *sdktrace.TracerProvider
	tr       trace.Tracer
	lastUsed time.Time
}

func newEmitter(p *plan.Plan, rps, weight float64, proc sdktrace.SpanProcessor, st *stats) (*emitter, error) {
	if rps <= 0 || math.IsInf(rps, 0) || math.IsNaN(rps) {
		return nil, fmt.Errorf("rps must be positive, got %v", rps)
	}
	ts, err := weightTraceState(weight)
	if err != nil {
		return nil, err
	}
	e := &emitter{
		plan:      p,
		rps:       rps,
		childFrac: 1,
		proc:      proc,
		ids:       &seededIDs{r: rand.New(rand.NewPCG(p.Seed, 0x1d5))},
		sample:    weightSampler{ts: ts},
		st:        st,
		tracers:   map[tracerKey]*tracerEntry{},
	}
	for i, u := range p.Units {
		svc := p.Service(u.Service)
		g := &unitGen{key: u, svc: svc, rng: rand.New(rand.NewPCG(p.Seed, uint64(1000+i))),
			serverAddr: semconv.ServerAddress(u.Service + ".shop.internal"), exp: p.Experiment(u)}
		if x := g.exp; x != nil {
			for j, v := range [2]string{x.Control, x.Treatment} {
				g.flagAttrs[j] = trace.WithAttributes(
					semconv.FeatureFlagKey(x.Key),
					semconv.FeatureFlagResultVariant(v),
					semconv.FeatureFlagProviderName(x.Provider),
					semconv.FeatureFlagResultReasonSplit,
				)
			}
		}
		sum := 0.0
		for _, r := range svc.Routes {
			sum += r.Weight
			g.cum = append(g.cum, sum)
		}
		for j := range g.cum {
			g.cum[j] /= sum
		}
		g.next = p.Start.Add(g.gap(e.rps * p.RateFactor(u, p.Start)))
		e.units = append(e.units, g)
	}
	e.ci = sdktrace.NewTracerProvider(
		sdktrace.WithResource(resource.NewWithAttributes(semconv.SchemaURL,
			semconv.ServiceName(ciServiceName),
			semconv.ServiceNamespace("ci"),
			semconv.TelemetrySDKName("opentelemetry"),
			semconv.TelemetrySDKLanguageGo,
			semconv.TelemetrySDKVersion(sdkVersion()),
		)),
		sdktrace.WithSpanProcessor(sharedProcessor{proc}),
		sdktrace.WithIDGenerator(e.ids),
		sdktrace.WithSampler(sdktrace.AlwaysSample()),
	)
	e.ciTr = e.ci.Tracer(scopeName)
	return e, nil
}

// gap is an exponential inter-arrival time at rate per second.
func (g *unitGen) gap(rate float64) time.Duration {
	if rate <= 0 {
		return time.Minute
	}
	return time.Duration(g.rng.ExpFloat64() / rate * float64(time.Second))
}

// tracer returns the tracer of a unit's version, creating its TracerProvider
// (a resource per service version) on first use.
func (e *emitter) tracer(u plan.UnitKey, version string, at time.Time) trace.Tracer {
	k := tracerKey{u, version}
	if te := e.tracers[k]; te != nil {
		te.lastUsed = at
		return te.tr
	}
	res := resource.NewWithAttributes(semconv.SchemaURL,
		semconv.ServiceName(u.Service),
		semconv.ServiceVersion(version),
		semconv.ServiceNamespace("shop"),
		semconv.DeploymentEnvironmentNameKey.String(u.Environment),
		semconv.TelemetrySDKName("opentelemetry"),
		semconv.TelemetrySDKLanguageGo,
		semconv.TelemetrySDKVersion(sdkVersion()),
	)
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		sdktrace.WithSpanProcessor(sharedProcessor{e.proc}),
		sdktrace.WithIDGenerator(e.ids),
		sdktrace.WithSampler(e.sample),
	)
	te := &tracerEntry{tp: tp, tr: tp.Tracer(scopeName), lastUsed: at}
	e.tracers[k] = te
	return te.tr
}

// prune drops TracerProviders of versions idle for idleTracer.
func (e *emitter) prune(now time.Time) {
	for k, te := range e.tracers {
		if now.Sub(te.lastUsed) > idleTracer {
			_ = te.tp.Shutdown(context.Background()) // the shared batcher is not shut down
			delete(e.tracers, k)
		}
	}
}

// chunk emits the requests of every unit in [from, to) and the CI deploy
// spans that ended before to. All providers share one batcher, a FIFO with a
// single export goroutine, so the collector receives spans in the order they
// were generated: event time ordered to within a chunk. The batcher is
// flushed when flush is set (live: every chunk) and at every simulated hour
// (backfill: flushing more often would stall generation on each export).
func (e *emitter) chunk(ctx context.Context, from, to time.Time, flush bool) error {
	for _, u := range e.units {
		n := 0
		for u.next.Before(to) {
			if n++; n%512 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			e.request(u, u.next)
			u.next = u.next.Add(u.gap(e.rps * e.plan.RateFactor(u.key, u.next)))
		}
	}
	if e.story != nil {
		e.story.emit(ctx, from, to)
	}
	deps := e.plan.Deployments
	for e.nextDep < len(deps) && deps[e.nextDep].Time().Before(to) {
		d := deps[e.nextDep]
		if d.Explicit && !d.Time().Before(e.plan.Start) {
			e.deploySpan(d)
		}
		if !d.Time().Before(e.plan.Start) {
			e.st.deployments.Add(1)
		}
		e.nextDep++
	}
	var err error
	if flush || to.Truncate(time.Hour) != from.Truncate(time.Hour) {
		err = e.proc.ForceFlush(context.Background())
		e.prune(to)
	}
	e.st.simTime.Store(to.UnixNano())
	return err
}

var (
	serverKind   = trace.WithSpanKind(trace.SpanKindServer)
	clientKind   = trace.WithSpanKind(trace.SpanKindClient)
	internalKind = trace.WithSpanKind(trace.SpanKindInternal)
	bg           = context.Background()
)

type childSpan struct {
	call       *plan.Call
	start, end time.Time
}

// request emits one request of unit u at t: a SERVER span and its children.
func (e *emitter) request(u *unitGen, t time.Time) {
	r := u.rng
	version := e.plan.Mix(u.key, t).Pick(r.Float64())
	prof := e.plan.Profile(u.key.Service, version)
	latency, errRate, respFactor := prof.LatencyFactor, prof.ErrorRate, 1.0
	treated := false
	if u.exp != nil {
		if treated = u.exp.Variant(r.Float64()) == u.exp.Treatment; treated {
			latency *= u.exp.LatencyFactor
			errRate += u.exp.ErrorRateIncrease
			respFactor = u.exp.ResponseSizeFactor
		}
	}
	ri := 0
	x := r.Float64()
	for ri < len(u.cum)-1 && x >= u.cum[ri] {
		ri++
	}
	route := &u.svc.Routes[ri]
	ms := route.MedianMS * latency * math.Exp((route.Sigma+prof.ExtraSigma)*r.NormFloat64())
	dur := time.Duration(ms * float64(time.Millisecond))

	status := 200
	if route.Method == "POST" {
		status = 201
	}
	switch y := r.Float64(); {
	case y < errRate:
		switch z := r.Float64(); {
		case z < 0.6:
			status = 500
		case z < 0.85:
			status = 503
		default:
			status = 504
		}
	case y < errRate+route.ClientErrorRate:
		switch {
		case strings.Contains(route.Path, "{id}"):
			status = 404
		case route.Method == "POST":
			status = 422
		default:
			status = 400
		}
	}

	path := route.Path
	if strings.Contains(path, "{id}") {
		path = strings.Replace(path, "{id}", strconv.Itoa(10000+r.IntN(90000)), 1)
	}
	respBytes := route.RespBytes * respFactor * math.Exp(route.RespSigma*r.NormFloat64())
	if status >= 400 {
		respBytes = errBodyBytes * math.Exp(errBodySigma*r.NormFloat64())
	}
	attrs := append(make([]attribute.KeyValue, 0, 7),
		semconv.HTTPRequestMethodKey.String(route.Method),
		semconv.HTTPRoute(route.Path),
		semconv.URLPath(path),
		u.serverAddr,
		semconv.HTTPResponseStatusCode(status),
		semconv.HTTPResponseBodySize(int(respBytes)),
	)
	if route.ReqBytes > 0 {
		attrs = append(attrs, semconv.HTTPRequestBodySize(int(route.ReqBytes*math.Exp(route.ReqSigma*r.NormFloat64()))))
	}
	tr := e.tracer(u.key, version, t)
	ctx, span := tr.Start(bg, route.Method+" "+route.Path, serverKind, trace.WithTimestamp(t), trace.WithAttributes(attrs...))
	e.st.requests.Add(1)

	// Children, sequential inside the request.
	var kids [4]childSpan
	nk := 0
	withKids := r.Float64() < e.childFrac
	cursor := t.Add(time.Duration(float64(dur) * (0.02 + 0.04*r.Float64())))
	limit := t.Add(time.Duration(float64(dur) * 0.98))
	for i := range route.Calls {
		c := &route.Calls[i]
		if !withKids || r.Float64() >= c.Prob || nk == len(kids) || !cursor.Before(limit) {
			continue
		}
		cd := time.Duration(float64(dur) * c.Share * (0.7 + 0.6*r.Float64()))
		end := cursor.Add(cd)
		if end.After(limit) {
			end = limit
		}
		kids[nk] = childSpan{call: c, start: cursor, end: end}
		nk++
		cursor = end.Add(time.Duration(float64(dur) * 0.01))
	}
	for i := range nk {
		k := &kids[i]
		failed := status >= 500 && i == nk-1
		e.child(ctx, tr, k, failed, status)
	}
	// The flag is evaluated first thing, in every request: changelens reads
	// it, so --backfill-child-spans does not drop its span. It is ended
	// right before the request, so that both land in the same export batch
	// (the processor credits the evaluation within a batch) unless a batch
	// boundary falls exactly between them.
	spans := int64(1 + nk)
	if u.exp != nil {
		v := 0
		if treated {
			v = 1
		}
		fs := t.Add(dur / 250)
		_, f := tr.Start(ctx, flagSpan, internalKind, trace.WithTimestamp(fs))
		f.AddEvent(flagEvent, trace.WithTimestamp(fs.Add(dur/1000)), u.flagAttrs[v])
		f.End(trace.WithTimestamp(fs.Add(dur / 100)))
		spans++
	}
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
		span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(status)))
	}
	span.End(trace.WithTimestamp(t.Add(dur)))
	e.st.spans.Add(spans)
}

func (e *emitter) child(ctx context.Context, tr trace.Tracer, k *childSpan, failed bool, status int) {
	c := k.call
	var span trace.Span
	switch c.Kind {
	case plan.CallDB:
		_, span = tr.Start(ctx, c.Operation+" "+c.Target, clientKind, trace.WithTimestamp(k.start), trace.WithAttributes(
			semconv.DBSystemNamePostgreSQL,
			semconv.DBOperationName(c.Operation),
			semconv.DBCollectionName(c.Target),
			semconv.ServerAddress(c.Server),
		))
		if failed {
			span.SetStatus(codes.Error, "canceling statement due to statement timeout")
			span.SetAttributes(semconv.ErrorTypeKey.String("57014"), semconv.DBResponseStatusCode("57014"))
		}
	case plan.CallCache:
		_, span = tr.Start(ctx, c.Operation, clientKind, trace.WithTimestamp(k.start), trace.WithAttributes(
			semconv.DBSystemNameRedis,
			semconv.DBOperationName(c.Operation),
			semconv.ServerAddress(c.Server),
		))
		if failed {
			span.SetStatus(codes.Error, "i/o timeout")
			span.SetAttributes(semconv.ErrorTypeKey.String("timeout"))
		}
	case plan.CallHTTP:
		code := 200
		if failed {
			code = status
		}
		_, span = tr.Start(ctx, c.Operation+" "+c.Target, clientKind, trace.WithTimestamp(k.start), trace.WithAttributes(
			semconv.HTTPRequestMethodKey.String(c.Operation),
			semconv.URLTemplate(c.Target),
			semconv.ServerAddress(c.Server),
			semconv.HTTPResponseStatusCode(code),
		))
		if failed {
			span.SetStatus(codes.Error, "")
			span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(code)))
		}
	default:
		_, span = tr.Start(ctx, c.Operation, internalKind, trace.WithTimestamp(k.start))
		if failed {
			span.SetStatus(codes.Error, "internal error")
		}
	}
	span.End(trace.WithTimestamp(k.end))
}

// deploySpan emits the CI/CD pipeline's deploy task: a root span
// "deploy <service>" over the deploy (CIStart..CIEnd) with the deployed
// unit, version and commit as span attributes, and two children.
func (e *emitter) deploySpan(d plan.Deployment) {
	result := semconv.CICDPipelineTaskRunResultSuccess
	if d.Failed() {
		result = semconv.CICDPipelineTaskRunResultFailure
	}
	attrs := []attribute.KeyValue{
		semconv.CICDPipelineName(d.Pipeline),
		semconv.CICDPipelineRunID(d.RunID),
		semconv.CICDPipelineTaskName("deploy-" + d.Environment),
		semconv.CICDPipelineTaskRunID(d.RunID + "-1"),
		semconv.CICDPipelineTaskTypeDeploy,
		result,
		semconv.ServiceName(d.Service),
		semconv.ServiceVersion(d.Version),
		semconv.DeploymentEnvironmentNameKey.String(d.Environment),
		semconv.DeploymentID(d.DeploymentID),
		semconv.VCSRefHeadRevision(d.Commit),
		semconv.VCSRefHeadName("main"),
		semconv.VCSRepositoryURLFull(repoURLPrefix + d.Service),
		commitTimeKey.String(d.CommitTime.UTC().Format(time.RFC3339)),
	}
	if d.Rework != "" {
		attrs = append(attrs, reworkKey.String(d.Rework))
	}
	ctx, span := e.ciTr.Start(bg, "deploy "+d.Service, internalKind, trace.WithTimestamp(d.CIStart), trace.WithAttributes(attrs...))
	// helm upgrade until the rollout starts, then waiting for it.
	rolloutAt := d.RolloutStart
	if d.Failed() {
		rolloutAt = d.CIStart.Add(d.CIEnd.Sub(d.CIStart) / 4)
	}
	_, h := e.ciTr.Start(ctx, "helm upgrade "+d.Service, internalKind, trace.WithTimestamp(d.CIStart.Add(5*time.Second)))
	h.End(trace.WithTimestamp(rolloutAt))
	_, w := e.ciTr.Start(ctx, "kubectl rollout status", internalKind, trace.WithTimestamp(rolloutAt))
	end := d.RolloutEnd
	if d.Failed() {
		end = d.CIEnd.Add(-2 * time.Second)
		w.SetStatus(codes.Error, "deployment exceeded its progress deadline")
		span.SetStatus(codes.Error, "deploy failed")
	}
	w.End(trace.WithTimestamp(end))
	span.End(trace.WithTimestamp(d.CIEnd))
	e.st.spans.Add(3)
}

func (e *emitter) shutdownTracers(ctx context.Context) {
	for k, te := range e.tracers {
		_ = te.tp.Shutdown(ctx)
		delete(e.tracers, k)
	}
	_ = e.ci.Shutdown(ctx)
	if e.story != nil {
		e.story.shutdown(ctx)
	}
}

// sharedProcessor lets many TracerProviders (one per service version) feed
// one SDK batcher: shutting a provider down does not shut the batcher down.
type sharedProcessor struct{ sdktrace.SpanProcessor }

func (sharedProcessor) Shutdown(context.Context) error { return nil }

// seededIDs is a deterministic trace/span ID source.
type seededIDs struct {
	mu sync.Mutex
	r  *rand.Rand
}

func (g *seededIDs) NewIDs(context.Context) (trace.TraceID, trace.SpanID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var tid trace.TraceID
	for !tid.IsValid() {
		putUint64(tid[:8], g.r.Uint64())
		putUint64(tid[8:], g.r.Uint64())
	}
	return tid, g.spanID()
}

func (g *seededIDs) NewSpanID(context.Context, trace.TraceID) trace.SpanID {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.spanID()
}

func (g *seededIDs) spanID() trace.SpanID {
	var sid trace.SpanID
	for !sid.IsValid() {
		putUint64(sid[:], g.r.Uint64())
	}
	return sid
}

func putUint64(b []byte, v uint64) {
	for i := 7; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
}

// weightSampler samples everything and stamps root spans with an OpenTelemetry
// sampling threshold (tracestate ot=th:…) so that each trace counts as
// weight requests; children inherit their parent's tracestate.
type weightSampler struct{ ts trace.TraceState }

func (s weightSampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	ts := s.ts
	if psc := trace.SpanContextFromContext(p.ParentContext); psc.IsValid() {
		ts = psc.TraceState()
	}
	return sdktrace.SamplingResult{Decision: sdktrace.RecordAndSample, Tracestate: ts}
}

func (weightSampler) Description() string { return "changelens-demo/weight" }

// weightTraceState is the tracestate of a trace sampled with probability
// 1/weight: ot=th:<rejection threshold as up to 14 hex digits, trailing zeros
// removed>. Weight 1 needs none.
func weightTraceState(weight float64) (trace.TraceState, error) {
	if math.IsNaN(weight) || weight < 1 || weight > 1<<40 {
		return trace.TraceState{}, fmt.Errorf("weight must be between 1 and 2^40, got %v", weight)
	}
	if weight == 1 {
		return trace.TraceState{}, nil
	}
	const max = 1 << 56
	th := uint64(math.Round((1 - 1/weight) * max))
	if th >= max {
		th = max - 1
	}
	hex := strings.TrimRight(fmt.Sprintf("%014x", th), "0")
	if hex == "" {
		hex = "0"
	}
	return trace.ParseTraceState("ot=th:" + hex)
}

func sdkVersion() string { return sdk.Version() }
