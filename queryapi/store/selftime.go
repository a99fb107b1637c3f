package store

import (
	"context"
	"math"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/report"
)

// SelfTime is one cohort's self time (schema v14): over its requests whose
// self time the processor measured, the weighted mean and standard
// deviation in milliseconds. It is the proxy of a request's own CPU where
// the metrics cannot split the CPU (flag cohorts share their processes,
// docs/cost.md), labelled as such: it also counts time blocked on what is
// no traced call.
type SelfTime = analysis.SelfTimeStats

// CohortSelfTime reads the self time of q's two cohorts over [q.Start,
// q.End) (sql/cohort_self_time.sql), keyed by cohort; a cohort none of
// whose requests has a measured self time (the processor's
// self_time.enabled is off, or rows from before schema v14) is absent. A
// database before v14 reads as none.
func (s *Store) CohortSelfTime(ctx context.Context, q report.CompareQuery) (map[string]SelfTime, error) {
	out := map[string]SelfTime{}
	v := cohortVariant{Operation: q.Operation != "", Cohort: !isVersion(q.Dimension)}
	var err error
	if v.Stored, err = s.storedFlag(ctx, q); err != nil {
		return nil, err
	}
	err = s.query(ctx, "cohort_self_time", v, func(rs driver.Rows) error {
		var (
			cohort        string
			w, sum, sumSq float64
		)
		if err := rs.Scan(&cohort, &w, &sum, &sumSq); err != nil {
			return err
		}
		if w <= 0 {
			return nil
		}
		mean := sum / w
		out[cohort] = SelfTime{Requests: w, MeanMs: mean / 1e6, StdDev: math.Sqrt(math.Max(0, sumSq/w-mean*mean)) / 1e6}
		return nil
	}, cohortArgs(q)...)
	if missingUsage(err) {
		return map[string]SelfTime{}, nil
	}
	return out, err
}
