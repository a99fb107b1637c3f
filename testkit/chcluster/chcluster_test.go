package chcluster

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestClusterReplicates: the example's macros and remote_servers make a
// working 2 × 2 cluster: ON CLUSTER DDL reaches every node, a row written
// through a Distributed table lands on one shard and both its replicas.
func TestClusterReplicates(t *testing.T) {
	c := New(t)
	ctx := context.Background()
	n := c.Nodes[0][0]
	n.Exec(t, "CREATE DATABASE IF NOT EXISTS r ON CLUSTER "+Name)
	n.Exec(t, "CREATE TABLE r.t_local ON CLUSTER "+Name+" (k UInt32) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/r/t_local', '{replica}') ORDER BY k")
	n.Exec(t, "CREATE TABLE r.t ON CLUSTER "+Name+" AS r.t_local ENGINE = Distributed('"+Name+"', 'r', 't_local', k)")
	n.Exec(t, "INSERT INTO r.t (k) SELECT toUInt32(number) FROM system.numbers LIMIT 100 SETTINGS insert_distributed_sync = 1")
	var total uint64
	for s := range Shards {
		var counts [Replicas]uint64
		for r := range Replicas {
			conn := c.Nodes[s][r].Conn(t, "r")
			deadline := time.Now().Add(30 * time.Second)
			for {
				if err := conn.QueryRow(ctx, "SELECT count() FROM t_local").Scan(&counts[r]); err != nil {
					t.Fatal(err)
				}
				if counts[r] == 50 || time.Now().After(deadline) {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
		if counts[0] != 50 || counts[1] != 50 {
			t.Errorf("shard %d holds %v rows on its replicas, want 50 on each (k %% 2 shards 100 rows)", s+1, counts)
		}
		total += counts[0]
	}
	var viaDist uint64
	if err := c.Nodes[1][1].Conn(t, "r").QueryRow(ctx, "SELECT count() FROM t").Scan(&viaDist); err != nil || viaDist != 100 || total != 100 {
		t.Errorf("through the Distributed table %d rows (%v), shards %d: want 100", viaDist, err, total)
	}
	for s := range Shards {
		for r := range Replicas {
			var macros string
			if err := c.Nodes[s][r].Conn(t, "default").QueryRow(ctx, "SELECT arrayStringConcat(groupArray(substitution), '/') FROM (SELECT substitution FROM system.macros ORDER BY macro)").Scan(&macros); err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("ch-%d-%d/%02d", s+1, r+1, s+1); macros != want {
				t.Errorf("node %d-%d macros replica/shard = %s, want %s", s+1, r+1, macros, want)
			}
		}
	}
}
