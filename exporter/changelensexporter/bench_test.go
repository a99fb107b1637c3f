package changelensexporter

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/changelens/changelens/testkit/chtest"
)

// BenchmarkInsert compares, against the same real ClickHouse server in the
// same run, interleaved iteration by iteration:
//
//   - exporter: the exporter's push with deduplicate on, the default (a
//     look-up of the batch's spans per table, then decode pdata + encode
//     columns + batch inserts into deployments, latency_events and
//     call_events),
//
//   - raw:      a hand-written clickhouse-go batch insert of the identical
//     rows, already in column slices (the fastest way to use the driver),
//
//   - raw_rows: the same rows through clickhouse-go's row-wise batch.Append.
//
//   - exporter_nodedup: the same push with deduplicate off.
//
// Every exporter push carries spans not stored yet (fresh trace IDs, an hour
// earlier each time), so the look-up finds nothing and everything is
// inserted, as in steady operation.
// Metrics: events/s for each, and exporter/raw (docs/performance.md target >= 0.9).
func BenchmarkInsert(b *testing.B) {
	srv := chtest.Shared(b)
	for _, n := range []int{1000, 10000, 50000} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			db := srv.NewDatabase(b)
			e := startExporter(b, testConfig(srv, db), nopSettings())
			plainCfg := testConfig(srv, db)
			plainCfg.Deduplicate = false
			plain := startExporter(b, plainCfg, nopSettings())
			ctx := context.Background()

			td := benchTraces(n, 20)
			shift := pcommonTimestamp(time.Since(testNow))
			forEachSpan(td, func(s ptrace.Span) {
				s.SetStartTimestamp(s.StartTimestamp() + shift)
				s.SetEndTimestamp(s.EndTimestamp() + shift)
			})
			// The identical rows, encoded once, for the raw inserts.
			enc := &encoder{}
			enc.reset(time.Now(), 0)
			enc.encode(td)
			lat, dep, calls := enc.lat, enc.dep, enc.call
			events := lat.rows() + dep.rows() + calls.rows()
			latRows, depRows, callRows := rowValues(&lat), deploymentRowValues(&dep), callRowValues(&calls)
			ids := &rawIDs{
				depTrace: fixedRows(nil, dep.traceIDs, 16), depSpan: fixedRows(nil, dep.spanIDs, 8),
				latTrace: fixedRows(nil, lat.traceIDs, 16), latSpan: fixedRows(nil, lat.spanIDs, 8),
				latParent: fixedRows(nil, lat.parentSpanIDs, 8),
				callTrace: fixedRows(nil, calls.traceIDs, 16), callSpan: fixedRows(nil, calls.spanIDs, 8),
			}

			opts := srv.Options()
			opts.Auth.Database = db
			raw, err := clickhouse.Open(opts)
			if err != nil {
				b.Fatal(err)
			}
			defer raw.Close()
			latSQL := insertSQL(db+".latency_events", latencyColumnNames)
			depSQL := insertSQL(db+".deployment_events", deploymentColumnNames)
			callSQL := insertSQL(db+".call_events", callColumnNames)

			var tExp, tPlain, tRaw, tRows time.Duration
			var fresh uint64
			push := func(e *chExporter, took *time.Duration) {
				fresh++
				// Spans never stored before, an hour earlier than the last
				// push's: like live traffic, each look-up's time range holds
				// about one batch, not every earlier iteration's rows.
				forEachSpan(td, func(s ptrace.Span) {
					id := s.TraceID()
					id[0], id[1], id[2], id[3] = byte(fresh>>24), byte(fresh>>16), byte(fresh>>8), byte(fresh)
					s.SetTraceID(id)
					s.SetStartTimestamp(s.StartTimestamp() - pcommonTimestamp(time.Hour))
					s.SetEndTimestamp(s.EndTimestamp() - pcommonTimestamp(time.Hour))
				})
				t0 := time.Now()
				if err := e.pushTraces(ctx, td); err != nil {
					b.Fatal(err)
				}
				*took += time.Since(t0)
			}
			runExp := func() {
				push(e, &tExp)
				push(plain, &tPlain)
			}
			runRaw := func() {
				t0 := time.Now()
				if err := rawColumnsInsert(ctx, raw, depSQL, latSQL, callSQL, &dep, &lat, &calls, ids); err != nil {
					b.Fatal(err)
				}
				tRaw += time.Since(t0)
			}
			runRows := func() {
				t0 := time.Now()
				if err := rawRowsInsert(ctx, raw, depSQL, depRows); err != nil {
					b.Fatal(err)
				}
				if err := rawRowsInsert(ctx, raw, latSQL, latRows); err != nil {
					b.Fatal(err)
				}
				if err := rawRowsInsert(ctx, raw, callSQL, callRows); err != nil {
					b.Fatal(err)
				}
				tRows += time.Since(t0)
			}
			// warm up connections and caches
			runExp()
			runRaw()
			runRows()
			tExp, tPlain, tRaw, tRows = 0, 0, 0, 0

			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				// rotate the order so none of them always runs first
				switch i % 3 {
				case 0:
					runExp()
					runRaw()
					runRows()
				case 1:
					runRaw()
					runRows()
					runExp()
				default:
					runRows()
					runExp()
					runRaw()
				}
			}
			b.StopTimer()
			total := float64(events * b.N)
			b.ReportMetric(total/tExp.Seconds(), "exporter_events/s")
			b.ReportMetric(total/tPlain.Seconds(), "exporter_nodedup_events/s")
			b.ReportMetric(total/tRaw.Seconds(), "raw_events/s")
			b.ReportMetric(total/tRows.Seconds(), "raw_rows_events/s")
			b.ReportMetric(tRaw.Seconds()/tExp.Seconds(), "exporter/raw")
			b.ReportMetric(tRaw.Seconds()/tPlain.Seconds(), "exporter_nodedup/raw")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// rawColumnsInsert is the hand-written baseline: one columnar batch insert
// per table from ready column slices.
func rawColumnsInsert(ctx context.Context, conn driver.Conn, depSQL, latSQL, callSQL string,
	dep *deploymentColumns, lat *latencyColumns, calls *callColumns, ids *rawIDs,
) error {
	if dep.rows() > 0 {
		b, err := conn.PrepareBatch(ctx, depSQL)
		if err != nil {
			return err
		}
		cols := []any{dep.id, dep.service, dep.environment, dep.version, dep.previousVersion, dep.source, dep.status,
			dep.rolloutStart, dep.rolloutStartNs, dep.deployTime, dep.deployTimeNs, dep.commitSHA, dep.commitTime,
			dep.commitTimeNs, dep.rollbackCandidate, dep.externalID, dep.pipelineName, dep.pipelineRunID, dep.supersededBy,
			ids.depTrace, ids.depSpan, dep.observedTime, dep.ver, dep.rework}
		for i, c := range cols {
			if err := b.Column(i).Append(c); err != nil {
				return err
			}
		}
		if err := b.Send(); err != nil {
			return err
		}
	}
	for _, t := range []struct {
		query string
		cols  []any
	}{
		{latSQL, []any{lat.service, lat.environment, lat.version, lat.operation, lat.time, lat.startNs, lat.durationNs,
			lat.isError, lat.httpStatus, lat.weight, ids.latTrace, ids.latSpan,
			lat.cohortKeys, lat.cohortValues, lat.responseSize, lat.requestSize, ids.latParent, lat.errorKind}},
		{callSQL, []any{calls.service, calls.environment, calls.version, calls.operation, calls.peer, calls.time,
			calls.startNs, calls.durationNs, calls.isError, calls.weight, ids.callTrace, ids.callSpan}},
	} {
		b, err := conn.PrepareBatch(ctx, t.query)
		if err != nil {
			return err
		}
		for i, c := range t.cols {
			if err := b.Column(i).Append(c); err != nil {
				return err
			}
		}
		if err := b.Send(); err != nil {
			return err
		}
	}
	return nil
}

// rawIDs are the FixedString columns as row slices, prepared once.
type rawIDs struct{ depTrace, depSpan, latTrace, latSpan, latParent, callTrace, callSpan [][]byte }

func rawRowsInsert(ctx context.Context, conn driver.Conn, query string, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	b, err := conn.PrepareBatch(ctx, query)
	if err != nil {
		return err
	}
	for _, r := range rows {
		if err := b.Append(r...); err != nil {
			return err
		}
	}
	return b.Send()
}

func rowValues(c *latencyColumns) [][]any {
	out := make([][]any, c.rows())
	for i := range out {
		out[i] = []any{c.service[i], c.environment[i], c.version[i], c.operation[i], time.Unix(c.time[i], 0),
			c.startNs[i], c.durationNs[i], c.isError[i], c.httpStatus[i], c.weight[i],
			c.traceIDs[i*16 : i*16+16], c.spanIDs[i*8 : i*8+8],
			c.cohortKeys[i], c.cohortValues[i], c.responseSize[i], c.requestSize[i], c.parentSpanIDs[i*8 : i*8+8], c.errorKind[i]}
	}
	return out
}

func callRowValues(c *callColumns) [][]any {
	out := make([][]any, c.rows())
	for i := range out {
		out[i] = []any{c.service[i], c.environment[i], c.version[i], c.operation[i], c.peer[i], time.Unix(c.time[i], 0),
			c.startNs[i], c.durationNs[i], c.isError[i], c.weight[i], c.traceIDs[i*16 : i*16+16], c.spanIDs[i*8 : i*8+8]}
	}
	return out
}

func deploymentRowValues(c *deploymentColumns) [][]any {
	out := make([][]any, c.rows())
	for i := range out {
		out[i] = []any{c.id[i], c.service[i], c.environment[i], c.version[i], c.previousVersion[i], c.source[i], c.status[i],
			time.Unix(c.rolloutStart[i], 0), c.rolloutStartNs[i], time.Unix(c.deployTime[i], 0), c.deployTimeNs[i],
			c.commitSHA[i], time.Unix(c.commitTime[i], 0), c.commitTimeNs[i], c.rollbackCandidate[i],
			c.externalID[i], c.pipelineName[i], c.pipelineRunID[i], c.supersededBy[i],
			c.traceIDs[i*16 : i*16+16], c.spanIDs[i*8 : i*8+8], time.Unix(c.observedTime[i], 0), c.ver[i], c.rework[i]}
	}
	return out
}
