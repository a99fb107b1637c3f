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

// verdictCodec is the first byte of an encoded verdict.
const verdictCodec = 1

// EncodeVerdict is the stored form of a verdict's window statistics and
// judgement: a compact little-endian layout (a few hundred bytes, decoded
// in a microsecond — a cold DORA report reads hundreds) that keeps every
// float exactly, NaN percentiles of an empty window included, so a
// recomputed verdict compares equal byte for byte.
func EncodeVerdict(stats WindowPair, j analysis.Judgement) string {
	var b []byte
	f := func(x float64) { b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x)) }
	str := func(x string) { b = binary.AppendUvarint(b, uint64(len(x))); b = append(b, x...) }
	flag := func(x bool) {
		if x {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
	}
	b = append(b, verdictCodec)
	for _, w := range stats {
		for _, x := range []float64{w.Requests, w.Errors, w.P50Ms, w.P90Ms, w.P95Ms, w.P99Ms} {
			f(x)
		}
		b = binary.AppendUvarint(b, uint64(len(w.MinuteP95Ms)))
		for _, x := range w.MinuteP95Ms {
			f(x)
		}
	}
	flag(j.Complete)
	b = binary.AppendVarint(b, int64(j.Verdict))
	b = binary.AppendUvarint(b, uint64(len(j.Regressions)))
	for _, r := range j.Regressions {
		b = binary.AppendVarint(b, int64(r))
	}
	for _, t := range []report.Test{j.LatencyTest, j.ErrorRateTest} {
		str(t.Name)
		f(t.Statistic)
		f(t.PValue)
		flag(t.Significant)
		str(t.Direction)
	}
	f(j.LatencyRatio)
	f(j.ErrorRateDelta)
	return string(b)
}

// errVerdictCodec: data that EncodeVerdict did not write.
var errVerdictCodec = errors.New("store: not an encoded verdict")

// DecodeVerdict reads what EncodeVerdict wrote.
func DecodeVerdict(s string) (stats WindowPair, j analysis.Judgement, err error) {
	b := []byte(s)
	bad := false
	need := func(n int) bool {
		if bad || len(b) < n {
			bad = true
			return false
		}
		return true
	}
	f := func() float64 {
		if !need(8) {
			return 0
		}
		x := math.Float64frombits(binary.LittleEndian.Uint64(b))
		b = b[8:]
		return x
	}
	uv := func() uint64 {
		x, n := binary.Uvarint(b)
		if n <= 0 {
			bad = true
			return 0
		}
		b = b[n:]
		return x
	}
	v := func() int64 {
		x, n := binary.Varint(b)
		if n <= 0 {
			bad = true
			return 0
		}
		b = b[n:]
		return x
	}
	str := func() string {
		n := uv()
		if !need(int(min(n, uint64(len(b))+1))) {
			return ""
		}
		x := string(b[:n])
		b = b[n:]
		return x
	}
	flag := func() bool {
		if !need(1) {
			return false
		}
		x := b[0] == 1
		b = b[1:]
		return x
	}
	if !need(1) || b[0] != verdictCodec {
		return stats, j, errVerdictCodec
	}
	b = b[1:]
	for i := range stats {
		w := &stats[i]
		w.Requests, w.Errors, w.P50Ms, w.P90Ms, w.P95Ms, w.P99Ms = f(), f(), f(), f(), f(), f()
		n := uv()
		if n > uint64(len(b))/8 {
			return stats, j, errVerdictCodec
		}
		if n > 0 {
			w.MinuteP95Ms = make([]float64, n)
			for k := range w.MinuteP95Ms {
				w.MinuteP95Ms[k] = f()
			}
		}
	}
	j.Complete = flag()
	j.Verdict = report.Verdict(v())
	n := uv()
	if n > uint64(len(b)) {
		return stats, j, errVerdictCodec
	}
	for range n {
		j.Regressions = append(j.Regressions, report.FailureReason(v()))
	}
	for _, t := range []*report.Test{&j.LatencyTest, &j.ErrorRateTest} {
		t.Name, t.Statistic, t.PValue, t.Significant, t.Direction = str(), f(), f(), flag(), str()
	}
	j.LatencyRatio, j.ErrorRateDelta = f(), f()
	if bad || len(b) != 0 {
		return WindowPair{}, analysis.Judgement{}, errVerdictCodec
	}
	return stats, j, nil
}
