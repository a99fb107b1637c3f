package changelensexporter

import (
	"context"
	"fmt"
	"slices"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// storedSpansSQL finds the stored spans whose span ID is one of the external
// table's; the caller keeps those whose trace ID matches too. (Span IDs
// alone make a third of the external table and a cheaper set.) GLOBAL: with
// a cluster the table is Distributed and the external table exists on this
// server only.
func storedSpansSQL(table string) string {
	return "SELECT trace_id, span_id FROM " + table +
		" WHERE time >= toDateTime(?) AND time <= toDateTime(?)" +
		" AND span_id GLOBAL IN (SELECT span_id FROM _cl_batch)"
}

type spanKey [24]byte

// spanRows are the columns of one kind of span event (latency_events,
// call_events): both are keyed by their span, which is what a replay repeats.
type spanRows interface {
	rows() int
	// spans are the rows' start seconds and packed trace (16 bytes) and span
	// (8 bytes) IDs.
	spans() (times []int64, traceIDs, spanIDs []byte)
	// keep compacts the columns to the rows i with keep[i].
	keep(keep []bool)
}

func (c *latencyColumns) spans() ([]int64, []byte, []byte) { return c.time, c.traceIDs, c.spanIDs }
func (c *callColumns) spans() ([]int64, []byte, []byte)    { return c.time, c.traceIDs, c.spanIDs }

// dropStored removes from c the events whose span ClickHouse already stores
// (query: storedSpansSQL of c's table) and returns how many it removed.
func dropStored(ctx context.Context, conn driver.Conn, query string, c spanRows) (int, error) {
	n := c.rows()
	if n == 0 {
		return 0, nil
	}
	times, traceIDs, spanIDs := c.spans()
	tbl, err := ext.NewTable("_cl_batch", ext.Column("span_id", "FixedString(8)"))
	if err != nil {
		return 0, err
	}
	lo, hi := slices.Min(times), slices.Max(times)
	// The packed span IDs as the external table's column at once (the
	// driver's Append makes a string per row); they are sent before
	// Query returns.
	var scratch colScratch
	if cols := tbl.Block().Columns; len(cols) != 1 || !fillColumn(cols[0], fixedColumn{packed: spanIDs[:8*n], width: 8}, &scratch) {
		for i := range n {
			if err := tbl.Append(string(spanIDs[8*i : 8*i+8])); err != nil {
				return 0, fmt.Errorf("%w: %w", errEncode, err)
			}
		}
	}
	rows, err := conn.Query(clickhouse.Context(ctx, clickhouse.WithExternalTable(tbl)), query, lo, hi)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	stored := map[spanKey]struct{}{}
	for rows.Next() {
		var tid, sid string
		if err := rows.Scan(&tid, &sid); err != nil {
			return 0, err
		}
		var k spanKey
		copy(k[:16], tid)
		copy(k[16:], sid)
		stored[k] = struct{}{}
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if len(stored) == 0 {
		return 0, nil
	}
	keep := make([]bool, n)
	for i := range n {
		var k spanKey
		copy(k[:16], traceIDs[16*i:])
		copy(k[16:], spanIDs[8*i:])
		_, dup := stored[k]
		keep[i] = !dup
	}
	c.keep(keep)
	return n - c.rows(), nil
}

// keep compacts c to the rows i with keep[i].
func (c *latencyColumns) keep(keep []bool) {
	j := 0
	for i, k := range keep {
		if !k {
			continue
		}
		c.service[j], c.environment[j], c.version[j], c.operation[j] = c.service[i], c.environment[i], c.version[i], c.operation[i]
		c.time[j], c.startNs[j], c.durationNs[j] = c.time[i], c.startNs[i], c.durationNs[i]
		c.isError[j], c.httpStatus[j], c.weight[j] = c.isError[i], c.httpStatus[i], c.weight[i]
		copy(c.traceIDs[16*j:16*j+16], c.traceIDs[16*i:16*i+16])
		copy(c.spanIDs[8*j:8*j+8], c.spanIDs[8*i:8*i+8])
		c.cohortKeys[j], c.cohortValues[j] = c.cohortKeys[i], c.cohortValues[i]
		c.responseSize[j], c.requestSize[j] = c.responseSize[i], c.requestSize[i]
		copy(c.parentSpanIDs[8*j:8*j+8], c.parentSpanIDs[8*i:8*i+8])
		c.errorKind[j] = c.errorKind[i]
		c.selfTime[j] = c.selfTime[i]
		c.sessionID[j], c.userID[j], c.crashed[j] = c.sessionID[i], c.userID[i], c.crashed[i]
		j++
	}
	clear(c.service[j:])
	clear(c.environment[j:])
	clear(c.version[j:])
	clear(c.operation[j:])
	clear(c.cohortKeys[j:])
	clear(c.cohortValues[j:])
	clear(c.errorKind[j:])
	c.errorKind = c.errorKind[:j]
	clear(c.sessionID[j:])
	clear(c.userID[j:])
	c.sessionID, c.userID, c.crashed = c.sessionID[:j], c.userID[:j], c.crashed[:j]
	c.service, c.environment, c.version, c.operation = c.service[:j], c.environment[:j], c.version[:j], c.operation[:j]
	c.time, c.startNs, c.durationNs = c.time[:j], c.startNs[:j], c.durationNs[:j]
	c.isError, c.httpStatus, c.weight = c.isError[:j], c.httpStatus[:j], c.weight[:j]
	c.traceIDs, c.spanIDs = c.traceIDs[:16*j], c.spanIDs[:8*j]
	c.cohortKeys, c.cohortValues = c.cohortKeys[:j], c.cohortValues[:j]
	c.responseSize, c.requestSize = c.responseSize[:j], c.requestSize[:j]
	c.parentSpanIDs = c.parentSpanIDs[:8*j]
	c.selfTime = c.selfTime[:j]
}

// keep compacts c to the rows i with keep[i].
func (c *callColumns) keep(keep []bool) {
	j := 0
	for i, k := range keep {
		if !k {
			continue
		}
		c.service[j], c.environment[j], c.version[j], c.operation[j], c.peer[j] = c.service[i], c.environment[i], c.version[i], c.operation[i], c.peer[i]
		c.time[j], c.startNs[j], c.durationNs[j] = c.time[i], c.startNs[i], c.durationNs[i]
		c.isError[j], c.weight[j] = c.isError[i], c.weight[i]
		copy(c.traceIDs[16*j:16*j+16], c.traceIDs[16*i:16*i+16])
		copy(c.spanIDs[8*j:8*j+8], c.spanIDs[8*i:8*i+8])
		j++
	}
	clear(c.service[j:])
	clear(c.environment[j:])
	clear(c.version[j:])
	clear(c.operation[j:])
	clear(c.peer[j:])
	c.service, c.environment, c.version, c.operation, c.peer = c.service[:j], c.environment[:j], c.version[:j], c.operation[:j], c.peer[:j]
	c.time, c.startNs, c.durationNs = c.time[:j], c.startNs[:j], c.durationNs[:j]
	c.isError, c.weight = c.isError[:j], c.weight[:j]
	c.traceIDs, c.spanIDs = c.traceIDs[:16*j], c.spanIDs[:8*j]
}
