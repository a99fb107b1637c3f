package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/changelens/changelens/internal/eventspan"
	"github.com/changelens/changelens/testkit/chtest"
	"github.com/changelens/changelens/testkit/flagtest"
)

// sdkService is one instrumented service version sending through the OTel Go SDK.
type sdkService struct {
	tp     *sdktrace.TracerProvider
	tracer trace.Tracer
}

func newSDKService(t *testing.T, endpoint, service, version string) *sdkService {
	t.Helper()
	exp, err := otlptracegrpc.New(context.Background(), otlptracegrpc.WithEndpoint(endpoint), otlptracegrpc.WithInsecure())
	require.NoError(t, err)
	res := resource.NewWithAttributes("",
		attribute.String("service.name", service),
		attribute.String("service.version", version),
		attribute.String("deployment.environment.name", "production"),
	)
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithBatcher(exp, sdktrace.WithMaxExportBatchSize(256)))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return &sdkService{tp: tp, tracer: tp.Tracer("e2e")}
}

// request emits a SERVER span (a latency event) with a CLIENT child (not one).
func (s *sdkService) request(route string, start time.Time, d time.Duration, status int) {
	ctx, span := s.tracer.Start(context.Background(), "GET "+route, trace.WithTimestamp(start), trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", "GET"), attribute.String("http.route", route), attribute.Int("http.response.status_code", status)))
	_, child := s.tracer.Start(ctx, "SELECT items", trace.WithTimestamp(start.Add(time.Millisecond)), trace.WithSpanKind(trace.SpanKindClient))
	child.End(trace.WithTimestamp(start.Add(d / 2)))
	span.End(trace.WithTimestamp(start.Add(d)))
}

// deploy emits a CI/CD deploy span (an explicit deployment) of
// service@version in environment production, ending at end.
func (s *sdkService) deploy(service, version string, end time.Time) {
	_, span := s.tracer.Start(context.Background(), "deploy "+service, trace.WithTimestamp(end.Add(-2*time.Minute)), trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(attribute.String("cicd.pipeline.task.type", "deploy"), attribute.String("service.name", service),
			attribute.String("service.version", version), attribute.String("deployment.environment.name", "production")))
	span.End(trace.WithTimestamp(end))
}

func (s *sdkService) flush(t *testing.T) {
	t.Helper()
	require.NoError(t, s.tp.ForceFlush(context.Background()))
}

type events struct {
	latency     int
	calls       int
	errors      int
	deployments map[string]ptrace.Span // by deployment.id, last state
	versions    map[string]int         // latency events per service.version
}

func decode(all []ptrace.Traces) events {
	ev := events{deployments: map[string]ptrace.Span{}, versions: map[string]int{}}
	for _, td := range all {
		for _, rs := range td.ResourceSpans().All() {
			version, _ := rs.Resource().Attributes().Get(eventspan.AttrServiceVersion)
			for _, ss := range rs.ScopeSpans().All() {
				scope := eventspan.ScopeKind(ss.Scope())
				for _, s := range ss.Spans().All() {
					switch eventspan.EventKind(scope, s) {
					case eventspan.KindLatency:
						ev.latency++
						ev.versions[version.Str()]++
						if s.Status().Code() == ptrace.StatusCodeError {
							ev.errors++
						}
					case eventspan.KindCall:
						ev.calls++
					case eventspan.KindDeployment:
						id, _ := s.Attributes().Get(eventspan.AttrDeploymentID)
						ev.deployments[id.Str()] = s
					}
				}
			}
		}
	}
	return ev
}

const debugPipelineConfig = `
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: {{OTLP}}
processors:
  changelens:
exporters:
  debug:
    verbosity: detailed
  otlp_grpc:
    endpoint: ${env:SINK_ENDPOINT}
    tls:
      insecure: true
service:
  telemetry:
    metrics:
      level: detailed
      readers:
        - pull:
            exporter:
              prometheus:
                host: {{METRICS_HOST}}
                port: {{METRICS_PORT}}
  pipelines:
    traces/changelens:
      receivers: [otlp]
      processors: [changelens]
      exporters: [debug, otlp_grpc]
`

// TestCollectorSmoke: the built distribution turns SDK spans of two versions
// into latency events and exactly one deployment event.
func TestCollectorSmoke(t *testing.T) {
	sink := startSink(t)
	col := startCollector(t, debugPipelineConfig, "SINK_ENDPOINT="+sink.addr)

	// Event time an hour ago: v1 for 15 minutes, then v2 for 15 minutes.
	base := time.Now().Add(-time.Hour).Truncate(time.Minute)
	v1 := newSDKService(t, col.otlpAddr, "shop", "1.0.0")
	v2 := newSDKService(t, col.otlpAddr, "shop", "1.1.0")
	const perVersion = 300
	step := 15 * time.Minute / perVersion
	for i := range perVersion {
		status := 200
		if i%50 == 0 {
			status = 503
		}
		v1.request("/items/{id}", base.Add(time.Duration(i)*step), 20*time.Millisecond, status)
	}
	v1.flush(t)
	v2Start := base.Add(15 * time.Minute)
	for i := range perVersion {
		v2.request("/items/{id}", v2Start.Add(time.Duration(i)*step), 25*time.Millisecond, 200)
	}
	v2.flush(t)
	ci := newSDKService(t, col.otlpAddr, "github-actions", "")
	deployEnd := v2Start.Add(2 * time.Minute)
	ci.deploy("shop", "1.1.0", deployEnd)
	ci.flush(t)

	var ev events
	require.Eventually(t, func() bool {
		ev = decode(sink.traces())
		return ev.latency >= 2*perVersion && len(ev.deployments) >= 1
	}, 30*time.Second, 100*time.Millisecond, "events did not arrive")
	time.Sleep(time.Second) // nothing else may appear
	ev = decode(sink.traces())

	assert.Equal(t, 2*perVersion, ev.latency, "one latency event per SERVER span")
	assert.Equal(t, 2*perVersion, ev.calls, "one call event per CLIENT child (the service graph)")
	assert.Equal(t, map[string]int{"1.0.0": perVersion, "1.1.0": perVersion}, ev.versions)
	assert.Equal(t, perVersion/50, ev.errors, "503s are errors")
	require.Len(t, ev.deployments, 1, "the deploy span; version changes in traffic are the query API's to infer")
	for _, d := range ev.deployments {
		a := d.Attributes()
		get := func(k string) string { v, _ := a.Get(k); return v.AsString() }
		assert.Equal(t, "shop", get(eventspan.AttrServiceName))
		assert.Equal(t, "production", get(eventspan.AttrDeploymentEnvironment))
		assert.Equal(t, "1.1.0", get(eventspan.AttrServiceVersion))
		assert.Equal(t, eventspan.SourceExplicit, get(eventspan.AttrSource))
		assert.Equal(t, eventspan.TaskTypeDeploy, get(eventspan.AttrTaskType))
		assert.Equal(t, deployEnd.UnixNano(), d.EndTimestamp().AsTime().UnixNano(), "deployed at the deploy span's end")
	}

	// The debug exporter shows the same, and the processor counted what it did.
	assert.Contains(t, col.output(), "deployment.id")
	assert.Equal(t, 1.0, col.metric(t, "otelcol_processor_changelens_deployment_events", `source="explicit"`))
	assert.Equal(t, float64(2*perVersion), col.metric(t, "otelcol_processor_changelens_latency_events"))
	assert.Equal(t, float64(2*perVersion), col.metric(t, "otelcol_processor_changelens_call_events"))
}

// TestExampleConfigValidates: the shipped configs (config/, deploy/) are accepted
// by the distribution, and a broken one is rejected naming the field.
func TestExampleConfigValidates(t *testing.T) {
	bin := collectorBinary(t)
	for _, cfg := range []string{"config/collector.yaml", "deploy/existing-clickhouse/collector.yaml", "deploy/cluster/collector.yaml"} {
		cmd := exec.Command(bin, "validate", "--config", filepath.Join(repoRoot(t), cfg))
		cmd.Env = append(os.Environ(), "CHANGELENS_QUEUE_DIR="+t.TempDir(), "CLICKHOUSE_ENDPOINT=ch:9440",
			"CLICKHOUSE_USERNAME=w", "CLICKHOUSE_PASSWORD=p", "CLICKHOUSE_NODE_1=ch1:9000", "CLICKHOUSE_NODE_2=ch2:9000",
			"CLICKHOUSE_NODE_3=ch3:9000", "CLICKHOUSE_NODE_4=ch4:9000")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s: %s", cfg, out)
	}

	bad := strings.NewReplacer("processors:\n  changelens:\n", "processors:\n  changelens:\n    deployments:\n      explicit:\n        span_name_patterns: [\"deploy(\"]\n",
		"{{OTLP}}", "127.0.0.1:4317", "{{METRICS_HOST}}", "127.0.0.1", "{{METRICS_PORT}}", "8888").Replace(debugPipelineConfig)
	path := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(path, []byte(bad), 0o600))
	cmd := exec.Command(bin, "validate", "--config", path)
	cmd.Env = append(os.Environ(), "SINK_ENDPOINT=127.0.0.1:1")
	out, err := cmd.CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "deployments.explicit.span_name_patterns[0]")
}

// TestShippedConfigRuns runs config/collector.yaml itself against a real
// ClickHouse: the health check extension answers 200 once the pipelines
// run, and a span sent over OTLP is stored.
func TestShippedConfigRuns(t *testing.T) {
	ch := chtest.Shared(t)
	db := ch.NewDatabase(t)
	health := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	grpcAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command(collectorBinary(t), "--config", filepath.Join(repoRoot(t), "config/collector.yaml"))
	cmd.Env = append(os.Environ(), "CHANGELENS_QUEUE_DIR="+t.TempDir(), "CHANGELENS_HEALTH_ENDPOINT="+health,
		"CHANGELENS_OTLP_GRPC_ENDPOINT="+grpcAddr, fmt.Sprintf("CHANGELENS_OTLP_HTTP_ENDPOINT=127.0.0.1:%d", freePort(t)),
		fmt.Sprintf("CHANGELENS_WEBHOOK_ENDPOINT=127.0.0.1:%d", freePort(t)),
		"CLICKHOUSE_ENDPOINT="+ch.Addr(), "CLICKHOUSE_DATABASE="+db)
	col := &collector{otlpAddr: grpcAddr, exited: make(chan struct{})}
	col.launch(t, cmd)
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + health + "/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 100*time.Millisecond, "health check never answered 200")

	svc := newSDKService(t, grpcAddr, "shop", "1.0.0")
	svc.request("/items/{id}", time.Now().Add(-time.Minute), 20*time.Millisecond, 200)
	svc.flush(t)
	require.Eventually(t, func() bool {
		return countRows(t, ch, db, "SELECT count() FROM latency_events") == 1
	}, 30*time.Second, 100*time.Millisecond, "the span was not stored")

	// A log-based feature-flag evaluation goes through the logs pipeline.
	_, logs := flagtest.New(1, time.Now().Add(-time.Hour).Truncate(time.Minute), 1, 1).LogEvents()
	sendEvaluationLogs(t, grpcAddr, logs)
	require.Eventually(t, func() bool {
		return countRows(t, ch, db, "SELECT count() FROM flag_evaluations") == 1
	}, 30*time.Second, 100*time.Millisecond, "the evaluation was not stored")

	// CPU time goes through the metrics pipeline.
	sendCPU(t, grpcAddr, 2.5)
	require.Eventually(t, func() bool {
		return countRows(t, ch, db, "SELECT count() FROM resource_usage WHERE metric = 'process.cpu.time' AND value = 2.5") == 1
	}, 30*time.Second, 100*time.Millisecond, "the CPU time was not stored")
}
