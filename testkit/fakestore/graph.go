package fakestore

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/store"
)

// Calls returns environment env's calls over [from, to) (only caller's
// with caller set), per minute with byMinute, else one edge per caller and
// callee. sample is ignored: every call counts (the store's sampled counts
// estimate these).
func (s *Store) Calls(ctx context.Context, env, caller string, from, to time.Time, byMinute bool, sample uint64) ([]store.Edge, error) {
	defer s.mu.Unlock()
	if err := s.begin(ctx, "Calls"); err != nil {
		return nil, err
	}
	type key struct {
		caller, callee, calleeEnv string
		minute                    time.Time
	}
	acc := map[key]*store.Edge{}
	for _, c := range s.calls {
		if c.Environment != env || (caller != "" && c.Service != caller) || !in(c.Minute, minuteFrom(from), to) {
			continue
		}
		k := key{caller: c.Service, callee: c.Callee, calleeEnv: c.CalleeEnvironment}
		if byMinute {
			k.minute = c.Minute
		}
		e := acc[k]
		if e == nil {
			e = &store.Edge{Caller: k.caller, Callee: k.callee, CalleeEnvironment: k.calleeEnv, Minute: k.minute}
			acc[k] = e
		}
		e.Calls += c.Calls
		e.Errors += c.Errors
		e.DurationMs += c.DurationMs
	}
	keys := slices.SortedFunc(maps.Keys(acc), func(a, b key) int {
		return cmp.Or(strings.Compare(a.caller, b.caller), strings.Compare(a.callee, b.callee),
			strings.Compare(a.calleeEnv, b.calleeEnv), a.minute.Compare(b.minute))
	})
	out := make([]store.Edge, 0, len(keys))
	for _, k := range keys {
		out = append(out, *acc[k])
	}
	return out, nil
}

// Callers returns, per minute over [from, to), the calls u received from
// each caller (the store reads u's own entry spans; here the callers'
// record of the calls stands for them).
func (s *Store) Callers(ctx context.Context, u analysis.UnitKey, from, to time.Time) ([]store.CallerMinute, error) {
	defer s.mu.Unlock()
	if err := s.begin(ctx, "Callers"); err != nil {
		return nil, err
	}
	type key struct {
		caller, env string
		minute      time.Time
	}
	acc := map[key]*analysis.MinuteSums{}
	for _, c := range s.calls {
		if c.Callee != u.Service || c.CalleeEnvironment != u.Environment || !in(c.Minute, minuteFrom(from), to) {
			continue
		}
		k := key{c.Service, c.Environment, c.Minute}
		if acc[k] == nil {
			acc[k] = &analysis.MinuteSums{}
		}
		acc[k].Requests += c.Calls
		acc[k].Errors += c.Errors
		acc[k].DurationMs += c.DurationMs
	}
	keys := slices.SortedFunc(maps.Keys(acc), func(a, b key) int {
		return cmp.Or(strings.Compare(a.caller, b.caller), strings.Compare(a.env, b.env), a.minute.Compare(b.minute))
	})
	out := make([]store.CallerMinute, 0, len(keys))
	for _, k := range keys {
		out = append(out, store.CallerMinute{Caller: k.caller, CallerEnvironment: k.env, Minute: k.minute, MinuteSums: *acc[k]})
	}
	return out, nil
}

// UnitMinutes merges the units' traffic per minute over [from, to), all
// versions and operations together.
func (s *Store) UnitMinutes(ctx context.Context, units []analysis.UnitKey, from, to time.Time) ([]store.UnitMinute, error) {
	defer s.mu.Unlock()
	if err := s.begin(ctx, "UnitMinutes"); err != nil {
		return nil, err
	}
	want := map[analysis.UnitKey]bool{}
	for _, u := range units {
		want[u] = true
	}
	type key struct {
		u      analysis.UnitKey
		minute time.Time
	}
	acc := map[key]*analysis.MinuteSums{}
	for _, m := range s.minutes {
		if !want[unitOf(m)] || !in(m.Minute, minuteFrom(from), to) {
			continue
		}
		k := key{unitOf(m), m.Minute}
		if acc[k] == nil {
			acc[k] = &analysis.MinuteSums{}
		}
		acc[k].Requests += m.Requests
		acc[k].Errors += m.Errors
		acc[k].DurationMs += m.DurationMs
	}
	keys := slices.SortedFunc(maps.Keys(acc), func(a, b key) int {
		return cmp.Or(strings.Compare(a.u.Service, b.u.Service), strings.Compare(a.u.Environment, b.u.Environment), a.minute.Compare(b.minute))
	})
	out := make([]store.UnitMinute, 0, len(keys))
	for _, k := range keys {
		out = append(out, store.UnitMinute{Unit: k.u, Minute: k.minute, MinuteSums: *acc[k]})
	}
	return out, nil
}
