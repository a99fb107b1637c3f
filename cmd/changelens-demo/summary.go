package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/changelens/changelens/cmd/changelens-demo/plan"
)

// describe is the summary's remark on a deployment.
func describe(d plan.Deployment) string {
	var s string
	switch d.Kind {
	case plan.BadRelease:
		s = fmt.Sprintf("BAD RELEASE: p95 ×%.1f, 5xx +%.0f pts", plan.BadLatencyP95Factor, 100*plan.BadErrorRateIncrease)
		if d.Environment == plan.Production {
			s += fmt.Sprintf(", rolled back %s later", formatDuration(plan.RollbackAfter))
		}
	case plan.Rollback:
		s = "ROLLBACK"
	case plan.ErrorRegression:
		s = fmt.Sprintf("ERROR REGRESSION: 5xx +%.0f pts, latency unchanged", 100*plan.ErrorRegressionIncrease)
	case plan.FixForward:
		s = "FIX FORWARD"
	case plan.Improvement:
		s = fmt.Sprintf("IMPROVEMENT: latency ×%.1f", plan.ImprovementLatencyFactor)
	case plan.FailedDeploy:
		s = "FAILED DEPLOY (recorded, not a deployment)"
	case plan.Canary:
		s = fmt.Sprintf("CANARY: %.0f %% of requests, latency ×%.1f", 100*plan.CanaryShare, plan.CanaryLatencyFactor)
	case plan.CanaryWithdrawn:
		s = "CANARY WITHDRAWN: no deploy; changelens sees a rollback at the canary's last request"
	}
	if d.Note != "" {
		if s != "" {
			s += "; "
		}
		s += d.Note
	}
	return s
}

func printDeployments(w io.Writer, ref time.Time, ds []plan.Deployment) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  DEPLOY TIME (UTC)\tREL\tENVIRONMENT\tSERVICE\tVERSION\tSOURCE\tLEAD TIME\tWHAT")
	for _, d := range ds {
		src, lead := "inferred", "-"
		if d.Explicit {
			src, lead = "explicit", formatDuration(d.LeadTime().Truncate(time.Minute))
		}
		rel := formatDuration(d.Time().Sub(ref).Truncate(time.Minute))
		if d.Time().After(ref) {
			rel = "+" + rel
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s → %s\t%s\t%s\t%s\n", d.Time().Format("2006-01-02 15:04:05"), rel,
			d.Environment, d.Service, d.PreviousVersion, d.Version, src, lead, describe(d))
	}
	tw.Flush()
}

func tally(ds []plan.Deployment) string {
	var n, explicit, failed int
	for _, d := range ds {
		switch {
		case d.Failed():
			failed++
		case d.Explicit:
			n++
			explicit++
		default:
			n++
		}
	}
	return fmt.Sprintf("%d deployments (%d explicit, %d inferred) + %d failed deploy", n, explicit, n-explicit, failed)
}

// printExperiments prints what cannot be read off the deployments: the
// feature-flag experiments and canaries, with the /v1/compare query of each.
func printExperiments(w io.Writer, p *plan.Plan, ds []plan.Deployment) {
	for _, x := range p.Experiments {
		fmt.Fprintf(w, "Experiment: flag %s on %s, %q vs %q %.0f/%.0f; %q: latency ×%.1f, response bodies ×%.1f, 5xx +%.1f pts\n",
			x.Key, x.Unit, x.Control, x.Treatment, 100*(1-x.TreatmentShare), 100*x.TreatmentShare, x.Treatment,
			x.LatencyFactor, x.ResponseSizeFactor, 100*x.ErrorRateIncrease)
		fmt.Fprintf(w, "  compare: /v1/compare?service=%s&environment=%s&dimension=feature_flag.%s&control=%s&treatment=%s&expected_treatment_share=%g\n",
			x.Unit.Service, x.Unit.Environment, x.Key, x.Control, x.Treatment, x.TreatmentShare)
	}
	for _, d := range ds {
		if d.Kind != plan.Canary {
			continue
		}
		end := "still running"
		for _, w := range ds {
			if w.Kind == plan.CanaryWithdrawn && w.UnitKey == d.UnitKey && w.PreviousVersion == d.Version {
				end = "withdrawn " + w.Time().Format(time.RFC3339)
			}
		}
		fmt.Fprintf(w, "Canary: %s %s next to %s from %s, %s\n", d.UnitKey, d.Version, d.PreviousVersion, d.RolloutStart.Format(time.RFC3339), end)
		fmt.Fprintf(w, "  compare: /v1/compare?service=%s&environment=%s&dimension=version&control=%s&treatment=%s&expected_treatment_share=%g&start_time=%s\n",
			d.Service, d.Environment, d.PreviousVersion, d.Version, plan.CanaryShare, d.RolloutStart.Truncate(time.Minute).Format(time.RFC3339))
	}
}

// printPlan prints the whole scenario (--plan).
func printPlan(w io.Writer, p *plan.Plan, ds []plan.Deployment) {
	fmt.Fprintf(w, "Scenario for seed %d: backfill %s … %s", p.Seed, p.Start.Format(time.RFC3339), p.End.Format(time.RFC3339))
	if p.Horizon > 0 {
		fmt.Fprintf(w, ", live releases planned until %s", p.End.Add(p.Horizon).Format(time.RFC3339))
	}
	fmt.Fprintf(w, "\nBaselines:")
	for _, u := range p.Units {
		fmt.Fprintf(w, " %s=%s", u, p.Baseline(u))
	}
	fmt.Fprintf(w, "\n%s; REL is relative to the end of the backfill.\n", tally(ds))
	printDeployments(w, p.End, ds)
	printExperiments(w, p, ds)
}

// printSummary prints what a run emitted.
func printSummary(w io.Writer, r *result) {
	p := r.plan
	state := "done"
	if r.interrupted {
		state = "interrupted"
	}
	fmt.Fprintf(w, "\nchangelens-demo %s: emitted %s … %s (%s of simulated time), %d requests, %d spans: %d exported, %d failed (backfill took %s)\n",
		state, r.from.Format(time.RFC3339), r.to.Format(time.RFC3339), formatDuration(r.to.Sub(r.from).Truncate(time.Second)),
		r.requests, r.spans, r.exported, r.failed, r.backfillTook.Truncate(time.Millisecond))
	if r.firstExportEr != "" {
		fmt.Fprintf(w, "first error: %s\n", r.firstExportEr)
	}
	fmt.Fprintf(w, "Baselines (first version seen, not a deployment):")
	for _, u := range p.Units {
		fmt.Fprintf(w, " %s=%s", u, p.Baseline(u))
	}
	fmt.Fprintf(w, "\n%s. Deploy time = end of the CI deploy span (explicit) or first span of the new version (inferred); REL is relative to %s.\n",
		tally(r.deployments), p.End.Format(time.RFC3339))
	printDeployments(w, p.End, r.deployments)
	printExperiments(w, p, r.deployments)
	printIncidents(w, r)
	printStory(w, r.story)
}

// printIncidents lists the incidents reported to the webhook receiver.
func printIncidents(w io.Writer, r *result) {
	if len(r.incidents) == 0 {
		return
	}
	fmt.Fprintf(w, "\nIncidents reported to the webhook receiver (%d accepted: %s):\n", len(r.incidentIDs), strings.Join(r.incidentIDs, ", "))
	for _, in := range r.incidents {
		resolved := "still open"
		if !in.resolved.IsZero() {
			resolved = fmt.Sprintf("resolved %s (%s later)", in.resolved.Format(time.RFC3339), formatDuration(in.resolved.Sub(in.opened)))
		}
		fmt.Fprintf(w, "  %-12s %s/%s %-8s opened %s, %s, after the %s %s deployed %s: %q\n",
			in.source, in.service, in.env, in.severity, in.opened.Format(time.RFC3339), resolved,
			in.blamed.Kind, in.blamed.Version, in.blamed.Time().Format(time.RFC3339), in.title)
	}
}
