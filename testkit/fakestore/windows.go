package fakestore

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/store"
)

// windowMinutes calls fn for every traffic row of items[i]'s unit inside its
// before (after false) or after minute window, with the minute's offset in
// the window.
func (s *Store) windowMinutes(it *analysis.Item, fn func(after bool, offset int, m Minute)) {
	b, a := it.MinuteWindows()
	u := it.Unit()
	for _, m := range s.minutes {
		if unitOf(m) != u {
			continue
		}
		for side, span := range []analysis.Span{b, a} {
			if !span.Empty() && span.Contains(m.Minute) {
				fn(side == 1, int(m.Minute.Sub(span.Start)/time.Minute), m)
			}
		}
	}
}

// WindowTotals sums every window's requests, errors, stored events and
// durations (no percentiles), as sql/windows.sql.
func (s *Store) WindowTotals(ctx context.Context, items []*analysis.Item, idx []int) ([]store.WindowPair, error) {
	defer s.mu.Unlock()
	if err := s.begin(ctx, "WindowTotals"); err != nil {
		return nil, err
	}
	out := make([]store.WindowPair, len(idx))
	for j, i := range idx {
		var sums [2]hist
		s.windowMinutes(items[i], func(after bool, _ int, m Minute) {
			side := 0
			if after {
				side = 1
			}
			sums[side].add(m)
		})
		for side, h := range sums {
			out[j][side] = analysis.WindowStats{Requests: h.requests, Errors: h.errors, Samples: h.samples, DurationMs: h.durationMs}
		}
	}
	return out, nil
}

// OperationWindows merges each operation's windows (counts and histogram),
// operations by name.
func (s *Store) OperationWindows(ctx context.Context, items []*analysis.Item, idx []int) ([][]analysis.OperationWindows, error) {
	defer s.mu.Unlock()
	if err := s.begin(ctx, "OperationWindows"); err != nil {
		return nil, err
	}
	out := make([][]analysis.OperationWindows, len(idx))
	for j, i := range idx {
		ops := map[string]*[2]hist{}
		s.windowMinutes(items[i], func(after bool, _ int, m Minute) {
			h := ops[m.Operation]
			if h == nil {
				h = &[2]hist{}
				ops[m.Operation] = h
			}
			side := 0
			if after {
				side = 1
			}
			h[side].add(m)
		})
		for _, op := range slices.Sorted(maps.Keys(ops)) {
			ow := analysis.OperationWindows{Operation: op}
			for side, h := range ops[op] {
				keys, weights := h.arrays()
				x := analysis.Hist{Requests: h.requests, Errors: h.errors, Samples: h.samples, DurationMs: h.durationMs, Keys: keys, Weights: weights}
				if side == 0 {
					ow.Before = x
				} else {
					ow.After = x
				}
			}
			out[j] = append(out[j], ow)
		}
	}
	return out, nil
}

// OperationMinutes adds to evidence[j] every minute of the operations it
// judges: requests, errors and the weight above each of its thresholds
// (buckets greater than the threshold bucket, as sql/window_minutes.sql).
func (s *Store) OperationMinutes(ctx context.Context, items []*analysis.Item, idx []int, evidence []*analysis.Evidence) error {
	defer s.mu.Unlock()
	if err := s.begin(ctx, "OperationMinutes"); err != nil {
		return err
	}
	if len(evidence) != len(idx) {
		return fmt.Errorf("fakestore: %d evidences for %d deployments", len(evidence), len(idx))
	}
	type key struct {
		after  bool
		offset int
		op     string
	}
	for j, i := range idx {
		e := evidence[j]
		judged := map[string]bool{}
		for _, op := range e.Operations() {
			judged[op] = true
		}
		per := map[key]*hist{}
		s.windowMinutes(items[i], func(after bool, offset int, m Minute) {
			if !judged[m.Operation] {
				return
			}
			k := key{after, offset, m.Operation}
			if per[k] == nil {
				per[k] = &hist{}
			}
			per[k].add(m)
		})
		for k, h := range per {
			t, u, _ := e.Thresholds(k.op)
			above := func(threshold uint16) float64 {
				var w float64
				for b, x := range h.h {
					if b > threshold {
						w += x
					}
				}
				return w
			}
			e.AddMinute(k.op, k.after, k.offset, analysis.MinuteCounts{Requests: h.requests, Errors: h.errors,
				Slow: [analysis.NumLevels]float64{above(t[0]), above(t[1])}, UnitSlow: [analysis.NumLevels]float64{above(u[0]), above(u[1])}})
		}
	}
	return nil
}

// StoredVerdicts returns the verdicts PutVerdict stored for ids under
// configHash.
func (s *Store) StoredVerdicts(ctx context.Context, configHash string, ids []string) (map[string]store.StoredVerdict, error) {
	defer s.mu.Unlock()
	if err := s.begin(ctx, "StoredVerdicts"); err != nil {
		return nil, err
	}
	out := make(map[string]store.StoredVerdict, len(ids))
	for _, id := range ids {
		if v, ok := s.verdicts[configHash][id]; ok {
			out[id] = v
		}
	}
	return out, nil
}

// StoredEvidence returns the evidence PutEvidence stored for ids under
// configHash.
func (s *Store) StoredEvidence(ctx context.Context, configHash string, ids []string) (map[string]store.Evidence, error) {
	defer s.mu.Unlock()
	if err := s.begin(ctx, "StoredEvidence"); err != nil {
		return nil, err
	}
	out := make(map[string]store.Evidence, len(ids))
	for _, id := range ids {
		if e, ok := s.evidence[configHash][id]; ok {
			out[id] = e
		}
	}
	return out, nil
}
