package usecase

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/teams"
)

// metricTitles are the metrics as a retrospective's reader names them.
var metricTitles = map[string]string{
	"deployment_frequency":            "Deployment frequency",
	"lead_time":                       "Lead time",
	"change_failure_rate":             "Change failure rate",
	"failed_deployment_recovery_time": "Failed deployment recovery time",
	"rework_rate":                     "Rework rate",
}

// RetrospectiveMarkdown renders r as one Markdown document — what a team
// pastes into its retrospective notes — from the same figures the JSON
// carries.
func RetrospectiveMarkdown(r Retrospective) string {
	var b strings.Builder
	day := func(t time.Time) string { return t.UTC().Format("2006-01-02") }
	fmt.Fprintf(&b, "# Retrospective: %s, %s (%s)\n\n", r.Team, r.Period.Name, r.Environment)
	toDate := ""
	if r.End.Before(r.Period.End) {
		toDate = " (to date)"
	}
	fmt.Fprintf(&b, "%s to %s%s against %s (%s to %s). Services: %s.\n\n",
		day(r.Period.Start), day(r.End), toDate, r.Previous.Name, day(r.Previous.Start), day(r.Previous.End), strings.Join(r.Services, ", "))
	if r.FocusMetric != "" {
		fmt.Fprintf(&b, "Focus metric of %s: **%s**.\n\n", r.Period.Quarter(), metricTitles[r.FocusMetric])
	} else {
		fmt.Fprintf(&b, "No focus metric set for %s.\n\n", r.Period.Quarter())
	}

	b.WriteString("## DORA metrics\n\n")
	fmt.Fprintf(&b, "| Metric | %s | %s | Trend | Target | Met |\n", r.Period.Name, r.Previous.Name)
	b.WriteString("|---|---|---|---|---|---|\n")
	for _, m := range r.Metrics {
		title := metricTitles[m.Metric]
		if m.Focus {
			title += " (focus)"
		}
		trend := m.Trend
		if !math.IsNaN(m.Change) {
			trend += fmt.Sprintf(" (%+.0f %%)", 100*m.Change)
		}
		met := "—"
		if m.HasTargetMet {
			met = map[bool]string{true: "yes", false: "no"}[m.TargetMet]
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", title, formatMetric(m.Unit, m.Current), formatMetric(m.Unit, m.Previous),
			trend, formatMetric(m.Unit, m.Target), met)
	}
	c := r.Current
	fmt.Fprintf(&b, "\n%d deployments, %d changes, %d failed, %d rework.\n\n", c.DeploymentCount, c.ChangeCount, c.FailedChangeCount, c.ReworkCount)

	b.WriteString("## Failed deployments\n\n")
	if len(r.FailedDeployments) == 0 {
		b.WriteString("None.\n")
	}
	for _, d := range r.FailedDeployments {
		from := ""
		if d.PreviousVersion != "" {
			from = " (from " + d.PreviousVersion + ")"
		}
		reasons := make([]string, len(d.FailureReasons))
		for i, fr := range d.FailureReasons {
			reasons[i] = fr.String()
		}
		fmt.Fprintf(&b, "- %s — %s %s%s: %s.", d.DeployTime.UTC().Format("2006-01-02 15:04 UTC"), d.Service, d.Version, from, strings.Join(reasons, ", "))
		if d.Explanation != "" {
			fmt.Fprintf(&b, " %s", d.Explanation)
		}
		if d.Cause != nil {
			fmt.Fprintf(&b, " Cause: %s.", causeText(d.Cause))
		}
		if d.RestoreTime.IsZero() {
			b.WriteString(" Not recovered.\n")
		} else {
			fmt.Fprintf(&b, " Recovered after %s.\n", formatSeconds(d.TimeToRestore.Seconds()))
		}
	}

	b.WriteString("\n## Experiments\n\n")
	if len(r.Experiments) == 0 {
		b.WriteString("None ended in this period.\n")
	}
	for _, e := range r.Experiments {
		fmt.Fprintf(&b, "- %s (%s, ended %s): %s", e.ID, e.Service, day(e.PlannedEnd), e.Decision)
		if e.Summary != "" {
			fmt.Fprintf(&b, " — %s", e.Summary)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "\nLink: %s\n", r.Link)
	return b.String()
}

// causeText names the change a regression is attributed to.
func causeText(c *report.Cause) string {
	if c.Kind == report.CauseFeatureFlag {
		return fmt.Sprintf("feature flag %s (variant %s)", c.Flag, c.Variant)
	}
	return fmt.Sprintf("%s %s %s (deployment %s)", strings.ToLower(strings.ReplaceAll(c.Kind.String(), "_", " ")), c.Service, c.Version, c.DeploymentID)
}

// formatMetric writes a value in its unit for a reader; "—" for no data.
func formatMetric(unit string, v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	switch unit {
	case teams.UnitPerDay:
		return fmt.Sprintf("%.2f/day", v)
	case teams.UnitSeconds:
		return formatSeconds(v)
	default:
		return fmt.Sprintf("%.1f %%", 100*v)
	}
}

// formatSeconds writes a duration in the unit a person reads it in.
func formatSeconds(s float64) string {
	switch {
	case s < 120:
		return fmt.Sprintf("%.0f s", s)
	case s < 2*3600:
		return fmt.Sprintf("%.0f min", s/60)
	case s < 48*3600:
		return fmt.Sprintf("%.1f h", s/3600)
	default:
		return fmt.Sprintf("%.1f d", s/86400)
	}
}
