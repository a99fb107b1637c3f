package analysis

import (
	"cmp"
	"math"
	"slices"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/changelens/changelens/internal/stats"
	"github.com/changelens/changelens/queryapi/report"
)

// Test names of the before/after rule (report.ImpactMetric.Test).
const (
	// TestSlowShare: the share of requests slower than the pooled
	// percentile, after against before, stratified by operation
	// (Cochran–Mantel–Haenszel weights), its variance inflated by the
	// per-minute dispersion.
	TestSlowShare = "slow-share (stratified, per-minute dispersion)"
	// TestSlowShareExact: the same with one stratum or few slow requests:
	// the exact conditional rate test on dispersion-deflated counts.
	TestSlowShareExact = "slow-share (exact rate test, per-minute dispersion)"
	// TestErrorRate and TestErrorRateExact: the same two tests of errors.
	TestErrorRate      = "error-rate (stratified, per-minute dispersion)"
	TestErrorRateExact = "error-rate (exact rate test, per-minute dispersion)"
)

// Judgement is the before/after verdict of one deployment and everything it
// rests on.
type Judgement struct {
	Verdict report.Verdict
	// Regressions are the failure reasons of a DEGRADED verdict
	// (LATENCY_REGRESSION before ERROR_RATE_REGRESSION); empty otherwise.
	Regressions []report.FailureReason
	// Metrics are the unit's guarded metrics (p95, p99, error rate), all
	// operations together.
	Metrics []report.ImpactMetric
	// Operations are the strata: regressed ones first by rank, then the
	// rest busiest first, the remainder last.
	Operations []report.OperationImpact
	// RequestsNeeded is about how many requests per window a rise of p95
	// by LatencyFloor needs to be detected with Power.
	RequestsNeeded float64
	// Control is what the metrics were judged against (ControlNone: the
	// plain before/after comparison).
	Control report.Control
	// Attribution ranks the changes overlapping a regression (empty when
	// nothing regressed or without attribution evidence) and lists the
	// unit's neighbours in the service graph.
	Attribution report.Attribution
	// Cause is the change a regression is attributed to when it is not the
	// deployment's own (Verdict CAUSED_BY_DEPENDENCY, or PENDING so far).
	Cause *report.Cause
	// ErrorKinds is the error-kind rule's answer (nil: the evidence had no
	// error kinds); its NEW_ERROR_KIND is in Verdict and Regressions.
	ErrorKinds *ErrorKindJudgement
}

// hypothesis is one metric of one scope (the unit, or a stratum) and its
// place in the family the multiple-testing correction covers.
type hypothesis struct {
	metric  *report.ImpactMetric
	scope   int // -1: the unit; else the stratum
	weight  float64
	pInc    float64
	pDec    float64
	matInc  bool // a rise as large as the floor is not ruled out
	matDec  bool
	adjInc  float64
	adjDec  float64
	effects effects
}

// effects are a metric's figures before the correction decides.
type effects struct {
	ciLow, ciHigh float64 // of the relative change
	// for the error rate: the interval of the difference after − before
	diffLow, diffHigh float64
}

// judgeEvidence applies the before/after rule of docs/analysis.md to a
// deployment's evidence. With afterClosed false the verdict is PENDING
// whatever the data say; the figures and findings so far are reported.
//
//   - Fewer than MinRequests weighted requests in either window →
//     INSUFFICIENT_DATA (figures reported, nothing tested).
//   - For the unit (all strata) and, when there are at least two strata,
//     for every judged stratum: p95 and p99 — is the share of requests
//     slower than the pooled percentile higher after than before? — and the
//     error rate, each a one-sided test in both directions whose variance
//     is inflated by the per-minute dispersion of the counts (requests of
//     one minute, and of neighbouring minutes, are not independent).
//   - Weighted Holm over the family at Alpha: the unit's three tests share
//     half of Alpha, the strata's the other half (all of it with one
//     stratum), so more operations never mean more false alarms.
//   - A metric regressed when its adjusted p ≤ Alpha and its 95 % interval
//     does not rule out a rise as large as the floor (LatencyFloor;
//     ErrorRateFloorRatio and ErrorRateFloorDelta); improved in mirror
//     image. Any regression → DEGRADED; else any improvement → IMPROVED;
//     else NO_CHANGE.
func judgeEvidence(e *Evidence, afterClosed bool, cfg Config) Judgement {
	var j Judgement
	before, after := e.Windows()
	enough := before.Requests >= cfg.MinRequests && after.Requests >= cfg.MinRequests
	all := make([]*Stratum, len(e.Strata))
	for i := range e.Strata {
		all[i] = &e.Strata[i]
	}
	perStratum := len(e.Strata) >= 2
	judged := 0
	for _, s := range e.Strata {
		if s.Judged && perStratum {
			judged++
		}
	}
	unitWeight, stratumWeight := 1.0/3, 0.0
	if judged > 0 {
		unitWeight, stratumWeight = 1.0/6, 1.0/(6*float64(judged))
	}
	ctrl := newControls(e.Controls, e.bucketValue, cfg)
	j.Control = ctrl.report()

	var hs []*hypothesis
	scopeMetrics := func(scope []*Stratum, unit *[NumLevels]uint16, idx int, weight float64, tested bool) []report.ImpactMetric {
		ms := make([]report.ImpactMetric, NumLevels+1)
		for l := range JudgedLevels {
			h := &hypothesis{metric: &ms[l], scope: idx, weight: weight}
			latencyMetric(h, scope, unit, l, tested, weight*cfg.Alpha, e.bucketValue, ctrl.shifts[l], cfg)
			if tested {
				hs = append(hs, h)
			}
		}
		h := &hypothesis{metric: &ms[NumLevels], scope: idx, weight: weight}
		errorMetric(h, scope, tested, weight*cfg.Alpha, ctrl.shifts[NumLevels], cfg)
		if tested {
			hs = append(hs, h)
		}
		return ms
	}
	j.Metrics = scopeMetrics(all, &e.UnitSlow, -1, unitWeight, enough)
	ops := make([]report.OperationImpact, len(e.Strata))
	for i := range e.Strata {
		s := &e.Strata[i]
		ops[i] = report.OperationImpact{Operation: s.Operation, Remainder: s.Remainder, Operations: s.Operations,
			BeforeRequests: s.Before.Requests, AfterRequests: s.After.Requests, Judged: s.Judged && enough,
			Verdict: report.CompareInsufficientData}
		switch {
		case !perStratum:
			// One stratum: its figures are the unit's, decided once.
			ops[i].Metrics = slices.Clone(j.Metrics)
		default:
			ops[i].Metrics = scopeMetrics([]*Stratum{s}, nil, i, stratumWeight, s.Judged && enough)
		}
	}
	// The metric pointers of hs point into these slices: keep them.
	j.RequestsNeeded = requestsNeeded(e, cfg)
	if !enough {
		j.Verdict = report.VerdictInsufficientData
		j.Operations = orderOperations(ops)
		if !afterClosed {
			j.Verdict = report.VerdictPending
		}
		return j
	}

	// Weighted Holm in each direction.
	p, w := make([]float64, len(hs)), make([]float64, len(hs))
	for i, h := range hs {
		p[i], w[i] = h.pInc, h.weight
	}
	adjInc, errInc := stats.WeightedHolm(p, w)
	for i, h := range hs {
		p[i] = h.pDec
	}
	adjDec, errDec := stats.WeightedHolm(p, w)
	if errInc != nil || errDec != nil { // p-values are probabilities by construction
		adjInc, adjDec = make([]float64, len(hs)), make([]float64, len(hs))
		for i := range hs {
			adjInc[i], adjDec[i] = 1, 1
		}
	}
	regressed, improved := false, false
	var latency, errs bool
	for i, h := range hs {
		m := h.metric
		up := !(m.Z < 0)
		m.AdjustedPValue = adjInc[i]
		if !up {
			m.AdjustedPValue = adjDec[i]
		}
		switch {
		case adjInc[i] <= cfg.Alpha && h.matInc:
			m.Verdict = report.CompareWorse
			regressed = true
			if m.Metric == MetricErrorRate {
				errs = true
			} else {
				latency = true
			}
		case adjDec[i] <= cfg.Alpha && h.matDec:
			m.Verdict = report.CompareBetter
			improved = true
		default:
			m.Verdict = report.CompareNoDifference
		}
	}
	if !perStratum && len(ops) == 1 {
		ops[0].Metrics = slices.Clone(j.Metrics)
	}
	for i := range ops {
		o := &ops[i]
		o.Verdict = report.CompareInsufficientData
		if !o.Judged {
			continue
		}
		o.Verdict = report.CompareNoDifference
		for _, m := range o.Metrics {
			switch {
			case m.Verdict == report.CompareWorse:
				o.Verdict = report.CompareWorse
			case m.Verdict == report.CompareBetter && o.Verdict != report.CompareWorse:
				o.Verdict = report.CompareBetter
			}
		}
	}
	rankOperations(ops)
	j.Operations = orderOperations(ops)
	switch {
	case regressed:
		j.Verdict = report.VerdictDegraded
		if latency {
			j.Regressions = append(j.Regressions, report.ReasonLatencyRegression)
		}
		if errs {
			j.Regressions = append(j.Regressions, report.ReasonErrorRateRegression)
		}
		if e.Attribution != nil {
			j.attribute(e, latency, errs, cfg)
		}
	case improved:
		j.Verdict = report.VerdictImproved
	default:
		j.Verdict = report.VerdictNoChange
	}
	if e.Attribution != nil {
		j.Attribution.Neighbours = Neighbours(e.Attribution, e.Own, cfg)
	}
	if !afterClosed {
		j.Verdict, j.Regressions = report.VerdictPending, nil
	}
	return j
}

// attribute ranks the changes overlapping the regressed metrics (the
// latency's first) and, when every regressed metric is another change's
// doing, makes the verdict CAUSED_BY_DEPENDENCY naming the latency's (else
// the error rate's) first cause. The regressions stay listed: they
// happened, to this unit.
func (j *Judgement) attribute(e *Evidence, latency, errs bool, cfg Config) {
	elsewhere := true
	var named *report.Cause
	for _, family := range []struct {
		regressed, errors bool
	}{{latency, false}, {errs, true}} {
		if !family.regressed {
			continue
		}
		causes, other := Attribute(e.Attribution, e.Own, family.errors, cfg)
		j.Attribution.Causes = append(j.Attribution.Causes, causes...)
		elsewhere = elsewhere && other
		if other && named == nil {
			c := causes[0]
			named = &c
		}
	}
	if elsewhere && named != nil {
		j.Verdict, j.Cause = report.VerdictCausedByDependency, named
	}
}

// rankOperations ranks the regressed operations by their strongest evidence
// (the largest z of a regressed metric), then by the largest relative rise.
func rankOperations(ops []report.OperationImpact) {
	type ranked struct {
		i      int
		z, eff float64
	}
	var rs []ranked
	for i, o := range ops {
		if o.Verdict != report.CompareWorse {
			continue
		}
		r := ranked{i: i, z: math.Inf(-1), eff: math.Inf(-1)}
		for _, m := range o.Metrics {
			if m.Verdict == report.CompareWorse {
				r.z = math.Max(r.z, m.Z)
				if !math.IsNaN(m.RelativeChange) {
					r.eff = math.Max(r.eff, m.RelativeChange)
				}
			}
		}
		rs = append(rs, r)
	}
	slices.SortStableFunc(rs, func(a, b ranked) int {
		return cmp.Or(cmp.Compare(b.z, a.z), cmp.Compare(b.eff, a.eff))
	})
	for k, r := range rs {
		ops[r.i].Rank = k + 1
	}
}

// orderOperations: regressed by rank, then the rest busiest first, the
// remainder last.
func orderOperations(ops []report.OperationImpact) []report.OperationImpact {
	out := slices.Clone(ops)
	slices.SortStableFunc(out, func(a, b report.OperationImpact) int {
		ra, rb := a.Rank, b.Rank
		if ra == 0 {
			ra = math.MaxInt
		}
		if rb == 0 {
			rb = math.MaxInt
		}
		return cmp.Or(cmp.Compare(ra, rb), boolOrder(a.Remainder, b.Remainder),
			cmp.Compare(b.BeforeRequests+b.AfterRequests, a.BeforeRequests+a.AfterRequests), cmp.Compare(a.Operation, b.Operation))
	})
	return out
}

func boolOrder(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// countTest compares an event's rate (slow requests at one level, or
// errors) after against before, across strata.
type countTest struct {
	s, v0, phi float64    // statistic, its variance under no change, the dispersion
	phiWindow  [2]float64 // the dispersion of each window (before, after)
	z          float64    // s / √(φ·v0)
	pInc, pDec float64
	exact      bool
	events     [2]float64 // events before, after (the after side at the before mix)
	requests   [2]float64
	// coef are each stratum's coefficients of x_bh and x_ah in the
	// statistic (0: not in both windows).
	coef          [][2]float64
	tested        bool // any stratum has requests in both windows
	expectedEvent [2]float64
	// nu is the degrees of freedom of the reference distribution; 0 when
	// it is the normal one. nuEstimate is that of the dispersion estimate,
	// whichever reference this test used: a test on other data (an
	// effect) may well need it, so the minimum detectable effect does.
	nu, nuEstimate float64
}

// quantiles are the critical value of the test at level alpha and the
// quantile of the given power, of its reference distribution (the normal
// one for the exact rate test): a true effect is found with that power when
// its mean reaches critical·sd0 + powerQ·sd1, sd0 the statistic's standard
// deviation under no change and sd1 under the effect.
func (t countTest) quantiles(alpha, power float64) (critical, powerQ float64) {
	if nu := math.Max(t.nu, t.nuEstimate); nu > 0 {
		ref := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: nu}
		return ref.Quantile(1 - alpha), ref.Quantile(power)
	}
	return zQuantile(1 - alpha), zQuantile(power)
}

// minExpectedEvents: with fewer expected events in either window, fewer
// than minEventsPerMinute a minute, or a window of fewer than minMinutes
// minutes, the normal (or Student-t) test gives way to the exact rate test.
// A few events a window are far from normal, and per-minute counts of
// mostly 0 and 1 — or a handful of minutes — carry little about their
// dispersion (the t test's degrees of freedom would collapse, and with them
// the evidence of every request), where the Poisson variance is well
// founded.
const (
	minExpectedEvents  = 10
	minEventsPerMinute = 2
	minMinutes         = 10
)

// sparse reports whether the events expected in each window (minutes the
// length of resid) make the exact rate test the one to use.
func sparse(expected [2]float64, resid [2][]float64) bool {
	for w, e := range expected {
		m := float64(len(resid[w]))
		if e < minExpectedEvents || m < minMinutes || e < minEventsPerMinute*m {
			return true
		}
	}
	return false
}

// runCountTest compares the rate of the events count picks in the after
// window with the before window's, the after window taken at the before
// window's mix of strata:
//
//	S = Σ_h (n_bh/n_b)·x_ah/n_ah − Σ_h x_bh/n_b
//	V0 = Σ_h p_h (1 − p_h) (n_bh/n_b)² (1/n_ah + 1/n_bh)  (p_h the stratum's pooled rate)
//
// — the after rate standardized to the before mix minus the before rate,
// which is 0 under no change in any stratum whatever the mix did. Its
// variance is inflated by φ ≥ 1, the ratio of the long-run (Newey–West,
// lags) variance of the statistic's per-minute residuals to V0: clustered
// requests give φ > 1, independent ones φ ≈ 1; the reference distribution
// is then Student's t with the degrees of freedom of that estimate. Sparse
// events (see minExpectedEvents) use the exact conditional rate test on the
// counts deflated by φ instead.
func runCountTest(strata []*Stratum, count func(MinuteCounts) float64, lags int) countTest {
	var t countTest
	t.coef = make([][2]float64, len(strata))
	type sums struct{ n, x [2]float64 }
	per := make([]sums, len(strata))
	nb := 0.0
	for i, s := range strata {
		for w, ms := range [2][]MinuteCounts{s.BeforeMinutes, s.AfterMinutes} {
			for _, m := range ms {
				per[i].n[w] += m.Requests
				per[i].x[w] += math.Min(count(m), m.Requests)
			}
		}
		if per[i].n[0] > 0 && per[i].n[1] > 0 {
			nb += per[i].n[0]
		}
	}
	var resid [2][]float64
	var vbin [2]float64
	for i, s := range strata {
		n, x := per[i].n, per[i].x
		t.requests[0], t.requests[1] = t.requests[0]+n[0], t.requests[1]+n[1]
		if !(n[0] > 0 && n[1] > 0) {
			continue
		}
		t.tested = true
		weight := n[0] / nb // the stratum's share of the before window
		coef := [2]float64{weight / n[0], weight / n[1]}
		t.coef[i] = coef
		p := (x[0] + x[1]) / (n[0] + n[1])
		t.events[0] += x[0]
		t.events[1] += weight * x[1] / n[1] * nb
		t.s += coef[1]*x[1] - coef[0]*x[0]
		t.v0 += p * (1 - p) * (coef[0]*coef[0]*n[0] + coef[1]*coef[1]*n[1])
		t.expectedEvent[0] += p * n[0]
		t.expectedEvent[1] += p * n[1]
		for w, ms := range [2][]MinuteCounts{s.BeforeMinutes, s.AfterMinutes} {
			if len(resid[w]) < len(ms) {
				resid[w] = append(resid[w], make([]float64, len(ms)-len(resid[w]))...)
			}
			rate := x[w] / n[w]
			for k, m := range ms {
				resid[w][k] += coef[w] * (math.Min(count(m), m.Requests) - rate*m.Requests)
			}
			vbin[w] += coef[w] * coef[w] * n[w] * rate * (1 - rate)
		}
	}
	// The variance of each window's sum from its per-minute residuals, with
	// the covariance of minutes up to lags apart (Newey–West): requests of
	// one minute, and of neighbouring minutes, share their fortunes. The
	// window's own mean has been taken out of the residuals, which makes
	// the estimate from n minutes about (n − 1 − lags)/n of the true
	// variance: corrected.
	t.phi = 1
	var vrob, df [2]float64
	kernel := 1 + float64(lags*(2*lags+1))/float64(3*(lags+1))
	for w := range resid {
		n := 0
		for _, r := range resid[w] {
			if r != 0 {
				n++
			}
		}
		vrob[w] = stats.LongRunVariance(resid[w], lags)
		if n > 1+lags {
			vrob[w] *= float64(n) / float64(n-1-lags)
		}
		// A sum of squares of n residuals of kurtosis κ carries 2/(κ − 1) of
		// the degrees of freedom of normal ones (counts of rare events are
		// far from normal); the Bartlett weights of the lags spread them
		// further.
		if n > 1 {
			df[w] = 2 * float64(n-1) / (math.Max(3, kurtosis(resid[w])) - 1) / kernel
		}
		t.phiWindow[w] = 1
		if vbin[w] > 0 {
			t.phiWindow[w] = math.Max(1, vrob[w]/vbin[w])
		}
	}
	if t.v0 > 0 {
		t.phi = math.Max(1, (vrob[0]+vrob[1])/t.v0)
	}
	t.pInc, t.pDec = 1, 1
	if !t.tested || !(t.v0 > 0) {
		return t
	}
	// The windows' degrees of freedom combined as Welch and Satterthwaite do.
	den := 0.0
	for w := range vrob {
		if df[w] > 0 {
			den += vrob[w] * vrob[w] / df[w]
		}
	}
	if v := vrob[0] + vrob[1]; den > 0 {
		t.nuEstimate = math.Max(1, v*v/den)
	}
	t.z = t.s / math.Sqrt(t.phi*t.v0)
	if sparse(t.expectedEvent, resid) {
		t.exact = true
		// The before window's requests are the exposure of both sides: the
		// after events are at its mix.
		xa, xb := t.events[1]/t.phi, t.events[0]/t.phi
		if p, err := stats.PoissonRateTest(xa, nb, xb, nb, stats.Greater); err == nil {
			t.pInc = p
		}
		if p, err := stats.PoissonRateTest(xa, nb, xb, nb, stats.Less); err == nil {
			t.pDec = p
		}
		return t
	}
	ref := distuv.UnitNormal.CDF
	if t.phi > 1 && t.nuEstimate > 0 {
		// The variance is then estimated from the minutes, and the statistic
		// Student-t rather than normal.
		t.nu = t.nuEstimate
		ref = distuv.StudentsT{Mu: 0, Sigma: 1, Nu: t.nu}.CDF
	}
	t.pInc = ref(-t.z)
	t.pDec = ref(t.z)
	return t
}

// kurtosis is M·Σr⁴/(Σr²)² of the M nonzero residuals r; 0 without two.
func kurtosis(r []float64) float64 {
	var s2, s4 float64
	n := 0
	for _, x := range r {
		if x != 0 {
			s2, s4, n = s2+x*x, s4+x*x*x*x, n+1
		}
	}
	if n < 2 || s2 <= 0 {
		return 0
	}
	return float64(n) * s4 / (s2 * s2)
}

// zQuantile is the standard normal quantile.
func zQuantile(p float64) float64 { return distuv.UnitNormal.Quantile(p) }

// ciZ is the z of the 95 % intervals.
var ciZ = zQuantile(0.975)

// latencyMetric fills h with the level-th judged percentile of the scope:
// figures, interval, test and minimum detectable effect (at level alpha).
//
// With unit set the scope is the whole unit: requests count as slow above
// the unit's pooled threshold (e.UnitSlow), the figure is the unit's
// percentile; else above their stratum's.
//
// With a control's shift (ok) the metric is judged against it (adjust).
func latencyMetric(h *hypothesis, scope []*Stratum, unit *[NumLevels]uint16, level int, tested bool, alpha float64, bucketValue func(uint16) float64, ctrl controlShift, cfg Config) {
	q := JudgedLevels[level]
	m := h.metric
	*m = report.ImpactMetric{Metric: judgedMetrics[level], RelativeChange: math.NaN(), CILow: math.NaN(), CIHigh: math.NaN(),
		MDE: math.NaN(), MDEValue: math.NaN(), PValue: 1, AdjustedPValue: 1, Test: TestNotRun, Verdict: report.CompareInsufficientData,
		RawChange: math.NaN(), ControlChange: math.NaN()}
	if bucketValue == nil {
		return
	}
	count := func(c MinuteCounts) float64 { return c.Slow[level] }
	if unit != nil {
		count = func(c MinuteCounts) float64 { return c.UnitSlow[level] }
	}
	t := runCountTest(scope, count, cfg.DispersionLags)
	before, after, nAfter := standardized(scope)
	qs := func(d dense, n, phi float64) (v, lo, hi float64) {
		s := math.Sqrt(phi * q * (1 - q) / n)
		out := []float64{math.NaN(), math.NaN(), math.NaN()}
		levels := []float64{math.Max(q-ciZ*s, 0), q, math.Min(q+ciZ*s, 1)}
		d.quantiles(levels, bucketValue, out)
		lo, v, hi = out[0], out[1], out[2]
		if q+ciZ*s >= 1 {
			hi = math.Inf(1) // open-ended: too few requests beyond the percentile
		}
		return v, lo, hi
	}
	nBefore := 0.0
	for _, s := range scope {
		nBefore += s.Before.Requests
	}
	if nBefore <= 0 || nAfter <= 0 {
		return
	}
	vb, lob, hib := qs(before, nBefore, t.phiWindow[0])
	va, loa, hia := qs(after, nAfter, t.phiWindow[1])
	m.Before, m.After = vb, va
	if vb > 0 && ctrl.ok {
		m.RawChange = va/vb - 1
		seb := (math.Log(hib) - math.Log(lob)) / (2 * ciZ)
		sea := (math.Log(hia) - math.Log(loa)) / (2 * ciZ)
		sd := h.adjust(math.Log(va/vb), math.Sqrt(seb*seb+sea*sea), ctrl, tested && t.tested)
		if m.Test == TestNotRun {
			return
		}
		floor := cfg.LatencyFloor
		h.matInc = !(m.CIHigh < floor)
		h.matDec = !(m.CILow > 1/(1+floor)-1)
		m.MDE = math.Max(didMDE(sd, alpha, mdePower(cfg.Power)), floor)
		m.MDEValue = vb * math.Exp(ctrl.log) * (1 + m.MDE)
		return
	}
	if vb > 0 {
		m.RelativeChange = va/vb - 1
		seb := (math.Log(hib) - math.Log(lob)) / (2 * ciZ)
		sea := (math.Log(hia) - math.Log(loa)) / (2 * ciZ)
		r := math.Log(va / vb)
		half := ciZ * math.Sqrt(seb*seb+sea*sea)
		m.CILow, m.CIHigh = math.Expm1(r-half), math.Expm1(r+half)
		if math.IsNaN(m.CIHigh) || math.IsInf(hib, 1) || math.IsInf(hia, 1) {
			m.CIHigh = math.Inf(1)
		}
		if math.IsNaN(m.CILow) {
			m.CILow = -1
		}
	}
	if !tested || !t.tested {
		return
	}
	m.Test = TestSlowShare
	if t.exact {
		m.Test = TestSlowShareExact
	}
	m.Z = t.z
	h.pInc, h.pDec = t.pInc, t.pDec
	m.PValue = t.pInc
	if m.Z < 0 {
		m.PValue = t.pDec
	}
	floor := cfg.LatencyFloor
	h.matInc = !(m.CIHigh < floor)
	h.matDec = !(m.CILow > 1/(1+floor)-1)
	mde := latencyMDE(scope, unit, t, level, alpha, mdePower(cfg.Power), bucketValue)
	m.MDE = math.Max(mde, floor)
	m.MDEValue = vb * (1 + m.MDE)
}

// standardized returns the scope's before histogram and its after
// histogram at the before window's mix of strata (each stratum's after
// histogram scaled to its before requests), with the after side's effective
// number of requests (Kish) — so that a shift of traffic between operations
// is not read as a change of latency. With one stratum it is the after
// histogram itself.
func standardized(scope []*Stratum) (before, after dense, nAfter float64) {
	var bs, as []Hist
	sumB, sumW2 := 0.0, 0.0
	for _, s := range scope {
		bs = append(bs, s.Before)
		if s.After.Requests <= 0 || s.Before.Requests <= 0 {
			continue
		}
		scale := s.Before.Requests / s.After.Requests
		h := Hist{Keys: s.After.Keys, Weights: make([]float64, len(s.After.Weights))}
		for i, w := range s.After.Weights {
			h.Weights[i] = w * scale
		}
		as = append(as, h)
		sumB += s.Before.Requests
		sumW2 += s.Before.Requests * s.Before.Requests / s.After.Requests
	}
	if len(scope) == 1 {
		return denseOf(bs...), denseOf(scope[0].After), scope[0].After.Requests
	}
	if sumW2 > 0 {
		nAfter = sumB * sumB / sumW2
	}
	return denseOf(bs...), denseOf(as...), nAfter
}

// latencyMDE is the smallest relative rise s of every request's latency in
// the scope that its test detects with the given power at level alpha: the
// after window's latencies multiplied by 1+s, the pooled threshold (the
// unit's, or each stratum's) moving up by the after window's share of s (in
// logarithms: to first order where the two windows together keep the share
// above it), and the statistic's mean Σ_h (a_h x_ah(s) − b_h x_bh(s)) must
// reach critical·√(φ max(V0, V1)) + z_power·√(φ V1), V0 and V1 its variances
// without and with the shift (the test divides by the dispersion it
// estimates from the data, which holds the shift), the counts taken from
// the pooled windows' survival function F̄_h — the test as it runs, with
// its reference distribution. +Inf when no rise up to 20× is detectable.
func latencyMDE(scope []*Stratum, unit *[NumLevels]uint16, t countTest, level int, alpha, power float64, bucketValue func(uint16) float64) float64 {
	if !(t.v0 > 0) {
		return math.Inf(1)
	}
	critical, powerQ := t.quantiles(alpha, power)
	type part struct {
		coef [2]float64
		n    [2]float64
		edge float64 // the threshold's logarithm now
		sv   survivalTable
	}
	var parts []part
	var nb, na float64
	for i, s := range scope {
		if t.coef[i][0] <= 0 {
			continue
		}
		sv := newSurvivalTable(denseOf(s.Before, s.After), bucketValue)
		if sv.total <= 0 {
			continue
		}
		slow := s.Slow[level]
		if unit != nil {
			slow = unit[level]
		}
		p := part{coef: t.coef[i], n: [2]float64{s.Before.Requests, s.After.Requests},
			edge: math.Log(bucketUpper(slow, bucketValue)), sv: sv}
		parts = append(parts, p)
		nb, na = nb+p.n[0], na+p.n[1]
	}
	if len(parts) == 0 {
		return math.Inf(1)
	}
	// gap is the statistic's mean under the shift minus what it must reach.
	gap := func(shift float64) float64 {
		sum, v0, v1 := 0.0, 0.0, 0.0
		for _, p := range parts {
			share := p.n[1] / (p.n[0] + p.n[1]) // a stratum's own threshold
			if unit != nil {
				share = na / (nb + na) // the unit's, pooled over every stratum
			}
			th := p.edge + shift*share
			pa, pb := p.sv.at(th-shift), p.sv.at(th)
			sum += p.coef[1]*p.n[1]*pa - p.coef[0]*p.n[0]*pb
			pooled := (p.n[0]*pb + p.n[1]*pa) / (p.n[0] + p.n[1])
			v0 += pooled * (1 - pooled) * (p.coef[0]*p.coef[0]*p.n[0] + p.coef[1]*p.coef[1]*p.n[1])
			v1 += p.coef[1]*p.coef[1]*p.n[1]*pa*(1-pa) + p.coef[0]*p.coef[0]*p.n[0]*pb*(1-pb)
		}
		return sum - critical*math.Sqrt(t.phi*math.Max(v0, v1)) - powerQ*math.Sqrt(t.phi*v1)
	}
	hi := math.Log(21)
	if gap(hi) < 0 {
		return math.Inf(1)
	}
	lo := 0.0
	for range 16 { // to 5e-5 of the logarithm: a hundredth of a percent
		mid := (lo + hi) / 2
		if gap(mid) >= 0 {
			hi = mid
		} else {
			lo = mid
		}
	}
	return math.Expm1(hi)
}

// survivalTable answers the share of a histogram above a value, the
// bucket holding it split log-uniformly (as dense.quantiles interpolates).
// It covers the buckets from the first to the last with weight.
type survivalTable struct {
	above  []float64 // share in buckets ≥ first+k
	lo, hi []float64 // each bucket's edges, logarithms
	total  float64
}

func newSurvivalTable(d dense, value func(uint16) float64) survivalTable {
	first, last := -1, -1
	for k, w := range d {
		if w > 0 {
			if first < 0 {
				first = k
			}
			last = k
		}
	}
	if first < 0 {
		return survivalTable{}
	}
	n := last - first + 1
	t := survivalTable{above: make([]float64, n+1), lo: make([]float64, n), hi: make([]float64, n)}
	for k := n - 1; k >= 0; k-- {
		t.above[k] = t.above[k+1] + d[first+k]
	}
	t.total = t.above[0]
	next := math.Log(value(uint16(first)))
	for k := range n {
		t.above[k] /= t.total
		mid := next
		next = math.Log(value(uint16(min(first+k, 65534) + 1)))
		half := (next - mid) / 2
		t.lo[k], t.hi[k] = mid-half, mid+half
	}
	return t
}

// at is the share above the value whose logarithm is lv.
func (t survivalTable) at(lv float64) float64 {
	n := len(t.hi)
	k, _ := slices.BinarySearch(t.hi, lv) // the first bucket whose upper edge is ≥ lv
	if k < n && t.hi[k] == lv {
		k++
	}
	if k >= n {
		return 0
	}
	if lv <= t.lo[k] {
		return t.above[k]
	}
	return t.above[k+1] + (t.above[k]-t.above[k+1])*(t.hi[k]-lv)/(t.hi[k]-t.lo[k])
}

// mdePower is the power the significance of a test needs for a verdict to
// come with the given power: a regression is also required not to be ruled
// out as smaller than the floor, which a true effect at the floor fails
// in 2.5 % of cases.
func mdePower(power float64) float64 { return math.Min(power/0.975, 0.99) }

// errorMetric fills h with the scope's error rate: figures, interval, test
// and minimum detectable effect (at level alpha).
func errorMetric(h *hypothesis, scope []*Stratum, tested bool, alpha float64, ctrl controlShift, cfg Config) {
	m := h.metric
	*m = report.ImpactMetric{Metric: MetricErrorRate, RelativeChange: math.NaN(), CILow: math.NaN(), CIHigh: math.NaN(),
		MDE: math.NaN(), MDEValue: math.NaN(), PValue: 1, AdjustedPValue: 1, Test: TestNotRun, Verdict: report.CompareInsufficientData,
		RawChange: math.NaN(), ControlChange: math.NaN()}
	t := runCountTest(scope, func(c MinuteCounts) float64 { return c.Errors }, cfg.DispersionLags)
	// Rates from the merged windows; the after rate at the before window's
	// mix of strata.
	var nb, eb, na, ea, mixed, mixedN float64
	for _, s := range scope {
		nb, eb = nb+s.Before.Requests, eb+math.Min(s.Before.Errors, s.Before.Requests)
		na, ea = na+s.After.Requests, ea+math.Min(s.After.Errors, s.After.Requests)
		if s.After.Requests > 0 && s.Before.Requests > 0 {
			mixed += s.Before.Requests * math.Min(s.After.Errors, s.After.Requests) / s.After.Requests
			mixedN += s.Before.Requests
		}
	}
	if nb <= 0 || na <= 0 {
		return
	}
	rb, ra := eb/nb, ea/na
	if len(scope) > 1 && mixedN > 0 {
		ra = mixed / mixedN
		ea = ra * na
	}
	m.Before, m.After = rb, ra
	phi := t.phi
	ratio, delta := cfg.ErrorRateFloorRatio, cfg.ErrorRateFloorDelta
	if ctrl.ok {
		// Against the controls: log rate ratios with ½ added to the counts.
		r := math.Log((ea+0.5)/(na+0.5)) - math.Log((eb+0.5)/(nb+0.5))
		se := math.Sqrt(phi * (1/(ea+0.5) + 1/(eb+0.5)))
		sd := h.adjust(r, se, ctrl, tested && t.tested)
		base := (eb + 0.5) / (nb + 0.5) // the before rate, never 0
		if m.Test == TestNotRun {
			return
		}
		d := math.Log1p(m.RelativeChange)
		h.matInc = !(m.CIHigh+1 < ratio) && !(base*math.Expm1(d+ciZ*sd) < delta)
		h.matDec = !(m.CILow+1 > 1/ratio) && !(base*math.Expm1(d-ciZ*sd) > -delta)
		expected := base * math.Exp(ctrl.log) // the after rate the controls expect
		m.MDEValue = math.Max(math.Max(expected*(1+didMDE(sd, alpha, mdePower(cfg.Power))), ratio*expected), expected+delta)
		m.MDE = m.MDEValue/expected - 1
		return
	}
	if rb > 0 {
		m.RelativeChange = ra/rb - 1
	}
	if lo, hi, err := stats.PoissonRateRatioCI(ea/phi, na, eb/phi, nb, 0.95); err == nil {
		m.CILow, m.CIHigh = lo-1, hi-1
	}
	// The difference's interval (Agresti–Caffo), for the absolute floor.
	ta, tb := (ea+1)/(na+2), (eb+1)/(nb+2)
	half := ciZ * math.Sqrt(phi*(ta*(1-ta)/na+tb*(1-tb)/nb))
	h.effects.diffLow, h.effects.diffHigh = ra-rb-half, ra-rb+half
	if !tested || !t.tested {
		return
	}
	m.Test = TestErrorRate
	if t.exact {
		m.Test = TestErrorRateExact
	}
	m.Z = t.z
	h.pInc, h.pDec = t.pInc, t.pDec
	m.PValue = t.pInc
	if m.Z < 0 {
		m.PValue = t.pDec
	}
	h.matInc = !(m.CIHigh+1 < ratio) && !(h.effects.diffHigh < delta)
	h.matDec = !(m.CILow+1 > 1/ratio) && !(h.effects.diffLow > -delta)
	detectable := errorMDE(scope, t, alpha, mdePower(cfg.Power))
	m.MDEValue = math.Max(math.Max(detectable, ratio*rb), rb+delta)
	if rb > 0 {
		m.MDE = m.MDEValue/rb - 1
	}
}

// errorMDE is the smallest after-window error rate its test detects with
// the given power at level alpha (normal approximation): every stratum's
// rate multiplied by θ (added δ when no stratum had an error before).
// +Inf when no rate up to 1 is detectable.
func errorMDE(scope []*Stratum, t countTest, alpha, power float64) float64 {
	critical, powerQ := t.quantiles(alpha, power)
	type part struct {
		coef   [2]float64
		nb, na float64
		rb     float64
	}
	var parts []part
	var eb, nb float64
	for i, s := range scope {
		if t.coef[i][0] <= 0 {
			continue
		}
		r := math.Min(s.Before.Errors, s.Before.Requests) / s.Before.Requests
		parts = append(parts, part{coef: t.coef[i], nb: s.Before.Requests, na: s.After.Requests, rb: r})
		eb, nb = eb+r*s.Before.Requests, nb+s.Before.Requests
	}
	if len(parts) == 0 || nb <= 0 {
		return math.Inf(1)
	}
	additive := eb <= 0
	rate := func(p part, theta float64) float64 {
		if additive {
			return math.Min(theta, 1)
		}
		return math.Min(p.rb*theta, 1)
	}
	// gap is the statistic's mean at after rates rate(θ) minus what it must
	// reach; increasing in θ.
	gap := func(theta float64) float64 {
		mean, v0, v1 := 0.0, 0.0, 0.0
		for _, p := range parts {
			ra := rate(p, theta)
			mean += p.coef[1]*p.na*ra - p.coef[0]*p.nb*p.rb
			pooled := (p.rb*p.nb + ra*p.na) / (p.nb + p.na)
			v0 += pooled * (1 - pooled) * (p.coef[0]*p.coef[0]*p.nb + p.coef[1]*p.coef[1]*p.na)
			v1 += p.coef[1]*p.coef[1]*p.na*ra*(1-ra) + p.coef[0]*p.coef[0]*p.nb*p.rb*(1-p.rb)
		}
		return mean - critical*math.Sqrt(t.phi*math.Max(v0, v1)) - powerQ*math.Sqrt(t.phi*v1)
	}
	lo, hi := 1.0, 1/(eb/nb)
	if additive {
		lo, hi = 0, 1
	}
	if gap(hi) < 0 {
		return math.Inf(1)
	}
	for range 60 {
		mid := (lo + hi) / 2
		if gap(mid) >= 0 {
			hi = mid
		} else {
			lo = mid
		}
	}
	if additive {
		return hi
	}
	return hi * eb / nb
}

// requestsNeeded is about how many requests per window the unit's p95 test
// needs to detect a rise of LatencyFloor with Power (two equal windows, no
// dispersion, the unit's share of the family's α): the slow share at the
// pooled p95 moves from 5 % to 1 − Φ(z95 − ln(1+floor)/σ) for log-normal
// latencies of log-spread σ = ln(p95/p50)/z95 (the windows' own; 0.35
// without data).
func requestsNeeded(e *Evidence, cfg Config) float64 {
	var hs []Hist
	for _, s := range e.Strata {
		hs = append(hs, s.Before, s.After)
	}
	sigma := 0.35
	z95 := zQuantile(0.95)
	if e.bucketValue != nil {
		q := []float64{math.NaN(), math.NaN()}
		denseOf(hs...).quantiles([]float64{0.5, 0.95}, e.bucketValue, q)
		if s := math.Log(q[1]/q[0]) / z95; s > 0.02 && !math.IsInf(s, 0) {
			sigma = s
		}
	}
	p0 := 0.05
	p1 := distuv.UnitNormal.CDF(-(z95 - math.Log1p(cfg.LatencyFloor)/sigma))
	alpha := cfg.Alpha / 3
	if len(e.Strata) > 1 {
		alpha = cfg.Alpha / 6
	}
	pbar := (p0 + p1) / 2
	num := zQuantile(1-alpha)*math.Sqrt(2*pbar*(1-pbar)) + zQuantile(cfg.Power)*math.Sqrt(p0*(1-p0)+p1*(1-p1))
	return math.Ceil(num * num / ((p1 - p0) * (p1 - p0)))
}
