package analysis

import (
	"testing"
	"time"

	"github.com/changelens/changelens/queryapi/report"
)

type dep struct {
	at       time.Duration
	rollback bool
	failure  bool
	restore  time.Duration // 0: not restored
	lead     time.Duration // 0: unknown
	failed   bool          // failed deploy attempt
}

func deps(ds ...dep) []report.Deployment {
	var out []report.Deployment
	for i, d := range ds {
		r := report.Deployment{ID: string(rune('a' + i)), DeployTime: at(d.at), Rollback: d.rollback, ChangeFailure: d.failure, Failed: d.failed}
		if d.restore > 0 {
			r.RestoreTime, r.TimeToRestore = r.DeployTime.Add(d.restore), d.restore
		}
		if d.lead > 0 {
			r.LeadTime, r.HasLeadTime = d.lead, true
		}
		out = append(out, r)
	}
	return out
}

func TestFigures(t *testing.T) {
	const day = 24 * time.Hour
	ds := deps(
		dep{at: time.Hour, lead: 2 * time.Hour},                                           // change
		dep{at: 2 * time.Hour, failure: true, restore: 30 * time.Minute, lead: time.Hour}, // failed change, restored
		dep{at: 2*time.Hour + 30*time.Minute, rollback: true, lead: 10 * time.Hour},       // the rollback (not a change: no lead time)
		dep{at: 3 * time.Hour, failure: true, lead: 4 * time.Hour},                        // failed change, not restored
		dep{at: 4 * time.Hour, rollback: true, failure: true, restore: time.Hour},         // a failing rollback: not a failed change
		dep{at: 5 * time.Hour, failure: true, restore: 3 * time.Hour},                     // failed change, restored
		dep{at: 6 * time.Hour, failed: true, lead: time.Minute},                           // failed attempt: ignored
		dep{at: day + time.Hour},           // outside [0, 1 day)
		dep{at: -time.Hour, failure: true}, // outside
	)
	f := Figures(ds, at(0), at(day))
	// Deployments in range: 6 (a..f); rollbacks 2 → changes 4; failed
	// non-rollback changes: b, d, f = 3 → CFR 3/4.
	if f.DeploymentCount != 6 || f.ChangeCount != 4 || f.FailedChangeCount != 3 || f.ChangeFailureRate != 0.75 {
		t.Errorf("counts = %+v", f)
	}
	if f.DeploymentFrequencyPerDay != 6 || f.FrequencyTier != report.TierElite {
		t.Errorf("frequency = %v %v", f.DeploymentFrequencyPerDay, f.FrequencyTier)
	}
	// Lead times 2h, 1h, 4h (the rollback's 10h left out) → median 2 h = 7200 s.
	if f.LeadTimeSampleCount != 3 || f.LeadTimeMedianSeconds != 7200 || f.LeadTimeTier != report.TierElite {
		t.Errorf("lead = %v (%d) %v", f.LeadTimeMedianSeconds, f.LeadTimeSampleCount, f.LeadTimeTier)
	}
	// Restores of failed changes b (30m) and f (3h): median 1h45m = 6300 s → HIGH (≥ 1h, < 1 day).
	if f.RestoreSampleCount != 2 || f.TimeToRestoreMedianSeconds != 6300 || f.TimeToRestoreTier != report.TierHigh {
		t.Errorf("restore = %v (%d) %v", f.TimeToRestoreMedianSeconds, f.RestoreSampleCount, f.TimeToRestoreTier)
	}
	if f.ChangeFailureRateTier != report.TierLow {
		t.Errorf("CFR tier = %v", f.ChangeFailureRateTier)
	}

	// Only rollbacks: no changes → CFR 0 and UNKNOWN tier.
	f = Figures(deps(dep{at: time.Hour, rollback: true}), at(0), at(7*day))
	if f.DeploymentCount != 1 || f.ChangeCount != 0 || f.ChangeFailureRate != 0 || f.ChangeFailureRateTier != report.TierUnknown {
		t.Errorf("rollbacks only = %+v", f)
	}
	// 1 deployment in 7 days is HIGH (≥ 1/week); no lead or restore samples.
	if f.FrequencyTier != report.TierHigh || f.LeadTimeTier != report.TierUnknown || f.TimeToRestoreTier != report.TierUnknown {
		t.Errorf("tiers = %+v", f)
	}
	// Nothing: 0/day is LOW.
	f = Figures(nil, at(0), at(day))
	if f.DeploymentCount != 0 || f.FrequencyTier != report.TierLow || f.DeploymentFrequencyPerDay != 0 {
		t.Errorf("empty = %+v", f)
	}
	// 1 failure in 10 changes → 10 %: HIGH (≤ 10 %).
	var ten []dep
	for i := 0; i < 10; i++ {
		ten = append(ten, dep{at: time.Duration(i) * time.Hour, failure: i == 0})
	}
	if f = Figures(deps(ten...), at(0), at(day)); f.ChangeFailureRate != 0.1 || f.ChangeFailureRateTier != report.TierHigh {
		t.Errorf("10 %%: %v %v", f.ChangeFailureRate, f.ChangeFailureRateTier)
	}
}

func TestBuckets(t *testing.T) {
	const day = 24 * time.Hour
	// t0 is Monday 2026-03-02. From Friday 2026-02-27 12:00 to Wednesday
	// 2026-03-11 06:00.
	start, end := at(-3*day+12*time.Hour), at(9*day+6*time.Hour)
	b, err := Buckets(start, end, report.IntervalWeek)
	if err != nil {
		t.Fatal(err)
	}
	want := []Span{{start, at(0)}, {at(0), at(7 * day)}, {at(7 * day), end}}
	if len(b) != len(want) {
		t.Fatalf("weeks = %v", b)
	}
	for i := range want {
		if !b[i].Start.Equal(want[i].Start) || !b[i].End.Equal(want[i].End) {
			t.Errorf("week %d = %v, want %v", i, b[i], want[i])
		}
	}
	if b[1].Start.Weekday() != time.Monday {
		t.Error("weeks must start on Monday")
	}
	// A Sunday belongs to the week that started the Monday before.
	b, _ = Buckets(at(-day), at(-day+time.Hour), report.IntervalWeek)
	if len(b) != 1 || !b[0].Start.Equal(at(-day)) {
		t.Errorf("sunday = %v", b)
	}

	b, _ = Buckets(start, end, report.IntervalDay)
	if len(b) != 13 || !b[0].End.Equal(at(-2*day)) || !b[12].Start.Equal(at(9*day)) {
		t.Errorf("days = %d %v", len(b), b)
	}
	b, _ = Buckets(start, end, report.IntervalMonth)
	if len(b) != 2 || !b[0].End.Equal(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("months = %v", b)
	}
	// Quarters: from mid-February to mid-August 2026 is Q1's tail, all of
	// Q2 (April–June) and Q3's head.
	qs, qe := time.Date(2026, 2, 14, 0, 0, 0, 0, time.UTC), time.Date(2026, 8, 15, 0, 0, 0, 0, time.UTC)
	b, _ = Buckets(qs, qe, report.IntervalQuarter)
	wantQ := []Span{
		{qs, time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)},
		{time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)},
		{time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC), qe},
	}
	if len(b) != len(wantQ) {
		t.Fatalf("quarters = %v", b)
	}
	for i := range wantQ {
		if !b[i].Start.Equal(wantQ[i].Start) || !b[i].End.Equal(wantQ[i].End) {
			t.Errorf("quarter %d = %v, want %v", i, b[i], wantQ[i])
		}
	}
	// December belongs to Q4, which starts October 1st.
	b, _ = Buckets(time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), report.IntervalQuarter)
	if len(b) != 2 || !b[0].End.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("quarters across the year = %v", b)
	}
	if _, err := Buckets(end, start, report.IntervalDay); err == nil {
		t.Error("inverted range accepted")
	}
	if _, err := Buckets(start, end, report.Interval(42)); err == nil {
		t.Error("unknown interval accepted")
	}
}

func TestDORAReport(t *testing.T) {
	const day = 24 * time.Hour
	ds := deps(
		dep{at: time.Hour, failure: true, restore: time.Hour},
		dep{at: 2 * time.Hour},
		dep{at: day + time.Hour},
	)
	rep, err := DORA(ds, at(0), at(3*day), report.IntervalDay, "")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Summary.DeploymentCount != 3 || rep.Summary.DeploymentFrequencyPerDay != 1 || rep.Summary.FailedChangeCount != 1 {
		t.Errorf("summary = %+v", rep.Summary)
	}
	if len(rep.Intervals) != 3 {
		t.Fatalf("intervals = %d", len(rep.Intervals))
	}
	for i, want := range []int{2, 1, 0} {
		if got := rep.Intervals[i].DeploymentCount; got != want {
			t.Errorf("day %d count = %d, want %d", i, got, want)
		}
	}
	if c := rep.Intervals[0]; c.ChangeFailureRate != 0.5 || c.RestoreSampleCount != 1 || c.TimeToRestoreMedianSeconds != 3600 || c.TimeToRestoreTier != report.TierHigh {
		t.Errorf("day 0 = %+v", c)
	}
	if c := rep.Intervals[2]; c.FrequencyTier != report.TierLow || c.ChangeFailureRateTier != report.TierUnknown {
		t.Errorf("day 2 = %+v", c)
	}
	rep, _ = DORA(ds, at(0), at(3*day), report.IntervalAll, "")
	if len(rep.Intervals) != 0 {
		t.Errorf("ALL intervals = %v", rep.Intervals)
	}
	if _, err := DORA(ds, at(0), at(0), report.IntervalAll, ""); err == nil {
		t.Error("empty range accepted")
	}
}
