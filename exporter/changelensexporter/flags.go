package changelensexporter

import (
	"context"
	"errors"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/changelens/changelens/internal/eventspan"
	"github.com/changelens/changelens/internal/schema"
)

// flagColumns are the flag_evaluations columns (schema v12), in
// flagColumnNames order.
type flagColumns struct {
	service, environment, key, variant []string
	time                               []int64 // unix seconds (DateTime)
	timeNs                             []uint64
	traceIDs, spanIDs                  []byte
}

var flagColumnNames = []string{"service", "environment", "flag_key", "variant", "time", "time_ns", "trace_id", "span_id"}

func (c *flagColumns) reset() {
	*c = flagColumns{
		service: c.service[:0], environment: c.environment[:0], key: c.key[:0], variant: c.variant[:0],
		time: c.time[:0], timeNs: c.timeNs[:0], traceIDs: c.traceIDs[:0], spanIDs: c.spanIDs[:0],
	}
}

func (c *flagColumns) clearStrings() {
	for _, s := range [][]string{c.service, c.environment, c.key, c.variant} {
		clear(s)
	}
}

func (c *flagColumns) rows() int { return len(c.service) }

// addFlagEvaluation appends one flag evaluation event. It needs a unit, a
// flag, a variant and a trace (the query side credits it to the latency
// events of its trace), and a time the raw tables accept.
func (e *encoder) addFlagEvaluation(f eventspan.FlagEvaluation) {
	if f.Service == "" {
		e.invalid[rMissingService]++
		return
	}
	if f.Key == "" || f.Variant == "" || f.TraceID.IsEmpty() {
		e.invalid[rInvalidFlagEvaluation]++
		return
	}
	if !e.inWindow(f.Time) {
		return
	}
	c := &e.flag
	c.service = append(c.service, f.Service)
	c.environment = append(c.environment, f.Environment)
	c.key = append(c.key, f.Key)
	c.variant = append(c.variant, f.Variant)
	c.time = append(c.time, f.Time/int64(time.Second))
	c.timeNs = append(c.timeNs, uint64(f.Time))
	c.traceIDs = append(c.traceIDs, f.TraceID[:]...)
	c.spanIDs = append(c.spanIDs, f.SpanID[:]...)
}

// encodeLogs appends the flag evaluation events of ld (log records of
// scopes the processor marked); other log records are counted as ignored.
func (e *encoder) encodeLogs(ld plog.Logs) {
	for _, rl := range ld.ResourceLogs().All() {
		var (
			res     eventspan.Resource
			resRead bool
		)
		for _, sl := range rl.ScopeLogs().All() {
			records := sl.LogRecords()
			kind := eventspan.ScopeKind(sl.Scope())
			if kind != eventspan.KindFlagEvaluation && kind != eventspan.KindOutcome {
				e.ignoredLogs += int64(records.Len())
				continue
			}
			if !resRead {
				res, resRead = eventspan.ReadResource(rl.Resource().Attributes()), true
			}
			for _, lr := range records.All() {
				if kind == eventspan.KindOutcome {
					e.addOutcome(eventspan.DecodeOutcomeLog(res, lr))
					continue
				}
				e.addFlagEvaluation(eventspan.DecodeFlagEvaluationLog(res, lr))
			}
		}
	}
}

// insertFlagEvaluations sends one batch insert of c into flag_evaluations.
func insertFlagEvaluations(ctx context.Context, conn driver.Conn, query string, c *flagColumns, v *idViews) error {
	return sendColumns(ctx, conn, query, flagColumnNames, v,
		c.service, c.environment, c.key, c.variant, c.time, c.timeNs, fixed(c.traceIDs, 16, &v.traceIDs), fixed(c.spanIDs, 8, &v.spanIDs))
}

// storeFlagEvaluations inserts enc's flag evaluation events. Like
// deployments they may be inserted again when a retry repeats the request:
// identical rows, which the table collapses and readers group anyway. A
// transient error is returned as err, for the request to be retried; a
// permanent one as failed.
func (e *chExporter) storeFlagEvaluations(ctx context.Context, conn driver.Conn, st *encoderState) (failed, err error) {
	enc := &st.enc
	if enc.flag.rows() == 0 {
		return nil, nil
	}
	failed = e.insert(ctx, schema.TableFlagEvaluations, func() error {
		return insertFlagEvaluations(ctx, conn, e.flagInsert, &enc.flag, &st.flagIDs)
	})
	if failed != nil && !consumererror.IsPermanent(failed) {
		return nil, failed
	}
	if failed == nil {
		e.tel.ChangelensExporterEventsWritten.Add(ctx, int64(enc.flag.rows()), e.attrFlag)
	}
	return failed, nil
}

// pushLogs is the exporterhelper push function of the logs pipeline: it
// stores the flag evaluation events the processor kept (log-based
// feature-flag evaluations) and ignores every other log record.
func (e *chExporter) pushLogs(ctx context.Context, ld plog.Logs) error {
	conn, err := e.ensureReady(ctx)
	if err != nil {
		return err
	}
	if e.schema.Cluster != "" {
		// As for traces: acknowledged once a replica of every shard holds the rows.
		ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"insert_distributed_sync": 1}))
	}
	st := e.getEncoder()
	defer e.putEncoder(st)
	enc := &st.enc
	enc.reset(e.now(), e.cfg.RetentionDays)
	enc.encodeLogs(ld)
	failed, err := e.storeFlagEvaluations(ctx, conn, st)
	if err != nil {
		return err
	}
	outFailed, err := e.storeOutcomes(ctx, conn, st)
	if err != nil {
		return err
	}
	e.recordDrops(ctx, enc)
	return errors.Join(failed, outFailed)
}
