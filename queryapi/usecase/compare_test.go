package usecase

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/changelens/changelens/queryapi/report"
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
// and exporter, then same-window comparisons of its versions:
//
//	api  1.0 and a 5 % canary 1.1, 1.5× slower
//	web  2.0 and 2.1 split 50/50, 0.5 % against 3 % errors
//	db   3.0 and 3.1 split 50/50, identical (A/A)
func TestCompareVersions(t *testing.T) {
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	start := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Hour)
	one := func(name, version string, perMinute int, latency, errRate float64) svcSpec {
		return svcSpec{name: name, env: prod, perMinute: perMinute, phases: []phase{{version: version, latency: latency, errRate: errRate}}}
	}
	sc := &scenario{start: start, length: time.Hour, seed: 42, baseMedian: 40 * time.Millisecond, sigma: 0.35, services: []svcSpec{
		one("api", "1.0", 570, 1, 0.01), one("api", "1.1", 30, 1.5, 0.01),
		one("web", "2.0", 300, 1, 0.005), one("web", "2.1", 300, 1, 0.03),
		one("db", "3.0", 300, 1, 0.01), one("db", "3.1", 300, 1, 0.01),
	}, ci: []ciSpec{{service: "api", env: prod, version: "1.1", deploy: 30 * time.Minute}}}
	p := pipelinetest.New(t, srv.Addr(), db, 1, nil)
	sc.feed(t, p, false)
	p.Close(t)
	dsn := fmt.Sprintf("clickhouse://%s:%s@%s/%s", chtest.ReadOnlyUser, url.QueryEscape(chtest.ReadOnlyPassword), srv.Addr(), db)
	svc := openService(t, dsn, Config{})
	ctx := context.Background()
	q := func(service, control, treatment string, share float64) report.CompareQuery {
		return report.CompareQuery{Service: service, Environment: prod, Start: start, End: start.Add(time.Hour),
			Dimension: DimensionVersion, Control: control, Treatment: treatment, ExpectedShare: share}
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

	flag, err := svc.Compare(ctx, q("web", "2.0", "2.1", 0.5))
	if err != nil {
		t.Fatal(err)
	}
	if em := compareMetric(flag, "error_rate"); flag.Verdict != report.CompareWorse || em.Verdict != report.CompareWorse {
		t.Errorf("3 %% against 0.5 %% errors: %v, error rate %+v", flag.Verdict, em)
	}

	aa, err := svc.Compare(ctx, q("db", "3.0", "3.1", 0.5))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range aa.Metrics {
		if m.Metric != "request_share" && m.Verdict != report.CompareNoDifference {
			t.Errorf("A/A %s: %v (%+v)", m.Metric, m.Verdict, m)
		}
	}
	if aa.Verdict != report.CompareNoDifference || aa.SRM.Mismatch {
		t.Errorf("A/A: %v, SRM %+v", aa.Verdict, aa.SRM)
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

	short := q("api", "1.0", "1.1", 0)
	short.End = start.Add(5 * time.Minute)
	if c, err := svc.Compare(ctx, short); err != nil || c.Verdict != report.CompareInsufficientData {
		t.Errorf("5 minutes: %v %v, want INSUFFICIENT_DATA", c.Verdict, err)
	}
	var ia *report.InvalidArgumentError
	for name, bad := range map[string]report.CompareQuery{
		"same cohort":       q("api", "1.0", "1.0", 0),
		"unknown dimension": func() report.CompareQuery { b := q("api", "1.0", "1.1", 0); b.Dimension = "feature_flag.x"; return b }(),
		"share":             q("api", "1.0", "1.1", 1),
	} {
		if _, err := svc.Compare(ctx, bad); !errors.As(err, &ia) {
			t.Errorf("%s: %v, want an invalid-argument error", name, err)
		}
	}
}
