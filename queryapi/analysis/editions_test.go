package analysis

import (
	"testing"
	"time"

	"github.com/changelens/changelens/queryapi/report"
)

// TestClusterEditions places figures on each side of the 2021 and 2024
// tables' boundaries, as the reports print them.
func TestClusterEditions(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	figures := func(deploys int, lead, restore time.Duration, failed, changes int) report.DORAFigures {
		return report.DORAFigures{Start: start, End: start.Add(60 * 24 * time.Hour), DeploymentCount: deploys,
			LeadTimeMedianSeconds: lead.Seconds(), LeadTimeSampleCount: 1, TimeToRestoreMedianSeconds: restore.Seconds(), RestoreSampleCount: 1,
			FailedChangeCount: failed, ChangeCount: changes}
	}
	const (
		E, H, M, L = report.TierElite, report.TierHigh, report.TierMedium, report.TierLow
		day        = 24 * time.Hour
	)
	for _, c := range []struct {
		edition string
		f       report.DORAFigures
		want    [4]report.Tier // frequency, lead, restore, change failure
	}{
		// 60 days. 2021: elite ≥ 1/day; a deployment every 3 days is
		// "weekly to monthly" (high); every 40 days medium; none low.
		{"2021", figures(60, 59*time.Minute, 59*time.Minute, 15, 100), [4]report.Tier{E, E, E, E}},
		{"2021", figures(20, 2*time.Hour, 2*time.Hour, 16, 100), [4]report.Tier{H, H, H, H}},
		{"2021", figures(2, 8*day, 25*time.Hour, 30, 100), [4]report.Tier{H, M, M, H}}, // monthly, inclusive
		{"2021", figures(1, 8*day, 25*time.Hour, 30, 100), [4]report.Tier{M, M, M, H}},
		{"2021", figures(0, 200*day, 8*day, 31, 100), [4]report.Tier{L, L, L, L}},
		// 2024: change failure nearest of 5, 10 (medium), 20 (high), 40 %.
		{"2024", figures(60, 23*time.Hour, 59*time.Minute, 7, 100), [4]report.Tier{E, E, E, E}},
		{"2024", figures(9, 6*day, 23*time.Hour, 16, 100), [4]report.Tier{H, H, H, H}},
		{"2024", figures(2, 29*day, 25*time.Hour, 12, 100), [4]report.Tier{M, M, L, M}},
		{"2024", figures(1, 31*day, 8*day, 31, 100), [4]report.Tier{L, L, L, L}},
		{"2024", figures(1, 31*day, 8*day, 15, 100), [4]report.Tier{L, L, L, H}}, // 15 %: as near 10 as 20, the better cluster
	} {
		got := map[string]report.Tier{}
		for _, b := range Benchmarks(c.f, c.edition) {
			got[b.Metric] = b.Tier
			if b.Edition != c.edition || b.Scored {
				t.Errorf("%s %s: edition %s scored %v", c.edition, b.Metric, b.Edition, b.Scored)
			}
		}
		g := [4]report.Tier{got[DORADeploymentFrequency], got[DORALeadTime], got[DORARecoveryTime], got[DORAChangeFailureRate]}
		if g != c.want || got[DORAReworkRate] != report.TierUnknown {
			t.Errorf("%s %+v: tiers %v (rework %v), want %v", c.edition, c.f, g, got[DORAReworkRate], c.want)
		}
	}
}

// TestClusterTable2023 is the tiers object's own classification on a grid:
// /v1/dora's benchmarks and its tiers never disagree.
func TestClusterTable2023(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, days := range []int{1, 7, 28, 30, 90} {
		for deploys := 0; deploys <= 40; deploys++ {
			for _, secs := range []float64{0, 3599, 3600, 86399, 86400, 604799, 604800, 2591999, 2592000, 1e8} {
				for failed := 0; failed <= 20; failed++ {
					f := report.DORAFigures{Start: start, End: start.AddDate(0, 0, days), DeploymentCount: deploys, ChangeCount: 20, FailedChangeCount: failed,
						LeadTimeMedianSeconds: secs, LeadTimeSampleCount: 1, TimeToRestoreMedianSeconds: secs, RestoreSampleCount: 1}
					got := clusters[report.Edition2023].tiers(f)
					want := map[string]report.Tier{
						DORADeploymentFrequency: DeploymentFrequencyTier(int64(deploys), float64(days)),
						DORALeadTime:            LeadTimeTier(secs, 1), DORARecoveryTime: TimeToRestoreTier(secs, 1),
						DORAChangeFailureRate: ChangeFailureRateTier(int64(failed), 20),
					}
					for m, w := range want {
						if got[m] != w {
							t.Fatalf("%d days, %d deploys, %v s, %d/20 failed: %s %v, tiers say %v", days, deploys, secs, failed, m, got[m], w)
						}
					}
				}
			}
		}
	}
}
