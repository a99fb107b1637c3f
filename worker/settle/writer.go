package settle

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/changelens/changelens/internal/schema"
	"github.com/changelens/changelens/queryapi/store"
	"github.com/changelens/changelens/queryapi/usecase"
	"github.com/changelens/changelens/worker/notify"
)

// Writer writes the worker's tables (schema v7): deployment_verdicts and
// notification_log. It needs a ClickHouse user allowed to INSERT into them
// (and to SELECT).
type Writer struct {
	conn driver.Conn
	o    schema.Options
}

// NewWriter writes through conn into the tables of o.
func NewWriter(conn driver.Conn, o schema.Options) *Writer { return &Writer{conn: conn, o: o} }

// StoreVerdicts inserts one row per settled deployment, keyed by hash; ver
// (the insert time in ns) makes the newest row win for readers.
func (w *Writer) StoreVerdicts(ctx context.Context, hash string, vs []usecase.Settled, now time.Time) error {
	if len(vs) == 0 {
		return nil
	}
	b, err := w.conn.PrepareBatch(ctx, "INSERT INTO "+w.o.InsertTable(schema.TableVerdicts)+
		" (deployment_id, config_hash, service, environment, version, before_start, before_end, after_start, after_end,"+
		" verdict, stats, judgement, settled_at, ver)")
	if err != nil {
		return err
	}
	defer func() { _ = b.Abort() }()
	for i, v := range vs {
		stats, err := store.EncodeVerdict(v.Stats)
		if err != nil {
			return err
		}
		j, err := store.EncodeVerdict(v.Judgement)
		if err != nil {
			return err
		}
		d := v.Impact.Deployment
		if err := b.Append(d.ID, hash, d.Service, d.Environment, d.Version, v.Before.Start, v.Before.End, v.After.Start, v.After.End,
			notify.VerdictName(d.Verdict), stats, j, now, uint64(now.UnixNano())+uint64(i)); err != nil {
			return fmt.Errorf("settle: encoding verdict %s: %w", d.ID, err)
		}
	}
	return b.Send()
}

// Delivered implements notify.Log.
func (w *Writer) Delivered(ctx context.Context, keys []string) (map[string]bool, error) {
	out := make(map[string]bool, len(keys))
	rows, err := w.conn.Query(ctx, "SELECT DISTINCT idempotency_key FROM "+w.o.InsertTable(schema.TableNotifications)+
		" WHERE has(@keys, idempotency_key)", clickhouse.Named("keys", keys))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		out[k] = true
	}
	return out, rows.Err()
}

// Record implements notify.Log.
func (w *Writer) Record(ctx context.Context, d notify.Delivery) error {
	b, err := w.conn.PrepareBatch(ctx, "INSERT INTO "+w.o.InsertTable(schema.TableNotifications)+
		" (idempotency_key, target, deployment_id, verdict, delivered_at, attempts)")
	if err != nil {
		return err
	}
	defer func() { _ = b.Abort() }()
	if err := b.Append(d.Key, d.Target, d.DeploymentID, string(d.Kind), d.At, uint32(d.Attempts)); err != nil {
		return err
	}
	return b.Send()
}
