package changelenswebhookreceiver

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/changelens/changelens/processor/changelensprocessor"
	"github.com/changelens/changelens/receiver/changelenswebhookreceiver/internal/metadata"
)

// countingSink counts spans and keeps nothing, so a long run measures the
// receiver and not a growing slice.
func countingSink(n *atomic.Int64) consumer.Traces {
	c, _ := consumer.NewTraces(func(_ context.Context, td ptrace.Traces) error {
		n.Add(int64(td.SpanCount()))
		return nil
	})
	return c
}

func benchProcessor(b *testing.B, next consumer.Traces) consumer.Traces {
	pf := changelensprocessor.NewFactory()
	p, err := pf.CreateTraces(context.Background(), processortest.NewNopSettings(pf.Type()), pf.CreateDefaultConfig(), next)
	require.NoError(b, err)
	require.NoError(b, p.Start(context.Background(), componenttest.NewNopHost()))
	b.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	return p
}

func benchReceiver(b *testing.B, next consumer.Traces) *webhookReceiver {
	r, err := newReceiver(receivertest.NewNopSettings(metadata.Type), testConfig(), next)
	require.NoError(b, err)
	return r
}

// BenchmarkWebhook: deliveries a second through the receiver's HTTP handler
// (authentication, decoding, the span) into a sink, and through the
// changelens processor too; beside them the same number of the equivalent
// OTLP deploy spans (protobuf, one span per request, decoded as an OTLP
// receiver does) through the processor. The incident sources' deliveries
// are PagerDuty's documented example (one incident) and the Alertmanager
// notification of two alerts (two incident events).
func BenchmarkWebhook(b *testing.B) {
	all := fixtureDeliveries(b)
	incidents := incidentDeliveries(b)
	// GitHub's documented example, Argo CD, CDEvents; PagerDuty triggered,
	// Alertmanager firing.
	deliveries := []fixtureDelivery{all[0], all[2], all[3], incidents[0], incidents[2]}
	spansOf := map[string]int64{sourceAlertmanager: 2}
	run := func(b *testing.B, r *webhookReceiver, d fixtureDelivery, spans *atomic.Int64) {
		per := max(spansOf[d.source], 1)
		req := deliveryRequest(d)
		rd := bytes.NewReader(d.body)
		w := &discardWriter{h: http.Header{}}
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			rd.Reset(d.body)
			req.Body = readCloser{rd}
			w.status = 0
			r.handler.ServeHTTP(w, req)
			if w.status != http.StatusOK {
				b.Fatalf("%s answered %d", d.path, w.status)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
		if spans.Load() != per*int64(b.N) {
			b.Fatalf("%d spans passed on for %d deliveries", spans.Load(), b.N)
		}
	}
	for _, d := range deliveries {
		b.Run("webhook/"+d.source+"/sink", func(b *testing.B) {
			var n atomic.Int64
			run(b, benchReceiver(b, countingSink(&n)), d, &n)
		})
		b.Run("webhook/"+d.source+"/processor", func(b *testing.B) {
			var n, events atomic.Int64
			run(b, benchReceiver(b, countingThrough(&n, benchProcessor(b, countingSink(&events)))), d, &n)
			if events.Load() != max(spansOf[d.source], 1)*int64(b.N) {
				b.Fatalf("%d events for %d deliveries", events.Load(), b.N)
			}
		})
	}
	b.Run("otlp/processor", func(b *testing.B) {
		// The GitHub delivery's span as a CI system would send it over OTLP.
		var captured ptrace.Traces
		capture, _ := consumer.NewTraces(func(_ context.Context, td ptrace.Traces) error { captured = td; return nil })
		gh := deliveries[0]
		w := httptest.NewRecorder()
		benchReceiver(b, capture).handler.ServeHTTP(w, deliveryRequest(gh))
		require.Equal(b, http.StatusOK, w.Code)
		require.Equal(b, 1, captured.SpanCount())
		wire, err := ptraceotlp.NewExportRequestFromTraces(captured).MarshalProto()
		require.NoError(b, err)

		var n atomic.Int64
		var events atomic.Int64
		p := countingThrough(&n, benchProcessor(b, countingSink(&events)))
		n.Store(0)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			req := ptraceotlp.NewExportRequest()
			if err := req.UnmarshalProto(wire); err != nil {
				b.Fatal(err)
			}
			if err := p.ConsumeTraces(context.Background(), req.Traces()); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
		if events.Load() != int64(b.N) {
			b.Fatalf("%d events for %d spans", events.Load(), b.N)
		}
	})
}

func deliveryRequest(d fixtureDelivery) *http.Request {
	req := httptest.NewRequest(http.MethodPost, d.path, bytes.NewReader(d.body))
	for i := 0; i+1 < len(d.headers); i += 2 {
		req.Header.Set(d.headers[i], d.headers[i+1])
	}
	return req
}

// countingThrough counts the spans handed to next.
func countingThrough(n *atomic.Int64, next consumer.Traces) consumer.Traces {
	c, _ := consumer.NewTraces(func(ctx context.Context, td ptrace.Traces) error {
		n.Add(int64(td.SpanCount()))
		return next.ConsumeTraces(ctx, td)
	}, consumer.WithCapabilities(consumer.Capabilities{MutatesData: true}))
	return c
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// discardWriter is a ResponseWriter that keeps the status only.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(s int)           { w.status = s }
