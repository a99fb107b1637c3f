package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/changelens/changelens/queryapi/limits"
	"github.com/changelens/changelens/queryapi/report"
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sorted(s ...string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

func wantKeys(t *testing.T, what string, m any, want ...string) map[string]any {
	t.Helper()
	obj, ok := m.(map[string]any)
	if !ok {
		t.Fatalf("%s: not an object: %#v", what, m)
	}
	if got := keys(obj); !slices.Equal(got, sorted(want...)) {
		t.Errorf("%s keys:\n got %v\nwant %v", what, got, sorted(want...))
	}
	return obj
}

// wantNumber asserts a JSON number (never a string, as int64 would be) equal to want.
func wantNumber(t *testing.T, obj map[string]any, field string, want float64) {
	t.Helper()
	n, ok := obj[field].(json.Number)
	if !ok {
		t.Errorf("%s = %#v (%T), want a JSON number", field, obj[field], obj[field])
		return
	}
	if f, err := n.Float64(); err != nil || f != want {
		t.Errorf("%s = %s, want %v", field, n, want)
	}
}

func wantTime(t *testing.T, obj map[string]any, field string, want time.Time) {
	t.Helper()
	s, ok := obj[field].(string)
	if !ok {
		t.Errorf("%s = %#v, want an RFC 3339 string", field, obj[field])
		return
	}
	got, err := time.Parse(time.RFC3339, s)
	if err != nil || !got.Equal(want) {
		t.Errorf("%s = %q, want %s", field, s, want.Format(time.RFC3339))
	}
}

func wantValue(t *testing.T, obj map[string]any, field string, want any) {
	t.Helper()
	got := obj[field]
	if gs, ok := got.([]any); ok {
		ws, _ := want.([]any)
		if len(gs) == 0 && len(ws) == 0 {
			return
		}
	}
	if gj, _ := json.Marshal(got); string(gj) != mustJSON(want) {
		t.Errorf("%s = %s, want %s", field, gj, mustJSON(want))
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

var deploymentFields = []string{"id", "service", "environment", "version", "previous_version", "deploy_time",
	"source", "commit_sha", "commit_time", "lead_time_seconds", "rollback", "change_failure", "failure_reasons",
	"restore_time", "time_to_restore_seconds", "verdict", "rollout_start", "failed", "regressions", "explanation", "cause", "rework_reason"}

var regressionFields = []string{"operation", "other_operations", "metric", "before", "after", "relative_change", "ci_low", "ci_high",
	"before_requests", "after_requests", "error_kind", "first_trace_id"}

var errorKindsFields = []string{"tested", "new_error_kind", "before_requests", "after_requests", "history_requests", "family", "mde",
	"new", "rose", "explanation"}

var errorKindFields = []string{"kind", "folded", "new", "verdict", "before", "after", "before_rate", "after_rate", "rate_low", "rate_high",
	"rate_ratio", "ratio_low", "ratio_high", "phi", "minutes", "p_value", "adjusted_p_value", "test", "first_trace_id", "first_seen"}

// checkErrorKinds checks the JSON of sampleErrorKinds.
func checkErrorKinds(t *testing.T, v any, firstSeen time.Time) {
	t.Helper()
	ek := wantKeys(t, "error_kinds", v, errorKindsFields...)
	wantValue(t, ek, "new_error_kind", true)
	wantNumber(t, ek, "history_requests", 120000)
	wantNumber(t, ek, "family", 2)
	wantNumber(t, ek, "mde", 0.0071)
	if !strings.HasPrefix(ek["explanation"].(string), "NEW_ERROR_KIND: java.lang.NullPointerException at 0.32 %") {
		t.Errorf("explanation %v", ek["explanation"])
	}
	news, rose := ek["new"].([]any), ek["rose"].([]any)
	if len(news) != 1 || len(rose) != 1 {
		t.Fatalf("new %v rose %v", news, rose)
	}
	n := wantKeys(t, "new kind", news[0], errorKindFields...)
	wantValue(t, n, "kind", "java.lang.NullPointerException")
	wantValue(t, n, "new", true)
	wantValue(t, n, "verdict", "COMPARE_VERDICT_WORSE")
	wantNumber(t, n, "before_rate", 0)
	wantValue(t, n, "rate_ratio", nil) // +Inf: absent before
	wantValue(t, n, "ratio_high", nil)
	wantNumber(t, n, "ratio_low", 2.1)
	wantNumber(t, n, "adjusted_p_value", 0.0008)
	wantNumber(t, n, "minutes", 3)
	wantValue(t, n, "first_trace_id", "4bf92f3577b34da6a3ce929d0e0e4736")
	wantTime(t, n, "first_seen", firstSeen)
	r := wantKeys(t, "rose kind", rose[0], errorKindFields...)
	wantValue(t, r, "new", false)
	wantNumber(t, r, "rate_ratio", 4.26)
}

var impactMetricFields = []string{"metric", "before", "after", "relative_change", "ci_low", "ci_high", "min_detectable_change",
	"min_detectable_value", "p_value", "adjusted_p_value", "z", "test", "verdict", "raw_change", "control_change"}

var pointFields = []string{"time", "group", "count", "error_count", "error_rate", "p50_ms", "p90_ms", "p95_ms", "p99_ms"}

var doraFields = []string{"start_time", "end_time", "deployment_count", "deployment_frequency_per_day", "change_count",
	"failed_change_count", "change_failure_rate", "lead_time_median_seconds", "lead_time_sample_count",
	"time_to_restore_median_seconds", "restore_sample_count", "tiers", "rework_count", "rework_rate", "benchmarks"}

func TestRESTServices(t *testing.T) {
	src := &fakeSource{}
	ts := startServer(t, Config{Source: src})
	code, body := ts.getJSON(t, "/v1/services?environment=production")
	if code != 200 {
		t.Fatalf("status %d: %v", code, body)
	}
	wantKeys(t, "response", body, "services")
	svcs := body["services"].([]any)
	if len(svcs) != 2 {
		t.Fatalf("services: %v", svcs)
	}
	u := wantKeys(t, "unit", svcs[0], "service", "environment", "versions", "first_seen", "last_seen")
	wantValue(t, u, "service", "checkout")
	wantValue(t, u, "versions", []any{"v2", "v1"})
	wantTime(t, u, "first_seen", now.Add(-48*time.Hour))
	wantTime(t, u, "last_seen", now.Add(-time.Minute))
	idle := wantKeys(t, "idle unit", svcs[1], "service", "environment", "versions", "first_seen", "last_seen")
	wantValue(t, idle, "versions", []any{})
	wantValue(t, idle, "first_seen", nil)
	if src.unitEnv != "production" {
		t.Errorf("environment filter %q", src.unitEnv)
	}
}

func TestRESTLatency(t *testing.T) {
	src := &fakeSource{}
	ts := startServer(t, Config{Source: src})
	code, body := ts.getJSON(t, "/v1/latency?service=checkout&environment=production&operation=GET%20%2Fcart&version=v1"+
		"&start_time=2026-03-10T00:00:00Z&end_time=2026-03-10T06:00:00Z&step_seconds=600&group_by=GROUP_BY_VERSION")
	if code != 200 {
		t.Fatalf("status %d: %v", code, body)
	}
	wantKeys(t, "response", body, "points", "start_time", "end_time", "step_seconds")
	wantNumber(t, body, "step_seconds", 600)
	wantTime(t, body, "start_time", time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC))
	points := body["points"].([]any)
	if len(points) != 2 {
		t.Fatalf("points: %v", points)
	}
	p := wantKeys(t, "point", points[0], pointFields...)
	wantTime(t, p, "time", time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC))
	wantValue(t, p, "group", "v1")
	wantNumber(t, p, "count", 120)
	wantNumber(t, p, "error_count", 3)
	wantNumber(t, p, "error_rate", 0.025)
	wantNumber(t, p, "p50_ms", 12.5)
	wantNumber(t, p, "p90_ms", 40)
	wantNumber(t, p, "p95_ms", 55.25)
	wantNumber(t, p, "p99_ms", 120)
	empty := wantKeys(t, "empty point", points[1], pointFields...)
	for _, f := range []string{"count", "error_count", "error_rate", "p50_ms", "p90_ms", "p95_ms", "p99_ms"} {
		wantNumber(t, empty, f, 0)
	}
	wantValue(t, empty, "group", "")

	q := src.latency
	if q.Service != "checkout" || q.Environment != "production" || q.Operation != "GET /cart" || q.Version != "v1" ||
		q.GroupBy != report.GroupByVersion || q.Step != 10*time.Minute ||
		!q.Start.Equal(time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)) || !q.End.Equal(time.Date(2026, 3, 10, 6, 0, 0, 0, time.UTC)) {
		t.Errorf("query reaching the source: %+v", q)
	}
}

func TestRESTLatencySummary(t *testing.T) {
	src := &fakeSource{}
	ts := startServer(t, Config{Source: src})
	code, body := ts.getJSON(t, "/v1/latency:summary?service=checkout&environment=production&group_by=operation")
	if code != 200 {
		t.Fatalf("status %d: %v", code, body)
	}
	wantKeys(t, "response", body, "rows", "start_time", "end_time")
	rows := body["rows"].([]any)
	if len(rows) != 1 {
		t.Fatalf("rows: %v", rows)
	}
	r := wantKeys(t, "row", rows[0], pointFields...)
	wantNumber(t, r, "count", 1000)
	wantValue(t, r, "group", "")
	if q := src.summary; q.GroupBy != report.GroupByOperation || !q.End.Equal(now) || !q.Start.Equal(now.Add(-24*time.Hour)) {
		t.Errorf("summary query %+v", q)
	}
	if src.latency.Service != "" {
		t.Error(":summary was routed to GetLatency")
	}
}

func TestRESTDeployments(t *testing.T) {
	src := &fakeSource{}
	ts := startServer(t, Config{Source: src})
	code, body := ts.getJSON(t, "/v1/deployments?service=checkout&environment=production&page_size=10&page_token=abc")
	if code != 200 {
		t.Fatalf("status %d: %v", code, body)
	}
	wantKeys(t, "response", body, "deployments", "next_page_token")
	wantValue(t, body, "next_page_token", "next-page")
	deps := body["deployments"].([]any)
	if len(deps) != 2 {
		t.Fatalf("deployments: %v", deps)
	}

	inf := wantKeys(t, "inferred deployment", deps[0], deploymentFields...)
	wantValue(t, inf, "source", "SOURCE_INFERRED")
	wantValue(t, inf, "verdict", "VERDICT_PENDING")
	wantValue(t, inf, "commit_time", nil)
	wantValue(t, inf, "restore_time", nil)
	wantValue(t, inf, "commit_sha", "")
	wantValue(t, inf, "previous_version", "")
	wantValue(t, inf, "failure_reasons", []any{})
	wantValue(t, inf, "rollback", false)
	wantValue(t, inf, "change_failure", false)
	wantValue(t, inf, "failed", false)
	wantNumber(t, inf, "lead_time_seconds", 0)
	wantNumber(t, inf, "time_to_restore_seconds", 0)
	wantTime(t, inf, "rollout_start", now.Add(-30*time.Minute)) // = deploy_time when unknown

	d := wantKeys(t, "deployment", deps[1], deploymentFields...)
	wantValue(t, d, "id", depID)
	wantValue(t, d, "service", "checkout")
	wantValue(t, d, "environment", "production")
	wantValue(t, d, "version", "v2")
	wantValue(t, d, "previous_version", "v1")
	wantTime(t, d, "deploy_time", now.Add(-2*time.Hour))
	wantTime(t, d, "rollout_start", now.Add(-2*time.Hour-time.Minute))
	wantValue(t, d, "source", "SOURCE_EXPLICIT")
	wantValue(t, d, "commit_sha", "abc123")
	wantTime(t, d, "commit_time", now.Add(-5*time.Hour))
	wantNumber(t, d, "lead_time_seconds", 3*3600)
	wantValue(t, d, "change_failure", true)
	wantValue(t, d, "failure_reasons", []any{"FAILURE_REASON_ROLLED_BACK", "FAILURE_REASON_LATENCY_REGRESSION"})
	wantTime(t, d, "restore_time", now.Add(-time.Hour))
	wantNumber(t, d, "time_to_restore_seconds", 3600)
	wantValue(t, d, "verdict", "VERDICT_DEGRADED")
	wantValue(t, d, "rework_reason", "REWORK_REASON_UNSPECIFIED")
	wantValue(t, inf, "rework_reason", "REWORK_REASON_HOTFIX")
	wantValue(t, inf, "regressions", []any{})
	wantValue(t, inf, "explanation", "")
	regs := d["regressions"].([]any)
	if len(regs) != 1 {
		t.Fatalf("regressions %v", regs)
	}
	r := wantKeys(t, "regression", regs[0], regressionFields...)
	wantValue(t, r, "operation", "GET /api/export")
	wantValue(t, r, "other_operations", false)
	wantNumber(t, r, "relative_change", 0.5)
	wantValue(t, r, "ci_high", nil) // open-ended: null, not Infinity
	if !strings.HasPrefix(d["explanation"].(string), "DEGRADED: p95 of GET /api/export") {
		t.Errorf("explanation %v", d["explanation"])
	}

	q := src.deps
	if q.Service != "checkout" || q.Environment != "production" || q.PageSize != 10 || q.PageToken != "abc" {
		t.Errorf("deployment query %+v", q)
	}
}

func TestRESTGraph(t *testing.T) {
	ts := startServer(t, Config{Source: &fakeSource{}})
	code, body := ts.getJSON(t, "/v1/graph?environment=production")
	if code != 200 {
		t.Fatalf("status %d: %v", code, body)
	}
	wantKeys(t, "graph", body, "edges")
	edges := body["edges"].([]any)
	if len(edges) != 2 {
		t.Fatalf("edges %v", edges)
	}
	fields := []string{"caller_service", "callee_service", "callee_environment", "calls", "errors", "mean_ms"}
	e := wantKeys(t, "edge", edges[0], fields...)
	wantValue(t, e, "caller_service", "web")
	wantValue(t, e, "callee_environment", "production")
	wantNumber(t, e, "calls", 1200)
	wantNumber(t, e, "mean_ms", 45)
	peer := wantKeys(t, "edge", edges[1], fields...)
	wantValue(t, peer, "callee_environment", "")
	wantValue(t, peer, "mean_ms", nil) // no calls: no mean
}

func TestRESTIncidents(t *testing.T) {
	src := &fakeSource{}
	ts := startServer(t, Config{Source: src})
	code, body := ts.getJSON(t, "/v1/incidents?service=checkout&start_time=2026-03-01T00:00:00Z&end_time=2026-03-02T00:00:00Z")
	if code != 200 {
		t.Fatalf("status %d: %v", code, body)
	}
	wantKeys(t, "incidents", body, "incidents")
	incidents := body["incidents"].([]any)
	if len(incidents) != 2 {
		t.Fatalf("incidents %v", incidents)
	}
	in := wantKeys(t, "incident", incidents[0], "id", "source", "status", "severity", "title", "service", "environment",
		"opened_time", "resolved_time", "deployment_id", "linked_deployment_id")
	wantValue(t, in, "id", "pagerduty:Q1ABC")
	wantValue(t, in, "status", "resolved")
	wantValue(t, in, "opened_time", "2026-03-01T01:00:00Z")
	wantValue(t, in, "resolved_time", "2026-03-01T01:20:00Z")
	wantValue(t, in, "linked_deployment_id", depID)
	wantValue(t, in, "deployment_id", "")
	open := wantKeys(t, "incident", incidents[1], "id", "source", "status", "severity", "title", "service", "environment",
		"opened_time", "resolved_time", "deployment_id", "linked_deployment_id")
	wantValue(t, open, "resolved_time", nil) // open: no resolution
	wantValue(t, open, "deployment_id", "gh-77")
	wantValue(t, open, "linked_deployment_id", "")
	q := src.inc
	if q.Service != "checkout" || q.Environment != "production" || !q.Start.Equal(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)) ||
		!q.End.Equal(time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("incident query %+v (environment defaults to production)", q)
	}
}

func TestRESTDeploymentsByCause(t *testing.T) {
	src := &fakeSource{}
	ts := startServer(t, Config{Source: src})
	code, body := ts.getJSON(t, "/v1/deployments?cause_kind=CAUSE_KIND_CALLEE_DEPLOYMENT&caused_by="+depID)
	if code != 200 {
		t.Fatalf("status %d: %v", code, body)
	}
	if q := src.deps; q.CauseKind != report.CauseCalleeDeployment || q.CausedBy != depID {
		t.Errorf("deployment query %+v", q)
	}
}

func TestRESTImpact(t *testing.T) {
	src := &fakeSource{}
	ts := startServer(t, Config{Source: src})
	code, body := ts.getJSON(t, "/v1/deployments/"+depID+"/impact")
	if code != 200 {
		t.Fatalf("status %d: %v", code, body)
	}
	wantKeys(t, "impact", body, "deployment", "before", "after", "latency_ratio", "error_rate_delta",
		"latency_test", "error_rate_test", "verdict", "reasons", "windows_complete", "canary",
		"metrics", "operations", "requests_needed", "explanation", "control", "attribution", "error_kinds")
	if body["canary"] != nil {
		t.Errorf("canary %v for a deployment without one", body["canary"])
	}
	checkErrorKinds(t, body["error_kinds"], now.Add(-2*time.Hour+3*time.Minute))
	wantKeys(t, "impact.deployment", body["deployment"], deploymentFields...)
	windowFields := []string{"start", "end", "requests", "errors", "error_rate", "p50_ms", "p95_ms", "p99_ms"}
	before := wantKeys(t, "before", body["before"], windowFields...)
	after := wantKeys(t, "after", body["after"], windowFields...)
	wantNumber(t, before, "requests", 900)
	wantNumber(t, before, "p95_ms", 40)
	wantTime(t, before, "end", now.Add(-2*time.Hour))
	wantNumber(t, after, "errors", 0)
	wantNumber(t, after, "error_rate", 0)
	wantTime(t, after, "start", now.Add(-2*time.Hour+2*time.Minute))
	wantNumber(t, body, "latency_ratio", 1.5)
	wantNumber(t, body, "error_rate_delta", -0.01)
	testFields := []string{"name", "statistic", "p_value", "significant", "direction"}
	lt := wantKeys(t, "latency_test", body["latency_test"], testFields...)
	wantValue(t, lt, "name", "mann-whitney-u")
	wantNumber(t, lt, "statistic", 123.5)
	wantNumber(t, lt, "p_value", 0.0001)
	wantValue(t, lt, "significant", true)
	wantValue(t, lt, "direction", "increase")
	et := wantKeys(t, "error_rate_test", body["error_rate_test"], testFields...)
	wantNumber(t, et, "statistic", 0)
	wantValue(t, et, "significant", false)
	wantValue(t, body, "verdict", "VERDICT_DEGRADED")
	wantValue(t, body, "reasons", []any{"FAILURE_REASON_LATENCY_REGRESSION"})
	wantValue(t, body, "windows_complete", true)
	wantNumber(t, body, "requests_needed", 5500)
	ctrl := wantKeys(t, "control", body["control"], "kind", "series", "shifts")
	wantValue(t, ctrl, "kind", "environment")
	wantValue(t, ctrl, "series", []any{"cart/production", "search/production"})
	sh := wantKeys(t, "control shift", ctrl["shifts"].([]any)[0], "metric", "change", "ci_low", "ci_high")
	wantNumber(t, sh, "change", 0.34)
	attr := wantKeys(t, "attribution", body["attribution"], "causes", "neighbours")
	causeFields := []string{"kind", "deployment_id", "service", "environment", "version", "flag", "variant", "start", "end",
		"metric", "before", "after", "explained", "share", "z", "significant", "rank"}
	causes := attr["causes"].([]any)
	if len(causes) != 2 {
		t.Fatalf("causes %v", causes)
	}
	own := wantKeys(t, "cause", causes[0], causeFields...)
	wantValue(t, own, "kind", "CAUSE_KIND_OWN_DEPLOYMENT")
	wantValue(t, own, "deployment_id", depID)
	wantNumber(t, own, "explained", 10.5)
	wantNumber(t, own, "z", 8.2)
	wantValue(t, own, "significant", true)
	flag := wantKeys(t, "cause", causes[1], causeFields...)
	wantValue(t, flag, "kind", "CAUSE_KIND_FEATURE_FLAG")
	wantValue(t, flag, "flag", "new-pricing")
	wantValue(t, flag, "share", nil) // NaN: unknown
	wantValue(t, flag, "z", nil)
	neighbourFields := []string{"service", "environment", "callee", "calls_per_minute_before", "calls_per_minute_after",
		"mean_ms_before", "mean_ms_after", "error_rate_before", "error_rate_after", "deployment_ids"}
	nbs := attr["neighbours"].([]any)
	cart := wantKeys(t, "neighbour", nbs[0], neighbourFields...)
	wantNumber(t, cart, "mean_ms_after", 12.5)
	wantValue(t, cart, "deployment_ids", []any{})
	pg := wantKeys(t, "neighbour", nbs[1], neighbourFields...)
	wantValue(t, pg, "environment", "")
	wantValue(t, pg, "mean_ms_before", nil)
	ms := body["metrics"].([]any)
	p95 := wantKeys(t, "metric", ms[0], impactMetricFields...)
	wantNumber(t, p95, "min_detectable_change", 0.05)
	wantNumber(t, p95, "adjusted_p_value", 6e-9)
	wantNumber(t, p95, "raw_change", 0.55)
	wantNumber(t, p95, "control_change", 0.34)
	wantValue(t, p95, "verdict", "COMPARE_VERDICT_WORSE")
	er := wantKeys(t, "metric", ms[1], impactMetricFields...)
	wantValue(t, er, "ci_high", nil)               // NaN: unknown
	wantValue(t, er, "min_detectable_change", nil) // +Inf: none detectable
	ops := body["operations"].([]any)
	opFields := []string{"operation", "other_operations", "operation_count", "before_requests", "after_requests", "judged", "metrics", "verdict", "rank"}
	op := wantKeys(t, "operation", ops[0], opFields...)
	wantNumber(t, op, "rank", 1)
	wantKeys(t, "operation metric", op["metrics"].([]any)[0], impactMetricFields...)
	rest := wantKeys(t, "remainder", ops[1], opFields...)
	wantValue(t, rest, "other_operations", true)
	wantNumber(t, rest, "operation_count", 3)
	wantValue(t, rest, "metrics", []any{})
	if src.impact != depID {
		t.Errorf("impact id %q", src.impact)
	}
}

func TestRESTCompare(t *testing.T) {
	src := &fakeSource{}
	ts := startServer(t, Config{Source: src})
	code, body := ts.getJSON(t, "/v1/compare?service=api&environment=production&control=1.0&treatment=1.1&expected_treatment_share=0.05")
	if code != 200 {
		t.Fatalf("status %d: %v", code, body)
	}
	wantKeys(t, "response", body, "control", "treatment", "overlap_minutes", "metrics", "verdict", "srm", "operations", "error_kinds")
	wantValue(t, wantKeys(t, "error_kinds", body["error_kinds"], errorKindsFields...), "new_error_kind", true)
	wantValue(t, body, "verdict", "COMPARE_VERDICT_WORSE")
	wantNumber(t, body, "overlap_minutes", 60)
	c := wantKeys(t, "treatment", body["treatment"], "value", "requests", "share", "slowest_trace_id", "failed_trace_id")
	wantValue(t, c, "value", "1.1")
	wantNumber(t, c, "share", 0.05)
	m := wantKeys(t, "metric", body["metrics"].([]any)[0], "metric", "control", "treatment", "relative_change", "ci_low", "ci_high", "p_value", "test", "verdict")
	wantValue(t, m, "metric", "latency_p95_ms")
	wantNumber(t, m, "relative_change", 0.5)
	wantKeys(t, "srm", body["srm"], "expected_share", "observed_share", "p_value", "mismatch")
}

func TestRESTCohorts(t *testing.T) {
	ts := startServer(t, Config{Source: &fakeSource{}})
	code, body := ts.getJSON(t, "/v1/cohorts?service=api&environment=production")
	if code != 200 {
		t.Fatalf("status %d: %v", code, body)
	}
	dims := body["dimensions"].([]any)
	if len(dims) != 1 {
		t.Fatalf("dimensions %v", dims)
	}
	d := wantKeys(t, "dimension", dims[0], "dimension", "values")
	wantValue(t, d, "dimension", "version")
	wantNumber(t, wantKeys(t, "value", d["values"].([]any)[1], "value", "requests"), "requests", 500)
	for _, path := range []string{"/v1/cohorts?environment=production", "/v1/cohorts?service=api"} {
		if code, _ := ts.getJSON(t, path); code != 400 {
			t.Errorf("%s: status %d, want 400", path, code)
		}
	}
}

func TestRESTDORA(t *testing.T) {
	src := &fakeSource{}
	ts := startServer(t, Config{Source: src})
	code, body := ts.getJSON(t, "/v1/dora?service=checkout&environment=staging&interval=DAY"+
		"&start_time=2026-03-01T00:00:00Z&end_time=2026-03-08T00:00:00Z")
	if code != 200 {
		t.Fatalf("status %d: %v", code, body)
	}
	wantKeys(t, "response", body, "summary", "intervals")
	s := wantKeys(t, "summary", body["summary"], doraFields...)
	wantTime(t, s, "start_time", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	wantTime(t, s, "end_time", time.Date(2026, 3, 8, 0, 0, 0, 0, time.UTC))
	wantNumber(t, s, "deployment_count", 12)
	wantNumber(t, s, "deployment_frequency_per_day", 0.4)
	wantNumber(t, s, "change_count", 10)
	wantNumber(t, s, "failed_change_count", 1)
	wantNumber(t, s, "change_failure_rate", 0.1)
	wantNumber(t, s, "lead_time_median_seconds", 7200)
	wantNumber(t, s, "lead_time_sample_count", 9)
	wantNumber(t, s, "time_to_restore_median_seconds", 0)
	wantNumber(t, s, "restore_sample_count", 0)
	tiers := wantKeys(t, "tiers", s["tiers"], "deployment_frequency", "lead_time", "change_failure_rate", "time_to_restore")
	wantValue(t, tiers, "deployment_frequency", "TIER_HIGH")
	wantValue(t, tiers, "lead_time", "TIER_ELITE")
	wantValue(t, tiers, "change_failure_rate", "TIER_HIGH")
	wantValue(t, tiers, "time_to_restore", "TIER_UNKNOWN")
	wantNumber(t, s, "rework_count", 3)
	wantNumber(t, s, "rework_rate", 0.25)
	bs := s["benchmarks"].([]any)
	if len(bs) != 2 {
		t.Fatalf("benchmarks %v", bs)
	}
	b := wantKeys(t, "benchmark", bs[0], "metric", "edition", "tier", "score", "industry_mean", "industry_std", "percentile")
	wantValue(t, b, "metric", "lead_time")
	wantValue(t, b, "edition", "2025") // the default edition
	wantNumber(t, b, "score", 8)
	wantNumber(t, b, "percentile", 0.85)
	if nb := bs[1].(map[string]any); nb["score"] != nil || nb["percentile"] != nil {
		t.Errorf("a benchmark without samples: score %v percentile %v, want null", nb["score"], nb["percentile"])
	}
	iv := body["intervals"].([]any)
	if len(iv) != 2 {
		t.Fatalf("intervals %v", iv)
	}
	empty := wantKeys(t, "empty interval", iv[0], doraFields...)
	for _, f := range []string{"deployment_count", "change_count", "failed_change_count", "change_failure_rate", "lead_time_sample_count"} {
		wantNumber(t, empty, f, 0)
	}
	wantValue(t, empty["tiers"].(map[string]any), "lead_time", "TIER_UNKNOWN")
	if q := src.dora; q.Service != "checkout" || q.Environment != "staging" || q.Interval != report.IntervalDay {
		t.Errorf("dora query %+v", q)
	}

	// INTERVAL_ALL: intervals holds the summary.
	code, body = ts.getJSON(t, "/v1/dora")
	if code != 200 {
		t.Fatalf("status %d: %v", code, body)
	}
	if iv := body["intervals"].([]any); len(iv) != 1 {
		t.Errorf("ALL intervals: %v", iv)
	} else {
		wantNumber(t, iv[0].(map[string]any), "deployment_count", 12)
	}
}

func TestDefaults(t *testing.T) {
	src := &fakeSource{}
	ts := startServer(t, Config{Source: src})
	for _, path := range []string{
		"/v1/latency?service=a&environment=b",
		"/v1/latency:summary?service=a&environment=b",
		"/v1/deployments",
		"/v1/dora",
	} {
		if code, body := ts.get(t, path); code != 200 {
			t.Fatalf("%s: %d %s", path, code, body)
		}
	}
	if q := src.latency; !q.End.Equal(now) || !q.Start.Equal(now.Add(-24*time.Hour)) || q.Step != 5*time.Minute ||
		q.GroupBy != report.GroupByNone || q.Operation != "" || q.Version != "" {
		t.Errorf("latency defaults: %+v", q)
	}
	if q := src.deps; !q.End.Equal(now) || !q.Start.Equal(now.Add(-30*24*time.Hour)) || q.PageSize != 50 ||
		q.Service != "" || q.Environment != "" || q.PageToken != "" {
		t.Errorf("deployment defaults: %+v", q)
	}
	if q := src.dora; !q.End.Equal(now) || !q.Start.Equal(now.Add(-30*24*time.Hour)) ||
		q.Environment != "production" || q.Interval != report.IntervalAll || q.Service != "" {
		t.Errorf("DORA defaults: %+v", q)
	}

	// Only start_time: end = now. Only end_time: start = end − default.
	ts.get(t, "/v1/latency?service=a&environment=b&start_time=2026-03-10T10:00:00Z")
	if q := src.latency; !q.Start.Equal(now.Add(-2*time.Hour)) || !q.End.Equal(now) || q.Step != time.Minute {
		t.Errorf("start only: %+v", q)
	}
	ts.get(t, "/v1/dora?end_time=2026-02-01T00:00:00Z")
	if q := src.dora; !q.End.Equal(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)) || !q.Start.Equal(q.End.Add(-30*24*time.Hour)) {
		t.Errorf("end only: %+v", q)
	}
	// Timestamps with offsets and fractions are accepted.
	if code, body := ts.get(t, "/v1/latency?service=a&environment=b&start_time=2026-03-10T10:00:00.5%2B01:00&end_time=2026-03-10T11:00:00Z"); code != 200 {
		t.Errorf("offset timestamp: %d %s", code, body)
	} else if q := src.latency; !q.Start.Equal(time.Date(2026, 3, 10, 9, 0, 0, 500e6, time.UTC)) {
		t.Errorf("offset timestamp parsed as %v", q.Start)
	}
}

func TestEnumSpellings(t *testing.T) {
	src := &fakeSource{}
	ts := startServer(t, Config{Source: src})
	for _, c := range []struct {
		q    string
		want report.GroupBy
	}{
		{"group_by=GROUP_BY_OPERATION", report.GroupByOperation},
		{"group_by=version", report.GroupByVersion},
		{"group_by=Operation", report.GroupByOperation},
		{"group_by=none", report.GroupByNone},
		{"group_by=2", report.GroupByVersion},
		{"groupBy=version", report.GroupByVersion}, // JSON name
	} {
		if code, body := ts.get(t, "/v1/latency?service=a&environment=b&"+c.q); code != 200 {
			t.Errorf("%s: %d %s", c.q, code, body)
		} else if src.latency.GroupBy != c.want {
			t.Errorf("%s: group by %v, want %v", c.q, src.latency.GroupBy, c.want)
		}
	}
	for _, c := range []struct {
		q    string
		want report.Interval
	}{
		{"interval=DAY", report.IntervalDay},
		{"interval=week", report.IntervalWeek},
		{"interval=INTERVAL_MONTH", report.IntervalMonth},
		{"interval=ALL", report.IntervalAll},
	} {
		if code, body := ts.get(t, "/v1/dora?"+c.q); code != 200 {
			t.Errorf("%s: %d %s", c.q, code, body)
		} else if src.dora.Interval != c.want {
			t.Errorf("%s: interval %v, want %v", c.q, src.dora.Interval, c.want)
		}
	}
}

// TestValidation: every rule answers 400 with a google.rpc.Status whose
// message names the field, and the Source is never called.
func TestValidation(t *testing.T) {
	src := &fakeSource{}
	ts := startServer(t, Config{Source: src})
	lat := "/v1/latency?service=a&environment=b&"
	cases := []struct{ path, field string }{
		{"/v1/latency?environment=b", "service"},
		{"/v1/latency?service=a", "environment"},
		{"/v1/latency:summary?environment=b", "service"},
		{"/v1/latency:summary?service=a", "environment"},
		{lat + "start_time=2026-03-10T10:00:00Z&end_time=2026-03-10T10:00:00Z", "start_time"},
		{lat + "start_time=2026-03-10T11:00:00Z&end_time=2026-03-10T10:00:00Z", "start_time"},
		{lat + "start_time=2025-01-01T00:00:00Z", "start_time"},                               // > 90 days
		{lat + "start_time=1969-12-31T00:00:00Z&end_time=1970-01-02T00:00:00Z", "start_time"}, // before 1970
		{lat + "end_time=2200-01-01T00:00:00Z", "end_time"},
		{lat + "start_time=yesterday", "start_time"},
		{lat + "end_time=2026-13-01T00:00:00Z", "end_time"},
		{lat + "start_time.nanos=2000000000", "start_time"},
		{lat + "step_seconds=30", "step_seconds"},
		{lat + "step_seconds=90", "step_seconds"},
		{lat + "step_seconds=-60", "step_seconds"},
		{lat + "step_seconds=abc", "step_seconds"},
		{lat + "step_seconds=99999999999", "step_seconds"},
		{lat + "step_seconds=60&start_time=2026-02-01T00:00:00Z", "step_seconds"}, // > 2000 points
		{lat + "group_by=hour", "group_by"},
		{lat + "group_by=99", "group_by"},
		{lat + "group_by=version&group_by=operation", "group_by"},
		{"/v1/latency?service=" + strings.Repeat("x", 257) + "&environment=b", "service"},
		{"/v1/latency?service=a%00b&environment=b", "service"},
		{"/v1/latency?service=a%ffb&environment=b", "service"},
		{lat + "operation=" + strings.Repeat("o", 1025), "operation"},
		{lat + "version=v%0A1", "version"},
		{"/v1/deployments?page_size=501", "page_size"},
		{"/v1/deployments?page_size=-1", "page_size"},
		{"/v1/deployments?page_token=a%20b", "page_token"},
		{"/v1/deployments?page_token=" + strings.Repeat("t", 1025), "page_token"},
		{"/v1/deployments?start_time=2024-01-01T00:00:00Z", "start_time"}, // > 366 days
		{"/v1/deployments?environment=" + strings.Repeat("e", 300), "environment"},
		{"/v1/deployments?cause_kind=UPSTREAM", "cause_kind"},
		{"/v1/deployments?cause_kind=9", "cause_kind"},
		{"/v1/deployments?caused_by=a%00b", "caused_by"},
		{"/v1/graph", "environment"},
		{"/v1/incidents?service=%01", "service"},
		{"/v1/incidents?environment=" + strings.Repeat("e", 257), "environment"},
		{"/v1/incidents?start_time=2024-01-01T00:00:00Z", "start_time"}, // > 366 days
		{"/v1/incidents?start_time=2026-03-10T12:00:01Z", "start_time"}, // after end = now
		{"/v1/incidents?end_time=yesterday", "end_time"},
		{"/v1/graph?environment=prod&service=%01", "service"},
		{"/v1/graph?environment=prod&start_time=2026-02-01T00:00:00Z", "start_time"}, // > 7 days
		{"/v1/deployments/XYZ/impact", "id"},
		{"/v1/deployments/0123456789ABCDEF0123456789ABCDEF/impact", "id"},
		{"/v1/deployments/0123456789abcdef0123456789abcde/impact", "id"},
		{"/v1/deployments/0123456789abcdef0123456789abcdef0/impact", "id"},
		{"/v1/deployments/0123456789abcdef0123456789abcdeg/impact", "id"},
		{"/v1/dora?interval=HOUR", "interval"},
		{"/v1/dora?interval=7", "interval"},
		{"/v1/dora?edition=2022", "edition"},
		{"/v1/dora?service=%01", "service"},
		{"/v1/dora?environment=" + strings.Repeat("e", 257), "environment"},
		{"/v1/dora?start_time=2026-03-10T12:00:01Z", "start_time"}, // after end = now
		{"/v1/services?environment=%7F", "environment"},
		{"/v1/compare?environment=prod&control=1&treatment=2", "service"},
		{"/v1/compare?service=api&control=1&treatment=2", "environment"},
		{"/v1/compare?service=api&environment=prod&treatment=2", "control"},
		{"/v1/compare?service=api&environment=prod&control=1", "treatment"},
		{"/v1/compare?service=api&environment=prod&control=1&treatment=1", "treatment"},
		{"/v1/compare?service=api&environment=prod&control=1&treatment=2&dimension=region", "dimension"},
		{"/v1/compare?service=api&environment=prod&control=1&treatment=2&expected_treatment_share=1.5", "expected_treatment_share"},
		{"/v1/compare?service=api&environment=prod&control=1&treatment=2&expected_treatment_share=-0.1", "expected_treatment_share"},
		{"/v1/compare?service=api&environment=prod&control=1&treatment=2&start_time=2026-02-01T00:00:00Z", "start_time"}, // > 7 days
	}
	for _, c := range cases {
		code, body := ts.getJSON(t, c.path)
		if code != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400: %v", c.path, code, body)
			continue
		}
		wantKeys(t, c.path, body, "code", "message", "details")
		wantNumber(t, body, "code", 3) // INVALID_ARGUMENT
		if msg, _ := body["message"].(string); !strings.Contains(msg, c.field) {
			t.Errorf("%s: message %q does not name %s", c.path, msg, c.field)
		}
	}
	if n := src.Calls(); n != 0 {
		t.Errorf("the source was called %d times for invalid input", n)
	}

	// The boundaries themselves are fine.
	for _, path := range []string{
		lat + "step_seconds=60&start_time=2026-03-09T02:40:00Z", // exactly 2000 buckets
		lat + "start_time=2025-12-10T12:00:00Z",                 // exactly 90 days
		"/v1/deployments?page_size=500",
		"/v1/deployments?page_size=1",
		"/v1/deployments?start_time=2025-03-10T12:00:00Z", // 365 days
	} {
		if code, body := ts.get(t, path); code != 200 {
			t.Errorf("%s: %d %s", path, code, body)
		}
	}

	// A field violation is in the details.
	_, body := ts.getJSON(t, lat+"step_seconds=30")
	details, _ := body["details"].([]any)
	if len(details) != 1 || !strings.Contains(mustJSON(details[0]), `"field":"step_seconds"`) ||
		!strings.Contains(mustJSON(details[0]), "google.rpc.BadRequest") {
		t.Errorf("details: %s", mustJSON(details))
	}
}

func TestNotFound(t *testing.T) {
	ts := startServer(t, Config{Source: &fakeSource{}})
	code, body := ts.getJSON(t, "/v1/deployments/"+missingID+"/impact")
	if code != http.StatusNotFound {
		t.Fatalf("status %d: %v", code, body)
	}
	wantNumber(t, body, "code", 5)
	wantValue(t, body, "message", "deployment "+missingID+" not found")

	code, body = ts.getJSON(t, "/v2/nothing")
	if code != http.StatusNotFound {
		t.Errorf("unknown path: %d %v", code, body)
	}
	code, body = ts.getJSON(t, "/v1/deployments/"+depID)
	if code != http.StatusNotFound {
		t.Errorf("unknown path: %d %v", code, body)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	ts := startServer(t, Config{Source: &fakeSource{}})
	for _, m := range []string{http.MethodPost, http.MethodDelete, http.MethodPut} {
		req, _ := http.NewRequest(m, ts.base+"/v1/latency?service=a&environment=b", strings.NewReader("{}"))
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: %d, Allow %q", m, resp.StatusCode, resp.Header.Get("Allow"))
		}
	}
}

func TestSourceErrors(t *testing.T) {
	src := &fakeSource{}
	ts := startServer(t, Config{Source: src, Limits: limits.Limits{QueryTimeout: 100 * time.Millisecond}})
	paths := []string{
		"/v1/services",
		"/v1/latency?service=a&environment=b",
		"/v1/latency:summary?service=a&environment=b",
		"/v1/deployments",
		"/v1/deployments/" + depID + "/impact",
		"/v1/dora",
	}
	check := func(name string, wantStatus int, wantCode float64, wantMsg string) {
		t.Helper()
		for _, p := range paths {
			code, body := ts.getJSON(t, p)
			if code != wantStatus {
				t.Errorf("%s %s: status %d, want %d (%v)", name, p, code, wantStatus, body)
				continue
			}
			wantNumber(t, body, "code", wantCode)
			msg, _ := body["message"].(string)
			if !strings.Contains(msg, wantMsg) || strings.Contains(msg, "hunter2") || strings.Contains(msg, "10.1.2.3") {
				t.Errorf("%s %s: message %q", name, p, msg)
			}
		}
	}

	src.fail = errors.New(secretText)
	check("internal", 500, 13, "internal error")

	src.fail = &report.InvalidArgumentError{Reason: "page_token: expired"}
	check("invalid argument", 400, 3, "page_token: expired")

	src.fail = nil
	src.block = true
	start := time.Now()
	check("timeout", 504, 4, "100ms")
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("timeouts took %v", el)
	}

	src.block = false
	src.panics = true
	check("panic", 500, 13, "internal error")

	src.panics = false
	src.fail = report.ErrNotFound
	if code, _ := ts.get(t, "/v1/deployments/"+depID+"/impact"); code != 404 {
		t.Errorf("wrapped not found: %d", code)
	}
}

func TestOpenAPI(t *testing.T) {
	ts := startServer(t, Config{Source: &fakeSource{}, AuthTokens: []string{"s3cret"}})
	code, raw := ts.get(t, "/openapi.json") // open even with auth on
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	var spec struct {
		Swagger     string                                `json:"swagger"`
		Paths       map[string]map[string]json.RawMessage `json:"paths"`
		Definitions map[string]struct {
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"definitions"`
	}
	if err := json.Unmarshal(raw, &spec); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if spec.Swagger != "2.0" {
		t.Errorf("swagger %q", spec.Swagger)
	}
	for _, p := range []string{"/v1/services", "/v1/latency", "/v1/latency:summary", "/v1/deployments",
		"/v1/deployments/{id}/impact", "/v1/dora"} {
		if _, ok := spec.Paths[p]["get"]; !ok {
			t.Errorf("no GET %s in the spec", p)
		}
	}
	// Field names in the spec are the proto names the JSON uses.
	dep := spec.Definitions["v1Deployment"].Properties
	for _, f := range deploymentFields {
		if _, ok := dep[f]; !ok {
			t.Errorf("v1Deployment has no %s", f)
		}
	}
	if _, ok := spec.Definitions["v1DORAFigures"].Properties["deployment_frequency_per_day"]; !ok {
		t.Error("v1DORAFigures.deployment_frequency_per_day missing")
	}
}

func TestQueryTimeoutUsesContext(t *testing.T) {
	// A client-side grpc-timeout shorter than the server's bound also applies.
	src := &fakeSource{block: true}
	ts := startServer(t, Config{Source: src, Limits: limits.Limits{QueryTimeout: time.Minute}})
	req, _ := http.NewRequest(http.MethodGet, ts.base+"/v1/dora", nil)
	req.Header.Set("Grpc-Timeout", "50m")
	start := time.Now()
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusGatewayTimeout || time.Since(start) > 5*time.Second {
		t.Errorf("status %d after %v", resp.StatusCode, time.Since(start))
	}
}

func TestEscapedPathID(t *testing.T) {
	ts := startServer(t, Config{Source: &fakeSource{}})
	for _, id := range []string{url.PathEscape("../../etc/passwd"), "%2e%2e", "'%20OR%201=1--", "%00"} {
		code, body := ts.get(t, "/v1/deployments/"+id+"/impact")
		if code != 400 && code != 404 {
			t.Errorf("%s: %d %s", id, code, body)
		}
	}
}

// The gate: the answer's shape, 200 for every result by default, 412 for
// FAIL with fail_status=true (same body), Flagger's webhook body on POST,
// and 400 naming the missing field.
func TestRESTGate(t *testing.T) {
	src := &fakeSource{}
	ts := startServer(t, Config{Source: src})
	for _, c := range []struct {
		path, result string
		code         int
	}{
		{"/v1/gate?service=api&environment=prod&version=bad", "FAIL", 200},
		{"/v1/gate?service=api&environment=prod&version=bad&fail_status=true", "FAIL", 412},
		{"/v1/gate?service=api&environment=prod&version=good&fail_status=true", "PASS", 200},
		{"/v1/gate?service=api&environment=prod&version=new&fail_status=true", "INCONCLUSIVE", 200},
		{"/v1/gate?service=api&environment=prod&version=slow", "FAIL", 200},
	} {
		code, body := ts.getJSON(t, c.path)
		if code != c.code {
			t.Errorf("%s: status %d, want %d: %v", c.path, code, c.code, body)
		}
		wantKeys(t, c.path, body, "result", "mode", "reasons", "metrics", "deployment_id", "evaluated_at", "explanation",
			"control", "treatment", "overlap_minutes", "regressions")
		wantValue(t, body, "result", c.result)
	}
	_, body := ts.getJSON(t, "/v1/gate?service=api&environment=prod&version=slow")
	wantValue(t, body, "mode", "BEFORE_AFTER")
	if regs := body["regressions"].([]any); len(regs) != 1 {
		t.Errorf("regressions %v", regs)
	} else {
		wantValue(t, wantKeys(t, "gate regression", regs[0], regressionFields...), "operation", "GET /api/export")
	}
	_, body = ts.getJSON(t, "/v1/gate?service=api&environment=prod&version=bad")
	wantValue(t, body, "mode", "CANARY")
	wantValue(t, body, "regressions", []any{})
	if r := body["reasons"].([]any); len(r) != 1 || r[0] != "LATENCY_REGRESSION" {
		t.Errorf("reasons %v", r)
	}
	wantValue(t, wantKeys(t, "metric", body["metrics"].([]any)[0], "metric", "control", "treatment", "relative_change", "ci_low", "ci_high", "p_value", "test", "verdict"), "test", "msprt-always-valid")

	post := func(path, payload string) (int, map[string]any, http.Header) {
		t.Helper()
		resp, err := httpClient.Post(ts.base+path, "application/json", strings.NewReader(payload))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, decode(t, b), resp.Header
	}
	flagger := `{"name":"podinfo","namespace":"test","phase":"Progressing","checksum":"abc",
		"metadata":{"service":"api","environment":"prod","version":"%s"}}`
	code, body, hdr := post("/v1/gate?fail_status=true", fmt.Sprintf(flagger, "bad"))
	if code != http.StatusPreconditionFailed || body["result"] != "FAIL" {
		t.Errorf("Flagger webhook, FAIL with fail_status: %d %v", code, body)
	}
	for k := range hdr {
		if strings.Contains(strings.ToLower(k), "http-code") {
			t.Errorf("internal header %s leaked", k)
		}
	}
	if code, body, _ := post("/v1/gate", fmt.Sprintf(flagger, "bad")); code != 200 || body["result"] != "FAIL" {
		t.Errorf("Flagger webhook, FAIL without fail_status: %d %v", code, body)
	}
	if code, body, _ := post("/v1/gate", fmt.Sprintf(flagger, "good")); code != 200 || body["result"] != "PASS" {
		t.Errorf("Flagger webhook, PASS: %d %v", code, body)
	}

	calls := src.Calls()
	for _, c := range []struct{ path, field string }{
		{"/v1/gate?environment=prod&version=1", "service"},
		{"/v1/gate?service=api&version=1", "environment"},
		{"/v1/gate?service=api&environment=prod", "version"},
		{"/v1/gate?service=api&environment=prod&version=1&baseline_version=1", "baseline_version"},
	} {
		code, body := ts.getJSON(t, c.path)
		if msg, _ := body["message"].(string); code != 400 || !strings.Contains(msg, c.field) {
			t.Errorf("%s: %d %v, want 400 naming %s", c.path, code, body, c.field)
		}
	}
	code, body, _ = post("/v1/gate", `{"name":"podinfo","metadata":{"service":"api","environment":"prod"}}`)
	if msg, _ := body["message"].(string); code != 400 || !strings.Contains(msg, "webhook.metadata.version") {
		t.Errorf("webhook without a version: %d %v", code, body)
	}
	if code, body, _ := post("/v1/gate", `not json`); code != 400 {
		t.Errorf("a body that is not JSON: %d %v", code, body)
	}
	if n := src.Calls(); n != calls {
		t.Errorf("the source was called %d times for invalid input", n-calls)
	}
}
