// Command localcluster runs the test suite's replicated ClickHouse cluster —
// ZooKeeper and 2 shards × 2 replicas configured from deploy/cluster — for
// `CLICKHOUSE_ENGINE=cluster make run`, until it is interrupted.
//
//	localcluster --dir .run/cluster --env .run/cluster.env
//
// Once every node takes ON CLUSTER DDL it writes --env, a shell file of
// CLICKHOUSE_NODE_1…4 (host:port of ch-1-1, ch-1-2, ch-2-1, ch-2-2) and
// ZOOKEEPER (host:port). SIGINT or SIGTERM stops the nodes, then ZooKeeper.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/changelens/changelens/testkit/chcluster"
)

func main() {
	dir := flag.String("dir", "", "directory for ZooKeeper's and the nodes' data (required)")
	env := flag.String("env", "", "file to write the nodes' and ZooKeeper's addresses to (required)")
	flag.Parse()
	if *dir == "" || *env == "" {
		fmt.Fprintln(os.Stderr, "localcluster: --dir and --env are required")
		os.Exit(2)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	abs, err := filepath.Abs(*dir)
	if err == nil {
		err = os.MkdirAll(abs, 0o755)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "localcluster:", err)
		os.Exit(1)
	}
	c, err := chcluster.Start(abs)
	if err != nil {
		if c != nil {
			_ = c.Stop()
		}
		fmt.Fprintln(os.Stderr, "localcluster:", err)
		os.Exit(1)
	}
	var b strings.Builder
	for i, ep := range c.Endpoints() {
		fmt.Fprintf(&b, "CLICKHOUSE_NODE_%d=%s\n", i+1, ep)
	}
	fmt.Fprintf(&b, "ZOOKEEPER=%s\n", c.ZooKeeper.Addr())
	if err := os.WriteFile(*env, []byte(b.String()), 0o644); err != nil {
		_ = c.Stop()
		fmt.Fprintln(os.Stderr, "localcluster:", err)
		os.Exit(1)
	}
	fmt.Printf("localcluster: ZooKeeper %s, nodes %s (cluster %q)\n", c.ZooKeeper.Addr(), strings.Join(c.Endpoints(), " "), chcluster.Name)
	<-sig
	if err := c.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "localcluster:", err)
		os.Exit(1)
	}
}
