package usecase

import (
	"context"
	"testing"
	"time"

	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/store"
)

// A GitHub deployment names its commit but not its time; a push stored the
// commit's time. The deployment lists its lead time (deploy − commit), and
// DORA's lead time counts it.
func TestInMemoryLeadTimeFromPushedCommit(t *testing.T) {
	st := cartScenario()
	st.AddDeployment(analysis.Row{ID: "github:1", Service: "cart", Environment: "prod", Version: "v3", DeployTime: at(2 * time.Hour),
		CommitSHA: "6113728f27ae82c7b1a177c8d03f9e96e0adf246"})
	st.AddCommit(store.Commit{Service: "cart", SHA: "6113728F27AE82C7B1A177C8D03F9E96E0ADF246", Time: at(80 * time.Minute)},
		store.Commit{Service: "search", SHA: "0123456789abcdef0123456789abcdef01234567", Time: at(0)})
	now := at(4 * time.Hour)
	svc := newService(t, st, &now, noCache)
	deps := listAll(t, svc, cartQuery())
	if len(deps) != 2 {
		t.Fatalf("%d deployments, want v2 and v3: %+v", len(deps), deps)
	}
	v3 := deps[0]
	if v3.ID != "github:1" || !v3.CommitTime.Equal(at(80*time.Minute)) || !v3.HasLeadTime || v3.LeadTime != 40*time.Minute {
		t.Errorf("v3 = %s, commit time %v, lead time %v (%v); want github:1, the pushed commit's 11:20, 40m", v3.ID, v3.CommitTime, v3.LeadTime, v3.HasLeadTime)
	}
	rep, err := svc.DORA(context.Background(), report.DORAQuery{Environment: "prod", Start: at(0), End: at(3 * time.Hour), Interval: report.IntervalAll})
	if err != nil {
		t.Fatal(err)
	}
	// dep-v2: 30m (its span's commit time), github:1: 40m.
	if s := rep.Summary; s.LeadTimeSampleCount != 2 || s.LeadTimeMedianSeconds != 35*60 {
		t.Errorf("DORA lead time median %vs over %d deployments, want 2100s over 2", s.LeadTimeMedianSeconds, s.LeadTimeSampleCount)
	}
}
