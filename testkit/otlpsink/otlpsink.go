// Package otlpsink is an OTLP/gRPC receiver for tests of self-telemetry: it
// remembers the names of the spans and metrics it receives and the
// service.name of their resources, so a test can check what a binary
// reports about itself without running a collector.
package otlpsink

import (
	"context"
	"maps"
	"net"
	"sync"
	"testing"

	collmetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	colltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/grpc"
)

// Sink receives OTLP traces and metrics on 127.0.0.1.
type Sink struct {
	addr string

	mu       sync.Mutex
	spans    map[string]map[string]string // span name → its string attributes
	metrics  map[string]bool
	services map[string]bool
}

// Start listens on a free port; the sink stops when tb ends.
func Start(tb testing.TB) *Sink {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &Sink{addr: lis.Addr().String(), spans: map[string]map[string]string{},
		metrics: map[string]bool{}, services: map[string]bool{}}
	gs := grpc.NewServer()
	colltrace.RegisterTraceServiceServer(gs, traceService{s: s})
	collmetrics.RegisterMetricsServiceServer(gs, metricsService{s: s})
	go gs.Serve(lis)
	tb.Cleanup(gs.Stop)
	return s
}

// Endpoint is the sink's address in the form an OTLP/gRPC exporter takes.
func (s *Sink) Endpoint() string { return "http://" + s.addr }

// Spans returns the spans received so far by name, each with its string
// attributes (the last span of a name wins).
func (s *Sink) Spans() map[string]map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.spans)
}

// Metrics returns the names of the metrics received so far.
func (s *Sink) Metrics() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.metrics)
}

// Services returns the service.name of every resource received so far.
func (s *Sink) Services() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.services)
}

func (s *Sink) resource(attrs []*commonpb.KeyValue) {
	for _, a := range attrs {
		if a.GetKey() == "service.name" {
			s.services[a.GetValue().GetStringValue()] = true
		}
	}
}

// The trace and metrics services both have a method named Export, so each
// gets its own type.
type traceService struct {
	colltrace.UnimplementedTraceServiceServer
	s *Sink
}

func (t traceService) Export(_ context.Context, req *colltrace.ExportTraceServiceRequest) (*colltrace.ExportTraceServiceResponse, error) {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		t.s.resource(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				attrs := map[string]string{}
				for _, a := range sp.GetAttributes() {
					attrs[a.GetKey()] = a.GetValue().GetStringValue()
				}
				t.s.spans[sp.GetName()] = attrs
			}
		}
	}
	return &colltrace.ExportTraceServiceResponse{}, nil
}

type metricsService struct {
	collmetrics.UnimplementedMetricsServiceServer
	s *Sink
}

func (m metricsService) Export(_ context.Context, req *collmetrics.ExportMetricsServiceRequest) (*collmetrics.ExportMetricsServiceResponse, error) {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	for _, rm := range req.GetResourceMetrics() {
		m.s.resource(rm.GetResource().GetAttributes())
		for _, sm := range rm.GetScopeMetrics() {
			for _, mt := range sm.GetMetrics() {
				m.s.metrics[mt.GetName()] = true
			}
		}
	}
	return &collmetrics.ExportMetricsServiceResponse{}, nil
}
