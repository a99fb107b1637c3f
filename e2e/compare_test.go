package e2e

import (
	"context"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/usecase"
	"github.com/changelens/changelens/testkit/chtest"
)

// An hour of three units at 10 requests/s each, one OTLP export per minute
// through the built collector (the processor records flag variants and
// api.protocol):
//
//	api  1.0, and a 5 % canary 1.1 that is 1.5× slower
//	web  2.0, the flag new-checkout 50/50 (evaluated in a child span):
//	     "on" fails 3 % of requests, "off" 0.5 %
//	db   3.0, api.protocol http and grpc alternating: an A/A split
const comparePerMinute = 600

func compareBatches(start time.Time) (batches []ptrace.Traces, requests int) {
	r := rand.New(rand.NewPCG(11, 11))
	var seq uint64
	ids := func() (pcommon.TraceID, pcommon.SpanID) {
		seq++
		var tid pcommon.TraceID
		binary.BigEndian.PutUint64(tid[:8], 0xc0ffee)
		binary.BigEndian.PutUint64(tid[8:], seq)
		var sid pcommon.SpanID
		binary.BigEndian.PutUint64(sid[:], seq)
		return tid, sid
	}
	for m := range 60 {
		td := ptrace.NewTraces()
		units := map[string]ptrace.SpanSlice{}
		spansOf := func(service, version string) ptrace.SpanSlice {
			if ss, ok := units[service+"/"+version]; ok {
				return ss
			}
			rs := td.ResourceSpans().AppendEmpty()
			a := rs.Resource().Attributes()
			a.PutStr("service.name", service)
			a.PutStr("service.version", version)
			a.PutStr("deployment.environment.name", "production")
			ss := rs.ScopeSpans().AppendEmpty().Spans()
			units[service+"/"+version] = ss
			return ss
		}
		for i := range comparePerMinute {
			at := start.Add(time.Duration(m)*time.Minute + time.Duration(i)*time.Minute/comparePerMinute)
			for _, service := range []string{"api", "web", "db"} {
				version, slow, errRate, variant, protocol := "", 1.0, 0.01, "", ""
				switch service {
				case "api":
					version = "1.0"
					if r.Float64() < 0.05 {
						version, slow = "1.1", 1.5
					}
				case "web":
					version, variant, errRate = "2.0", "off", 0.005
					if r.Float64() < 0.5 {
						variant, errRate = "on", 0.03
					}
				case "db":
					version, protocol = "3.0", []string{"http", "grpc"}[i%2]
				}
				ss := spansOf(service, version)
				s := ss.AppendEmpty()
				tid, sid := ids()
				s.SetTraceID(tid)
				s.SetSpanID(sid)
				s.SetKind(ptrace.SpanKindServer)
				s.SetName("GET /items")
				d := time.Duration(40e6 * slow * math.Exp(0.35*r.NormFloat64()))
				s.SetStartTimestamp(pcommon.NewTimestampFromTime(at))
				s.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(d)))
				s.Attributes().PutStr("http.request.method", "GET")
				s.Attributes().PutStr("http.route", "/items")
				status := int64(200)
				if r.Float64() < errRate {
					status = 500
				}
				s.Attributes().PutInt("http.response.status_code", status)
				if protocol != "" {
					s.Attributes().PutStr("api.protocol", protocol)
				}
				if variant != "" {
					c := ss.AppendEmpty()
					_, csid := ids()
					c.SetTraceID(tid)
					c.SetSpanID(csid)
					c.SetParentSpanID(sid)
					c.SetKind(ptrace.SpanKindInternal)
					c.SetName("flags")
					c.SetStartTimestamp(s.StartTimestamp())
					c.SetEndTimestamp(s.StartTimestamp() + 1000)
					e := c.Events().AppendEmpty()
					e.SetName("feature_flag.evaluation")
					e.Attributes().PutStr("feature_flag.key", "new-checkout")
					e.Attributes().PutStr("feature_flag.result.variant", variant)
				}
				requests++
			}
		}
		batches = append(batches, td)
	}
	return batches, requests
}

// TestCompareThroughCollector: same-window comparisons of traffic that went
// through the built collector — the canary is WORSE on p95 with an interval
// holding the true +50 %, the flag's on variant WORSE on error rate, the
// A/A split on an attribute NO_DIFFERENCE on every metric, and a canary
// declared with the wrong share a sample-ratio mismatch.
func TestCompareThroughCollector(t *testing.T) {
	ch := chtest.Shared(t)
	start := time.Now().Add(-2 * time.Hour).Truncate(time.Hour)
	batches, requests := compareBatches(start)
	db := ch.NewDatabase(t)
	cfg := strings.Replace(clickhouseConfig(""), "processors:\n  changelens:\n",
		"processors:\n  changelens:\n    cohorts:\n      attributes: [api.protocol]\n", 1)
	c := startCollector(t, cfg, chEnv(ch, db)...)
	deliver(t, batches, []*otlpClient{dialCollector(t, c)}, 0)
	waitStored(t, ch, db, requests)

	svc, err := usecase.Open(context.Background(), ch.DSN(chtest.ReadOnlyUser, chtest.ReadOnlyPassword, db), usecase.Config{CacheSize: -1})
	require.NoError(t, err)
	defer svc.Close()
	compare := func(service, dimension, control, treatment string, share float64) report.Comparison {
		t.Helper()
		c, err := svc.Compare(context.Background(), report.CompareQuery{Service: service, Environment: "production",
			Start: start, End: start.Add(time.Hour), Dimension: dimension, Control: control, Treatment: treatment, ExpectedShare: share})
		require.NoError(t, err)
		return c
	}
	metric := func(c report.Comparison, name string) report.CompareMetric {
		for _, m := range c.Metrics {
			if m.Metric == name {
				return m
			}
		}
		t.Fatalf("no metric %s in %+v", name, c.Metrics)
		return report.CompareMetric{}
	}

	canary := compare("api", "version", "1.0", "1.1", 0.05)
	p95 := metric(canary, "latency_p95_ms")
	t.Logf("canary: %v, p95 %.1f → %.1f ms, %+.3f [%+.3f, %+.3f]", canary.Verdict, p95.Control, p95.Treatment, p95.RelativeChange, p95.CILow, p95.CIHigh)
	assert.Equal(t, report.CompareWorse, canary.Verdict)
	assert.Equal(t, report.CompareWorse, p95.Verdict)
	assert.True(t, p95.CILow <= 0.5 && 0.5 <= p95.CIHigh, "p95 interval [%.3f, %.3f] holds the true +50 %%", p95.CILow, p95.CIHigh)
	assert.False(t, canary.SRM.Mismatch, "a 5 %% canary declared as 5 %%")
	assert.True(t, compare("api", "version", "1.0", "1.1", 0.2).SRM.Mismatch, "a 5 %% canary declared as 20 %%")

	flag := compare("web", "feature_flag.new-checkout", "off", "on", 0.5)
	errs := metric(flag, "error_rate")
	t.Logf("flag: %v, errors %.4f → %.4f (%s, p %.2g)", flag.Verdict, errs.Control, errs.Treatment, errs.Test, errs.PValue)
	assert.Equal(t, report.CompareWorse, flag.Verdict)
	assert.Equal(t, report.CompareWorse, errs.Verdict)
	assert.InDelta(t, 0.5, flag.Treatment.Share, 0.02)

	aa := compare("db", "attribute.api.protocol", "http", "grpc", 0.5)
	assert.Equal(t, report.CompareNoDifference, aa.Verdict)
	for _, m := range aa.Metrics {
		if m.Metric != "request_share" {
			assert.Equal(t, report.CompareNoDifference, m.Verdict, "A/A %s: %+v", m.Metric, m)
		}
	}
	assert.False(t, aa.SRM.Mismatch)
	assert.Equal(t, 60, aa.OverlapMinutes)
}
