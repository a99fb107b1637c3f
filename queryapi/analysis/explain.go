package analysis

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/changelens/changelens/queryapi/report"
)

// maxExplained bounds the regressions an explanation names (the answer's
// operations list has them all).
const maxExplained = 3

// Explain is a before/after impact in one sentence a person can act on:
// what regressed (or improved) where, with the effect, its 95 % interval
// and the requests it rests on, and how the rest fared; for NO_CHANGE the
// smallest changes that would have been seen; for INSUFFICIENT_DATA how
// much traffic would be enough.
//
//	DEGRADED: p95 of GET /api/export 310 → 620 ms (+100 %, [+85 %, +118 %], 1 800 vs 1 750 requests); other 19 operations within ±3 % on p95.
//
// New error kinds (im.ErrorKinds) come first, named with their rates and
// first traces; error kinds that rose close the sentence:
//
//	DEGRADED: NEW_ERROR_KIND: java.lang.NullPointerException at 0.30 % of requests after (0 in 18 000 before; first trace 4bf9…); nothing larger than …
func Explain(im report.Impact, cfg Config) string {
	s := explainMetrics(im, cfg)
	ek := im.ErrorKinds
	switch {
	case ek == nil || !ek.Tested:
	case ek.NewErrorKind:
		if head, rest, ok := strings.Cut(s, ": "); ok {
			return head + ": " + strings.TrimSuffix(ek.Explanation, ".") + "; " + rest
		}
	case len(ek.Rose) > 0:
		return strings.TrimSuffix(s, ".") + "; " + strings.TrimPrefix(ek.Explanation, "no new error kind; ")
	}
	return s
}

// explainMetrics is Explain's sentence of the before/after rule's metrics.
func explainMetrics(im report.Impact, cfg Config) string {
	head := im.Verdict.String()
	if im.Verdict == report.VerdictPending {
		head = fmt.Sprintf("PENDING (the after window closes at %s; so far)", im.After.End.UTC().Format("15:04 MST"))
	}
	switch {
	case len(im.Metrics) == 0 || im.Metrics[0].Test == TestNotRun && im.Verdict != report.VerdictPending ||
		im.Before.Requests < cfg.MinRequests || im.After.Requests < cfg.MinRequests:
		return fmt.Sprintf("%s: too little traffic to judge (%s requests before, %s after; judging needs %s per window, detecting a %s rise of p95 about %s).",
			head, count(im.Before.Requests), count(im.After.Requests), count(cfg.MinRequests), pct(cfg.LatencyFloor), count(im.RequestsNeeded))
	}
	worse := findings(im, report.CompareWorse)
	better := findings(im, report.CompareBetter)
	switch {
	case len(worse) > 0:
		return fmt.Sprintf("%s: %s%s%s%s.", head, listed(worse), rest(im, worse, cfg.LatencyFloor), causeNote(im), controlNote(im.Control))
	case len(better) > 0:
		return fmt.Sprintf("%s: %s%s; no regression%s.", head, listed(better), rest(im, better, cfg.LatencyFloor), controlNote(im.Control))
	}
	var parts []string
	for _, m := range im.Metrics {
		switch {
		case math.IsInf(m.MDEValue, 1) || math.IsNaN(m.MDEValue):
		case m.Metric == MetricErrorRate:
			parts = append(parts, "an error rate of "+ratePct(m.MDEValue))
		default:
			parts = append(parts, fmt.Sprintf("%s on %s (%s)", signedPct(m.MDE), metricShort(m.Metric), ms(m.MDEValue)))
		}
	}
	judged := 0
	for _, o := range im.Operations {
		if o.Judged && !o.Remainder {
			judged++
		}
	}
	ops := ""
	if judged > 1 {
		ops = fmt.Sprintf("; %d operations judged, %s", judged, within(im.Operations, nil, cfg.LatencyFloor))
	}
	nothing := "no rise could be detected"
	if len(parts) > 0 {
		nothing = "nothing larger than " + joinOr(parts)
	}
	if im.Control.Kind != "" && im.Control.Kind != ControlNone {
		nothing += " beyond the control"
	}
	return fmt.Sprintf("%s: %s (%s vs %s requests%s)%s.", head, nothing, count(im.Before.Requests), count(im.After.Requests), ops, controlNote(im.Control))
}

// causeNote names the change a regression is attributed to, with its
// evidence and what the deployment's own code did ("; explained by
// checkout 2.0 (deployed 12:01, a callee): time waiting on it +75 ms per
// request, 96 % of the rise; this deployment's own code +1 ms"), or the
// strongest other suspect when the deployment keeps the blame.
func causeNote(im report.Impact) string {
	var own *report.Cause
	for i := range im.Attribution.Causes {
		if c := &im.Attribution.Causes[i]; c.Kind == report.CauseOwnDeployment && own == nil {
			own = c
		}
	}
	if c := im.Deployment.Cause; c != nil {
		note := "; explained by " + DescribeCause(*c) + ": " + causeEvidence(*c)
		if own != nil && !math.IsNaN(own.Z) {
			note += "; this deployment's own code " + signedAmount(*own)
		}
		return note
	}
	for _, c := range im.Attribution.Causes {
		if c.Kind != report.CauseOwnDeployment && c.Significant {
			return "; also overlapping: " + DescribeCause(c) + " (" + causeEvidence(c) + ")"
		}
	}
	return ""
}

// DescribeCause names a change: "checkout 2.0 (deployed 12:01 UTC, a
// callee)", "flag new-pricing (variant on gained at 12:04 UTC)".
func DescribeCause(c report.Cause) string {
	at := c.Start.UTC().Format("15:04 MST")
	switch c.Kind {
	case report.CauseFeatureFlag:
		return fmt.Sprintf("feature flag %s (variant %s gained at %s)", c.Flag, c.Variant, at)
	case report.CauseCalleeDeployment:
		return fmt.Sprintf("%s %s in %s (deployed %s, a callee)", c.Service, c.Version, c.Environment, at)
	case report.CauseCallerDeployment:
		return fmt.Sprintf("%s %s in %s (deployed %s, a caller)", c.Service, c.Version, c.Environment, at)
	}
	return "this deployment"
}

// causeEvidence is what the change moved: "time waiting on it +75 ms per
// request (96 % of the rise)".
func causeEvidence(c report.Cause) string {
	var what string
	switch c.Kind {
	case report.CauseCalleeDeployment:
		what = "time waiting on it"
		if c.Metric == MetricErrorRate {
			what = "its failed calls"
		}
	case report.CauseCallerDeployment:
		what = "its requests' excess"
	case report.CauseFeatureFlag:
		what = "the variants' mix"
	default:
		what = "own code"
	}
	out := what + " " + signedAmount(c)
	if !math.IsNaN(c.Share) && c.Share > 0 {
		out += fmt.Sprintf(" (%s of the rise)", pct(math.Min(c.Share, 1)))
	}
	return out
}

// signedAmount is a cause's explained change in its metric's unit.
func signedAmount(c report.Cause) string {
	if c.Metric == MetricErrorRate {
		return fmt.Sprintf("%+.2f points of error rate", 100*c.Explained)
	}
	return fmt.Sprintf("%+.1f ms per request", c.Explained)
}

// controlNote says what the metrics were judged against: "; against 3
// other units of the environment (p95 +34 %, p99 +33 %, error rate +2.0
// %)", or that there was no control.
func controlNote(c report.Control) string {
	var what string
	switch c.Kind {
	case ControlEnvironment:
		what = fmt.Sprintf("%d other %s of the environment", len(c.Series), plural(len(c.Series), "unit", "units"))
	case ControlService:
		what = fmt.Sprintf("the service in %d other %s", len(c.Series), plural(len(c.Series), "environment", "environments"))
	case ControlPreviousDay:
		what = "the same unit a day earlier"
	default:
		return "; no control had enough traffic: plain before/after"
	}
	var moves []string
	for _, s := range c.Shifts {
		moves = append(moves, metricShort(s.Metric)+" "+signedPct(s.Change))
	}
	if len(moves) == 0 {
		return "; against " + what
	}
	return fmt.Sprintf("; against %s (%s meanwhile)", what, strings.Join(moves, ", "))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// DescribeRegressions is the part of an explanation that names what
// regressed (with figures) and how the other operations fared; "" when
// nothing did.
func DescribeRegressions(im report.Impact, cfg Config) string {
	kinds := DescribeNewErrorKinds(im.ErrorKinds)
	worse := findings(im, report.CompareWorse)
	if len(worse) == 0 {
		return kinds
	}
	out := listed(worse) + rest(im, worse, cfg.LatencyFloor)
	if kinds != "" {
		out = kinds + "; " + out
	}
	return out
}

// finding is one metric of one scope with the given verdict.
type finding struct {
	op     *report.OperationImpact // nil: the unit
	m      report.ImpactMetric
	nb, na float64
}

// findings are the metrics with verdict v: the operations' by rank (or
// traffic), then the unit's metrics no operation shows.
func findings(im report.Impact, v report.CompareVerdict) []finding {
	var out []finding
	shown := map[string]bool{}
	if len(im.Operations) > 1 {
		for i := range im.Operations {
			o := &im.Operations[i]
			for _, m := range o.Metrics {
				if m.Verdict == v {
					out = append(out, finding{op: o, m: m, nb: o.BeforeRequests, na: o.AfterRequests})
					shown[m.Metric] = true
				}
			}
		}
	}
	for _, m := range im.Metrics {
		if m.Verdict == v && !shown[m.Metric] {
			out = append(out, finding{m: m, nb: im.Before.Requests, na: im.After.Requests})
		}
	}
	return out
}

func listed(fs []finding) string {
	var parts []string
	for i, f := range fs {
		if i == maxExplained {
			parts = append(parts, fmt.Sprintf("and %d more", len(fs)-maxExplained))
			break
		}
		where := ""
		switch {
		case f.op != nil && f.op.Remainder:
			where = fmt.Sprintf(" of the %d other operations", f.op.Operations)
		case f.op != nil:
			where = " of " + f.op.Operation
		case len(fs) > 0 && f.op == nil && hasOps(fs):
			where = " of all operations"
		}
		m := f.m
		if m.Metric == MetricErrorRate {
			change := times(m.RelativeChange)
			if !math.IsNaN(m.ControlChange) {
				change += " beyond the control's " + times(m.ControlChange)
			}
			parts = append(parts, fmt.Sprintf("error rate%s %s → %s (%s, [%s, %s], %s vs %s requests)", where, ratePct(m.Before), ratePct(m.After),
				change, times(m.CILow), times(m.CIHigh), count(f.nb), count(f.na)))
			continue
		}
		change := signedPct(m.RelativeChange)
		if !math.IsNaN(m.ControlChange) {
			change += " beyond the control's " + signedPct(m.ControlChange)
		}
		parts = append(parts, fmt.Sprintf("%s%s %s → %s (%s, [%s, %s], %s vs %s requests)", metricShort(m.Metric), where, msBare(m.Before), ms(m.After),
			change, signedPct(m.CILow), signedPct(m.CIHigh), count(f.nb), count(f.na)))
	}
	return strings.Join(parts, "; ")
}

func hasOps(fs []finding) bool {
	for _, f := range fs {
		if f.op != nil {
			return true
		}
	}
	return false
}

// rest says how the operations not named fared.
func rest(im report.Impact, named []finding, floor float64) string {
	if len(im.Operations) < 2 {
		return ""
	}
	skip := map[*report.OperationImpact]bool{}
	for _, f := range named {
		if f.op != nil {
			skip[f.op] = true
		}
	}
	others := 0
	for i := range im.Operations {
		if !skip[&im.Operations[i]] {
			others += im.Operations[i].Operations
		}
	}
	if others == 0 {
		return ""
	}
	noun := "operations"
	if others == 1 {
		noun = "operation"
	}
	return fmt.Sprintf("; other %d %s %s", others, noun, within(im.Operations, skip, floor))
}

// within says how far p95 moved in the operations not skipped: "within
// ±3 % on p95" when every move is small (within twice the floor), else the
// range of the moves, which the tests did not find significant.
func within(ops []report.OperationImpact, skip map[*report.OperationImpact]bool, floor float64) string {
	lo, hi, largest := 0.0, 0.0, 0.0
	for i := range ops {
		if skip[&ops[i]] {
			continue
		}
		for _, m := range ops[i].Metrics {
			if m.Metric == MetricLatencyP95 && !math.IsNaN(m.RelativeChange) {
				lo, hi = math.Min(lo, m.RelativeChange), math.Max(hi, m.RelativeChange)
				largest = math.Max(largest, math.Abs(m.RelativeChange))
			}
		}
	}
	if largest <= 2*floor {
		return "within ±" + strings.TrimPrefix(pct(largest), "+") + " on p95"
	}
	return fmt.Sprintf("without a significant change (p95 %s to %s)", signedPct(lo), signedPct(hi))
}

func metricShort(metric string) string {
	switch metric {
	case MetricLatencyP95:
		return "p95"
	case MetricLatencyP99:
		return "p99"
	}
	return metric
}

func joinOr(parts []string) string {
	if len(parts) < 2 {
		return strings.Join(parts, "")
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " or " + parts[len(parts)-1]
}

// count formats a request count with thin groups: 18 000.
func count(v float64) string {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return "?"
	}
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func msBare(v float64) string {
	switch {
	case math.IsNaN(v):
		return "?"
	case v < 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return count(v)
}

func ms(v float64) string { return msBare(v) + " ms" }

func pct(v float64) string {
	p := 100 * v
	if math.Abs(p) < 10 && p != math.Trunc(p) {
		return strconv.FormatFloat(p, 'f', 1, 64) + " %"
	}
	return strconv.FormatFloat(p, 'f', 0, 64) + " %"
}

func signedPct(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+∞"
	case math.IsNaN(v):
		return "?"
	case v >= 0:
		return "+" + pct(v)
	}
	return "−" + pct(-v)
}

// times formats a relative change of a rate as a ratio: ×4.0.
func times(rel float64) string {
	switch {
	case math.IsInf(rel, 1):
		return "×∞"
	case math.IsNaN(rel):
		return "×?"
	}
	return "×" + strconv.FormatFloat(1+rel, 'f', 1, 64)
}

func ratePct(v float64) string { return strconv.FormatFloat(100*v, 'f', 2, 64) + " %" }
