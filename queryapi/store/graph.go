package store

import (
	"context"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/report"
)

// graphMargin widens the range the other end of a call is read over: a
// callee's entry span starts during its call, on another host's clock, and
// a call that starts just before a range's end ends after it.
const graphMargin = 2 * time.Minute

// Edge is the calls from one unit to a callee (a unit of the environment,
// or an uninstrumented peer: CalleeEnvironment ""), in one minute or over a
// whole range (Minute zero), as the caller counted and timed them.
type Edge struct {
	Caller, Callee, CalleeEnvironment string
	Minute                            time.Time
	Calls, Errors, DurationMs         float64
}

type graphVariant struct{ Caller, ByMinute, Sampled bool }

// Calls reads the service graph's calls of environment env over [from, to)
// (sql/graph_calls.sql): with caller set only that unit's, with byMinute
// per minute, with sample > 1 of the traces whose hash is 0 modulo sample
// only (their counts then estimate 1/sample of the calls).
func (s *Store) Calls(ctx context.Context, env, caller string, from, to time.Time, byMinute bool, sample uint64) ([]Edge, error) {
	var out []Edge
	v := graphVariant{Caller: caller != "", ByMinute: byMinute, Sampled: sample > 1}
	err := s.query(ctx, "graph_calls", v, func(rows driver.Rows) error {
		var e Edge
		if err := rows.Scan(&e.Caller, &e.Callee, &e.CalleeEnvironment, &e.Minute, &e.Calls, &e.Errors, &e.DurationMs); err != nil {
			return err
		}
		if !byMinute {
			e.Minute = time.Time{}
		}
		out = append(out, e)
		return nil
	},
		clickhouse.Named("environment", env),
		clickhouse.Named("service", caller),
		clickhouse.Named("from", unixSeconds(from)),
		clickhouse.Named("to", ceilSeconds(to)),
		clickhouse.Named("callee_from", unixSeconds(from.Add(-graphMargin))),
		clickhouse.Named("callee_to", ceilSeconds(to.Add(graphMargin))),
		clickhouse.Named("sample", max(sample, 1)),
	)
	return out, err
}

// CallerMinute is what a unit served one caller in one minute. This and the
// other per-minute rows below carry analysis.MinuteSums, the sums
// attribution adds up, so they reach it as they are read.
type CallerMinute struct {
	Caller, CallerEnvironment string
	Minute                    time.Time
	analysis.MinuteSums
}

// Callers reads, per minute over [from, to), the requests unit u served
// each unit that called it (sql/graph_callers.sql).
func (s *Store) Callers(ctx context.Context, u analysis.UnitKey, from, to time.Time) ([]CallerMinute, error) {
	var out []CallerMinute
	err := s.query(ctx, "graph_callers", nil, func(rows driver.Rows) error {
		var m CallerMinute
		if err := rows.Scan(&m.Caller, &m.CallerEnvironment, &m.Minute, &m.Requests, &m.Errors, &m.DurationMs); err != nil {
			return err
		}
		out = append(out, m)
		return nil
	},
		clickhouse.Named("service", u.Service),
		clickhouse.Named("environment", u.Environment),
		clickhouse.Named("from", unixSeconds(from)),
		clickhouse.Named("to", ceilSeconds(to)),
		clickhouse.Named("caller_from", unixSeconds(from.Add(-graphMargin))),
		clickhouse.Named("caller_to", ceilSeconds(to.Add(graphMargin))),
	)
	return out, err
}

// UnitMinute is one unit's traffic in one minute, all versions and
// operations together.
type UnitMinute struct {
	Unit   analysis.UnitKey
	Minute time.Time
	analysis.MinuteSums
}

// UnitMinutes reads units' per-minute traffic over [from, to)
// (sql/unit_minutes.sql).
func (s *Store) UnitMinutes(ctx context.Context, units []analysis.UnitKey, from, to time.Time) ([]UnitMinute, error) {
	if len(units) == 0 {
		return nil, nil
	}
	keys := make([]string, len(units))
	var services, envs []any
	seenS, seenE := map[string]bool{}, map[string]bool{}
	for i, u := range units {
		keys[i] = u.Service + "\n" + u.Environment
		if !seenS[u.Service] {
			seenS[u.Service] = true
			services = append(services, u.Service)
		}
		if !seenE[u.Environment] {
			seenE[u.Environment] = true
			envs = append(envs, u.Environment)
		}
	}
	var out []UnitMinute
	err := s.query(ctx, "unit_minutes", nil, func(rows driver.Rows) error {
		var m UnitMinute
		if err := rows.Scan(&m.Unit.Service, &m.Unit.Environment, &m.Minute, &m.Requests, &m.Errors, &m.DurationMs); err != nil {
			return err
		}
		out = append(out, m)
		return nil
	},
		clickhouse.Named("units", keys),
		clickhouse.Named("services", clickhouse.GroupSet{Value: services}),
		clickhouse.Named("environments", clickhouse.GroupSet{Value: envs}),
		clickhouse.Named("from", unixSeconds(from)),
		clickhouse.Named("to", ceilSeconds(to)),
	)
	return out, err
}

// FlagMinute is one feature-flag variant's traffic of a unit in one minute.
type FlagMinute struct {
	Flag, Variant string
	Minute        time.Time
	analysis.MinuteSums
}

// FlagMinutes reads unit u's traffic per feature flag, variant and minute
// over [from, to) (sql/flag_minutes.sql), stored evaluations included
// (flags.go).
func (s *Store) FlagMinutes(ctx context.Context, u analysis.UnitKey, from, to time.Time) ([]FlagMinute, error) {
	var out []FlagMinute
	stored, err := s.storedFlags(ctx, u.Service, u.Environment, "", from, to)
	if err != nil {
		return nil, err
	}
	err = s.query(ctx, "flag_minutes", storedVariant{stored}, func(rows driver.Rows) error {
		var (
			m   FlagMinute
			dim string
		)
		if err := rows.Scan(&dim, &m.Variant, &m.Minute, &m.Requests, &m.Errors, &m.DurationMs); err != nil {
			return err
		}
		m.Flag = dim[len("feature_flag."):]
		out = append(out, m)
		return nil
	},
		append(flagArgs("", from, to),
			clickhouse.Named("service", u.Service),
			clickhouse.Named("environment", u.Environment),
			clickhouse.Named("from", unixSeconds(from)),
			clickhouse.Named("to", ceilSeconds(to)))...,
	)
	return out, err
}

// GraphEdges folds edges over a range into the API's graph: one edge per
// caller and callee.
func GraphEdges(edges []Edge, env string) []report.GraphEdge {
	type key struct{ caller, callee, calleeEnv string }
	at := map[key]int{}
	var out []report.GraphEdge
	for _, e := range edges {
		k := key{e.Caller, e.Callee, e.CalleeEnvironment}
		i, ok := at[k]
		if !ok {
			i = len(out)
			at[k] = i
			out = append(out, report.GraphEdge{CallerService: e.Caller, CallerEnvironment: env,
				CalleeService: e.Callee, CalleeEnvironment: e.CalleeEnvironment})
		}
		out[i].Calls += e.Calls
		out[i].Errors += e.Errors
		out[i].DurationMs += e.DurationMs
	}
	return out
}
