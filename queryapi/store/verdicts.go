package store

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/report"
)

// StoredVerdict is a settled verdict changelens-worker stored: the window
// bounds it was computed for, both windows' statistics and the judgement.
type StoredVerdict struct {
	Before, After analysis.Span
	Stats         WindowPair
	Judgement     analysis.Judgement
}

// errUnknownTable is ClickHouse's UNKNOWN_TABLE.
const errUnknownTable = 60

// StoredVerdicts reads the stored verdicts of the deployments ids judged
// with the settings configHash. A database without the table (schema
// before v7) has none.
func (s *Store) StoredVerdicts(ctx context.Context, configHash string, ids []string) (map[string]StoredVerdict, error) {
	out := make(map[string]StoredVerdict, len(ids))
	err := s.storedRows(ctx, "verdicts", configHash, ids, func(id string, before, after analysis.Span, data string) {
		var v StoredVerdict
		var err error
		if v.Stats, v.Judgement, err = DecodeVerdict(data); err != nil {
			return // another version's encoding: computed again
		}
		v.Before, v.After = before, after
		out[id] = v
	})
	return out, err
}

// verdictIDsPerQuery keeps a chunk's IN list (36 bytes an ID) near half of
// the server's default max_query_size.
var verdictIDsPerQuery = 3500

// storedRows reads, with query (verdicts.sql, evidence.sql: the worker's
// per-deployment rows), the rows of the deployments ids stored with the
// settings configHash and hands each to row with its windows. The IDs
// travel as an IN list in the query text, which the server bounds
// (max_query_size, 256 KiB by default: about 7 000 IDs); a year's
// deployments exceed it, so they are asked in chunks. A database without
// the query's table (a schema before it) has no rows.
func (s *Store) storedRows(ctx context.Context, query, configHash string, ids []string, row func(id string, before, after analysis.Span, data string)) error {
	for len(ids) > 0 {
		n := min(len(ids), verdictIDsPerQuery)
		err := s.query(ctx, query, nil, func(rs driver.Rows) error {
			var (
				id                         string
				bStart, bEnd, aStart, aEnd uint32
				data                       string
			)
			if err := rs.Scan(&id, &bStart, &bEnd, &aStart, &aEnd, &data); err != nil {
				return err
			}
			row(id, analysis.Span{Start: unixUTC(bStart), End: unixUTC(bEnd)}, analysis.Span{Start: unixUTC(aStart), End: unixUTC(aEnd)}, data)
			return nil
		},
			clickhouse.Named("config_hash", configHash),
			clickhouse.Named("ids", ids[:n]))
		var ex *clickhouse.Exception
		if errors.As(err, &ex) && ex.Code == errUnknownTable {
			return nil
		}
		if err != nil {
			return err
		}
		ids = ids[n:]
	}
	return nil
}

func unixUTC(s uint32) time.Time { return time.Unix(int64(s), 0).UTC() }

// verdictCodec is the first byte of an encoded verdict. Codecs 1 (the
// per-minute p95 rule), 2 (before controls), 3 (before attribution) and 4
// (before error kinds) are no longer read: their rows are judged again.
const verdictCodec = 5

// EncodeVerdict is the stored form of a verdict's window statistics and
// judgement: a compact little-endian layout (decoded in microseconds — a
// cold DORA report reads hundreds) that keeps every float exactly, NaN and
// infinite ones included, so a recomputed verdict compares equal byte for
// byte. Enumerations are stored by name, never by order number.
func EncodeVerdict(stats WindowPair, j analysis.Judgement) string {
	var e encoder
	e.b = append(e.b, verdictCodec)
	for _, w := range stats {
		for _, x := range []float64{w.Requests, w.Errors, w.Samples, w.DurationMs, w.P50Ms, w.P90Ms, w.P95Ms, w.P99Ms} {
			e.f(x)
		}
	}
	e.str(j.Verdict.String())
	e.uv(uint64(len(j.Regressions)))
	for _, r := range j.Regressions {
		e.str(r.String())
	}
	e.f(j.RequestsNeeded)
	e.metrics(j.Metrics)
	e.uv(uint64(len(j.Operations)))
	for _, o := range j.Operations {
		e.str(o.Operation)
		e.flag(o.Remainder)
		e.uv(uint64(max(o.Operations, 0)))
		e.f(o.BeforeRequests)
		e.f(o.AfterRequests)
		e.flag(o.Judged)
		e.str(o.Verdict.String())
		e.uv(uint64(max(o.Rank, 0)))
		e.metrics(o.Metrics)
	}
	e.str(j.Control.Kind)
	e.uv(uint64(len(j.Control.Series)))
	for _, s := range j.Control.Series {
		e.str(s)
	}
	e.uv(uint64(len(j.Control.Shifts)))
	for _, s := range j.Control.Shifts {
		e.str(s.Metric)
		e.f(s.Change)
		e.f(s.CILow)
		e.f(s.CIHigh)
	}
	e.uv(uint64(len(j.Attribution.Causes)))
	for _, c := range j.Attribution.Causes {
		e.cause(c)
	}
	e.flag(j.Cause != nil)
	if j.Cause != nil {
		e.cause(*j.Cause)
	}
	e.uv(uint64(len(j.Attribution.Neighbours)))
	for _, n := range j.Attribution.Neighbours {
		e.str(n.Service)
		e.str(n.Environment)
		e.flag(n.Callee)
		for _, x := range []float64{n.CallsPerMinuteBefore, n.CallsPerMinuteAfter, n.MeanMsBefore, n.MeanMsAfter, n.ErrorRateBefore, n.ErrorRateAfter} {
			e.f(x)
		}
		e.uv(uint64(len(n.Deployments)))
		for _, id := range n.Deployments {
			e.str(id)
		}
	}
	e.flag(j.ErrorKinds != nil)
	if k := j.ErrorKinds; k != nil {
		e.flag(k.Tested)
		e.flag(k.NewErrorKind)
		for _, x := range []float64{k.BeforeRequests, k.AfterRequests, k.HistoryRequests, k.MDE} {
			e.f(x)
		}
		e.uv(uint64(max(k.Family, 0)))
		e.str(k.Explanation)
		e.uv(uint64(len(k.Kinds)))
		for _, f := range k.Kinds {
			e.str(f.Kind)
			e.flag(f.Folded)
			e.flag(f.New)
			e.str(f.Verdict.String())
			for _, x := range []float64{f.Before, f.After, f.BeforeRate, f.AfterRate, f.RateLow, f.RateHigh, f.RateRatio, f.RatioLow,
				f.RatioHigh, f.Phi, f.PValue, f.AdjustedPValue} {
				e.f(x)
			}
			e.uv(uint64(max(f.Minutes, 0)))
			e.str(f.Test)
			e.str(f.FirstTraceID)
			e.flag(!f.FirstSeen.IsZero())
			if !f.FirstSeen.IsZero() {
				e.uv(uint64(f.FirstSeen.UnixNano()))
			}
		}
	}
	return string(e.b)
}

func (e *encoder) cause(c report.Cause) {
	e.str(c.Kind.String())
	for _, x := range []string{c.DeploymentID, c.Service, c.Environment, c.Version, c.Flag, c.Variant, c.Metric} {
		e.str(x)
	}
	e.uv(uint64(c.Start.UnixNano()))
	e.uv(uint64(c.End.UnixNano()))
	for _, x := range []float64{c.Before, c.After, c.Explained, c.Share, c.Z} {
		e.f(x)
	}
	e.flag(c.Significant)
	e.uv(uint64(max(c.Rank, 0)))
}

func (d *decoder) cause() report.Cause {
	var c report.Cause
	var ok bool
	if c.Kind, ok = report.ParseCauseKind(d.str()); !ok {
		d.bad = true
	}
	for _, x := range []*string{&c.DeploymentID, &c.Service, &c.Environment, &c.Version, &c.Flag, &c.Variant, &c.Metric} {
		*x = d.str()
	}
	c.Start = time.Unix(0, int64(d.uv())).UTC()
	c.End = time.Unix(0, int64(d.uv())).UTC()
	for _, x := range []*float64{&c.Before, &c.After, &c.Explained, &c.Share, &c.Z} {
		*x = d.f()
	}
	c.Significant = d.flag()
	c.Rank = int(min(d.uv(), 1<<31))
	return c
}

type encoder struct{ b []byte }

func (e *encoder) f(x float64)  { e.b = binary.LittleEndian.AppendUint64(e.b, math.Float64bits(x)) }
func (e *encoder) uv(x uint64)  { e.b = binary.AppendUvarint(e.b, x) }
func (e *encoder) str(x string) { e.uv(uint64(len(x))); e.b = append(e.b, x...) }
func (e *encoder) flag(x bool) {
	if x {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

func (e *encoder) metrics(ms []report.ImpactMetric) {
	e.uv(uint64(len(ms)))
	for _, m := range ms {
		e.str(m.Metric)
		for _, x := range []float64{m.Before, m.After, m.RelativeChange, m.CILow, m.CIHigh, m.MDE, m.MDEValue, m.PValue, m.AdjustedPValue, m.Z,
			m.RawChange, m.ControlChange} {
			e.f(x)
		}
		e.str(m.Test)
		e.str(m.Verdict.String())
	}
}

// errVerdictCodec: data that EncodeVerdict did not write.
var errVerdictCodec = errors.New("store: not an encoded verdict")

// decoder reads what encoder wrote; any shortfall sets bad.
type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) need(n int) bool {
	if d.bad || n < 0 || len(d.b) < n {
		d.bad = true
		return false
	}
	return true
}

func (d *decoder) f() float64 {
	if !d.need(8) {
		return 0
	}
	x := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
	d.b = d.b[8:]
	return x
}

func (d *decoder) uv() uint64 {
	x, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.b = d.b[n:]
	return x
}

// count reads a length that at least min bytes each must follow.
func (d *decoder) count(min int) int {
	n := d.uv()
	if n > uint64(len(d.b)/min) {
		d.bad = true
		return 0
	}
	return int(n)
}

func (d *decoder) str() string {
	n := d.uv()
	if n > uint64(len(d.b)) {
		d.bad = true
		return ""
	}
	x := string(d.b[:n])
	d.b = d.b[n:]
	return x
}

func (d *decoder) flag() bool {
	if !d.need(1) {
		return false
	}
	x := d.b[0]
	d.b = d.b[1:]
	if x > 1 {
		d.bad = true
	}
	return x == 1
}

func (d *decoder) compareVerdict() report.CompareVerdict {
	v, ok := report.ParseCompareVerdict(d.str())
	if !ok {
		d.bad = true
	}
	return v
}

func (d *decoder) metrics() []report.ImpactMetric {
	n := d.count(1 + 12*8 + 2)
	if n == 0 {
		return nil
	}
	ms := make([]report.ImpactMetric, n)
	for i := range ms {
		m := &ms[i]
		m.Metric = d.str()
		for _, x := range []*float64{&m.Before, &m.After, &m.RelativeChange, &m.CILow, &m.CIHigh, &m.MDE, &m.MDEValue, &m.PValue, &m.AdjustedPValue, &m.Z,
			&m.RawChange, &m.ControlChange} {
			*x = d.f()
		}
		m.Test = d.str()
		m.Verdict = d.compareVerdict()
	}
	return ms
}

// DecodeVerdict reads what EncodeVerdict wrote.
func DecodeVerdict(s string) (stats WindowPair, j analysis.Judgement, err error) {
	d := &decoder{b: []byte(s)}
	if !d.need(1) || d.b[0] != verdictCodec {
		return stats, j, errVerdictCodec
	}
	d.b = d.b[1:]
	for i := range stats {
		w := &stats[i]
		for _, x := range []*float64{&w.Requests, &w.Errors, &w.Samples, &w.DurationMs, &w.P50Ms, &w.P90Ms, &w.P95Ms, &w.P99Ms} {
			*x = d.f()
		}
	}
	var ok bool
	if j.Verdict, ok = report.ParseVerdict(d.str()); !ok {
		d.bad = true
	}
	for range d.count(1) {
		r, ok := report.ParseFailureReason(d.str())
		if !ok {
			d.bad = true
		}
		j.Regressions = append(j.Regressions, r)
	}
	j.RequestsNeeded = d.f()
	j.Metrics = d.metrics()
	if n := d.count(1 + 1 + 1 + 16 + 1 + 2 + 1 + 1); n > 0 {
		j.Operations = make([]report.OperationImpact, n)
		for i := range j.Operations {
			o := &j.Operations[i]
			o.Operation = d.str()
			o.Remainder = d.flag()
			o.Operations = int(min(d.uv(), 1<<31))
			o.BeforeRequests, o.AfterRequests = d.f(), d.f()
			o.Judged = d.flag()
			o.Verdict = d.compareVerdict()
			o.Rank = int(min(d.uv(), 1<<31))
			o.Metrics = d.metrics()
		}
	}
	j.Control.Kind = d.str()
	for range d.count(1) {
		j.Control.Series = append(j.Control.Series, d.str())
	}
	for range d.count(1 + 3*8) {
		j.Control.Shifts = append(j.Control.Shifts, report.ControlShift{Metric: d.str(), Change: d.f(), CILow: d.f(), CIHigh: d.f()})
	}
	const minCause = 1 + 8 + 2 + 5*8 + 2
	for range d.count(minCause) {
		j.Attribution.Causes = append(j.Attribution.Causes, d.cause())
	}
	if d.flag() {
		c := d.cause()
		j.Cause = &c
	}
	for range d.count(3 + 6*8 + 1) {
		n := report.Neighbour{Service: d.str(), Environment: d.str(), Callee: d.flag()}
		for _, x := range []*float64{&n.CallsPerMinuteBefore, &n.CallsPerMinuteAfter, &n.MeanMsBefore, &n.MeanMsAfter, &n.ErrorRateBefore, &n.ErrorRateAfter} {
			*x = d.f()
		}
		for range d.count(1) {
			n.Deployments = append(n.Deployments, d.str())
		}
		j.Attribution.Neighbours = append(j.Attribution.Neighbours, n)
	}
	if d.flag() {
		k := &analysis.ErrorKindJudgement{Tested: d.flag(), NewErrorKind: d.flag()}
		for _, x := range []*float64{&k.BeforeRequests, &k.AfterRequests, &k.HistoryRequests, &k.MDE} {
			*x = d.f()
		}
		k.Family = int(min(d.uv(), 1<<31))
		k.Explanation = d.str()
		if n := d.count(1 + 2 + 1 + 12*8 + 1 + 1 + 1 + 1); n > 0 {
			k.Kinds = make([]analysis.ErrorKindFinding, n)
			for i := range k.Kinds {
				f := &k.Kinds[i]
				f.Kind = d.str()
				f.Folded, f.New = d.flag(), d.flag()
				f.Verdict = d.compareVerdict()
				for _, x := range []*float64{&f.Before, &f.After, &f.BeforeRate, &f.AfterRate, &f.RateLow, &f.RateHigh, &f.RateRatio, &f.RatioLow,
					&f.RatioHigh, &f.Phi, &f.PValue, &f.AdjustedPValue} {
					*x = d.f()
				}
				f.Minutes = int(min(d.uv(), 1<<31))
				f.Test = d.str()
				f.FirstTraceID = d.str()
				if d.flag() {
					f.FirstSeen = time.Unix(0, int64(d.uv())).UTC()
				}
			}
		}
		j.ErrorKinds = k
	}
	if d.bad || len(d.b) != 0 {
		return WindowPair{}, analysis.Judgement{}, errVerdictCodec
	}
	return stats, j, nil
}
