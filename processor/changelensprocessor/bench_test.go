package changelensprocessor

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/connector/spanmetricsconnector"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/changelens/changelens/internal/eventspan"
	"github.com/changelens/changelens/processor/changelensprocessor/internal/metadata"
)

// benchBatch builds a realistic batch: 4 services (one resource each, with
// the usual SDK resource attributes), each request of a service being a
// SERVER span with HTTP attributes, two CLIENT spans (a database query and
// an HTTP call to a downstream service: the call events of the service
// graph) and one INTERNAL span, each with about ten attributes. So a quarter
// of the spans are latency events and half are call events.
func benchBatch(spans int, at time.Time) ptrace.Traces {
	td := ptrace.NewTraces()
	services := []string{"checkout", "cart", "search", "payments"}
	per := spans / len(services)
	seq := uint64(0)
	for si, svc := range services {
		rs := td.ResourceSpans().AppendEmpty()
		ra := rs.Resource().Attributes()
		ra.PutStr("service.name", svc)
		ra.PutStr("service.version", "1.4.2")
		ra.PutStr("deployment.environment.name", "production")
		ra.PutStr("service.instance.id", fmt.Sprintf("%s-7d9f8c6b5-x%d", svc, si))
		ra.PutStr("telemetry.sdk.name", "opentelemetry")
		ra.PutStr("telemetry.sdk.language", "go")
		ra.PutStr("telemetry.sdk.version", "1.47.0")
		ra.PutStr("host.name", "node-12")
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp")
		for i := 0; i < per; i++ {
			seq++
			s := ss.Spans().AppendEmpty()
			var tid pcommon.TraceID
			binary.BigEndian.PutUint64(tid[:8], seq*2654435761)
			binary.BigEndian.PutUint64(tid[8:], seq)
			s.SetTraceID(tid)
			var sid pcommon.SpanID
			binary.BigEndian.PutUint64(sid[:], seq)
			s.SetSpanID(sid)
			start := at.Add(time.Duration(i) * time.Millisecond)
			s.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
			s.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Duration(5+i%40) * time.Millisecond)))
			a := s.Attributes()
			switch i % 4 {
			case 0:
				s.SetKind(ptrace.SpanKindServer)
				s.SetParentSpanID(pcommon.SpanID{9, 9, 9, 9, 9, 9, 9, byte(i)})
				route := []string{"/api/items/{id}", "/api/cart", "/api/search", "/healthz"}[i%16/4]
				s.SetName("GET " + route)
				a.PutStr("http.request.method", "GET")
				a.PutStr("http.route", route)
				a.PutInt("http.response.status_code", []int64{200, 200, 200, 503}[i%16/4])
				a.PutStr("url.path", "/api/items/42")
				a.PutStr("url.scheme", "https")
				a.PutStr("server.address", "shop.example.com")
				a.PutInt("server.port", 443)
				a.PutStr("network.protocol.version", "1.1")
				a.PutStr("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64)")
				a.PutStr("client.address", "10.1.2.3")
			case 1, 2:
				s.SetKind(ptrace.SpanKindClient)
				s.SetParentSpanID(sid)
				if i%8 < 4 {
					s.SetName("SELECT shop.items")
					a.PutStr("db.system.name", "postgresql")
					a.PutStr("db.namespace", "shop")
					a.PutStr("db.operation.name", "SELECT")
					a.PutStr("db.collection.name", "items")
					a.PutStr("db.query.text", "SELECT * FROM items WHERE id = $1")
					a.PutStr("server.address", "db-1")
					a.PutInt("server.port", 5432)
				} else {
					s.SetName("GET")
					a.PutStr("http.request.method", "GET")
					a.PutInt("http.response.status_code", 200)
					a.PutStr("url.full", "http://inventory:8080/stock/42")
					a.PutStr("server.address", "inventory")
					a.PutInt("server.port", 8080)
				}
				a.PutStr("network.peer.address", "10.0.0.7")
				a.PutInt("network.peer.port", 40000)
				a.PutStr("thread.name", "worker-3")
			default:
				s.SetKind(ptrace.SpanKindInternal)
				s.SetParentSpanID(sid)
				s.SetName("render")
				for k := range 10 {
					a.PutStr("app.attr."+string(rune('a'+k)), "value")
				}
			}
		}
	}
	return td
}

// runPerSpan feeds copies of batch to consume and reports ns and allocations
// per span. Each copy is decoded from the batch's OTLP protobuf, with the
// timer stopped, just before it is consumed: in a collector a batch reaches
// the processor right after the receiver decoded it, so it is in cache, and
// its attribute arrays have the spare room decoding leaves (CopyTo would size
// them exactly, so every attribute a component adds, such as a call event's
// mark, would pay a growth no collector pays). Automatic GC is off and garbage is
// collected every 64 iterations with the timer stopped — otherwise marking
// the copies' garbage runs beside the timed code — and the copies'
// allocations are subtracted, so neither is charged to the component under
// test. (That also spares each component the GC cost of its own allocations,
// which favours the one allocating more: the anchor.)
func runPerSpan(b *testing.B, batch ptrace.Traces, consume func(ptrace.Traces) error) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	spans := batch.SpanCount()
	wire, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(batch)
	if err != nil {
		b.Fatal(err)
	}
	var ms runtime.MemStats
	var copyMallocs uint64
	runtime.ReadMemStats(&ms)
	startMallocs := ms.Mallocs
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if i%64 == 0 {
			runtime.GC()
		}
		runtime.ReadMemStats(&ms)
		before := ms.Mallocs
		td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(wire)
		if err != nil {
			b.Fatal(err)
		}
		runtime.ReadMemStats(&ms)
		copyMallocs += ms.Mallocs - before
		b.StartTimer()
		if err := consume(td); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&ms)
	mallocs := float64(ms.Mallocs-startMallocs) - float64(copyMallocs)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*spans), "ns/span")
	b.ReportMetric(mallocs/float64(b.N*spans), "allocs/span")
}

// benchProcessor starts the processor with the default configuration as
// changed by mutate (nil: unchanged).
func benchProcessor(b *testing.B, mutate func(*Config)) processor.Traces {
	cfg := defaultConfig()
	if mutate != nil {
		mutate(cfg)
	}
	p, err := NewFactory().CreateTraces(context.Background(), processortest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	return p
}

// BenchmarkPerSpan runs the changelens processor and contrib's
// spanmetricsconnector (the anchor) on identical batches in one run.
// changelens-graph-off is the processor without call events (service_graph
// disabled: its CLIENT spans are dropped), as it was before them, beside the
// default (changelens) that keeps them.
func BenchmarkPerSpan(b *testing.B) {
	at := time.Now().Add(-time.Minute)
	for _, n := range []int{100, 1000} {
		batch := benchBatch(n, at)
		b.Run(fmt.Sprintf("changelens-graph-off/spans=%d", n), func(b *testing.B) {
			p := benchProcessor(b, func(c *Config) { c.ServiceGraph.Enabled = false })
			runPerSpan(b, batch, func(td ptrace.Traces) error { return p.ConsumeTraces(context.Background(), td) })
		})
		b.Run(fmt.Sprintf("changelens/spans=%d", n), func(b *testing.B) {
			p := benchProcessor(b, nil)
			runPerSpan(b, batch, func(td ptrace.Traces) error { return p.ConsumeTraces(context.Background(), td) })
		})
		// The same batch with a feature-flag evaluation on every request (the
		// SERVER spans, a quarter of all): cohort dimensions recorded on
		// every latency event.
		flagged := ptrace.NewTraces()
		batch.CopyTo(flagged)
		i := 0
		for _, rs := range flagged.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, s := range ss.Spans().All() {
					if s.Kind() == ptrace.SpanKindServer {
						e := s.Events().AppendEmpty()
						e.SetName("feature_flag.evaluation")
						e.Attributes().PutStr("feature_flag.key", "new-checkout")
						e.Attributes().PutStr("feature_flag.result.variant", []string{"on", "off"}[i%2])
						i++
					}
				}
			}
		}
		b.Run(fmt.Sprintf("changelens-flags/spans=%d", n), func(b *testing.B) {
			p := benchProcessor(b, nil)
			runPerSpan(b, flagged, func(td ptrace.Traces) error { return p.ConsumeTraces(context.Background(), td) })
		})
		// The same evaluations as evaluation spans (OpenFeature's
		// JavaScript SpanHook): the INTERNAL span of every request becomes
		// one, a child of the request's SERVER span (same trace), to which
		// it is credited.
		evalSpans := ptrace.NewTraces()
		batch.CopyTo(evalSpans)
		i = 0
		for _, rs := range evalSpans.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				var server ptrace.Span
				for _, s := range ss.Spans().All() {
					if s.Kind() == ptrace.SpanKindServer {
						server = s
					}
					if s.Kind() == ptrace.SpanKindInternal {
						s.SetTraceID(server.TraceID())
						s.SetParentSpanID(server.SpanID())
						s.SetName("feature_flag.evaluation")
						s.Attributes().PutStr("feature_flag.key", "new-checkout")
						s.Attributes().PutStr("feature_flag.result.variant", []string{"on", "off"}[i%2])
						i++
					}
				}
			}
		}
		b.Run(fmt.Sprintf("changelens-flag-spans/spans=%d", n), func(b *testing.B) {
			p := benchProcessor(b, nil)
			runPerSpan(b, evalSpans, func(td ptrace.Traces) error { return p.ConsumeTraces(context.Background(), td) })
		})
		// Every request failed (status 500) with an exception recorded
		// where it was thrown: on the request's INTERNAL span, made a child
		// of its SERVER span (same trace), so each error kind is found by
		// the walk up the request's spans — the costliest path.
		failing := errorKindBatch(batch)
		b.Run(fmt.Sprintf("changelens-error-kinds/spans=%d", n), func(b *testing.B) {
			p := benchProcessor(b, nil)
			runPerSpan(b, failing, func(td ptrace.Traces) error { return p.ConsumeTraces(context.Background(), td) })
		})
		// Not a product path: the least work in place that any processor
		// giving changelens's output must do on this batch — read each span's
		// kind, IDs and start time, the method, route and status of the
		// entry spans and the kept spans' names, and drop the rest (pdata's
		// RemoveIf, which resets each dropped span). It is the reference for
		// what a fraction of the anchor can mean on the machine of the run.
		b.Run(fmt.Sprintf("floor/spans=%d", n), func(b *testing.B) {
			runPerSpan(b, batch, floorPass)
		})
		b.Run(fmt.Sprintf("spanmetricsconnector/spans=%d", n), func(b *testing.B) {
			f := spanmetricsconnector.NewFactory()
			cfg := f.CreateDefaultConfig()
			c, err := f.CreateTracesToMetrics(context.Background(), connectortest.NewNopSettings(f.Type()), cfg, consumer.Metrics(consumertest.NewNop()))
			if err != nil {
				b.Fatal(err)
			}
			if err := c.Start(context.Background(), componenttest.NewNopHost()); err != nil {
				b.Fatal(err)
			}
			defer func() { _ = c.Shutdown(context.Background()) }()
			runPerSpan(b, batch, func(td ptrace.Traces) error { return c.ConsumeTraces(context.Background(), td) })
		})
	}
}

var floorSink int

// floorPass is the "floor" sub-benchmark's pass (BenchmarkPerSpan).
func floorPass(td ptrace.Traces) error {
	n := 0
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			ss.Spans().RemoveIf(func(s ptrace.Span) bool {
				k := s.Kind()
				if s.TraceID().IsEmpty() || s.SpanID().IsEmpty() || s.StartTimestamp() == 0 {
					n++
				}
				if k == ptrace.SpanKindServer {
					n += floorEntry(s.Attributes())
				}
				if k == ptrace.SpanKindInternal {
					return true
				}
				if name := s.Name(); name != "" && name[0] == 0 {
					n++
				}
				return false
			})
		}
	}
	floorSink += n
	return nil
}

// floorEntry reads what an entry span gives its operation and error: a
// function of its own, so that ranging over the attributes allocates no
// closure state.
func floorEntry(attrs pcommon.Map) int {
	n := 0
	for key, v := range attrs.All() {
		switch key {
		case "http.request.method", "http.route":
			n += len(v.Str())
		case "http.response.status_code":
			n += int(v.Int())
		}
	}
	return n
}

// errorKindBatch is a copy of batch in which every request failed: its
// SERVER span answered 500 and its INTERNAL span, a child of the SERVER span
// in the request's trace, carries an exception event (one of four types,
// with a message and a stack trace).
func errorKindBatch(batch ptrace.Traces) ptrace.Traces {
	out := ptrace.NewTraces()
	batch.CopyTo(out)
	types := []string{"java.lang.NullPointerException", "java.net.SocketTimeoutException",
		"org.postgresql.util.PSQLException", "java.lang.IllegalStateException"}
	i := 0
	for _, rs := range out.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			var server ptrace.Span
			for _, s := range ss.Spans().All() {
				switch s.Kind() {
				case ptrace.SpanKindServer:
					server = s
					s.Attributes().PutInt("http.response.status_code", 500)
				case ptrace.SpanKindInternal:
					s.SetTraceID(server.TraceID())
					s.SetParentSpanID(server.SpanID())
					e := s.Events().AppendEmpty()
					e.SetName("exception")
					e.SetTimestamp(s.EndTimestamp())
					e.Attributes().PutStr("exception.type", types[i%len(types)])
					e.Attributes().PutStr("exception.message", "request failed")
					e.Attributes().PutStr("exception.stacktrace", "at com.shop.Render.page(Render.java:42)\nat com.shop.Handler.serve(Handler.java:17)")
					i++
				}
			}
		}
	}
	return out
}

// benchLogs is a logs batch of n log records: the log-based evaluations of
// n requests (OpenFeature's JavaScript EventHook) of 4 services, each
// record with the hook's attributes.
func benchLogs(n int, at time.Time) plog.Logs {
	ld := plog.NewLogs()
	services := []string{"checkout", "cart", "search", "payments"}
	per := n / len(services)
	seq := uint64(0)
	for si, svc := range services {
		rl := ld.ResourceLogs().AppendEmpty()
		ra := rl.Resource().Attributes()
		ra.PutStr("service.name", svc)
		ra.PutStr("service.version", "1.4.2")
		ra.PutStr("deployment.environment.name", "production")
		ra.PutStr("service.instance.id", fmt.Sprintf("%s-7d9f8c6b5-x%d", svc, si))
		ra.PutStr("telemetry.sdk.language", "nodejs")
		sl := rl.ScopeLogs().AppendEmpty()
		sl.Scope().SetName("@openfeature/open-telemetry-hooks")
		for i := 0; i < per; i++ {
			seq++
			lr := sl.LogRecords().AppendEmpty()
			lr.SetEventName("feature_flag.evaluation")
			lr.SetTimestamp(pcommon.NewTimestampFromTime(at.Add(time.Duration(i) * time.Millisecond)))
			var tid pcommon.TraceID
			binary.BigEndian.PutUint64(tid[:8], seq*2654435761)
			binary.BigEndian.PutUint64(tid[8:], seq)
			lr.SetTraceID(tid)
			var sid pcommon.SpanID
			binary.BigEndian.PutUint64(sid[:], seq)
			lr.SetSpanID(sid)
			a := lr.Attributes()
			a.PutStr("feature_flag.key", "new-checkout")
			a.PutStr("feature_flag.provider.name", "flagd")
			a.PutStr("feature_flag.result.variant", []string{"on", "off"}[i%2])
			a.PutBool("feature_flag.result.value", i%2 == 0)
			a.PutStr("feature_flag.result.reason", "TARGETING_MATCH")
			a.PutStr("feature_flag.context.id", fmt.Sprintf("user-%d", i%97))
		}
	}
	return ld
}

// BenchmarkPerLogRecord is the logs path: ns and allocations per log
// record of log-based flag evaluations (each kept as a flag evaluation
// event), measured as runPerSpan measures spans.
func BenchmarkPerLogRecord(b *testing.B) {
	at := time.Now().Add(-time.Minute)
	for _, n := range []int{100, 1000} {
		batch := benchLogs(n, at)
		b.Run(fmt.Sprintf("changelens-flag-logs/records=%d", n), func(b *testing.B) {
			p, err := NewFactory().CreateLogs(context.Background(), processortest.NewNopSettings(metadata.Type), defaultConfig(), consumertest.NewNop())
			if err != nil {
				b.Fatal(err)
			}
			if err := p.Start(context.Background(), componenttest.NewNopHost()); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = p.Shutdown(context.Background()) })
			defer debug.SetGCPercent(debug.SetGCPercent(-1))
			wire, err := (&plog.ProtoMarshaler{}).MarshalLogs(batch)
			if err != nil {
				b.Fatal(err)
			}
			var ms runtime.MemStats
			var copyMallocs uint64
			runtime.ReadMemStats(&ms)
			startMallocs := ms.Mallocs
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				if i%64 == 0 {
					runtime.GC()
				}
				runtime.ReadMemStats(&ms)
				before := ms.Mallocs
				ld, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(wire)
				if err != nil {
					b.Fatal(err)
				}
				runtime.ReadMemStats(&ms)
				copyMallocs += ms.Mallocs - before
				b.StartTimer()
				if err := p.ConsumeLogs(context.Background(), ld); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			runtime.ReadMemStats(&ms)
			mallocs := float64(ms.Mallocs-startMallocs) - float64(copyMallocs)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
			b.ReportMetric(mallocs/float64(b.N*n), "allocs/record")
		})
	}
}

// The benchmark measures the mix its comment states: a quarter latency
// events, half call events, a quarter dropped.
func TestBenchBatchMix(t *testing.T) {
	h := newHarness(t, nil)
	h.send(benchBatch(160, time.Now().Add(-time.Minute))) // whole requests: 4 services × 10
	h.stop()
	lat, calls := h.decode()
	assert.Equal(t, 40, len(lat))
	assert.Equal(t, 80, len(calls))
	assert.Equal(t, int64(40), droppedCount(t, h, reasonNotEntry))
}

// The floor keeps what the processor keeps of the benchmark's batch: the
// entry and call spans, not the INTERNAL ones.
func TestBenchFloorKeepsWhatTheProcessorKeeps(t *testing.T) {
	td := benchBatch(160, time.Now().Add(-time.Minute))
	require.NoError(t, floorPass(td))
	assert.Equal(t, 120, td.SpanCount())
}

// The error-kind batch of the benchmark gives every request's latency event
// the exception type of its INTERNAL child.
func TestBenchErrorKinds(t *testing.T) {
	h := newHarness(t, nil)
	h.send(errorKindBatch(benchBatch(160, time.Now().Add(-time.Minute))))
	h.stop()
	lat, _ := h.decode()
	require.Len(t, lat, 40)
	for _, l := range lat {
		assert.True(t, l.Error)
		assert.True(t, strings.HasPrefix(l.ErrorKind, "java.") || strings.HasPrefix(l.ErrorKind, "org."), "kind %q", l.ErrorKind)
	}
}

// The evaluation-span batch of the benchmark credits every evaluation to its
// request's latency event and emits none; the log batch keeps every record.
func TestBenchFlagShapes(t *testing.T) {
	at := time.Now().Add(-time.Minute)
	batch := benchBatch(160, at)
	i := 0
	for _, rs := range batch.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			var server ptrace.Span
			for _, s := range ss.Spans().All() {
				if s.Kind() == ptrace.SpanKindServer {
					server = s
				}
				if s.Kind() == ptrace.SpanKindInternal {
					s.SetTraceID(server.TraceID())
					s.SetParentSpanID(server.SpanID())
					s.SetName("feature_flag.evaluation")
					s.Attributes().PutStr("feature_flag.key", "new-checkout")
					s.Attributes().PutStr("feature_flag.result.variant", []string{"on", "off"}[i%2])
					i++
				}
			}
		}
	}
	h := newHarness(t, nil)
	h.send(batch)
	h.stop()
	flagged := 0
	for _, td := range h.sink.AllTraces() {
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				scope := eventspan.ScopeKind(ss.Scope())
				for _, s := range ss.Spans().All() {
					if _, ok := s.Attributes().Get("changelens.cohort.feature_flag.new-checkout"); ok && eventspan.EventKind(scope, s) == eventspan.KindLatency {
						flagged++
					}
				}
			}
		}
	}
	assert.Equal(t, 40, flagged, "every request's latency event")
	assert.Empty(t, flagEvents(h))

	lh := newLogHarness(t, defaultConfig(), componenttest.NewTelemetry())
	lh.send(t, benchLogs(160, at))
	assert.Equal(t, 160, lh.sink.LogRecordCount())
}
