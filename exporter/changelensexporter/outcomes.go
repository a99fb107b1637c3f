package changelensexporter

import (
	"context"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.opentelemetry.io/collector/consumer/consumererror"

	"github.com/changelens/changelens/internal/eventspan"
	"github.com/changelens/changelens/internal/schema"
)

// outcomeColumns are the outcome_events columns (schema v15), in
// outcomeColumnNames order.
type outcomeColumns struct {
	service, environment, name, sessionID, userID []string
	time                                          []int64 // unix seconds (DateTime)
	timeNs                                        []uint64
	traceIDs, spanIDs                             []byte
}

var outcomeColumnNames = []string{"service", "environment", "name", "time", "time_ns", "session_id", "user_id", "trace_id", "span_id"}

func (c *outcomeColumns) reset() {
	*c = outcomeColumns{
		service: c.service[:0], environment: c.environment[:0], name: c.name[:0],
		sessionID: c.sessionID[:0], userID: c.userID[:0],
		time: c.time[:0], timeNs: c.timeNs[:0], traceIDs: c.traceIDs[:0], spanIDs: c.spanIDs[:0],
	}
}

func (c *outcomeColumns) clearStrings() {
	for _, s := range [][]string{c.service, c.environment, c.name, c.sessionID, c.userID} {
		clear(s)
	}
}

func (c *outcomeColumns) rows() int { return len(c.service) }

// addOutcome appends one outcome event. It needs a unit, a name, and a
// session or a user (conversion counts sessions or users; an outcome of
// neither can never be counted), and a time the raw tables accept.
func (e *encoder) addOutcome(o eventspan.Outcome) {
	if o.Service == "" {
		e.invalid[rMissingService]++
		return
	}
	if o.Name == "" || (o.SessionID == "" && o.UserID == "") {
		e.invalid[rInvalidOutcome]++
		return
	}
	if !e.inWindow(o.Time) {
		return
	}
	c := &e.out
	c.service = append(c.service, o.Service)
	c.environment = append(c.environment, o.Environment)
	c.name = append(c.name, o.Name)
	c.sessionID = append(c.sessionID, o.SessionID)
	c.userID = append(c.userID, o.UserID)
	c.time = append(c.time, o.Time/int64(time.Second))
	c.timeNs = append(c.timeNs, uint64(o.Time))
	c.traceIDs = append(c.traceIDs, o.TraceID[:]...)
	c.spanIDs = append(c.spanIDs, o.SpanID[:]...)
}

// insertOutcomes sends one batch insert of c into outcome_events.
func insertOutcomes(ctx context.Context, conn driver.Conn, query string, c *outcomeColumns, v *idViews) error {
	return sendColumns(ctx, conn, query, outcomeColumnNames, v,
		c.service, c.environment, c.name, c.time, c.timeNs, c.sessionID, c.userID,
		fixed(c.traceIDs, 16, &v.traceIDs), fixed(c.spanIDs, 8, &v.spanIDs))
}

// storeOutcomes inserts enc's outcome events. A retry or a second
// collector inserts identical rows, which the table collapses (every
// column is in its key) and readers count distinct sessions or users of
// anyway. A transient error is returned as err, for the request to be
// retried; a permanent one as failed.
func (e *chExporter) storeOutcomes(ctx context.Context, conn driver.Conn, st *encoderState) (failed, err error) {
	enc := &st.enc
	if enc.out.rows() == 0 {
		return nil, nil
	}
	failed = e.insert(ctx, schema.TableOutcomes, func() error {
		return insertOutcomes(ctx, conn, e.outcomeInsert, &enc.out, &st.outIDs)
	})
	if failed != nil && !consumererror.IsPermanent(failed) {
		return nil, failed
	}
	if failed == nil {
		e.tel.ChangelensExporterEventsWritten.Add(ctx, int64(enc.out.rows()), e.attrOutcome)
	}
	return failed, nil
}
