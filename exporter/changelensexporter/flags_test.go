package changelensexporter

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/changelens/changelens/internal/eventspan"
	"github.com/changelens/changelens/testkit/chtest"
)

func flagEval(service, key, variant string, at time.Time, trace byte) eventspan.FlagEvaluation {
	return eventspan.FlagEvaluation{Resource: eventspan.Resource{Service: service, Environment: "production"},
		Key: key, Variant: variant, Time: at.UnixNano(), TraceID: pcommon.TraceID{trace, 1}, SpanID: pcommon.SpanID{trace, 2}}
}

// Flag evaluation events from both signals become flag_evaluations rows;
// those that cannot be credited to anything are counted by reason, and log
// records the processor did not mark are ignored.
func TestEncodeFlagEvaluations(t *testing.T) {
	now := time.Now()
	at := now.Add(-time.Minute)
	good := flagEval("checkout", "new-checkout", "on", at, 1)
	noKey := flagEval("checkout", "", "on", at, 2)
	noVariant := flagEval("checkout", "k", "", at, 3)
	noTrace := flagEval("checkout", "k", "on", at, 4)
	noTrace.TraceID = pcommon.TraceID{}
	noService := flagEval("", "k", "on", at, 5)
	future := flagEval("checkout", "k", "on", now.Add(48*time.Hour), 6)

	var enc encoder
	enc.reset(now, 30)
	td := ptrace.NewTraces()
	eventspan.AppendFlagEvaluations(td, good, noKey, noVariant, noTrace, noService, future)
	enc.encode(td)
	ld := plog.NewLogs()
	eventspan.AppendFlagEvaluationLogs(ld, good)
	foreign := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	foreign.AppendEmpty().Body().SetStr("GET /items 200")
	foreign.AppendEmpty().Body().SetStr("GET /cart 200")
	enc.encodeLogs(ld)

	c := &enc.flag
	if c.rows() != 2 {
		t.Fatalf("%d rows, want the good evaluation from each signal", c.rows())
	}
	for i := range 2 {
		if c.service[i] != "checkout" || c.environment[i] != "production" || c.key[i] != "new-checkout" || c.variant[i] != "on" ||
			c.time[i] != at.Unix() || c.timeNs[i] != uint64(at.UnixNano()) ||
			string(c.traceIDs[16*i:16*i+16]) != string(good.TraceID[:]) || string(c.spanIDs[8*i:8*i+8]) != string(good.SpanID[:]) {
			t.Errorf("row %d: %s %s %s %s %d %d", i, c.service[i], c.environment[i], c.key[i], c.variant[i], c.time[i], c.timeNs[i])
		}
	}
	for r, want := range map[reason]int64{rInvalidFlagEvaluation: 3, rMissingService: 1, rFutureTimestamp: 1} {
		if enc.invalid[r] != want {
			t.Errorf("invalid %s = %d, want %d", reasonNames[r], enc.invalid[r], want)
		}
	}
	if enc.ignored != 0 || enc.ignoredLogs != 2 {
		t.Errorf("ignored spans %d, log records %d; want 0 and 2", enc.ignored, enc.ignoredLogs)
	}
}

// The traces and the logs exporter of one configuration share one
// exporter (one connection pool, one schema apply) and write the same
// table; an evaluation delivered twice (a retry, a second collector) reads
// as one and merges into one row.
func TestIntegrationFlagEvaluationsThroughFactory(t *testing.T) {
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	cfg := testConfig(srv, db)
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	f := NewFactory()
	traces, err := f.CreateTraces(context.Background(), metadatatestSettings(tel), cfg)
	if err != nil {
		t.Fatal(err)
	}
	logs, err := f.CreateLogs(context.Background(), metadatatestSettings(tel), cfg)
	if err != nil {
		t.Fatal(err)
	}
	sharedExporters.Lock()
	shared := sharedExporters.m[cfg]
	sharedExporters.Unlock()
	if shared == nil {
		t.Fatal("no shared exporter for the configuration")
	}
	host := componenttest.NewNopHost()
	if err := traces.Start(context.Background(), host); err != nil {
		t.Fatal(err)
	}
	if err := logs.Start(context.Background(), host); err != nil {
		t.Fatal(err)
	}
	if shared.running != 2 {
		t.Fatalf("running = %d, want both signals on one exporter", shared.running)
	}

	at := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	var spans, records []eventspan.FlagEvaluation
	for i := range 10 {
		e := flagEval("checkout", "new-checkout", []string{"on", "off"}[i%2], at.Add(time.Duration(i)*time.Second), byte(i+1))
		if i < 4 {
			spans = append(spans, e)
		} else {
			records = append(records, e)
		}
	}
	td := ptrace.NewTraces()
	eventspan.AppendFlagEvaluations(td, spans...)
	if err := traces.ConsumeTraces(context.Background(), td); err != nil {
		t.Fatal(err)
	}
	for range 2 { // delivered twice
		ld := plog.NewLogs()
		eventspan.AppendFlagEvaluationLogs(ld, records...)
		ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr("not an evaluation")
		if err := logs.ConsumeLogs(context.Background(), ld); err != nil {
			t.Fatal(err)
		}
	}
	if err := traces.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if shared.closed {
		t.Fatal("the exporter closed while the logs signal runs")
	}
	if err := logs.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	sharedExporters.Lock()
	_, kept := sharedExporters.m[cfg]
	sharedExporters.Unlock()
	if !shared.closed || kept {
		t.Fatal("the exporter is not closed and forgotten after both signals shut down")
	}

	conn := srv.Conn(t, db)
	read := func(q string) uint64 {
		t.Helper()
		var n uint64
		if err := conn.QueryRow(tctx(t), q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := read("SELECT count() FROM (SELECT DISTINCT trace_id, variant FROM flag_evaluations WHERE service = 'checkout' AND flag_key = 'new-checkout')"); n != 10 {
		t.Errorf("%d distinct evaluations, want 10", n)
	}
	if n := read("SELECT countIf(variant = 'on') FROM (SELECT trace_id, any(variant) AS variant FROM flag_evaluations GROUP BY trace_id)"); n != 5 {
		t.Errorf("%d evaluations of on, want 5", n)
	}
	optimizeFinal(t, conn, db, "flag_evaluations")
	if n := read("SELECT count() FROM flag_evaluations"); n != 10 {
		t.Errorf("after merges %d rows, want 10: replays collapse", n)
	}
	assertCounter(t, tel, "otelcol_changelens_exporter_events_written",
		map[string]string{eventspan.AttrEventType: eventspan.EventFlagEvaluation}, 4+2*6)
	assertCounter(t, tel, "otelcol_changelens_exporter_log_records_ignored", nil, 2)
}
