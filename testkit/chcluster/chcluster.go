// Package chcluster starts a real replicated ClickHouse cluster on one
// machine for tests: ZooKeeper (Debian's zookeeper package, 3.8) and
// 2 shards × 2 replicas of clickhouse-server, each in a temporary directory
// on free ports.
//
// The nodes are configured with the files of deploy/cluster — the example
// users copy: config.d's remote_servers, zookeeper and macros, with only the
// host names and ports of the example (ch-<shard>-<replica>:9000,
// zk-1:2181) rewritten to this machine's 127.0.0.1 and free ports and each
// node's macros in the example's form, and users.d's writer and reader
// (WriterUser, ReaderUser). A test of the cluster is thereby a test of the
// example.
//
// The cluster always runs clickhouse-server whatever CHTEST_ENGINE says: the
// embedded 26.x engine of the second test leg has no Keeper. Missing
// ZooKeeper or clickhouse-server fails the test (it does not skip).
package chcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/changelens/changelens/testkit/chtest"
)

// Name is the cluster's name in remote_servers (deploy/cluster's).
const Name = "changelens"

// The example's users (deploy/cluster/users.d) and their placeholder
// passwords.
const (
	WriterUser     = "changelens_writer"
	WriterPassword = "change-me"
	ReaderUser     = "changelens_reader"
	ReaderPassword = "change-me-too"
)

// Shards and Replicas are the cluster's shape.
const (
	Shards   = 2
	Replicas = 2
)

// Cluster is a running ZooKeeper and Shards × Replicas servers.
type Cluster struct {
	ZooKeeper *ZooKeeper
	// Nodes[s][r] is replica r+1 of shard s+1 (ch-<s+1>-<r+1> of the example).
	Nodes [Shards][Replicas]*chtest.Server
}

// New starts the cluster in a temporary directory; it is stopped at
// tb.Cleanup.
func New(tb testing.TB) *Cluster {
	tb.Helper()
	c, err := Start(tb.TempDir())
	if c != nil {
		tb.Cleanup(func() {
			if err := c.Stop(); err != nil {
				tb.Errorf("chcluster: %v", err)
			}
		})
	}
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// Start starts ZooKeeper and the four nodes with their data under root and
// waits until ON CLUSTER DDL completes on every node. On error the returned
// cluster (if not nil) holds what was started: Stop it.
func Start(root string) (*Cluster, error) {
	zk, err := StartZooKeeper(filepath.Join(root, "zk"))
	if err != nil {
		return nil, err
	}
	c := &Cluster{ZooKeeper: zk}
	example, err := exampleConfig()
	if err != nil {
		return c, err
	}
	type ports struct{ tcp, http, interserver int }
	var p [Shards][Replicas]ports
	hostPort := map[string]int{}
	for s := range Shards {
		for r := range Replicas {
			for _, dst := range []*int{&p[s][r].tcp, &p[s][r].http, &p[s][r].interserver} {
				if *dst, err = chtest.FreePort(); err != nil {
					return c, err
				}
			}
			hostPort[nodeName(s, r)] = p[s][r].tcp
		}
	}
	remote := rewriteHosts(example.remoteServers, hostPort)
	zookeeper := rewriteHosts(example.zookeeper, map[string]int{"zk-1": zk.Port})
	if strings.Contains(remote, "ch-") || strings.Contains(zookeeper, "zk-1") {
		return c, fmt.Errorf("chcluster: deploy/cluster/config.d names hosts the harness does not know:\n%s\n%s", remote, zookeeper)
	}
	for s := range Shards {
		for r := range Replicas {
			dir := filepath.Join(root, nodeName(s, r))
			node, err := chtest.NewNode(dir, p[s][r].tcp, p[s][r].http, map[string]string{
				"config.d/remote_servers.xml": remote,
				"config.d/zookeeper.xml":      zookeeper,
				"config.d/macros.xml":         example.macros(s, r),
				"users.d/changelens.xml":      example.users,
				// Every node on one host: replicas fetch parts from each
				// other over distinct interserver ports.
				"config.d/interserver.xml": fmt.Sprintf("<?xml version=\"1.0\"?>\n<yandex>\n    <interserver_http_host>127.0.0.1</interserver_http_host>\n"+
					"    <interserver_http_port>%d</interserver_http_port>\n</yandex>\n", p[s][r].interserver),
			})
			if err != nil {
				return c, err
			}
			c.Nodes[s][r] = node
		}
	}
	for _, n := range c.All() {
		if err := c.Revive(n); err != nil {
			return c, err
		}
	}
	return c, c.waitDDL()
}

// Revive starts node n (stopped, killed or never started) and waits until
// it has a working ZooKeeper session. 18.16 has a defect here: when its
// first connection to ZooKeeper times out — on a loaded machine, as under
// make test — its DDL worker dereferences the missing session and the
// server dies with SIGSEGV seconds after it began answering. Revive starts
// such a node again (the same data), up to three times, so that the tests
// test changelens rather than that defect; a real deployment's supervisor
// (systemd, Kubernetes) does the same.
func (c *Cluster) Revive(n *chtest.Server) error {
	var last error
	for attempt := 0; attempt < 4; attempt++ {
		if !n.Running() {
			if err := n.Launch(); err != nil {
				last = err
				continue
			}
		}
		if last = zkSession(n); last == nil {
			// Stays up past the DDL worker's first steps.
			time.Sleep(500 * time.Millisecond)
			if n.Running() {
				return nil
			}
			last = fmt.Errorf("chcluster: %s exited after connecting to ZooKeeper", n.Addr())
		}
	}
	return fmt.Errorf("chcluster: %s did not stay up with a ZooKeeper session: %w", n.Addr(), last)
}

// zkSession waits up to 20 s until n answers a query that needs ZooKeeper.
func zkSession(n *chtest.Server) error {
	opts := n.Options()
	opts.DialTimeout = time.Second
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return err
	}
	defer conn.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var k uint64
		err := conn.QueryRow(ctx, "SELECT count() FROM system.zookeeper WHERE path = '/'").Scan(&k)
		cancel()
		if err == nil {
			return nil
		}
		if !n.Running() || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitDDL waits until an ON CLUSTER statement completes on every node (each
// node's DDL worker is up).
func (c *Cluster) waitDDL() error {
	conn, err := clickhouse.Open(c.Nodes[0][0].Options())
	if err != nil {
		return err
	}
	defer conn.Close()
	deadline := time.Now().Add(90 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		err := conn.Exec(clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"distributed_ddl_task_timeout": 10})),
			"CREATE DATABASE IF NOT EXISTS chcluster_ready ON CLUSTER "+Name)
		cancel()
		if err == nil {
			return nil
		}
		for _, n := range c.All() {
			if !n.Running() {
				if rerr := c.Revive(n); rerr != nil {
					return rerr
				}
			}
		}
		if time.Now().After(deadline) {
			var logs strings.Builder
			for _, n := range c.All() {
				b, _ := os.ReadFile(n.ErrLogPath())
				fmt.Fprintf(&logs, "\n-- %s %s:\n%s", n.Addr(), n.ErrLogPath(), tail(b))
			}
			return fmt.Errorf("chcluster: ON CLUSTER DDL did not complete on every node: %v%s", err, logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Stop stops every node, then ZooKeeper.
func (c *Cluster) Stop() error {
	var errs []error
	for _, n := range c.All() {
		if n != nil {
			errs = append(errs, n.Shutdown())
		}
	}
	if c.ZooKeeper != nil {
		errs = append(errs, c.ZooKeeper.Stop())
	}
	return errors.Join(errs...)
}

func nodeName(s, r int) string { return fmt.Sprintf("ch-%d-%d", s+1, r+1) }

// All lists every node, shard by shard.
func (c *Cluster) All() []*chtest.Server {
	var out []*chtest.Server
	for s := range Shards {
		for r := range Replicas {
			out = append(out, c.Nodes[s][r])
		}
	}
	return out
}

// ReaderDSN is a DSN of the example's read-only user on node n.
func ReaderDSN(n *chtest.Server, database string) string {
	return n.DSN(ReaderUser, ReaderPassword, database)
}

// Endpoints are every node's native address, for a collector's endpoints.
func (c *Cluster) Endpoints() []string {
	var out []string
	for _, n := range c.All() {
		out = append(out, n.Addr())
	}
	return out
}

type example struct {
	remoteServers, zookeeper, macrosTmpl, users string
}

var (
	shardMacro   = regexp.MustCompile(`<shard>[^<]*</shard>`)
	replicaMacro = regexp.MustCompile(`<replica>[^<]*</replica>`)
)

// macros is the example's macros.xml with node (s, r)'s values.
func (e example) macros(s, r int) string {
	m := shardMacro.ReplaceAllLiteralString(e.macrosTmpl, fmt.Sprintf("<shard>%02d</shard>", s+1))
	return replicaMacro.ReplaceAllLiteralString(m, "<replica>"+nodeName(s, r)+"</replica>")
}

// exampleConfig reads deploy/cluster/config.d.
func exampleConfig() (example, error) {
	root, err := chtest.RepoRoot()
	if err != nil {
		return example{}, err
	}
	var e example
	for name, dst := range map[string]*string{
		"config.d/remote_servers.xml": &e.remoteServers, "config.d/zookeeper.xml": &e.zookeeper,
		"config.d/macros.xml": &e.macrosTmpl, "users.d/changelens.xml": &e.users,
	} {
		b, err := os.ReadFile(filepath.Join(root, "deploy", "cluster", filepath.FromSlash(name)))
		if err != nil {
			return example{}, fmt.Errorf("chcluster: the example cluster config: %w", err)
		}
		*dst = string(b)
	}
	return e, nil
}

var hostPortRE = regexp.MustCompile(`<host>([^<]+)</host>(\s*)<port>\d+</port>`)

// rewriteHosts points every <host>h</host><port>…</port> whose h is in
// ports at 127.0.0.1:ports[h].
func rewriteHosts(xml string, ports map[string]int) string {
	return hostPortRE.ReplaceAllStringFunc(xml, func(m string) string {
		sub := hostPortRE.FindStringSubmatch(m)
		port, ok := ports[sub[1]]
		if !ok {
			return m
		}
		return fmt.Sprintf("<host>127.0.0.1</host>%s<port>%d</port>", sub[2], port)
	})
}
