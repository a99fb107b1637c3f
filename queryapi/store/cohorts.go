package store

import (
	"context"
	"encoding/hex"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/changelens/changelens/queryapi/report"
)

// CohortMinute is one cohort's traffic in one minute.
type CohortMinute struct {
	Minute           time.Time
	Cohort           string
	Operation        string  // with byOperation; else empty
	Requests, Errors float64 // weighted
	MeanMs           float64
	// P50Ms … P99Ms are the minute's percentiles (zeros when it has no
	// latency histogram).
	P50Ms, P90Ms, P95Ms, P99Ms float64
	HistKeys                   []uint16 // the merged latency histogram (internal/schema layout)
	HistWeights                []float64
}

type cohortVariant struct{ Operation, ByOperation bool }

// CohortMinutes reads, minute by minute over [q.Start, q.End), the two
// versions q.Control and q.Treatment of one unit, ordered by (operation,)
// minute, cohort; with byOperation each minute is split by operation (at
// most limit rows; more is an invalid-argument error).
func (s *Store) CohortMinutes(ctx context.Context, q report.CompareQuery, byOperation bool, limit int) ([]CohortMinute, error) {
	var out []CohortMinute
	err := s.query(ctx, "cohort_minutes", cohortVariant{Operation: q.Operation != "", ByOperation: byOperation}, func(rs driver.Rows) error {
		var (
			m           uint32
			c           CohortMinute
			durationSum float64
		)
		if err := rs.Scan(&m, &c.Cohort, &c.Operation, &c.Requests, &c.Errors, &durationSum, &c.HistKeys, &c.HistWeights); err != nil {
			return err
		}
		c.Minute = time.Unix(int64(m), 0).UTC()
		if c.Requests > 0 {
			c.MeanMs = durationSum / c.Requests / 1e6
		}
		c.P50Ms, c.P90Ms, c.P95Ms, c.P99Ms = percentilesMs(c.HistKeys, c.HistWeights)
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

// cohortArgs are the parameters every comparison query binds, then extra.
func cohortArgs(q report.CompareQuery, extra ...any) []any {
	return append([]any{
		clickhouse.Named("service", q.Service),
		clickhouse.Named("environment", q.Environment),
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

// CohortExemplars reads, per version of q (control and treatment), the
// trace of its slowest request and of its latest failed one over
// [q.Start, q.End).
func (s *Store) CohortExemplars(ctx context.Context, q report.CompareQuery) (map[string]Exemplars, error) {
	out := map[string]Exemplars{}
	err := s.query(ctx, "cohort_exemplars", cohortVariant{Operation: q.Operation != ""}, func(rs driver.Rows) error {
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

// CohortValues lists the versions one unit served over [from, to) with their
// weighted requests, busiest first (at most limit).
func (s *Store) CohortValues(ctx context.Context, service, environment string, from, to time.Time, limit int) ([]report.CohortValue, error) {
	var out []report.CohortValue
	err := s.query(ctx, "cohort_values", nil, func(rs driver.Rows) error {
		var v report.CohortValue
		if err := rs.Scan(&v.Value, &v.Requests); err != nil {
			return err
		}
		out = append(out, v)
		return nil
	},
		clickhouse.Named("service", service),
		clickhouse.Named("environment", environment),
		clickhouse.Named("from", ceilSeconds(from)),
		clickhouse.Named("to", ceilSeconds(to)),
		clickhouse.Named("limit", limit))
	return out, err
}
