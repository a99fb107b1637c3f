package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/changelens/changelens/testkit/chtest"
)

// loadBatch is 1000 spans of 4 services: a quarter SERVER (latency events),
// the rest CLIENT/INTERNAL children, ~10 attributes each.
func loadBatch(at time.Time, seed uint64) ptrace.Traces {
	td := ptrace.NewTraces()
	for si, svc := range []string{"checkout", "cart", "search", "payments"} {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", svc)
		rs.Resource().Attributes().PutStr("service.version", "3.2.1")
		rs.Resource().Attributes().PutStr("deployment.environment.name", "production")
		rs.Resource().Attributes().PutStr("host.name", "node-"+strconv.Itoa(si))
		spans := rs.ScopeSpans().AppendEmpty().Spans()
		for i := range 250 {
			s := spans.AppendEmpty()
			var tid pcommon.TraceID
			binary.BigEndian.PutUint64(tid[:8], seed)
			binary.BigEndian.PutUint64(tid[8:], uint64(si*1000+i))
			s.SetTraceID(tid)
			var sid pcommon.SpanID
			binary.BigEndian.PutUint64(sid[:], seed<<16|uint64(si*1000+i))
			s.SetSpanID(sid)
			start := at.Add(time.Duration(i) * time.Millisecond)
			s.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
			s.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Duration(5+i%50) * time.Millisecond)))
			a := s.Attributes()
			if i%4 == 0 {
				s.SetKind(ptrace.SpanKindServer)
				s.SetName("GET /api/items/{id}")
				a.PutStr("http.request.method", "GET")
				a.PutStr("http.route", "/api/items/{id}")
				a.PutInt("http.response.status_code", 200)
			} else {
				s.SetKind(ptrace.SpanKindClient)
				s.SetParentSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
				s.SetName("SELECT items")
				a.PutStr("db.system.name", "postgresql")
				a.PutStr("db.query.text", "SELECT * FROM items WHERE id = $1")
			}
			for k := range 7 {
				a.PutStr("app.k"+strconv.Itoa(k), "some-value")
			}
		}
	}
	return td
}

// procCPU is the process's user+system CPU time.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

// BenchmarkCollectorThroughput sends batches of 1000 spans over OTLP/gRPC
// into the built collector (changelens processor + ClickHouse exporter) and
// reports spans/s and spans per collector CPU-second (= per core).
func BenchmarkCollectorThroughput(b *testing.B) {
	ch := chtest.Shared(b)
	db := ch.NewDatabase(b)
	col := startCollector(b, clickhouseConfig(""), chEnv(ch, db)...)
	conn, err := grpc.NewClient(col.otlpAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	client := ptraceotlp.NewGRPCClient(conn)
	const clients = 4
	reqs := make([]ptraceotlp.ExportRequest, clients)
	batches := make([]ptrace.Traces, clients)
	for i := range reqs {
		batches[i] = loadBatch(time.Now().Add(-time.Minute), uint64(i))
		reqs[i] = ptraceotlp.NewExportRequestFromTraces(batches[i])
	}
	cpu0 := procCPU(col.cmd.Process.Pid)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	var next int64
	var mu sync.Mutex
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if next >= int64(b.N) {
					mu.Unlock()
					return
				}
				next++
				n := next
				mu.Unlock()
				// Spans never sent before: the exporter's look-up of stored
				// spans finds nothing and everything is stored, as live.
				for _, rs := range batches[c].ResourceSpans().All() {
					for _, ss := range rs.ScopeSpans().All() {
						for _, sp := range ss.Spans().All() {
							id := sp.TraceID()
							binary.BigEndian.PutUint64(id[:8], uint64(n))
							sp.SetTraceID(id)
						}
					}
				}
				if _, err := client.Export(context.Background(), reqs[c]); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	cpu := procCPU(col.cmd.Process.Pid) - cpu0
	spans := float64(b.N) * 1000
	b.ReportMetric(spans/elapsed.Seconds(), "spans/s")
	if cpu > 0 {
		b.ReportMetric(spans/cpu.Seconds(), "spans/cpu-s")
	}
}
