package stats

import (
	"math"
	"testing"
)

func TestDeploymentFrequencyTier(t *testing.T) {
	tests := []struct {
		name  string
		count int64
		days  float64
		want  Tier
	}{
		{"1 per day exactly", 30, 30, TierElite},
		{"several per day", 100, 7, TierElite},
		{"just under 1 per day", 29, 30, TierHigh},
		{"1 per week exactly", 1, 7, TierHigh},
		{"4 in 28 days", 4, 28, TierHigh},
		{"just under 1 per week", 4, 28.0001, TierMedium},
		{"1 per month (30 days) exactly", 3, 90, TierMedium},
		{"1 in 30 days", 1, 30, TierMedium},
		{"1 in 31 days", 1, 31, TierLow},
		{"none over a quarter", 0, 90, TierLow},
		{"one hour range, one deploy", 1, 1.0 / 24, TierElite},
		{"empty range", 5, 0, TierUnknown},
		{"negative range", 5, -1, TierUnknown},
		{"NaN range", 5, math.NaN(), TierUnknown},
		{"infinite range", 5, math.Inf(1), TierUnknown},
		{"negative count", -1, 10, TierUnknown},
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
		want    Tier
	}{
		{"minutes", 600, 10, TierElite},
		{"just under a day", day - 1, 3, TierElite},
		{"exactly a day", day, 3, TierHigh},
		{"just under a week", 7*day - 0.001, 3, TierHigh},
		{"exactly a week", 7 * day, 3, TierMedium},
		{"just under 30 days", 30*day - 1, 3, TierMedium},
		{"exactly 30 days", 30 * day, 3, TierLow},
		{"a year", 365 * day, 1, TierLow},
		{"one sample is enough", 60, 1, TierElite},
		{"no samples", 60, 0, TierUnknown},
		{"no samples, zero median", 0, 0, TierUnknown},
		{"NaN median", math.NaN(), 5, TierUnknown},
		{"negative median", -5, 5, TierUnknown},
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
		want            Tier
	}{
		{"none failed", 0, 10, TierElite},
		{"5% exactly", 1, 20, TierElite},
		{"5% exactly, large", 5, 100, TierElite},
		{"just over 5%", 6, 119, TierHigh}, // 5.04 %
		{"10% exactly", 1, 10, TierHigh},
		{"just over 10%", 11, 109, TierMedium},
		{"15% exactly", 3, 20, TierMedium},
		{"just over 15%", 16, 106, TierLow},
		{"all failed", 4, 4, TierLow},
		{"no changes", 0, 0, TierUnknown},
		{"impossible: failed > changes", 5, 4, TierUnknown},
		{"impossible: negative", -1, 4, TierUnknown},
		{"huge counts, 5%", math.MaxInt64 / 20, math.MaxInt64 / 20 * 20, TierElite},
		{"huge counts, just over 5%", math.MaxInt64/20 + 1, math.MaxInt64 / 20 * 20, TierHigh},
		{"huge counts, 50%", math.MaxInt64 / 2, math.MaxInt64/2 + math.MaxInt64/2, TierLow},
	}
	for _, tc := range tests {
		if got := ChangeFailureRateTier(tc.failed, tc.changes); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	// 0.15 is not exactly representable; the integer comparison must not care.
	for changes := int64(20); changes <= 2000; changes += 20 {
		if got := ChangeFailureRateTier(changes*15/100, changes); got != TierMedium {
			t.Errorf("%d/%d = 15%%: %v, want MEDIUM", changes*15/100, changes, got)
		}
		if got := ChangeFailureRateTier(changes*5/100, changes); got != TierElite {
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
		want    Tier
	}{
		{"minutes", 300, 2, TierElite},
		{"just under an hour", hour - 1, 2, TierElite},
		{"exactly an hour", hour, 2, TierHigh},
		{"just under a day", day - 1, 2, TierHigh},
		{"exactly a day", day, 2, TierMedium},
		{"just under a week", 7*day - 1, 2, TierMedium},
		{"exactly a week", 7 * day, 2, TierLow},
		{"zero (restored instantly)", 0, 1, TierElite},
		{"nothing restored", 300, 0, TierUnknown},
		{"NaN", math.NaN(), 3, TierUnknown},
	}
	for _, tc := range tests {
		if got := TimeToRestoreTier(tc.median, tc.samples); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestTierString(t *testing.T) {
	for tier, s := range map[Tier]string{TierUnknown: "UNKNOWN", TierLow: "LOW", TierMedium: "MEDIUM", TierHigh: "HIGH", TierElite: "ELITE", Tier(42): "UNKNOWN"} {
		if tier.String() != s {
			t.Errorf("%d: %q, want %q", tier, tier.String(), s)
		}
	}
	if !(TierElite > TierHigh && TierHigh > TierMedium && TierMedium > TierLow && TierLow > TierUnknown) {
		t.Error("tiers should order from UNKNOWN to ELITE")
	}
}
