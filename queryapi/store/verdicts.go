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
	if len(ids) == 0 {
		return out, nil
	}
	err := s.query(ctx, "verdicts", nil, func(rs driver.Rows) error {
		var (
			id                         string
			bStart, bEnd, aStart, aEnd uint32
			data                       string
			v                          StoredVerdict
			err                        error
		)
		if err := rs.Scan(&id, &bStart, &bEnd, &aStart, &aEnd, &data); err != nil {
			return err
		}
		if v.Stats, v.Judgement, err = DecodeVerdict(data); err != nil {
			return nil // another version's encoding: computed again
		}
		v.Before = analysis.Span{Start: unixUTC(bStart), End: unixUTC(bEnd)}
		v.After = analysis.Span{Start: unixUTC(aStart), End: unixUTC(aEnd)}
		out[id] = v
		return nil
	},
		clickhouse.Named("config_hash", configHash),
		clickhouse.Named("ids", ids))
	var ex *clickhouse.Exception
	if errors.As(err, &ex) && ex.Code == errUnknownTable {
		return out, nil
	}
	return out, err
}

func unixUTC(s uint32) time.Time { return time.Unix(int64(s), 0).UTC() }

// verdictCodec is the first byte of an encoded verdict. Codecs 1 (the
// per-minute p95 rule) and 2 (before controls) are no longer read: their
// rows are judged again.
const verdictCodec = 3

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
	return string(e.b)
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
	if d.bad || len(d.b) != 0 {
		return WindowPair{}, analysis.Judgement{}, errVerdictCodec
	}
	return stats, j, nil
}
