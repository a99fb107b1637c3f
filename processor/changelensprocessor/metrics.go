package changelensprocessor

import (
	"context"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/changelens/changelens/internal/eventspan"
)

// metricDropReason indexes why a metric data point was dropped; its name is
// the value of the metric_points_dropped metric's "reason" attribute.
type metricDropReason int

const (
	metricNotUsage          metricDropReason = iota // not a resource-usage metric: changelens is no metrics store
	metricUnsupportedType                           // CPU time that is no monotonic sum, memory that is no gauge or cumulative sum
	metricMissingService                            // no service.name on the resource
	metricMissingInstance                           // no instance identity on the resource
	metricInvalidTimestamps                         // before 2000 (or none at all)
	metricFutureTimestamp                           // beyond max_clock_skew
	metricDisabled                                  // resource_usage.enabled is false
	numMetricDropReasons
)

var metricDropReasonNames = [numMetricDropReasons]string{
	"not_resource_usage", "unsupported_type", "missing_service_name", "missing_instance",
	"invalid_timestamps", "future_timestamp", "disabled",
}

// instanceFoldReason indexes the instance_folds metric's "reason" attribute.
type instanceFoldReason int

const (
	foldInstances  instanceFoldReason = iota // the unit had max_instances_per_unit instances
	foldUsageUnits                           // max_units units were tracked
	numInstanceFoldReasons
)

var instanceFoldReasonNames = [numInstanceFoldReasons]string{"instances", "units"}

// usageProcessor is the metrics pipeline's processor: it keeps the
// resource-usage metrics as resource usage events (internal/eventspan).
type usageProcessor struct {
	p         *changelensProcessor
	enabled   bool
	bounds    *instanceBounds
	now       func() time.Time
	dropAttrs [numMetricDropReasons]metric.AddOption
	foldAttrs [numInstanceFoldReasons]metric.AddOption
}

func newUsageProcessor(p *changelensProcessor, cfg ResourceUsageConfig) *usageProcessor {
	u := &usageProcessor{p: p, enabled: cfg.Enabled, now: time.Now,
		bounds: newInstanceBounds(cfg.MaxInstancesPerUnit, cfg.MaxUnits, cfg.InstanceIdleTimeout)}
	for r, name := range metricDropReasonNames {
		u.dropAttrs[r] = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", name)))
	}
	for r, name := range instanceFoldReasonNames {
		u.foldAttrs[r] = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", name)))
	}
	return u
}

// usageKey is one instance of one version of a unit: the points of every
// ResourceMetrics naming it in a batch go to one output resource, so a
// split that came in another ResourceMetrics is summed, not stored as a
// second row with the same identity (which deduplication would collapse).
type usageKey struct {
	unit     unitKey
	version  string
	instance string
}

// pointKey is one output point of a metric: its splits are summed.
type pointKey struct {
	metric      string
	start, time int64
}

type usageOut struct {
	key     usageKey
	metrics map[string]pmetric.Metric
	points  map[pointKey]pmetric.NumberDataPoint
	sm      pmetric.ScopeMetrics
}

type metricBatch struct {
	received int64
	emitted  int64
	dropped  [numMetricDropReasons]int64
	folds    [numInstanceFoldReasons]int64
}

// processMetrics returns the resource usage events of md: for each instance
// (usageKey), each resource-usage metric's points with their attribute
// splits summed per (start, time) — CPU time as received (cumulative or
// delta), memory as a gauge. Nothing is computed across batches: increments
// of cumulative sums are the reader's, from every collector's points.
func (u *usageProcessor) processMetrics(ctx context.Context, md pmetric.Metrics) (pmetric.Metrics, error) {
	var b metricBatch
	out := pmetric.NewMetrics()
	outs := map[usageKey]*usageOut{}
	now := u.now()
	maxTime := now.UnixNano() + u.p.maxSkew
	for _, rm := range md.ResourceMetrics().All() {
		res := rm.Resource().Attributes()
		unit, hasService := u.p.unitOf(res)
		instance := instanceOf(res)
		var (
			o          *usageOut
			folded     bool
			foldReason instanceFoldReason
		)
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				n := int64(eventspan.PointCount(m))
				b.received += n
				um, ok := eventspan.UsageMetrics[m.Name()]
				var dps pmetric.NumberDataPointSlice
				var temporality string
				if ok {
					dps, temporality, ok = usagePoints(m, um.Kind)
					if !ok {
						b.dropped[metricUnsupportedType] += n
						continue
					}
				}
				switch {
				case !ok:
					b.dropped[metricNotUsage] += n
					continue
				case !u.enabled:
					b.dropped[metricDisabled] += n
					continue
				case !hasService:
					b.dropped[metricMissingService] += n
					continue
				case instance == "":
					b.dropped[metricMissingInstance] += n
					continue
				}
				if o == nil {
					var inst string
					inst, folded, foldReason = u.bounds.admit(unit, instance, now.UnixNano())
					key := usageKey{unit, strings.ToValidUTF8(strAttr(res, eventspan.AttrServiceVersion), "\uFFFD"), inst}
					if o = outs[key]; o == nil {
						o = newUsageOut(out, key)
						outs[key] = o
					}
				}
				if folded {
					b.folds[foldReason] += n
				}
				for _, dp := range dps.All() {
					t, start := int64(dp.Timestamp()), int64(dp.StartTimestamp())
					switch {
					case t < minValidStart:
						b.dropped[metricInvalidTimestamps]++
						continue
					case t > maxTime:
						b.dropped[metricFutureTimestamp]++
						continue
					}
					if temporality == eventspan.TemporalityGauge {
						start = 0
					}
					o.add(m.Name(), temporality, start, t, eventspan.NumberValue(dp), &b)
				}
			}
		}
	}

	t := u.p.telemetry
	t.ProcessorChangelensMetricPointsReceived.Add(ctx, b.received)
	if b.emitted > 0 {
		t.ProcessorChangelensResourceUsagePoints.Add(ctx, b.emitted)
	}
	for r, n := range b.dropped {
		if n > 0 {
			t.ProcessorChangelensMetricPointsDropped.Add(ctx, n, u.dropAttrs[r])
		}
	}
	for r, n := range b.folds {
		if n > 0 {
			t.ProcessorChangelensInstanceFolds.Add(ctx, n, u.foldAttrs[r])
		}
	}
	return out, nil
}

func newUsageOut(out pmetric.Metrics, key usageKey) *usageOut {
	rm := out.ResourceMetrics().AppendEmpty()
	a := rm.Resource().Attributes()
	// Every reader finds the unit under the current names.
	a.PutStr(eventspan.AttrServiceName, key.unit.service)
	a.PutStr(eventspan.AttrDeploymentEnvironment, key.unit.environment)
	if key.version != "" {
		a.PutStr(eventspan.AttrServiceVersion, key.version)
	}
	a.PutStr(eventspan.AttrInstance, key.instance)
	sm := rm.ScopeMetrics().AppendEmpty()
	eventspan.MarkScope(sm.Scope(), eventspan.EventResourceUsage)
	return &usageOut{key: key, metrics: map[string]pmetric.Metric{}, points: map[pointKey]pmetric.NumberDataPoint{}, sm: sm}
}

// add sums v into the output point (name, start, t).
func (o *usageOut) add(name, temporality string, start, t int64, v float64, b *metricBatch) {
	k := pointKey{name, start, t}
	if dp, ok := o.points[k]; ok {
		dp.SetDoubleValue(dp.DoubleValue() + v)
		return
	}
	m, ok := o.metrics[name+"\x00"+temporality]
	if !ok {
		m = o.sm.Metrics().AppendEmpty()
		m.SetName(name)
		if temporality == eventspan.TemporalityGauge {
			m.SetUnit("By")
			m.SetEmptyGauge()
		} else {
			m.SetUnit("s")
			s := m.SetEmptySum()
			s.SetIsMonotonic(true)
			if temporality == eventspan.TemporalityDelta {
				s.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
			} else {
				s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			}
		}
		o.metrics[name+"\x00"+temporality] = m
	}
	var dp pmetric.NumberDataPoint
	if m.Type() == pmetric.MetricTypeGauge {
		dp = m.Gauge().DataPoints().AppendEmpty()
	} else {
		dp = m.Sum().DataPoints().AppendEmpty()
	}
	dp.SetStartTimestamp(pcommon.Timestamp(start))
	dp.SetTimestamp(pcommon.Timestamp(t))
	dp.SetDoubleValue(v)
	o.points[k] = dp
	b.emitted++
}

// usagePoints returns m's points when m has the shape its kind needs: CPU
// time a monotonic sum (an up-down counter of CPU time means something
// else), memory a gauge or a cumulative sum (semantic conventions make
// process.memory.usage and jvm.memory.used up-down counters; receivers such
// as kubeletstats send gauges).
func usagePoints(m pmetric.Metric, kind eventspan.UsageKind) (pmetric.NumberDataPointSlice, string, bool) {
	switch {
	case kind == eventspan.UsageCPU && m.Type() == pmetric.MetricTypeSum && m.Sum().IsMonotonic():
		switch m.Sum().AggregationTemporality() {
		case pmetric.AggregationTemporalityCumulative:
			return m.Sum().DataPoints(), eventspan.TemporalityCumulative, true
		case pmetric.AggregationTemporalityDelta:
			return m.Sum().DataPoints(), eventspan.TemporalityDelta, true
		}
	case kind == eventspan.UsageMemory && m.Type() == pmetric.MetricTypeGauge:
		return m.Gauge().DataPoints(), eventspan.TemporalityGauge, true
	case kind == eventspan.UsageMemory && m.Type() == pmetric.MetricTypeSum &&
		m.Sum().AggregationTemporality() == pmetric.AggregationTemporalityCumulative:
		return m.Sum().DataPoints(), eventspan.TemporalityGauge, true
	}
	return pmetric.NumberDataPointSlice{}, "", false
}

// instanceOf names the instance a resource describes: service.instance.id,
// else k8s.pod.uid, container.id, host.name and process.pid together; ""
// when none, for points that cannot be told apart from another instance's
// cannot be made into increments.
func instanceOf(res pcommon.Map) string {
	for _, k := range []string{eventspan.AttrServiceInstanceID, eventspan.AttrK8sPodUID, eventspan.AttrContainerID} {
		if v, ok := res.Get(k); ok {
			if s := v.AsString(); s != "" {
				return strings.ToValidUTF8(s, "\uFFFD")
			}
		}
	}
	host := strAttr(res, eventspan.AttrHostName)
	pid, ok := res.Get(eventspan.AttrProcessPID)
	if host == "" || !ok || pid.AsString() == "" {
		return ""
	}
	return strings.ToValidUTF8(host, "\uFFFD") + "/" + pid.AsString()
}

// instanceBounds bounds the instances of each unit that report at a time,
// as cohorts bound a unit's values: the instance is a column of every
// stored point, and an application that sets a fresh service.instance.id
// per export must not grow the table's series without bound.
type instanceBounds struct {
	maxInstances, maxUnits int
	idle                   int64 // ns

	mu        sync.Mutex
	units     map[unitKey]*unitInstances
	lastSweep int64
}

type unitInstances struct {
	seen      map[string]int64 // instance → last point's arrival (collector clock, ns)
	lastSweep int64
}

func newInstanceBounds(maxInstances, maxUnits int, idle time.Duration) *instanceBounds {
	return &instanceBounds{maxInstances: maxInstances, maxUnits: maxUnits, idle: int64(idle), units: map[unitKey]*unitInstances{}}
}

// sweepEvery spaces the scans for idle instances when a bound is reached,
// so a unit over its bound costs a map scan a minute, not one per point.
const sweepEvery = int64(time.Minute)

// admit returns the instance to record for inst of unit u at now: inst, or
// otherValue and why it was folded.
func (ib *instanceBounds) admit(u unitKey, inst string, now int64) (string, bool, instanceFoldReason) {
	ib.mu.Lock()
	defer ib.mu.Unlock()
	ui := ib.units[u]
	if ui == nil {
		if len(ib.units) >= ib.maxUnits && now-ib.lastSweep >= sweepEvery {
			ib.lastSweep = now
			for k, other := range ib.units {
				other.sweep(now - ib.idle)
				if len(other.seen) == 0 {
					delete(ib.units, k)
				}
			}
		}
		if len(ib.units) >= ib.maxUnits {
			return otherValue, true, foldUsageUnits
		}
		ui = &unitInstances{seen: map[string]int64{}}
		ib.units[u] = ui
	}
	if _, ok := ui.seen[inst]; ok {
		ui.seen[inst] = now
		return inst, false, 0
	}
	if len(ui.seen) >= ib.maxInstances && now-ui.lastSweep >= sweepEvery {
		ui.lastSweep = now
		ui.sweep(now - ib.idle)
	}
	if len(ui.seen) >= ib.maxInstances {
		return otherValue, true, foldInstances
	}
	ui.seen[inst] = now
	return inst, false, 0
}

func (ui *unitInstances) sweep(before int64) {
	for k, t := range ui.seen {
		if t < before {
			delete(ui.seen, k)
		}
	}
}
