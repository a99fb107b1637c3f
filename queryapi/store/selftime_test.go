package store

import (
	"context"
	"encoding/binary"
	"math"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/changelens/changelens/processor/changelensprocessor"
	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/testkit/chtest"
	"github.com/changelens/changelens/testkit/pipelinetest"
)

// A flag's variants served by one process: each request a 100 ms SERVER
// span with a CLIENT call, 80 ms under "off", 60 ms under "on" (two calls
// overlapping by 10 ms). Self time reads 20 ms and 40 ms per variant, 30 ms
// for the version, through the processor (self_time.enabled) and exporter.
func TestIntegrationCohortSelfTime(t *testing.T) {
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	base := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)
	td := ptrace.NewTraces()
	for i := range 200 {
		at := base.Add(time.Duration(i) * 10 * time.Second)
		variant := []string{"off", "on"}[i%2]
		rs := td.ResourceSpans().AppendEmpty()
		a := rs.Resource().Attributes()
		a.PutStr("service.name", "checkout")
		a.PutStr("deployment.environment.name", "production")
		a.PutStr("service.version", "1.0.0")
		spans := rs.ScopeSpans().AppendEmpty().Spans()
		var tid pcommon.TraceID
		binary.BigEndian.PutUint64(tid[8:], uint64(i+1))
		tid[0] = 0x5e
		span := func(id byte, parent pcommon.SpanID, kind ptrace.SpanKind, from, to time.Duration) ptrace.Span {
			s := spans.AppendEmpty()
			s.SetTraceID(tid)
			s.SetSpanID(pcommon.SpanID{id, byte(i >> 8), byte(i)})
			s.SetParentSpanID(parent)
			s.SetKind(kind)
			s.SetName("GET /cart")
			s.SetStartTimestamp(pcommon.NewTimestampFromTime(at.Add(from)))
			s.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(to)))
			return s
		}
		ms := time.Millisecond
		entry := span(1, pcommon.SpanID{}, ptrace.SpanKindServer, 0, 100*ms)
		e := entry.Events().AppendEmpty()
		e.SetName("feature_flag.evaluation")
		e.Attributes().PutStr("feature_flag.key", "new-cart")
		e.Attributes().PutStr("feature_flag.result.variant", variant)
		if variant == "off" {
			span(2, entry.SpanID(), ptrace.SpanKindClient, 10*ms, 90*ms)
		} else {
			span(2, entry.SpanID(), ptrace.SpanKindClient, 10*ms, 50*ms)
			span(3, entry.SpanID(), ptrace.SpanKindClient, 40*ms, 70*ms)
		}
	}
	p := pipelinetest.New(t, srv.Addr(), db, 1, nil, func(c *changelensprocessor.Config) { c.SelfTime.Enabled = true })
	p.Send(t, td)
	p.Close(t)

	st := usageStore(t, srv, db)
	q := report.CompareQuery{Service: "checkout", Environment: "production", Start: base, End: base.Add(time.Hour),
		Dimension: "feature_flag.new-cart", Control: "off", Treatment: "on"}
	got, err := st.CohortSelfTime(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	if off, on := got["off"], got["on"]; len(got) != 2 || off.Requests != 100 || on.Requests != 100 ||
		!near(off.MeanMs, 20) || !near(on.MeanMs, 40) || off.StdDev > 1e-6 || on.StdDev > 1e-6 {
		t.Errorf("flag cohorts' self time %+v, want 20 ms and 40 ms over 100 requests each", got)
	}
	q.Dimension, q.Control, q.Treatment = "version", "1.0.0", "2.0.0"
	got, err = st.CohortSelfTime(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if v := got["1.0.0"]; len(got) != 1 || v.Requests != 200 || !near(v.MeanMs, 30) || !near(v.StdDev, 10) {
		t.Errorf("the version's self time %+v, want 30 ± 10 ms over 200 requests", got)
	}
}
