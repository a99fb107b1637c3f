package usecase

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/teams"
)

// TestRetrospectiveExperiments: the experiment story ends in March 2026;
// its app's team sees it in March with the report's decision, not in
// February, and a team without the app does not see it.
func TestRetrospectiveExperiments(t *testing.T) {
	st, spec, end := experimentStory(t, 600, 2, 200, 0.005)
	now := end.Add(time.Hour)
	svc := newService(t, st, &now, noCache)
	mapping, err := teams.Parse([]byte("teams:\n  - name: app\n    services: [shop-app]\n  - name: backend\n    services: [orders]\n"))
	if err != nil {
		t.Fatal(err)
	}
	retro := func(team, period string) Retrospective {
		t.Helper()
		tm, _ := mapping.Team(team)
		p, err := teams.ParsePeriod(period)
		if err != nil {
			t.Fatal(err)
		}
		r, err := svc.Retrospective(context.Background(), RetrospectiveQuery{Team: tm, Environment: "production", Period: p, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := retro("app", "2026-03")
	if len(r.Experiments) != 1 {
		t.Fatalf("experiments %+v", r.Experiments)
	}
	e := r.Experiments[0]
	if e.ID != spec.ID || e.Service != "shop-app" || !e.PlannedEnd.Equal(end) || e.Decision != string(analysis.DecisionDontShip) || e.Summary == "" {
		t.Errorf("experiment %+v", e)
	}
	if !strings.Contains(r.Markdown, "- graphql (shop-app, ended 2026-03-16): DONT_SHIP — "+e.Summary+"\n") {
		t.Errorf("markdown:\n%s", r.Markdown)
	}
	if r := retro("app", "2026-02"); len(r.Experiments) != 0 {
		t.Errorf("February lists %+v", r.Experiments)
	}
	if r := retro("backend", "2026-Q1"); len(r.Experiments) != 0 {
		t.Errorf("another team lists %+v", r.Experiments)
	}
	// A period that has not started is refused.
	p, _ := teams.ParsePeriod("2026-04")
	tm, _ := mapping.Team("app")
	if _, err := svc.Retrospective(context.Background(), RetrospectiveQuery{Team: tm, Environment: "production", Period: p, Now: now}); err == nil {
		t.Error("a future period was accepted")
	}
}

// TestRetrospectiveMarkdown renders a retrospective built by hand and
// checks the lines a reader relies on: trends with their change, targets
// in the metric's unit, causes, an unrestored failure.
func TestRetrospectiveMarkdown(t *testing.T) {
	nan := math.NaN()
	p, _ := teams.ParsePeriod("2026-Q3")
	deployed := time.Date(2026, 8, 14, 9, 30, 0, 0, time.UTC)
	r := Retrospective{
		Team: "payments", Environment: "production", Services: []string{"checkout", "payments"},
		Period: p, Previous: p.Previous(), End: p.End, Link: RetroLink("payments", "2026-Q3", "production"),
		Current: report.DORAFigures{DeploymentCount: 40, ChangeCount: 38, FailedChangeCount: 4, ReworkCount: 5},
		Metrics: []RetrospectiveMetric{
			{Metric: "deployment_frequency", Unit: teams.UnitPerDay, Current: 0.5, Previous: 0.4, Change: 0.25, Trend: teams.TrendImproved, Target: 1, HasTargetMet: true},
			{Metric: "lead_time", Unit: teams.UnitSeconds, Current: 7 * 3600, Previous: 5 * 3600, Change: 0.4, Trend: teams.TrendWorsened, Target: 86400, HasTargetMet: true, TargetMet: true, Focus: true},
			{Metric: "change_failure_rate", Unit: teams.UnitRatio, Current: 4.0 / 38, Previous: 0.1, Change: 0.0526, Trend: teams.TrendWorsened, Target: nan},
			{Metric: "failed_deployment_recovery_time", Unit: teams.UnitSeconds, Current: nan, Previous: 90, Change: nan, Trend: teams.TrendNoData, Target: 3600},
			{Metric: "rework_rate", Unit: teams.UnitRatio, Current: 0.125, Previous: 0.125, Change: 0, Trend: teams.TrendUnchanged, Target: nan},
		},
		FocusMetric: "lead_time",
		FailedDeployments: []report.Deployment{{ID: "d1", Service: "checkout", Version: "v2", PreviousVersion: "v1", DeployTime: deployed,
			FailureReasons: []report.FailureReason{report.ReasonLatencyRegression, report.ReasonIncident},
			Explanation:    "DEGRADED: p95 310 → 620 ms.",
			Cause:          &report.Cause{Kind: report.CauseCalleeDeployment, DeploymentID: "d0", Service: "payments", Version: "v9"}}},
	}
	md := RetrospectiveMarkdown(r)
	for _, line := range []string{
		"# Retrospective: payments, 2026-Q3 (production)\n",
		"2026-07-01 to 2026-10-01 against 2026-Q2 (2026-04-01 to 2026-07-01). Services: checkout, payments.\n",
		"Focus metric of 2026-Q3: **Lead time**.\n",
		"| Metric | 2026-Q3 | 2026-Q2 | Trend | Target | Met |\n",
		"| Deployment frequency | 0.50/day | 0.40/day | IMPROVED (+25 %) | 1.00/day | no |\n",
		"| Lead time (focus) | 7.0 h | 5.0 h | WORSENED (+40 %) | 24.0 h | yes |\n",
		"| Change failure rate | 10.5 % | 10.0 % | WORSENED (+5 %) | — | — |\n",
		"| Failed deployment recovery time | — | 90 s | NO_DATA | 60 min | — |\n",
		"| Rework rate | 12.5 % | 12.5 % | UNCHANGED (+0 %) | — | — |\n",
		"40 deployments, 38 changes, 4 failed, 5 rework.\n",
		"- 2026-08-14 09:30 UTC — checkout v2 (from v1): LATENCY_REGRESSION, INCIDENT. DEGRADED: p95 310 → 620 ms. " +
			"Cause: callee deployment payments v9 (deployment d0). Not recovered.\n",
		"None ended in this period.\n",
		"Link: /ui/retro/payments/2026-Q3?environment=production\n",
	} {
		if !strings.Contains(md, line) {
			t.Errorf("markdown lacks %q:\n%s", line, md)
		}
	}
	if strings.Contains(md, "(to date)") {
		t.Error("a whole period is marked to date")
	}
}
