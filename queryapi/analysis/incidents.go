package analysis

import "github.com/changelens/changelens/queryapi/report"

// LinkIncidents links each incident to the deployment it followed and adds
// it to that item's Incidents: the deployment the source named, when the
// timeline holds it as a successful deployment (a failed attempt changed
// nothing, so the unit's live deployment is to blame instead); else the
// unit's live deployment when the incident opened, its latest successful
// deployment at or before then. It returns the incidents with
// LinkedDeploymentID set ("" when the timeline holds no such deployment).
// Incidents already linked to t's items are replaced.
func (t *Timeline) LinkIncidents(incidents []report.Incident) []report.Incident {
	for _, it := range t.items {
		it.Incidents = nil
	}
	byUnit := map[UnitKey][]*Item{}
	for _, it := range t.items { // ordered by unit, then deploy time
		if !it.Deployment.Failed {
			byUnit[it.Unit()] = append(byUnit[it.Unit()], it)
		}
	}
	out := make([]report.Incident, len(incidents))
	for i, in := range incidents {
		var linked *Item
		if in.DeploymentID != "" {
			if it, ok := t.Get(in.DeploymentID); ok && !it.Deployment.Failed {
				linked = it
			}
		}
		if linked == nil {
			for _, it := range byUnit[UnitKey{in.Service, in.Environment}] {
				if it.Deployment.DeployTime.After(in.Opened) {
					break
				}
				linked = it
			}
		}
		in.LinkedDeploymentID = ""
		if linked != nil {
			in.LinkedDeploymentID = linked.Deployment.ID
			linked.Incidents = append(linked.Incidents, in)
		}
		out[i] = in
	}
	t.incidents = out
	return out
}

// Incidents are the incidents LinkIncidents linked last, linked.
func (t *Timeline) Incidents() []report.Incident { return t.incidents }
