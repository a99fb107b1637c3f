package changelensexporter

import (
	"context"
	"math"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/changelens/changelens/internal/eventspan"
	"github.com/changelens/changelens/internal/schema"
)

// usageColumns are the resource_usage columns (schema v14), in
// usageColumnNames order.
type usageColumns struct {
	service, environment, version, instance, metric, temporality []string
	startNs                                                      []uint64
	time                                                         []int64 // unix seconds (DateTime)
	timeNs                                                       []uint64
	value                                                        []float64
}

var usageColumnNames = []string{"service", "environment", "version", "instance", "metric", "temporality",
	"start_time_ns", "time", "time_ns", "value"}

func (c *usageColumns) reset() {
	*c = usageColumns{
		service: c.service[:0], environment: c.environment[:0], version: c.version[:0], instance: c.instance[:0],
		metric: c.metric[:0], temporality: c.temporality[:0], startNs: c.startNs[:0], time: c.time[:0],
		timeNs: c.timeNs[:0], value: c.value[:0],
	}
}

func (c *usageColumns) clearStrings() {
	for _, s := range [][]string{c.service, c.environment, c.version, c.instance, c.metric, c.temporality} {
		clear(s)
	}
}

func (c *usageColumns) rows() int { return len(c.service) }

// addUsage appends one resource usage point. The point is stored as it
// is: its identity (unit, metric, instance, start, time) is the sorting key,
// so a replay is the same row.
func (e *encoder) addUsage(p eventspan.UsagePoint) {
	if p.Service == "" {
		e.invalid[rMissingService]++
		return
	}
	if p.Instance == "" || math.IsNaN(p.Value) || math.IsInf(p.Value, 0) || p.Value < 0 {
		e.invalid[rInvalidUsage]++
		return
	}
	if !e.inWindow(p.Time) {
		return
	}
	c := &e.usage
	c.service = append(c.service, p.Service)
	c.environment = append(c.environment, p.Environment)
	c.version = append(c.version, p.Version)
	c.instance = append(c.instance, p.Instance)
	c.metric = append(c.metric, p.Metric)
	c.temporality = append(c.temporality, p.Temporality)
	c.startNs = append(c.startNs, uint64(max(p.StartTime, 0)))
	c.time = append(c.time, p.Time/int64(time.Second))
	c.timeNs = append(c.timeNs, uint64(p.Time))
	c.value = append(c.value, p.Value)
}

// encodeMetrics appends the resource usage points of md (scopes the
// processor marked); other points are counted as ignored.
func (e *encoder) encodeMetrics(md pmetric.Metrics) {
	for _, rm := range md.ResourceMetrics().All() {
		attrs := rm.Resource().Attributes()
		res := eventspan.ReadResource(attrs)
		for _, sm := range rm.ScopeMetrics().All() {
			if eventspan.ScopeKind(sm.Scope()) != eventspan.KindResourceUsage {
				for _, m := range sm.Metrics().All() {
					e.ignoredPoints += int64(eventspan.PointCount(m))
				}
				continue
			}
			eventspan.DecodeUsage(res, attrs, sm, e.addUsage)
		}
	}
}

func insertUsage(ctx context.Context, conn driver.Conn, query string, c *usageColumns, v *idViews) error {
	return sendColumns(ctx, conn, query, usageColumnNames, v,
		c.service, c.environment, c.version, c.instance, c.metric, c.temporality, c.startNs, c.time, c.timeNs, c.value)
}

// pushMetrics is the exporterhelper push function of the metrics pipeline:
// it stores the resource usage points the processor kept. A retry may
// insert them again: identical rows, which the table collapses and readers
// group by point identity anyway.
func (e *chExporter) pushMetrics(ctx context.Context, md pmetric.Metrics) error {
	conn, err := e.ensureReady(ctx)
	if err != nil {
		return err
	}
	if e.schema.Cluster != "" {
		// As for traces: acknowledged once a replica of every shard holds the rows.
		ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"insert_distributed_sync": 1}))
	}
	st := e.getEncoder()
	defer e.putEncoder(st)
	enc := &st.enc
	enc.reset(e.now(), e.cfg.RetentionDays)
	enc.encodeMetrics(md)
	var failed error
	if n := enc.usage.rows(); n > 0 {
		failed = e.insert(ctx, schema.TableResourceUsage, func() error {
			return insertUsage(ctx, conn, e.usageInsert, &enc.usage, &st.usageIDs)
		})
		if failed != nil && !consumererror.IsPermanent(failed) {
			return failed
		}
		if failed == nil {
			e.tel.ChangelensExporterEventsWritten.Add(ctx, int64(n), e.attrUsage)
		}
	}
	if enc.ignoredPoints > 0 {
		e.tel.ChangelensExporterMetricPointsIgnored.Add(ctx, enc.ignoredPoints)
	}
	e.recordDrops(ctx, enc)
	return failed
}
