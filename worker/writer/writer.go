// Package writer writes the worker's tables (schema v7): the settled
// verdicts of deployments (deployment_verdicts), their impact evidence
// (deployment_evidence, v17), the notifications delivered
// (notification_log), the experiment definitions (experiments, v16) and
// the settled version episodes (version_episodes, v19).
// It needs a ClickHouse user allowed to INSERT into them (and to SELECT).
package writer

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/changelens/changelens/internal/schema"
	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/store"
	"github.com/changelens/changelens/worker/notify"
)

// Writer writes the worker's tables.
type Writer struct {
	conn driver.Conn
	o    schema.Options
}

// New writes through conn into the tables of o.
func New(conn driver.Conn, o schema.Options) *Writer { return &Writer{conn: conn, o: o} }

// Verdict is one deployment's settled verdict.
type Verdict struct {
	ID, Service, Environment, Version string
	Verdict                           report.Verdict
	Before, After                     analysis.Span // the minute windows the statistics cover
	Stats                             store.WindowPair
	Judgement                         analysis.Judgement
}

// StoreVerdicts inserts one row per verdict, keyed by the analysis
// settings' hash; ver (the insert time in ns) makes the newest row win for
// readers.
func (w *Writer) StoreVerdicts(ctx context.Context, hash string, vs []Verdict, now time.Time) error {
	if len(vs) == 0 {
		return nil
	}
	b, err := w.conn.PrepareBatch(ctx, "INSERT INTO "+w.o.InsertTable(schema.TableVerdicts)+
		" (deployment_id, config_hash, service, environment, version, before_start, before_end, after_start, after_end,"+
		" verdict, data, settled_at, ver)")
	if err != nil {
		return err
	}
	defer func() { _ = b.Abort() }()
	for i, v := range vs {
		if err := b.Append(v.ID, hash, v.Service, v.Environment, v.Version, v.Before.Start, v.Before.End, v.After.Start, v.After.End,
			v.Verdict.String(), store.EncodeVerdict(v.Stats, v.Judgement), now, uint64(now.UnixNano())+uint64(i)); err != nil {
			return fmt.Errorf("writer: encoding verdict %s: %w", v.ID, err)
		}
	}
	return b.Send()
}

// Evidence is one settled deployment's impact evidence (schema v17).
type Evidence struct {
	ID, Service, Environment string
	Evidence                 store.Evidence
}

// StoreEvidence inserts one row per deployment, keyed like the verdicts;
// ver (the insert time in ns) makes the newest row win for readers.
func (w *Writer) StoreEvidence(ctx context.Context, hash string, es []Evidence, now time.Time) error {
	if len(es) == 0 {
		return nil
	}
	b, err := w.conn.PrepareBatch(ctx, "INSERT INTO "+w.o.InsertTable(schema.TableEvidence)+
		" (deployment_id, config_hash, service, environment, version, before_start, before_end, after_start, after_end,"+
		" data, settled_at, ver)")
	if err != nil {
		return err
	}
	defer func() { _ = b.Abort() }()
	for i, e := range es {
		v := e.Evidence
		if err := b.Append(e.ID, hash, e.Service, e.Environment, v.Version, v.Before.Start, v.Before.End, v.After.Start, v.After.End,
			store.EncodeEvidence(v), now, uint64(now.UnixNano())+uint64(i)); err != nil {
			return fmt.Errorf("writer: encoding evidence %s: %w", e.ID, err)
		}
	}
	return b.Send()
}

// StoreEpisodes inserts one snapshot of settled version episodes: a row
// per unit of units, each carrying upTo (the snapshot: the episodes of the
// buckets before it), reappear (the setting they were split with) and the
// number of units, by which readers know the snapshot is whole. One
// insert: on one server the rows appear together.
func (w *Writer) StoreEpisodes(ctx context.Context, reappear time.Duration, upTo time.Time, units map[store.UnitFilter]store.UnitEpisodes, now time.Time) error {
	if len(units) == 0 {
		return nil
	}
	b, err := w.conn.PrepareBatch(ctx, "INSERT INTO "+w.o.InsertTable(schema.TableVersionEpisodes)+
		" (reappear_ns, service, environment, up_to, units, versions, firsts, lasts, written_at)")
	if err != nil {
		return err
	}
	defer func() { _ = b.Abort() }()
	for u, eps := range units {
		versions, firsts, lasts := store.FlattenEpisodes(eps)
		if err := b.Append(int64(reappear), u.Service, u.Environment, upTo, uint32(len(units)), versions, firsts, lasts, now); err != nil {
			return fmt.Errorf("writer: encoding the episodes of %s/%s: %w", u.Service, u.Environment, err)
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

// Experiment is one revision of an experiment definition (schema v16).
type Experiment struct {
	ID, Service, Environment string
	Definition               string // the validated definition as JSON
	Hash                     string // SHA-256 of Definition
	Source                   string // the file it came from
}

// StoreExperiments inserts one row per revision; ver (the insert time in
// ns) makes the newest revision win for readers.
func (w *Writer) StoreExperiments(ctx context.Context, es []Experiment, now time.Time) error {
	if len(es) == 0 {
		return nil
	}
	b, err := w.conn.PrepareBatch(ctx, "INSERT INTO "+w.o.InsertTable(schema.TableExperiments)+
		" (id, service, environment, definition, definition_hash, source, applied_at, ver)")
	if err != nil {
		return err
	}
	defer func() { _ = b.Abort() }()
	for i, e := range es {
		if err := b.Append(e.ID, e.Service, e.Environment, e.Definition, e.Hash, e.Source, now,
			uint64(now.UnixNano())+uint64(i)); err != nil {
			return fmt.Errorf("writer: encoding experiment %s: %w", e.ID, err)
		}
	}
	return b.Send()
}
