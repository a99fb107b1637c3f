package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/changelens/changelens/internal/schema"
	"github.com/changelens/changelens/testkit/chcluster"
	"github.com/changelens/changelens/testkit/chtest"
)

// The cluster tests run ZooKeeper and 2 shards × 2 replicas of
// clickhouse-server (testkit/chcluster). They run in make test's first leg
// only: the embedded 26.x engine of the second has no Keeper, so the
// Makefile leaves TestCluster* out of that leg.

const clusterDB = "changelens"

// clusterConfig is clickhouseConfig writing to the cluster through every
// node's endpoint (first reachable first), with cluster_name set, as the
// example's writer user.
func clusterConfig(endpoints []string) string {
	// An insert through the Distributed tables (and their views) of four
	// nodes on a busy test machine can take longer than the single-server
	// 5 s; one that times out is retried whole, which only slows it more.
	cfg := strings.Replace(clickhouseConfig(""), "    timeout: 5s\n", "    timeout: 30s\n", 1)
	return strings.Replace(cfg, `    endpoints: ["${env:CLICKHOUSE_ENDPOINT}"]`,
		`    endpoints: ["`+strings.Join(endpoints, `", "`)+`"]
    cluster_name: `+chcluster.Name+`
    username: `+chcluster.WriterUser+`
    password: `+chcluster.WriterPassword, 1)
}

// readClusterAnswers is readAnswers through node as the example's reader.
func readClusterAnswers(t *testing.T, node *chtest.Server, start, now time.Time) answers {
	return readAnswersDSN(t, chcluster.ReaderDSN(node, clusterDB), start, now)
}

// rotate returns s rotated left by k: each collector starts at another node.
func rotate(s []string, k int) []string {
	k %= len(s)
	return append(append([]string{}, s[k:]...), s[:k]...)
}

// TestClusterAnswersEqualSingleServer: the rollouts of TestReplicasAgree
// through three collectors into the replicated cluster (each connected to a
// different node first) and through one collector into a single server
// give the same deployments (IDs, times, verdicts) and DORA figures. The
// collectors create the schema ON CLUSTER concurrently; every local table
// then has its Replicated* engine on all four nodes, both replicas of a
// shard hold the same rows, and one unit's rows are on one shard.
func TestClusterAnswersEqualSingleServer(t *testing.T) {
	c := chcluster.New(t)
	single := chtest.Shared(t)
	start := time.Now().Add(-(replicaHours + 1) * time.Hour).Truncate(time.Hour)
	now := start.Add((replicaHours + 1) * time.Hour)
	spans, deploys := replicaScenario(start)
	// The same rollouts again in a second region: six units, spread over
	// both shards.
	for _, sp := range slices.Clone(spans) {
		sp.service += "-eu"
		spans = append(spans, sp)
	}
	for _, d := range slices.Clone(deploys) {
		d.service += "-eu"
		deploys = append(deploys, d)
	}
	batches := replicaBatches(start, spans, deploys)

	dbOne := single.NewDatabase(t)
	one := dialCollector(t, startCollector(t, clickhouseConfig(""), chEnv(single, dbOne)...))
	var three []*otlpClient
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			col := startCollector(t, clusterConfig(rotate(c.Endpoints(), i)), "CLICKHOUSE_DATABASE="+clusterDB)
			mu.Lock()
			defer mu.Unlock()
			three = append(three, dialCollector(t, col))
		}()
	}
	wg.Wait()
	require.Len(t, three, 3)
	deliver(t, batches, []*otlpClient{one}, 0)
	deliver(t, batches, three, 0)
	waitStored(t, single, dbOne, len(spans))
	waitClusterStored(t, c, len(spans))

	a1 := readAnswers(t, single, dbOne, start, now)
	require.NotEmpty(t, a1.deployments)
	require.NotEmpty(t, a1.summaries)
	require.NotEmpty(t, a1.compare.Metrics)
	// The API reads the Distributed tables through any node.
	for _, node := range []*chtest.Server{c.Nodes[0][0], c.Nodes[1][1]} {
		ac := readClusterAnswers(t, node, start, now)
		assert.Equal(t, a1.deployments, ac.deployments, "deployments on the cluster (via %s) and on one server", node.Addr())
		assert.Equal(t, a1.dora, ac.dora, "DORA on the cluster (via %s) and on one server", node.Addr())
		assert.Equal(t, a1.summaries, ac.summaries, "latency summaries on the cluster (via %s) and on one server", node.Addr())
		assert.Equal(t, a1.series, ac.series, "latency series on the cluster (via %s) and on one server", node.Addr())
		assert.Equal(t, a1.units, ac.units, "units on the cluster (via %s) and on one server", node.Addr())
		assert.Equal(t, a1.compare, ac.compare, "the canary comparison on the cluster (via %s) and on one server", node.Addr())
	}

	ctx := context.Background()
	// Every local table is replicated on every node.
	for _, node := range c.All() {
		var plain []string
		rows, err := node.Conn(t, clusterDB).Query(ctx, "SELECT name, engine FROM system.tables WHERE database = ? AND engine LIKE '%MergeTree'", clusterDB)
		require.NoError(t, err)
		n := 0
		for rows.Next() {
			var name, engine string
			require.NoError(t, rows.Scan(&name, &engine))
			n++
			if !strings.HasPrefix(engine, "Replicated") {
				plain = append(plain, name+" "+engine)
			}
		}
		require.NoError(t, rows.Err())
		rows.Close()
		assert.Empty(t, plain, "%s: tables without replication", node.Addr())
		assert.GreaterOrEqual(t, n, 11, "%s: the schema's tables", node.Addr())
	}
	// Replicas agree; units do not straddle shards.
	unitsOf := [chcluster.Shards]map[string]bool{}
	var total uint64
	for s := range chcluster.Shards {
		total += shardRows(t, c, s)
		unitsOf[s] = map[string]bool{}
		rows, err := c.Nodes[s][0].Conn(t, clusterDB).Query(ctx, "SELECT DISTINCT concat(service, '/', environment) FROM latency_events_local")
		require.NoError(t, err)
		for rows.Next() {
			var u string
			require.NoError(t, rows.Scan(&u))
			unitsOf[s][u] = true
		}
		require.NoError(t, rows.Err())
		rows.Close()
	}
	assert.Equal(t, uint64(len(spans)), total, "rows over the shards")
	for u := range unitsOf[0] {
		assert.False(t, unitsOf[1][u], "unit %s on both shards", u)
	}
	t.Logf("units per shard: %v / %v", unitsOf[0], unitsOf[1])

	// A collector started again later finds the schema applied, whichever
	// node it reaches first: nothing to run.
	again := startCollector(t, clusterConfig(rotate(c.Endpoints(), 3)), "CLICKHOUSE_DATABASE="+clusterDB)
	migrations, err := schema.Migrations(schema.Options{})
	require.NoError(t, err)
	latest := migrations[len(migrations)-1].Version
	assert.Regexp(t, fmt.Sprintf(`"schema_version": %d, "applied": (\[\]|null)`, latest), again.output(), "a restarted collector re-applied migrations")
	assert.NotEmpty(t, unitsOf[0], "shard 1 holds no unit")
	assert.NotEmpty(t, unitsOf[1], "shard 2 holds no unit")
}

// loadSpans sends SERVER spans of eight services at about perSecond spans
// a second (batches of 100) until stop is closed, and returns the number of
// spans whose Export call the collector acknowledged.
func loadSpans(t *testing.T, client *otlpClient, perSecond int, stop <-chan struct{}) int64 {
	t.Helper()
	const batch = 100
	rng := rand.New(rand.NewPCG(2026, 14))
	var acked atomic.Int64
	tick := time.NewTicker(time.Second * batch / time.Duration(perSecond))
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return acked.Load()
		case <-tick.C:
		}
		td := ptrace.NewTraces()
		for svc := range 8 {
			rs := td.ResourceSpans().AppendEmpty()
			res := rs.Resource().Attributes()
			res.PutStr("service.name", fmt.Sprintf("svc-%d", svc))
			res.PutStr("service.version", "1.0.0")
			res.PutStr("deployment.environment.name", "production")
			ss := rs.ScopeSpans().AppendEmpty().Spans()
			for range batch / 8 {
				sp := ss.AppendEmpty()
				var tid [16]byte
				var sid [8]byte
				binary.LittleEndian.PutUint64(tid[:8], rng.Uint64())
				binary.LittleEndian.PutUint64(tid[8:], rng.Uint64())
				binary.LittleEndian.PutUint64(sid[:], rng.Uint64()|1)
				sp.SetTraceID(pcommon.TraceID(tid))
				sp.SetSpanID(pcommon.SpanID(sid))
				sp.SetName("GET /items")
				sp.SetKind(ptrace.SpanKindServer)
				end := time.Now()
				sp.SetStartTimestamp(pcommon.NewTimestampFromTime(end.Add(-time.Duration(10+rng.IntN(40)) * time.Millisecond)))
				sp.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
				sp.Attributes().PutInt("http.response.status_code", 200)
			}
		}
		n := int64(td.SpanCount())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := client.client.Export(ctx, ptraceotlp.NewExportRequestFromTraces(td))
		cancel()
		if err == nil {
			acked.Add(n)
		}
	}
}

// TestClusterReplicaKilledAndZooKeeperStopped: under 2000 spans/s through a
// collector running deploy/cluster/collector.yaml itself (persistent queue,
// the example's writer user) whose first endpoint is ch-1-1, ch-1-1 is SIGKILLed and started
// again, then ZooKeeper is stopped for a minute (every replicated table
// turns read-only: inserts fail and are retried with backoff while the
// queue holds the spans) and started again. Every span the collector
// acknowledged is stored exactly once: count() and uniqExact(span_id)
// through the Distributed table equal the acknowledged spans, and both
// replicas of each shard hold the same rows.
func TestClusterReplicaKilledAndZooKeeperStopped(t *testing.T) {
	c := chcluster.New(t)
	grpcAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	metricsPort := freePort(t)
	cmd := exec.Command(collectorBinary(t), "--config", filepath.Join(repoRoot(t), "deploy/cluster/collector.yaml"))
	cmd.Env = append(os.Environ(), "CHANGELENS_QUEUE_DIR="+t.TempDir(),
		fmt.Sprintf("CHANGELENS_HEALTH_ENDPOINT=127.0.0.1:%d", freePort(t)), "CHANGELENS_OTLP_GRPC_ENDPOINT="+grpcAddr,
		"CHANGELENS_METRICS_HOST=127.0.0.1", fmt.Sprintf("CHANGELENS_METRICS_PORT=%d", metricsPort),
		fmt.Sprintf("CHANGELENS_WEBHOOK_ENDPOINT=127.0.0.1:%d", freePort(t)),
		"CLICKHOUSE_USERNAME="+chcluster.WriterUser, "CLICKHOUSE_PASSWORD="+chcluster.WriterPassword)
	for i, ep := range c.Endpoints() {
		cmd.Env = append(cmd.Env, fmt.Sprintf("CLICKHOUSE_NODE_%d=%s", i+1, ep))
	}
	col := &collector{otlpAddr: grpcAddr, metricsAddr: fmt.Sprintf("127.0.0.1:%d", metricsPort), exited: make(chan struct{})}
	col.launch(t, cmd)
	client := dialCollector(t, col)
	ctx := context.Background()

	stop := make(chan struct{})
	result := make(chan int64, 1)
	go func() { result <- loadSpans(t, client, 2000, stop) }()

	time.Sleep(8 * time.Second)
	victim := c.Nodes[0][0]
	victim.Kill(t)
	t.Logf("ch-1-1 killed")
	time.Sleep(8 * time.Second)
	require.NoError(t, c.Revive(victim))
	t.Logf("ch-1-1 restarted")
	time.Sleep(5 * time.Second)
	require.NoError(t, c.ZooKeeper.Stop())
	t.Logf("ZooKeeper stopped")
	time.Sleep(time.Minute)
	require.NoError(t, c.ZooKeeper.Start())
	t.Logf("ZooKeeper started")
	for _, n := range c.All() {
		if !n.Running() { // as a supervisor would (chcluster.Revive)
			t.Logf("%s exited while ZooKeeper was away; restarting it", n.Addr())
			require.NoError(t, c.Revive(n))
		}
	}
	time.Sleep(8 * time.Second)
	close(stop)
	acked := <-result
	t.Logf("spans acknowledged by the collector: %d", acked)
	require.Greater(t, acked, int64(2000*60), "the load did not run")

	reader := c.Nodes[1][1].Conn(t, clusterDB)
	var count, uniq uint64
	deadline := time.Now().Add(3 * time.Minute)
	for {
		require.NoError(t, reader.QueryRow(ctx, "SELECT count(), uniqExact(trace_id, span_id) FROM latency_events").Scan(&count, &uniq))
		if count >= uint64(acked) || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	time.Sleep(2 * time.Second) // anything still queued would show now
	require.NoError(t, reader.QueryRow(ctx, "SELECT count(), uniqExact(trace_id, span_id) FROM latency_events").Scan(&count, &uniq))
	t.Logf("stored: %d rows, %d distinct spans", count, uniq)
	assert.Equal(t, uint64(acked), count, "rows stored = spans acknowledged")
	assert.Equal(t, uint64(acked), uniq, "distinct spans stored = spans acknowledged")
	// The outages were felt: inserts failed (transiently) and were retried.
	failures := col.metric(t, "otelcol_changelens_exporter_insert_failures", `kind="transient"`)
	t.Logf("transient insert failures retried: %v", failures)
	assert.Greater(t, failures, 0.0, "no insert failed during the outages: the test did not test them")

	for s := range chcluster.Shards {
		shardRows(t, c, s)
	}
}

// shardRows returns the latency events shard s holds, checking that its
// replicas (each synced first) hold the same number.
// waitClusterStored is waitStored through the Distributed table, then waits
// until every replica of every replicated table has caught up: a read
// through the Distributed tables picks one replica per shard, and one that
// is still fetching parts answers with fewer rows (seen: 800 short).
func waitClusterStored(t *testing.T, c *chcluster.Cluster, spans int) {
	t.Helper()
	node := c.Nodes[1][1]
	require.Eventually(t, func() bool {
		return countRows(t, node, clusterDB, "SELECT count() FROM latency_events") >= uint64(spans)
	}, 240*time.Second, 250*time.Millisecond, "the cluster: rows did not arrive")
	time.Sleep(500 * time.Millisecond) // a batch more: nothing else may arrive
	ctx := context.Background()
	for _, n := range c.All() {
		conn := n.Conn(t, clusterDB)
		var tables []string
		rows, err := conn.Query(ctx, "SELECT name FROM system.tables WHERE database = ? AND engine LIKE 'Replicated%'", clusterDB)
		require.NoError(t, err)
		for rows.Next() {
			var name string
			require.NoError(t, rows.Scan(&name))
			tables = append(tables, name)
		}
		require.NoError(t, rows.Err())
		rows.Close()
		require.NotEmpty(t, tables, "%s: no replicated tables", n.Addr())
		for _, tbl := range tables {
			require.NoError(t, conn.Exec(ctx, "SYSTEM SYNC REPLICA `"+clusterDB+"`.`"+tbl+"`"), "%s: %s", n.Addr(), tbl)
		}
	}
	require.Equal(t, uint64(spans), countRows(t, node, clusterDB, "SELECT count() FROM latency_events"), "the cluster")
}

func shardRows(t *testing.T, c *chcluster.Cluster, s int) uint64 {
	t.Helper()
	var counts [chcluster.Replicas]uint64
	for r := range chcluster.Replicas {
		conn := c.Nodes[s][r].Conn(t, clusterDB)
		require.NoError(t, conn.Exec(context.Background(), "SYSTEM SYNC REPLICA latency_events_local"))
		require.NoError(t, conn.QueryRow(context.Background(), "SELECT count() FROM latency_events_local").Scan(&counts[r]))
	}
	assert.Equal(t, counts[0], counts[1], "shard %d's replicas", s+1)
	return counts[0]
}
