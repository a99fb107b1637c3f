package store

import (
	"cmp"
	"context"
	"encoding/hex"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/changelens/changelens/internal/schema"
	"github.com/changelens/changelens/internal/stats"
	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/report"
)

// CohortMinute is one cohort's traffic in one minute: the measurements the
// comparison reads (analysis.CohortMinute, one type from the table to the
// rule, so nothing is copied field by field on the way), keyed by minute,
// cohort and operation.
type CohortMinute struct {
	Minute    time.Time
	Cohort    string
	Operation string // with byOperation; else empty
	// DurationSumNs is the weighted duration sum MeanMs comes from, kept
	// so that minutes can be merged (MergeOperations).
	DurationSumNs float64
	analysis.CohortMinute
}

// cohortVariant: .Stored (a feature flag with stored evaluations, flags.go)
// joins latency events with them; .SizesOnly leaves the latency histogram
// out (the versions' sizes: their latencies come from latency_hist_1m).
type cohortVariant struct{ Operation, ByOperation, Cohort, Stored, SizesOnly bool }

// isVersion reports whether dimension is the version dimension (the
// default).
func isVersion(dimension string) bool { return dimension == "" || dimension == schema.DimensionVersion }

// CohortMinutes reads, minute by minute over [q.Start, q.End), the two
// cohorts q.Control and q.Treatment of q.Dimension of one unit, ordered by
// (operation,) minute, cohort; with byOperation each minute is split by
// operation (at most limit rows; more is an invalid-argument error).
//
// Versions come from latency_hist_1m, complete since schema v2, their body
// sizes from cohort_hist_1m (schema v6); the processor's dimensions from
// cohort_hist_1m, and a feature flag's also from stored evaluations
// (flags.go).
func (s *Store) CohortMinutes(ctx context.Context, q report.CompareQuery, byOperation bool, limit int) ([]CohortMinute, error) {
	v := cohortVariant{Operation: q.Operation != "", ByOperation: byOperation, Cohort: !isVersion(q.Dimension)}
	var err error
	if v.Stored, err = s.storedFlag(ctx, q); err != nil {
		return nil, err
	}
	if v.Cohort {
		return s.cohortMinutes(ctx, q, v, limit)
	}
	// The versions' sizes are another table's: read at once with the
	// latencies.
	var (
		sizes   []CohortMinute
		sizeErr error
		done    = make(chan struct{})
	)
	go func() {
		defer close(done)
		sv := v
		sv.Cohort, sv.Stored, sv.SizesOnly = true, false, true
		sizes, sizeErr = s.cohortMinutes(ctx, q, sv, limit)
	}()
	out, err := s.cohortMinutes(ctx, q, v, limit)
	<-done
	if err != nil {
		return nil, err
	}
	if sizeErr != nil {
		return nil, sizeErr
	}
	// Both are ordered by (operation, minute, cohort): a merge join.
	order := func(a, b CohortMinute) int {
		return cmp.Or(strings.Compare(a.Operation, b.Operation), a.Minute.Compare(b.Minute), strings.Compare(a.Cohort, b.Cohort))
	}
	j := 0
	for i := range out {
		for j < len(sizes) && order(sizes[j], out[i]) < 0 {
			j++
		}
		if j < len(sizes) && order(sizes[j], out[i]) == 0 {
			z := sizes[j]
			out[i].RespP50Bytes, out[i].RespP95Bytes, out[i].RespHistKeys, out[i].RespHistWeights = z.RespP50Bytes, z.RespP95Bytes, z.RespHistKeys, z.RespHistWeights
			out[i].ReqP50Bytes, out[i].ReqP95Bytes, out[i].ReqHistKeys, out[i].ReqHistWeights = z.ReqP50Bytes, z.ReqP95Bytes, z.ReqHistKeys, z.ReqHistWeights
		}
	}
	return out, nil
}

func (s *Store) cohortMinutes(ctx context.Context, q report.CompareQuery, v cohortVariant, limit int) ([]CohortMinute, error) {
	var out []CohortMinute
	err := s.query(ctx, "cohort_minutes", v, func(rs driver.Rows) error {
		var (
			m           uint32
			c           CohortMinute
			durationSum float64
			h           [6]string // keys and weights of latency, response and request sizes, as text
		)
		if err := rs.Scan(&m, &c.Cohort, &c.Operation, &c.Requests, &c.Errors, &durationSum, &h[0], &h[1], &h[2], &h[3], &h[4], &h[5]); err != nil {
			return err
		}
		var err error
		if c.HistKeys, c.HistWeights, err = parseHistogram(h[0], h[1]); err != nil {
			return err
		}
		if c.RespHistKeys, c.RespHistWeights, err = parseHistogram(h[2], h[3]); err != nil {
			return err
		}
		if c.ReqHistKeys, c.ReqHistWeights, err = parseHistogram(h[4], h[5]); err != nil {
			return err
		}
		c.Minute = time.Unix(int64(m), 0).UTC()
		c.DurationSumNs = durationSum
		c.derive()
		out = append(out, c)
		return nil
	},
		cohortArgs(q, clickhouse.Named("limit", limit+1))...)
	if err != nil {
		return nil, err
	}
	if len(out) > limit {
		return nil, invalid("more than %d cohort minutes: narrow the range", limit)
	}
	return out, nil
}

// MergeOperations merges the minutes of CohortMinutes split by operation
// into those it returns unsplit: per minute and cohort the sums of the
// operations' requests, errors, durations and histograms, in the unsplit
// order (minute, cohort), percentiles and means from the sums. A
// comparison needs both and reads once. Sums of whole-number weights and
// nanoseconds are exact in any order; fractional weights are summed in an
// order no more fixed than the server's own merge of the same states.
func MergeOperations(rows []CohortMinute) []CohortMinute {
	// The rows in (minute, cohort) order, each key's operations in their
	// read order; a key's histograms are merged one operation after
	// another, each a merge of two ascending key lists (no maps: they were
	// most of a day's merge), so every weight is summed in the order the
	// operations were read.
	order := make([]int, len(rows))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return cmp.Or(rows[a].Minute.Compare(rows[b].Minute), strings.Compare(rows[a].Cohort, rows[b].Cohort))
	})
	var out []CohortMinute
	for i := 0; i < len(order); {
		first := rows[order[i]]
		c := CohortMinute{Minute: first.Minute, Cohort: first.Cohort}
		c.HistKeys, c.HistWeights = []uint16{}, []float64{}
		c.RespHistKeys, c.RespHistWeights = []uint16{}, []float64{}
		c.ReqHistKeys, c.ReqHistWeights = []uint16{}, []float64{}
		for ; i < len(order) && rows[order[i]].Minute.Equal(c.Minute) && rows[order[i]].Cohort == c.Cohort; i++ {
			r := &rows[order[i]]
			c.Requests += r.Requests
			c.Errors += r.Errors
			c.DurationSumNs += r.DurationSumNs
			c.HistKeys, c.HistWeights = mergeHistograms(c.HistKeys, c.HistWeights, r.HistKeys, r.HistWeights)
			c.RespHistKeys, c.RespHistWeights = mergeHistograms(c.RespHistKeys, c.RespHistWeights, r.RespHistKeys, r.RespHistWeights)
			c.ReqHistKeys, c.ReqHistWeights = mergeHistograms(c.ReqHistKeys, c.ReqHistWeights, r.ReqHistKeys, r.ReqHistWeights)
		}
		c.derive()
		out = append(out, c)
	}
	return out
}

// derive sets the mean and the percentiles from the sums and histograms,
// for a minute as read and for one merged from its operations alike.
func (c *CohortMinute) derive() {
	if c.Requests > 0 {
		c.MeanMs = c.DurationSumNs / c.Requests / 1e6
	}
	c.P50Ms, c.P90Ms, c.P95Ms, c.P99Ms = percentilesMs(c.HistKeys, c.HistWeights)
	c.RespP50Bytes, c.RespP95Bytes = sizePercentiles(c.RespHistKeys, c.RespHistWeights)
	c.ReqP50Bytes, c.ReqP95Bytes = sizePercentiles(c.ReqHistKeys, c.ReqHistWeights)
}

// mergeHistograms adds histogram b to a (both with ascending keys, as
// sumMap returns them): a new histogram with ascending keys, a's weight
// first where both have a key. An empty b returns a itself.
func mergeHistograms(aKeys []uint16, aWeights []float64, bKeys []uint16, bWeights []float64) ([]uint16, []float64) {
	if len(bKeys) == 0 {
		return aKeys, aWeights
	}
	keys, weights := make([]uint16, 0, len(aKeys)+len(bKeys)), make([]float64, 0, len(aKeys)+len(bKeys))
	i, j := 0, 0
	for i < len(aKeys) && j < len(bKeys) {
		switch {
		case aKeys[i] < bKeys[j]:
			keys, weights = append(keys, aKeys[i]), append(weights, aWeights[i])
			i++
		case aKeys[i] > bKeys[j]:
			keys, weights = append(keys, bKeys[j]), append(weights, bWeights[j])
			j++
		default:
			keys, weights = append(keys, aKeys[i]), append(weights, aWeights[i]+bWeights[j])
			i++
			j++
		}
	}
	keys, weights = append(keys, aKeys[i:]...), append(weights, aWeights[i:]...)
	keys, weights = append(keys, bKeys[j:]...), append(weights, bWeights[j:]...)
	return keys, weights
}

var sizeLevels = []float64{0.5, 0.95}

// sizePercentiles are the median and p95 of a size histogram in bytes
// (zeros when empty).
func sizePercentiles(keys []uint16, weights []float64) (p50, p95 float64) {
	q, ok := stats.BucketQuantiles(keys, weights, sizeLevels, schema.SizeValue)
	if !ok {
		return 0, 0
	}
	return q[0], q[1]
}

// storedFlag reports whether q compares a feature flag with stored
// evaluations in its range.
func (s *Store) storedFlag(ctx context.Context, q report.CompareQuery) (bool, error) {
	flag, ok := flagOf(q.Dimension)
	if !ok {
		return false, nil
	}
	return s.storedFlags(ctx, q.Service, q.Environment, flag, q.Start, q.End)
}

// cohortArgs are the parameters every comparison query binds, then extra.
func cohortArgs(q report.CompareQuery, extra ...any) []any {
	dimension := q.Dimension
	if isVersion(dimension) {
		dimension = schema.DimensionVersion
	}
	flag, _ := flagOf(dimension)
	extra = append(extra, flagArgs(flag, q.Start, q.End)...)
	return append([]any{
		clickhouse.Named("service", q.Service),
		clickhouse.Named("environment", q.Environment),
		clickhouse.Named("dimension", dimension),
		clickhouse.Named("control", q.Control),
		clickhouse.Named("treatment", q.Treatment),
		clickhouse.Named("operation", q.Operation),
		clickhouse.Named("from", ceilSeconds(q.Start)),
		clickhouse.Named("to", ceilSeconds(q.End)),
	}, extra...)
}

// Exemplars are traces worth opening for one cohort.
type Exemplars struct {
	SlowestTraceID, FailedTraceID string // hex; "" when none
}

// CohortExemplars reads, per cohort of q (control and treatment), the
// trace of its slowest request and of its latest failed one over
// [q.Start, q.End).
func (s *Store) CohortExemplars(ctx context.Context, q report.CompareQuery) (map[string]Exemplars, error) {
	out := map[string]Exemplars{}
	v := cohortVariant{Operation: q.Operation != "", Cohort: !isVersion(q.Dimension)}
	var err error
	if v.Stored, err = s.storedFlag(ctx, q); err != nil {
		return nil, err
	}
	err = s.query(ctx, "cohort_exemplars", v, func(rs driver.Rows) error {
		var cohort, slowest, failed string
		if err := rs.Scan(&cohort, &slowest, &failed); err != nil {
			return err
		}
		out[cohort] = Exemplars{SlowestTraceID: traceHex(slowest), FailedTraceID: traceHex(failed)}
		return nil
	},
		cohortArgs(q)...)
	return out, err
}

// traceHex is a FixedString(16) trace ID in hex; "" for the zero ID.
func traceHex(b string) string {
	if strings.Trim(b, "\x00") == "" {
		return ""
	}
	return hex.EncodeToString([]byte(b))
}

// CohortValues lists the cohort dimensions of one unit over [from, to) —
// "version" first, then the processor's dimensions by name — and each one's
// values with their weighted requests, busiest first (at most limit per
// dimension).
func (s *Store) CohortValues(ctx context.Context, service, environment string, from, to time.Time, limit int) ([]report.CohortDimension, error) {
	var out []report.CohortDimension
	stored, err := s.storedFlags(ctx, service, environment, "", from, to)
	if err != nil {
		return nil, err
	}
	err = s.query(ctx, "cohort_values", storedVariant{stored}, func(rs driver.Rows) error {
		var (
			dim string
			v   report.CohortValue
		)
		if err := rs.Scan(&dim, &v.Value, &v.Requests); err != nil {
			return err
		}
		if n := len(out); n == 0 || out[n-1].Dimension != dim {
			out = append(out, report.CohortDimension{Dimension: dim})
		}
		out[len(out)-1].Values = append(out[len(out)-1].Values, v)
		return nil
	},
		append(flagArgs("", from, to),
			clickhouse.Named("service", service),
			clickhouse.Named("environment", environment),
			clickhouse.Named("from", ceilSeconds(from)),
			clickhouse.Named("to", ceilSeconds(to)),
			clickhouse.Named("limit", limit))...)
	return out, err
}
