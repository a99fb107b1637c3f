package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/changelens/changelens/exporter/changelensexporter"
	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/testkit/chcluster"
	"github.com/changelens/changelens/testkit/chtest"
	"github.com/changelens/changelens/testkit/pipelinetest"
)

// usageInstance is one instance's cumulative CPU time, exported every
// usageExportEvery with two cpu.mode splits.
type usageInstance struct {
	version, id string
	start       time.Time
	memory      int64
	// cpu[k] is the cumulative CPU seconds at the k-th export.
	cpu []float64
}

const usageExportEvery = 30 * time.Second

func (in *usageInstance) export(k int) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	a := rm.Resource().Attributes()
	a.PutStr("service.name", "checkout")
	a.PutStr("deployment.environment.name", "production")
	a.PutStr("service.version", in.version)
	a.PutStr("service.instance.id", in.id)
	sm := rm.ScopeMetrics().AppendEmpty()
	at := pcommon.NewTimestampFromTime(in.start.Add(time.Duration(k+1) * usageExportEvery))
	m := sm.Metrics().AppendEmpty()
	m.SetName("process.cpu.time")
	s := m.SetEmptySum()
	s.SetIsMonotonic(true)
	s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for mode, share := range map[string]float64{"user": 0.75, "system": 0.25} {
		dp := s.DataPoints().AppendEmpty()
		dp.Attributes().PutStr("cpu.mode", mode)
		dp.SetStartTimestamp(pcommon.NewTimestampFromTime(in.start))
		dp.SetTimestamp(at)
		dp.SetDoubleValue(in.cpu[k] * share)
	}
	g := sm.Metrics().AppendEmpty()
	g.SetName("process.memory.usage")
	gs := g.SetEmptySum()
	gs.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp := gs.DataPoints().AppendEmpty()
	dp.SetTimestamp(at)
	dp.SetIntValue(in.memory)
	return md
}

// usageScenario: versions v1 and v2 of checkout, two instances each, from
// an hour before base to 3 h after it; v2 uses twice v1's CPU per request
// (each minute's CPU = its requests × cost × noise).
type usageScenario struct {
	base      time.Time
	instances []*usageInstance
	requests  ptrace.Traces
	perBucket map[string]map[time.Time]float64 // version → 10-minute bucket → requests
}

func newUsageScenario(seed uint64) *usageScenario {
	rng := rand.New(rand.NewPCG(seed, 25))
	base := time.Now().UTC().Truncate(time.Hour).Add(-5 * time.Hour)
	sc := &usageScenario{base: base, requests: ptrace.NewTraces(), perBucket: map[string]map[time.Time]float64{}}
	start := base.Add(-time.Hour)
	minutes := 4 * 60
	cost := map[string]float64{"v1": 0.02, "v2": 0.04}
	var seq uint64
	for _, v := range []string{"v1", "v2"} {
		sc.perBucket[v] = map[time.Time]float64{}
		insts := []*usageInstance{{version: v, id: v + "-a", start: start, memory: 100 << 20}, {version: v, id: v + "-b", start: start.Add(time.Second), memory: 100 << 20}}
		var total float64
		for m := range minutes {
			at := start.Add(time.Duration(m) * time.Minute)
			n := 10 + rng.IntN(20)
			if !at.Before(base) && at.Before(base.Add(3*time.Hour)) {
				sc.perBucket[v][at.Truncate(10*time.Minute)] += float64(n)
			}
			for r := range n {
				seq++
				sc.addRequest(v, at.Add(time.Duration(r)*time.Second), seq)
			}
			used := float64(n) * cost[v] * (1 + 0.2*(rng.Float64()-0.5))
			// two exports a minute, each instance half the minute's CPU
			for range 2 {
				total += used / 2
				for _, in := range insts {
					in.cpu = append(in.cpu, total/2)
				}
			}
		}
		sc.instances = append(sc.instances, insts...)
	}
	return sc
}

func (sc *usageScenario) addRequest(version string, at time.Time, seq uint64) {
	rs := sc.requests.ResourceSpans().AppendEmpty()
	a := rs.Resource().Attributes()
	a.PutStr("service.name", "checkout")
	a.PutStr("deployment.environment.name", "production")
	a.PutStr("service.version", version)
	s := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	var tid pcommon.TraceID
	binary.BigEndian.PutUint64(tid[:8], 0xc0)
	binary.BigEndian.PutUint64(tid[8:], seq)
	s.SetTraceID(tid)
	s.SetSpanID(pcommon.SpanID{3, byte(seq >> 24), byte(seq >> 16), byte(seq >> 8), byte(seq)})
	s.SetKind(ptrace.SpanKindServer)
	s.SetName("GET /items")
	s.SetStartTimestamp(pcommon.NewTimestampFromTime(at))
	s.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(15 * time.Millisecond)))
	s.Attributes().PutStr("http.route", "/items")
	s.Attributes().PutInt("http.response.status_code", 200)
}

// exactCPU is a version's CPU seconds as the stored points define them over
// [from, to): each instance's last cumulative value before to minus its
// last before from.
func (sc *usageScenario) exactCPU(version string, from, to time.Time) float64 {
	var sum float64
	for _, in := range sc.instances {
		if in.version != version {
			continue
		}
		last := func(before time.Time) float64 {
			v := 0.0
			for k := range in.cpu {
				if in.start.Add(time.Duration(k+1) * usageExportEvery).Before(before) {
					v = in.cpu[k]
				}
			}
			return v
		}
		sum += last(to) - last(from)
	}
	return sum
}

func usageStore(t *testing.T, srv *chtest.Server, db string) *Store {
	t.Helper()
	st, err := Open(context.Background(), Config{DSN: fmt.Sprintf("clickhouse://%s:%s@%s/%s", chtest.ReadOnlyUser, url.QueryEscape(chtest.ReadOnlyPassword), srv.Addr(), db)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// storeUsage sends sc through one collector into db, or (split) through two
// with a fifth of the exports sent to both and a batch replayed.
func storeUsage(t *testing.T, sc *usageScenario, addr, db string, split bool, mutate func(*changelensexporter.Config)) {
	t.Helper()
	a := pipelinetest.New(t, addr, db, 1, mutate)
	b := a
	if split {
		b = pipelinetest.New(t, addr, db, 1, mutate)
	}
	a.Send(t, sc.requests)
	for _, in := range sc.instances {
		for k := range in.cpu {
			switch {
			case !split:
				a.SendMetrics(t, 0, in.export(k))
			case k%5 == 0: // both collectors got it (a client retried through the balancer)
				a.SendMetrics(t, 0, in.export(k))
				b.SendMetrics(t, 0, in.export(k))
			case k%2 == 0:
				a.SendMetrics(t, 0, in.export(k))
			default:
				b.SendMetrics(t, 0, in.export(k))
			}
			if split && k == 200 { // a replay of a batch
				b.SendMetrics(t, 0, in.export(k))
			}
		}
	}
	a.Close(t)
	if split {
		b.Close(t)
	}
}

// checkUsage checks what ResourceUsage read of sc over q: every bucket's
// requests, instances and memory, each version's exact CPU seconds, and
// twice the CPU per request for v2 (2.0 ± 10 %, inside its interval).
func checkUsage(t *testing.T, name string, sc *usageScenario, q UsageQuery, pts []UsagePoint) {
	t.Helper()
	cpu := map[string]float64{}
	for _, p := range pts {
		cpu[p.Version] += p.CPUSeconds
		if p.Time.Before(q.From) || !p.Time.Before(q.To) {
			t.Errorf("%s: bucket %s outside the range", name, p.Time)
		}
		if p.Instances != 2 || math.Abs(p.MemoryByteAvg-2*(100<<20)) > 1 {
			t.Errorf("%s: %s %s: %d instances, %.0f bytes; want 2 and 200 MiB", name, p.Version, p.Time, p.Instances, p.MemoryByteAvg)
		}
		if want := sc.perBucket[p.Version][p.Time]; p.Requests != want {
			t.Errorf("%s: %s %s: %.0f requests, want %.0f", name, p.Version, p.Time, p.Requests, want)
		}
	}
	for _, v := range []string{"v1", "v2"} {
		if want := sc.exactCPU(v, q.From, q.To); math.Abs(cpu[v]-want) > 1e-9*want {
			t.Errorf("%s: %s: %.9f CPU seconds, want exactly %.9f", name, v, cpu[v], want)
		}
	}
	if len(pts) != 2*18 {
		t.Errorf("%s: %d points, want 18 buckets of each version", name, len(pts))
	}
	c := analysis.CompareCost("version", pts, "v1", "v2", q.Bucket)
	if r := c.CPURatio; c.Reason != "" || math.Abs(r.Value-2) > 0.2 || r.Low > 2 || r.High < 2 {
		t.Errorf("%s: CPU ratio %+v (%s), want 2.0 ± 10 %% inside its interval", name, r, c.Reason)
	}
	t.Logf("%s: v1 %+v CPU s / 1k requests, ratio %+v", name, c.Control.CPUSecondsPer1k, c.CPURatio)
}

func usageQuery(sc *usageScenario) UsageQuery {
	return UsageQuery{Service: "checkout", Environment: "production", From: sc.base, To: sc.base.Add(3 * time.Hour), Bucket: 10 * time.Minute}
}

// The same cumulative CPU series read through one collector, and split
// across two collectors with some exports duplicated and one batch
// replayed, read the same exact CPU seconds; a version with twice the CPU
// per request reads 2.0 ± 10 %.
func TestIntegrationResourceUsageTwoCollectors(t *testing.T) {
	srv := chtest.Shared(t)
	sc := newUsageScenario(1)
	q := usageQuery(sc)
	for _, split := range []bool{false, true} {
		db := srv.NewDatabase(t)
		storeUsage(t, sc, srv.Addr(), db, split, nil)
		pts, err := usageStore(t, srv, db).ResourceUsage(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		checkUsage(t, fmt.Sprintf("split %v", split), sc, q, pts)
	}
}

// On a replicated cluster, through the Distributed tables, two collectors'
// points read as one collector's on a single server, from any node.
func TestClusterResourceUsage(t *testing.T) {
	c := chcluster.New(t)
	sc := newUsageScenario(1)
	q := usageQuery(sc)
	storeUsage(t, sc, "", "usage_split", true, func(cfg *changelensexporter.Config) {
		cfg.Endpoints = c.Endpoints()
		cfg.ClusterName = chcluster.Name
	})
	// An insert is acknowledged once one replica of each shard holds it; a
	// read may reach the other.
	for _, n := range c.All() {
		for _, tbl := range []string{"resource_usage_local", "latency_hist_1m_local"} {
			n.Exec(t, "SYSTEM SYNC REPLICA usage_split."+tbl)
		}
	}
	for _, node := range []*chtest.Server{c.Nodes[0][0], c.Nodes[1][1]} {
		st, err := Open(context.Background(), Config{DSN: node.DSN("default", "", "usage_split")})
		if err != nil {
			t.Fatal(err)
		}
		pts, err := st.ResourceUsage(context.Background(), q)
		st.Close()
		if err != nil {
			t.Fatal(err)
		}
		checkUsage(t, "via "+node.Addr(), sc, q, pts)
	}
}

// A query whose bucket is no whole number of minutes, whose range is not
// made of whole buckets or is empty, or that names no unit is refused
// before anything is read.
func TestResourceUsageValidates(t *testing.T) {
	s := &Store{}
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, q := range []UsageQuery{
		{Service: "a", Environment: "b", From: base, To: base.Add(time.Hour), Bucket: 30 * time.Second},
		{Service: "a", Environment: "b", From: base.Add(time.Minute), To: base.Add(time.Hour), Bucket: 10 * time.Minute},
		{Service: "a", Environment: "b", From: base, To: base, Bucket: time.Minute},
		{Environment: "b", From: base, To: base.Add(time.Hour), Bucket: time.Minute},
	} {
		if _, err := s.ResourceUsage(context.Background(), q); err == nil {
			t.Errorf("%+v accepted", q)
		}
	}
}
