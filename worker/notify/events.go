package notify

import (
	"fmt"
	"math"
	"strings"

	"github.com/changelens/changelens/queryapi/report"
)

// EventsOf are the events of judged deployments: DEGRADED ones, rolled
// back ones (each deployment once per kind), the causes of CAUSED_BY_DEPENDENCY
// ones (the event is the causing change's: its targets are told), and with
// all every other judged deployment; failed attempts are EventOfFailure.
func EventsOf(impacts []report.Impact, all bool) []Event {
	var out []Event
	for _, im := range impacts {
		d := im.Deployment
		if d.Verdict == report.VerdictPending {
			continue
		}
		emitted := false
		if d.Verdict == report.VerdictDegraded {
			out = append(out, Event{Kind: KindDegraded, Deployment: d, Before: im.Before, After: im.After, Explanation: explain(KindDegraded, im)})
			emitted = true
		}
		if c := d.Cause; d.Verdict == report.VerdictCausedByDependency && c != nil {
			out = append(out, causedEvent(im, *c))
			emitted = true
		}
		for _, r := range d.FailureReasons {
			if r == report.ReasonRolledBack {
				out = append(out, Event{Kind: KindRolledBack, Deployment: d, Before: im.Before, After: im.After, Explanation: explain(KindRolledBack, im)})
				emitted = true
			}
		}
		if all && !emitted {
			out = append(out, Event{Kind: KindDeployed, Deployment: d, Before: im.Before, After: im.After, Explanation: explain(KindDeployed, im)})
		}
	}
	return out
}

// EventOfFailure is the event of a failed deploy attempt.
func EventOfFailure(d report.Deployment) Event {
	return Event{Kind: KindFailed, Deployment: d, Explanation: fmt.Sprintf(
		"FAILED: the deploy of %s %s to %s failed at %s (commit %s); %s keeps serving — see the pipeline's run.",
		d.Service, d.Version, d.Environment, d.DeployTime.UTC().Format("2006-01-02 15:04 MST"), orUnknown(d.CommitSHA), orUnknown(d.PreviousVersion))}
}

func explain(k Kind, im report.Impact) string {
	d := im.Deployment
	head := fmt.Sprintf("%s %s → %s in %s", d.Service, orUnknown(d.PreviousVersion), d.Version, d.Environment)
	figures := fmt.Sprintf("p95 %.0f → %.0f ms, errors %.2f%% → %.2f%% (%.0f requests before, %.0f after)",
		im.Before.P95Ms, im.After.P95Ms, 100*im.Before.ErrorRate, 100*im.After.ErrorRate, im.Before.Requests, im.After.Requests)
	switch k {
	case KindDegraded:
		// The verdict's own explanation names the regressed operations
		// with their figures, strongest evidence first.
		why := strings.TrimSuffix(strings.TrimPrefix(im.Explanation, "DEGRADED: "), ".")
		if why == "" {
			why = "regressed"
		}
		return fmt.Sprintf("DEGRADED: %s — %s. Roll back or fix forward.", head, why)
	case KindRolledBack:
		return fmt.Sprintf("ROLLED BACK: %s was rolled back at %s: %s.", head, d.RestoreTime.UTC().Format("2006-01-02 15:04 MST"), figures)
	}
	return fmt.Sprintf("%s: %s — %s.", d.Verdict.String(), head, figures)
}

// causedEvent is the event of the change a deployment's regression is
// attributed to: about the causing deployment (a flag's: the affected
// deployment's unit), naming who it slowed and by how much.
func causedEvent(im report.Impact, c report.Cause) Event {
	affected := im.Deployment
	subject := report.Deployment{ID: c.DeploymentID, Service: c.Service, Environment: c.Environment, Version: c.Version,
		DeployTime: c.End, Verdict: report.VerdictDegraded}
	what := fmt.Sprintf("%s %s in %s (deployed %s)", c.Service, c.Version, c.Environment, c.End.UTC().Format("2006-01-02 15:04 MST"))
	if c.Kind == report.CauseFeatureFlag {
		subject = affected
		what = fmt.Sprintf("feature flag %s of %s in %s (variant %s gained at %s)", c.Flag, affected.Service, affected.Environment,
			c.Variant, c.Start.UTC().Format("2006-01-02 15:04 MST"))
	}
	evidence := fmt.Sprintf("%+.1f ms per request", c.Explained)
	if c.Metric == "error_rate" {
		evidence = fmt.Sprintf("%+.2f points of error rate", 100*c.Explained)
	}
	if !math.IsNaN(c.Share) && c.Share > 0 {
		evidence += fmt.Sprintf(", %.0f %% of the rise", 100*math.Min(c.Share, 1))
	}
	text := fmt.Sprintf("CAUSED REGRESSION: %s explains the regression of %s %s → %s in %s (%s; p95 %.0f → %.0f ms, errors %.2f%% → %.2f%%); %s's deployment is not to blame.",
		what, affected.Service, orUnknown(affected.PreviousVersion), affected.Version, affected.Environment, evidence,
		im.Before.P95Ms, im.After.P95Ms, 100*im.Before.ErrorRate, 100*im.After.ErrorRate, affected.Service)
	return Event{Kind: KindCausedRegression, Deployment: subject, Before: im.Before, After: im.After,
		Explanation: text, Affected: &affected, Cause: &c}
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
