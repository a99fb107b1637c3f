package fakestore

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/go-faster/city"

	"github.com/changelens/changelens/internal/schema"
	"github.com/changelens/changelens/queryapi/store"
)

// ClientEvent is one latency event of a client unit (schema v15): what
// latency_events holds of a browser or mobile app's page or screen load.
type ClientEvent struct {
	Service, Environment, Version, Operation string
	Start                                    time.Time
	Duration                                 time.Duration
	Weight                                   float64 // 0: 1
	SessionID, UserID                        string
	Crashed                                  bool
	// Cohorts maps a processor dimension to the event's in-row value.
	// Stored flag evaluations credited by trace are left to the store's
	// own tests.
	Cohorts map[string]string
}

// Outcome is one outcome event (outcome_events); replays are one.
type Outcome struct {
	Service, Environment, Name string
	Time                       time.Time
	SessionID, UserID          string
	// ID tells occurrences apart (the table's time_ns, trace and span):
	// outcomes of one ID are replays of one.
	ID string
}

// AddClientEvents adds client latency events.
func (s *Store) AddClientEvents(es ...ClientEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range es {
		if e.Weight == 0 {
			e.Weight = 1
		}
		e.Cohorts = maps.Clone(e.Cohorts)
		s.clientEvents = append(s.clientEvents, e)
	}
}

// AddOutcomes adds outcome events.
func (s *Store) AddOutcomes(os ...Outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outcomes = append(s.outcomes, os...)
}

// inSeconds reports whether t lies in [from, to) as the store reads the
// raw tables' DateTime: whole seconds, from rounded down, to up.
func inSeconds(t, from, to time.Time) bool {
	sec := t.Truncate(time.Second)
	end := to.Truncate(time.Second)
	if end.Before(to) {
		end = end.Add(time.Second)
	}
	return !sec.Before(from.Truncate(time.Second)) && sec.Before(end)
}

func keyOf(e *ClientEvent, user bool) string {
	if user {
		return e.UserID
	}
	return e.SessionID
}

func outcomeKey(o *Outcome, user bool) string {
	if user {
		return o.UserID
	}
	return o.SessionID
}

// clientEvents calls fn for each event of q's unit and range with a key
// (session or user) and a variant.
func (s *Store) clientEventsLocked(q store.ClientQuery, user bool, fn func(e *ClientEvent, variant string)) {
	for i := range s.clientEvents {
		e := &s.clientEvents[i]
		if e.Service != q.Service || e.Environment != q.Environment || !inSeconds(e.Start, q.From, q.To) || keyOf(e, user) == "" {
			continue
		}
		v := e.Cohorts[q.Dimension]
		if versionDim(q.Dimension) == schema.DimensionVersion {
			v = e.Version
		}
		if v != "" {
			fn(e, v)
		}
	}
}

// ClientCohorts mirrors store.ClientCohorts.
func (s *Store) ClientCohorts(ctx context.Context, q store.ClientQuery, operations []string, limit int) ([]store.ClientCohort, error) {
	if err := s.begin(ctx, "ClientCohorts"); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	defer s.mu.Unlock()
	if err := q.Validate(); err != nil {
		return nil, err
	}
	crashOut := map[string]bool{}
	for i := range s.outcomes {
		o := &s.outcomes[i]
		if o.Service == q.Service && o.Environment == q.Environment && o.Name == "crash" && o.SessionID != "" && inSeconds(o.Time, q.From, q.To) {
			crashOut[o.SessionID] = true
		}
	}
	type agg struct {
		sessions, crashed map[string]bool
		requests          float64
		loads             map[string]map[uint16]float64
	}
	newAgg := func() *agg {
		return &agg{sessions: map[string]bool{}, crashed: map[string]bool{}, loads: map[string]map[uint16]float64{}}
	}
	total := map[string]*agg{}
	hourly := map[string]map[time.Time]*agg{}
	s.clientEventsLocked(q, false, func(e *ClientEvent, v string) {
		if total[v] == nil {
			total[v], hourly[v] = newAgg(), map[time.Time]*agg{}
		}
		h := e.Start.Truncate(time.Hour).UTC()
		if hourly[v][h] == nil {
			hourly[v][h] = newAgg()
		}
		for _, a := range []*agg{total[v], hourly[v][h]} {
			a.sessions[e.SessionID] = true
			if e.Crashed || crashOut[e.SessionID] {
				a.crashed[e.SessionID] = true
			}
			a.requests += e.Weight
			if slices.Contains(operations, e.Operation) {
				if a.loads[e.Operation] == nil {
					a.loads[e.Operation] = map[uint16]float64{}
				}
				a.loads[e.Operation][schema.HistBucket(uint64(e.Duration))] += e.Weight
			}
		}
	})
	loads := func(m map[string]map[uint16]float64) map[string]store.Histogram {
		out := map[string]store.Histogram{}
		for op, h := range m {
			keys := slices.Sorted(maps.Keys(h))
			ws := make([]float64, len(keys))
			for i, k := range keys {
				ws[i] = h[k]
			}
			out[op] = store.Histogram{Keys: keys, Weights: ws}
		}
		return out
	}
	var out []store.ClientCohort
	for _, v := range slices.Sorted(maps.Keys(total)) {
		a := total[v]
		c := store.ClientCohort{Variant: v, Sessions: uint64(len(a.sessions)), CrashedSessions: uint64(len(a.crashed)),
			Requests: a.requests, Loads: loads(a.loads)}
		for _, h := range slices.SortedFunc(maps.Keys(hourly[v]), time.Time.Compare) {
			ha := hourly[v][h]
			c.Hours = append(c.Hours, store.ClientHour{Hour: h, Sessions: uint64(len(ha.sessions)), CrashedSessions: uint64(len(ha.crashed)),
				Requests: ha.requests, Loads: loads(ha.loads)})
		}
		out = append(out, c)
	}
	return out, nil
}

// unitFirsts are the units (sessions or users) of q with the variant of
// their first event and whether they saw more than one.
type unitFirst struct {
	variant  string
	first    time.Time
	variants map[string]bool
}

func (s *Store) unitFirstsLocked(q store.ClientQuery, user bool) map[string]*unitFirst {
	units := map[string]*unitFirst{}
	s.clientEventsLocked(q, user, func(e *ClientEvent, v string) {
		k := keyOf(e, user)
		u := units[k]
		if u == nil {
			u = &unitFirst{variant: v, first: e.Start, variants: map[string]bool{}}
			units[k] = u
		} else if e.Start.Before(u.first) {
			u.variant, u.first = v, e.Start
		}
		u.variants[v] = true
	})
	return units
}

// Conversions mirrors store.Conversions.
func (s *Store) Conversions(ctx context.Context, q store.ClientQuery, by store.ConversionsBy, outcome, outcomeService string, limit int) ([]store.Conversion, error) {
	if err := s.begin(ctx, "Conversions"); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	defer s.mu.Unlock()
	if err := q.Validate(); err != nil {
		return nil, err
	}
	if by != store.BySession && by != store.ByUser && by != "" {
		return nil, invalid("client read: by must be session or user, not %q", string(by))
	}
	if outcome == "" {
		return nil, invalid("conversions: outcome is required")
	}
	if outcomeService == "" {
		outcomeService = q.Service
	}
	user := by == store.ByUser
	reached := map[string]bool{}
	for i := range s.outcomes {
		o := &s.outcomes[i]
		if o.Service == outcomeService && o.Environment == q.Environment && o.Name == outcome && outcomeKey(o, user) != "" && inSeconds(o.Time, q.From, q.To) {
			reached[outcomeKey(o, user)] = true
		}
	}
	rows := map[string]*store.Conversion{}
	for k, u := range s.unitFirstsLocked(q, user) {
		c := rows[u.variant]
		if c == nil {
			c = &store.Conversion{Variant: u.variant}
			rows[u.variant] = c
		}
		c.Units++
		mixed := len(u.variants) > 1
		if mixed {
			c.Mixed++
		}
		if reached[k] {
			c.Converted++
			if mixed {
				c.MixedConverted++
			}
		}
	}
	var out []store.Conversion
	for _, v := range slices.Sorted(maps.Keys(rows)) {
		out = append(out, *rows[v])
	}
	return out, nil
}

// Retention mirrors store.Retention.
func (s *Store) Retention(ctx context.Context, q store.ClientQuery, days int, until time.Time, limit int) ([]store.RetentionRow, error) {
	if err := s.begin(ctx, "Retention"); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	defer s.mu.Unlock()
	if err := q.Validate(); err != nil {
		return nil, err
	}
	if days < 1 {
		return nil, invalid("retention: days must be at least 1, got %d", days)
	}
	if until.Before(q.To) {
		return nil, invalid("retention: until is before the range's end")
	}
	after := time.Duration(days) * 24 * time.Hour
	last := map[string]time.Time{}
	for i := range s.clientEvents {
		e := &s.clientEvents[i]
		if e.Service == q.Service && e.Environment == q.Environment && e.UserID != "" && inSeconds(e.Start, q.From, until) && e.Start.After(last[e.UserID]) {
			last[e.UserID] = e.Start
		}
	}
	rows := map[string]*store.RetentionRow{}
	for k, u := range s.unitFirstsLocked(q, true) {
		r := rows[u.variant]
		if r == nil {
			r = &store.RetentionRow{Variant: u.variant}
			rows[u.variant] = r
		}
		r.Users++
		if !u.first.Add(after).After(until) {
			r.Eligible++
			if !last[k].Before(u.first.Add(after)) {
				r.Retained++
			}
		}
	}
	var out []store.RetentionRow
	for _, v := range slices.Sorted(maps.Keys(rows)) {
		out = append(out, *rows[v])
	}
	return out, nil
}

// UnitCovariates mirrors store.UnitCovariates.
func (s *Store) UnitCovariates(ctx context.Context, q store.ClientQuery, preFrom time.Time, m store.CovariateMetric, limit int) ([]store.UnitCovariate, error) {
	if err := s.begin(ctx, "UnitCovariates"); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	defer s.mu.Unlock()
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
	type sums struct{ sum, n, preSum, preN float64 }
	vals := map[string]*sums{}
	units := s.unitFirstsLocked(q, true)
	for k := range units {
		vals[k] = &sums{}
	}
	if load {
		s.clientEventsLocked(q, true, func(e *ClientEvent, _ string) {
			if slices.Contains(m.Operations, e.Operation) {
				vals[e.UserID].sum += float64(e.Duration) / 1e6 * e.Weight
				vals[e.UserID].n += e.Weight
			}
		})
		for i := range s.clientEvents {
			e := &s.clientEvents[i]
			if v := vals[e.UserID]; v != nil && e.Service == q.Service && e.Environment == q.Environment &&
				inSeconds(e.Start, preFrom, q.From) && slices.Contains(m.Operations, e.Operation) {
				v.preSum += float64(e.Duration) / 1e6 * e.Weight
				v.preN += e.Weight
			}
		}
	} else {
		seen := map[string]bool{}
		for i := range s.outcomes {
			o := &s.outcomes[i]
			v := vals[o.UserID]
			if v == nil || o.Service != m.OutcomeService || o.Environment != q.Environment || o.Name != m.Outcome || seen[o.ID] {
				continue
			}
			switch {
			case inSeconds(o.Time, q.From, q.To):
				seen[o.ID] = true
				v.sum++
			case inSeconds(o.Time, preFrom, q.From):
				seen[o.ID] = true
				v.preSum++
				v.preN = 1
			}
		}
		for _, v := range vals {
			v.n = 1
		}
	}
	keys := slices.SortedFunc(maps.Keys(units), func(a, b string) int {
		ha, hb := city.CH64([]byte(a)), city.CH64([]byte(b))
		switch {
		case ha < hb:
			return -1
		case ha > hb:
			return 1
		}
		return strings.Compare(a, b)
	})
	if len(keys) > limit {
		keys = keys[:limit]
	}
	out := make([]store.UnitCovariate, 0, len(keys))
	for _, k := range keys {
		v := vals[k]
		u := store.UnitCovariate{User: k, Variant: units[k].variant, Value: v.sum, ValueN: v.n, Pre: v.preSum, PreN: v.preN}
		if load {
			u.Value, u.Pre = mean(v.sum, v.n), mean(v.preSum, v.preN)
		}
		out = append(out, u)
	}
	return out, nil
}

func mean(sum, n float64) float64 {
	if n <= 0 {
		return 0
	}
	return sum / n
}
