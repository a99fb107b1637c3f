package analysis

import (
	"errors"
	"fmt"
	"time"

	"github.com/changelens/changelens/internal/stats"
	"github.com/changelens/changelens/queryapi/report"
)

// MaxBuckets bounds the number of interval buckets of one DORA report.
const MaxBuckets = 10000

// ErrInvalidRange is returned for an empty or inverted range.
var ErrInvalidRange = errors.New("analysis: end must be after start")

// DORA computes the docs/dora.md figures of deps over [start, end), plus one
// entry per calendar bucket of interval (none for IntervalAll). deps are
// analysed deployments (Timeline.Analyze); the caller passes those of one
// environment. Deployments outside the range and failed deploy attempts are
// ignored.
func DORA(deps []report.Deployment, start, end time.Time, interval report.Interval, edition string) (report.DORAReport, error) {
	if !end.After(start) {
		return report.DORAReport{}, ErrInvalidRange
	}
	start, end = start.UTC(), end.UTC()
	rep := report.DORAReport{Summary: Figures(deps, start, end)}
	rep.Summary.Benchmarks = Benchmarks(rep.Summary, edition)
	if interval == report.IntervalAll {
		return rep, nil
	}
	bounds, err := Buckets(start, end, interval)
	if err != nil {
		return report.DORAReport{}, err
	}
	rep.Intervals = make([]report.DORAFigures, 0, len(bounds))
	for _, b := range bounds {
		f := Figures(deps, b.Start, b.End)
		f.Benchmarks = Benchmarks(f, edition)
		rep.Intervals = append(rep.Intervals, f)
	}
	return rep, nil
}

// Buckets splits [start, end) into calendar buckets of interval in UTC —
// days, ISO weeks (starting Monday 00:00), months or quarters (starting
// January, April, July, October 1st) — clipped to the range.
func Buckets(start, end time.Time, interval report.Interval) ([]Span, error) {
	if !end.After(start) {
		return nil, ErrInvalidRange
	}
	start, end = start.UTC(), end.UTC()
	var floor func(time.Time) time.Time
	var next func(time.Time) time.Time
	switch interval {
	case report.IntervalAll:
		return []Span{{start, end}}, nil
	case report.IntervalDay:
		floor = func(t time.Time) time.Time { y, m, d := t.Date(); return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
		next = func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }
	case report.IntervalWeek:
		floor = func(t time.Time) time.Time {
			y, m, d := t.Date()
			day := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
			back := (int(day.Weekday()) + 6) % 7 // days since Monday
			return day.AddDate(0, 0, -back)
		}
		next = func(t time.Time) time.Time { return t.AddDate(0, 0, 7) }
	case report.IntervalMonth:
		floor = func(t time.Time) time.Time { y, m, _ := t.Date(); return time.Date(y, m, 1, 0, 0, 0, 0, time.UTC) }
		next = func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }
	case report.IntervalQuarter:
		floor = func(t time.Time) time.Time {
			y, m, _ := t.Date()
			return time.Date(y, m-(m-1)%3, 1, 0, 0, 0, 0, time.UTC)
		}
		next = func(t time.Time) time.Time { return t.AddDate(0, 3, 0) }
	default:
		return nil, fmt.Errorf("analysis: unknown interval %d", interval)
	}
	var out []Span
	for b := floor(start); b.Before(end); b = next(b) {
		if len(out) >= MaxBuckets {
			return nil, fmt.Errorf("analysis: more than %d buckets", MaxBuckets)
		}
		s, e := b, next(b)
		if s.Before(start) {
			s = start
		}
		if e.After(end) {
			e = end
		}
		out = append(out, Span{s, e})
	}
	return out, nil
}

// Figures computes the five metrics over [start, end) (docs/dora.md); the
// rework rate counts the deployments MarkRework classified.
func Figures(deps []report.Deployment, start, end time.Time) report.DORAFigures {
	f := report.DORAFigures{Start: start, End: end}
	var rollbacks int
	var leads, restores []float64
	for i := range deps {
		d := &deps[i]
		if d.Failed || d.DeployTime.Before(start) || !d.DeployTime.Before(end) {
			continue
		}
		f.DeploymentCount++
		if d.ReworkReason != 0 {
			f.ReworkCount++
		}
		if d.Rollback {
			rollbacks++
		} else if d.ChangeFailure {
			f.FailedChangeCount++
			if !d.RestoreTime.IsZero() {
				restores = append(restores, d.TimeToRestore.Seconds())
			}
		}
		// A rollback's commit reached production once already and was
		// counted then; its age again would measure how old the good
		// version is, not how long a change takes.
		if d.HasLeadTime && d.LeadTime > 0 && !d.Rollback {
			leads = append(leads, d.LeadTime.Seconds())
		}
	}
	days := end.Sub(start).Hours() / 24
	f.DeploymentFrequencyPerDay = float64(f.DeploymentCount) / days
	f.ChangeCount = f.DeploymentCount - rollbacks
	f.ChangeFailureRate = ChangeFailureRate(int64(f.FailedChangeCount), int64(f.ChangeCount))
	f.LeadTimeSampleCount = len(leads)
	if m, ok := stats.Median(leads); ok {
		f.LeadTimeMedianSeconds = m
	}
	f.RestoreSampleCount = len(restores)
	if m, ok := stats.Median(restores); ok {
		f.TimeToRestoreMedianSeconds = m
	}
	f.FrequencyTier = DeploymentFrequencyTier(int64(f.DeploymentCount), days)
	f.LeadTimeTier = LeadTimeTier(f.LeadTimeMedianSeconds, int64(f.LeadTimeSampleCount))
	f.ChangeFailureRateTier = ChangeFailureRateTier(int64(f.FailedChangeCount), int64(f.ChangeCount))
	f.TimeToRestoreTier = TimeToRestoreTier(f.TimeToRestoreMedianSeconds, int64(f.RestoreSampleCount))
	if f.DeploymentCount > 0 {
		f.ReworkRate = float64(f.ReworkCount) / float64(f.DeploymentCount)
	}
	return f
}
