package eventspan

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// Resource usage events (AttrEventType = EventResourceUsage) are the CPU
// time and memory points of one instance of a unit, travelling as the OTLP
// metrics themselves in a metrics pipeline: the processor keeps the
// resource-usage metrics (UsageMetrics), sums each point's attribute splits
// (cpu.mode, jvm.memory.pool.name, ...) so one point stands for the
// instance, and marks the scopes. Each kept ResourceMetrics carries:
//   - service.name, deployment.environment.name (resolved as for latency
//     events) and service.version: the unit and the version the instance
//     runs;
//   - AttrInstance: the instance (service.instance.id, else k8s.pod.uid,
//     container.id, host.name/process.pid), "__other__" beyond the
//     processor's bound;
//   - per metric, points without attributes: CPU time as a monotonic Sum
//     (cumulative or delta, as received), memory as a Gauge (bytes).
//
// The exporter stores each point as it is (resource_usage); the query side
// computes a cumulative series' increments when it reads, from every stored
// point, so no collector needs another's points.
const EventResourceUsage = "resource_usage"

// AttrInstance is the resource attribute naming the instance a resource
// usage event's points belong to.
const AttrInstance = "changelens.instance"

// Instance identity attributes, in the order the processor tries them.
const (
	AttrServiceInstanceID = "service.instance.id"
	AttrK8sPodUID         = "k8s.pod.uid"
	AttrContainerID       = "container.id"
	AttrHostName          = "host.name"
	AttrProcessPID        = "process.pid"
)

// UsageKind says what a resource-usage metric measures.
type UsageKind uint8

const (
	UsageNone   UsageKind = iota
	UsageCPU              // seconds of CPU time, a monotonic sum
	UsageMemory           // bytes in use, a gauge or an up-down counter
)

// UsageMetric describes one metric the processor keeps. Priority orders the
// metrics of one kind: an instance that reports several (a JVM's
// jvm.cpu.time beside its process.cpu.time) is measured by the one of
// highest priority, so nothing is counted twice.
type UsageMetric struct {
	Kind     UsageKind
	Priority int
}

// UsageMetrics are the resource-usage metrics, by name. system.cpu.time is
// not one: it is the host's, shared by every unit on it.
var UsageMetrics = map[string]UsageMetric{
	"container.cpu.time":     {UsageCPU, 4},
	"k8s.pod.cpu.time":       {UsageCPU, 3},
	"process.cpu.time":       {UsageCPU, 2},
	"jvm.cpu.time":           {UsageCPU, 1},
	"container.memory.usage": {UsageMemory, 4},
	"k8s.pod.memory.usage":   {UsageMemory, 3},
	"process.memory.usage":   {UsageMemory, 2},
	"jvm.memory.used":        {UsageMemory, 1},
}

// Temporalities as stored.
const (
	TemporalityCumulative = "cumulative"
	TemporalityDelta      = "delta"
	TemporalityGauge      = "gauge"
)

// UsagePoint is one point of a resource usage event.
type UsagePoint struct {
	Resource    // Service, Environment, Version
	Instance    string
	Metric      string
	Temporality string
	StartTime   int64 // unix ns; 0 for gauges
	Time        int64 // unix ns
	Value       float64
}

// DecodeUsage calls f for each point of rm, a ResourceMetrics whose scope
// the processor marked.
func DecodeUsage(res Resource, attrs pcommon.Map, sm pmetric.ScopeMetrics, f func(UsagePoint)) {
	p := UsagePoint{Resource: res}
	if v, ok := attrs.Get(AttrInstance); ok {
		p.Instance = v.AsString()
	}
	for _, m := range sm.Metrics().All() {
		p.Metric = m.Name()
		var dps pmetric.NumberDataPointSlice
		switch m.Type() {
		case pmetric.MetricTypeSum:
			dps = m.Sum().DataPoints()
			p.Temporality = TemporalityCumulative
			if m.Sum().AggregationTemporality() == pmetric.AggregationTemporalityDelta {
				p.Temporality = TemporalityDelta
			}
		case pmetric.MetricTypeGauge:
			dps = m.Gauge().DataPoints()
			p.Temporality = TemporalityGauge
		default:
			continue
		}
		for _, dp := range dps.All() {
			p.StartTime, p.Time = int64(dp.StartTimestamp()), int64(dp.Timestamp())
			if p.Temporality == TemporalityGauge {
				p.StartTime = 0
			}
			p.Value = NumberValue(dp)
			f(p)
		}
	}
}

// NumberValue is a point's value as a float, whichever type it has.
func NumberValue(dp pmetric.NumberDataPoint) float64 {
	if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
		return float64(dp.IntValue())
	}
	return dp.DoubleValue()
}

// AppendUsage appends points to md as the processor emits them: one
// resource per (unit, version, instance), its scope marked, each point
// under its metric (a monotonic sum, or a gauge).
func AppendUsage(md pmetric.Metrics, points ...UsagePoint) {
	for _, p := range points {
		rm := md.ResourceMetrics().AppendEmpty()
		a := rm.Resource().Attributes()
		p.Resource.put(a)
		a.PutStr(AttrInstance, p.Instance)
		sm := rm.ScopeMetrics().AppendEmpty()
		MarkScope(sm.Scope(), EventResourceUsage)
		m := sm.Metrics().AppendEmpty()
		m.SetName(p.Metric)
		var dp pmetric.NumberDataPoint
		if p.Temporality == TemporalityGauge {
			dp = m.SetEmptyGauge().DataPoints().AppendEmpty()
		} else {
			s := m.SetEmptySum()
			s.SetIsMonotonic(true)
			s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			if p.Temporality == TemporalityDelta {
				s.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
			}
			dp = s.DataPoints().AppendEmpty()
			dp.SetStartTimestamp(pcommon.Timestamp(p.StartTime))
		}
		dp.SetTimestamp(pcommon.Timestamp(p.Time))
		dp.SetDoubleValue(p.Value)
	}
}

// PointCount is the number of data points of m, whatever its type: what
// the processor and the exporter count as received, kept or ignored.
func PointCount(m pmetric.Metric) int {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		return m.Gauge().DataPoints().Len()
	case pmetric.MetricTypeSum:
		return m.Sum().DataPoints().Len()
	case pmetric.MetricTypeHistogram:
		return m.Histogram().DataPoints().Len()
	case pmetric.MetricTypeExponentialHistogram:
		return m.ExponentialHistogram().DataPoints().Len()
	case pmetric.MetricTypeSummary:
		return m.Summary().DataPoints().Len()
	}
	return 0
}
