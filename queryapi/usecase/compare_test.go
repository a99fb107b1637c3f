package usecase

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/changelens/changelens/internal/schema"

	"github.com/changelens/changelens/processor/changelensprocessor"
	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/store"
	"github.com/changelens/changelens/testkit/chtest"
	"github.com/changelens/changelens/testkit/pipelinetest"
)

func compareMetric(c report.Comparison, name string) report.CompareMetric {
	for _, m := range c.Metrics {
		if m.Metric == name {
			return m
		}
	}
	return report.CompareMetric{}
}

// An hour of traffic at 10 requests/s per unit through the real processor
// and exporter, then same-window comparisons of its cohorts:
//
//	api  1.0 and a 5 % canary 1.1, 1.5× slower
//	web  one version, the flag new-checkout split 50/50: "on" has 3 %
//	     errors against 0.5 %, is 20 % faster and sends 40 % smaller
//	     responses
//	db   3.0 and 3.1 split 50/50, identical (A/A), and across them
//	     api.protocol http/grpc alternating (an A/A on an attribute)
func TestCompareCohorts(t *testing.T) {
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	start := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Hour)
	one := func(name, version string, perMinute int, latency, errRate float64) svcSpec {
		return svcSpec{name: name, env: prod, perMinute: perMinute, phases: []phase{{version: version, latency: latency, errRate: errRate}}}
	}
	sc := &scenario{start: start, length: time.Hour, seed: 42, baseMedian: 40 * time.Millisecond, sigma: 0.35, services: []svcSpec{
		one("api", "1.0", 570, 1, 0.01), one("api", "1.1", 30, 1.5, 0.01),
		one("web", "2.0", 600, 1, 0.005),
		one("db", "3.0", 300, 1, 0.01), one("db", "3.1", 300, 1, 0.01),
	}, ci: []ciSpec{{service: "api", env: prod, version: "1.1", deploy: 30 * time.Minute}}}
	sc.services[2].flag = &flagSpec{key: "new-checkout", share: 0.5, latency: 0.8, errRate: 0.03, sizeX: 0.6}
	sc.services[3].protocols, sc.services[4].protocols = true, true
	p := pipelinetest.New(t, srv.Addr(), db, 1, nil, func(c *changelensprocessor.Config) {
		c.Cohorts.Attributes = []string{"api.protocol"}
	})
	truth := sc.feed(t, p, true)
	p.Close(t)
	dsn := fmt.Sprintf("clickhouse://%s:%s@%s/%s", chtest.ReadOnlyUser, url.QueryEscape(chtest.ReadOnlyPassword), srv.Addr(), db)
	svc := openService(t, dsn, Config{})
	ctx := context.Background()
	q := func(service, control, treatment string, share float64) report.CompareQuery {
		return report.CompareQuery{Service: service, Environment: prod, Start: start, End: start.Add(time.Hour),
			Dimension: schema.DimensionVersion, Control: control, Treatment: treatment, ExpectedShare: share}
	}

	canary, err := svc.Compare(ctx, q("api", "1.0", "1.1", 0.05))
	if err != nil {
		t.Fatal(err)
	}
	p95 := compareMetric(canary, "latency_p95_ms")
	t.Logf("canary: %d minutes, %v; p95 %.1f → %.1f ms, %+.3f [%+.3f, %+.3f], p %.2g; SRM %+v",
		canary.OverlapMinutes, canary.Verdict, p95.Control, p95.Treatment, p95.RelativeChange, p95.CILow, p95.CIHigh, p95.PValue, *canary.SRM)
	if canary.Verdict != report.CompareWorse || p95.Verdict != report.CompareWorse {
		t.Errorf("1.5× canary: %v, p95 %v, want WORSE", canary.Verdict, p95.Verdict)
	}
	if !(p95.CILow <= 0.5 && 0.5 <= p95.CIHigh) {
		t.Errorf("p95 interval [%.3f, %.3f] misses the true +50 %%", p95.CILow, p95.CIHigh)
	}
	if canary.OverlapMinutes < 55 || canary.SRM == nil || canary.SRM.Mismatch {
		t.Errorf("overlap %d, SRM %+v", canary.OverlapMinutes, canary.SRM)
	}
	// Exemplars: a slowest and a failed trace of each cohort (1 % errors).
	for _, c := range []report.Cohort{canary.Control, canary.Treatment} {
		if len(c.SlowestTraceID) != 32 || len(c.FailedTraceID) != 32 || c.SlowestTraceID == c.FailedTraceID {
			t.Errorf("%s exemplars: slowest %q failed %q", c.Value, c.SlowestTraceID, c.FailedTraceID)
		}
	}
	// Per operation, busiest first: the canary is slower on each.
	if len(canary.Operations) != 2 || canary.Operations[0].Operation != "GET /items" || canary.Operations[1].Operation != "POST /orders" {
		t.Fatalf("operations %+v, want GET /items then POST /orders", canary.Operations)
	}
	for _, o := range canary.Operations {
		if o.Verdict != report.CompareWorse || o.OverlapMinutes < 50 || o.Treatment.Requests >= canary.Treatment.Requests {
			t.Errorf("%s: %v over %d minutes, %.0f of %.0f canary requests", o.Operation, o.Verdict, o.OverlapMinutes,
				o.Treatment.Requests, canary.Treatment.Requests)
		}
	}
	if wrong, err := svc.Compare(ctx, q("api", "1.0", "1.1", 0.2)); err != nil || wrong.SRM == nil || !wrong.SRM.Mismatch {
		t.Errorf("a 5 %% canary declared as 20 %%: %v %+v", err, wrong.SRM)
	}

	fq := q("web", "off", "on", 0.5)
	fq.Dimension = "feature_flag.new-checkout"
	flag, err := svc.Compare(ctx, fq)
	if err != nil {
		t.Fatal(err)
	}
	em, p50, size := compareMetric(flag, "error_rate"), compareMetric(flag, "latency_p50_ms"), compareMetric(flag, "response_size_p50_bytes")
	t.Logf("flag: %d minutes, %v; errors %.4f → %.4f %v; p50 %.1f → %.1f %v; response p50 %.0f → %.0f B %+.3f [%+.3f, %+.3f] %v",
		flag.OverlapMinutes, flag.Verdict, em.Control, em.Treatment, em.Verdict, p50.Control, p50.Treatment, p50.Verdict,
		size.Control, size.Treatment, size.RelativeChange, size.CILow, size.CIHigh, size.Verdict)
	if flag.Verdict != report.CompareWorse || em.Verdict != report.CompareWorse {
		t.Errorf("3 %% against 0.5 %% errors: %v, error rate %+v", flag.Verdict, em)
	}
	if p50.Verdict != report.CompareBetter || size.Verdict != report.CompareBetter || !(size.CILow <= -0.4 && -0.4 <= size.CIHigh) {
		t.Errorf("the on variant is 20 %% faster with 40 %% smaller responses: p50 %+v, response size %+v", p50, size)
	}
	if flag.SRM == nil || flag.SRM.Mismatch || flag.Control.Value != "off" || len(flag.Treatment.FailedTraceID) != 32 {
		t.Errorf("flag split: SRM %+v, control %+v, treatment %+v", flag.SRM, flag.Control, flag.Treatment)
	}

	aq := q("db", "http", "grpc", 0.5)
	aq.Dimension = "attribute.api.protocol"
	for _, aq := range []report.CompareQuery{q("db", "3.0", "3.1", 0.5), aq} {
		aa, err := svc.Compare(ctx, aq)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range aa.Metrics {
			if m.Metric != "request_share" && m.Verdict != report.CompareNoDifference {
				t.Errorf("A/A on %s %s: %v (%+v)", aq.Dimension, m.Metric, m.Verdict, m)
			}
		}
		if aa.Verdict != report.CompareNoDifference || aa.SRM.Mismatch || aa.OverlapMinutes < 55 {
			t.Errorf("A/A on %s: %v over %d minutes, SRM %+v", aq.Dimension, aa.Verdict, aa.OverlapMinutes, aa.SRM)
		}
	}

	// A comparison reads its minutes split by operation and merges them for
	// the whole unit: the merge is what the unsplit read answers, for
	// versions (with their sizes from the second table), a flag and an
	// attribute alike.
	st, err := store.Open(ctx, store.Config{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, cq := range []report.CompareQuery{q("api", "1.0", "1.1", 0), q("db", "3.0", "3.1", 0), fq, aq} {
		whole, err := st.CohortMinutes(ctx, cq, false, 10000)
		if err != nil {
			t.Fatal(err)
		}
		split, err := st.CohortMinutes(ctx, cq, true, 10000)
		if err != nil {
			t.Fatal(err)
		}
		merged := store.MergeOperations(split)
		if len(whole) < 110 || len(split) <= len(whole) || fmt.Sprintf("%+v", merged) != fmt.Sprintf("%+v", whole) {
			t.Errorf("%s %s: %d minutes merged from %d split by operation differ from the %d read whole", cq.Service, cq.Dimension,
				len(merged), len(split), len(whole))
		}
		if cq.Dimension == fq.Dimension && (whole[0].RespHistKeys == nil || whole[0].RespP50Bytes <= 0) {
			t.Errorf("flag minutes without response sizes: %+v", whole[0])
		}
	}

	// The CI deploy of the canary: its impact carries the same-window
	// comparison with the version it replaced.
	deps := allDeployments(t, svc, report.DeploymentQuery{Service: "api", Environment: prod, Start: start, End: start.Add(time.Hour)})
	if len(deps) != 1 || deps[0].Version != "1.1" {
		t.Fatalf("api deployments %+v, want the CI deploy of 1.1", deps)
	}
	im, err := svc.Impact(ctx, deps[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if im.Canary == nil || im.Canary.Control.Value != "1.0" || im.Canary.Verdict != report.CompareWorse {
		t.Errorf("impact canary %+v, want 1.1 against 1.0, WORSE", im.Canary)
	}

	dims, err := svc.Cohorts(ctx, report.CohortQuery{Service: "api", Environment: prod, Start: start, End: start.Add(time.Hour)})
	if err != nil || len(dims) != 1 || len(dims[0].Values) != 2 || dims[0].Values[0].Value != "1.0" || dims[0].Values[0].Requests != 570*60 {
		t.Errorf("cohorts %+v, %v: want version 1.0 (34200 requests) then 1.1", dims, err)
	}
	dims, err = svc.Cohorts(ctx, report.CohortQuery{Service: "web", Environment: prod, Start: start, End: start.Add(time.Hour)})
	if err != nil || len(dims) != 2 || dims[0].Dimension != "version" || dims[1].Dimension != "feature_flag.new-checkout" ||
		len(dims[1].Values) != 2 || dims[1].Values[0].Requests+dims[1].Values[1].Requests != 600*60 {
		t.Errorf("web cohorts %+v, %v: want version, then feature_flag.new-checkout with on and off (36000 requests)", dims, err)
	}

	// The in-memory store, given the requests sent, compares alike.
	checkFakeCompares(t, svc, newService(t, fakeFromSpans(sc, truth), &start), []report.CompareQuery{
		q("api", "1.0", "1.1", 0.05), q("api", "1.1", "1.0", 0.95), fq, q("db", "3.0", "3.1", 0.5), aq})

	short := q("api", "1.0", "1.1", 0)
	short.End = start.Add(5 * time.Minute)
	if c, err := svc.Compare(ctx, short); err != nil || c.Verdict != report.CompareInsufficientData {
		t.Errorf("5 minutes: %v %v, want INSUFFICIENT_DATA", c.Verdict, err)
	}
}
