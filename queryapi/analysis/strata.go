package analysis

import (
	"cmp"
	"math"
	"slices"
)

// NumLevels is the number of latency percentiles the before/after rule
// judges; JudgedLevels are they (with the error rate, the guarded metrics
// of docs/analysis.md).
const NumLevels = 2

// JudgedLevels are the latency percentiles the before/after rule judges.
var JudgedLevels = [NumLevels]float64{0.95, 0.99}

// judgedMetrics are the metric names of JudgedLevels.
var judgedMetrics = [NumLevels]string{MetricLatencyP95, MetricLatencyP99}

// Hist is one side of a deployment for one operation (or the whole unit):
// weighted requests and errors, the number of stored events and the
// weighted sum of their durations (a fingerprint of the data: it changes
// when any event is added) and the latency
// histogram merged over the window's minutes (bucket → weight, the
// schema's layout).
type Hist struct {
	Requests, Errors, Samples, DurationMs float64
	Keys                                  []uint16
	Weights                               []float64
}

// OperationWindows is one operation's before and after windows, merged over
// their minutes: the first read of a before/after judgement.
type OperationWindows struct {
	Operation     string
	Before, After Hist
}

// MinuteCounts are one stratum's counts in one minute of a window: weighted
// requests, errors, requests slower than the stratum's threshold of each
// judged level (Stratum.Slow) and slower than the unit's (Evidence.UnitSlow).
type MinuteCounts struct {
	Requests, Errors float64
	Slow, UnitSlow   [NumLevels]float64
}

// Stratum is what one test of the before/after rule looks at: an operation
// with enough traffic to be judged on its own, or the remainder, which pools
// the operations with too little (they never vanish: the unit's tests count
// them, and the remainder is judged as one when it has enough).
type Stratum struct {
	Operation string // "" for the remainder
	Remainder bool
	// Operations is the number of operations the stratum holds (1 unless
	// Remainder).
	Operations int
	// Judged: the stratum has MinRequests in both windows and is judged on
	// its own (besides counting in the unit's tests).
	Judged        bool
	Before, After Hist
	// Slow[i] is the bucket of the JudgedLevels[i] percentile of the two
	// windows pooled: a request is slow at that level when its bucket is
	// above it. The pooled percentile makes the test exact under no change
	// (both windows' requests are then exchangeable), whichever window the
	// data come from.
	Slow [NumLevels]uint16
	// BeforeMinutes and AfterMinutes are the per-minute counts, indexed by
	// the minute's offset from its window's start.
	BeforeMinutes, AfterMinutes []MinuteCounts
}

// Evidence is what a deployment's before/after judgement rests on: its
// strata, each with both windows merged and per minute.
type Evidence struct {
	Strata []Stratum
	// UnitSlow are the slow thresholds of all operations' windows pooled:
	// the unit's tests count requests above them.
	UnitSlow [NumLevels]uint16
	// Controls are the series that did not deploy in the windows (see
	// ControlSeries): with enough traffic, every metric is judged against
	// what they did (difference in differences).
	Controls []ControlSeries
	// Attribution (nil: not read) is the per-minute evidence the
	// attribution of a regression reads, Own the judged deployment as a
	// change among the others.
	Attribution *AttributionEvidence
	Own         Change
	// ErrorKinds (nil: not read) are the unit's error kinds in the windows,
	// which Timeline.Judge judges beside the before/after rule
	// (JudgeErrorKinds).
	ErrorKinds  *ErrorKindEvidence
	byOperation map[string]int
	bucketValue func(uint16) float64
}

// NewEvidence groups a deployment's operations into strata: the busiest
// MaxOperations with at least MinRequests in both windows are judged one by
// one, every other operation joins the remainder. It sets each stratum's
// slow thresholds; the per-minute counts are added afterwards (AddMinute),
// from a read that needs the thresholds. beforeMinutes and afterMinutes are
// the windows' lengths in whole minutes; bucketValue gives a histogram
// bucket's latency in milliseconds.
func NewEvidence(ops []OperationWindows, beforeMinutes, afterMinutes int, bucketValue func(uint16) float64, cfg Config) *Evidence {
	sorted := slices.Clone(ops)
	slices.SortFunc(sorted, func(a, b OperationWindows) int {
		return cmp.Or(cmp.Compare(b.Before.Requests+b.After.Requests, a.Before.Requests+a.After.Requests),
			cmp.Compare(a.Operation, b.Operation))
	})
	e := &Evidence{byOperation: make(map[string]int, len(ops)), bucketValue: bucketValue}
	var rest []OperationWindows
	for _, op := range sorted {
		if len(e.Strata) < cfg.MaxOperations && op.Before.Requests >= cfg.MinRequests && op.After.Requests >= cfg.MinRequests {
			e.byOperation[op.Operation] = len(e.Strata)
			e.Strata = append(e.Strata, Stratum{Operation: op.Operation, Operations: 1, Judged: true, Before: op.Before, After: op.After})
			continue
		}
		rest = append(rest, op)
	}
	if len(rest) > 0 {
		r := Stratum{Remainder: true, Operations: len(rest)}
		var before, after histAccum
		for _, op := range rest {
			e.byOperation[op.Operation] = len(e.Strata)
			r.Before.add(op.Before, &before)
			r.After.add(op.After, &after)
		}
		r.Before.Keys, r.Before.Weights = before.flush()
		r.After.Keys, r.After.Weights = after.flush()
		r.Judged = r.Before.Requests >= cfg.MinRequests && r.After.Requests >= cfg.MinRequests
		e.Strata = append(e.Strata, r)
	}
	var all []Hist
	for i := range e.Strata {
		all = append(all, e.Strata[i].Before, e.Strata[i].After)
	}
	e.UnitSlow = slowThresholds(all...)
	for i := range e.Strata {
		s := &e.Strata[i]
		s.Slow = slowThresholds(s.Before, s.After)
		s.BeforeMinutes = make([]MinuteCounts, max(beforeMinutes, 0))
		s.AfterMinutes = make([]MinuteCounts, max(afterMinutes, 0))
	}
	return e
}

// add sums o's counts into h and its histogram into acc.
func (h *Hist) add(o Hist, acc *histAccum) {
	h.Requests += o.Requests
	h.Errors += o.Errors
	h.Samples += o.Samples
	h.DurationMs += o.DurationMs
	acc.add(o.Keys, o.Weights)
}

// slowThresholds are the slow thresholds of the two windows pooled: for
// each judged level q, the bucket k holding the pooled q-percentile, or the
// nonzero bucket below it when the share of requests above k is further
// from 1 − q (in ratio) — latencies that pile up in a few buckets (a fixed
// delay, a cache) would otherwise leave no request above the threshold, and
// nothing to count.
func slowThresholds(windows ...Hist) [NumLevels]uint16 {
	var out [NumLevels]uint16
	d := denseOf(windows...)
	total := 0.0
	for _, v := range d {
		total += v
	}
	if total <= 0 {
		return out
	}
	for i, level := range JudgedLevels {
		target := 1 - level
		cum, below := 0.0, -1 // below: the last nonzero bucket before k
		cumBelow := 0.0
		for k, v := range d {
			if v == 0 {
				continue
			}
			if cum+v >= level*total*(1-1e-9) {
				out[i] = uint16(k)
				shareK := (total - cum - v) / total
				if below >= 0 {
					shareBelow := (total - cumBelow) / total
					if shareK <= 0 || math.Abs(math.Log(shareBelow/target)) < math.Abs(math.Log(shareK/target)) {
						out[i] = uint16(below)
					}
				}
				break
			}
			cum += v
			below, cumBelow = k, cum
		}
	}
	return out
}

// denseOf is the sum of histograms as a dense array over bucket indices.
func denseOf(hs ...Hist) dense {
	top := -1
	for _, h := range hs {
		for _, k := range h.Keys {
			top = max(top, int(k))
		}
	}
	d := make(dense, top+1)
	for _, h := range hs {
		d.add(h.Keys, h.Weights)
	}
	return d
}

// Thresholds are the slow thresholds of the stratum operation belongs to
// and the unit's; ok is false for an operation NewEvidence was not given.
func (e *Evidence) Thresholds(operation string) (stratum, unit [NumLevels]uint16, ok bool) {
	i, ok := e.byOperation[operation]
	if !ok {
		return stratum, unit, false
	}
	return e.Strata[i].Slow, e.UnitSlow, true
}

// AddMinute adds an operation's counts in one minute (its offset from the
// window's start) to its stratum. Operations NewEvidence was not given and
// minutes outside the window are ignored (data that arrived between the two
// reads).
func (e *Evidence) AddMinute(operation string, after bool, minute int, c MinuteCounts) {
	i, ok := e.byOperation[operation]
	if !ok {
		return
	}
	s := &e.Strata[i]
	ms := s.BeforeMinutes
	if after {
		ms = s.AfterMinutes
	}
	if minute < 0 || minute >= len(ms) {
		return
	}
	m := &ms[minute]
	m.Requests += c.Requests
	m.Errors += c.Errors
	for l := range m.Slow {
		m.Slow[l] += c.Slow[l]
		m.UnitSlow[l] += c.UnitSlow[l]
	}
}

// Windows are the unit's statistics of both windows: all strata together.
func (e *Evidence) Windows() (before, after WindowStats) {
	var b, a []Hist
	for _, s := range e.Strata {
		b, a = append(b, s.Before), append(a, s.After)
	}
	return windowStats(b, e.bucketValue), windowStats(a, e.bucketValue)
}

func windowStats(hs []Hist, bucketValue func(uint16) float64) WindowStats {
	var w WindowStats
	for _, h := range hs {
		w.Requests += h.Requests
		w.Errors += h.Errors
		w.Samples += h.Samples
		w.DurationMs += h.DurationMs
	}
	q := []float64{math.NaN(), math.NaN(), math.NaN(), math.NaN()}
	if bucketValue != nil {
		denseOf(hs...).quantiles([]float64{0.5, 0.9, 0.95, 0.99}, bucketValue, q)
	}
	w.P50Ms, w.P90Ms, w.P95Ms, w.P99Ms = q[0], q[1], q[2], q[3]
	return w
}

// bucketUpper is the upper edge of bucket k: the buckets of the layout are
// log-uniform, each spanning [v·r^−½, v·r^½) around its value v, r the ratio
// of neighbouring values.
func bucketUpper(k uint16, value func(uint16) float64) float64 {
	mid := value(k)
	return mid * math.Sqrt(value(min(k, 65534)+1)/mid)
}

// Operations are the names of every operation the evidence holds, sorted.
func (e *Evidence) Operations() []string {
	out := make([]string, 0, len(e.byOperation))
	for op := range e.byOperation {
		out = append(out, op)
	}
	slices.Sort(out)
	return out
}

// SumOperations is a unit's before and after windows, all operations
// together.
func SumOperations(ops []OperationWindows) (before, after Hist) {
	var b, a histAccum
	for _, op := range ops {
		before.add(op.Before, &b)
		after.add(op.After, &a)
	}
	before.Keys, before.Weights = b.flush()
	after.Keys, after.Weights = a.flush()
	return before, after
}
