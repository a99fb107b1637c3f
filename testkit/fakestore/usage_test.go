package fakestore

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"os"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/changelens/changelens/internal/eventspan"
	"github.com/changelens/changelens/queryapi/store"
	"github.com/changelens/changelens/testkit/chtest"
	"github.com/changelens/changelens/testkit/pipelinetest"
)

func TestMain(m *testing.M) { os.Exit(chtest.Main(m)) }

// usagePoints is a unit's resource usage over five hours before now: v1 on
// three instances (one a JVM reporting process.cpu.time and jvm.cpu.time,
// one restarted mid-way, a new start time), v2 on two (one starting inside
// the read, one exporting delta sums), memory as process.memory.usage and
// jvm.memory.used.
func usagePoints(rng *rand.Rand, base time.Time) []eventspan.UsagePoint {
	var out []eventspan.UsagePoint
	res := func(v string) eventspan.Resource {
		return eventspan.Resource{Service: "checkout", Environment: "production", Version: v}
	}
	type inst struct {
		version, id string
		start       time.Time
		restart     time.Time
		delta, jvm  bool
	}
	for _, in := range []inst{
		{version: "v1", id: "a", start: base.Add(-3 * time.Hour)},
		{version: "v1", id: "b", start: base.Add(-3 * time.Hour), jvm: true},
		{version: "v1", id: "c", start: base.Add(-3 * time.Hour), restart: base.Add(97 * time.Minute)},
		{version: "v2", id: "d", start: base.Add(-30 * time.Minute)},
		{version: "v2", id: "e", start: base.Add(-3 * time.Hour), delta: true},
	} {
		start, total, jvmTotal := in.start, 0.0, 0.0
		for t := in.start.Add(20 * time.Second); t.Before(base.Add(5 * time.Hour)); t = t.Add(20*time.Second + time.Duration(rng.IntN(3))*time.Second) {
			if !in.restart.IsZero() && !t.Before(in.restart) && start != in.restart {
				start, total = in.restart, 0
			}
			used := 0.3 + rng.Float64()
			total += used
			p := eventspan.UsagePoint{Resource: res(in.version), Instance: in.id, Metric: "process.cpu.time",
				Temporality: eventspan.TemporalityCumulative, StartTime: start.UnixNano(), Time: t.UnixNano(), Value: total}
			if in.delta {
				p.Temporality, p.StartTime, p.Value = eventspan.TemporalityDelta, t.Add(-20*time.Second).UnixNano(), used
			}
			out = append(out, p)
			if in.jvm {
				jvmTotal += used * 0.9
				j := p
				j.Metric, j.Value = "jvm.cpu.time", jvmTotal
				out = append(out, j)
				out = append(out, eventspan.UsagePoint{Resource: res(in.version), Instance: in.id, Metric: "jvm.memory.used",
					Temporality: eventspan.TemporalityGauge, Time: t.UnixNano(), Value: float64(50<<20 + rng.IntN(1<<20))})
			}
			out = append(out, eventspan.UsagePoint{Resource: res(in.version), Instance: in.id, Metric: "process.memory.usage",
				Temporality: eventspan.TemporalityGauge, Time: t.UnixNano(), Value: float64(100<<20 + rng.IntN(1<<20))})
		}
	}
	return out
}

// The fake's resource usage agrees with the store's on ClickHouse, from the
// same points and requests.
func TestResourceUsageAgreesWithClickHouse(t *testing.T) {
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	rng := rand.New(rand.NewPCG(7, 25))
	base := time.Now().UTC().Truncate(time.Hour).Add(-6 * time.Hour)
	pts := usagePoints(rng, base)
	fake := New()
	fake.AddUsage(pts...)
	fake.AddUsage(pts[:100]...) // a replay

	p := pipelinetest.New(t, srv.Addr(), db, 1, nil)
	for i := 0; i < len(pts); i += 500 {
		md := pmetric.NewMetrics()
		eventspan.AppendUsage(md, pts[i:min(i+500, len(pts))]...)
		for _, rm := range md.ResourceMetrics().All() { // as an SDK sends them
			a := rm.Resource().Attributes()
			inst, _ := a.Get(eventspan.AttrInstance)
			a.PutStr("service.instance.id", inst.Str())
			a.Remove(eventspan.AttrInstance)
			rm.ScopeMetrics().At(0).Scope().SetName("io.opentelemetry.runtime-telemetry")
			rm.ScopeMetrics().At(0).Scope().Attributes().Clear()
		}
		p.SendMetrics(t, 0, md)
	}
	td := ptrace.NewTraces()
	var seq uint64
	for m := range 5 * 60 {
		at := base.Add(time.Duration(m) * time.Minute)
		for _, v := range []string{"v1", "v2"} {
			n := 1 + rng.IntN(4)
			for r := range n {
				seq++
				rs := td.ResourceSpans().AppendEmpty()
				a := rs.Resource().Attributes()
				a.PutStr("service.name", "checkout")
				a.PutStr("deployment.environment.name", "production")
				a.PutStr("service.version", v)
				s := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
				var tid pcommon.TraceID
				binary.BigEndian.PutUint64(tid[8:], seq)
				tid[0] = 0xfa
				s.SetTraceID(tid)
				s.SetSpanID(pcommon.SpanID{1, byte(seq >> 16), byte(seq >> 8), byte(seq)})
				s.SetKind(ptrace.SpanKindServer)
				s.SetName("GET /items")
				s.SetStartTimestamp(pcommon.NewTimestampFromTime(at.Add(time.Duration(r) * time.Second)))
				s.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(time.Duration(r)*time.Second + 5*time.Millisecond)))
			}
			fake.AddTraffic(Minute{Service: "checkout", Environment: "production", Version: v, Operation: "GET /items", Minute: at, Requests: float64(n), Samples: float64(n)})
		}
	}
	p.Send(t, td)
	p.Close(t)

	st, err := store.Open(context.Background(), store.Config{DSN: fmt.Sprintf("clickhouse://%s:%s@%s/%s", chtest.ReadOnlyUser, url.QueryEscape(chtest.ReadOnlyPassword), srv.Addr(), db)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, q := range []store.UsageQuery{
		{Service: "checkout", Environment: "production", From: base.Add(time.Hour), To: base.Add(5 * time.Hour), Bucket: time.Hour},
		{Service: "checkout", Environment: "production", From: base, To: base.Add(3 * time.Hour), Bucket: 10 * time.Minute},
		{Service: "checkout", Environment: "production", From: base.Add(90 * time.Minute), To: base.Add(100 * time.Minute), Bucket: time.Minute},
	} {
		want, err := st.ResourceUsage(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		got, err := fake.ResourceUsage(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		if len(want) == 0 || len(got) != len(want) {
			t.Fatalf("%s/%s: fake %d points, ClickHouse %d", q.From, q.Bucket, len(got), len(want))
		}
		near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Max(math.Abs(a), math.Abs(b))) }
		for i := range want {
			w, g := want[i], got[i]
			if w.Version != g.Version || !w.Time.Equal(g.Time) || w.Instances != g.Instances || !near(w.CPUSeconds, g.CPUSeconds) ||
				!near(w.MemoryByteAvg, g.MemoryByteAvg) || w.Requests != g.Requests {
				t.Errorf("%s/%s point %d: fake %+v, ClickHouse %+v", q.From, q.Bucket, i, g, w)
			}
		}
	}
}
