package server

import (
	"context"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/teams"
	"github.com/changelens/changelens/queryapi/usecase"
)

const testTeams = `
teams:
  - name: shop
    services: [storefront, catalog]
  - name: payments
    services: [checkout, payments]
    targets:
      lead_time_hours: 24
      change_failure_rate: 0.15
    focus:
      2026-Q1: lead_time
`

func testMapping(t testing.TB) *teams.Mapping {
	t.Helper()
	m, err := teams.Parse([]byte(testTeams))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRESTTeams(t *testing.T) {
	ts := startServer(t, Config{Source: &fakeSource{}, Teams: testMapping(t)})
	code, body := ts.getJSON(t, "/v1/teams")
	if code != 200 {
		t.Fatalf("status %d: %v", code, body)
	}
	wantKeys(t, "response", body, "teams")
	list := body["teams"].([]any)
	if len(list) != 2 {
		t.Fatalf("teams: %v", list)
	}
	p := wantKeys(t, "team", list[0], "name", "services", "targets", "focus")
	wantValue(t, p, "name", "payments")
	wantValue(t, p, "services", []any{"checkout", "payments"})
	tg := wantKeys(t, "targets", p["targets"], "deployment_frequency_per_day", "lead_time_hours", "change_failure_rate",
		"recovery_time_hours", "rework_rate")
	wantNumber(t, tg, "lead_time_hours", 24)
	wantNumber(t, tg, "change_failure_rate", 0.15)
	wantValue(t, tg, "rework_rate", nil)
	f := p["focus"].([]any)
	if len(f) != 1 {
		t.Fatalf("focus: %v", f)
	}
	fo := wantKeys(t, "focus", f[0], "period", "metric")
	wantValue(t, fo, "period", "2026-Q1")
	wantValue(t, fo, "metric", "lead_time")
	wantValue(t, list[1].(map[string]any), "name", "shop")

	// Without a teams file: an empty list, and any team is unknown.
	bare := startServer(t, Config{Source: &fakeSource{}, Teams: &teams.Mapping{}})
	code, body = bare.getJSON(t, "/v1/teams")
	if code != 200 {
		t.Fatalf("status %d: %v", code, body)
	}
	wantValue(t, body, "teams", []any{})
	if code, body := bare.getJSON(t, "/v1/dora?team=payments"); code != http.StatusBadRequest || !strings.Contains(body["message"].(string), "team") {
		t.Errorf("team without a teams file: %d %v", code, body)
	}
}

// TestRESTTeamFilter: the team's services reach the source; an unknown team
// is 400 naming team, a service outside the team 400 naming service.
func TestRESTTeamFilter(t *testing.T) {
	src := &fakeSource{}
	ts := startServer(t, Config{Source: src, Teams: testMapping(t)})
	for _, path := range []string{"/v1/dora?team=payments", "/v1/deployments?team=payments", "/v1/incidents?team=payments",
		"/v1/dora?team=payments&service=checkout&interval=QUARTER"} {
		if code, body := ts.get(t, path); code != 200 {
			t.Fatalf("%s: %d %s", path, code, body)
		}
	}
	src.mu.Lock()
	dora, deps, inc := src.dora, src.deps, src.inc
	src.mu.Unlock()
	want := []string{"checkout", "payments"}
	if !slices.Equal(dora.Services, want) || dora.Service != "checkout" || !slices.Equal(deps.Services, want) || !slices.Equal(inc.Services, want) {
		t.Errorf("services passed: dora %v %q, deployments %v, incidents %v", dora.Services, dora.Service, deps.Services, inc.Services)
	}

	// /v1/services keeps the team's units: the fake has checkout and idle.
	code, body := ts.getJSON(t, "/v1/services?team=payments")
	if code != 200 {
		t.Fatalf("services: %d %v", code, body)
	}
	if svcs := body["services"].([]any); len(svcs) != 1 || svcs[0].(map[string]any)["service"] != "checkout" {
		t.Errorf("services of payments: %v", svcs)
	}

	calls := src.Calls()
	for _, c := range []struct{ path, field string }{
		{"/v1/dora?team=nope", "team"},
		{"/v1/dora?team=Payments", "team"},
		{"/v1/dora?team=" + strings.Repeat("a", 257), "team"},
		{"/v1/dora?team=payments&service=catalog", "service"},
		{"/v1/deployments?team=nope", "team"},
		{"/v1/deployments?team=shop&service=checkout", "service"},
		{"/v1/incidents?team=nope", "team"},
		{"/v1/incidents?team=shop&service=payments", "service"},
		{"/v1/services?team=nope", "team"},
	} {
		code, body := ts.getJSON(t, c.path)
		if code != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400: %v", c.path, code, body)
			continue
		}
		if msg, _ := body["message"].(string); !strings.HasPrefix(msg, c.field+":") {
			t.Errorf("%s: message %q does not name %s", c.path, msg, c.field)
		}
	}
	if n := src.Calls(); n != calls {
		t.Errorf("the source was called %d times for invalid input", n-calls)
	}
}

// Retrospective answers a fixed retrospective of q's team and period: the
// REST test checks the JSON contract, not the computation (usecase tests do).
func (f *fakeSource) Retrospective(ctx context.Context, q usecase.RetrospectiveQuery) (usecase.Retrospective, error) {
	if err := f.enter(ctx); err != nil {
		return usecase.Retrospective{}, err
	}
	f.mu.Lock()
	f.retro = q
	f.mu.Unlock()
	nan := math.NaN()
	dep := sampleDeployment()
	r := usecase.Retrospective{
		Team: q.Team.Name, Environment: q.Environment, Services: q.Team.Services, Period: q.Period, Previous: q.Period.Previous(),
		End: q.Now, Link: usecase.RetroLink(q.Team.Name, q.Period.Name, q.Environment),
		Current:     report.DORAFigures{Start: q.Period.Start, End: q.Now, DeploymentCount: 4, ChangeCount: 4, FailedChangeCount: 1, ChangeFailureRate: 0.25},
		Prior:       report.DORAFigures{Start: q.Period.Previous().Start, End: q.Period.Start},
		FocusMetric: q.Team.FocusFor(q.Period.Quarter()),
		Metrics: []usecase.RetrospectiveMetric{
			{Metric: "lead_time", Unit: "seconds", Current: 3600, Previous: 7200, Change: -0.5, Trend: "IMPROVED", Target: 86400, TargetMet: true, HasTargetMet: true, Focus: true},
			{Metric: "failed_deployment_recovery_time", Unit: "seconds", Current: nan, Previous: nan, Change: nan, Trend: "NO_DATA", Target: nan},
		},
		FailedDeployments: []report.Deployment{dep},
		Experiments: []usecase.RetrospectiveExperiment{{ID: "exp-1", Service: "checkout", PlannedEnd: q.Period.Start.Add(24 * time.Hour),
			Decision: "SHIP", Summary: "ship it"}},
	}
	r.Markdown = usecase.RetrospectiveMarkdown(r)
	return r, nil
}

func TestRESTRetrospective(t *testing.T) {
	src := &fakeSource{}
	ts := startServer(t, Config{Source: src})
	code, body := ts.getJSON(t, "/v1/teams/payments/retrospectives/2026-Q1")
	if code != 200 {
		t.Fatalf("status %d: %v", code, body)
	}
	wantKeys(t, "retrospective", body, "team", "environment", "period", "start_time", "end_time", "previous_period",
		"previous_start_time", "previous_end_time", "link", "current", "previous", "metrics", "focus_metric",
		"failed_deployments", "experiments", "markdown")
	wantValue(t, body, "team", "payments")
	wantValue(t, body, "environment", "production")
	wantValue(t, body, "period", "2026-Q1")
	wantValue(t, body, "previous_period", "2025-Q4")
	wantTime(t, body, "start_time", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	wantTime(t, body, "end_time", now) // the quarter runs: it ends now
	wantTime(t, body, "previous_start_time", time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC))
	wantTime(t, body, "previous_end_time", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	wantValue(t, body, "link", "/ui/retro/payments/2026-Q1?environment=production")
	wantValue(t, body, "focus_metric", "lead_time")
	cur := wantKeys(t, "current", body["current"], doraFields...)
	wantNumber(t, cur, "failed_change_count", 1)
	metrics := body["metrics"].([]any)
	lead := wantKeys(t, "metric", metrics[0], "metric", "unit", "current", "previous", "change", "trend", "target", "target_met", "focus")
	wantNumber(t, lead, "current", 3600)
	wantNumber(t, lead, "change", -0.5)
	wantNumber(t, lead, "target", 86400)
	wantValue(t, lead, "trend", "IMPROVED")
	wantValue(t, lead, "target_met", true)
	wantValue(t, lead, "focus", true)
	rec := metrics[1].(map[string]any)
	for _, k := range []string{"current", "previous", "change", "target", "target_met"} {
		wantValue(t, rec, k, nil)
	}
	wantValue(t, rec, "trend", "NO_DATA")
	fd := wantKeys(t, "failed deployment", body["failed_deployments"].([]any)[0], "deployment_id", "service", "environment",
		"version", "previous_version", "deploy_time", "failure_reasons", "explanation", "cause", "recovered_time", "recovery_seconds")
	dep := sampleDeployment()
	wantValue(t, fd, "deployment_id", dep.ID)
	wantTime(t, fd, "recovered_time", dep.RestoreTime)
	wantNumber(t, fd, "recovery_seconds", dep.TimeToRestore.Seconds())
	ex := wantKeys(t, "experiment", body["experiments"].([]any)[0], "id", "description", "service", "planned_end", "decision", "summary")
	wantValue(t, ex, "decision", "SHIP")
	md, _ := body["markdown"].(string)
	if !strings.HasPrefix(md, "# Retrospective: payments, 2026-Q1 (production)\n") {
		t.Errorf("markdown: %q", md)
	}
	src.mu.Lock()
	q := src.retro
	src.mu.Unlock()
	if q.Team.Name != "payments" || q.Edition != "2025" || !q.Now.Equal(now) || q.Period.Name != "2026-Q1" {
		t.Errorf("query: %+v", q)
	}

	// A month of another environment.
	if code, body := ts.getJSON(t, "/v1/teams/shop/retrospectives/2026-02?environment=staging&edition=2023"); code != 200 ||
		body["previous_period"] != "2026-01" || body["environment"] != "staging" || body["focus_metric"] != "" {
		t.Errorf("month: %d %v", code, body)
	}

	calls := src.Calls()
	for _, c := range []struct {
		path  string
		code  int
		field string
	}{
		{"/v1/teams/nope/retrospectives/2026-Q1", http.StatusNotFound, ""},
		{"/v1/teams/Payments/retrospectives/2026-Q1", http.StatusBadRequest, "team"},
		{"/v1/teams/payments/retrospectives/2026-Q5", http.StatusBadRequest, "period"},
		{"/v1/teams/payments/retrospectives/2026-13", http.StatusBadRequest, "period"},
		{"/v1/teams/payments/retrospectives/Q1-2026", http.StatusBadRequest, "period"},
		{"/v1/teams/payments/retrospectives/1969-12", http.StatusBadRequest, "period"},
		{"/v1/teams/payments/retrospectives/2100-01", http.StatusBadRequest, "period"},
		{"/v1/teams/payments/retrospectives/2099-Q4", http.StatusBadRequest, "period"}, // in range, not started
		{"/v1/teams/payments/retrospectives/2026-Q2", http.StatusBadRequest, "period"}, // starts after now
		{"/v1/teams/payments/retrospectives/2026-04", http.StatusBadRequest, "period"},
		{"/v1/teams/nope/retrospectives/2026-Q9", http.StatusBadRequest, "period"}, // the form first
		{"/v1/teams/payments/retrospectives/2026-Q1?edition=2022", http.StatusBadRequest, "edition"},
		{"/v1/teams/payments/retrospectives/2026-Q1?environment=%01", http.StatusBadRequest, "environment"},
	} {
		code, body := ts.getJSON(t, c.path)
		if code != c.code {
			t.Errorf("%s: status %d, want %d: %v", c.path, code, c.code, body)
			continue
		}
		if msg, _ := body["message"].(string); c.field != "" && !strings.HasPrefix(msg, c.field+":") {
			t.Errorf("%s: message %q does not name %s", c.path, msg, c.field)
		}
	}
	if n := src.Calls(); n != calls {
		t.Errorf("the source was called %d times for refused requests", n-calls)
	}
}
