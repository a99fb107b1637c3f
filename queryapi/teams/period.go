package teams

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"time"
)

// Period is a calendar quarter or month in UTC: [Start, End).
type Period struct {
	Name       string // "2026-Q4" or "2026-11"
	Start, End time.Time
	quarter    bool
}

var (
	periodQuarterRe = regexp.MustCompile(`^([0-9]{4})-Q([1-4])$`)
	periodMonthRe   = regexp.MustCompile(`^([0-9]{4})-(0[1-9]|1[0-2])$`)
)

// ParsePeriod parses "YYYY-Qn" (a quarter) or "YYYY-MM" (a month).
func ParsePeriod(s string) (Period, error) {
	if m := periodQuarterRe.FindStringSubmatch(s); m != nil {
		y, _ := strconv.Atoi(m[1])
		q, _ := strconv.Atoi(m[2])
		return quarterPeriod(y, q), nil
	}
	if m := periodMonthRe.FindStringSubmatch(s); m != nil {
		y, _ := strconv.Atoi(m[1])
		mo, _ := strconv.Atoi(m[2])
		return monthPeriod(y, time.Month(mo)), nil
	}
	return Period{}, fmt.Errorf("%q is not a period: YYYY-Qn (a quarter) or YYYY-MM (a month)", s)
}

func quarterPeriod(y, q int) Period {
	start := time.Date(y, time.Month(3*(q-1)+1), 1, 0, 0, 0, 0, time.UTC)
	return Period{Name: fmt.Sprintf("%04d-Q%d", y, q), Start: start, End: start.AddDate(0, 3, 0), quarter: true}
}

func monthPeriod(y int, m time.Month) Period {
	start := time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
	return Period{Name: fmt.Sprintf("%04d-%02d", y, int(m)), Start: start, End: start.AddDate(0, 1, 0)}
}

// IsQuarter reports whether p is a quarter (else a month).
func (p Period) IsQuarter() bool { return p.quarter }

// Previous is the period of the same kind just before p.
func (p Period) Previous() Period {
	prev := p.Start.AddDate(0, -1, 0)
	if p.quarter {
		return quarterPeriod(prev.Year(), (int(prev.Month())-1)/3+1)
	}
	return monthPeriod(prev.Year(), prev.Month())
}

// Quarter is the quarter holding p ("YYYY-Qn"): the focus of a month is
// that of its quarter.
func (p Period) Quarter() string {
	return fmt.Sprintf("%04d-Q%d", p.Start.Year(), (int(p.Start.Month())-1)/3+1)
}

// Units of the metrics in a retrospective.
const (
	UnitPerDay  = "per_day"
	UnitSeconds = "seconds"
	UnitRatio   = "ratio"
)

// Trends of a metric from one period to the next.
const (
	TrendImproved  = "IMPROVED"
	TrendWorsened  = "WORSENED"
	TrendUnchanged = "UNCHANGED"
	TrendNoData    = "NO_DATA"
)

// UnchangedWithin is the relative change below which a metric is UNCHANGED:
// ±5 % of a period's figure is within what a few deployments more or less
// move it, not a change a team made.
const UnchangedWithin = 0.05

// MetricUnit is the unit a metric is reported in.
func MetricUnit(metric string) string {
	switch metric {
	case "deployment_frequency":
		return UnitPerDay
	case "lead_time", "failed_deployment_recovery_time":
		return UnitSeconds
	default:
		return UnitRatio
	}
}

// HigherIsBetter: only deployment frequency improves by rising; lead time,
// recovery time, change failure and rework rate improve by falling.
func HigherIsBetter(metric string) bool { return metric == "deployment_frequency" }

// Trend compares current with previous (NaN = no data): the relative
// change (current − previous) ÷ previous (NaN when either is missing or
// previous is 0) and its reading for the metric. Within ±UnchangedWithin
// it is UNCHANGED; from 0 to a non-zero figure the direction alone decides.
func Trend(metric string, current, previous float64) (change float64, trend string) {
	if math.IsNaN(current) || math.IsNaN(previous) {
		return math.NaN(), TrendNoData
	}
	diff := current - previous
	if previous == 0 {
		change = math.NaN()
		if current == 0 {
			return change, TrendUnchanged
		}
	} else {
		change = diff / math.Abs(previous)
		if math.Abs(change) <= UnchangedWithin {
			return change, TrendUnchanged
		}
	}
	if (diff > 0) == HigherIsBetter(metric) {
		return change, TrendImproved
	}
	return change, TrendWorsened
}

// TargetMet reports whether value meets target for the metric (both in the
// metric's unit): at least the target when higher is better, at most it
// otherwise. ok is false when either is missing (NaN).
func TargetMet(metric string, value, target float64) (met, ok bool) {
	if math.IsNaN(value) || math.IsNaN(target) {
		return false, false
	}
	if HigherIsBetter(metric) {
		return value >= target, true
	}
	return value <= target, true
}

// Target returns the team's target for metric in the metric's unit (hours
// → seconds), NaN when it set none.
func (t Targets) Target(metric string) float64 {
	var v *float64
	scale := 1.0
	switch metric {
	case "deployment_frequency":
		v = t.DeploymentFrequencyPerDay
	case "lead_time":
		v, scale = t.LeadTimeHours, 3600
	case "change_failure_rate":
		v = t.ChangeFailureRate
	case "failed_deployment_recovery_time":
		v, scale = t.RecoveryTimeHours, 3600
	case "rework_rate":
		v = t.ReworkRate
	}
	if v == nil {
		return math.NaN()
	}
	return *v * scale
}
