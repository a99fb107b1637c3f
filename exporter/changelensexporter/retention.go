package changelensexporter

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/changelens/changelens/internal/schema"
)

// retentionLoop periodically drops expired daily partitions. It runs on every
// server version when retention_days > 0: on 18.16 it is the only retention
// (no TTL); on >= 20 the tables also carry a TTL, and the sweep makes a
// lowered retention_days effective without ALTER ... MODIFY TTL.
type retentionLoop struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// retentionFirstSweep delays the first sweep after start.
var retentionFirstSweep = time.Minute

func (r *retentionLoop) start(e *chExporter, every time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	go func() {
		defer close(r.done)
		t := time.NewTimer(retentionFirstSweep)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			sctx, scancel := context.WithTimeout(ctx, 10*time.Minute)
			if _, err := e.sweepRetention(sctx, e.now()); err != nil && ctx.Err() == nil {
				e.logger.Warn("retention sweep failed; will retry", zap.Error(err))
			}
			scancel()
			t.Reset(every)
		}
	}()
}

func (r *retentionLoop) stop() {
	if r.cancel != nil {
		r.cancel()
		<-r.done
		r.cancel = nil
	}
}

// retentionCutoff is the first day kept: partitions of earlier days are dropped.
func retentionCutoff(now time.Time, days int) time.Time {
	return startOfDayUTC(now).AddDate(0, 0, -days)
}

// sweepRetention drops every daily partition of the retention tables that
// ends before the cutoff and returns how many it dropped. Partitions are
// found by querying the (Distributed, with a cluster) table for the distinct
// days before the cutoff; the partition key's minmax index restricts that to
// expired partitions.
func (e *chExporter) sweepRetention(ctx context.Context, now time.Time) (int, error) {
	if e.cfg.RetentionDays <= 0 {
		return 0, nil
	}
	conn, err := e.ensureReady(ctx)
	if err != nil {
		return 0, err
	}
	e.mu.Lock()
	so := e.schema
	e.mu.Unlock()
	cutoff := retentionCutoff(now, e.cfg.RetentionDays).Unix()
	dropped := 0
	for _, t := range schema.RetentionTables {
		var days []struct {
			Day uint32 `ch:"day"`
		}
		q := "SELECT DISTINCT toYYYYMMDD(" + t.TimeColumn + ") AS day FROM " + so.InsertTable(t.Table) +
			" WHERE " + t.TimeColumn + " < toDateTime(" + strconv.FormatInt(cutoff, 10) + ") ORDER BY day"
		if err := conn.Select(ctx, &days, q); err != nil {
			return dropped, fmt.Errorf("retention: listing expired partitions of %s: %w", t.Table, err)
		}
		for _, d := range days {
			stmt := "ALTER TABLE " + so.LocalTable(t.Table) + so.OnCluster() + " DROP PARTITION " + strconv.FormatUint(uint64(d.Day), 10)
			if err := conn.Exec(ctx, stmt); err != nil {
				return dropped, fmt.Errorf("retention: %s: %w", stmt, err)
			}
			dropped++
			e.tel.ChangelensExporterRetentionPartitionsDropped.Add(ctx, 1)
			e.logger.Info("retention: dropped expired partition",
				zap.String("table", t.Table), zap.Uint32("day", d.Day), zap.Int("retention_days", e.cfg.RetentionDays))
		}
	}
	return dropped, nil
}
