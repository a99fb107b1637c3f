package analysis

import (
	"math"

	"github.com/changelens/changelens/queryapi/report"
)

// clusterTable is one report's four performance clusters as gap-free
// boundaries (docs/dora.md "Tiers"): a figure is the best cluster whose
// boundary it meets. The reports print ranges with gaps between them
// ("less than one hour", then "one day to one week"); a figure in a gap
// takes the next cluster down, as the 2023 table always did.
type clusterTable struct {
	// At least one deployment per this many days: ELITE, HIGH, MEDIUM
	// (compared as count·period ≥ days, as DeploymentFrequencyTier does).
	frequency [3]float64
	// Exclusive upper bounds in seconds: ELITE, HIGH, MEDIUM.
	lead, restore [3]float64
	// changeFailure places a change failure rate.
	changeFailure func(failed, changes int64) report.Tier
}

// clusters are the tables of the editions that have clusters; 2025 has
// none (Benchmarks scores it instead).
var clusters = map[string]clusterTable{
	// 2021 (Accelerate State of DevOps 2021, "Software delivery
	// performance"): elite deploys on demand, several times a day; high
	// weekly to monthly; medium monthly to every six months; lead time
	// under an hour, a day to a week, a month to six months, longer;
	// restore under an hour, under a day, a day to a week, longer; change
	// failure 0–15 % elite and 16–30 % for the other three alike.
	report.Edition2021: {
		frequency:     [3]float64{1, daysPerMonth, 6 * daysPerMonth},
		lead:          [3]float64{secondsPerHour, secondsPerWeek, 6 * daysPerMonth * secondsPerDay},
		restore:       [3]float64{secondsPerHour, secondsPerDay, secondsPerWeek},
		changeFailure: changeFailureTier2021,
	},
	report.Edition2023: {
		frequency:     [3]float64{1, daysPerWeek, daysPerMonth},
		lead:          [3]float64{secondsPerDay, secondsPerWeek, daysPerMonth * secondsPerDay},
		restore:       [3]float64{secondsPerHour, secondsPerDay, secondsPerWeek},
		changeFailure: ChangeFailureRateTier,
	},
	// 2024 (Accelerate State of DevOps 2024, "Software delivery
	// performance levels"): elite on demand, lead under a day, 5 %,
	// recovery under an hour; high daily to weekly, a day to a week, 20 %,
	// under a day; medium weekly to monthly, a week to a month, 10 %, under
	// a day; low monthly to every six months, one to six months, 40 %, a
	// week to a month.
	report.Edition2024: {
		frequency:     [3]float64{1, daysPerWeek, daysPerMonth},
		lead:          [3]float64{secondsPerDay, secondsPerWeek, daysPerMonth * secondsPerDay},
		restore:       [3]float64{secondsPerHour, secondsPerDay, secondsPerDay},
		changeFailure: changeFailureTier2024,
	},
}

// changeFailureTier2021: ELITE ≤ 15 %; above that the report gives high,
// medium and low the same range (16–30 %), so the rate alone cannot tell
// them apart: HIGH up to 30 %, LOW beyond the range any cluster reported.
func changeFailureTier2021(failed, changes int64) report.Tier {
	if changes < 1 || failed < 0 || failed > changes {
		return report.TierUnknown
	}
	switch r := float64(failed) / float64(changes); {
	case r <= 0.15:
		return report.TierElite
	case r <= 0.30:
		return report.TierHigh
	}
	return report.TierLow
}

// changeFailureTier2024: the 2024 clusters are a typical rate each (elite
// 5 %, medium 10 %, high 20 %, low 40 % — medium's below high's, as the
// report found), not ranges: the cluster whose rate is nearest; a rate
// as near two of them (15 %: medium's 10, high's 20) takes the better
// cluster (high).
func changeFailureTier2024(failed, changes int64) report.Tier {
	if changes < 1 || failed < 0 || failed > changes {
		return report.TierUnknown
	}
	r := float64(failed) / float64(changes)
	best, bestDist := report.TierUnknown, math.Inf(1)
	for _, c := range []struct {
		tier report.Tier
		rate float64
	}{{report.TierElite, 0.05}, {report.TierHigh, 0.20}, {report.TierMedium, 0.10}, {report.TierLow, 0.40}} {
		if d := math.Abs(r - c.rate); d < bestDist-1e-12 {
			best, bestDist = c.tier, d
		}
	}
	return best
}

// tiers places f's four keys in table's clusters.
func (table clusterTable) tiers(f report.DORAFigures) map[string]report.Tier {
	days := f.End.Sub(f.Start).Hours() / 24
	freq := report.TierUnknown
	if f.DeploymentCount >= 0 && days > 0 && !math.IsInf(days, 1) {
		c := float64(f.DeploymentCount)
		switch {
		case c*table.frequency[0] >= days:
			freq = report.TierElite
		case c*table.frequency[1] >= days:
			freq = report.TierHigh
		case c*table.frequency[2] >= days:
			freq = report.TierMedium
		default:
			freq = report.TierLow
		}
	}
	return map[string]report.Tier{
		DORADeploymentFrequency: freq,
		DORALeadTime:            durationTier(f.LeadTimeMedianSeconds, int64(f.LeadTimeSampleCount), table.lead[0], table.lead[1], table.lead[2]),
		DORARecoveryTime:        durationTier(f.TimeToRestoreMedianSeconds, int64(f.RestoreSampleCount), table.restore[0], table.restore[1], table.restore[2]),
		DORAChangeFailureRate:   table.changeFailure(int64(f.FailedChangeCount), int64(f.ChangeCount)),
	}
}
