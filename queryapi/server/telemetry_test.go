package server

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/changelens/changelens/internal/selftelemetry"
	pb "github.com/changelens/changelens/queryapi/gen/changelens/v1"
	"github.com/changelens/changelens/testkit/otlpsink"
)

// TestSelfTelemetry: with an OTLP endpoint, REST and gRPC requests produce
// spans named by route/method and request-duration metrics, exported over
// OTLP/gRPC — changelens can watch its own latency.
func TestSelfTelemetry(t *testing.T) {
	sink := otlpsink.Start(t)
	ctx := context.Background()
	tel, err := selftelemetry.Setup(ctx, selftelemetry.Config{Endpoint: sink.Endpoint(), ServiceName: "changelens-api", ServiceVersion: "test"})
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

	spans := sink.Spans()
	names := make([]string, 0, len(spans))
	for n := range spans {
		names = append(names, n)
	}
	for _, want := range []string{"GET /v1/deployments/{id}/impact", "GET /v1/latency:summary", "changelens.v1.QueryService/GetDORA"} {
		if !slices.Contains(names, want) {
			t.Errorf("no span %q in %q", want, names)
		}
	}
	if r := spans["GET /v1/deployments/{id}/impact"]["http.route"]; r != "/v1/deployments/{id}/impact" {
		t.Errorf("http.route = %q", r)
	}
	metrics := sink.Metrics()
	if !metrics["http.server.request.duration"] {
		t.Errorf("no http.server.request.duration in %v", metrics)
	}
	rpcMetric := false
	for m := range metrics {
		if strings.HasPrefix(m, "rpc.server.") {
			rpcMetric = true
		}
	}
	if !rpcMetric {
		t.Errorf("no rpc.server.* metric in %v", metrics)
	}
	if !sink.Services()["changelens-api"] {
		t.Errorf("service.name: %v", sink.Services())
	}
}
