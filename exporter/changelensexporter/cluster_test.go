package changelensexporter

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/changelens/changelens/internal/eventspan"
	"github.com/changelens/changelens/internal/schema"
	"github.com/changelens/changelens/testkit/chcluster"
	"github.com/changelens/changelens/testkit/chtest"
	"github.com/changelens/changelens/testkit/eventspantest"
)

// TestClusterServiceGraphAndRetention: on the replicated 2 × 2 cluster
// (make test's first leg only; the embedded 26.x engine has no Keeper) call
// events reach call_events through its Distributed table, the documented
// graph join finds callees on the other shard (GLOBAL) through any node, and
// the retention sweep finds expired days through the Distributed tables and
// drops them on every shard and every replica, for every day-partitioned
// table.
func TestClusterServiceGraphAndRetention(t *testing.T) {
	c := chcluster.New(t)
	cfg := createDefaultConfig().(*Config)
	cfg.Endpoints = c.Endpoints()
	cfg.Username, cfg.Password = chcluster.WriterUser, chcluster.WriterPassword
	cfg.ClusterName = chcluster.Name
	cfg.RetentionDays = 2
	cfg.QueueConfig = configoptional.None[exporterhelper.QueueBatchConfig]()
	cfg.BackOffConfig.Enabled = false
	e := startExporter(t, cfg, nopSettings())

	// Eight units: both shards get some.
	td := ptrace.NewTraces()
	now := time.Now()
	var evs []eventspantest.Latency
	for i := range 400 {
		evs = append(evs, eventspantest.Latency{Service: string(rune('a' + i%8)), Environment: "e", Version: "1", Operation: "op",
			Start: now.Add(-time.Duration(i) * time.Second), Duration: time.Millisecond, Error: i%10 == 0, ErrorKind: "E",
			TraceID: eventspantest.TraceID(uint64(i + 1)), SpanID: eventspantest.SpanID(uint64(i + 1))})
	}
	eventspantest.AppendLatency(td, evs...)
	graphFrom := now.Add(-time.Hour).Truncate(time.Minute)
	lats, calls := graphTraffic(graphFrom, 100)
	appendByUnit(td, lats, calls)
	for i := range 8 {
		eventspan.AppendIncident(td, eventspan.Incident{ID: "otlp:i", Resource: eventspan.Resource{Service: string(rune('a' + i)), Environment: "e"},
			Source: eventspan.IncidentSourceOTLP, Opened: now.Add(-time.Minute).UnixNano()})
		eventspan.AppendCommit(td, eventspan.Commit{Service: string(rune('a' + i)), Repository: "o/r", SHA: strings.Repeat("c", 40),
			Time: now.Add(-time.Minute).UnixNano()})
		eventspan.AppendFlagEvaluations(td, eventspan.FlagEvaluation{Resource: eventspan.Resource{Service: string(rune('a' + i)), Environment: "e"},
			Key: "f", Variant: "on", Time: now.Add(-time.Minute).UnixNano(), TraceID: eventspantest.TraceID(uint64(i + 1))})
		eventspan.AppendOutcomes(td, eventspan.Outcome{Resource: eventspan.Resource{Service: string(rune('a' + i)), Environment: "e"},
			Name: "purchase", SessionID: "s", Time: now.Add(-time.Minute).UnixNano(), TraceID: eventspantest.TraceID(uint64(i + 1))})
	}
	push(t, e, td)
	md := pmetric.NewMetrics()
	for i := range 8 {
		eventspan.AppendUsage(md, eventspan.UsagePoint{Resource: eventspan.Resource{Service: string(rune('a' + i)), Environment: "e", Version: "1"},
			Instance: "i", Metric: "process.cpu.time", Temporality: eventspan.TemporalityCumulative,
			StartTime: now.Add(-time.Hour).UnixNano(), Time: now.Add(-time.Minute).UnixNano(), Value: 1})
	}
	if err := e.pushMetrics(tctx(t), md); err != nil {
		t.Fatal(err)
	}

	count := func(table string) (perNode []uint64) {
		for _, n := range c.All() {
			conn := n.Conn(t, cfg.Database)
			if err := conn.Exec(tctx(t), "SYSTEM SYNC REPLICA "+table+schema.LocalSuffix); err != nil {
				t.Fatal(err)
			}
			var k uint64
			if err := conn.QueryRow(tctx(t), "SELECT count() FROM "+table+schema.LocalSuffix).Scan(&k); err != nil {
				t.Fatal(err)
			}
			perNode = append(perNode, k)
		}
		return perNode
	}
	before := count(schema.TableLatencyEvents)
	if n := uint64(400 + len(lats)); before[0] != before[1] || before[2] != before[3] || before[0] == 0 || before[2] == 0 || before[0]+before[2] != n {
		t.Fatalf("latency_events_local per node (shard 1 ×2, shard 2 ×2) = %v, want the %d rows split over both shards, replicas equal", before, n)
	}
	calling := count(schema.TableCallEvents)
	if calling[0] != calling[1] || calling[2] != calling[3] || calling[0]+calling[2] != uint64(len(calls)) {
		t.Fatalf("call_events_local per node = %v, want the %d calls, replicas equal", calling, len(calls))
	}
	// Callers and callees on both shards: a join on one shard alone would
	// miss callees.
	units := func(n *chtest.Server) string {
		var us []string
		rows, err := n.Conn(t, cfg.Database).Query(tctx(t), "SELECT DISTINCT service FROM latency_events_local WHERE service IN ('frontend', 'checkout', 'payments') ORDER BY service")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var u string
			if err := rows.Scan(&u); err != nil {
				t.Fatal(err)
			}
			us = append(us, u)
		}
		return strings.Join(us, ",")
	}
	if u1, u2 := units(c.Nodes[0][0]), units(c.Nodes[1][0]); u1 == "" || u2 == "" {
		t.Fatalf("the graph's units are all on one shard (shard 1: %q, shard 2: %q)", u1, u2)
	}
	want := wantGraph(lats, calls, "production")
	for _, n := range []*chtest.Server{c.Nodes[0][0], c.Nodes[1][1]} {
		opts, err := clickhouse.ParseDSN(chcluster.ReaderDSN(n, cfg.Database))
		if err != nil {
			t.Fatal(err)
		}
		ro, err := clickhouse.Open(opts)
		if err != nil {
			t.Fatal(err)
		}
		defer ro.Close()
		if got := readGraph(t, ro, "production", graphFrom, graphFrom.Add(101*time.Second)); !reflect.DeepEqual(got, want) {
			t.Errorf("graph through %s:\n got %+v\nwant %+v", n.Addr(), got, want)
		}
		// Without GLOBAL the callees' subquery is double-distributed.
		var got []edge
		err = ro.Select(tctx(t), &got, strings.Replace(graphQuery(t), "GLOBAL ANY LEFT JOIN", "ANY LEFT JOIN", 1),
			"production", graphFrom.Add(-time.Minute).Unix(), graphFrom.Add(102*time.Second).Unix(),
			"production", graphFrom.Unix(), graphFrom.Add(101*time.Second).Unix())
		if err == nil || !strings.Contains(err.Error(), "Double-distributed") {
			t.Errorf("without GLOBAL through %s: %v, %+v; want it refused (docs/clickhouse.md says why GLOBAL)", n.Addr(), err, got)
		}
	}

	for _, rt := range schema.RetentionTables {
		if k := count(rt.Table); k[0]+k[2] == 0 {
			t.Fatalf("%s_local is empty before the sweep: %v", rt.Table, k)
		}
	}

	dropped, err := e.sweepRetention(tctx(t), now.AddDate(0, 0, 10))
	if err != nil || dropped < len(schema.RetentionTables) {
		t.Fatalf("sweep dropped %d partitions, %v", dropped, err)
	}
	for _, rt := range schema.RetentionTables {
		for i, k := range count(rt.Table) {
			if k != 0 {
				t.Errorf("%s_local on node %d holds %d rows after the sweep", rt.Table, i, k)
			}
		}
	}
}
