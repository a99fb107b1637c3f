package server

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

// TelemetryConfig says where changelens-api sends its own traces and metrics.
type TelemetryConfig struct {
	// Endpoint of an OTLP/gRPC receiver (e.g. the changelens collector):
	// "http://host:4317" (plaintext), "https://host:4317" (TLS) or "host:4317"
	// (plaintext). Empty: telemetry off (no-op providers).
	Endpoint       string
	ServiceName    string        // default "changelens-api"
	ServiceVersion string        // optional
	MetricInterval time.Duration // default 30s
}

// Telemetry holds the providers the server instruments itself with.
type Telemetry struct {
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	// Shutdown flushes and stops the exporters (no-op when telemetry is off).
	Shutdown func(context.Context) error
}

// NoTelemetry is telemetry off.
func NoTelemetry() Telemetry {
	return Telemetry{
		TracerProvider: tracenoop.NewTracerProvider(),
		MeterProvider:  metricnoop.NewMeterProvider(),
		Shutdown:       func(context.Context) error { return nil },
	}
}

// SetupTelemetry starts OTLP/gRPC trace and metric exporters to cfg.Endpoint,
// or returns NoTelemetry when it is empty. Exporters connect lazily: an
// unreachable collector never blocks or fails the API.
func SetupTelemetry(ctx context.Context, cfg TelemetryConfig) (Telemetry, error) {
	if cfg.Endpoint == "" {
		return NoTelemetry(), nil
	}
	hostport, secure, err := parseOTLPEndpoint(cfg.Endpoint)
	if err != nil {
		return Telemetry{}, err
	}
	if cfg.ServiceName == "" {
		cfg.ServiceName = "changelens-api"
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
		return Telemetry{}, fmt.Errorf("otlp trace exporter: %w", err)
	}
	metricExp, err := otlpmetricgrpc.New(ctx, metricOpts...)
	if err != nil {
		_ = traceExp.Shutdown(ctx)
		return Telemetry{}, fmt.Errorf("otlp metric exporter: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(traceExp), sdktrace.WithResource(res))
	mp := sdkmetric.NewMeterProvider(
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(metricExp, sdkmetric.WithInterval(cfg.MetricInterval))),
		sdkmetric.WithResource(res))
	return Telemetry{
		TracerProvider: tp,
		MeterProvider:  mp,
		Shutdown: func(ctx context.Context) error {
			return errors.Join(tp.Shutdown(ctx), mp.Shutdown(ctx))
		},
	}, nil
}

func parseOTLPEndpoint(ep string) (hostport string, secure bool, err error) {
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
