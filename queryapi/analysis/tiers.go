package analysis

import (
	"math"
	"math/bits"

	"github.com/changelens/changelens/queryapi/report"
)

// The DORA performance clusters (docs/dora.md, after the DORA 2023 report's
// clusters, with gap-free boundaries) as report.Tier.

// Durations used by the tier boundaries. A month is 30 days, matching the
// lead-time boundary "MEDIUM < 30 days".
const (
	secondsPerHour = 3600.0
	secondsPerDay  = 24 * secondsPerHour
	secondsPerWeek = 7 * secondsPerDay
	daysPerWeek    = 7.0
	daysPerMonth   = 30.0
)

// DeploymentFrequencyTier classifies deployments per day, given the number
// of deployments and the length of the range in days:
// ELITE ≥ 1/day, HIGH ≥ 1/week, MEDIUM ≥ 1/month (30 days), else LOW.
// The comparisons are made as count·period ≥ days, so boundary cases such
// as 4 deployments in 28 days are not disturbed by division rounding.
//
// Too few samples: the sample here is the observed range, so the tier is
// UNKNOWN when rangeDays is not a positive finite number or deployments is
// negative. Zero deployments over a valid range is a measurement of 0/day
// and gives LOW.
func DeploymentFrequencyTier(deployments int64, rangeDays float64) report.Tier {
	if deployments < 0 || !(rangeDays > 0) || math.IsInf(rangeDays, 1) {
		return report.TierUnknown
	}
	c := float64(deployments)
	switch {
	case c >= rangeDays:
		return report.TierElite
	case c*daysPerWeek >= rangeDays:
		return report.TierHigh
	case c*daysPerMonth >= rangeDays:
		return report.TierMedium
	}
	return report.TierLow
}

// LeadTimeTier classifies the median lead time for changes:
// ELITE < 1 day, HIGH < 1 week, MEDIUM < 30 days, else LOW.
// Too few samples: UNKNOWN when samples < 1 (no deployment with a commit
// time) or the median is NaN or negative.
func LeadTimeTier(medianSeconds float64, samples int64) report.Tier {
	return durationTier(medianSeconds, samples, secondsPerDay, secondsPerWeek, daysPerMonth*secondsPerDay)
}

// ChangeFailureRate returns failed ÷ changes, and 0 when there are no
// changes (docs/dora.md: the counts say so).
func ChangeFailureRate(failed, changes int64) float64 {
	if changes <= 0 {
		return 0
	}
	return float64(failed) / float64(changes)
}

// ChangeFailureRateTier classifies failed ÷ changes:
// ELITE ≤ 5 %, HIGH ≤ 10 %, MEDIUM ≤ 15 %, else LOW, compared exactly in
// integers (100·failed ≤ 5·changes, ..., without overflow).
// Too few samples: UNKNOWN when changes < 1, or the counts are impossible
// (failed < 0 or failed > changes).
func ChangeFailureRateTier(failed, changes int64) report.Tier {
	if changes < 1 || failed < 0 || failed > changes {
		return report.TierUnknown
	}
	// pct·changes ≥ 100·failed, exactly, in 128-bit arithmetic.
	within := func(pct uint64) bool {
		fh, fl := bits.Mul64(uint64(failed), 100)
		ch, cl := bits.Mul64(uint64(changes), pct)
		return fh < ch || (fh == ch && fl <= cl)
	}
	switch {
	case within(5):
		return report.TierElite
	case within(10):
		return report.TierHigh
	case within(15):
		return report.TierMedium
	}
	return report.TierLow
}

// TimeToRestoreTier classifies the median failed-deployment recovery time:
// ELITE < 1 hour, HIGH < 1 day, MEDIUM < 1 week, else LOW.
// Too few samples: UNKNOWN when samples < 1 (no failed deployment has been
// restored yet) or the median is NaN or negative.
func TimeToRestoreTier(medianSeconds float64, samples int64) report.Tier {
	return durationTier(medianSeconds, samples, secondsPerHour, secondsPerDay, secondsPerWeek)
}

// durationTier classifies a median duration against the exclusive upper
// bounds of ELITE, HIGH and MEDIUM (UNKNOWN without samples or with a NaN or
// negative median).
func durationTier(medianSeconds float64, samples int64, elite, high, medium float64) report.Tier {
	if samples < 1 || math.IsNaN(medianSeconds) || medianSeconds < 0 {
		return report.TierUnknown
	}
	switch {
	case medianSeconds < elite:
		return report.TierElite
	case medianSeconds < high:
		return report.TierHigh
	case medianSeconds < medium:
		return report.TierMedium
	}
	return report.TierLow
}
