package store

import (
	"context"
	"sort"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/changelens/changelens/internal/schema"
	"github.com/changelens/changelens/internal/stats"
)

// Client reads (schema v15): the latency events of browser and mobile
// units carry their session and user, and whether the event crashed;
// outcome_events holds the outcomes and crash records. Every read groups a
// unit's client events of a range by the variant of one cohort dimension:
// the version, or a processor dimension (feature_flag.<key>,
// attribute.<name>) in-row — and for a feature flag, where the event
// carries none in-row, the first stored evaluation of the flag in its trace,
// as the cohort reads credit it (flags.go). Events without a variant are
// left out.

// ClientQuery names the unit, range and dimension of a client read.
type ClientQuery struct {
	Service, Environment string
	// Dimension is "version" (or "") or a processor dimension.
	Dimension string
	From, To  time.Time
}

// Histogram is a latency histogram in internal/schema's buckets: bucket
// index → weighted requests.
type Histogram struct {
	Keys    []uint16
	Weights []float64
}

// Add merges h2 into h.
func (h *Histogram) Add(h2 Histogram) {
	idx := make(map[uint16]int, len(h.Keys))
	for i, k := range h.Keys {
		idx[k] = i
	}
	for i, k := range h2.Keys {
		if j, ok := idx[k]; ok {
			h.Weights[j] += h2.Weights[i]
			continue
		}
		idx[k] = len(h.Keys)
		h.Keys = append(h.Keys, k)
		h.Weights = append(h.Weights, h2.Weights[i])
	}
}

// Quantiles are the durations at quantiles qs (within the buckets' 2 %);
// false when the histogram is empty.
func (h Histogram) Quantiles(qs ...float64) ([]time.Duration, bool) {
	ns, ok := stats.BucketQuantiles(h.Keys, h.Weights, qs, schema.HistValue)
	out := make([]time.Duration, len(ns))
	for i, v := range ns {
		out[i] = time.Duration(v)
	}
	return out, ok
}

// ClientCohort is one variant's client traffic over the range.
type ClientCohort struct {
	Variant string
	// Sessions are the distinct sessions of its events; CrashedSessions
	// those with a crashed event or a crash outcome in the range. A session
	// seen in two variants counts in both.
	Sessions, CrashedSessions uint64
	Requests                  float64 // weighted client events
	// Loads are the latency histograms of the operations asked for.
	Loads map[string]Histogram
	Hours []ClientHour // the same per hour, for peeking
}

// ClientHour is one variant's client traffic in one hour.
type ClientHour struct {
	Hour                      time.Time
	Sessions, CrashedSessions uint64
	Requests                  float64
	Loads                     map[string]Histogram
}

type clientVariant struct {
	Key           string // session_id or user_id
	Version, Flag bool
	Hourly, Load  bool
}

func (s *Store) clientVariant(q ClientQuery, key string) clientVariant {
	_, flag := flagOf(q.Dimension)
	return clientVariant{Key: key, Version: isVersion(q.Dimension), Flag: flag}
}

func clientArgs(q ClientQuery, extra ...any) []any {
	flag, _ := flagOf(q.Dimension)
	args := append(flagArgs(flag, q.From, q.To),
		clickhouse.Named("service", q.Service),
		clickhouse.Named("environment", q.Environment),
		clickhouse.Named("dimension", q.Dimension),
		clickhouse.Named("from", unixSeconds(q.From)),
		clickhouse.Named("to", ceilSeconds(q.To)))
	return append(args, extra...)
}

// Validate says what makes q unreadable (an invalid-argument error).
func (q ClientQuery) Validate() error {
	switch {
	case q.Service == "" || q.Environment == "":
		return invalid("client read: service and environment are required")
	case !q.To.After(q.From):
		return invalid("client read: the range is empty")
	case !schema.KnownDimension(q.Dimension):
		return invalid("client read: unknown dimension %q", q.Dimension)
	}
	return nil
}

// ClientCohorts reads per variant the sessions, crashed sessions, requests
// and the latency histograms of operations (the page or screen loads), over
// the range and per hour; at most limit variants × hours.
func (s *Store) ClientCohorts(ctx context.Context, q ClientQuery, operations []string, limit int) ([]ClientCohort, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	byVariant := map[string]*ClientCohort{}
	var order []string
	get := func(v string) *ClientCohort {
		c := byVariant[v]
		if c == nil {
			c = &ClientCohort{Variant: v, Loads: map[string]Histogram{}}
			byVariant[v] = c
			order = append(order, v)
		}
		return c
	}
	v := s.clientVariant(q, "session_id")
	lim := clickhouse.Named("limit", limit)
	err := s.query(ctx, "client_sessions", v, func(rs driver.Rows) error {
		var variant string
		var sessions, crashed uint64
		var requests float64
		if err := rs.Scan(&variant, &sessions, &crashed, &requests); err != nil {
			return err
		}
		c := get(variant)
		c.Sessions, c.CrashedSessions, c.Requests = sessions, crashed, requests
		return nil
	}, clientArgs(q, lim)...)
	if err != nil {
		return nil, err
	}
	hours := map[string]map[time.Time]*ClientHour{}
	hour := func(variant string, at time.Time) *ClientHour {
		m := hours[variant]
		if m == nil {
			m = map[time.Time]*ClientHour{}
			hours[variant] = m
		}
		h := m[at]
		if h == nil {
			h = &ClientHour{Hour: at.UTC(), Loads: map[string]Histogram{}}
			m[at] = h
		}
		return h
	}
	v.Hourly = true
	err = s.query(ctx, "client_sessions", v, func(rs driver.Rows) error {
		var variant string
		var at time.Time
		var sessions, crashed uint64
		var requests float64
		if err := rs.Scan(&variant, &at, &sessions, &crashed, &requests); err != nil {
			return err
		}
		h := hour(variant, at)
		h.Sessions, h.CrashedSessions, h.Requests = sessions, crashed, requests
		return nil
	}, clientArgs(q, lim)...)
	if err != nil {
		return nil, err
	}
	if len(operations) > 0 {
		err = s.query(ctx, "client_loads", v, func(rs driver.Rows) error {
			var variant, op string
			var at time.Time
			var requests float64
			var h Histogram
			if err := rs.Scan(&variant, &op, &at, &requests, &h.Keys, &h.Weights); err != nil {
				return err
			}
			hr := hour(variant, at)
			hl := hr.Loads[op]
			hl.Add(h)
			hr.Loads[op] = hl
			c := get(variant)
			cl := c.Loads[op]
			cl.Add(h)
			c.Loads[op] = cl
			return nil
		}, clientArgs(q, lim, clickhouse.Named("operations", operations))...)
		if err != nil {
			return nil, err
		}
	}
	out := make([]ClientCohort, 0, len(order))
	for _, variant := range order {
		c := byVariant[variant]
		sortLoads(c.Loads)
		for _, h := range hours[variant] {
			sortLoads(h.Loads)
			c.Hours = append(c.Hours, *h)
		}
		sortHours(c.Hours)
		out = append(out, *c)
	}
	return out, nil
}

// sortLoads puts each histogram's buckets in ascending order, as sumMap
// returns them: merged hours otherwise keep the order buckets arrived in.
func sortLoads(loads map[string]Histogram) {
	for op, h := range loads {
		idx := make([]int, len(h.Keys))
		for i := range idx {
			idx[i] = i
		}
		sort.Slice(idx, func(a, b int) bool { return h.Keys[idx[a]] < h.Keys[idx[b]] })
		sorted := Histogram{Keys: make([]uint16, len(idx)), Weights: make([]float64, len(idx))}
		for i, j := range idx {
			sorted.Keys[i], sorted.Weights[i] = h.Keys[j], h.Weights[j]
		}
		loads[op] = sorted
	}
}

func sortHours(hs []ClientHour) {
	for i := 1; i < len(hs); i++ {
		for j := i; j > 0 && hs[j].Hour.Before(hs[j-1].Hour); j-- {
			hs[j], hs[j-1] = hs[j-1], hs[j]
		}
	}
}

// ConversionsBy is the unit conversions are counted in.
type ConversionsBy string

const (
	BySession ConversionsBy = "session"
	ByUser    ConversionsBy = "user"
)

func (b ConversionsBy) column() (string, error) {
	switch b {
	case BySession, "":
		return "session_id", nil
	case ByUser:
		return "user_id", nil
	}
	return "", invalid("client read: by must be session or user, not %q", string(b))
}

// Conversion is one variant's conversion over the range.
type Conversion struct {
	Variant string
	// Units are the sessions or users whose first client event in the
	// range was in the variant; Converted those that reached the outcome
	// in the range.
	Units, Converted uint64
	// Mixed are the units among Units also seen in another variant
	// (MixedConverted of them converted): a sample-ratio check leaves
	// them out or counts them apart.
	Mixed, MixedConverted uint64
}

// Conversions reads per variant the units (sessions or users) of the range
// and those that reached outcome, an outcome of outcomeService ("" the
// unit's own service) in the range.
func (s *Store) Conversions(ctx context.Context, q ClientQuery, by ConversionsBy, outcome, outcomeService string, limit int) ([]Conversion, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	key, err := by.column()
	if err != nil {
		return nil, err
	}
	if outcome == "" {
		return nil, invalid("conversions: outcome is required")
	}
	if outcomeService == "" {
		outcomeService = q.Service
	}
	var out []Conversion
	err = s.query(ctx, "conversions", s.clientVariant(q, key), func(rs driver.Rows) error {
		var c Conversion
		if err := rs.Scan(&c.Variant, &c.Units, &c.Converted, &c.Mixed, &c.MixedConverted); err != nil {
			return err
		}
		out = append(out, c)
		return nil
	}, clientArgs(q, clickhouse.Named("limit", limit), clickhouse.Named("outcome", outcome),
		clickhouse.Named("outcome_service", outcomeService))...)
	return out, err
}

// RetentionRow is one variant's retention.
type RetentionRow struct {
	Variant string
	// Users are the users whose first client event in the range was in the
	// variant; Eligible those whose first event is at least the days
	// before until; Retained those of them seen again (any client event of
	// the unit) at least the days after their first event, before until.
	Users, Eligible, Retained uint64
}

// Retention reads per variant the users of the range and the share seen
// again at least days days after their first event, up to until.
func (s *Store) Retention(ctx context.Context, q ClientQuery, days int, until time.Time, limit int) ([]RetentionRow, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	if days < 1 {
		return nil, invalid("retention: days must be at least 1, got %d", days)
	}
	if until.Before(q.To) {
		return nil, invalid("retention: until is before the range's end")
	}
	var out []RetentionRow
	err := s.query(ctx, "retention", s.clientVariant(q, "user_id"), func(rs driver.Rows) error {
		var r RetentionRow
		if err := rs.Scan(&r.Variant, &r.Users, &r.Eligible, &r.Retained); err != nil {
			return err
		}
		out = append(out, r)
		return nil
	}, clientArgs(q, clickhouse.Named("limit", limit),
		clickhouse.Named("days_ns", uint64(days)*uint64(24*time.Hour)),
		clickhouse.Named("until_ns", uint64(unixNanos(until))),
		clickhouse.Named("until", ceilSeconds(until)))...)
	return out, err
}

// CovariateMetric is the per-user value UnitCovariates reads.
type CovariateMetric struct {
	// Outcome: the count of the user's outcome events of this name (of
	// OutcomeService, "" the unit's own).
	Outcome, OutcomeService string
	// Operations: else, the mean duration (ms) of the user's events of
	// these operations.
	Operations []string
}

// UnitCovariate is one user's values for CUPED.
type UnitCovariate struct {
	User, Variant string
	// Value is the in-range value: the mean load (ms) over ValueN loads,
	// or the outcome count (ValueN 1).
	Value, ValueN float64
	// Pre is the pre-period value, PreN its weight: 0 when the user had no
	// loads there (for an outcome count, 0 is also "none").
	Pre, PreN float64
}

// UnitCovariates reads per user of the range (at most limit, a
// deterministic sample by cityHash64 of the id) its variant, its value in
// the range and in the pre-period [preFrom, q.From).
func (s *Store) UnitCovariates(ctx context.Context, q ClientQuery, preFrom time.Time, m CovariateMetric, limit int) ([]UnitCovariate, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	if !preFrom.Before(q.From) {
		return nil, invalid("unit covariates: the pre-period is empty")
	}
	load := m.Outcome == ""
	if load && len(m.Operations) == 0 {
		return nil, invalid("unit covariates: name an outcome or operations")
	}
	if m.OutcomeService == "" {
		m.OutcomeService = q.Service
	}
	v := s.clientVariant(q, "user_id")
	v.Load = load
	ops := m.Operations
	if len(ops) == 0 {
		ops = []string{""} // an empty array literal has no element type on the server
	}
	var out []UnitCovariate
	err := s.query(ctx, "unit_covariates", v, func(rs driver.Rows) error {
		var u UnitCovariate
		var sum, preSum float64
		if err := rs.Scan(&u.User, &u.Variant, &sum, &u.ValueN, &preSum, &u.PreN); err != nil {
			return err
		}
		u.Value, u.Pre = sum, preSum
		if load {
			u.Value, u.Pre = meanOf(sum, u.ValueN), meanOf(preSum, u.PreN)
		}
		out = append(out, u)
		return nil
	}, clientArgs(q, clickhouse.Named("limit", limit), clickhouse.Named("outcome", m.Outcome),
		clickhouse.Named("outcome_service", m.OutcomeService), clickhouse.Named("operations", ops),
		clickhouse.Named("pre_from", unixSeconds(preFrom)))...)
	return out, err
}

func meanOf(sum, n float64) float64 {
	if n <= 0 {
		return 0
	}
	return sum / n
}
