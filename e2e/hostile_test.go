package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/changelens/changelens/testkit/chtest"
)

// hostileBatch mixes valid spans with malformed and hostile ones. OTLP/gRPC
// through pdata's client, since SDKs refuse to produce most of these.
func hostileBatch(now time.Time) (td ptrace.Traces, valid int) {
	td = ptrace.NewTraces()
	add := func(service string, fill func(ptrace.Span)) {
		rs := td.ResourceSpans().AppendEmpty()
		if service != "" {
			rs.Resource().Attributes().PutStr("service.name", service)
		}
		rs.Resource().Attributes().PutStr("service.version", "1.0.0")
		s := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		s.SetKind(ptrace.SpanKindServer)
		s.SetName("GET /x")
		s.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, byte(td.ResourceSpans().Len())})
		s.SetSpanID(pcommon.SpanID{1, 1, 1, 1, 1, 1, 1, byte(td.ResourceSpans().Len())})
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(10 * time.Millisecond)))
		fill(s)
	}
	// Valid, and kept despite being hostile: 10k attributes, invalid UTF-8, huge name.
	add("svc", func(ptrace.Span) {})
	add("svc", func(s ptrace.Span) {
		for i := range 10000 {
			s.Attributes().PutStr("attr."+strings.Repeat("k", i%13)+itoaE2E(i), strings.Repeat("v", 64))
		}
	})
	add("svc\xff\xfe", func(s ptrace.Span) { s.SetName("GET /\xc3\x28bad") })
	add("svc", func(s ptrace.Span) { s.SetName(strings.Repeat("route/", 100000)) })
	valid = 4
	// Dropped and counted.
	add("", func(ptrace.Span) {})                                                                            // missing service.name
	add("svc", func(s ptrace.Span) { s.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(-time.Hour))) }) // negative duration
	add("svc", func(s ptrace.Span) {
		far := time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(far))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(far.Add(time.Second)))
	})
	add("svc", func(s ptrace.Span) { s.SetStartTimestamp(0) })
	return td, valid
}

func itoaE2E(i int) string {
	const digits = "0123456789"
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{digits[i%10]}, b...)
	}
	return string(b)
}

func TestHostileInputIsCountedAndDropped(t *testing.T) {
	t.Parallel()
	ch := chtest.Shared(t)
	db := ch.NewDatabase(t)
	col := startCollector(t, clickhouseConfig(""), chEnv(ch, db)...)

	conn, err := grpc.NewClient(col.otlpAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
	require.NoError(t, err)
	defer conn.Close()
	client := ptraceotlp.NewGRPCClient(conn)

	td, valid := hostileBatch(time.Now().Add(-time.Minute))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = client.Export(ctx, ptraceotlp.NewExportRequestFromTraces(td))
	require.NoError(t, err)

	require.Eventually(t, func() bool {
		return countRows(t, ch, db, "SELECT count() FROM latency_events") >= uint64(valid)
	}, 30*time.Second, 200*time.Millisecond)
	time.Sleep(time.Second)
	assert.Equal(t, uint64(valid), countRows(t, ch, db, "SELECT count() FROM latency_events"))
	assert.Equal(t, uint64(1), countRows(t, ch, db, "SELECT count() FROM latency_events WHERE length(operation) <= 256 AND operation LIKE 'route/%'"),
		"the huge name is cut to max_operation_length")

	assert.Equal(t, 1.0, col.metric(t, "otelcol_processor_changelens_spans_dropped", `reason="missing_service_name"`))
	assert.Equal(t, 2.0, col.metric(t, "otelcol_processor_changelens_spans_dropped", `reason="invalid_timestamps"`))
	assert.Equal(t, 1.0, col.metric(t, "otelcol_processor_changelens_spans_dropped", `reason="future_timestamp"`))

	// Still alive and serving.
	select {
	case <-col.exited:
		t.Fatal("collector died")
	default:
	}
	ok, _ := hostileBatch(time.Now())
	_, err = client.Export(ctx, ptraceotlp.NewExportRequestFromTraces(ok))
	require.NoError(t, err)
}
