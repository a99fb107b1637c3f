package store

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/changelens/changelens/queryapi/analysis"
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
			stats, judgement           string
			v                          StoredVerdict
		)
		if err := rs.Scan(&id, &bStart, &bEnd, &aStart, &aEnd, &stats, &judgement); err != nil {
			return err
		}
		if DecodeVerdict(stats, &v.Stats) != nil || DecodeVerdict(judgement, &v.Judgement) != nil {
			return nil // unreadable (another version's encoding): computed again
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

// EncodeVerdict is the stored form of a verdict's statistics or judgement:
// gob, which keeps every float (NaN percentiles of an empty window
// included) exactly, so a recomputed verdict compares equal byte for byte.
func EncodeVerdict(v any) (string, error) {
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(v); err != nil {
		return "", err
	}
	return b.String(), nil
}

// DecodeVerdict reads what EncodeVerdict wrote into v (a pointer).
func DecodeVerdict(s string, v any) error { return gob.NewDecoder(strings.NewReader(s)).Decode(v) }
