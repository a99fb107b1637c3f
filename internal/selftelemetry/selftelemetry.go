// Package selftelemetry sets up the OpenTelemetry SDK with which
// changelens-api and changelens-worker report on themselves: a tracer and a
// meter provider exporting over OTLP/gRPC, or no-op providers when no
// endpoint is configured. It lives apart from the API server so that the
// worker can have its own telemetry without linking the server.
package selftelemetry

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc/credentials"
)

// Config says where a binary sends its own traces and metrics.
type Config struct {
	// Endpoint of an OTLP/gRPC receiver (e.g. the changelens collector):
	// "http://host:4317" (plaintext), "https://host:4317" (TLS) or "host:4317"
	// (plaintext). Empty: telemetry off (no-op providers).
	Endpoint string
	// ServiceName is the resource's service.name; required with an Endpoint,
	// so that each binary's telemetry is told apart.
	ServiceName    string
	ServiceVersion string        // optional
	MetricInterval time.Duration // default 30s
}

// Providers are what a binary instruments itself with.
type Providers struct {
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	// Shutdown flushes and stops the exporters (no-op when telemetry is off).
	Shutdown func(context.Context) error
}

// Off is telemetry off.
func Off() Providers {
	return Providers{
		TracerProvider: tracenoop.NewTracerProvider(),
		MeterProvider:  metricnoop.NewMeterProvider(),
		Shutdown:       func(context.Context) error { return nil },
	}
}

// Setup starts OTLP/gRPC trace and metric exporters to cfg.Endpoint, or
// returns Off when it is empty. Exporters connect lazily: an unreachable
// collector never blocks or fails the binary.
func Setup(ctx context.Context, cfg Config) (Providers, error) {
	if cfg.Endpoint == "" {
		return Off(), nil
	}
	if cfg.ServiceName == "" {
		return Providers{}, errors.New("selftelemetry: ServiceName is required with an endpoint")
	}
	hostport, secure, err := parseEndpoint(cfg.Endpoint)
	if err != nil {
		return Providers{}, err
	}
	if cfg.MetricInterval <= 0 {
		cfg.MetricInterval = 30 * time.Second
	}
	res, err := resource.Merge(resource.Default(), resource.NewWithAttributes(semconv.SchemaURL,
		semconv.ServiceName(cfg.ServiceName), semconv.ServiceVersion(cfg.ServiceVersion)))
	if err != nil {
		// Only a schema URL conflict; fall back to our attributes alone.
		res = resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(cfg.ServiceName))
	}

	traceOpts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(hostport)}
	metricOpts := []otlpmetricgrpc.Option{otlpmetricgrpc.WithEndpoint(hostport)}
	if secure {
		creds := credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})
		traceOpts = append(traceOpts, otlptracegrpc.WithTLSCredentials(creds))
		metricOpts = append(metricOpts, otlpmetricgrpc.WithTLSCredentials(creds))
	} else {
		traceOpts = append(traceOpts, otlptracegrpc.WithInsecure())
		metricOpts = append(metricOpts, otlpmetricgrpc.WithInsecure())
	}
	traceExp, err := otlptracegrpc.New(ctx, traceOpts...)
	if err != nil {
		return Providers{}, fmt.Errorf("otlp trace exporter: %w", err)
	}
	metricExp, err := otlpmetricgrpc.New(ctx, metricOpts...)
	if err != nil {
		_ = traceExp.Shutdown(ctx)
		return Providers{}, fmt.Errorf("otlp metric exporter: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(traceExp), sdktrace.WithResource(res))
	mp := sdkmetric.NewMeterProvider(
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(metricExp, sdkmetric.WithInterval(cfg.MetricInterval))),
		sdkmetric.WithResource(res))
	return Providers{
		TracerProvider: tp,
		MeterProvider:  mp,
		Shutdown: func(ctx context.Context) error {
			return errors.Join(tp.Shutdown(ctx), mp.Shutdown(ctx))
		},
	}, nil
}

func parseEndpoint(ep string) (hostport string, secure bool, err error) {
	if !strings.Contains(ep, "://") {
		if strings.ContainsAny(ep, "/ ") || !strings.Contains(ep, ":") {
			return "", false, fmt.Errorf("otlp endpoint %q: want host:port or http(s)://host:port", ep)
		}
		return ep, false, nil
	}
	u, err := url.Parse(ep)
	if err != nil || u.Host == "" {
		return "", false, fmt.Errorf("otlp endpoint %q: want host:port or http(s)://host:port", ep)
	}
	switch u.Scheme {
	case "http":
		return u.Host, false, nil
	case "https":
		return u.Host, true, nil
	}
	return "", false, fmt.Errorf("otlp endpoint %q: scheme must be http or https", ep)
}
