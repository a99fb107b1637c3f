package analysis

import (
	"math"
	"testing"

	"github.com/changelens/changelens/queryapi/report"
)

func TestDeploymentFrequencyTier(t *testing.T) {
	tests := []struct {
		name  string
		count int64
		days  float64
		want  report.Tier
	}{
		{"1 per day exactly", 30, 30, report.TierElite},
		{"several per day", 100, 7, report.TierElite},
		{"just under 1 per day", 29, 30, report.TierHigh},
		{"1 per week exactly", 1, 7, report.TierHigh},
		{"4 in 28 days", 4, 28, report.TierHigh},
		{"just under 1 per week", 4, 28.0001, report.TierMedium},
		{"1 per month (30 days) exactly", 3, 90, report.TierMedium},
		{"1 in 30 days", 1, 30, report.TierMedium},
		{"1 in 31 days", 1, 31, report.TierLow},
		{"none over a quarter", 0, 90, report.TierLow},
		{"one hour range, one deploy", 1, 1.0 / 24, report.TierElite},
		{"empty range", 5, 0, report.TierUnknown},
		{"negative range", 5, -1, report.TierUnknown},
		{"NaN range", 5, math.NaN(), report.TierUnknown},
		{"infinite range", 5, math.Inf(1), report.TierUnknown},
		{"negative count", -1, 10, report.TierUnknown},
	}
	for _, tc := range tests {
		if got := DeploymentFrequencyTier(tc.count, tc.days); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestLeadTimeTier(t *testing.T) {
	const day = 86400.0
	tests := []struct {
		name    string
		median  float64
		samples int64
		want    report.Tier
	}{
		{"minutes", 600, 10, report.TierElite},
		{"just under a day", day - 1, 3, report.TierElite},
		{"exactly a day", day, 3, report.TierHigh},
		{"just under a week", 7*day - 0.001, 3, report.TierHigh},
		{"exactly a week", 7 * day, 3, report.TierMedium},
		{"just under 30 days", 30*day - 1, 3, report.TierMedium},
		{"exactly 30 days", 30 * day, 3, report.TierLow},
		{"a year", 365 * day, 1, report.TierLow},
		{"one sample is enough", 60, 1, report.TierElite},
		{"no samples", 60, 0, report.TierUnknown},
		{"no samples, zero median", 0, 0, report.TierUnknown},
		{"NaN median", math.NaN(), 5, report.TierUnknown},
		{"negative median", -5, 5, report.TierUnknown},
	}
	for _, tc := range tests {
		if got := LeadTimeTier(tc.median, tc.samples); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestChangeFailureRateTier(t *testing.T) {
	tests := []struct {
		name            string
		failed, changes int64
		want            report.Tier
	}{
		{"none failed", 0, 10, report.TierElite},
		{"5% exactly", 1, 20, report.TierElite},
		{"5% exactly, large", 5, 100, report.TierElite},
		{"just over 5%", 6, 119, report.TierHigh}, // 5.04 %
		{"10% exactly", 1, 10, report.TierHigh},
		{"just over 10%", 11, 109, report.TierMedium},
		{"15% exactly", 3, 20, report.TierMedium},
		{"just over 15%", 16, 106, report.TierLow},
		{"all failed", 4, 4, report.TierLow},
		{"no changes", 0, 0, report.TierUnknown},
		{"impossible: failed > changes", 5, 4, report.TierUnknown},
		{"impossible: negative", -1, 4, report.TierUnknown},
		{"huge counts, 5%", math.MaxInt64 / 20, math.MaxInt64 / 20 * 20, report.TierElite},
		{"huge counts, just over 5%", math.MaxInt64/20 + 1, math.MaxInt64 / 20 * 20, report.TierHigh},
		{"huge counts, 50%", math.MaxInt64 / 2, math.MaxInt64/2 + math.MaxInt64/2, report.TierLow},
	}
	for _, tc := range tests {
		if got := ChangeFailureRateTier(tc.failed, tc.changes); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	// 0.15 is not exactly representable; the integer comparison must not care.
	for changes := int64(20); changes <= 2000; changes += 20 {
		if got := ChangeFailureRateTier(changes*15/100, changes); got != report.TierMedium {
			t.Errorf("%d/%d = 15%%: %v, want MEDIUM", changes*15/100, changes, got)
		}
		if got := ChangeFailureRateTier(changes*5/100, changes); got != report.TierElite {
			t.Errorf("%d/%d = 5%%: %v, want ELITE", changes*5/100, changes, got)
		}
	}
}

func TestChangeFailureRate(t *testing.T) {
	if r := ChangeFailureRate(0, 0); r != 0 {
		t.Errorf("0/0 = %v, want 0", r)
	}
	if r := ChangeFailureRate(3, 12); r != 0.25 {
		t.Errorf("3/12 = %v", r)
	}
}

func TestTimeToRestoreTier(t *testing.T) {
	const hour, day = 3600.0, 86400.0
	tests := []struct {
		name    string
		median  float64
		samples int64
		want    report.Tier
	}{
		{"minutes", 300, 2, report.TierElite},
		{"just under an hour", hour - 1, 2, report.TierElite},
		{"exactly an hour", hour, 2, report.TierHigh},
		{"just under a day", day - 1, 2, report.TierHigh},
		{"exactly a day", day, 2, report.TierMedium},
		{"just under a week", 7*day - 1, 2, report.TierMedium},
		{"exactly a week", 7 * day, 2, report.TierLow},
		{"zero (restored instantly)", 0, 1, report.TierElite},
		{"nothing restored", 300, 0, report.TierUnknown},
		{"NaN", math.NaN(), 3, report.TierUnknown},
	}
	for _, tc := range tests {
		if got := TimeToRestoreTier(tc.median, tc.samples); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestTierOrder(t *testing.T) {
	if !(report.TierElite > report.TierHigh && report.TierHigh > report.TierMedium && report.TierMedium > report.TierLow && report.TierLow > report.TierUnknown) {
		t.Error("tiers should order from UNKNOWN to ELITE")
	}
}
