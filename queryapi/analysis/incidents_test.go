package analysis

import (
	"slices"
	"testing"
	"time"

	"github.com/changelens/changelens/queryapi/report"
)

func incident(id, service string, opened, resolved time.Duration) report.Incident {
	in := report.Incident{ID: id, Source: "pagerduty", Status: report.IncidentOpen, Service: service,
		Environment: "production", Opened: at(opened)}
	if resolved > 0 {
		in.Status, in.Resolved = report.IncidentResolved, at(resolved)
	}
	return in
}

func TestLinkIncidents(t *testing.T) {
	failed := row("f", "checkout", "4", "3", 5*time.Hour)
	failed.Failed = true
	tl := NewTimeline([]Row{
		row("a", "checkout", "2", "1", time.Hour),
		row("b", "checkout", "3", "2", 3*time.Hour),
		failed,
		row("c", "cart", "9", "8", 2*time.Hour),
	}, DefaultConfig())
	named := incident("named", "checkout", 4*time.Hour, 0)
	named.DeploymentID = "a"
	namedFailed := incident("named-failed", "checkout", 6*time.Hour, 0)
	namedFailed.DeploymentID = "f"
	got := tl.LinkIncidents([]report.Incident{
		incident("live", "checkout", 2*time.Hour, 0), // a was live
		incident("at", "checkout", 3*time.Hour, 0),   // b went live at that instant
		incident("early", "checkout", 30*time.Minute, 0),
		named,
		namedFailed, // the failed attempt changed nothing: b was live
		incident("other-unit", "cart", 4*time.Hour, 0),
	})
	var links []string
	for _, in := range got {
		links = append(links, in.ID+"→"+in.LinkedDeploymentID)
	}
	want := []string{"live→a", "at→b", "early→", "named→a", "named-failed→b", "other-unit→c"}
	if !slices.Equal(links, want) {
		t.Errorf("links = %v, want %v", links, want)
	}
	a, _ := tl.Get("a")
	if len(a.Incidents) != 2 || a.Incidents[0].ID != "live" || a.Incidents[1].ID != "named" {
		t.Errorf("a's incidents = %+v", a.Incidents)
	}
	// Linking again replaces, not adds.
	tl.LinkIncidents(nil)
	if len(a.Incidents) != 0 {
		t.Errorf("a's incidents after relinking = %+v", a.Incidents)
	}
}

// A deployment an incident followed is a change failure even when its
// traffic showed nothing, its recovery bounded by the incident's
// resolution or the next deployment, whichever came first; DORA counts it.
func TestIncidentMakesChangeFailure(t *testing.T) {
	tl := NewTimeline([]Row{
		row("a", "checkout", "2", "1", time.Hour),
		row("b", "checkout", "3", "2", 5*time.Hour),
		row("c", "checkout", "4", "3", 8*time.Hour),
	}, DefaultConfig())
	noChange := Judgement{Verdict: report.VerdictNoChange}
	impact := func(id string) report.Deployment {
		it, _ := tl.Get(id)
		return tl.Impact(it, noChange, WindowStats{}, WindowStats{}).Deployment
	}
	for _, c := range []struct {
		name      string
		incidents []report.Incident
		restore   time.Duration // from t0; 0: none
	}{
		{"resolved before the next deployment", []report.Incident{incident("i", "checkout", 2*time.Hour, 3*time.Hour)}, 3 * time.Hour},
		{"resolved after the next deployment", []report.Incident{incident("i", "checkout", 2*time.Hour, 7*time.Hour)}, 5 * time.Hour},
		{"still open", []report.Incident{incident("i", "checkout", 2*time.Hour, 0)}, 5 * time.Hour},
		{"the last of two resolutions", []report.Incident{
			incident("i", "checkout", 2*time.Hour, 3*time.Hour), incident("j", "checkout", 90*time.Minute, 4*time.Hour)}, 4 * time.Hour},
	} {
		tl.LinkIncidents(c.incidents)
		d := impact("a")
		if !d.ChangeFailure || !slices.Equal(d.FailureReasons, []report.FailureReason{report.ReasonIncident}) || d.Verdict != report.VerdictNoChange {
			t.Errorf("%s: %+v", c.name, d)
			continue
		}
		if !d.RestoreTime.Equal(at(c.restore)) || d.TimeToRestore != c.restore-time.Hour {
			t.Errorf("%s: restored at %v after %v, want %v", c.name, d.RestoreTime, d.TimeToRestore, at(c.restore))
		}
	}

	// The latest deployment: no next one, so only a resolution restores.
	tl.LinkIncidents([]report.Incident{incident("i", "checkout", 9*time.Hour, 0)})
	if d := impact("c"); !d.ChangeFailure || !d.RestoreTime.IsZero() {
		t.Errorf("open, no next deployment: %+v", d)
	}
	tl.LinkIncidents([]report.Incident{incident("i", "checkout", 9*time.Hour, 10*time.Hour)})
	c := impact("c")
	if !c.RestoreTime.Equal(at(10*time.Hour)) || c.TimeToRestore != 2*time.Hour {
		t.Errorf("resolved, no next deployment: %+v", c)
	}
	if b := impact("b"); b.ChangeFailure || len(b.FailureReasons) != 0 {
		t.Errorf("b had no incident: %+v", b)
	}
	f := Figures([]report.Deployment{impact("a"), impact("b"), c}, t0, at(24*time.Hour))
	if f.FailedChangeCount != 1 || f.ChangeCount != 3 || f.RestoreSampleCount != 1 || f.TimeToRestoreMedianSeconds != 7200 {
		t.Errorf("figures = %+v", f)
	}
}

func TestFailureReasonIncidentName(t *testing.T) {
	if r, ok := report.ParseFailureReason("INCIDENT"); !ok || r != report.ReasonIncident || r.String() != "INCIDENT" {
		t.Errorf("INCIDENT parses to %v, %v", r, ok)
	}
}
