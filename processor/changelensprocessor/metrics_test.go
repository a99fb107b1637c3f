package changelensprocessor

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/otel/attribute"

	"github.com/changelens/changelens/internal/eventspan"
	"github.com/changelens/changelens/processor/changelensprocessor/internal/metadata"
)

type metricsHarness struct {
	t    *testing.T
	sink *consumertest.MetricsSink
	h    *harness // for counterValue
}

// usageResource appends a resource with attrs to md.
func usageResource(md pmetric.Metrics, attrs map[string]any) pmetric.ScopeMetrics {
	rm := md.ResourceMetrics().AppendEmpty()
	if err := rm.Resource().Attributes().FromRaw(attrs); err != nil {
		panic(err)
	}
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName("go.opentelemetry.io/contrib/instrumentation/runtime")
	return sm
}

func podResource(version, instance string) map[string]any {
	return map[string]any{"service.name": "checkout", "deployment.environment": "production",
		"service.version": version, "service.instance.id": instance}
}

// cpuSum appends a cumulative CPU-time sum with one point per mode.
func cpuSum(sm pmetric.ScopeMetrics, name string, temporality pmetric.AggregationTemporality, start, at time.Time, byMode map[string]float64) {
	m := sm.Metrics().AppendEmpty()
	m.SetName(name)
	m.SetUnit("s")
	s := m.SetEmptySum()
	s.SetIsMonotonic(true)
	s.SetAggregationTemporality(temporality)
	for mode, v := range byMode {
		dp := s.DataPoints().AppendEmpty()
		dp.Attributes().PutStr("cpu.mode", mode)
		dp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		dp.SetTimestamp(pcommon.NewTimestampFromTime(at))
		dp.SetDoubleValue(v)
	}
}

func memGauge(sm pmetric.ScopeMetrics, name string, at time.Time, byPool map[string]int64) {
	m := sm.Metrics().AppendEmpty()
	m.SetName(name)
	g := m.SetEmptyGauge()
	for pool, v := range byPool {
		dp := g.DataPoints().AppendEmpty()
		dp.Attributes().PutStr("jvm.memory.pool.name", pool)
		dp.SetTimestamp(pcommon.NewTimestampFromTime(at))
		dp.SetIntValue(v)
	}
}

// usageOf decodes every resource usage point the processor emitted.
func usageOf(t *testing.T, sink *consumertest.MetricsSink) []eventspan.UsagePoint {
	t.Helper()
	var out []eventspan.UsagePoint
	for _, md := range sink.AllMetrics() {
		for _, rm := range md.ResourceMetrics().All() {
			for _, sm := range rm.ScopeMetrics().All() {
				require.Equal(t, eventspan.KindResourceUsage, eventspan.ScopeKind(sm.Scope()))
				eventspan.DecodeUsage(eventspan.ReadResource(rm.Resource().Attributes()), rm.Resource().Attributes(), sm,
					func(p eventspan.UsagePoint) { out = append(out, p) })
			}
		}
	}
	return out
}

func newUsageHarness(t *testing.T, mutate func(*Config)) (*metricsHarness, func(pmetric.Metrics)) {
	t.Helper()
	cfg := defaultConfig()
	if mutate != nil {
		mutate(cfg)
	}
	require.NoError(t, cfg.Validate())
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	set := processortest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	sink := new(consumertest.MetricsSink)
	p, err := NewFactory().CreateMetrics(context.Background(), set, cfg, sink)
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, p.Shutdown(context.Background())) })
	m := &metricsHarness{t: t, sink: sink, h: &harness{t: t, tel: tel}}
	return m, func(md pmetric.Metrics) {
		t.Helper()
		require.NoError(t, p.ConsumeMetrics(context.Background(), md))
	}
}

func (m *metricsHarness) dropped(reason metricDropReason) int64 {
	return counterValue(m.t, m.h, "otelcol_processor_changelens_metric_points_dropped", attribute.String("reason", metricDropReasonNames[reason]))
}

// The processor keeps the resource-usage metrics, one point per instance,
// metric and time (the modes and pools summed), and drops every other metric,
// counted.
func TestMetricsKeepsResourceUsage(t *testing.T) {
	m, send := newUsageHarness(t, nil)
	start, at := t0.Add(-time.Hour), t0
	md := pmetric.NewMetrics()
	sm := usageResource(md, podResource("v2", "pod-a"))
	cpuSum(sm, "process.cpu.time", pmetric.AggregationTemporalityCumulative, start, at, map[string]float64{"user": 3, "system": 1.5})
	memGauge(sm, "jvm.memory.used", at, map[string]int64{"G1 Eden Space": 100, "G1 Old Gen": 400})
	cpuSum(sm, "system.cpu.time", pmetric.AggregationTemporalityCumulative, start, at, map[string]float64{"user": 9})
	cpuSum(sm, "http.server.request.count", pmetric.AggregationTemporalityCumulative, start, at, map[string]float64{"": 9})
	// an up-down counter of CPU time is no CPU time
	um := sm.Metrics().AppendEmpty()
	um.SetName("container.cpu.time")
	um.SetEmptySum().SetIsMonotonic(false)
	um.Sum().SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	um.Sum().DataPoints().AppendEmpty().SetTimestamp(pcommon.NewTimestampFromTime(at))
	// a resource without an instance, one without a service
	sm2 := usageResource(md, map[string]any{"service.name": "checkout"})
	cpuSum(sm2, "process.cpu.time", pmetric.AggregationTemporalityCumulative, start, at, map[string]float64{"user": 1})
	sm3 := usageResource(md, map[string]any{"host.name": "h", "process.pid": 7})
	cpuSum(sm3, "process.cpu.time", pmetric.AggregationTemporalityCumulative, start, at, map[string]float64{"user": 1})
	// host.name and process.pid name an instance; a future point is dropped
	sm4 := usageResource(md, map[string]any{"service.name": "cart", "host.name": "h", "process.pid": 7})
	cpuSum(sm4, "process.cpu.time", pmetric.AggregationTemporalityDelta, start, at, map[string]float64{"user": 0.25})
	cpuSum(sm4, "process.cpu.time", pmetric.AggregationTemporalityDelta, start, time.Now().Add(2*time.Hour), map[string]float64{"user": 1})
	send(md)

	got := usageOf(t, m.sink)
	want := []eventspan.UsagePoint{
		{Resource: eventspan.Resource{Service: "checkout", Environment: "production", Version: "v2"}, Instance: "pod-a",
			Metric: "process.cpu.time", Temporality: "cumulative", StartTime: start.UnixNano(), Time: at.UnixNano(), Value: 4.5},
		{Resource: eventspan.Resource{Service: "checkout", Environment: "production", Version: "v2"}, Instance: "pod-a",
			Metric: "jvm.memory.used", Temporality: "gauge", Time: at.UnixNano(), Value: 500},
		{Resource: eventspan.Resource{Service: "cart", Environment: "default"}, Instance: "h/7",
			Metric: "process.cpu.time", Temporality: "delta", StartTime: start.UnixNano(), Time: at.UnixNano(), Value: 0.25},
	}
	require.ElementsMatch(t, want, got)
	require.Equal(t, int64(2), m.dropped(metricNotUsage))
	require.Equal(t, int64(1), m.dropped(metricUnsupportedType))
	require.Equal(t, int64(1), m.dropped(metricMissingInstance))
	require.Equal(t, int64(1), m.dropped(metricMissingService))
	require.Equal(t, int64(1), m.dropped(metricFutureTimestamp))
	require.Equal(t, int64(11), counterValue(t, m.h, "otelcol_processor_changelens_metric_points_received"))
	require.Equal(t, int64(3), counterValue(t, m.h, "otelcol_processor_changelens_resource_usage_points"))
}

// The instance comes from service.instance.id, else k8s.pod.uid,
// container.id, host.name with process.pid.
func TestInstanceOf(t *testing.T) {
	for _, c := range []struct {
		attrs map[string]any
		want  string
	}{
		{map[string]any{"service.instance.id": "i", "k8s.pod.uid": "p"}, "i"},
		{map[string]any{"k8s.pod.uid": "p", "container.id": "c"}, "p"},
		{map[string]any{"container.id": "c", "host.name": "h", "process.pid": 1}, "c"},
		{map[string]any{"host.name": "h", "process.pid": 1}, "h/1"},
		{map[string]any{"host.name": "h"}, ""},
		{map[string]any{"process.pid": 1}, ""},
	} {
		m := pcommon.NewMap()
		require.NoError(t, m.FromRaw(c.attrs))
		require.Equal(t, c.want, instanceOf(m), "%v", c.attrs)
	}
}

// Beyond max_instances_per_unit an instance's points fold into __other__,
// counted; an instance idle for instance_idle_timeout gives its place back.
func TestMetricsInstanceBound(t *testing.T) {
	m, send := newUsageHarness(t, func(c *Config) { c.ResourceUsage.MaxInstancesPerUnit = 2; c.ResourceUsage.MaxUnits = 1 })
	md := pmetric.NewMetrics()
	for _, inst := range []string{"a", "b", "c", "a"} {
		cpuSum(usageResource(md, podResource("v1", inst)), "process.cpu.time", pmetric.AggregationTemporalityCumulative,
			t0.Add(-time.Hour), t0, map[string]float64{"user": 1})
	}
	other := podResource("v1", "x")
	other["service.name"] = "cart"
	cpuSum(usageResource(md, other), "process.cpu.time", pmetric.AggregationTemporalityCumulative, t0.Add(-time.Hour), t0, map[string]float64{"user": 1})
	send(md)
	instances := map[string]float64{}
	for _, p := range usageOf(t, m.sink) {
		instances[p.Service+"/"+p.Instance] += p.Value
	}
	require.Equal(t, map[string]float64{"checkout/a": 2, "checkout/b": 1, "checkout/__other__": 1, "cart/__other__": 1}, instances)
	require.Equal(t, int64(1), counterValue(t, m.h, "otelcol_processor_changelens_instance_folds", attribute.String("reason", "instances")))
	require.Equal(t, int64(1), counterValue(t, m.h, "otelcol_processor_changelens_instance_folds", attribute.String("reason", "units")))

	ib := newInstanceBounds(1, 1, time.Hour)
	u := unitKey{"s", "e"}
	now := t0.UnixNano()
	inst, folded, _ := ib.admit(u, "a", now)
	require.Equal(t, "a", inst)
	require.False(t, folded)
	inst, _, _ = ib.admit(u, "b", now+int64(time.Minute))
	require.Equal(t, otherValue, inst)
	inst, _, _ = ib.admit(u, "b", now+int64(2*time.Hour))
	require.Equal(t, "b", inst)
}

func TestResourceUsageConfigValidate(t *testing.T) {
	cfg := defaultConfig()
	cfg.ResourceUsage.MaxInstancesPerUnit = 0
	cfg.ResourceUsage.MaxUnits = -1
	cfg.ResourceUsage.InstanceIdleTimeout = time.Second
	err := cfg.Validate()
	require.ErrorContains(t, err, "resource_usage.max_instances_per_unit")
	require.ErrorContains(t, err, "resource_usage.max_units")
	require.ErrorContains(t, err, "resource_usage.instance_idle_timeout")
}

// metadata.yaml documents the metric_points_dropped reasons the code counts.
func TestMetadataListsMetricDropReasons(t *testing.T) {
	b, err := os.ReadFile("metadata.yaml")
	require.NoError(t, err)
	mm := regexp.MustCompile(`Metric data points dropped, by reason \(([^)]*)\)`).FindSubmatch(b)
	require.NotNil(t, mm)
	require.Equal(t, metricDropReasonNames[:], strings.Split(string(mm[1]), ", "))
}
