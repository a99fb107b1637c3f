package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"reflect"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/changelens/changelens/processor/changelensprocessor"
	"github.com/changelens/changelens/queryapi/store"
	"github.com/changelens/changelens/testkit/chtest"
	"github.com/changelens/changelens/testkit/fakestore"
	"github.com/changelens/changelens/testkit/pipelinetest"
)

// The fake's client reads agree with the store's on ClickHouse: a seeded
// app's sessions, users, variants, crashes, purchases, returns and
// pre-period loads, sent as a browser SDK sends them through the
// processor and exporter, and added to the fake as the rows they become.
func TestFakeClientReadsAgree(t *testing.T) {
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	at := time.Now().Add(-96 * time.Hour).Truncate(time.Hour)
	rng := rand.New(rand.NewPCG(25, 15))
	fake := fakestore.New()
	td := ptrace.NewTraces()
	seq := 0
	add := func(e fakestore.ClientEvent, purchase bool) {
		seq++
		rs := td.ResourceSpans().AppendEmpty()
		ra := rs.Resource().Attributes()
		ra.PutStr("service.name", e.Service)
		ra.PutStr("deployment.environment.name", e.Environment)
		ra.PutStr("service.version", e.Version)
		ra.PutStr("os.name", "iOS")
		spans := rs.ScopeSpans().AppendEmpty().Spans()
		s := spans.AppendEmpty()
		s.SetTraceID(pcommon.TraceID{0xfa, byte(seq >> 16), byte(seq >> 8), byte(seq)})
		s.SetSpanID(pcommon.SpanID{1, byte(seq >> 16), byte(seq >> 8), byte(seq)})
		s.SetKind(ptrace.SpanKindInternal)
		s.SetName(e.Operation)
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(e.Start))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(e.Start.Add(e.Duration)))
		s.Attributes().PutStr("session.id", e.SessionID)
		s.Attributes().PutStr("user.id", e.UserID)
		if v := e.Cohorts["feature_flag.layout"]; v != "" {
			ev := s.Events().AppendEmpty()
			ev.SetName("feature_flag.evaluation")
			ev.SetTimestamp(pcommon.NewTimestampFromTime(e.Start))
			ev.Attributes().PutStr("feature_flag.key", "layout")
			ev.Attributes().PutStr("feature_flag.result.variant", v)
		}
		if e.Crashed {
			s.Events().AppendEmpty().SetName("device.crash")
		}
		fake.AddClientEvents(e)
		if purchase {
			c := spans.AppendEmpty()
			c.SetTraceID(s.TraceID())
			c.SetSpanID(pcommon.SpanID{2, byte(seq >> 16), byte(seq >> 8), byte(seq)})
			c.SetParentSpanID(s.SpanID())
			c.SetName("purchase")
			end := e.Start.Add(e.Duration)
			c.SetStartTimestamp(pcommon.NewTimestampFromTime(end))
			c.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
			c.Attributes().PutStr("session.id", e.SessionID) // as the SDKs' session processors put it on every span
			c.Attributes().PutStr("user.id", e.UserID)
			fake.AddOutcomes(fakestore.Outcome{Service: e.Service, Environment: e.Environment, Name: "purchase", Time: end,
				SessionID: e.SessionID, UserID: e.UserID, ID: fmt.Sprint(seq)})
		}
	}
	for u := range 120 {
		user := fmt.Sprintf("u%d", u)
		for sess := range 1 + rng.IntN(3) {
			session := fmt.Sprintf("%s-s%d", user, sess)
			start := at.Add(time.Duration(rng.IntN(7200)) * time.Second) // two hours
			if rng.IntN(4) == 0 {
				start = at.Add(-time.Duration(1+rng.IntN(40)) * time.Hour) // the pre-period, or before
			}
			if rng.IntN(5) == 0 {
				start = at.Add(time.Duration(50+rng.IntN(20)) * time.Hour) // a return
			}
			variant := []string{"a", "b", ""}[rng.IntN(3)]
			for load := range 1 + rng.IntN(3) {
				e := fakestore.ClientEvent{Service: "app", Environment: "production", Version: []string{"1", "2"}[rng.IntN(2)],
					Operation: []string{"Home", "Cart"}[rng.IntN(2)], Start: start.Add(time.Duration(load) * time.Minute),
					Duration: time.Duration(50+rng.IntN(900)) * time.Millisecond, SessionID: session, UserID: user,
					Crashed: rng.IntN(20) == 0}
				if variant != "" {
					e.Cohorts = map[string]string{"feature_flag.layout": variant}
				}
				add(e, rng.IntN(6) == 0)
			}
		}
	}
	p := pipelinetest.New(t, srv.Addr(), db, 1, nil, func(c *changelensprocessor.Config) {
		c.Outcomes = []changelensprocessor.OutcomeConfig{{Name: "purchase", SpanName: "purchase"}}
	})
	p.Send(t, td)
	p.Close(t)
	st, err := store.Open(context.Background(), store.Config{DSN: fmt.Sprintf("clickhouse://%s:%s@%s/%s",
		chtest.ReadOnlyUser, url.QueryEscape(chtest.ReadOnlyPassword), srv.Addr(), db)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	ctx := context.Background()
	same := func(what string, got, want any, gotErr, wantErr error) {
		t.Helper()
		if gotErr != nil || wantErr != nil {
			t.Fatalf("%s: store %v, fake %v", what, gotErr, wantErr)
		}
		if !reflect.DeepEqual(norm(got), norm(want)) {
			t.Errorf("%s:\nstore %+v\nfake  %+v", what, got, want)
		}
	}
	for _, dim := range []string{"version", "feature_flag.layout"} {
		q := store.ClientQuery{Service: "app", Environment: "production", Dimension: dim, From: at, To: at.Add(2 * time.Hour)}
		ops := []string{"Home", "Cart"}
		a, errA := st.ClientCohorts(ctx, q, ops, 1000)
		b, errB := fake.ClientCohorts(ctx, q, ops, 1000)
		same(dim+" ClientCohorts", a, b, errA, errB)
		for _, by := range []store.ConversionsBy{store.BySession, store.ByUser} {
			a, errA := st.Conversions(ctx, q, by, "purchase", "", 1000)
			b, errB := fake.Conversions(ctx, q, by, "purchase", "", 1000)
			same(dim+" Conversions by "+string(by), a, b, errA, errB)
		}
		ra, errA := st.Retention(ctx, q, 2, time.Now(), 1000)
		rb, errB := fake.Retention(ctx, q, 2, time.Now(), 1000)
		same(dim+" Retention", ra, rb, errA, errB)
		for _, m := range []store.CovariateMetric{{Operations: ops}, {Outcome: "purchase"}} {
			for _, limit := range []int{1000, 17} {
				a, errA := st.UnitCovariates(ctx, q, at.Add(-24*time.Hour), m, limit)
				b, errB := fake.UnitCovariates(ctx, q, at.Add(-24*time.Hour), m, limit)
				same(fmt.Sprintf("%s UnitCovariates %+v %d", dim, m, limit), a, b, errA, errB)
			}
		}
	}
}

// norm makes answers comparable: through JSON, so times compare by
// instant rather than by location, with floats to 9 significant digits
// (sums may add in another order).
func norm(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return roundFloats(out)
}

func roundFloats(v any) any {
	switch x := v.(type) {
	case float64:
		f, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'g', 9, 64), 64)
		return f
	case []any:
		for i := range x {
			x[i] = roundFloats(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = roundFloats(x[k])
		}
	}
	return v
}
