package store

import (
	"context"
	"errors"
	"time"

	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/report"
)

// Evidence is what a deployment's impact shows beside its verdict and costs
// reads of its own: the canary comparison and the service graph around the
// unit. changelens-worker stores it for settled deployments (schema v17),
// so that an impact request reads one row instead of computing it.
type Evidence struct {
	// The windows and the deployment's versions and rollout start it was
	// computed for: a reader uses it only when they are still those.
	Before, After            analysis.Span
	Version, PreviousVersion string
	RolloutStart             time.Time
	// Canary: nil when the versions never served in the same minute.
	Canary *report.Comparison
	// WithNeighbours: Neighbours were computed (the judgement itself held
	// none); without, the judgement's attribution carries them.
	WithNeighbours bool
	Neighbours     []report.Neighbour
}

// StoredEvidence reads the stored evidence of the deployments ids judged
// with the settings configHash. A database without the table (schema
// before v17) has none.
func (s *Store) StoredEvidence(ctx context.Context, configHash string, ids []string) (map[string]Evidence, error) {
	out := make(map[string]Evidence, len(ids))
	err := s.storedRows(ctx, "evidence", configHash, ids, func(id string, before, after analysis.Span, data string) {
		e, err := DecodeEvidence(data)
		if err != nil {
			return // another version's encoding: computed live
		}
		e.Before, e.After = before, after
		out[id] = e
	})
	return out, err
}

// evidenceCodec is the first byte of encoded evidence; another value is
// not read (the evidence is computed live until the worker stores it
// again).
const evidenceCodec = 1

// EncodeEvidence is the stored form of e's versions, rollout start, canary
// and neighbours (the windows are columns of their own): the verdict's
// compact layout, every float kept exactly and enumerations by name. A
// slice's length is stored plus one, 0 standing for nil, so that what is
// read back is what was computed, nil and empty alike.
func EncodeEvidence(e Evidence) string {
	var w encoder
	w.b = append(w.b, evidenceCodec)
	w.str(e.Version)
	w.str(e.PreviousVersion)
	w.flag(!e.RolloutStart.IsZero())
	if !e.RolloutStart.IsZero() {
		w.uv(uint64(e.RolloutStart.UnixNano()))
	}
	w.flag(e.Canary != nil)
	if c := e.Canary; c != nil {
		w.comparison(c.Control, c.Treatment, c.OverlapMinutes, c.Metrics, c.Verdict)
		w.flag(c.SRM != nil)
		if r := c.SRM; r != nil {
			w.f(r.ExpectedShare)
			w.f(r.ObservedShare)
			w.f(r.PValue)
			w.flag(r.Mismatch)
		}
		w.length(len(c.Operations), c.Operations == nil)
		for _, o := range c.Operations {
			w.str(o.Operation)
			w.comparison(o.Control, o.Treatment, o.OverlapMinutes, o.Metrics, o.Verdict)
		}
		w.flag(c.ErrorKinds != nil)
		if k := c.ErrorKinds; k != nil {
			w.flag(k.Tested)
			w.flag(k.NewErrorKind)
			for _, x := range []float64{k.BeforeRequests, k.AfterRequests, k.HistoryRequests, k.MDE} {
				w.f(x)
			}
			w.uv(uint64(max(k.Family, 0)))
			w.errorKinds(k.New)
			w.errorKinds(k.Rose)
			w.str(k.Explanation)
		}
	}
	w.flag(e.WithNeighbours)
	w.length(len(e.Neighbours), e.Neighbours == nil)
	for _, n := range e.Neighbours {
		w.str(n.Service)
		w.str(n.Environment)
		w.flag(n.Callee)
		for _, x := range []float64{n.CallsPerMinuteBefore, n.CallsPerMinuteAfter, n.MeanMsBefore, n.MeanMsAfter, n.ErrorRateBefore, n.ErrorRateAfter} {
			w.f(x)
		}
		w.length(len(n.Deployments), n.Deployments == nil)
		for _, id := range n.Deployments {
			w.str(id)
		}
	}
	return string(w.b)
}

func (e *encoder) length(n int, isNil bool) {
	if isNil {
		e.uv(0)
		return
	}
	e.uv(uint64(n) + 1)
}

// comparison is what a unit's comparison and each operation's share.
func (e *encoder) comparison(control, treatment report.Cohort, overlap int, ms []report.CompareMetric, v report.CompareVerdict) {
	e.cohort(control)
	e.cohort(treatment)
	e.uv(uint64(max(overlap, 0)))
	e.compareMetrics(ms)
	e.str(v.String())
}

func (e *encoder) cohort(c report.Cohort) {
	e.str(c.Value)
	e.f(c.Requests)
	e.f(c.Share)
	e.str(c.SlowestTraceID)
	e.str(c.FailedTraceID)
}

func (e *encoder) compareMetrics(ms []report.CompareMetric) {
	e.length(len(ms), ms == nil)
	for _, m := range ms {
		e.str(m.Metric)
		for _, x := range []float64{m.Control, m.Treatment, m.RelativeChange, m.CILow, m.CIHigh, m.PValue} {
			e.f(x)
		}
		e.str(m.Test)
		e.str(m.Verdict.String())
	}
}

func (e *encoder) errorKinds(ks []report.ErrorKind) {
	e.length(len(ks), ks == nil)
	for _, k := range ks {
		e.str(k.Kind)
		e.flag(k.Folded)
		e.flag(k.New)
		e.str(k.Verdict.String())
		for _, x := range []float64{k.Before, k.After, k.BeforeRate, k.AfterRate, k.RateLow, k.RateHigh, k.RateRatio, k.RatioLow, k.RatioHigh, k.Phi} {
			e.f(x)
		}
		e.uv(uint64(max(k.Minutes, 0)))
		e.f(k.PValue)
		e.f(k.AdjustedPValue)
		e.str(k.Test)
		e.str(k.FirstTraceID)
		e.flag(!k.FirstSeen.IsZero())
		if !k.FirstSeen.IsZero() {
			e.uv(uint64(k.FirstSeen.UnixNano()))
		}
	}
}

// length reads what encoder.length wrote: -1 for nil, else a count that at
// least min bytes each must follow.
func (d *decoder) length(min int) int {
	n := d.uv()
	if n == 0 {
		return -1
	}
	if n-1 > uint64(len(d.b)/min) {
		d.bad = true
		return -1
	}
	return int(n - 1)
}

// comparison reads what encoder.comparison wrote, in its order.
func (d *decoder) comparison() (control, treatment report.Cohort, overlap int, ms []report.CompareMetric, v report.CompareVerdict) {
	control = d.cohort()
	treatment = d.cohort()
	overlap = int(min(d.uv(), 1<<31))
	ms = d.compareMetrics()
	v = d.compareVerdict()
	return
}

func (d *decoder) cohort() report.Cohort {
	return report.Cohort{Value: d.str(), Requests: d.f(), Share: d.f(), SlowestTraceID: d.str(), FailedTraceID: d.str()}
}

func (d *decoder) compareMetrics() []report.CompareMetric {
	n := d.length(1 + 6*8 + 2)
	if n < 0 {
		return nil
	}
	ms := make([]report.CompareMetric, n)
	for i := range ms {
		m := &ms[i]
		m.Metric = d.str()
		for _, x := range []*float64{&m.Control, &m.Treatment, &m.RelativeChange, &m.CILow, &m.CIHigh, &m.PValue} {
			*x = d.f()
		}
		m.Test = d.str()
		m.Verdict = d.compareVerdict()
	}
	return ms
}

func (d *decoder) errorKinds() []report.ErrorKind {
	n := d.length(1 + 2 + 1 + 12*8 + 1 + 1 + 1 + 1)
	if n < 0 {
		return nil
	}
	ks := make([]report.ErrorKind, n)
	for i := range ks {
		k := &ks[i]
		k.Kind = d.str()
		k.Folded, k.New = d.flag(), d.flag()
		k.Verdict = d.compareVerdict()
		for _, x := range []*float64{&k.Before, &k.After, &k.BeforeRate, &k.AfterRate, &k.RateLow, &k.RateHigh, &k.RateRatio, &k.RatioLow, &k.RatioHigh, &k.Phi} {
			*x = d.f()
		}
		k.Minutes = int(min(d.uv(), 1<<31))
		k.PValue, k.AdjustedPValue = d.f(), d.f()
		k.Test = d.str()
		k.FirstTraceID = d.str()
		if d.flag() {
			k.FirstSeen = time.Unix(0, int64(d.uv())).UTC()
		}
	}
	return ks
}

// errEvidenceCodec: data that EncodeEvidence did not write.
var errEvidenceCodec = errors.New("store: not encoded evidence")

// DecodeEvidence reads what EncodeEvidence wrote (the windows are left
// zero).
func DecodeEvidence(s string) (Evidence, error) {
	d := &decoder{b: []byte(s)}
	if !d.need(1) || d.b[0] != evidenceCodec {
		return Evidence{}, errEvidenceCodec
	}
	d.b = d.b[1:]
	var e Evidence
	e.Version = d.str()
	e.PreviousVersion = d.str()
	if d.flag() {
		e.RolloutStart = time.Unix(0, int64(d.uv())).UTC()
	}
	if d.flag() {
		c := &report.Comparison{}
		c.Control, c.Treatment, c.OverlapMinutes, c.Metrics, c.Verdict = d.comparison()
		if d.flag() {
			c.SRM = &report.SampleRatio{ExpectedShare: d.f(), ObservedShare: d.f(), PValue: d.f(), Mismatch: d.flag()}
		}
		if n := d.length(1 + 2*(1+2*8+2) + 1 + 1 + 1); n >= 0 {
			c.Operations = make([]report.OperationComparison, n)
			for i := range c.Operations {
				o := &c.Operations[i]
				o.Operation = d.str()
				o.Control, o.Treatment, o.OverlapMinutes, o.Metrics, o.Verdict = d.comparison()
			}
		}
		if d.flag() {
			k := &report.ErrorKinds{Tested: d.flag(), NewErrorKind: d.flag()}
			for _, x := range []*float64{&k.BeforeRequests, &k.AfterRequests, &k.HistoryRequests, &k.MDE} {
				*x = d.f()
			}
			k.Family = int(min(d.uv(), 1<<31))
			k.New = d.errorKinds()
			k.Rose = d.errorKinds()
			k.Explanation = d.str()
			c.ErrorKinds = k
		}
		e.Canary = c
	}
	e.WithNeighbours = d.flag()
	if n := d.length(3 + 6*8 + 1); n >= 0 {
		e.Neighbours = make([]report.Neighbour, n)
		for i := range e.Neighbours {
			nb := &e.Neighbours[i]
			nb.Service, nb.Environment, nb.Callee = d.str(), d.str(), d.flag()
			for _, x := range []*float64{&nb.CallsPerMinuteBefore, &nb.CallsPerMinuteAfter, &nb.MeanMsBefore, &nb.MeanMsAfter, &nb.ErrorRateBefore, &nb.ErrorRateAfter} {
				*x = d.f()
			}
			if m := d.length(1); m >= 0 {
				nb.Deployments = make([]string, m)
				for j := range nb.Deployments {
					nb.Deployments[j] = d.str()
				}
			}
		}
	}
	if d.bad || len(d.b) != 0 {
		return Evidence{}, errEvidenceCodec
	}
	return e, nil
}
