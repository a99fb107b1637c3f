package usecase

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/teams"
)

// TestScenarioDORAByTeam: a team's figures are those of its services
// together — computed independently here from each service's own report —
// and a team of one service is that service's report.
func TestScenarioDORAByTeam(t *testing.T) {
	f := loadFixture(t)
	st := f.open(t)
	ctx := context.Background()
	start, end := f.start, f.start.Add(24*h)

	one := func(q report.DORAQuery) report.DORAFigures {
		t.Helper()
		q.Environment, q.Start, q.End = prod, start, end
		rep, err := st.DORA(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		return rep.Summary
	}
	checkout, payments := one(report.DORAQuery{Service: "checkout"}), one(report.DORAQuery{Service: "payments"})
	team := one(report.DORAQuery{Services: []string{"checkout", "payments"}})
	if team.DeploymentCount != checkout.DeploymentCount+payments.DeploymentCount ||
		team.ChangeCount != checkout.ChangeCount+payments.ChangeCount ||
		team.FailedChangeCount != checkout.FailedChangeCount+payments.FailedChangeCount ||
		team.ReworkCount != checkout.ReworkCount+payments.ReworkCount ||
		team.LeadTimeSampleCount != checkout.LeadTimeSampleCount+payments.LeadTimeSampleCount ||
		team.RestoreSampleCount != checkout.RestoreSampleCount+payments.RestoreSampleCount {
		t.Errorf("team counts are not the sums of its services':\n team %+v\n checkout %+v\n payments %+v", team, checkout, payments)
	}
	// By hand (TestScenarioDORA's expectations): D1–D3 and D4–D5 → 5
	// deployments, no rollback; D2 and D4 failed → CFR 0.4; lead times of
	// checkout only (payments is inferred) 10800, 3600, 1800 → 3600;
	// restores 3600 (D2) and 5400 (D4) → median 4500; D3 and D5 fix
	// forward → 2 rework.
	want := report.DORAFigures{Start: start, End: end, DeploymentCount: 5, DeploymentFrequencyPerDay: 5, ChangeCount: 5,
		FailedChangeCount: 2, ChangeFailureRate: 0.4, LeadTimeMedianSeconds: 3600, LeadTimeSampleCount: 3,
		TimeToRestoreMedianSeconds: 4500, RestoreSampleCount: 2, ReworkCount: 2,
		FrequencyTier: team.FrequencyTier, LeadTimeTier: team.LeadTimeTier, ChangeFailureRateTier: team.ChangeFailureRateTier,
		TimeToRestoreTier: team.TimeToRestoreTier}
	if !equalFigures(team, want) {
		t.Errorf("team\n got %+v\nwant %+v", team, want)
	}
	// A team of one service reads as that service.
	if solo := one(report.DORAQuery{Services: []string{"checkout"}}); !equalFigures(solo, checkout) || solo.ReworkRate != checkout.ReworkRate {
		t.Errorf("team of checkout\n got %+v\nwant %+v", solo, checkout)
	}
	// service within the team: that service only.
	if both := one(report.DORAQuery{Service: "payments", Services: []string{"checkout", "payments"}}); !equalFigures(both, payments) {
		t.Errorf("payments within the team\n got %+v\nwant %+v", both, payments)
	}

	// The listing keeps the team's deployments only.
	deps := allDeployments(t, st, report.DeploymentQuery{Services: []string{"checkout", "payments"}, Environment: prod, Start: start, End: end})
	var services []string
	for _, d := range deps {
		services = append(services, d.Service)
	}
	slices.Sort(services)
	if !slices.Equal(services, []string{"checkout", "checkout", "checkout", "payments", "payments"}) {
		t.Errorf("deployments of the team: %v", services)
	}
	inc, err := st.Incidents(ctx, report.IncidentQuery{Services: []string{"search"}, Environment: prod, Start: start, End: end})
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range inc {
		if in.Service != "search" {
			t.Errorf("incident of %s in search's team", in.Service)
		}
	}
}

// TestScenarioRetrospective: the month holding the scenario, for a team of
// checkout and payments, against the month before (no data).
func TestScenarioRetrospective(t *testing.T) {
	f := loadFixture(t)
	st := f.open(t)
	ctx := context.Background()
	period, err := teams.ParsePeriod(f.start.Format("2006-01"))
	if err != nil {
		t.Fatal(err)
	}
	doc := "teams:\n  - name: pay\n    services: [checkout, payments]\n    targets:\n      lead_time_hours: 2\n" +
		"      change_failure_rate: 0.15\n    focus:\n      " + period.Quarter() + ": lead_time\n"
	mapping, err := teams.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	team, _ := mapping.Team("pay")
	r, err := st.Retrospective(ctx, RetrospectiveQuery{Team: team, Environment: prod, Period: period, Now: f.now})
	if err != nil {
		t.Fatal(err)
	}
	if !r.End.Equal(f.now) || r.Previous.Name != period.Previous().Name || r.FocusMetric != "lead_time" ||
		r.Link != "/ui/retro/pay/"+period.Name+"?environment=production" {
		t.Errorf("retrospective %s: end %v previous %s focus %q link %q", period.Name, r.End, r.Previous.Name, r.FocusMetric, r.Link)
	}
	// The current figures are the team's DORA report over the same range.
	dora, err := st.DORA(ctx, report.DORAQuery{Services: team.Services, Environment: prod, Start: period.Start, End: f.now})
	if err != nil {
		t.Fatal(err)
	}
	if !equalFigures(r.Current, dora.Summary) || r.Current.DeploymentCount != 5 || r.Prior.DeploymentCount != 0 {
		t.Errorf("current %+v\nDORA %+v\nprevious %+v", r.Current, dora.Summary, r.Prior)
	}
	byName := map[string]RetrospectiveMetric{}
	for _, mt := range r.Metrics {
		byName[mt.Metric] = mt
	}
	if len(r.Metrics) != 5 {
		t.Fatalf("metrics %+v", r.Metrics)
	}
	lead := byName["lead_time"]
	if lead.Current != 3600 || !math.IsNaN(lead.Previous) || lead.Trend != teams.TrendNoData || lead.Target != 7200 ||
		!lead.HasTargetMet || !lead.TargetMet || !lead.Focus {
		t.Errorf("lead_time %+v", lead)
	}
	cfr := byName["change_failure_rate"]
	if cfr.Current != 0.4 || !cfr.HasTargetMet || cfr.TargetMet || cfr.Focus {
		t.Errorf("change_failure_rate %+v", cfr)
	}
	// Frequency has a figure both months (0 before): from 0 it improved,
	// with no relative change.
	freq := byName["deployment_frequency"]
	days := f.now.Sub(period.Start).Hours() / 24
	if math.Abs(freq.Current-5/days) > 1e-9 || freq.Previous != 0 || freq.Trend != teams.TrendImproved || !math.IsNaN(freq.Change) || freq.HasTargetMet {
		t.Errorf("deployment_frequency %+v (days %v)", freq, days)
	}
	if rec := byName["failed_deployment_recovery_time"]; rec.Current != 4500 || rec.Unit != teams.UnitSeconds {
		t.Errorf("recovery %+v", rec)
	}
	// D2 (checkout v1.2.0 at 2h, restored after 1 h) then D4 (payments v8
	// at 1h30m, restored after 1h30m): newest first.
	fd := r.FailedDeployments
	if len(fd) != 2 || fd[0].Service != "checkout" || fd[0].Version != "v1.2.0" || fd[0].TimeToRestore != time.Hour ||
		fd[1].Service != "payments" || fd[1].Version != "v8" || fd[1].TimeToRestore != 90*time.Minute {
		t.Fatalf("failed deployments %+v", fd)
	}
	if len(r.Experiments) != 0 {
		t.Errorf("experiments %+v", r.Experiments)
	}
	md := r.Markdown
	for _, line := range []string{
		"# Retrospective: pay, " + period.Name + " (production)\n",
		"Focus metric of " + period.Quarter() + ": **Lead time**.\n",
		"| Lead time (focus) | 60 min | — | NO_DATA | 2.0 h | yes |\n",
		"| Change failure rate | 40.0 % | — | NO_DATA | 15.0 % | no |\n",
		"| Failed deployment recovery time | 75 min | — | NO_DATA | — | — |\n",
		"5 deployments, 5 changes, 2 failed, 2 rework.\n",
		"- " + f.at(2*h).Format("2006-01-02 15:04 UTC") + " — checkout v1.2.0 (from v1.1.0): LATENCY_REGRESSION.",
		"- " + f.at(90*m).Format("2006-01-02 15:04 UTC") + " — payments v8 (from v7): ERROR_RATE_REGRESSION.",
		"None ended in this period.\n",
		"Link: /ui/retro/pay/" + period.Name + "?environment=production\n",
	} {
		if !strings.Contains(md, line) {
			t.Errorf("markdown lacks %q:\n%s", line, md)
		}
	}
	if !strings.Contains(md, "Recovered after 60 min.\n") || !strings.Contains(md, "Recovered after 90 min.\n") {
		t.Errorf("markdown lacks the recoveries:\n%s", md)
	}

	// The earliest period the API accepts: its previous month is before
	// 1970, which ClickHouse must read as empty, not fail on.
	first, _ := teams.ParsePeriod("1970-01")
	r, err = st.Retrospective(ctx, RetrospectiveQuery{Team: team, Environment: prod, Period: first, Now: f.now})
	if err != nil {
		t.Fatal(err)
	}
	if r.Current.DeploymentCount != 0 || r.Prior.DeploymentCount != 0 || r.Previous.Name != "1969-12" || len(r.FailedDeployments) != 0 {
		t.Errorf("1970-01: %+v", r)
	}
}
