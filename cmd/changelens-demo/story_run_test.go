package main

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
)

type metricSinkServer struct {
	pmetricotlp.UnimplementedGRPCServer
	mu      sync.Mutex
	batches []pmetric.Metrics
}

func (s *metricSinkServer) Export(_ context.Context, req pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	md := pmetric.NewMetrics()
	req.Metrics().CopyTo(md)
	s.mu.Lock()
	s.batches = append(s.batches, md)
	s.mu.Unlock()
	return pmetricotlp.NewExportResponse(), nil
}

// startSinks serves traces and, when metrics is set, metrics too.
func startSinks(t *testing.T, metrics bool) (string, *sink, *metricSinkServer) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, m := &sink{}, &metricSinkServer{}
	srv := grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(srv, s)
	if metrics {
		pmetricotlp.RegisterGRPCServer(srv, m)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String(), s, m
}

// The story through the real exporters: the backfill's CPU points carry
// the backfill's past timestamps, per instance, as the cost reads need.
func TestStoryOverOTLP(t *testing.T) {
	addr, traces, metrics := startSinks(t, true)
	cfg := testConfig(addr)
	cfg.story, cfg.appRPS = true, 0.5
	res, summary := runDemo(t, cfg)
	if res.failed != 0 || res.exported != res.spans {
		t.Fatalf("spans: %d generated, %d exported, %d failed", res.spans, res.exported, res.failed)
	}
	apps := 0
	for _, r := range flatten(traces.received()) {
		if r.service == appService {
			apps++
		}
	}
	if apps == 0 {
		t.Fatal("no shop-app spans received")
	}
	type series struct {
		version string
		last    time.Time
		start   time.Time
	}
	inst := map[string]*series{}
	for _, md := range metrics.batches {
		for _, rm := range md.ResourceMetrics().All() {
			ra := rm.Resource().Attributes()
			id, version := str(ra, "service.instance.id"), str(ra, "service.version")
			if str(ra, "service.name") != ordersService || str(ra, "deployment.environment.name") != "production" || id == "" {
				t.Fatalf("metric resource %v", ra.AsRaw())
			}
			for _, sm := range rm.ScopeMetrics().All() {
				for _, m := range sm.Metrics().All() {
					if m.Name() != "process.cpu.time" {
						continue
					}
					if m.Sum().AggregationTemporality() != pmetric.AggregationTemporalityCumulative || !m.Sum().IsMonotonic() {
						t.Fatalf("process.cpu.time: %v", m.Sum().AggregationTemporality())
					}
					for _, dp := range m.Sum().DataPoints().All() {
						at := dp.Timestamp().AsTime()
						if at.Before(res.plan.Start) || at.After(res.plan.End) {
							t.Fatalf("point at %s outside the backfill %s…%s", at, res.plan.Start, res.plan.End)
						}
						s := inst[id]
						if s == nil {
							s = &series{version: version, start: dp.StartTimestamp().AsTime()}
							inst[id] = s
						}
						if at.After(s.last) {
							s.last = at
						}
					}
				}
			}
		}
	}
	if len(inst) != 2*ordersInstances {
		t.Fatalf("%d instances sent CPU, want %d", len(inst), 2*ordersInstances)
	}
	for id, s := range inst {
		if !s.last.Equal(res.plan.End) || !s.start.Equal(res.plan.Start) {
			t.Errorf("%s (%s): series %s…%s, want %s…%s", id, s.version, s.start, s.last, res.plan.Start, res.plan.End)
		}
	}
	if !strings.Contains(summary, "Order-screen experiment") || !strings.Contains(summary, "(0 refused)") {
		t.Errorf("summary lacks the story:\n%s", summary)
	}
}

// A collector without a metrics pipeline refuses the metrics: the traces go
// on and the summary says why the cost will be missing.
func TestStoryWithoutMetricsPipeline(t *testing.T) {
	addr, traces, _ := startSinks(t, false)
	cfg := testConfig(addr)
	cfg.story, cfg.appRPS = true, 0.5
	res, summary := runDemo(t, cfg)
	if res.failed != 0 || res.exported != res.spans || len(traces.received()) == 0 {
		t.Fatalf("spans: %d generated, %d exported, %d failed", res.spans, res.exported, res.failed)
	}
	if !strings.Contains(summary, "the collector refused them") {
		t.Errorf("summary does not say the metrics were refused:\n%s", summary)
	}
}
