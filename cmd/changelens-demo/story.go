package main

import (
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	grpccodes "google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
)

// The GraphQL-vs-REST story: a mobile app's order screen, its backend, and
// an experiment on the flag that picks the API (README "The order-screen
// experiment").
const (
	appService     = "shop-app"
	appVersion     = "5.4.0"
	ordersService  = "orders"
	storyFlag      = "order-screen-api"
	variantREST    = "rest"
	variantGraphQL = "graphql"
	// The backend serves each variant from its own version: a process
	// serving both could not say which requests its CPU went to, so the
	// cost comparison runs on the version dimension.
	ordersRESTVersion    = "2.9.0"
	ordersGraphQLVersion = "3.0.0-graphql"
	ordersInstances      = 2 // per version
	screenSpan           = "screen order"
	checkoutSpan         = "checkout"
	// sessionIdle ends a session, as mobile SDKs do after inactivity.
	sessionIdle = 30 * time.Minute
	// metricInterval is the simulated export interval of the CPU and memory
	// metrics, as a PeriodicReader's.
	metricInterval = time.Minute
)

// storyParams are the truths the generator draws from; tests measure the
// output against them, never read them back.
type storyParams struct {
	users          int
	crashPerSess   float64 // probability a session crashes (on its first screen)
	checkoutPerLd  float64 // probability a screen load leads to a checkout
	renderMedianMS float64 // client-side work of either variant
	restExtraMS    float64 // REST's over-fetch parsing and extra rendering
	serverMS       float64 // backend latency median (both)
	respBytesREST  float64
	graphqlSize    float64 // graphql body size ÷ REST's
	cpuMSREST      float64 // CPU per request of the REST version
	graphqlCPU     float64 // graphql CPU per request ÷ REST's
	memREST        float64 // resident bytes per instance
	memGraphQL     float64
}

var defaultStory = storyParams{
	users: 4000, crashPerSess: 0.005, checkoutPerLd: 0.06,
	renderMedianMS: 650, restExtraMS: 200, serverMS: 90,
	respBytesREST: 24000, graphqlSize: 0.6,
	cpuMSREST: 4, graphqlCPU: 2,
	memREST: 180 << 20, memGraphQL: 210 << 20,
}

// metricSink takes one instance's metrics (otlpmetricgrpc.Exporter.Export
// in a run, a slice in tests). Building the points by hand instead of
// through a MeterProvider is what lets the backfill carry past timestamps.
type metricSink func(context.Context, *metricdata.ResourceMetrics) error

type storyUser struct {
	id        string
	variant   int // 0 rest, 1 graphql
	lastSeen  time.Time
	session   string
	nSessions int
}

type ordersInstance struct {
	id      string
	version string
	variant int
	tp      *sdktrace.TracerProvider
	tr      trace.Tracer
	res     *resource.Resource
	started time.Time
	cpuSec  float64 // cumulative, all modes
	served  int64
}

type orderStory struct {
	p        storyParams
	rps      float64 // mean screen loads per second
	rng      *rand.Rand
	ids      *seededIDs
	next     time.Time
	users    []*storyUser
	app      *sdktrace.TracerProvider
	appTr    trace.Tracer
	inst     [2][]*ordersInstance
	flagEv   [2]trace.SpanStartEventOption
	sink     metricSink
	lastMet  time.Time
	st       *stats
	warnf    func(format string, args ...any)
	sessions int64
	// metricErrs counts refused metric exports (reported, not fatal).
	metricErrs int64
	// Per variant, what was emitted: the summary prints it beside the
	// report, so a reader can tell the API's figures from the generator's.
	loads, crashes, checkouts [2]int64
	metricPoints              int64
}

func newOrderStory(seed uint64, start time.Time, rps float64, p storyParams, proc sdktrace.SpanProcessor, sink metricSink, st *stats) *orderStory {
	s := &orderStory{p: p, rps: rps, rng: rand.New(rand.NewPCG(seed, 0x5707)),
		ids: &seededIDs{r: rand.New(rand.NewPCG(seed, 0x5708))}, sink: sink, st: st,
		lastMet: start.Truncate(metricInterval)}
	for i := range p.users {
		id := "u-" + strconv.Itoa(100000+i)
		s.users = append(s.users, &storyUser{id: id, variant: variantOf(id)})
	}
	sampler := sdktrace.WithSampler(sdktrace.AlwaysSample())
	s.app = sdktrace.NewTracerProvider(
		sdktrace.WithResource(resource.NewWithAttributes(semconv.SchemaURL,
			semconv.ServiceName(appService),
			semconv.ServiceVersion(appVersion),
			semconv.ServiceNamespace("shop"),
			semconv.DeploymentEnvironmentNameKey.String("production"),
			semconv.TelemetrySDKName("opentelemetry"),
			semconv.TelemetrySDKLanguageSwift,
			semconv.TelemetrySDKVersion("2.1.0"),
			semconv.OSName("iOS"),
		)),
		sdktrace.WithSpanProcessor(sharedProcessor{proc}), sdktrace.WithIDGenerator(s.ids), sampler)
	s.appTr = s.app.Tracer(scopeName)
	for v, version := range [2]string{ordersRESTVersion, ordersGraphQLVersion} {
		for i := range ordersInstances {
			in := &ordersInstance{id: ordersService + "-" + strconv.Itoa(v) + "-" + strconv.Itoa(i),
				version: version, variant: v, started: start}
			in.res = resource.NewWithAttributes(semconv.SchemaURL,
				semconv.ServiceName(ordersService),
				semconv.ServiceVersion(version),
				semconv.ServiceNamespace("shop"),
				semconv.ServiceInstanceID(in.id),
				semconv.DeploymentEnvironmentNameKey.String("production"),
				semconv.TelemetrySDKName("opentelemetry"),
				semconv.TelemetrySDKLanguageGo,
				semconv.TelemetrySDKVersion(sdkVersion()),
			)
			in.tp = sdktrace.NewTracerProvider(sdktrace.WithResource(in.res),
				sdktrace.WithSpanProcessor(sharedProcessor{proc}), sdktrace.WithIDGenerator(s.ids), sampler)
			in.tr = in.tp.Tracer(scopeName)
			s.inst[v] = append(s.inst[v], in)
		}
	}
	for v, name := range [2]string{variantREST, variantGraphQL} {
		s.flagEv[v] = trace.WithAttributes(
			semconv.FeatureFlagKey(storyFlag),
			semconv.FeatureFlagResultVariant(name),
			semconv.FeatureFlagProviderName("flagd"),
			semconv.FeatureFlagResultReasonSplit,
		)
	}
	s.next = start.Add(s.gap(start))
	return s
}

// variantOf is the flag's split: a hash of the user, so a user keeps a
// variant across sessions and devices, as a targeting key does.
func variantOf(user string) int {
	h := fnv.New32a()
	h.Write([]byte(storyFlag + "/" + user))
	return int(h.Sum32() % 2)
}

// rate follows the shop's day: busier in the afternoon, quieter at night
// and at weekends.
func (s *orderStory) rate(t time.Time) float64 {
	t = t.UTC()
	h := float64(t.Hour()) + float64(t.Minute())/60
	f := 1 + 0.4*math.Sin(2*math.Pi*(h-9)/24)
	if wd := t.Weekday(); wd == time.Saturday || wd == time.Sunday {
		f *= 0.75
	}
	return s.rps * f
}

func (s *orderStory) gap(t time.Time) time.Duration {
	return time.Duration(s.rng.ExpFloat64() / s.rate(t) * float64(time.Second))
}

// emit generates the screen loads that start in [from, to) and exports the
// metrics of every interval that closed before to.
func (s *orderStory) emit(ctx context.Context, from, to time.Time) {
	for s.next.Before(to) {
		s.screen(s.next)
		s.next = s.next.Add(s.gap(s.next))
	}
	for !s.lastMet.Add(metricInterval).After(to) {
		s.lastMet = s.lastMet.Add(metricInterval)
		s.exportMetrics(ctx, s.lastMet)
	}
}

func (s *orderStory) lognormal(median, sigma float64) float64 {
	return median * math.Exp(sigma*s.rng.NormFloat64())
}

// screen is one load of the order screen by a random user.
func (s *orderStory) screen(t time.Time) {
	r := s.rng
	u := s.users[r.IntN(len(s.users))]
	newSession := u.session == "" || t.Sub(u.lastSeen) > sessionIdle
	if newSession {
		u.nSessions++
		u.session = u.id + "-s" + strconv.Itoa(u.nSessions)
		s.sessions++
	}
	u.lastSeen = t
	v := u.variant
	in := s.inst[v][r.IntN(ordersInstances)]

	serverMS := s.lognormal(s.p.serverMS, 0.3)
	cpuMS := s.lognormal(s.p.cpuMSREST, 0.25)
	size := s.lognormal(s.p.respBytesREST, 0.3)
	renderMS := s.lognormal(s.p.renderMedianMS, 0.25)
	if v == 1 {
		cpuMS *= s.p.graphqlCPU
		size *= s.p.graphqlSize
	} else {
		renderMS += s.p.restExtraMS
	}
	netMS := 40 + 20*r.Float64()
	loadMS := renderMS + serverMS + netMS
	ms := func(x float64) time.Duration { return time.Duration(x * float64(time.Millisecond)) }

	who := trace.WithAttributes(attribute.String("session.id", u.session), attribute.String("user.id", u.id),
		attribute.String("screen.name", "order"))
	ctx, root := s.appTr.Start(bg, screenSpan, internalKind, trace.WithTimestamp(t), who)
	root.AddEvent(flagEvent, trace.WithTimestamp(t.Add(ms(2))), s.flagEv[v])

	method, route, target := "GET", "/v2/orders/{id}", "/v2/orders/{id}"
	if v == 1 {
		method, route, target = "POST", "/graphql", "/graphql"
	}
	cStart := t.Add(ms(10))
	status := semconv.HTTPResponseStatusCode(200)
	bodySize := semconv.HTTPResponseBodySize(int(size))
	cctx, client := s.appTr.Start(ctx, method+" "+target, clientKind, trace.WithTimestamp(cStart), trace.WithAttributes(
		semconv.HTTPRequestMethodKey.String(method), semconv.URLTemplate(target),
		semconv.ServerAddress("api.shop.example"), status, bodySize))
	sStart := cStart.Add(ms(netMS / 2))
	_, server := in.tr.Start(cctx, method+" "+route, serverKind, trace.WithTimestamp(sStart), trace.WithAttributes(
		semconv.HTTPRequestMethodKey.String(method), semconv.HTTPRoute(route), semconv.URLPath(target),
		semconv.ServerAddress("orders.shop.internal"), status, bodySize))
	server.AddEvent(flagEvent, trace.WithTimestamp(sStart.Add(ms(1))), s.flagEv[v])
	server.End(trace.WithTimestamp(sStart.Add(ms(serverMS))))
	client.End(trace.WithTimestamp(cStart.Add(ms(serverMS + netMS))))
	in.cpuSec += cpuMS / 1000
	in.served++

	end := t.Add(ms(loadMS))
	spans := int64(3)
	crashed := newSession && r.Float64() < s.p.crashPerSess
	s.loads[v]++
	if crashed {
		s.crashes[v]++
		root.AddEvent("exception", trace.WithTimestamp(end), trace.WithAttributes(
			semconv.ExceptionType("NSInvalidArgumentException"),
			semconv.ExceptionMessage("-[OrderViewController render:]: unrecognized selector"),
			attribute.Bool("exception.escaped", true)))
		// The app is gone: the next load starts a new session.
		u.session = ""
	}
	root.End(trace.WithTimestamp(end))
	if !crashed && r.Float64() < s.p.checkoutPerLd {
		at := end.Add(time.Duration((2 + 18*r.Float64()) * float64(time.Second)))
		_, c := s.appTr.Start(bg, checkoutSpan, internalKind, trace.WithTimestamp(at), who)
		c.End(trace.WithTimestamp(at.Add(ms(s.lognormal(300, 0.3)))))
		s.checkouts[v]++
		spans++
	}
	s.st.requests.Add(1)
	s.st.spans.Add(spans)
}

// exportMetrics sends every backend instance's process.cpu.time (cumulative
// since the instance started, split user/system) and process.memory.usage
// at t. CPU seconds are exactly the per-request costs of the requests the
// instance served, so CPU per request per version is the story's truth.
func (s *orderStory) exportMetrics(ctx context.Context, t time.Time) {
	if s.sink == nil {
		return
	}
	scope := instrumentation.Scope{Name: "go.opentelemetry.io/contrib/instrumentation/runtime"}
	for v := range s.inst {
		for _, in := range s.inst[v] {
			mem := s.p.memREST
			if v == 1 {
				mem = s.p.memGraphQL
			}
			mem *= 1 + 0.05*s.rng.NormFloat64()
			rm := &metricdata.ResourceMetrics{Resource: in.res, ScopeMetrics: []metricdata.ScopeMetrics{{Scope: scope, Metrics: []metricdata.Metrics{
				{Name: "process.cpu.time", Unit: "s", Description: "Total CPU seconds broken down by different states.",
					Data: metricdata.Sum[float64]{Temporality: metricdata.CumulativeTemporality, IsMonotonic: true, DataPoints: []metricdata.DataPoint[float64]{
						{Attributes: attribute.NewSet(attribute.String("cpu.mode", "user")), StartTime: in.started, Time: t, Value: 0.8 * in.cpuSec},
						{Attributes: attribute.NewSet(attribute.String("cpu.mode", "system")), StartTime: in.started, Time: t, Value: 0.2 * in.cpuSec},
					}}},
				{Name: "process.memory.usage", Unit: "By", Description: "The amount of physical memory in use.",
					Data: metricdata.Gauge[int64]{DataPoints: []metricdata.DataPoint[int64]{{Time: t, Value: int64(mem)}}}},
			}}}}
			err := s.sink(ctx, rm)
			if err == nil {
				s.metricPoints++
			}
			if err != nil {
				s.metricErrs++
				if s.warnf != nil {
					s.warnf("metrics of %s: %v", in.id, err)
				}
				if grpcstatus.Code(err) == grpccodes.Unimplemented {
					// A collector without a metrics pipeline refuses every
					// export: the traces are the story's other half, so go
					// on without the cost.
					s.sink = nil
					return
				}
			}
		}
	}
}

func (s *orderStory) shutdown(ctx context.Context) {
	_ = s.app.Shutdown(ctx)
	for v := range s.inst {
		for _, in := range s.inst[v] {
			_ = in.tp.Shutdown(ctx)
		}
	}
}

// printStory states what the story emitted, per variant, with the CPU per
// request it put into the metrics.
func printStory(w io.Writer, s *orderStory) {
	if s == nil {
		return
	}
	fmt.Fprintf(w, "\nOrder-screen experiment: %s (%s) flag %s split by user; orders %s serves %q, %s serves %q\n",
		appService, appVersion, storyFlag, ordersRESTVersion, variantREST, ordersGraphQLVersion, variantGraphQL)
	for v, name := range [2]string{variantREST, variantGraphQL} {
		var cpu float64
		var served int64
		for _, in := range s.inst[v] {
			cpu += in.cpuSec
			served += in.served
		}
		perReq := 0.0
		if served > 0 {
			perReq = cpu / float64(served) * 1000
		}
		fmt.Fprintf(w, "  %-8s %d screen loads, %d crashes, %d checkouts; backend CPU %.2f ms per request\n",
			name, s.loads[v], s.crashes[v], s.checkouts[v], perReq)
	}
	switch {
	case s.sink == nil && s.metricErrs > 0:
		fmt.Fprintf(w, "  CPU metrics: the collector refused them (no metrics pipeline?): cost per cohort cannot be read\n")
	default:
		fmt.Fprintf(w, "  CPU metrics: %d instance exports (%d refused)\n", s.metricPoints, s.metricErrs)
	}
	fmt.Fprintf(w, "  report: GET /v1/experiments/order-screen-api/report and /v1/experiments/order-api-backend/report\n")
}
