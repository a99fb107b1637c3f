package main

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/changelens/changelens/cmd/changelens-demo/plan"
)

type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

// BenchmarkRequest is the SDK cost of one request with its child spans
// (generation and batching, no OTLP encoding).
func BenchmarkRequest(b *testing.B) {
	benchRequests(b, func(e *emitter) *unitGen { return e.units[0] })
}

// BenchmarkRequestCheckout is the same for checkout in production, the unit
// that runs the feature-flag experiment (one more child span per request).
func BenchmarkRequestCheckout(b *testing.B) {
	benchRequests(b, func(e *emitter) *unitGen {
		for _, g := range e.units {
			if g.key == (plan.UnitKey{Service: "checkout", Environment: plan.Production}) {
				return g
			}
		}
		b.Fatal("no checkout in production")
		return nil
	})
}

// benchRequests emits requests of the unit pick chooses, one a second of
// simulated time, into a batch span processor that discards them, and
// reports ns per span and spans per request.
func benchRequests(b *testing.B, pick func(*emitter) *unitGen) {
	p, err := plan.New(plan.Config{Seed: 1, Start: testEnd.Add(-2 * time.Hour), End: testEnd, Staging: true})
	if err != nil {
		b.Fatal(err)
	}
	bsp := sdktrace.NewBatchSpanProcessor(discardExporter{}, sdktrace.WithBlocking(), sdktrace.WithMaxQueueSize(8192), sdktrace.WithMaxExportBatchSize(2048))
	st := &stats{}
	e, err := newEmitter(p, 2, 1, bsp, st)
	if err != nil {
		b.Fatal(err)
	}
	u, t := pick(e), p.Start
	b.ReportAllocs()
	for b.Loop() {
		e.request(u, t)
		t = t.Add(time.Second)
	}
	_ = bsp.Shutdown(context.Background())
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(st.spans.Load()), "ns/span")
	b.ReportMetric(float64(st.spans.Load())/float64(st.requests.Load()), "spans/req")
}
