package changelensexporter

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/changelens/changelens/internal/schema"
	"github.com/changelens/changelens/testkit/chtest"
	"github.com/changelens/changelens/testkit/eventspantest"
)

// A failed request's error kind is its row's error_kind; a request that did
// not fail has none, whatever its span says.
func TestEncodeErrorKinds(t *testing.T) {
	now := time.Now()
	at := now.Add(-time.Minute)
	td := ptrace.NewTraces()
	eventspantest.AppendLatency(td,
		eventspantest.Latency{Service: "api", Environment: "production", Version: "2", Operation: "GET /", Start: at, Duration: time.Millisecond,
			Error: true, ErrorKind: "java.lang.NullPointerException", TraceID: eventspantest.TraceID(1), SpanID: eventspantest.SpanID(1)},
		eventspantest.Latency{Service: "api", Environment: "production", Version: "2", Operation: "GET /", Start: at, Duration: time.Millisecond,
			ErrorKind: "stray", TraceID: eventspantest.TraceID(2), SpanID: eventspantest.SpanID(2)},
		eventspantest.Latency{Service: "api", Environment: "production", Version: "2", Operation: "GET /", Start: at, Duration: time.Millisecond,
			Error: true, TraceID: eventspantest.TraceID(3), SpanID: eventspantest.SpanID(3)},
	)
	var enc encoder
	enc.reset(now, 0)
	enc.encode(td)
	if got := enc.lat.errorKind; !slices.Equal(got, []string{"java.lang.NullPointerException", "", ""}) {
		t.Errorf("error kinds %q", got)
	}
	enc.lat.keep([]bool{false, true, true})
	if got := enc.lat.errorKind; !slices.Equal(got, []string{"", ""}) {
		t.Errorf("after compaction %q", got)
	}
}

// Failed requests reach error_kinds_1m through its view: per unit,
// version, kind and minute, their weighted count, first time and first
// trace; requests without a kind add nothing.
func TestIntegrationErrorKinds(t *testing.T) {
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	e := startExporter(t, testConfig(srv, db), nopSettings())
	m := time.Now().Add(-time.Hour).Truncate(time.Minute)
	var evs []eventspantest.Latency
	add := func(version, kind string, at time.Time, weight float64, seq uint64, failed bool) {
		evs = append(evs, eventspantest.Latency{Service: "api", Environment: "production", Version: version, Operation: "GET /",
			Start: at, Duration: time.Millisecond, Error: failed, ErrorKind: kind, Weight: weight,
			TraceID: eventspantest.TraceID(seq), SpanID: eventspantest.SpanID(seq)})
	}
	add("2", "java.lang.NullPointerException", m.Add(40*time.Second), 1, 1, true)
	add("2", "java.lang.NullPointerException", m.Add(10*time.Second), 4, 2, true) // the minute's first
	add("2", "java.lang.NullPointerException", m.Add(70*time.Second), 1, 3, true) // the next minute
	add("1", "java.lang.NullPointerException", m.Add(20*time.Second), 1, 4, true) // another version
	add("2", "5xx", m.Add(30*time.Second), 1, 5, true)
	add("2", "", m.Add(30*time.Second), 1, 6, true)       // failed without a kind (an older processor)
	add("2", "stray", m.Add(30*time.Second), 1, 7, false) // not failed
	td := ptrace.NewTraces()
	eventspantest.AppendLatency(td, evs...)
	push(t, e, td)

	conn := srv.Conn(t, db)
	type row struct {
		Version string  `ch:"version"`
		Kind    string  `ch:"kind"`
		Minute  uint32  `ch:"m"`
		Count   float64 `ch:"n"`
		First   uint64  `ch:"first"`
		Trace   string  `ch:"trace"`
	}
	var rows []row
	if err := conn.Select(tctx(t), &rows, `SELECT CAST(version AS String) AS version, CAST(error_kind AS String) AS kind,
		toUInt32(minute) AS m, sumMerge(error_count) AS n, minMerge(first_time_ns) AS first,
		lower(hex(argMinMerge(first_trace_id))) AS trace
		FROM error_kinds_1m GROUP BY version, kind, m ORDER BY version, kind, m`); err != nil {
		t.Fatal(err)
	}
	tr := func(seq uint64) string { id := eventspantest.TraceID(seq); return fmt.Sprintf("%x", id[:]) }
	ns := func(d time.Duration) uint64 { return uint64(m.Add(d).UnixNano()) }
	want := []row{
		{"1", "java.lang.NullPointerException", uint32(m.Unix()), 1, ns(20 * time.Second), tr(4)},
		{"2", "5xx", uint32(m.Unix()), 1, ns(30 * time.Second), tr(5)},
		{"2", "java.lang.NullPointerException", uint32(m.Unix()), 5, ns(10 * time.Second), tr(2)},
		{"2", "java.lang.NullPointerException", uint32(m.Add(time.Minute).Unix()), 1, ns(70 * time.Second), tr(3)},
	}
	if !slices.Equal(rows, want) {
		t.Errorf("error_kinds_1m:\n got %+v\nwant %+v", rows, want)
	}
	var kinds []string
	if err := conn.QueryRow(tctx(t), "SELECT arraySort(groupArray(concat(toString(is_error), ':', CAST(error_kind AS String)))) FROM latency_events").
		Scan(&kinds); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(kinds, []string{"0:", "1:", "1:5xx", "1:java.lang.NullPointerException", "1:java.lang.NullPointerException",
		"1:java.lang.NullPointerException", "1:java.lang.NullPointerException"}) {
		t.Errorf("latency_events (is_error:error_kind): %q", kinds)
	}
}

// Migration 13 adds error_kind to a latency_events that holds rows (they
// read as no kind), survives being run again after an interruption (18.16
// has no ADD COLUMN IF NOT EXISTS), and error_kinds_1m then rolls up new
// failed requests.
func TestIntegrationUpgradeAddsErrorKinds(t *testing.T) {
	srv := chtest.Shared(t)
	db, conn, o := schemaWithout(t, srv, 13, "error_kinds_1m_mv", "error_kinds_1m")
	srv.Exec(t, "ALTER TABLE "+db+".latency_events DROP COLUMN error_kind")
	// A v12 exporter's insert.
	old := time.Now().Add(-time.Hour).Truncate(time.Minute)
	srv.Exec(t, fmt.Sprintf(`INSERT INTO %s.latency_events (service, environment, version, operation, time, start_time_ns, duration_ns, is_error, http_status, weight, trace_id, span_id)
		SELECT 'api', 'production', '1', 'GET /', toDateTime(%d), %d, 1000000, 1, 500, 1, toFixedString('old', 16), toFixedString('old', 8)
		FROM system.numbers LIMIT 1`, db, old.Unix(), old.UnixNano()))
	for i := 0; i < 2; i++ { // an interrupted upgrade runs it again
		if i > 0 {
			srv.Exec(t, "ALTER TABLE "+db+".schema_migrations DELETE WHERE version = 13")
			waitRows(t, conn, "SELECT count() FROM schema_migrations", migrationCount-1)
		}
		res, err := schema.Apply(tctx(t), conn, o, srv.Version())
		if err != nil || !slices.Equal(res.Applied, []uint32{13}) {
			t.Fatalf("upgrade %d = %+v, %v", i, res, err)
		}
	}
	var kind string
	if err := conn.QueryRow(tctx(t), "SELECT CAST(error_kind AS String) FROM latency_events WHERE span_id = toFixedString('old', 8)").
		Scan(&kind); err != nil || kind != "" {
		t.Fatalf("old row's error kind after the upgrade = %q (%v), want none", kind, err)
	}
	e := startExporter(t, testConfig(srv, db), nopSettings())
	td := ptrace.NewTraces()
	eventspantest.AppendLatency(td, eventspantest.Latency{Service: "api", Environment: "production", Version: "2", Operation: "GET /",
		Start: old.Add(time.Second), Duration: time.Millisecond, Error: true, ErrorKind: "E",
		TraceID: eventspantest.TraceID(1), SpanID: eventspantest.SpanID(1)})
	push(t, e, td)
	waitRows(t, conn, "SELECT count() FROM error_kinds_1m WHERE error_kind = 'E'", 1)
	waitRows(t, conn, "SELECT count() FROM error_kinds_1m", 1)
}
