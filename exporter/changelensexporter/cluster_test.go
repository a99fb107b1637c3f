package changelensexporter

import (
	"testing"
	"time"

	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/changelens/changelens/internal/schema"
	"github.com/changelens/changelens/testkit/chcluster"
	"github.com/changelens/changelens/testkit/eventspantest"
)

// TestClusterRetention: on the replicated 2 × 2 cluster (make test's first
// leg only; the embedded 26.x engine has no Keeper) the retention sweep
// finds expired days through the Distributed tables and drops them on every
// shard and every replica, for every day-partitioned table.
func TestClusterRetention(t *testing.T) {
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
			Start: now.Add(-time.Duration(i) * time.Second), Duration: time.Millisecond,
			TraceID: eventspantest.TraceID(uint64(i + 1)), SpanID: eventspantest.SpanID(uint64(i + 1))})
	}
	eventspantest.AppendLatency(td, evs...)
	push(t, e, td)

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
	if before[0] != before[1] || before[2] != before[3] || before[0] == 0 || before[2] == 0 || before[0]+before[2] != 400 {
		t.Fatalf("latency_events_local per node (shard 1 ×2, shard 2 ×2) = %v, want the 400 rows split over both shards, replicas equal", before)
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
