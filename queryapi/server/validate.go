package server

import (
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/changelens/changelens/queryapi/limits"
)

const (
	// Steps are whole minutes: the API reads per-minute rollups.
	minStep = time.Minute
	// Default step: the range split into about this many buckets.
	defaultBuckets = 300

	defaultLatencyRange = 24 * time.Hour
	defaultReportRange  = 30 * 24 * time.Hour
	defaultEnvironment  = "production"

	// The bounds of names, tokens and times are limits' table.
	maxNameLen      = limits.MaxNameLen
	maxOperationLen = limits.MaxOperationLen
	maxPageTokenLen = limits.MaxPageTokenLen
)

var minTime, maxTime = limits.MinTime, limits.MaxTime

// checkName validates a free-form name (service, environment, operation,
// version): valid UTF-8, no control characters, at most maxLen characters.
func checkName(field, v string, required bool, maxLen int) error {
	if v == "" {
		if required {
			return badField(field, "required")
		}
		return nil
	}
	if !utf8.ValidString(v) {
		return badField(field, "not valid UTF-8")
	}
	if utf8.RuneCountInString(v) > maxLen {
		return badField(field, "longer than %d characters", maxLen)
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return badField(field, "contains a control character")
		}
	}
	return nil
}

// checkID validates a deployment id: 32 lowercase hex digits.
func checkID(id string) error {
	if id == "" {
		return badField("id", "required")
	}
	if len(id) != limits.DeploymentIDLen {
		return badField("id", "must be 32 lowercase hex digits")
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return badField("id", "must be 32 lowercase hex digits")
		}
	}
	return nil
}

// checkPageToken accepts an opaque token of printable ASCII without spaces;
// the Source decides whether it is one of its own.
func checkPageToken(t string) error {
	if len(t) > maxPageTokenLen {
		return badField("page_token", "longer than %d bytes", maxPageTokenLen)
	}
	for i := 0; i < len(t); i++ {
		if t[i] <= ' ' || t[i] > '~' {
			return badField("page_token", "not a page token from this API")
		}
	}
	return nil
}

// timeRange resolves start_time/end_time with their defaults (end = now,
// start = end − def) and checks them: valid, in [1970, 2100), start < end,
// end − start ≤ max.
func timeRange(startPB, endPB *timestamppb.Timestamp, now time.Time, def, max time.Duration) (start, end time.Time, err error) {
	end = now
	if endPB != nil {
		if end, err = checkTime("end_time", endPB); err != nil {
			return
		}
	}
	start = end.Add(-def)
	if start.Before(minTime) { // a default start never leaves the valid range
		start = minTime
	}
	if startPB != nil {
		if start, err = checkTime("start_time", startPB); err != nil {
			return
		}
	}
	if !start.Before(end) {
		err = badField("start_time", "must be before end_time (%s ≥ %s)", start.Format(time.RFC3339), end.Format(time.RFC3339))
		return
	}
	if end.Sub(start) > max {
		err = badField("start_time", "range longer than the maximum of %s", fmtDuration(max))
		return
	}
	return start, end, nil
}

func checkTime(field string, ts *timestamppb.Timestamp) (time.Time, error) {
	if err := ts.CheckValid(); err != nil {
		return time.Time{}, badField(field, "not a valid timestamp")
	}
	t := ts.AsTime()
	if t.Before(minTime) || !t.Before(maxTime) {
		return time.Time{}, badField(field, "outside [%s, %s)", minTime.Format(time.RFC3339), maxTime.Format(time.RFC3339))
	}
	return t, nil
}

// latencyStep resolves step_seconds: 0 → the range ÷ 300 rounded up to a
// whole minute; otherwise a positive multiple of 60 with at most maxPoints
// buckets over the range.
func latencyStep(stepSeconds int32, start, end time.Time, maxPoints int) (time.Duration, error) {
	rng := end.Sub(start)
	if stepSeconds == 0 {
		step := (rng/defaultBuckets + minStep - 1) / minStep * minStep
		step = max(step, minStep)
		for bucketCount(rng, step) > int64(maxPoints) { // only with a tiny MaxPoints
			step += minStep
		}
		return step, nil
	}
	if stepSeconds < 0 {
		return 0, badField("step_seconds", "must be positive")
	}
	step := time.Duration(stepSeconds) * time.Second
	if step < minStep {
		return 0, badField("step_seconds", "must be at least 60")
	}
	if step%minStep != 0 {
		return 0, badField("step_seconds", "must be a multiple of 60 (latency is stored per minute)")
	}
	if n := bucketCount(rng, step); n > int64(maxPoints) {
		return 0, badField("step_seconds", "%d buckets over the range, more than the maximum of %d: raise step_seconds or shorten the range", n, maxPoints)
	}
	return step, nil
}

func bucketCount(rng, step time.Duration) int64 {
	return int64((rng + step - 1) / step)
}

func fmtDuration(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + " days"
	}
	return d.String()
}
