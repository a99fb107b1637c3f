package changelensexporter

import (
	"context"
	"math"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/changelens/changelens/internal/eventspan"
	"github.com/changelens/changelens/testkit/chtest"
)

func usagePoint(instance string, at time.Time, v float64) eventspan.UsagePoint {
	return eventspan.UsagePoint{Resource: eventspan.Resource{Service: "checkout", Environment: "production", Version: "v2"},
		Instance: instance, Metric: "process.cpu.time", Temporality: eventspan.TemporalityCumulative,
		StartTime: at.Add(-time.Hour).UnixNano(), Time: at.UnixNano(), Value: v}
}

// Resource usage events become resource_usage rows as they are; points
// that cannot be stored are counted by reason, and points the processor
// did not mark are ignored.
func TestEncodeResourceUsage(t *testing.T) {
	now := time.Now()
	at := now.Add(-time.Minute)
	good := usagePoint("pod-a", at, 12.5)
	mem := good
	mem.Metric, mem.Temporality, mem.StartTime, mem.Value = "process.memory.usage", eventspan.TemporalityGauge, 0, 1<<20
	noInstance := usagePoint("", at, 1)
	negative := usagePoint("pod-a", at, -1)
	nan := usagePoint("pod-a", at, math.NaN())
	noService := usagePoint("pod-a", at, 1)
	noService.Service = ""
	future := usagePoint("pod-a", now.Add(48*time.Hour), 1)

	var enc encoder
	enc.reset(now, 30)
	md := pmetric.NewMetrics()
	eventspan.AppendUsage(md, good, mem, noInstance, negative, nan, noService, future)
	foreign := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	foreign.SetName("http.server.request.duration")
	foreign.SetEmptyGauge().DataPoints().AppendEmpty()
	foreign.Gauge().DataPoints().AppendEmpty()
	enc.encodeMetrics(md)

	c := &enc.usage
	if c.rows() != 2 {
		t.Fatalf("%d rows, want the CPU and the memory point", c.rows())
	}
	if c.service[0] != "checkout" || c.environment[0] != "production" || c.version[0] != "v2" || c.instance[0] != "pod-a" ||
		c.metric[0] != "process.cpu.time" || c.temporality[0] != "cumulative" || c.startNs[0] != uint64(good.StartTime) ||
		c.time[0] != at.Unix() || c.timeNs[0] != uint64(at.UnixNano()) || c.value[0] != 12.5 {
		t.Errorf("CPU row: %s %s %s %s %s %s %d %d %d %g", c.service[0], c.environment[0], c.version[0], c.instance[0],
			c.metric[0], c.temporality[0], c.startNs[0], c.time[0], c.timeNs[0], c.value[0])
	}
	if c.metric[1] != "process.memory.usage" || c.temporality[1] != "gauge" || c.startNs[1] != 0 || c.value[1] != 1<<20 {
		t.Errorf("memory row: %s %s %d %g", c.metric[1], c.temporality[1], c.startNs[1], c.value[1])
	}
	for r, want := range map[reason]int64{rInvalidUsage: 3, rMissingService: 1, rFutureTimestamp: 1} {
		if enc.invalid[r] != want {
			t.Errorf("invalid %s = %d, want %d", reasonNames[r], enc.invalid[r], want)
		}
	}
	if enc.ignoredPoints != 2 {
		t.Errorf("ignored points %d, want 2", enc.ignoredPoints)
	}
}

// The metrics exporter shares the traces exporter's connection and schema;
// a point delivered twice (a retry, a second collector) is one row after
// merges, and reads as one grouped by its identity before them.
func TestIntegrationResourceUsageThroughFactory(t *testing.T) {
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	cfg := testConfig(srv, db)
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	f := NewFactory()
	traces, err := f.CreateTraces(context.Background(), metadatatestSettings(tel), cfg)
	if err != nil {
		t.Fatal(err)
	}
	metrics, err := f.CreateMetrics(context.Background(), metadatatestSettings(tel), cfg)
	if err != nil {
		t.Fatal(err)
	}
	host := componenttest.NewNopHost()
	if err := traces.Start(context.Background(), host); err != nil {
		t.Fatal(err)
	}
	if err := metrics.Start(context.Background(), host); err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	var pts []eventspan.UsagePoint
	for i := range 10 {
		pts = append(pts, usagePoint("pod-a", at.Add(time.Duration(i)*30*time.Second), float64(i)))
	}
	for range 2 {
		md := pmetric.NewMetrics()
		eventspan.AppendUsage(md, pts...)
		if err := metrics.ConsumeMetrics(context.Background(), md); err != nil {
			t.Fatal(err)
		}
	}
	if err := metrics.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := traces.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	conn := srv.Conn(t, db)
	read := func(q string) uint64 {
		t.Helper()
		var n uint64
		if err := conn.QueryRow(tctx(t), q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := read("SELECT count() FROM (SELECT instance, metric, start_time_ns, time_ns FROM resource_usage GROUP BY instance, metric, start_time_ns, time_ns)"); n != 10 {
		t.Errorf("%d distinct points, want 10", n)
	}
	optimizeFinal(t, conn, db, "resource_usage")
	if n := read("SELECT count() FROM resource_usage"); n != 10 {
		t.Errorf("after merges %d rows, want 10: replays collapse", n)
	}
	assertCounter(t, tel, "otelcol_changelens_exporter_events_written",
		map[string]string{eventspan.AttrEventType: eventspan.EventResourceUsage}, 20)
}
