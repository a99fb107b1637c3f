package changelensexporter

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.opentelemetry.io/collector/consumer/consumererror"
)

// insertSQL is "INSERT INTO table (c1, c2, ...)": ClickHouse 18.16 needs the
// explicit column list for native batch inserts.
func insertSQL(table string, columns []string) string {
	return "INSERT INTO " + table + " (" + strings.Join(columns, ", ") + ")"
}

// fixedRows slices a packed FixedString(width) buffer into rows, reusing dst.
func fixedRows(dst [][]byte, packed []byte, width int) [][]byte {
	dst = dst[:0]
	for i := 0; i+width <= len(packed); i += width {
		dst = append(dst, packed[i:i+width:i+width])
	}
	return dst
}

// columnsAppender appends whole columns to a batch, remembering the first error.
type columnsAppender struct {
	b     driver.Batch
	names []string
	err   error
	i     int
}

func (a *columnsAppender) add(v any) {
	if a.err != nil {
		return
	}
	if err := a.b.Column(a.i).Append(v); err != nil {
		a.err = fmt.Errorf("column %s: %w", a.names[a.i], err)
	}
	a.i++
}

// idViews are reusable per-row views of a batch's packed FixedString IDs
// (the driver appends FixedString columns from [][]byte).
type idViews struct{ traceIDs, spanIDs, parentSpanIDs [][]byte }

// insertLatency sends one batch insert of c into latency_events.
func insertLatency(ctx context.Context, conn driver.Conn, query string, c *latencyColumns, v *idViews) error {
	b, err := conn.PrepareBatch(ctx, query)
	if err != nil {
		return err
	}
	defer func() { _ = b.Abort() }()
	v.traceIDs = fixedRows(v.traceIDs, c.traceIDs, 16)
	v.spanIDs = fixedRows(v.spanIDs, c.spanIDs, 8)
	v.parentSpanIDs = fixedRows(v.parentSpanIDs, c.parentSpanIDs, 8)
	a := columnsAppender{b: b, names: latencyColumnNames}
	a.add(c.service)
	a.add(c.environment)
	a.add(c.version)
	a.add(c.operation)
	a.add(c.time)
	a.add(c.startNs)
	a.add(c.durationNs)
	a.add(c.isError)
	a.add(c.httpStatus)
	a.add(c.weight)
	a.add(v.traceIDs)
	a.add(v.spanIDs)
	a.add(c.cohortKeys)
	a.add(c.cohortValues)
	a.add(c.responseSize)
	a.add(c.requestSize)
	a.add(v.parentSpanIDs)
	if a.err != nil {
		return fmt.Errorf("%w: %w", errEncode, a.err)
	}
	return b.Send()
}

// insertCalls sends one batch insert of c into call_events.
func insertCalls(ctx context.Context, conn driver.Conn, query string, c *callColumns, v *idViews) error {
	b, err := conn.PrepareBatch(ctx, query)
	if err != nil {
		return err
	}
	defer func() { _ = b.Abort() }()
	v.traceIDs = fixedRows(v.traceIDs, c.traceIDs, 16)
	v.spanIDs = fixedRows(v.spanIDs, c.spanIDs, 8)
	a := columnsAppender{b: b, names: callColumnNames}
	a.add(c.service)
	a.add(c.environment)
	a.add(c.version)
	a.add(c.operation)
	a.add(c.peer)
	a.add(c.time)
	a.add(c.startNs)
	a.add(c.durationNs)
	a.add(c.isError)
	a.add(c.weight)
	a.add(v.traceIDs)
	a.add(v.spanIDs)
	if a.err != nil {
		return fmt.Errorf("%w: %w", errEncode, a.err)
	}
	return b.Send()
}

// insertDeployments sends one batch insert of c into deployments.
func insertDeployments(ctx context.Context, conn driver.Conn, query string, c *deploymentColumns, v *idViews) error {
	b, err := conn.PrepareBatch(ctx, query)
	if err != nil {
		return err
	}
	defer func() { _ = b.Abort() }()
	v.traceIDs = fixedRows(v.traceIDs, c.traceIDs, 16)
	v.spanIDs = fixedRows(v.spanIDs, c.spanIDs, 8)
	a := columnsAppender{b: b, names: deploymentColumnNames}
	a.add(c.id)
	a.add(c.service)
	a.add(c.environment)
	a.add(c.version)
	a.add(c.previousVersion)
	a.add(c.source)
	a.add(c.status)
	a.add(c.rolloutStart)
	a.add(c.rolloutStartNs)
	a.add(c.deployTime)
	a.add(c.deployTimeNs)
	a.add(c.commitSHA)
	a.add(c.commitTime)
	a.add(c.commitTimeNs)
	a.add(c.rollbackCandidate)
	a.add(c.externalID)
	a.add(c.pipelineName)
	a.add(c.pipelineRunID)
	a.add(c.supersededBy)
	a.add(v.traceIDs)
	a.add(v.spanIDs)
	a.add(c.observedTime)
	a.add(c.ver)
	a.add(c.rework)
	if a.err != nil {
		return fmt.Errorf("%w: %w", errEncode, a.err)
	}
	return b.Send()
}

// insertIncidents sends one batch insert of c into incident_events.
func insertIncidents(ctx context.Context, conn driver.Conn, query string, c *incidentColumns, v *idViews) error {
	b, err := conn.PrepareBatch(ctx, query)
	if err != nil {
		return err
	}
	defer func() { _ = b.Abort() }()
	v.traceIDs = fixedRows(v.traceIDs, c.traceIDs, 16)
	v.spanIDs = fixedRows(v.spanIDs, c.spanIDs, 8)
	a := columnsAppender{b: b, names: incidentColumnNames}
	a.add(c.id)
	a.add(c.service)
	a.add(c.environment)
	a.add(c.source)
	a.add(c.status)
	a.add(c.severity)
	a.add(c.title)
	a.add(c.deploymentID)
	a.add(c.openedTime)
	a.add(c.openedTimeNs)
	a.add(c.resolvedTimeNs)
	a.add(v.traceIDs)
	a.add(v.spanIDs)
	a.add(c.observedTime)
	a.add(c.ver)
	if a.err != nil {
		return fmt.Errorf("%w: %w", errEncode, a.err)
	}
	return b.Send()
}

// errEncode marks client-side failures to encode rows for the server's
// column types: retrying cannot fix them.
var errEncode = errors.New("encoding rows for ClickHouse")

// permanentCodes are ClickHouse error codes that mean the data (or the
// table's shape) is wrong, so retrying the same insert cannot succeed.
// Everything else — network errors, timeouts, overload (TOO_MANY_PARTS,
// MEMORY_LIMIT_EXCEEDED, TOO_MANY_SIMULTANEOUS_QUERIES), a missing table or
// database that an operator may yet create, replica/keeper trouble — is
// retried by exporterhelper.
var permanentCodes = map[int32]string{
	6:   "CANNOT_PARSE_TEXT",
	8:   "THERE_IS_NO_COLUMN",
	10:  "NOT_FOUND_COLUMN_IN_BLOCK",
	16:  "NO_SUCH_COLUMN_IN_TABLE",
	20:  "NUMBER_OF_COLUMNS_DOESNT_MATCH",
	26:  "CANNOT_PARSE_QUOTED_STRING",
	27:  "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
	33:  "CANNOT_READ_ALL_DATA",
	36:  "BAD_ARGUMENTS",
	38:  "CANNOT_PARSE_DATE",
	41:  "CANNOT_PARSE_DATETIME",
	43:  "ILLEGAL_TYPE_OF_ARGUMENT",
	44:  "ILLEGAL_COLUMN",
	47:  "UNKNOWN_IDENTIFIER",
	48:  "NOT_IMPLEMENTED",
	53:  "TYPE_MISMATCH",
	62:  "SYNTAX_ERROR",
	69:  "ARGUMENT_OUT_OF_BOUND",
	70:  "CANNOT_CONVERT_TYPE",
	72:  "CANNOT_PARSE_NUMBER",
	117: "INCORRECT_DATA",
	131: "TOO_LARGE_STRING_SIZE",
	190: "SIZES_OF_ARRAYS_DOESNT_MATCH",
	321: "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE",
	349: "CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN",
}

// classify wraps errors that retrying cannot fix as permanent; transient
// errors are returned as they are so exporterhelper retries them.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		if _, ok := permanentCodes[ex.Code]; ok {
			return consumererror.NewPermanent(err)
		}
		return err
	}
	var conv *column.ColumnConverterError
	if errors.Is(err, errEncode) || errors.As(err, &conv) || errors.Is(err, clickhouse.ErrBatchInvalid) {
		return consumererror.NewPermanent(err)
	}
	return err
}
