package e2e

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// rssBytes is the process's resident set size.
func rssBytes(t testing.TB, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			kb, err := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			require.NoError(t, err)
			return kb * 1024
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

const overloadConfig = `
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: {{OTLP}}
processors:
  memory_limiter:
    check_interval: 100ms
    limit_mib: 400
    spike_limit_mib: 100
  changelens:
exporters:
  changelens:
    endpoints: ["${env:CLICKHOUSE_ENDPOINT}"]
    retry_on_failure: {enabled: true, max_elapsed_time: 0}
    sending_queue:
      enabled: true
      sizer: items
      queue_size: 50000
      block_on_overflow: false
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces/changelens:
      receivers: [otlp]
      processors: [memory_limiter, changelens]
      exporters: [changelens]
`

// TestOverloadIsBounded: with ClickHouse unreachable and clients sending as
// fast as they can, the collector refuses what it cannot queue (the clients
// see errors, i.e. backpressure) and its memory stays bounded.
func TestOverloadIsBounded(t *testing.T) {
	t.Parallel()
	col := startCollector(t, overloadConfig, fmt.Sprintf("CLICKHOUSE_ENDPOINT=127.0.0.1:%d", freePort(t)))
	conn, err := grpc.NewClient(col.otlpAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	client := ptraceotlp.NewGRPCClient(conn)
	req := ptraceotlp.NewExportRequestFromTraces(loadBatch(time.Now().Add(-time.Minute), 1))

	var accepted, refused atomic.Int64
	var peak atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
				_, err := client.Export(rctx, req)
				rcancel()
				if err == nil {
					accepted.Add(1)
				} else if ctx.Err() == nil {
					refused.Add(1)
				}
			}
		}()
	}
	for ctx.Err() == nil {
		if rss := rssBytes(t, col.cmd.Process.Pid); rss > peak.Load() {
			peak.Store(rss)
		}
		time.Sleep(100 * time.Millisecond)
	}
	wg.Wait()
	t.Logf("accepted %d and refused %d batches of 1000 spans; peak RSS %d MiB", accepted.Load(), refused.Load(), peak.Load()>>20)

	assert.Greater(t, refused.Load(), int64(0), "a full queue must push back on clients")
	// Queue (50k events) + memory_limiter (400 MiB) bound it; allow the Go runtime's slack.
	assert.Less(t, peak.Load(), int64(600<<20), "memory must stay bounded under overload")
	select {
	case <-col.exited:
		t.Fatal("collector died under overload")
	default:
	}
}
