package fakestore

import (
	"cmp"
	"context"
	"slices"

	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/store"
)

// PutExperiment stores a revision of an experiment definition, as the
// worker does: the newest revision of an id is the one read.
func (s *Store) PutExperiment(e store.StoredExperiment) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e.AppliedAt = e.AppliedAt.UTC()
	s.experiments[e.ID] = e
}

// Experiments reads the stored experiments, every one for id "" (ordered
// by id), else at most the one.
func (s *Store) Experiments(ctx context.Context, id string) ([]store.StoredExperiment, error) {
	defer s.mu.Unlock()
	if err := s.begin(ctx, "Experiments"); err != nil {
		return nil, err
	}
	var out []store.StoredExperiment
	for _, e := range s.experiments {
		if id == "" || e.ID == id {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b store.StoredExperiment) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// CohortSelfTime measures none: self time is read from raw rows, which the
// fake does not hold (the store's own tests cover it).
func (s *Store) CohortSelfTime(ctx context.Context, q report.CompareQuery) (map[string]store.SelfTime, error) {
	defer s.mu.Unlock()
	if err := s.begin(ctx, "CohortSelfTime"); err != nil {
		return nil, err
	}
	return map[string]store.SelfTime{}, nil
}
