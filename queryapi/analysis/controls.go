package analysis

import (
	"math"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/changelens/changelens/queryapi/report"
)

// Kinds of control a before/after judgement can use (report.Control.Kind),
// in the order they are preferred.
const (
	// ControlEnvironment: other units of the deployment's environment that
	// did not deploy during its windows — a load ramp, the time of day or a
	// shared dependency moves them alike.
	ControlEnvironment = "environment"
	// ControlService: the same service in other environments (regions,
	// clusters) that did not deploy during the windows.
	ControlService = "service_elsewhere"
	// ControlPreviousDay: the unit itself at the same clock time on the
	// previous day, when it deployed nothing then: the time of day.
	ControlPreviousDay = "previous_day"
	// ControlNone: no control had enough traffic: the plain before/after
	// comparison, said so.
	ControlNone = "none"
)

// ControlSeries is one control series' before and after windows: the same
// clock minutes as the deployment's (for ControlPreviousDay, a day
// earlier), all operations together.
type ControlSeries struct {
	Kind                 string
	Service, Environment string
	Before, After        Hist
}

// Name is how the answer names the series: "service/environment", and "a
// day earlier" for the previous day.
func (c ControlSeries) Name() string {
	n := c.Service + "/" + c.Environment
	if c.Kind == ControlPreviousDay {
		n += " a day earlier"
	}
	return n
}

// controlShift is what the controls say shared causes did to one metric between
// the windows, in logarithms of the ratio after ÷ before: their estimate
// (a random-effects mean), its variance, and the variance of one series'
// own response around it (τ²), which the judged unit's adds to its own.
type controlShift struct {
	log, variance, tau2 float64
	ok                  bool
}

// Heterogeneity floors (τ, in logarithms) of the controls: series never
// respond to a shared cause exactly alike, however few controls there are
// to measure how differently.
const (
	minLatencyTau = 0.02
	minErrorTau   = 0.10
)

// controls are the shifts of a judgement's metrics (JudgedLevels, then the
// error rate) and the series that gave them.
type controls struct {
	kind   string
	series []ControlSeries
	shifts [NumLevels + 1]controlShift
}

// newControls keeps the series of the preferred kind with at least
// MinRequests in both windows and estimates each metric's shift from them:
// each series' log ratio (a percentile of its merged histograms, or its
// error rate with ½ added to both counts) with its binomial standard error
// (Woodruff for percentiles), pooled as a random-effects mean
// (DerSimonian–Laird, τ at least minLatencyTau / minErrorTau).
func newControls(series []ControlSeries, bucketValue func(uint16) float64, cfg Config) controls {
	c := controls{kind: ControlNone}
	for _, kind := range []string{ControlEnvironment, ControlService, ControlPreviousDay} {
		var use []ControlSeries
		for _, s := range series {
			if s.Kind == kind && s.Before.Requests >= cfg.MinRequests && s.After.Requests >= cfg.MinRequests {
				use = append(use, s)
			}
		}
		if len(use) > 0 {
			c.kind, c.series = kind, use
			break
		}
	}
	if len(c.series) == 0 || bucketValue == nil {
		return c
	}
	for l, q := range JudgedLevels {
		var r, v []float64
		for _, s := range c.series {
			b, seb := quantileLog(denseOf(s.Before), s.Before.Requests, q, bucketValue)
			a, sea := quantileLog(denseOf(s.After), s.After.Requests, q, bucketValue)
			if math.IsNaN(a-b) || math.IsInf(sea+seb, 0) {
				continue
			}
			r, v = append(r, a-b), append(v, sea*sea+seb*seb)
		}
		c.shifts[l] = pool(r, v, minLatencyTau)
	}
	var r, v []float64
	for _, s := range c.series {
		eb, ea := math.Min(s.Before.Errors, s.Before.Requests)+0.5, math.Min(s.After.Errors, s.After.Requests)+0.5
		r = append(r, math.Log(ea/(s.After.Requests+0.5))-math.Log(eb/(s.Before.Requests+0.5)))
		v = append(v, 1/ea+1/eb)
	}
	c.shifts[NumLevels] = pool(r, v, minErrorTau)
	return c
}

// quantileLog is the logarithm of the q-percentile of a histogram of n
// requests and its standard error (Woodruff: the binomial interval of the
// level mapped through the histogram); +Inf when the interval is open-ended.
func quantileLog(d dense, n, q float64, bucketValue func(uint16) float64) (v, se float64) {
	if !(n > 0) {
		return math.NaN(), math.Inf(1)
	}
	s := math.Sqrt(q * (1 - q) / n)
	if q+ciZ*s >= 1 || q-ciZ*s <= 0 {
		return math.NaN(), math.Inf(1)
	}
	out := []float64{math.NaN(), math.NaN(), math.NaN()}
	d.quantiles([]float64{q - ciZ*s, q, q + ciZ*s}, bucketValue, out)
	return math.Log(out[1]), (math.Log(out[2]) - math.Log(out[0])) / (2 * ciZ)
}

// pool is the random-effects mean of estimates r with variances v
// (DerSimonian–Laird), its variance and τ², τ at least minTau.
func pool(r, v []float64, minTau float64) controlShift {
	if len(r) == 0 {
		return controlShift{}
	}
	var sw, swr, sw2 float64
	for i := range r {
		w := 1 / v[i]
		sw, swr, sw2 = sw+w, swr+w*r[i], sw2+w*w
	}
	mean := swr / sw
	q := 0.0
	for i := range r {
		q += (r[i] - mean) * (r[i] - mean) / v[i]
	}
	tau2 := 0.0
	if len(r) > 1 && sw > sw2/sw {
		tau2 = math.Max(0, (q-float64(len(r)-1))/(sw-sw2/sw))
	}
	tau2 = math.Max(tau2, minTau*minTau)
	var sw2r, swr2 float64
	for i := range r {
		w := 1 / (v[i] + tau2)
		sw2r, swr2 = sw2r+w, swr2+w*r[i]
	}
	return controlShift{log: swr2 / sw2r, variance: 1 / sw2r, tau2: tau2, ok: true}
}

// report is the control of an answer: its kind, series and what they did
// to each metric (the shift as a relative change with its 95 % interval).
func (c controls) report() report.Control {
	out := report.Control{Kind: c.kind}
	for _, s := range c.series {
		out.Series = append(out.Series, s.Name())
	}
	names := append(judgedMetrics[:], MetricErrorRate)
	for i, s := range c.shifts {
		if !s.ok {
			continue
		}
		half := ciZ * math.Sqrt(s.variance+s.tau2)
		out.Shifts = append(out.Shifts, report.ControlShift{Metric: names[i], Change: math.Expm1(s.log),
			CILow: math.Expm1(s.log - half), CIHigh: math.Expm1(s.log + half)})
	}
	return out
}

// TestDiD names the test of a metric judged against a control: the
// difference of the unit's log ratio after ÷ before and the controls'.
const TestDiD = "difference-in-differences (controls)"

// adjust judges metric m of a scope against the controls' shift instead of
// by itself: the change is the scope's log ratio r (of after ÷ before, with
// standard error se) minus the controls' ŝ, its variance se² + Var(ŝ) + τ²
// (τ² the series' own response), tested with a normal reference. It sets
// the metric's change, interval, test, p-values and materiality, and
// returns the standard deviation the minimum detectable effect needs.
func (h *hypothesis) adjust(r, se float64, s controlShift, tested bool) (sd float64) {
	m := h.metric
	m.RawChange = math.Expm1(r)
	m.ControlChange = math.Expm1(s.log)
	d := r - s.log
	sd = math.Sqrt(se*se + s.variance + s.tau2)
	m.RelativeChange = math.Expm1(d)
	m.CILow, m.CIHigh = math.Expm1(d-ciZ*sd), math.Expm1(d+ciZ*sd)
	if math.IsInf(se, 1) || math.IsNaN(sd) {
		m.CILow, m.CIHigh = -1, math.Inf(1)
	}
	if !tested || math.IsInf(sd, 0) || math.IsNaN(sd) || !(sd > 0) {
		m.Test, m.PValue, m.Z = TestNotRun, 1, 0
		h.pInc, h.pDec = 1, 1
		return sd
	}
	m.Test = TestDiD
	m.Z = d / sd
	h.pInc, h.pDec = distuv.UnitNormal.CDF(-m.Z), distuv.UnitNormal.CDF(m.Z)
	m.PValue = h.pInc
	if m.Z < 0 {
		m.PValue = h.pDec
	}
	return sd
}

// didMDE is the smallest relative rise beyond the controls' controlShift a test
// of standard deviation sd finds with the given power at level alpha.
func didMDE(sd, alpha, power float64) float64 {
	if math.IsInf(sd, 0) || math.IsNaN(sd) {
		return math.Inf(1)
	}
	return math.Expm1((zQuantile(1-alpha) + zQuantile(power)) * sd)
}
