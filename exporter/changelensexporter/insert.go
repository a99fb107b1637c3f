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

// idViews are reusable per-row views of a batch's packed FixedString IDs
// (the driver appends FixedString columns from [][]byte) and the buffers
// fillColumn keeps across one table's batches.
type idViews struct {
	traceIDs, spanIDs, parentSpanIDs [][]byte
	cols                             []colScratch
}

// fixed is the packed FixedString(width) column packed, with views for its rows.
func fixed(packed []byte, width int, views *[][]byte) fixedColumn {
	return fixedColumn{packed: packed, width: width, views: views}
}

// sendColumns sends one batch insert whose columns, in the order of names
// (the query's column list), are cols, each a whole column: set directly
// where fillColumn can, else appended through the driver.
func sendColumns(ctx context.Context, conn driver.Conn, query string, names []string, v *idViews, cols ...any) error {
	b, err := conn.PrepareBatch(ctx, query)
	if err != nil {
		return err
	}
	defer func() { _ = b.Abort() }()
	bcols := b.Columns()
	if len(v.cols) < len(cols) {
		v.cols = make([]colScratch, len(cols))
	}
	for i, col := range cols {
		if i < len(bcols) && fillColumn(bcols[i], col, &v.cols[i]) {
			continue
		}
		if f, ok := col.(fixedColumn); ok {
			*f.views = fixedRows(*f.views, f.packed, f.width)
			col = *f.views
		}
		if err := b.Column(i).Append(col); err != nil {
			return fmt.Errorf("%w: %w", errEncode, fmt.Errorf("column %s: %w", names[i], err))
		}
	}
	return b.Send()
}

// insertLatency sends one batch insert of c into latency_events.
func insertLatency(ctx context.Context, conn driver.Conn, query string, c *latencyColumns, v *idViews) error {
	return sendColumns(ctx, conn, query, latencyColumnNames, v,
		c.service, c.environment, c.version, c.operation, c.time, c.startNs, c.durationNs, c.isError,
		c.httpStatus, c.weight, fixed(c.traceIDs, 16, &v.traceIDs), fixed(c.spanIDs, 8, &v.spanIDs), c.cohortKeys, c.cohortValues, c.responseSize,
		c.requestSize, fixed(c.parentSpanIDs, 8, &v.parentSpanIDs), c.errorKind, c.selfTime, c.sessionID, c.userID, c.crashed)
}

// insertCalls sends one batch insert of c into call_events.
func insertCalls(ctx context.Context, conn driver.Conn, query string, c *callColumns, v *idViews) error {
	return sendColumns(ctx, conn, query, callColumnNames, v,
		c.service, c.environment, c.version, c.operation, c.peer, c.time, c.startNs, c.durationNs,
		c.isError, c.weight, fixed(c.traceIDs, 16, &v.traceIDs), fixed(c.spanIDs, 8, &v.spanIDs))
}

// insertDeployments sends one batch insert of c into deployments.
func insertDeployments(ctx context.Context, conn driver.Conn, query string, c *deploymentColumns, v *idViews) error {
	return sendColumns(ctx, conn, query, deploymentColumnNames, v,
		c.id, c.service, c.environment, c.version, c.previousVersion, c.source, c.status,
		c.rolloutStart, c.rolloutStartNs, c.deployTime, c.deployTimeNs, c.commitSHA, c.commitTime,
		c.commitTimeNs, c.rollbackCandidate, c.externalID, c.pipelineName, c.pipelineRunID,
		c.supersededBy, fixed(c.traceIDs, 16, &v.traceIDs), fixed(c.spanIDs, 8, &v.spanIDs), c.observedTime, c.ver, c.rework)
}

// insertIncidents sends one batch insert of c into incident_events.
func insertIncidents(ctx context.Context, conn driver.Conn, query string, c *incidentColumns, v *idViews) error {
	return sendColumns(ctx, conn, query, incidentColumnNames, v,
		c.id, c.service, c.environment, c.source, c.status, c.severity, c.title, c.deploymentID,
		c.openedTime, c.openedTimeNs, c.resolvedTimeNs, fixed(c.traceIDs, 16, &v.traceIDs), fixed(c.spanIDs, 8, &v.spanIDs), c.observedTime, c.ver)
}

// insertCommits sends one batch insert of c into commit_events.
func insertCommits(ctx context.Context, conn driver.Conn, query string, c *commitColumns, v *idViews) error {
	return sendColumns(ctx, conn, query, commitColumnNames, v,
		c.service, c.repository, c.sha, c.commitTime, c.commitTimeNs, c.pushedTimeNs, c.ref,
		fixed(c.traceIDs, 16, &v.traceIDs), fixed(c.spanIDs, 8, &v.spanIDs), c.observedTime, c.ver)
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
