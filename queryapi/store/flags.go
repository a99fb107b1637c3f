package store

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/changelens/changelens/internal/schema"
)

// Feature-flag cohorts come from two kinds of stored rows. An evaluation the
// processor met in the same batch as its request's entry span is a cohort
// dimension of the entry span's latency event (cohort_keys/cohort_values,
// rolled up by cohort_hist_1m). Any other evaluation — every log-based one,
// and the span events and evaluation spans whose entry span was in another
// batch or collector — is a row of flag_evaluations (schema v12), and is
// credited when read: a latency event that does not carry the flag in-row
// takes the variant of the first stored evaluation of the flag in its unit
// and trace (by time, then span, then variant). The comparison adds the
// joined events, measured as cohort_hist_1m's view measures events (the
// same minutes, weights and histogram buckets), to the rollup's minutes, so
// an experiment's answer does not depend on which shape carried its
// evaluations or which collector received which signal. Queries join only
// when the unit has stored evaluations in the range (flag_presence), so a
// unit whose evaluations are all in-row reads the rollup alone.

// Evaluations are read from evalBefore before the range to evalAfter after
// it: an evaluation happens during its request (a clock a little behind, a
// long request, a record stamped when observed).
const (
	evalBefore = time.Minute
	evalAfter  = time.Hour
)

// flagOf is the flag key of a feature_flag.<key> dimension.
func flagOf(dimension string) (string, bool) {
	key, ok := strings.CutPrefix(dimension, schema.DimensionFeatureFlag)
	return key, ok && key != ""
}

// flagArgs are the parameters of the stored evaluations' join: flag key
// (may be "") and the evaluations' range for events over [from, to).
func flagArgs(flag string, from, to time.Time) []any {
	return []any{
		clickhouse.Named("flag", flag),
		clickhouse.Named("eval_from", unixSeconds(from.Add(-evalBefore))),
		clickhouse.Named("eval_to", ceilSeconds(to.Add(evalAfter))),
	}
}

// flagPresenceVariant: .Flag limits the presence check to flag @flag.
type flagPresenceVariant struct{ Flag bool }

// storedVariant is the variant of the queries that join stored
// evaluations of any flag of a unit.
type storedVariant struct{ Stored bool }

// storedFlags reports whether the unit has stored evaluations over the
// evaluations' range of [from, to), of flag (every flag when ""). A
// database of a schema before v12 has none.
func (s *Store) storedFlags(ctx context.Context, service, environment, flag string, from, to time.Time) (bool, error) {
	var n uint64
	err := s.query(ctx, "flag_presence", flagPresenceVariant{Flag: flag != ""}, func(rs driver.Rows) error {
		return rs.Scan(&n)
	}, append(flagArgs(flag, from, to),
		clickhouse.Named("service", service),
		clickhouse.Named("environment", environment))...)
	var ex *clickhouse.Exception
	if errors.As(err, &ex) && ex.Code == codeUnknownTable {
		return false, nil
	}
	return n > 0, err
}

// codeUnknownTable is ClickHouse's UNKNOWN_TABLE.
const codeUnknownTable = 60
