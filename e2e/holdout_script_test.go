package e2e

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// The DORA hold-out's script: thirty days of four services, each deployed
// by another system, with incidents, rollbacks, fix-forwards, hotfixes and
// reverts. Every expectation is written down as the script makes the event
// — "this deployment will be rolled back", "an incident follows this one and
// is resolved before the next" — by the definitions of docs/dora.md, never
// read back from changelens.

// Failure and rework reasons as /v1/deployments spells them.
const (
	reasonRolledBack = "FAILURE_REASON_ROLLED_BACK"
	reasonIncident   = "FAILURE_REASON_INCIDENT"
	reworkRollback   = "REWORK_REASON_ROLLBACK"
	reworkFixForward = "REWORK_REASON_FIX_FORWARD"
	reworkHotfix     = "REWORK_REASON_HOTFIX"
	reworkRevert     = "REWORK_REASON_REVERT"
)

// holdOutFixForward is the API's --fix-forward-window default.
const holdOutFixForward = 24 * time.Hour

// scriptedDeploy is one deployment, or failed attempt, as its source reports it.
type scriptedDeploy struct {
	n        int    // position in the script: the sources' IDs are made of it
	service  string // also names the source: holdOutServices
	source   string // otlp, github, argocd, cdevents
	version  string
	commit   string
	start    time.Time // rollout start
	at       time.Time // deploy time
	commitAt time.Time // zero: the source says no commit time
	failed   bool      // a failed attempt
	rollback bool      // it redeploys the version before the one it replaces
	mark     string    // hotfix or revert, as its source marks it

	// What changelens must say of it.
	reasons   []string
	rework    string
	restoreAt time.Time // zero: not restored
	incidents []*scriptedIncident
}

// scriptedIncident is one incident of one service, reported by PagerDuty or
// Alertmanager: opened while deployment follows is live.
type scriptedIncident struct {
	n        int
	source   string // pagerduty, alertmanager
	service  string
	opened   time.Time
	resolved time.Time // zero: still open
	follows  *scriptedDeploy
}

var holdOutServices = []struct{ name, source string }{
	{"checkout", "otlp"}, {"payments", "github"}, {"catalog", "argocd"}, {"search", "cdevents"},
}

// holdOutScript writes the script for [start, end) from seed.
func holdOutScript(seed uint64, start, end time.Time) (deps []*scriptedDeploy, incs []*scriptedIncident) {
	rng := rand.New(rand.NewPCG(seed, 23))
	minutes := func(lo, hi int) time.Duration { return time.Duration(lo+rng.IntN(hi-lo+1)) * time.Minute }
	n := 0
	for si, svc := range holdOutServices {
		t := start.Add(time.Duration(si) * 3 * time.Hour)
		var (
			ok              []*scriptedDeploy // successful deployments, in order
			minor           int
			rollBackNext    bool
			incidentPending bool // an incident follows the latest successful deployment
		)
		// placeIncident opens an incident of the latest deployment d before
		// next (nil: none yet), resolved before next, after it, or never.
		placeIncident := func(d *scriptedDeploy, next *scriptedDeploy, open bool) {
			horizon := end.Sub(d.at) - time.Hour
			if next != nil {
				horizon = next.at.Sub(d.at)
			}
			in := &scriptedIncident{n: n, service: svc.name, follows: d, source: "pagerduty"}
			n++
			if rng.IntN(2) == 0 {
				in.source = "alertmanager"
			}
			// Opens within the first half of the deployment's life.
			in.opened = d.at.Add(5*time.Minute + time.Duration(rng.Int64N(int64(horizon/2))).Truncate(time.Second))
			limit := d.at.Add(horizon) // the next deployment, or an hour before end
			switch r := rng.Float64(); {
			case open:
			case r < 0.6: // resolved while the deployment is still live
				in.resolved = in.opened.Add(time.Second + time.Duration(rng.Int64N(int64(limit.Sub(in.opened)-time.Second))).Truncate(time.Second))
			case r < 0.9 && next != nil: // resolved after the next deployment
				in.resolved = limit.Add(minutes(10, 180))
				if !in.resolved.Before(end) {
					in.resolved = end.Add(-time.Minute)
				}
			}
			d.incidents = append(d.incidents, in)
			incs = append(incs, in)
		}
		for {
			gap := minutes(10*60, 26*60) // straddles the fix-forward window
			if rollBackNext {
				gap = minutes(40, 240)
			}
			at := t.Add(gap)
			if !at.Before(end.Add(-2 * time.Hour)) {
				break
			}
			t = at
			d := &scriptedDeploy{n: n, service: svc.name, source: svc.source, at: at, start: at.Add(-minutes(2, 15))}
			n++
			var prev *scriptedDeploy
			if len(ok) > 0 {
				prev = ok[len(ok)-1]
			}
			if rollBackNext {
				// Back to the version prev replaced.
				back := ok[len(ok)-2]
				d.rollback, d.version, d.commit = true, back.version, back.commit
				if svc.source == "cdevents" {
					d.mark = "revert" // service.rolledback: marked, and a rollback first
				}
				rollBackNext = false
			} else {
				minor++
				d.version = fmt.Sprintf("%d.%d.0", si+1, minor)
				d.commit = fmt.Sprintf("%040x", uint64(si+1)<<32|uint64(minor))
				d.commitAt = at.Add(-minutes(20, 72*60))
				switch r := rng.Float64(); {
				case r < 0.07:
					d.mark = "hotfix"
				case r < 0.11:
					d.mark = "revert"
				}
				if svc.source != "cdevents" && rng.Float64() < 0.1 {
					// A failed attempt of the same version first: never a
					// deployment, never rework, never anyone's predecessor.
					f := &scriptedDeploy{n: n, service: svc.name, source: svc.source, version: d.version, commit: d.commit,
						at: d.start.Add(-minutes(5, 30)), failed: true}
					f.start = f.at.Add(-minutes(1, 5))
					n++
					deps = append(deps, f)
				}
			}
			if incidentPending {
				placeIncident(prev, d, false)
				incidentPending = false
			}
			deps = append(deps, d)
			ok = append(ok, d)
			if !d.rollback && len(ok) >= 2 {
				switch r := rng.Float64(); {
				case r < 0.10:
					rollBackNext = true
				case r < 0.13: // an incident, then the rollback
					rollBackNext, incidentPending = true, true
				case r < 0.30:
					incidentPending = true
				}
			}
		}
		if incidentPending || si == 0 {
			// The first service's last deployment is a failure nothing
			// has restored yet, whatever the draw.
			placeIncident(ok[len(ok)-1], nil, si == 0)
		}
		expectService(ok)
	}
	return deps, incs
}

// expectService writes down what changelens must say of one service's
// successful deployments, in order, by docs/dora.md.
func expectService(ok []*scriptedDeploy) {
	for i, d := range ok {
		var next *scriptedDeploy
		if i+1 < len(ok) {
			next = ok[i+1]
		}
		if next != nil && next.rollback {
			d.reasons = append(d.reasons, reasonRolledBack)
		}
		if len(d.incidents) > 0 {
			d.reasons = append(d.reasons, reasonIncident)
		}
		if len(d.reasons) > 0 {
			// Restored by the next deployment, or by the incidents'
			// resolution when every one is resolved and that came first.
			if next != nil {
				d.restoreAt = next.at
			}
			var last time.Time
			resolved := len(d.incidents) > 0
			for _, in := range d.incidents {
				if in.resolved.IsZero() {
					resolved = false
				} else if in.resolved.After(last) {
					last = in.resolved
				}
			}
			if resolved && (d.restoreAt.IsZero() || last.Before(d.restoreAt)) {
				d.restoreAt = last
			}
		}
		switch {
		case d.rollback:
			d.rework = reworkRollback
		case d.mark == "hotfix":
			d.rework = reworkHotfix
		case d.mark == "revert":
			d.rework = reworkRevert
		case i > 0 && len(ok[i-1].reasons) > 0 && d.at.Sub(ok[i-1].at) <= holdOutFixForward:
			d.rework = reworkFixForward
		}
	}
}

// holdOutFigures are /v1/dora's summary for [start, end), from the script.
type holdOutFigures struct {
	deployments, changes, failedChanges, rework, leadSamples, restoreSamples int
	frequency, cfr, reworkRate, leadMedian, restoreMedian                    float64
}

func expectFigures(deps []*scriptedDeploy, start, end time.Time) holdOutFigures {
	var f holdOutFigures
	var leads, restores []float64
	for _, d := range deps {
		if d.failed || d.at.Before(start) || !d.at.Before(end) {
			continue
		}
		f.deployments++
		if d.rework != "" {
			f.rework++
		}
		if d.rollback {
			continue
		}
		f.changes++
		if len(d.reasons) > 0 {
			f.failedChanges++
			if !d.restoreAt.IsZero() {
				restores = append(restores, d.restoreAt.Sub(d.at).Seconds())
			}
		}
		if !d.commitAt.IsZero() {
			leads = append(leads, d.at.Sub(d.commitAt).Seconds())
		}
	}
	f.frequency = float64(f.deployments) / (end.Sub(start).Hours() / 24)
	f.cfr = float64(f.failedChanges) / float64(f.changes)
	f.reworkRate = float64(f.rework) / float64(f.deployments)
	f.leadSamples, f.leadMedian = len(leads), median(leads)
	f.restoreSamples, f.restoreMedian = len(restores), median(restores)
	return f
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// TestHoldOutScript: the script exercises every case the hold-out checks.
func TestHoldOutScript(t *testing.T) {
	end := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	deps, incs := holdOutScript(2025, end.Add(-30*24*time.Hour), end)
	c := map[string]int{}
	for _, d := range deps {
		if d.failed {
			c["failed attempt"]++
			continue
		}
		c["deployment"]++
		c[d.rework]++
		if len(d.reasons) > 0 && d.restoreAt.IsZero() {
			c["unrestored failure"]++
		}
		if len(d.reasons) == 2 {
			c["rolled back after an incident"]++
		}
	}
	for _, in := range incs {
		c[in.source]++
		switch {
		case in.resolved.IsZero():
			c["open incident"]++
		case in.resolved.Before(in.follows.restoreAt) || in.follows.restoreAt.Equal(in.resolved):
			c["resolved first"]++
		default:
			c["resolved after the next deployment"]++
		}
	}
	t.Logf("%v", c)
	if c["deployment"] < 150 {
		t.Errorf("%d deployments, want >= 150", c["deployment"])
	}
	for _, k := range []string{"failed attempt", reworkRollback, reworkFixForward, reworkHotfix, reworkRevert, "unrestored failure",
		"rolled back after an incident", "pagerduty", "alertmanager", "open incident", "resolved first", "resolved after the next deployment"} {
		if c[k] == 0 {
			t.Errorf("the script has no %s", k)
		}
	}
	for _, d := range deps {
		if !d.at.Before(end) || (d.restoreAt.After(end)) {
			t.Errorf("#%d lies after the end: %s, restored %s", d.n, d.at, d.restoreAt)
		}
	}
}
