// Package server is changelens-api's front end: the gRPC service
// changelens.v1.QueryService on a report.Source, its REST mapping through
// grpc-gateway v2, /openapi.json, gRPC health and GET /healthz, optional
// bearer-token auth, and OpenTelemetry instrumentation of both ports.
//
// # REST → service: in process
//
// The gateway calls the service implementation directly
// (RegisterQueryServiceHandlerServer), not over a loopback gRPC connection:
// no second serialization, no internal connection to dial, manage and secure.
// The price is that gRPC interceptors do not run for REST requests, so:
//   - validation, defaults, the per-query timeout and error mapping live in the
//     service methods themselves (service.go): identical on both paths;
//   - auth is applied twice with the same token set: a gRPC interceptor for
//     the gRPC port, an HTTP middleware for REST;
//   - panics are recovered by a gRPC interceptor and by a gateway middleware;
//   - tracing is otelgrpc's stats handler on gRPC and otelhttp around the
//     HTTP handler (REST spans are named by route, e.g.
//     "GET /v1/deployments/{id}/impact").
//
// /healthz and /openapi.json on the HTTP port, and grpc.health.v1 and
// reflection on the gRPC port, stay open when auth is on. /openapi.json
// declares the bearer security exactly when auth is on (openapi.go).
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	goruntime "runtime"
	"strings"
	"sync"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/klauspost/compress/gzhttp"
	"github.com/klauspost/compress/gzip"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/changelens/changelens/internal/selftelemetry"
	pb "github.com/changelens/changelens/queryapi/gen/changelens/v1"
	"github.com/changelens/changelens/queryapi/limits"
	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/teams"
)

// Pinger is implemented by a Source that can check its backend (ClickHouse).
// When the Source has it, /healthz and the gRPC health status follow it.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Config of a Server. Only Source is required.
type Config struct {
	Source report.Source
	// AuthTokens: accepted bearer tokens; empty = auth off.
	AuthTokens []string
	// Limits: the request deadline (QueryTimeout, → 504), ranges, points
	// and page sizes (queryapi/limits); zero fields take the defaults.
	Limits limits.Limits
	// Telemetry providers (selftelemetry.Setup); zero = off.
	Telemetry selftelemetry.Providers
	// Logger; default slog.Default().
	Logger *slog.Logger
	// HealthInterval between pings of a Pinger Source. Default 10s.
	HealthInterval time.Duration
	// ShutdownTimeout bounds the graceful part of Serve's shutdown. Default 15s.
	ShutdownTimeout time.Duration
	// Now is the clock for default time ranges; default time.Now.
	Now func() time.Time
	// MaxRunning bounds the requests querying ClickHouse at once; a request
	// finding none free waits up to QueueWait, then gets 503 (UNAVAILABLE)
	// with Retry-After. Defaults: 4 × the CPUs (at least 4), and 2s.
	MaxRunning int
	QueueWait  time.Duration
	// UI, when set, is served under /ui/ without auth (static pages that
	// read the API with the user's token; package webui), and / redirects
	// there.
	UI http.Handler
	// Teams maps services to teams (--teams-file); nil: no teams, and a
	// team parameter is 400.
	Teams *teams.Mapping
}

// DefaultMaxRunning is Config.MaxRunning's default: 4 × the CPUs, at least
// 4 (a request mostly waits for ClickHouse).
func DefaultMaxRunning() int { return max(4, 4*goruntime.NumCPU()) }

// Server serves the query API on a gRPC and an HTTP listener.
type Server struct {
	cfg       Config
	log       *slog.Logger
	svc       *service
	tokens    *tokenSet
	health    *health.Server
	grpc      *grpc.Server
	gw        *runtime.ServeMux
	marshaler runtime.Marshaler
	handler   http.Handler

	mu       sync.Mutex
	shutdown bool
	ready    bool // the last ping (or no Pinger Source): readyz, gRPC health
}

// HealthService is the gRPC health service name of the query API (the empty
// name "" reports the same status): readiness, as /readyz. LivenessService
// is SERVING while the process serves, as /livez.
const (
	HealthService   = "changelens.v1.QueryService"
	LivenessService = "liveness"
)

// New builds a Server; nothing listens until Serve.
func New(cfg Config) (*Server, error) {
	if cfg.Source == nil {
		return nil, errors.New("server: Config.Source is required")
	}
	if cfg.HealthInterval <= 0 {
		cfg.HealthInterval = 10 * time.Second
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 15 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxRunning <= 0 {
		cfg.MaxRunning = DefaultMaxRunning()
	}
	if cfg.QueueWait <= 0 {
		cfg.QueueWait = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Telemetry.TracerProvider == nil || cfg.Telemetry.MeterProvider == nil {
		cfg.Telemetry = selftelemetry.Off()
	}
	cfg.Limits = cfg.Limits.WithDefaults()
	if err := cfg.Limits.Validate(); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}

	s := &Server{
		cfg:    cfg,
		log:    cfg.Logger,
		tokens: newTokenSet(cfg.AuthTokens),
		health: health.NewServer(),
		svc: &service{
			src:     cfg.Source,
			limits:  cfg.Limits,
			timeout: cfg.Limits.QueryTimeout,
			now:     cfg.Now,
			log:     cfg.Logger,
			admit:   newAdmission(cfg.MaxRunning, cfg.QueueWait),
			teams:   cfg.Teams,
		},
		marshaler: &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: true},
		},
	}
	if _, ok := cfg.Source.(Pinger); ok {
		s.setHealth(healthpb.HealthCheckResponse_NOT_SERVING) // until the first ping
	} else {
		s.setHealth(healthpb.HealthCheckResponse_SERVING)
	}

	// gRPC.
	s.grpc = grpc.NewServer(
		grpc.StatsHandler(otelgrpc.NewServerHandler(
			otelgrpc.WithTracerProvider(cfg.Telemetry.TracerProvider),
			otelgrpc.WithMeterProvider(cfg.Telemetry.MeterProvider),
			otelgrpc.WithFilter(func(info *stats.RPCTagInfo) bool {
				return !strings.HasPrefix(info.FullMethodName, "/grpc.health.v1.")
			}),
		)),
		grpc.ChainUnaryInterceptor(s.recoverUnary, s.tokens.unaryInterceptor),
		grpc.ChainStreamInterceptor(s.recoverStream, s.tokens.streamInterceptor),
		grpc.MaxRecvMsgSize(1<<20),
	)
	pb.RegisterQueryServiceServer(s.grpc, s.svc)
	s.health.SetServingStatus(LivenessService, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)

	// REST gateway, in process.
	s.gw = runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, s.marshaler),
		runtime.SetQueryParameterParser(&enumQueryParser{}),
		runtime.WithRoutingErrorHandler(s.routingError),
		runtime.WithMiddlewares(s.gatewayMiddleware),
		runtime.WithDisablePathLengthFallback(),
		runtime.WithForwardResponseOption(httpStatusFromHeader),
		runtime.WithOutgoingHeaderMatcher(outgoingHeader),
	)
	if err := pb.RegisterQueryServiceHandlerServer(context.Background(), s.gw, s.svc); err != nil {
		return nil, fmt.Errorf("server: register gateway: %w", err)
	}

	root := http.NewServeMux()
	root.HandleFunc("GET /livez", s.livez)
	root.HandleFunc("GET /readyz", s.readyz)
	root.HandleFunc("GET /healthz", s.readyz)
	openAPI, err := s.openAPIHandler()
	if err != nil {
		return nil, err
	}
	root.HandleFunc("GET /openapi.json", openAPI)
	root.Handle("/", s.httpAuth(s.gw))
	if cfg.UI != nil {
		root.Handle("GET /ui/", cfg.UI)
		toUI := func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ui/", http.StatusFound) }
		root.HandleFunc("GET /ui", toUI)
		root.HandleFunc("GET /{$}", toUI)
	}
	// Compression at the fastest level: a latency series at the maximum
	// points is ~1 MB of JSON that shrinks ~10× even so, for a few ms of CPU.
	gz, err := gzhttp.NewWrapper(gzhttp.CompressionLevel(gzip.BestSpeed))
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s.handler = otelhttp.NewHandler(routeTagger(s.edge(s.share(gz(root)))), "changelens-api",
		otelhttp.WithTracerProvider(cfg.Telemetry.TracerProvider),
		otelhttp.WithMeterProvider(cfg.Telemetry.MeterProvider),
		otelhttp.WithSpanNameFormatter(spanName),
		otelhttp.WithFilter(func(r *http.Request) bool { return !probePaths[r.URL.Path] }),
	)
	return s, nil
}

// Handler is the HTTP handler: REST gateway, /openapi.json, /healthz.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve serves gRPC on grpcLis and HTTP on httpLis (either may be nil) until
// ctx is done or a listener fails, then shuts down gracefully: health goes
// NOT_SERVING, in-flight requests finish (bounded by ShutdownTimeout), the
// listeners close. It returns nil after a shutdown caused by ctx.
func (s *Server) Serve(ctx context.Context, grpcLis, httpLis net.Listener) error {
	if grpcLis == nil && httpLis == nil {
		return errors.New("server: no listener")
	}

	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      s.cfg.Limits.QueryTimeout + 10*time.Second,
		IdleTimeout:       2 * time.Minute,
		// Headers over maxHeaderBytes get a JSON 431 from edge; the server's
		// own limit, above it, only stops abuse (its 431 is plain text).
		MaxHeaderBytes: 1 << 20,
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 2)
	if grpcLis != nil {
		go func() { errc <- s.grpc.Serve(grpcLis) }()
	}
	if httpLis != nil {
		go func() {
			if err := hs.Serve(httpLis); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
				return
			}
			errc <- nil
		}()
	}
	hctx, stopHealth := context.WithCancel(ctx)
	healthDone := make(chan struct{})
	go func() { defer close(healthDone); s.watchHealth(hctx) }()

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
		if serveErr != nil {
			serveErr = fmt.Errorf("server: %w", serveErr)
		}
	}
	stopHealth()
	<-healthDone

	s.mu.Lock()
	s.shutdown = true
	s.mu.Unlock()
	s.health.Shutdown() // every service NOT_SERVING

	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		_ = hs.Close()
	}
	stopped := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-sctx.Done():
		s.grpc.Stop()
	}
	return serveErr
}

func (s *Server) setHealth(st healthpb.HealthCheckResponse_ServingStatus) {
	s.mu.Lock()
	s.ready = st == healthpb.HealthCheckResponse_SERVING
	s.mu.Unlock()
	s.health.SetServingStatus("", st)
	s.health.SetServingStatus(HealthService, st)
}

// watchHealth pings a Pinger Source every HealthInterval and sets the gRPC
// health status accordingly.
func (s *Server) watchHealth(ctx context.Context) {
	p, ok := s.cfg.Source.(Pinger)
	if !ok {
		return
	}
	t := time.NewTicker(s.cfg.HealthInterval)
	defer t.Stop()
	for {
		if !s.probe(ctx, p) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// probe pings once and sets the health it found; false when ctx ended.
func (s *Server) probe(ctx context.Context, p Pinger) bool {
	if err := s.ping(ctx, p); err != nil {
		if ctx.Err() != nil {
			return false
		}
		s.setHealth(healthpb.HealthCheckResponse_NOT_SERVING)
	} else {
		s.setHealth(healthpb.HealthCheckResponse_SERVING)
	}
	return true
}

func (s *Server) ping(ctx context.Context, p Pinger) error {
	ctx, cancel := context.WithTimeout(ctx, min(5*time.Second, s.cfg.Limits.QueryTimeout))
	defer cancel()
	err := p.Ping(ctx)
	if err != nil {
		s.log.WarnContext(ctx, "source ping failed", "error", err)
	}
	return err
}

// probePaths are the health endpoints: not traced, never queued.
var probePaths = map[string]bool{"/livez": true, "/readyz": true, "/healthz": true}

// livez: 200 {"status":"SERVING"} while the process serves HTTP — a
// liveness probe must not restart a busy server or one whose ClickHouse is
// away (readyz says that).
func (s *Server) livez(w http.ResponseWriter, _ *http.Request) { writeHealth(w, true) }

// readyz (and healthz): 200 {"status":"SERVING"} or 503
// {"status":"NOT_SERVING"} from the last periodic ping of ClickHouse
// (HealthInterval) — it never pings inline, so it answers at once however
// busy the server or slow ClickHouse is — and NOT_SERVING from shutdown on.
func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	ok := !s.shutdown && s.ready
	s.mu.Unlock()
	writeHealth(w, ok)
}

func writeHealth(w http.ResponseWriter, ok bool) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "NOT_SERVING"})
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"status": "SERVING"})
}

// writeStatus writes st as google.rpc.Status JSON with the HTTP status
// httpCode (the gateway's own error handler is runtime.HTTPError; this one is
// for answers it would word differently: 401 with a proper WWW-Authenticate
// challenge, 405 instead of 501).
func (s *Server) writeStatus(w http.ResponseWriter, httpCode int, st *status.Status) {
	buf, err := s.marshaler.Marshal(st.Proto())
	if err != nil {
		w.WriteHeader(httpCode)
		return
	}
	w.Header().Set("Content-Type", s.marshaler.ContentType(nil))
	w.WriteHeader(httpCode)
	_, _ = w.Write(buf)
}

// routingError answers requests no route matches: 404 for an unknown path,
// 405 (not the gateway's default 501) for a known path with another method.
func (s *Server) routingError(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	switch httpStatus {
	case http.StatusMethodNotAllowed:
		// Every path takes GET (and HEAD) but two: the gate also takes POST
		// (Flagger), and a plan is only POSTed (it has a body).
		allow := "GET, HEAD"
		switch r.URL.Path {
		case "/v1/gate":
			allow = "GET, HEAD, POST"
		case "/v1/experiments:plan":
			allow = "POST"
		}
		w.Header().Set("Allow", allow)
		s.writeStatus(w, http.StatusMethodNotAllowed, status.New(codes.Unimplemented, "method not allowed: use "+allow))
	case http.StatusNotFound:
		runtime.HTTPError(ctx, mux, m, w, r, status.Error(codes.NotFound, "no such path"))
	default:
		runtime.HTTPError(ctx, mux, m, w, r, status.Error(codes.InvalidArgument, http.StatusText(httpStatus)))
	}
}

// gatewayMiddleware runs around every gateway handler: it records the route
// for telemetry and turns a panic into a 500.
func (s *Server) gatewayMiddleware(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, pathParams map[string]string) {
		if p, ok := runtime.HTTPPattern(r.Context()); ok {
			route := routeTemplate(p.String())
			trace.SpanFromContext(r.Context()).SetAttributes(attribute.String("http.route", route))
			if h, ok := r.Context().Value(routeKey{}).(*routeHolder); ok {
				h.route = r.Method + " " + route
			}
		}
		defer func() {
			if p := recover(); p != nil {
				runtime.HTTPError(r.Context(), s.gw, s.marshaler, w, r, internalError(s.log, r.URL.Path, p))
			}
		}()
		next(w, r, pathParams)
	}
}

func (s *Server) recoverUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if p := recover(); p != nil {
			resp, err = nil, internalError(s.log, info.FullMethod, p)
		}
	}()
	return handler(ctx, req)
}

func (s *Server) recoverStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = internalError(s.log, info.FullMethod, p)
		}
	}()
	return handler(srv, ss)
}

// routeKey/routeHolder carry the matched gateway route out to routeTagger.
type routeKey struct{}

type routeHolder struct{ route string }

// routeTagger sets Request.Pattern, which otelhttp reads after the handler
// returns for the span name and the http.route attribute, to the gateway
// route ("GET /v1/deployments/{id}/impact") instead of the catch-all "/".
func routeTagger(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := &routeHolder{}
		inner := r.WithContext(context.WithValue(r.Context(), routeKey{}, h))
		next.ServeHTTP(w, inner)
		switch {
		case h.route != "":
			r.Pattern = h.route
		case inner.Pattern != "":
			r.Pattern = inner.Pattern
		}
	})
}

// routeTemplate turns the gateway's pattern string ("/v1/deployments/{id=*}/impact")
// into the path template of the proto ("/v1/deployments/{id}/impact").
func routeTemplate(p string) string {
	return strings.ReplaceAll(p, "=*}", "}")
}

func spanName(_ string, r *http.Request) string {
	switch {
	case r.Pattern == "":
		return r.Method
	case strings.Contains(r.Pattern, " "):
		return r.Pattern
	}
	return r.Method + " " + r.Pattern
}
