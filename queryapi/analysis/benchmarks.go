package analysis

import (
	"math"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/changelens/changelens/queryapi/report"
)

// Metric names of a DORA benchmark (report.MetricBenchmark.Metric).
const (
	DORADeploymentFrequency = "deployment_frequency"
	DORALeadTime            = "lead_time"
	DORAChangeFailureRate   = "change_failure_rate"
	DORARecoveryTime        = "failed_deployment_recovery_time"
	DORAReworkRate          = "rework_rate"
)

// industry2025 is the 2025 report's distribution of each metric's score
// over all industries (mean, standard deviation), as dora.dev's Quick Check
// publishes it (github.com/dora-team/dora.dev,
// svelte/quick-check/src/lib/data/editions/2025/industry_metrics.json, key
// "all"), with change failure and rework turned into "high is best" scores
// (10 − the published figure) as the Quick Check shows them.
var industry2025 = map[string][2]float64{
	DORALeadTime:            {5.5, 2.4},
	DORADeploymentFrequency: {4.8, 2.8},
	DORAChangeFailureRate:   {10 - 1.9, 2.1},
	DORARecoveryTime:        {7.4, 2.1},
	DORAReworkRate:          {10 - 2.2, 2.2},
}

// Benchmarks places f against an edition (report.Editions; "" is the
// default): 2021, 2023, 2024 — that report's performance clusters
// (clusters; rework has none); 2025 — a 0–10 score per metric as the Quick Check computes it
// (Score2025) beside the industry's mean and standard deviation, and the
// share of the industry scoring lower.
func Benchmarks(f report.DORAFigures, edition string) []report.MetricBenchmark {
	if edition == "" {
		edition = report.DefaultEdition
	}
	metrics := []string{DORADeploymentFrequency, DORALeadTime, DORAChangeFailureRate, DORARecoveryTime, DORAReworkRate}
	out := make([]report.MetricBenchmark, 0, len(metrics))
	for _, m := range metrics {
		b := report.MetricBenchmark{Metric: m, Edition: edition}
		if table, ok := clusters[edition]; ok {
			b.Tier = table.tiers(f)[m] // rework has no cluster: UNKNOWN
			out = append(out, b)
			continue
		}
		d := industry2025[m]
		b.IndustryMean, b.IndustryStd = d[0], d[1]
		if s := Score2025(f, m); !math.IsNaN(s) {
			b.Scored, b.Score = true, s
			b.Percentile = distuv.Normal{Mu: d[0], Sigma: d[1]}.CDF(s)
		}
		out = append(out, b)
	}
	return out
}

// Score2025 is a metric's 0–10 score as the 2025 Quick Check computes it
// from a survey answer: the durations and the frequency fall into its six
// answers (1 worst … 6 best), scored (answer − 1) × 2; the change failure
// and rework rates score 10 − 10 × rate. NaN without a sample.
//
// Answers: lead time and recovery time — more than six months, one to six
// months, one week to one month, one day to one week, less than one day,
// less than one hour; frequency — less than once per six months, once per
// month to once per six months, once per week to once per month, once per
// day to once per week, once per hour to once per day, on demand (more
// than once an hour on average).
func Score2025(f report.DORAFigures, metric string) float64 {
	answerScore := func(a int) float64 { return float64(a-1) * 2 }
	duration := func(seconds float64, samples int) float64 {
		if samples < 1 || math.IsNaN(seconds) || seconds < 0 {
			return math.NaN()
		}
		switch {
		case seconds < secondsPerHour:
			return answerScore(6)
		case seconds < secondsPerDay:
			return answerScore(5)
		case seconds < secondsPerWeek:
			return answerScore(4)
		case seconds < daysPerMonth*secondsPerDay:
			return answerScore(3)
		case seconds < 6*daysPerMonth*secondsPerDay:
			return answerScore(2)
		}
		return answerScore(1)
	}
	rate := func(r float64, n int) float64 {
		if n < 1 {
			return math.NaN()
		}
		return 10 - 10*r
	}
	switch metric {
	case DORALeadTime:
		return duration(f.LeadTimeMedianSeconds, f.LeadTimeSampleCount)
	case DORARecoveryTime:
		return duration(f.TimeToRestoreMedianSeconds, f.RestoreSampleCount)
	case DORAChangeFailureRate:
		return rate(f.ChangeFailureRate, f.ChangeCount)
	case DORAReworkRate:
		return rate(f.ReworkRate, f.DeploymentCount)
	case DORADeploymentFrequency:
		perDay := f.DeploymentFrequencyPerDay
		if math.IsNaN(perDay) || f.End.Sub(f.Start) <= 0 {
			return math.NaN()
		}
		switch {
		case perDay > 24:
			return answerScore(6)
		case perDay >= 1:
			return answerScore(5)
		case perDay*daysPerWeek >= 1:
			return answerScore(4)
		case perDay*daysPerMonth >= 1:
			return answerScore(3)
		case perDay*6*daysPerMonth >= 1:
			return answerScore(2)
		}
		return answerScore(1)
	}
	return math.NaN()
}
