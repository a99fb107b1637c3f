package server

import (
	"context"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	collmetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	colltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"

	pb "github.com/changelens/changelens/queryapi/gen/changelens/v1"
)

// otlpSink is an OTLP/gRPC receiver that remembers span and metric names.
type otlpSink struct {
	colltrace.UnimplementedTraceServiceServer
	collmetrics.UnimplementedMetricsServiceServer
	mu        sync.Mutex
	spans     map[string]map[string]string // name → attributes (string values)
	metrics   map[string]bool
	resources map[string]bool // service.name values
}

func (s *otlpSink) Export(_ context.Context, req *colltrace.ExportTraceServiceRequest) (*colltrace.ExportTraceServiceResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				s.resources[a.GetValue().GetStringValue()] = true
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				attrs := map[string]string{}
				for _, a := range sp.GetAttributes() {
					attrs[a.GetKey()] = a.GetValue().GetStringValue()
				}
				s.spans[sp.GetName()] = attrs
			}
		}
	}
	return &colltrace.ExportTraceServiceResponse{}, nil
}

type metricsSink struct {
	collmetrics.UnimplementedMetricsServiceServer
	s *otlpSink
}

func (m metricsSink) Export(_ context.Context, req *collmetrics.ExportMetricsServiceRequest) (*collmetrics.ExportMetricsServiceResponse, error) {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	for _, rm := range req.GetResourceMetrics() {
		for _, sm := range rm.GetScopeMetrics() {
			for _, mt := range sm.GetMetrics() {
				m.s.metrics[mt.GetName()] = true
			}
		}
	}
	return &collmetrics.ExportMetricsServiceResponse{}, nil
}

// TestSelfTelemetry: with an OTLP endpoint, REST and gRPC requests produce
// spans named by route/method and request-duration metrics, exported over
// OTLP/gRPC — changelens can watch its own latency.
func TestSelfTelemetry(t *testing.T) {
	sink := &otlpSink{spans: map[string]map[string]string{}, metrics: map[string]bool{}, resources: map[string]bool{}}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	colltrace.RegisterTraceServiceServer(gs, sink)
	collmetrics.RegisterMetricsServiceServer(gs, metricsSink{s: sink})
	go gs.Serve(lis)
	defer gs.Stop()

	ctx := context.Background()
	tel, err := SetupTelemetry(ctx, TelemetryConfig{Endpoint: "http://" + lis.Addr().String(), ServiceVersion: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, Config{Source: &fakeSource{}, Telemetry: tel})
	if code, _ := ts.get(t, "/v1/deployments/"+depID+"/impact"); code != 200 {
		t.Fatalf("impact: %d", code)
	}
	if code, _ := ts.get(t, "/v1/latency:summary?service=a&environment=b"); code != 200 {
		t.Fatalf("summary: %d", code)
	}
	if _, err := pb.NewQueryServiceClient(ts.conn).GetDORA(ctx, &pb.GetDORARequest{}); err != nil {
		t.Fatal(err)
	}
	// The server spans end after the responses are sent: stop the server
	// (in-flight handlers finish) before flushing the telemetry.
	ts.stop()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := tel.Shutdown(sctx); err != nil { // flushes both exporters
		t.Fatalf("telemetry shutdown: %v", err)
	}

	sink.mu.Lock()
	defer sink.mu.Unlock()
	names := make([]string, 0, len(sink.spans))
	for n := range sink.spans {
		names = append(names, n)
	}
	for _, want := range []string{"GET /v1/deployments/{id}/impact", "GET /v1/latency:summary", "changelens.v1.QueryService/GetDORA"} {
		if !slices.Contains(names, want) {
			t.Errorf("no span %q in %q", want, names)
		}
	}
	if r := sink.spans["GET /v1/deployments/{id}/impact"]["http.route"]; r != "/v1/deployments/{id}/impact" {
		t.Errorf("http.route = %q", r)
	}
	if !sink.metrics["http.server.request.duration"] {
		t.Errorf("no http.server.request.duration in %v", sink.metrics)
	}
	rpcMetric := false
	for m := range sink.metrics {
		if len(m) > 11 && m[:11] == "rpc.server." {
			rpcMetric = true
		}
	}
	if !rpcMetric {
		t.Errorf("no rpc.server.* metric in %v", sink.metrics)
	}
	if !sink.resources["changelens-api"] {
		t.Errorf("service.name: %v", sink.resources)
	}
}

func TestTelemetryOffAndEndpoints(t *testing.T) {
	tel, err := SetupTelemetry(context.Background(), TelemetryConfig{})
	if err != nil || tel.TracerProvider == nil || tel.Shutdown(context.Background()) != nil {
		t.Errorf("off: %v", err)
	}
	for _, c := range []struct {
		in     string
		host   string
		secure bool
		bad    bool
	}{
		{"localhost:4317", "localhost:4317", false, false},
		{"http://collector:4317", "collector:4317", false, false},
		{"https://collector:4317/", "collector:4317", true, false},
		{"ftp://collector:4317", "", false, true},
		{"collector", "", false, true},
		{"http://", "", false, true},
	} {
		host, secure, err := parseOTLPEndpoint(c.in)
		if (err != nil) != c.bad || host != c.host || secure != c.secure {
			t.Errorf("%q: %q %v %v", c.in, host, secure, err)
		}
	}
}
