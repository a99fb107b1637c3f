// Package e2e runs the OCB-built otelcol-changelens binary and feeds it from
// real OTLP clients.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"

	"github.com/changelens/changelens/testkit/chtest"
)

// repoRoot is the directory holding go.mod.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := chtest.RepoRoot()
	require.NoError(t, err)
	return root
}

// collectorBinary is the distribution built by `make build`; its absence is a
// failure, not a skip: `make test` builds it first.
func collectorBinary(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(repoRoot(t), "bin", "otelcol-changelens")
	_, err := os.Stat(bin)
	require.NoError(t, err, "the collector binary is missing: run `make build` (make test does)")
	return bin
}

func freePort(t testing.TB) int {
	t.Helper()
	port, err := chtest.FreePort()
	require.NoError(t, err)
	return port
}

// collector is a running otelcol-changelens process.
type collector struct {
	cmd         *exec.Cmd
	otlpAddr    string
	metricsAddr string
	mu          sync.Mutex
	log         bytes.Buffer
	exited      chan struct{}
}

func (c *collector) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.log.Write(p)
}

func (c *collector) output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.log.String()
}

// startCollector writes config (with {{OTLP}} and {{METRICS}} placeholders
// filled) and starts the binary, waiting until it is ready.
func startCollector(t testing.TB, config string, env ...string) *collector {
	t.Helper()
	c := &collector{
		otlpAddr:    fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		metricsAddr: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		exited:      make(chan struct{}),
	}
	host, port, _ := net.SplitHostPort(c.metricsAddr)
	config = strings.NewReplacer("{{OTLP}}", c.otlpAddr, "{{METRICS_HOST}}", host, "{{METRICS_PORT}}", port).Replace(config)
	path := filepath.Join(t.TempDir(), "collector.yaml")
	require.NoError(t, os.WriteFile(path, []byte(config), 0o600))
	cmd := exec.Command(collectorBinary(t), "--config", path)
	cmd.Env = append(os.Environ(), env...)
	c.launch(t, cmd)
	return c
}

// restartCollector starts the same binary again with old's config file and
// ports (after old was killed).
func restartCollector(t testing.TB, old *collector) *collector {
	t.Helper()
	c := &collector{otlpAddr: old.otlpAddr, metricsAddr: old.metricsAddr, exited: make(chan struct{})}
	cmd := exec.Command(old.cmd.Path, old.cmd.Args[1:]...)
	cmd.Env = old.cmd.Env
	c.launch(t, cmd)
	return c
}

// launch starts cmd as c's process and waits until the collector is ready.
func (c *collector) launch(t testing.TB, cmd *exec.Cmd) {
	t.Helper()
	c.cmd = cmd
	c.cmd.Stdout, c.cmd.Stderr = c, c
	require.NoError(t, c.cmd.Start())
	go func() { _ = c.cmd.Wait(); close(c.exited) }()
	t.Cleanup(func() {
		c.stop(t)
		if t.Failed() {
			t.Logf("collector output:\n%s", tail(c.output(), 60))
		}
	})
	// A collector applying the schema ON CLUSTER waits on every node for
	// each statement: 17 s for the 18 migrations on an idle machine, over
	// 300 s while the suite loads it. It logs each migration it applies, so
	// the wait is for progress: stalled means no new output for stall, and
	// a start that keeps progressing still ends within limit.
	const stall, limit = 180 * time.Second, 12 * time.Minute
	began := time.Now()
	last, lastLen := began, 0
	for {
		out := c.output()
		if strings.Contains(out, "Everything is ready") {
			return
		}
		select {
		case <-c.exited:
			t.Fatalf("collector exited during start:\n%s", out)
		default:
		}
		if len(out) != lastLen {
			last, lastLen = time.Now(), len(out)
		}
		require.True(t, time.Since(last) < stall, "collector not ready, no progress for %v:\n%s", stall, out)
		require.True(t, time.Since(began) < limit, "collector not ready after %v:\n%s", limit, out)
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *collector) stop(t testing.TB) {
	select {
	case <-c.exited:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
		t.Errorf("collector did not stop within 30s of SIGTERM")
	}
}

func (c *collector) kill() {
	_ = c.cmd.Process.Kill()
	<-c.exited
}

// metric returns the sum of the Prometheus samples of name whose labels
// contain every given label pair (e.g. `reason="not_entry"`).
func (c *collector) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + c.metricsAddr + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if os.Getenv("E2E_DUMP_METRICS") != "" {
		t.Logf("%s", body)
	}
	var total float64
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if !ok {
			continue
		}
		var v float64
		_, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v)
		require.NoError(t, err, line)
		total += v
	}
	return total
}

func tail(s string, lines int) string {
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

// otlpSink is a real OTLP/gRPC traces server collecting what the collector exports.
type otlpSink struct {
	ptraceotlp.UnimplementedGRPCServer
	addr string
	mu   sync.Mutex
	got  []ptrace.Traces
}

func startSink(t testing.TB) *otlpSink {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &otlpSink{addr: l.Addr().String()}
	srv := grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(srv, s)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	return s
}

func (s *otlpSink) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	td := ptrace.NewTraces()
	req.Traces().CopyTo(td)
	s.mu.Lock()
	s.got = append(s.got, td)
	s.mu.Unlock()
	return ptraceotlp.NewExportResponse(), nil
}

func (s *otlpSink) traces() []ptrace.Traces {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ptrace.Traces(nil), s.got...)
}
