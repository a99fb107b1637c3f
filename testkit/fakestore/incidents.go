package fakestore

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/store"
)

type incidentKey struct{ service, environment, id string }

// AddIncident adds an incident event as the exporter stores it: one per
// (Service, Environment, ID), a resolution replacing the opening but never
// the other way round (a replayed opening does not re-open it). Status ""
// is open; a zero Resolved of a resolved one is its opening.
func (s *Store) AddIncident(in report.Incident) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in.Opened = in.Opened.UTC()
	in.LinkedDeploymentID = ""
	if in.Status != report.IncidentResolved {
		in.Status, in.Resolved = report.IncidentOpen, time.Time{}
	} else if in.Resolved.Before(in.Opened) {
		in.Resolved = in.Opened
	}
	in.Resolved = in.Resolved.UTC()
	k := incidentKey{in.Service, in.Environment, in.ID}
	if old, ok := s.incidents[k]; ok && old.Status == report.IncidentResolved && in.Status != report.IncidentResolved {
		return
	}
	s.incidents[k] = in
}

// IncidentRows reads the incidents of f opened in [from, to), oldest first
// (then by unit and ID); more than limit is an *report.InvalidArgumentError.
func (s *Store) IncidentRows(ctx context.Context, f store.UnitFilter, from, to time.Time, limit int) ([]report.Incident, error) {
	defer s.mu.Unlock()
	if err := s.begin(ctx, "IncidentRows"); err != nil {
		return nil, err
	}
	var out []report.Incident
	for _, in := range s.incidents {
		if matches(f, in.Service, in.Environment) && !in.Opened.Before(from) && in.Opened.Before(to) {
			out = append(out, in)
		}
	}
	if len(out) > limit {
		return nil, invalid("more than %d incidents in the range: narrow it or filter by service", limit)
	}
	slices.SortFunc(out, func(a, b report.Incident) int {
		return cmp.Or(a.Opened.Compare(b.Opened), cmp.Compare(a.Service, b.Service),
			cmp.Compare(a.Environment, b.Environment), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}
