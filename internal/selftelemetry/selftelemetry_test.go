package selftelemetry

import (
	"context"
	"testing"
	"time"

	"github.com/changelens/changelens/testkit/otlpsink"
)

// TestSetupExports: with an endpoint, spans and metrics reach it over
// OTLP/gRPC under the configured service.name once Shutdown flushes them.
func TestSetupExports(t *testing.T) {
	sink := otlpsink.Start(t)
	ctx := context.Background()
	p, err := Setup(ctx, Config{Endpoint: sink.Endpoint(), ServiceName: "changelens-worker", ServiceVersion: "test"})
	if err != nil {
		t.Fatal(err)
	}
	_, span := p.TracerProvider.Tracer("test").Start(ctx, "cycle")
	span.End()
	c, err := p.MeterProvider.Meter("test").Int64Counter("changelens.test.count")
	if err != nil {
		t.Fatal(err)
	}
	c.Add(ctx, 1)
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := p.Shutdown(sctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if _, ok := sink.Spans()["cycle"]; !ok {
		t.Errorf("no span: %v", sink.Spans())
	}
	if !sink.Metrics()["changelens.test.count"] {
		t.Errorf("no metric: %v", sink.Metrics())
	}
	if s := sink.Services(); !s["changelens-worker"] || len(s) != 1 {
		t.Errorf("service.name: %v", s)
	}
}

func TestOffAndEndpoints(t *testing.T) {
	p, err := Setup(context.Background(), Config{})
	if err != nil || p.TracerProvider == nil || p.MeterProvider == nil || p.Shutdown(context.Background()) != nil {
		t.Errorf("off: %v", err)
	}
	if _, err := Setup(context.Background(), Config{Endpoint: "localhost:4317"}); err == nil {
		t.Error("an endpoint without a service name was accepted")
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
		host, secure, err := parseEndpoint(c.in)
		if (err != nil) != c.bad || host != c.host || secure != c.secure {
			t.Errorf("%q: %q %v %v", c.in, host, secure, err)
		}
	}
}
