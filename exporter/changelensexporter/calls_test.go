package changelensexporter

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/changelens/changelens/internal/eventspan"
	"github.com/changelens/changelens/internal/schema"
	"github.com/changelens/changelens/testkit/chtest"
	"github.com/changelens/changelens/testkit/eventspantest"
)

// Call events (schema v8) and the service graph: the join of call_events
// with the callees' latency_events documented in docs/clickhouse.md.

// appendUnit appends one unit's latency and call events (lats and calls of
// one Resource) to td as the processor emits them: the calls are CLIENT
// spans in the unit's latency scope (eventspan.EventKind tells them apart),
// in a latency scope of their own when the batch holds no latency event of
// the unit.
func appendUnit(td ptrace.Traces, lats []eventspan.Latency, calls []eventspan.Call) {
	if len(lats) == 0 {
		eventspan.AppendCall(td, calls...)
		return
	}
	eventspan.AppendLatency(td, lats...)
	rss := td.ResourceSpans()
	spans := rss.At(rss.Len() - 1).ScopeSpans().At(0).Spans()
	tmp := ptrace.NewTraces()
	eventspan.AppendCall(tmp, calls...)
	for _, rs := range tmp.ResourceSpans().All() {
		rs.ScopeSpans().At(0).Spans().At(0).CopyTo(spans.AppendEmpty())
	}
}

// appendByUnit appends the events of every unit with appendUnit, a
// ResourceSpans per unit.
func appendByUnit(td ptrace.Traces, lats []eventspan.Latency, calls []eventspan.Call) {
	var units []eventspan.Resource
	byUnit := map[eventspan.Resource]*struct {
		lats  []eventspan.Latency
		calls []eventspan.Call
	}{}
	get := func(r eventspan.Resource) *struct {
		lats  []eventspan.Latency
		calls []eventspan.Call
	} {
		if byUnit[r] == nil {
			units = append(units, r)
			byUnit[r] = new(struct {
				lats  []eventspan.Latency
				calls []eventspan.Call
			})
		}
		return byUnit[r]
	}
	for _, l := range lats {
		u := get(l.Resource)
		u.lats = append(u.lats, l)
	}
	for _, c := range calls {
		u := get(c.Resource)
		u.calls = append(u.calls, c)
	}
	for _, r := range units {
		appendUnit(td, byUnit[r].lats, byUnit[r].calls)
	}
}

func unit(service, env, version string) eventspan.Resource {
	return eventspan.Resource{Service: service, Environment: env, Version: version}
}

// latency is an entry span of res, child of parent (zero: a root).
func latency(res eventspan.Resource, op string, start time.Time, d time.Duration, trace uint64, span, parent pcommon.SpanID) eventspan.Latency {
	return eventspan.Latency{Resource: res, Operation: op, Start: start.UnixNano(), End: start.Add(d).UnixNano(), Weight: 1,
		TraceID: eventspantest.TraceID(trace), SpanID: span, ParentSpanID: parent,
		ResponseSize: eventspan.NoSize, RequestSize: eventspan.NoSize}
}

func call(res eventspan.Resource, op, peer string, start time.Time, d time.Duration, trace uint64, span pcommon.SpanID) eventspan.Call {
	return eventspan.Call{Resource: res, Operation: op, Peer: peer, Start: start.UnixNano(), End: start.Add(d).UnixNano(), Weight: 1,
		TraceID: eventspantest.TraceID(trace), SpanID: span}
}

type callRow struct {
	Service     string    `ch:"service"`
	Environment string    `ch:"environment"`
	Version     string    `ch:"version"`
	Operation   string    `ch:"operation"`
	Peer        string    `ch:"peer"`
	Time        time.Time `ch:"time"`
	StartNs     uint64    `ch:"start_time_ns"`
	DurationNs  uint64    `ch:"duration_ns"`
	IsError     uint8     `ch:"is_error"`
	Weight      float64   `ch:"weight"`
	TraceID     string    `ch:"trace_id"`
	SpanID      string    `ch:"span_id"`
}

func TestIntegrationCallEventsRoundTrip(t *testing.T) {
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	e := startExporter(t, testConfig(srv, db), metadatatestSettings(tel))

	start := time.Now().Add(-2 * time.Hour).Truncate(time.Second).Add(987654321)
	web, checkout := unit("web", "production", "7"), unit("checkout", "production", "3")
	hostile := unit("ünïcode-svc", "prod'; DROP TABLE x; --", "v\"1")
	calls := []eventspan.Call{
		call(web, "GET", "checkout", start, 3*time.Millisecond, 1, eventspantest.SpanID(2)),
		call(web, "SELECT", "postgres", start.Add(time.Second), time.Millisecond, 1, eventspantest.SpanID(3)),
		call(hostile, "publish", "", start.Add(time.Minute), time.Hour, 5, eventspantest.SpanID(6)),
	}
	calls[0].Error, calls[0].Weight = true, 2.5
	lats := []eventspan.Latency{
		latency(web, "GET /", start.Add(-time.Millisecond), 10*time.Millisecond, 1, eventspantest.SpanID(1), pcommon.SpanID{}),
		latency(checkout, "GET /cart", start.Add(time.Millisecond), time.Millisecond, 1, eventspantest.SpanID(4), eventspantest.SpanID(2)),
	}
	bad := func(f func(c *eventspan.Call)) eventspan.Call {
		c := call(web, "GET", "checkout", start, time.Millisecond, 9, eventspantest.SpanID(9))
		f(&c)
		return c
	}
	td := ptrace.NewTraces()
	appendUnit(td, lats[:1], calls[:2]) // the processor's output: calls in the unit's latency scope
	appendUnit(td, lats[1:], nil)
	appendUnit(td, nil, calls[2:])
	appendUnit(td, nil, []eventspan.Call{
		bad(func(c *eventspan.Call) { c.Service = "" }),
		bad(func(c *eventspan.Call) { c.End = c.Start - 1 }),
		bad(func(c *eventspan.Call) {
			c.Start, c.End = time.Now().Add(48*time.Hour).UnixNano(), time.Now().Add(49*time.Hour).UnixNano()
		}),
		bad(func(c *eventspan.Call) { c.Weight = math.NaN() }),
	})
	push(t, e, td)

	conn := srv.Conn(t, db)
	var rows []callRow
	if err := conn.Select(tctx(t), &rows, `SELECT service, environment, version, operation, peer, time, start_time_ns,
		duration_ns, is_error, weight, lower(hex(trace_id)) AS trace_id, lower(hex(span_id)) AS span_id
		FROM call_events ORDER BY start_time_ns`); err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(calls) {
		t.Fatalf("read %d call rows, want %d: %+v", len(rows), len(calls), rows)
	}
	for i, c := range calls {
		var isErr uint8
		if c.Error {
			isErr = 1
		}
		want := callRow{Service: c.Service, Environment: c.Environment, Version: c.Version, Operation: c.Operation, Peer: c.Peer,
			Time: time.Unix(c.Start/1e9, 0).UTC(), StartNs: uint64(c.Start), DurationNs: uint64(c.End - c.Start),
			IsError: isErr, Weight: c.Weight, TraceID: hexID(c.TraceID[:]), SpanID: hexID(c.SpanID[:])}
		rows[i].Time = rows[i].Time.UTC()
		if rows[i] != want {
			t.Errorf("call %d:\n got %+v\nwant %+v", i, rows[i], want)
		}
	}

	// The callee's entry span keeps its parent, the root has none (zero bytes).
	var parents []struct {
		Service string `ch:"service"`
		Parent  string `ch:"parent"`
	}
	if err := conn.Select(tctx(t), &parents, "SELECT service, lower(hex(parent_span_id)) AS parent FROM latency_events ORDER BY start_time_ns"); err != nil {
		t.Fatal(err)
	}
	callSpan := eventspantest.SpanID(2)
	if len(parents) != 2 || parents[0].Service != "web" || parents[0].Parent != "0000000000000000" ||
		parents[1].Service != "checkout" || parents[1].Parent != hexID(callSpan[:]) {
		t.Errorf("latency parents = %+v", parents)
	}

	assertCounter(t, tel, "otelcol_changelens_exporter_events_written", map[string]string{eventspan.AttrEventType: eventspan.EventCall}, 3)
	assertCounter(t, tel, "otelcol_changelens_exporter_events_written", map[string]string{eventspan.AttrEventType: eventspan.EventLatency}, 2)
	for r, n := range map[reason]int64{rMissingService: 1, rInvalidTimestamps: 1, rFutureTimestamp: 1, rInvalidWeight: 1} {
		assertCounter(t, tel, "otelcol_changelens_exporter_events_invalid", map[string]string{"reason": reasonNames[r]}, n)
	}

	// The API's read-only user reads it.
	var n uint64
	if err := srv.ReadOnlyConn(t, db).QueryRow(tctx(t), "SELECT count() FROM call_events").Scan(&n); err != nil || n != 3 {
		t.Fatalf("read-only count = %d, %v", n, err)
	}
}

// A retried batch's calls are stored once; so are those of a request whose
// call insert failed after its latency insert succeeded, when it is retried.
func TestIntegrationCallReplayIsStoredOnce(t *testing.T) {
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	e := startExporter(t, testConfig(srv, db), metadatatestSettings(tel))
	base := time.Now().Add(-time.Hour).Truncate(time.Minute)
	web, checkout := unit("web", "e", "1"), unit("checkout", "e", "1")
	batch := func(from, to int) ptrace.Traces {
		var lats []eventspan.Latency
		var calls []eventspan.Call
		for i := from; i < to; i++ {
			at := base.Add(time.Duration(i) * time.Second)
			calls = append(calls, call(web, "GET", "checkout", at, time.Millisecond, uint64(i+1), eventspantest.SpanID(uint64(2*i))))
			lats = append(lats, latency(checkout, "GET /", at, time.Millisecond, uint64(i+1), eventspantest.SpanID(uint64(2*i+1)), eventspantest.SpanID(uint64(2*i))))
		}
		td := ptrace.NewTraces()
		appendUnit(td, nil, calls)
		appendUnit(td, lats, nil)
		return td
	}
	conn := srv.Conn(t, db)
	counts := func(t *testing.T, wantCalls, wantLat uint64) {
		t.Helper()
		for q, want := range map[string]uint64{
			"SELECT count() FROM call_events":                         wantCalls,
			"SELECT uniqExact(trace_id, span_id) FROM call_events":    wantCalls,
			"SELECT count() FROM latency_events":                      wantLat,
			"SELECT uniqExact(trace_id, span_id) FROM latency_events": wantLat,
		} {
			var n uint64
			if err := conn.QueryRow(tctx(t), q).Scan(&n); err != nil || n != want {
				t.Errorf("%s = %d, %v; want %d", q, n, err, want)
			}
		}
	}
	push(t, e, batch(0, 100))
	push(t, e, batch(0, 100))
	push(t, e, batch(50, 150))
	counts(t, 150, 150)
	call := map[string]string{eventspan.AttrEventType: eventspan.EventCall}
	assertCounter(t, tel, "otelcol_changelens_exporter_events_deduplicated", call, 150)
	assertCounter(t, tel, "otelcol_changelens_exporter_events_written", call, 150)

	// call_events is unavailable: the latency rows are stored, the request
	// fails retryably, and its retry stores the calls and no latency row twice.
	srv.Exec(t, "RENAME TABLE "+db+".call_events TO "+db+".call_events_away")
	td := batch(150, 200)
	if err := e.pushTraces(tctx(t), td); err == nil || consumererrorIsPermanent(err) {
		t.Fatalf("push without call_events = %v, want a retryable error", err)
	}
	srv.Exec(t, "RENAME TABLE "+db+".call_events_away TO "+db+".call_events")
	counts(t, 150, 200)
	push(t, e, td)
	counts(t, 200, 200)
	assertCounter(t, tel, "otelcol_changelens_exporter_events_written", call, 200)
	assertCounter(t, tel, "otelcol_changelens_exporter_events_deduplicated",
		map[string]string{eventspan.AttrEventType: eventspan.EventLatency}, 150+50)
}

// With create_schema false, a database without call_events (a schema
// before v8) fails the start, naming the table.
func TestIntegrationStartFailsWithoutCallEvents(t *testing.T) {
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	o := schema.Options{Database: db, Features: schema.FeaturesFor(srv.Version())}
	if _, err := schema.Apply(tctx(t), srv.Conn(t, db), o, srv.Version()); err != nil {
		t.Fatal(err)
	}
	srv.Exec(t, "DROP TABLE "+db+".call_events")
	cfg := testConfig(srv, db)
	cfg.CreateSchema = false
	e, err := newExporter(cfg, nopSettings())
	if err != nil {
		t.Fatal(err)
	}
	defer e.shutdown(context.Background())
	if err := e.start(context.Background(), componenttest.NewNopHost()); err == nil || !strings.Contains(err.Error(), "call_events") {
		t.Fatalf("start = %v, want an error naming call_events", err)
	}
}

// graphQuery is the service graph join documented in docs/clickhouse.md,
// taken from it. Parameters: environment, callee window start and end, then
// environment, call window start and end (unix seconds).
func graphQuery(t testing.TB) string {
	t.Helper()
	doc, err := os.ReadFile("../../docs/clickhouse.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "## The service graph join")
	_, block, ok2 := strings.Cut(section, "```sql\n")
	query, _, ok3 := strings.Cut(block, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal("docs/clickhouse.md: no sql block in the service graph section")
	}
	return query
}

// edge is one row of graphQuery.
type edge struct {
	Service       string  `ch:"service"`
	Version       string  `ch:"version"`
	CalleeService string  `ch:"callee_service"`
	CalleeVersion string  `ch:"callee_version"`
	Peer          string  `ch:"uninstrumented_peer"`
	Calls         float64 `ch:"calls"`
	Errors        float64 `ch:"errors"`
	DurationSumNs float64 `ch:"duration_sum_ns"`
}

// graphTraffic is n traces through three instrumented units of
// "production" and three things that are not: frontend calls checkout (two
// versions) and postgres, checkout calls payments (which its spans name by
// address) and sometimes kafka, frontend sometimes calls geo, whose spans
// are in another environment. Some calls fail, some are sampled. Every span
// starts within [base, base + n seconds + 1 second). On the test cluster
// frontend's rows are on one shard, checkout's and payments' on the other
// (cityHash64(service, environment) % 2).
func graphTraffic(base time.Time, n int) (lats []eventspan.Latency, calls []eventspan.Call) {
	frontend, payments, geo := unit("frontend", "production", "7"), unit("payments", "production", "1"), unit("geo", "staging", "2")
	for i := range n {
		tr := uint64(i + 1)
		at := base.Add(time.Duration(i) * time.Second)
		id := func(k uint64) pcommon.SpanID { return eventspantest.SpanID(tr*16 + k) }
		checkout := unit("checkout", "production", []string{"3", "4"}[i%2])
		lats = append(lats,
			latency(frontend, "GET /", at, 50*time.Millisecond, tr, id(1), pcommon.SpanID{}),
			latency(checkout, "GET /cart", at.Add(2*time.Millisecond), 20*time.Millisecond, tr, id(3), id(2)),
			latency(payments, "POST /pay", at.Add(5*time.Millisecond), 10*time.Millisecond, tr, id(5), id(4)))
		toCheckout := call(frontend, "GET", "checkout", at.Add(time.Millisecond), time.Duration(22+i%7)*time.Millisecond, tr, id(2))
		toCheckout.Error = i%10 == 0
		toPayments := call(checkout, "POST", "10.0.0.7", at.Add(4*time.Millisecond), 12*time.Millisecond, tr, id(4))
		if i%4 == 0 {
			toPayments.Weight = 4
		}
		calls = append(calls, toCheckout, toPayments,
			call(frontend, "SELECT", "postgres", at.Add(30*time.Millisecond), time.Duration(1+i%3)*time.Millisecond, tr, id(6)))
		if i%3 == 0 {
			calls = append(calls, call(checkout, "publish", "kafka", at.Add(18*time.Millisecond), time.Millisecond, tr, id(7)))
		}
		if i%5 == 0 {
			calls = append(calls, call(frontend, "GET", "geo", at.Add(40*time.Millisecond), 5*time.Millisecond, tr, id(8)))
			lats = append(lats, latency(geo, "GET /where", at.Add(41*time.Millisecond), 3*time.Millisecond, tr, id(9), id(8)))
		}
	}
	return lats, calls
}

// wantGraph is graphQuery's answer over lats and calls of env, computed here.
func wantGraph(lats []eventspan.Latency, calls []eventspan.Call, env string) []edge {
	type key struct {
		trace pcommon.TraceID
		span  pcommon.SpanID
	}
	callee := map[key]eventspan.Resource{}
	for _, l := range lats {
		if l.Environment == env && !l.ParentSpanID.IsEmpty() {
			callee[key{l.TraceID, l.ParentSpanID}] = l.Resource
		}
	}
	byEdge := map[edge]*edge{}
	for _, c := range calls {
		if c.Environment != env {
			continue
		}
		k := edge{Service: c.Service, Version: c.Version}
		if r, ok := callee[key{c.TraceID, c.SpanID}]; ok {
			k.CalleeService, k.CalleeVersion = r.Service, r.Version
		} else {
			k.Peer = c.Peer
		}
		g := byEdge[k]
		if g == nil {
			g = &edge{}
			*g = k
			byEdge[k] = g
		}
		g.Calls += c.Weight
		if c.Error {
			g.Errors += c.Weight
		}
		g.DurationSumNs += float64(c.End-c.Start) * c.Weight
	}
	var out []edge
	for _, g := range byEdge {
		out = append(out, *g)
	}
	slices.SortFunc(out, func(a, b edge) int {
		return strings.Compare(a.Service+"\x00"+a.Version+"\x00"+a.CalleeService+"\x00"+a.CalleeVersion+"\x00"+a.Peer,
			b.Service+"\x00"+b.Version+"\x00"+b.CalleeService+"\x00"+b.CalleeVersion+"\x00"+b.Peer)
	})
	return out
}

// readGraph runs graphQuery over [from, to) with a minute of margin for the
// callees.
func readGraph(t *testing.T, conn driver.Conn, env string, from, to time.Time) []edge {
	t.Helper()
	var got []edge
	if err := conn.Select(tctx(t), &got, graphQuery(t),
		env, from.Add(-time.Minute).Unix(), to.Add(time.Minute).Unix(), env, from.Unix(), to.Unix()); err != nil {
		t.Fatal(err)
	}
	return got
}

// The graph join answers the same whether one collector received a whole
// trace in one batch, or several collectors received its spans in any
// order, some twice; and it is right: a call's callee where the callee is
// instrumented (in the environment), its peer where not.
func TestIntegrationServiceGraphJoin(t *testing.T) {
	srv := chtest.Shared(t)
	base := time.Now().Add(-2 * time.Hour).Truncate(time.Minute)
	const n = 200
	lats, calls := graphTraffic(base, n)
	want := wantGraph(lats, calls, "production")
	// The traffic covers every kind of edge.
	edges := map[string]bool{}
	for _, g := range want {
		edges[g.Service+">"+g.CalleeService+g.Peer] = true
	}
	for _, e := range []string{"frontend>checkout", "checkout>payments", "frontend>postgres", "checkout>kafka", "frontend>geo"} {
		if !edges[e] {
			t.Fatalf("traffic lacks the edge %s: %+v", e, want)
		}
	}

	// One collector, one batch.
	one := srv.NewDatabase(t)
	e := startExporter(t, testConfig(srv, one), nopSettings())
	td := ptrace.NewTraces()
	appendByUnit(td, lats, calls)
	push(t, e, td)

	// Three collectors, the spans dealt out at random in batches of up to
	// 120, then a tenth of them again (a collector's retry, a second
	// collector: a later batch; the look-up sees stored rows only).
	many := srv.NewDatabase(t)
	var collectors []*chExporter
	for range 3 {
		collectors = append(collectors, startExporter(t, testConfig(srv, many), nopSettings()))
	}
	rng := rand.New(rand.NewPCG(3, 4))
	type span struct {
		lat  *eventspan.Latency
		call *eventspan.Call
	}
	var spans []span
	for i := range lats {
		spans = append(spans, span{lat: &lats[i]})
	}
	for i := range calls {
		spans = append(spans, span{call: &calls[i]})
	}
	var again []span
	for i := range len(spans) / 10 {
		again = append(again, spans[i*10])
	}
	for _, spans := range [][]span{spans, again} {
		rng.Shuffle(len(spans), func(i, j int) { spans[i], spans[j] = spans[j], spans[i] })
		for len(spans) > 0 {
			k := min(len(spans), 1+rng.IntN(120))
			td := ptrace.NewTraces()
			for _, s := range spans[:k] {
				if s.lat != nil {
					appendUnit(td, []eventspan.Latency{*s.lat}, nil)
				} else {
					appendUnit(td, nil, []eventspan.Call{*s.call})
				}
			}
			push(t, collectors[rng.IntN(len(collectors))], td)
			spans = spans[k:]
		}
	}

	from, to := base, base.Add(n*time.Second+time.Second)
	for _, db := range []string{one, many} {
		got := readGraph(t, srv.ReadOnlyConn(t, db), "production", from, to)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("graph of %s:\n got %+v\nwant %+v", db, got, want)
		}
	}
	// The window bounds the calls: its second half has about half of them.
	half := readGraph(t, srv.ReadOnlyConn(t, one), "production", base.Add(n/2*time.Second), to)
	var all, second float64
	for _, g := range want {
		all += g.Calls
	}
	for _, g := range half {
		second += g.Calls
	}
	if second <= 0.4*all || second >= 0.6*all {
		t.Errorf("calls in the second half of the window: %v of %v", second, all)
	}
	// One caller: the outer WHERE takes its service (docs/clickhouse.md).
	oneCaller := strings.Replace(graphQuery(t), "AND time < toDateTime(?)\nGROUP BY", "AND time < toDateTime(?) AND service = ?\nGROUP BY", 1)
	var checkout []edge
	if err := srv.ReadOnlyConn(t, one).Select(tctx(t), &checkout, oneCaller, "production",
		from.Add(-time.Minute).Unix(), to.Add(time.Minute).Unix(), "production", from.Unix(), to.Unix(), "checkout"); err != nil {
		t.Fatal(err)
	}
	var wantCheckout []edge
	for _, g := range want {
		if g.Service == "checkout" {
			wantCheckout = append(wantCheckout, g)
		}
	}
	if !reflect.DeepEqual(checkout, wantCheckout) {
		t.Errorf("checkout's calls:\n got %+v\nwant %+v", checkout, wantCheckout)
	}
	// Another environment's graph is its own: geo calls nothing.
	if got := readGraph(t, srv.ReadOnlyConn(t, one), "staging", from, to); len(got) != 0 {
		t.Errorf("staging graph = %+v", got)
	}
}

// Migration 8 adds parent_span_id to a latency_events that holds rows (they
// read as no parent), survives being run again after an interruption (18.16
// has no ADD COLUMN IF NOT EXISTS), and creates call_events: the graph then
// joins new events.
func TestIntegrationUpgradeAddsServiceGraph(t *testing.T) {
	srv := chtest.Shared(t)
	db, conn, o := schemaWithout(t, srv, 8, "call_events")
	srv.Exec(t, "ALTER TABLE "+db+".latency_events DROP COLUMN parent_span_id")
	// A v7 exporter's insert.
	old := time.Now().Add(-time.Hour).Truncate(time.Minute)
	srv.Exec(t, fmt.Sprintf(`INSERT INTO %s.latency_events (service, environment, version, operation, time, start_time_ns, duration_ns, is_error, http_status, weight, trace_id, span_id)
		SELECT 'checkout', 'production', '1', 'GET /', toDateTime(%d), %d, 1000000, 0, 200, 1, toFixedString('old', 16), toFixedString('old', 8)
		FROM system.numbers LIMIT 1`, db, old.Unix(), old.UnixNano()))
	for i := 0; i < 2; i++ { // an interrupted upgrade runs it again
		if i > 0 {
			srv.Exec(t, "ALTER TABLE "+db+".schema_migrations DELETE WHERE version = 8")
			waitRows(t, conn, "SELECT count() FROM schema_migrations", migrationCount-1)
		}
		res, err := schema.Apply(tctx(t), conn, o, srv.Version())
		if err != nil || !slices.Equal(res.Applied, []uint32{8}) {
			t.Fatalf("upgrade %d = %+v, %v", i, res, err)
		}
	}
	var parent string
	if err := conn.QueryRow(tctx(t), "SELECT lower(hex(parent_span_id)) FROM latency_events WHERE span_id = toFixedString('old', 8)").
		Scan(&parent); err != nil || parent != "0000000000000000" {
		t.Fatalf("old row's parent after the upgrade = %q (%v), want none", parent, err)
	}
	waitRows(t, conn, "SELECT count() FROM call_events", 0)

	e := startExporter(t, testConfig(srv, db), nopSettings())
	lats, calls := graphTraffic(old, 10)
	td := ptrace.NewTraces()
	appendByUnit(td, lats, calls)
	push(t, e, td)
	if got, want := readGraph(t, srv.ReadOnlyConn(t, db), "production", old, old.Add(11*time.Second)),
		wantGraph(lats, calls, "production"); !reflect.DeepEqual(got, want) {
		t.Errorf("graph after the upgrade:\n got %+v\nwant %+v", got, want)
	}
}
