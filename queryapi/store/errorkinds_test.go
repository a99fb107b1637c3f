package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/changelens/changelens/exporter/changelensexporter"
	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/testkit/chcluster"
	"github.com/changelens/changelens/testkit/chtest"
	"github.com/changelens/changelens/testkit/pipelinetest"
)

// kindTraffic builds requests as an SDK sends them: a SERVER span and an
// INTERNAL child per request, the child carrying an exception event when
// the request failed with one.
type kindTraffic struct {
	td  ptrace.Traces
	seq uint64
	// traces of the requests by their exception type, in order sent
	traces map[string][]string
}

func newKindTraffic() *kindTraffic {
	return &kindTraffic{td: ptrace.NewTraces(), traces: map[string][]string{}}
}

// request adds one request of service/version at at: status 500 with an
// exception of type exc on its child when exc is set, 503 when fail5xx.
func (k *kindTraffic) request(service, version string, at time.Time, exc string, fail5xx bool) {
	k.seq++
	rs := k.td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", service)
	rs.Resource().Attributes().PutStr("deployment.environment.name", "production")
	rs.Resource().Attributes().PutStr("service.version", version)
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	var tid pcommon.TraceID
	binary.BigEndian.PutUint64(tid[:8], 0xe7)
	binary.BigEndian.PutUint64(tid[8:], k.seq)
	entry := spans.AppendEmpty()
	entry.SetTraceID(tid)
	entry.SetSpanID(pcommon.SpanID{1, byte(k.seq >> 16), byte(k.seq >> 8), byte(k.seq)})
	entry.SetKind(ptrace.SpanKindServer)
	entry.SetName("GET /items")
	entry.SetStartTimestamp(pcommon.NewTimestampFromTime(at))
	entry.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(20 * time.Millisecond)))
	entry.Attributes().PutStr("http.request.method", "GET")
	entry.Attributes().PutStr("http.route", "/items")
	status := int64(200)
	switch {
	case exc != "":
		status = 500
	case fail5xx:
		status = 503
	}
	entry.Attributes().PutInt("http.response.status_code", status)
	child := spans.AppendEmpty()
	child.SetTraceID(tid)
	child.SetSpanID(pcommon.SpanID{2, byte(k.seq >> 16), byte(k.seq >> 8), byte(k.seq)})
	child.SetParentSpanID(entry.SpanID())
	child.SetKind(ptrace.SpanKindInternal)
	child.SetName("handle")
	child.SetStartTimestamp(entry.StartTimestamp())
	child.SetEndTimestamp(entry.EndTimestamp())
	if exc != "" {
		e := child.Events().AppendEmpty()
		e.SetName("exception")
		e.SetTimestamp(pcommon.NewTimestampFromTime(at.Add(5 * time.Millisecond)))
		e.Attributes().PutStr("exception.type", exc)
		k.traces[exc] = append(k.traces[exc], fmt.Sprintf("%x", tid[:]))
	}
}

// A deployment's error kinds read back minute by minute, in both windows,
// with the history (other versions only) and the first trace after; a
// second unit in the same batch reads its own; the comparison's reads
// (rollup and raw rows) agree.
func TestIntegrationErrorKinds(t *testing.T) {
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	k, deploy := writeKindTraffic(t, srv.Addr(), db, nil)
	dsn := fmt.Sprintf("clickhouse://%s:%s@%s/%s", chtest.ReadOnlyUser, url.QueryEscape(chtest.ReadOnlyPassword), srv.Addr(), db)
	checkErrorKinds(t, dsn, k, deploy)
}

// The same through Distributed tables: a replicated cluster of two shards
// (each unit on one), read through a node of each.
func TestClusterErrorKinds(t *testing.T) {
	c := chcluster.New(t)
	k, deploy := writeKindTraffic(t, "", "kinds", func(cfg *changelensexporter.Config) {
		cfg.Endpoints = c.Endpoints()
		cfg.ClusterName = chcluster.Name
	})
	for _, node := range []*chtest.Server{c.Nodes[0][0], c.Nodes[1][1]} {
		checkErrorKinds(t, node.DSN("default", "", "kinds"), k, deploy)
	}
}

// writeKindTraffic stores the traffic of TestIntegrationErrorKinds through
// the processor and exporter; it returns it and the deployment's time.
func writeKindTraffic(t *testing.T, addr, db string, mutate func(*changelensexporter.Config)) (*kindTraffic, time.Time) {
	t.Helper()
	deploy := time.Now().Add(-3 * time.Hour).Truncate(time.Hour).Add(17 * time.Minute)
	k := newKindTraffic()
	// History: version 1 threw Old two hours before; version 2 (a canary)
	// threw Pre, which is no history of its own deployment.
	for s := 0; s < 600; s += 6 {
		at := deploy.Add(-2 * time.Hour).Add(time.Duration(s) * time.Second)
		exc := ""
		if s%60 == 0 {
			exc = "Old"
		}
		k.request("api", "1", at, exc, false)
	}
	k.request("api", "2", deploy.Add(-70*time.Minute), "Pre", false)
	// Minutes before the before window but within its hour (the lookback's
	// edge, read from the minute table): version 1 threw Edge.
	for i := range 4 {
		k.request("api", "1", deploy.Add(-45*time.Minute+time.Duration(i)*time.Second), "Edge", false)
	}
	// The windows: 20 requests a minute, one in ten 503; after the deploy
	// NPE once a minute in the first ten minutes, Old and Pre once each.
	for s := -30 * 60; s < 35*60; s += 3 {
		at := deploy.Add(time.Duration(s) * time.Second)
		version, exc := "1", ""
		if s >= 0 {
			version = "2"
		}
		m := (s - 120) / 60
		switch {
		case s >= 120 && s%60 == 0 && m < 10:
			exc = "NPE"
		case s == 600+3:
			exc = "Old"
		case s == 900+3:
			exc = "Pre"
		}
		k.request("api", version, at, exc, (s%30+30)%30 == 9)
	}
	// Another unit, deployed at the same time: its own kinds.
	for s := -30 * 60; s < 35*60; s += 10 {
		exc := ""
		if s >= 300 && s%120 == 0 {
			exc = "web.Boom"
		}
		k.request("web", "9", deploy.Add(time.Duration(s)*time.Second), exc, false)
	}
	p := pipelinetest.New(t, addr, db, 1, mutate)
	p.Send(t, k.td)
	p.Close(t)
	return k, deploy
}

// checkErrorKinds reads back what writeKindTraffic stored.
func checkErrorKinds(t *testing.T, dsn string, k *kindTraffic, deploy time.Time) {
	t.Helper()
	st, err := Open(context.Background(), Config{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := analysis.DefaultConfig()
	tl := analysis.NewTimeline([]analysis.Row{
		{ID: "a", Service: "api", Environment: "production", Version: "2", Source: report.SourceExplicit, RolloutStart: deploy, DeployTime: deploy},
		{ID: "w", Service: "web", Environment: "production", Version: "9", Source: report.SourceExplicit, RolloutStart: deploy, DeployTime: deploy},
	}, cfg)
	items := tl.Items()
	got, err := st.ErrorKinds(context.Background(), items, []int{0, 1}, cfg.ErrorKindHistory)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d deployments", len(got))
	}
	byKind := func(w ErrorKindWindows) map[string]analysis.ErrorKindCounts {
		out := map[string]analysis.ErrorKindCounts{}
		for _, c := range w.Kinds {
			out[c.Kind] = c
		}
		return out
	}
	sum := func(xs []float64) (s float64, minutes int) {
		for _, x := range xs {
			s += x
			if x > 0 {
				minutes++
			}
		}
		return s, minutes
	}
	api := byKind(got[0])
	if len(api) != 5 {
		t.Fatalf("api's kinds: %+v", got[0].Kinds)
	}
	npe := api["NPE"]
	if b, _ := sum(npe.Before); b != 0 {
		t.Errorf("NPE before = %v", b)
	}
	if a, m := sum(npe.After); a != 10 || m != 10 || len(npe.After) != 30 || len(npe.Before) != 30 {
		t.Errorf("NPE after = %v in %d minutes (%d/%d minutes long), want 10 in 10 of 30", a, m, len(npe.Before), len(npe.After))
	}
	if npe.After[0] != 1 || npe.History != 0 {
		t.Errorf("NPE: first after-window minute %v, history %v", npe.After[0], npe.History)
	}
	if npe.FirstTraceID != k.traces["NPE"][0] || !npe.FirstSeen.Equal(deploy.Add(2*time.Minute)) {
		t.Errorf("NPE first: %s at %s, want %s at %s", npe.FirstTraceID, npe.FirstSeen, k.traces["NPE"][0], deploy.Add(2*time.Minute))
	}
	fives := api["5xx"]
	if b, _ := sum(fives.Before); b != 60 {
		t.Errorf("5xx before = %v, want 60 (2 a minute)", b)
	}
	if a, _ := sum(fives.After); a != 60 {
		t.Errorf("5xx after = %v, want 60", a)
	}
	if api["Old"].History != 10 {
		t.Errorf("Old's history = %v, want version 1's 10", api["Old"].History)
	}
	if api["Pre"].History != 0 {
		t.Errorf("Pre's history = %v, want none: the deployed version's own is no history", api["Pre"].History)
	}
	if api["Edge"].History != 4 {
		t.Errorf("Edge's history = %v, want 4 (minutes at the lookback's edge)", api["Edge"].History)
	}
	if got[0].HistoryRequests != 104 {
		t.Errorf("history requests = %v, want version 1's 100 in a whole hour and 4 at the edge (the canary's request is the deployed version's)", got[0].HistoryRequests)
	}
	web := byKind(got[1])
	if a, m := sum(web["web.Boom"].After); len(web) != 1 || a != 13 || m != 13 {
		t.Errorf("web's kinds: %+v", got[1].Kinds)
	}
	if got[1].HistoryRequests != 0 {
		t.Errorf("web's history requests = %v", got[1].HistoryRequests)
	}
	// Without history: none read.
	none, err := st.ErrorKinds(context.Background(), items, []int{0}, 0)
	if err != nil || len(none) != 1 || none[0].HistoryRequests != 0 || byKind(none[0])["Old"].History != 0 {
		t.Errorf("no history: %+v, %v", none, err)
	}

	// The comparison's reads: the rollup (versions) and the raw rows (an
	// operation named) agree.
	q := report.CompareQuery{Service: "api", Environment: "production", Start: deploy.Add(-30 * time.Minute), End: deploy.Add(35 * time.Minute),
		Dimension: "version", Control: "1", Treatment: "2"}
	rollup, ok, err := st.CohortErrorKinds(context.Background(), q, 1000)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	q.Operation = "GET /items"
	raw, ok, err := st.CohortErrorKinds(context.Background(), q, 1000)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if !slices.Equal(rollup, raw) || len(rollup) == 0 {
		t.Errorf("rollup and rows differ:\n%+v\n%+v", rollup, raw)
	}
	n := 0
	for _, r := range rollup {
		if r.Kind == "NPE" {
			n++
			if r.Cohort != "2" || r.Occurrences != 1 {
				t.Errorf("NPE row %+v", r)
			}
		}
	}
	if n != 10 {
		t.Errorf("%d NPE minutes, want 10", n)
	}
	if _, _, err := st.CohortErrorKinds(context.Background(), q, 3); err == nil {
		t.Error("more rows than the limit: want an error")
	}
}
