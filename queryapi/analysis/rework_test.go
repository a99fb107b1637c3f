package analysis

import (
	"math"
	"testing"
	"time"

	"github.com/changelens/changelens/queryapi/report"
)

// TestMarkRework: one unit's sequence with every kind of rework, another
// unit interleaved (never a predecessor across units), and a failed attempt
// (never rework, never a predecessor).
func TestMarkRework(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	d := func(id, svc string, hours float64, mut func(*report.Deployment)) report.Deployment {
		x := report.Deployment{ID: id, Service: svc, Environment: "prod", DeployTime: t0.Add(time.Duration(hours * float64(time.Hour)))}
		if mut != nil {
			mut(&x)
		}
		return x
	}
	failure := func(x *report.Deployment) { x.ChangeFailure = true }
	deps := []report.Deployment{
		d("a1", "a", 0, nil),
		d("a2", "a", 1, failure), // regressed
		d("b1", "b", 1.5, nil),   // another unit: not a's successor
		d("a3", "a", 2, nil),     // follows a2 within 24 h: FIX_FORWARD
		d("a4", "a", 3, failure), // regressed …
		d("af", "a", 3.5, func(x *report.Deployment) { x.Failed = true }), // a failed attempt: nothing
		d("a5", "a", 4, func(x *report.Deployment) { x.Rollback = true }), // … and rolled back: ROLLBACK
		d("a6", "a", 30, func(x *report.Deployment) { x.ReworkMark = "hotfix" }),
		d("a7", "a", 31, func(x *report.Deployment) { x.ReworkMark = "revert"; x.ChangeFailure = true }),
		d("a8", "a", 31+25, nil), // after a7's failure, but 25 h later: planned work
		d("b2", "b", 2, nil),
	}
	MarkRework(deps, 24*time.Hour)
	want := map[string]report.ReworkReason{"a3": report.ReworkFixForward, "a5": report.ReworkRollback,
		"a6": report.ReworkHotfix, "a7": report.ReworkRevert}
	for _, x := range deps {
		if x.ReworkReason != want[x.ID] {
			t.Errorf("%s: %v, want %v", x.ID, x.ReworkReason, want[x.ID])
		}
	}
	f := Figures(deps, t0, t0.Add(60*time.Hour))
	if f.DeploymentCount != 10 || f.ReworkCount != 4 || math.Abs(f.ReworkRate-0.4) > 1e-12 {
		t.Errorf("figures: %d deployments, %d rework, rate %v; want 10, 4, 0.4", f.DeploymentCount, f.ReworkCount, f.ReworkRate)
	}
}

// TestBenchmarks: the 2025 scores of figures placed on each answer of the
// Quick Check, the industry's distribution beside them, and the 2023
// clusters.
func TestBenchmarks(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	f := report.DORAFigures{Start: t0, End: t0.Add(30 * 24 * time.Hour),
		DeploymentCount: 60, DeploymentFrequencyPerDay: 2, // once per hour to once per day: answer 5 → 8
		ChangeCount: 50, FailedChangeCount: 5, ChangeFailureRate: 0.1, // 10 − 1 = 9
		LeadTimeMedianSeconds: 3 * 86400, LeadTimeSampleCount: 40, // one day to one week: answer 4 → 6
		TimeToRestoreMedianSeconds: 1800, RestoreSampleCount: 5, // less than one hour: answer 6 → 10
		ReworkRate:    0.25, // 10 − 2.5 = 7.5
		FrequencyTier: report.TierElite, LeadTimeTier: report.TierHigh, ChangeFailureRateTier: report.TierHigh,
		TimeToRestoreTier: report.TierElite}
	want := map[string]float64{DORADeploymentFrequency: 8, DORAChangeFailureRate: 9, DORALeadTime: 6, DORARecoveryTime: 10, DORAReworkRate: 7.5}
	bs := Benchmarks(f, "")
	if len(bs) != 5 {
		t.Fatalf("%d benchmarks", len(bs))
	}
	for _, b := range bs {
		if b.Edition != report.Edition2025 || !b.Scored || math.Abs(b.Score-want[b.Metric]) > 1e-12 {
			t.Errorf("%s: edition %s score %v, want 2025 and %v", b.Metric, b.Edition, b.Score, want[b.Metric])
		}
		if !(b.Percentile > 0 && b.Percentile < 1) || !(b.IndustryStd > 0) {
			t.Errorf("%s: industry %v ± %v, percentile %v", b.Metric, b.IndustryMean, b.IndustryStd, b.Percentile)
		}
	}
	// Lead time 6 against the industry's 5.5 ± 2.4: Φ(0.5/2.4) ≈ 0.5825.
	if p := bs[1].Percentile; bs[1].Metric != DORALeadTime || math.Abs(p-0.5825) > 1e-3 {
		t.Errorf("lead time percentile %v, want ≈ 0.5825", p)
	}
	// No samples: no score.
	if s := Score2025(report.DORAFigures{}, DORALeadTime); !math.IsNaN(s) {
		t.Errorf("lead time without samples scored %v", s)
	}
	for _, b := range Benchmarks(f, report.Edition2023) {
		wantTier := map[string]report.Tier{DORADeploymentFrequency: report.TierElite, DORALeadTime: report.TierHigh,
			DORAChangeFailureRate: report.TierHigh, DORARecoveryTime: report.TierElite, DORAReworkRate: report.TierUnknown}[b.Metric]
		if b.Tier != wantTier || b.Scored || b.IndustryStd != 0 {
			t.Errorf("2023 %s: tier %v score %v, want %v", b.Metric, b.Tier, b.Score, wantTier)
		}
	}
}
