package analysis

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/changelens/changelens/queryapi/report"
)

// MinuteSums are one series' weighted sums in one minute.
type MinuteSums struct{ Requests, Errors, DurationMs float64 }

func (m *MinuteSums) add(o MinuteSums) {
	m.Requests += o.Requests
	m.Errors += o.Errors
	m.DurationMs += o.DurationMs
}

// AttributionEvidence is what the attribution of a deployment's regression
// reads, per minute from Start (every series the same length): the
// deployed unit's requests, the service graph around it and its feature
// flags, and the changes that overlapped its windows.
type AttributionEvidence struct {
	Start time.Time
	// Unit are the deployed unit's requests (all versions).
	Unit []MinuteSums
	// Callees are the unit's outgoing calls by callee, timed by the unit
	// (its CLIENT spans): Requests = calls, Errors = failed calls.
	Callees []NeighbourSeries
	// Callers are the unit's requests by the unit that made them.
	Callers []NeighbourSeries
	// Flags are the unit's requests by feature-flag variant.
	Flags []FlagSeries
	// Changes are the deployments of the unit and its neighbours near the
	// deployment (flag changes are found in Flags).
	Changes []Change
	// Control is the deployment's control series pooled (nil: none): what
	// shared causes — load, time of day — did meanwhile, at any change's
	// time.
	Control []MinuteSums
}

// NeighbourSeries is the traffic between the unit and one neighbour.
type NeighbourSeries struct {
	// Service and Environment name the neighbour; a callee without
	// instrumentation of its own is named by its peer (Environment "").
	Service, Environment string
	Minutes              []MinuteSums
}

// FlagSeries is the unit's traffic by the variants of one feature flag.
type FlagSeries struct {
	Key      string
	Variants []VariantSeries
}

// VariantSeries is one variant's traffic.
type VariantSeries struct {
	Value   string
	Minutes []MinuteSums
}

// Change is a candidate cause: a deployment (Kind CauseOwnDeployment,
// CauseCalleeDeployment or CauseCallerDeployment) or a flag change.
type Change struct {
	Kind                                        report.CauseKind
	DeploymentID, Service, Environment, Version string
	Flag, Variant                               string
	// Start and End: the rollout (start, deploy time); a flag's minute.
	Start, End time.Time
}

// component is a change's part of the unit's metric, per minute.
type component struct {
	values []float64
	ok     []bool
}

// attributor decomposes one unit's metric (mean latency or error rate) per
// minute into the parts each kind of change moves.
type attributor struct {
	e      *AttributionEvidence
	errors bool // decompose the error rate, else the mean latency
	n      int
	total  component // the unit's metric
	self   component // total − callees − flag mix and caller excess deviations
	callee map[string]component
	caller map[string]component
	flag   map[string]component
}

func neighbourKey(service, env string) string { return service + "\x00" + env }

func (a *attributor) rate(m MinuteSums) float64 {
	if a.errors {
		return m.Errors / m.Requests
	}
	return m.DurationMs / m.Requests
}

func newAttributor(e *AttributionEvidence, errors bool) *attributor {
	n := len(e.Unit)
	a := &attributor{e: e, errors: errors, n: n,
		callee: map[string]component{}, caller: map[string]component{}, flag: map[string]component{}}
	newComp := func() component { return component{make([]float64, n), make([]bool, n)} }
	a.total = newComp()
	for i, m := range e.Unit {
		if m.Requests > 0 {
			a.total.values[i], a.total.ok[i] = a.rate(m), true
		}
	}
	a.self = newComp()
	copy(a.self.values, a.total.values)
	copy(a.self.ok, a.total.ok)

	// Time waiting on (or failures of) each callee per request of the
	// unit, at the unit's usual number of calls to it per request: a
	// callee's change moves the time (or failures) per call; how often the
	// unit calls is the unit's (or a flag's) doing and stays in self.
	var unitReq float64
	for _, m := range e.Unit {
		unitReq += m.Requests
	}
	for _, c := range e.Callees {
		comp := newComp()
		var calls float64
		for _, m := range c.Minutes {
			calls += m.Requests
		}
		if unitReq > 0 && calls > 0 {
			perRequest := calls / unitReq
			for i := 0; i < n && i < len(c.Minutes); i++ {
				m := c.Minutes[i]
				if !a.total.ok[i] || m.Requests <= 0 {
					continue
				}
				comp.values[i], comp.ok[i] = perRequest*a.rate(m), true
				a.self.values[i] -= comp.values[i]
			}
		}
		a.callee[neighbourKey(c.Service, c.Environment)] = comp
	}
	// A flag's mix: how far the unit's metric sits from its reference
	// variant's each minute by the variants' shares alone — each variant's
	// difference from the reference measured within the minutes both
	// served, so that what else changed meanwhile (load, other changes)
	// does not pass for the flag's doing.
	for _, f := range e.Flags {
		diffs := a.variantDiffs(f)
		comp := newComp()
		for i := 0; i < n; i++ {
			var req, mix float64
			for j, v := range f.Variants {
				if i < len(v.Minutes) {
					req += v.Minutes[i].Requests
					mix += v.Minutes[i].Requests * diffs[j]
				}
			}
			if req > 0 && a.total.ok[i] {
				comp.values[i], comp.ok[i] = mix/req, true
			}
		}
		a.flag[f.Key] = comp
		a.subtractDeviation(comp)
	}
	// A caller's excess: its share of the unit's requests times how much
	// more (or less) its requests cost than the others'. A caller's change
	// of what it sends moves it; the unit's own change moves every caller's
	// requests alike and leaves it be.
	for _, c := range e.Callers {
		comp := newComp()
		for i := 0; i < n && i < len(c.Minutes); i++ {
			u, w := e.Unit[i], c.Minutes[i]
			rest := MinuteSums{u.Requests - w.Requests, u.Errors - w.Errors, u.DurationMs - w.DurationMs}
			if w.Requests <= 0 || rest.Requests <= 0 || !a.total.ok[i] {
				continue
			}
			comp.values[i], comp.ok[i] = w.Requests/u.Requests*(a.rate(w)-a.rate(rest)), true
		}
		a.caller[neighbourKey(c.Service, c.Environment)] = comp
		a.subtractDeviation(comp)
	}
	return a
}

// variantDiffs are each variant's metric minus the reference variant's
// (the busiest), averaged over the minutes both served with weights
// R_v·R_ref/(R_v + R_ref) (a difference's inverse variance, up to a
// factor); a variant that never served beside the reference falls back to
// the difference of the two variants' overall means.
func (a *attributor) variantDiffs(f FlagSeries) []float64 {
	sums := make([]MinuteSums, len(f.Variants))
	ref := 0
	for j, v := range f.Variants {
		for _, m := range v.Minutes {
			sums[j].add(m)
		}
		if sums[j].Requests > sums[ref].Requests {
			ref = j
		}
	}
	diffs := make([]float64, len(f.Variants))
	for j, v := range f.Variants {
		if j == ref || sums[j].Requests <= 0 {
			continue
		}
		var num, den float64
		for i := 0; i < a.n && i < len(v.Minutes) && i < len(f.Variants[ref].Minutes); i++ {
			x, r := v.Minutes[i], f.Variants[ref].Minutes[i]
			if x.Requests <= 0 || r.Requests <= 0 {
				continue
			}
			w := x.Requests * r.Requests / (x.Requests + r.Requests)
			num += w * (a.rate(x) - a.rate(r))
			den += w
		}
		if den > 0 {
			diffs[j] = num / den
		} else {
			diffs[j] = a.rate(sums[j]) - a.rate(sums[ref])
		}
	}
	return diffs
}

// subtractDeviation takes a component's movement around its mean out of
// self, leaving self what the unit's own code did.
func (a *attributor) subtractDeviation(c component) {
	var sum float64
	k := 0
	for i, ok := range c.ok {
		if ok {
			sum += c.values[i]
			k++
		}
	}
	if k == 0 {
		return
	}
	mean := sum / float64(k)
	for i, ok := range c.ok {
		if ok {
			a.self.values[i] -= c.values[i] - mean
		}
	}
}

// componentShift is a change of a component across a change's time.
type componentShift struct {
	before, after, delta, se float64
	ok                       bool
}

// halvesAt measures c over the whole minutes before start and after end
// (before and after minutes): the difference of the per-minute means, its
// standard error from the minutes' spread (Welch). Minutes are the units:
// requests within a minute share its load, so their spread understates
// the noise.
func (a *attributor) halvesAt(c component, start, end time.Time, before, after int) componentShift {
	si := int(math.Floor(start.Sub(a.e.Start).Minutes()))
	ei := int(math.Ceil(end.Sub(a.e.Start).Minutes()))
	if ei == si {
		ei++ // the minute of an instant change is mixed
	}
	meanVar := func(lo, hi int) (mean, variance float64, k int) {
		lo, hi = max(lo, 0), min(hi, a.n)
		var sum, sq float64
		for i := lo; i < hi; i++ {
			if c.ok[i] {
				sum += c.values[i]
				k++
			}
		}
		if k == 0 {
			return 0, 0, 0
		}
		mean = sum / float64(k)
		for i := lo; i < hi; i++ {
			if c.ok[i] {
				d := c.values[i] - mean
				sq += d * d
			}
		}
		if k > 1 {
			variance = sq / float64(k-1)
		}
		return mean, variance, k
	}
	mb, vb, kb := meanVar(si-before, si)
	ma, va, ka := meanVar(ei, ei+after)
	if kb < minAttributionMinutes || ka < minAttributionMinutes {
		return componentShift{}
	}
	return componentShift{before: mb, after: ma, delta: ma - mb, se: math.Sqrt(vb/float64(kb) + va/float64(ka)), ok: true}
}

// minAttributionMinutes: fewer minutes with traffic either side of a change
// and it is not judged.
const minAttributionMinutes = 5

// componentOf is the part of the metric change c moves.
func (a *attributor) componentOf(c Change) (component, bool) {
	switch c.Kind {
	case report.CauseOwnDeployment:
		return a.self, true
	case report.CauseCalleeDeployment:
		comp, ok := a.callee[neighbourKey(c.Service, c.Environment)]
		return comp, ok
	case report.CauseCallerDeployment:
		comp, ok := a.caller[neighbourKey(c.Service, c.Environment)]
		return comp, ok
	case report.CauseFeatureFlag:
		comp, ok := a.flag[c.Flag]
		return comp, ok
	}
	return component{}, false
}

// DetectFlagChanges finds, for each flag, the minute its variant shares
// changed most (the split maximising the standardized difference of the
// shares' means, as a CUSUM change point): a change when some variant's
// share moved by at least FlagShareChange. Variant is the one that gained
// most.
func DetectFlagChanges(e *AttributionEvidence, cfg Config) []Change {
	var out []Change
	for _, f := range e.Flags {
		n := len(e.Unit)
		shares := make([][]float64, len(f.Variants))
		totals := make([]float64, n)
		for _, v := range f.Variants {
			for i := 0; i < n && i < len(v.Minutes); i++ {
				totals[i] += v.Minutes[i].Requests
			}
		}
		var idx []int
		for i, t := range totals {
			if t > 0 {
				idx = append(idx, i)
			}
		}
		if len(idx) < 2*minAttributionMinutes {
			continue
		}
		for j, v := range f.Variants {
			shares[j] = make([]float64, len(idx))
			for k, i := range idx {
				if i < len(v.Minutes) {
					shares[j][k] = v.Minutes[i].Requests / totals[i]
				}
			}
		}
		bestScore, bestK, bestVar, bestDelta := 0.0, -1, -1, 0.0
		for k := minAttributionMinutes; k <= len(idx)-minAttributionMinutes; k++ {
			for j := range f.Variants {
				var before, after float64
				for _, s := range shares[j][:k] {
					before += s
				}
				for _, s := range shares[j][k:] {
					after += s
				}
				d := after/float64(len(idx)-k) - before/float64(k)
				score := math.Abs(d) * math.Sqrt(float64(k)*float64(len(idx)-k)/float64(len(idx)))
				if score > bestScore {
					bestScore, bestK, bestVar, bestDelta = score, k, j, d
				}
			}
		}
		if bestK < 0 || math.Abs(bestDelta) < cfg.FlagShareChange {
			continue
		}
		// Name the variant that gained most at that minute.
		gain, gainer := math.Inf(-1), bestVar
		for j := range f.Variants {
			var before, after float64
			for _, s := range shares[j][:bestK] {
				before += s
			}
			for _, s := range shares[j][bestK:] {
				after += s
			}
			if d := after/float64(len(idx)-bestK) - before/float64(bestK); d > gain {
				gain, gainer = d, j
			}
		}
		at := e.Start.Add(time.Duration(idx[bestK]) * time.Minute)
		out = append(out, Change{Kind: report.CauseFeatureFlag, Flag: f.Key, Variant: f.Variants[gainer].Value,
			Start: at, End: at})
	}
	return out
}

// Attribute ranks the changes near deployment own (those of e.Changes and
// the flag changes found in e.Flags starting within AttributionWindow of
// its rollout) by how much of the unit's regression of the metric (the
// mean latency, or with errors the error rate) each explains, and says
// whether the regression is someone else's: own's component did not rise
// significantly and the other significant changes explain at least
// AttributionShare of the unit's change between the deployment's windows.
//
// A change's evidence is its component of the metric (the unit's self time
// for its own deployment, its time waiting on a callee, a flag's mix, a
// caller's excess) over the AttributionWindow either side of it, net of
// what the control series did over the same minutes (self, callee and
// caller parts scale with shared load; a flag's mix does not).
func Attribute(e *AttributionEvidence, own Change, errors bool, cfg Config) (causes []report.Cause, elsewhere bool) {
	a := newAttributor(e, errors)
	window := int(min(cfg.AttributionWindow, cfg.BeforeWindow, cfg.AfterWindow) / time.Minute)
	metric := MetricLatencyMean
	if errors {
		metric = MetricErrorRate
	}
	var control component
	if len(e.Control) > 0 {
		control = component{make([]float64, a.n), make([]bool, a.n)}
		for i := 0; i < a.n && i < len(e.Control); i++ {
			if m := e.Control[i]; m.Requests > 0 {
				control.values[i], control.ok[i] = a.rate(m), true
			}
		}
	}
	// The controls' relative shift across a change, with its standard error.
	controlShift := func(start, end time.Time, w int) (float64, float64) {
		if control.values == nil {
			return 0, 0
		}
		s := a.halvesAt(control, start, end, w, w)
		if !s.ok || s.before <= 0 {
			return 0, 0
		}
		return s.delta / s.before, s.se / s.before
	}

	// The base of the shares: the unit's change between the deployment's
	// windows, net of the controls, as the verdict judged it.
	bw, aw := int(cfg.BeforeWindow/time.Minute), int(cfg.AfterWindow/time.Minute)
	gapEnd := own.End.Add(cfg.AfterGap)
	total := a.halvesAt(a.total, own.Start, gapEnd, bw, aw)
	tShift, _ := controlShift(own.Start, gapEnd, min(bw, aw))
	totalDelta := total.delta - total.before*tShift

	candidates := []Change{own}
	near := func(c Change) bool {
		return !c.Start.Before(own.Start.Add(-cfg.AttributionWindow)) && !c.Start.After(own.End.Add(cfg.AttributionWindow))
	}
	for _, c := range append(slices.Clone(e.Changes), DetectFlagChanges(e, cfg)...) {
		if c.Kind != report.CauseOwnDeployment && near(c) {
			candidates = append(candidates, c)
		}
	}
	for _, c := range candidates {
		cause := report.Cause{Kind: c.Kind, DeploymentID: c.DeploymentID, Service: c.Service,
			Environment: c.Environment, Version: c.Version, Flag: c.Flag, Variant: c.Variant,
			Start: c.Start, End: c.End, Metric: metric, Share: math.NaN(), Z: math.NaN()}
		comp, ok := a.componentOf(c)
		if ok {
			if s := a.halvesAt(comp, c.Start, c.End, window, window); s.ok {
				shift, shiftSE := 0.0, 0.0
				if c.Kind != report.CauseFeatureFlag {
					shift, shiftSE = controlShift(c.Start, c.End, window)
				}
				cause.Before, cause.After = s.before, s.after
				cause.Explained = s.delta - s.before*shift
				se := math.Hypot(s.se, s.before*shiftSE)
				if se > 0 {
					cause.Z = cause.Explained / se
				} else if cause.Explained != 0 {
					cause.Z = math.Copysign(math.Inf(1), cause.Explained)
				}
				cause.Significant = cause.Z >= cfg.AttributionZ && cause.Explained > 0
				if totalDelta > 0 {
					cause.Share = cause.Explained / totalDelta
				}
			}
		}
		causes = append(causes, cause)
	}
	slices.SortStableFunc(causes, func(x, y report.Cause) int {
		if x.Significant != y.Significant {
			return boolOrder(y.Significant, x.Significant)
		}
		if x.Significant {
			return cmp.Compare(y.Explained, x.Explained)
		}
		return cmp.Compare(nanLow(y.Z), nanLow(x.Z))
	})
	for i := range causes {
		causes[i].Rank = i + 1
	}
	ownSignificant := false
	var othersShare float64
	for _, c := range causes {
		if c.Kind == report.CauseOwnDeployment {
			ownSignificant = c.Significant
		} else if c.Significant && !math.IsNaN(c.Share) {
			othersShare += c.Share
		}
	}
	elsewhere = !ownSignificant && len(causes) > 1 && causes[0].Significant &&
		causes[0].Kind != report.CauseOwnDeployment && othersShare >= cfg.AttributionShare
	return causes, elsewhere
}

func nanLow(v float64) float64 {
	if math.IsNaN(v) {
		return math.Inf(-1)
	}
	return v
}

// Neighbours summarises the unit's callees and callers over the
// deployment's windows, with their deployments among the changes.
func Neighbours(e *AttributionEvidence, own Change, cfg Config) []report.Neighbour {
	bs := own.Start.Add(-cfg.BeforeWindow)
	as := own.End.Add(cfg.AfterGap)
	sum := func(ms []MinuteSums, from time.Time, minutes int) (MinuteSums, float64) {
		lo := int(math.Ceil(from.Sub(e.Start).Minutes()))
		var out MinuteSums
		for i := max(lo, 0); i < lo+minutes && i < len(ms); i++ {
			out.add(ms[i])
		}
		return out, float64(minutes)
	}
	var out []report.Neighbour
	for _, group := range []struct {
		series []NeighbourSeries
		callee bool
		kind   report.CauseKind
	}{{e.Callees, true, report.CauseCalleeDeployment}, {e.Callers, false, report.CauseCallerDeployment}} {
		for _, s := range group.series {
			n := report.Neighbour{Service: s.Service, Environment: s.Environment, Callee: group.callee}
			b, bm := sum(s.Minutes, bs, int(cfg.BeforeWindow/time.Minute))
			a, am := sum(s.Minutes, as, int(cfg.AfterWindow/time.Minute))
			n.CallsPerMinuteBefore, n.CallsPerMinuteAfter = b.Requests/bm, a.Requests/am
			n.MeanMsBefore, n.MeanMsAfter = ratio(b.DurationMs, b.Requests), ratio(a.DurationMs, a.Requests)
			n.ErrorRateBefore, n.ErrorRateAfter = ratio(b.Errors, b.Requests), ratio(a.Errors, a.Requests)
			for _, c := range e.Changes {
				if c.Kind == group.kind && c.Service == s.Service && c.Environment == s.Environment {
					n.Deployments = append(n.Deployments, c.DeploymentID)
				}
			}
			out = append(out, n)
		}
	}
	return out
}

// ratio is a ÷ b, NaN when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}
