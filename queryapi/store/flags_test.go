package store

import (
	"cmp"
	"context"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/changelens/changelens/exporter/changelensexporter"
	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/testkit/chcluster"
	"github.com/changelens/changelens/testkit/chtest"
	"github.com/changelens/changelens/testkit/flagtest"
	"github.com/changelens/changelens/testkit/pipelinetest"
)

// flagAnswers is everything the store reads of a flag experiment.
type flagAnswers struct {
	values          []report.CohortDimension
	minutes, byOp   []CohortMinute
	opMinutes       []CohortMinute
	exemplars       map[string]Exemplars
	flagMinutes     []FlagMinute
	storedAnywhere  bool
	storedExperimnt bool
}

func readFlagAnswers(t *testing.T, srv *chtest.Server, db string, e *flagtest.Experiment) flagAnswers {
	t.Helper()
	return readFlagAnswersDSN(t, fmt.Sprintf("clickhouse://%s:%s@%s/%s", chtest.ReadOnlyUser, url.QueryEscape(chtest.ReadOnlyPassword), srv.Addr(), db), e)
}

func readFlagAnswersDSN(t *testing.T, dsn string, e *flagtest.Experiment) flagAnswers {
	t.Helper()
	st, err := Open(context.Background(), Config{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	// A range that does not start on a minute: both parts keep the minutes
	// that start in it.
	from, to := e.Start.Add(90*time.Second), e.Start.Add(time.Duration(e.Minutes)*time.Minute)
	q := report.CompareQuery{Service: flagtest.Service, Environment: flagtest.Environment, Start: from, End: to,
		Dimension: "feature_flag." + flagtest.Flag, Control: flagtest.Control, Treatment: flagtest.Treatment}
	var a flagAnswers
	if a.values, err = st.CohortValues(ctx, q.Service, q.Environment, from, to, 100); err != nil {
		t.Fatal(err)
	}
	if a.minutes, err = st.CohortMinutes(ctx, q, false, 10000); err != nil {
		t.Fatal(err)
	}
	if a.byOp, err = st.CohortMinutes(ctx, q, true, 10000); err != nil {
		t.Fatal(err)
	}
	op := q
	op.Operation = "POST /checkout"
	if a.opMinutes, err = st.CohortMinutes(ctx, op, false, 10000); err != nil {
		t.Fatal(err)
	}
	if a.exemplars, err = st.CohortExemplars(ctx, q); err != nil {
		t.Fatal(err)
	}
	if a.flagMinutes, err = st.FlagMinutes(ctx, analysis.UnitKey{Service: q.Service, Environment: q.Environment}, from, to); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(a.flagMinutes, func(x, y FlagMinute) int { // read in no order
		return cmp.Or(x.Minute.Compare(y.Minute), strings.Compare(x.Flag, y.Flag), strings.Compare(x.Variant, y.Variant))
	})
	if a.storedAnywhere, err = st.storedFlags(ctx, q.Service, q.Environment, "", from, to); err != nil {
		t.Fatal(err)
	}
	if a.storedExperimnt, err = st.storedFlags(ctx, q.Service, q.Environment, flagtest.Flag, from, to); err != nil {
		t.Fatal(err)
	}
	return a
}

// One flag experiment through the processor and exporter three times —
// its evaluations as span events, as log-based events through another
// replica's logs pipeline than the traces', as evaluation spans half of
// which arrive in another batch (another replica) than their entry span —
// reads the same: cohort values, minutes (whole, by operation, of one
// operation), exemplars and the attribution's flag minutes, equal to the
// experiment's own counts.
func TestIntegrationFlagShapesReadAlike(t *testing.T) {
	srv := chtest.Shared(t)
	e := flagtest.New(24, time.Now().Add(-3*time.Hour).Truncate(time.Hour), 20, 30)
	dbEvents, dbLogs, dbSpans := srv.NewDatabase(t), srv.NewDatabase(t), srv.NewDatabase(t)
	storeFlagShapes(t, e, srv.Addr(), nil, dbEvents, dbLogs, dbSpans)
	events := readFlagAnswers(t, srv, dbEvents, e)
	checkFlagAnswers(t, e, events)
	for name, db := range map[string]string{"log-based events": dbLogs, "evaluation spans": dbSpans} {
		compareFlagAnswers(t, name, readFlagAnswers(t, srv, db, e), events, true)
	}
}

// The same through Distributed tables: the three shapes into a replicated
// cluster of two shards (unit on one shard, read through a node of the
// other), where the stored evaluations' join must be GLOBAL.
func TestClusterFlagShapesReadAlike(t *testing.T) {
	c := chcluster.New(t)
	e := flagtest.New(25, time.Now().Add(-3*time.Hour).Truncate(time.Hour), 10, 20)
	cluster := func(cfg *changelensexporter.Config) {
		cfg.Endpoints = c.Endpoints()
		cfg.ClusterName = chcluster.Name
	}
	storeFlagShapes(t, e, "", cluster, "flags_events", "flags_logs", "flags_spans")
	var events flagAnswers
	for i, node := range []*chtest.Server{c.Nodes[0][0], c.Nodes[1][1]} {
		got := map[string]flagAnswers{}
		for _, db := range []string{"flags_events", "flags_logs", "flags_spans"} {
			got[db] = readFlagAnswersDSN(t, node.DSN("default", "", db), e)
		}
		if i == 0 {
			events = got["flags_events"]
			checkFlagAnswers(t, e, events)
		}
		for _, db := range []string{"flags_events", "flags_logs", "flags_spans"} {
			compareFlagAnswers(t, db+" via "+node.Addr(), got[db], events, db != "flags_events")
		}
	}
}

// storeFlagShapes stores e through the processor and exporter three times:
// its evaluations as span events into dbEvents; as log-based events through
// another replica's logs pipeline than the traces' into dbLogs; as
// evaluation spans into dbSpans, the second halves of split batches through
// another replica than their entry spans.
func storeFlagShapes(t *testing.T, e *flagtest.Experiment, addr string, mutate func(*changelensexporter.Config), dbEvents, dbLogs, dbSpans string) {
	t.Helper()
	p := pipelinetest.New(t, addr, dbEvents, 1, mutate)
	for _, td := range e.SpanEvents() {
		p.Send(t, td)
	}
	p.Close(t)

	p = pipelinetest.New(t, addr, dbLogs, 2, mutate)
	traces, logs := e.LogEvents()
	for i := range traces {
		p.Send(t, traces[i])
		p.SendLogs(t, 1, logs[i]) // another replica's logs pipeline
	}
	p.Close(t)

	p = pipelinetest.New(t, addr, dbSpans, 2, mutate)
	batches, split := e.EvaluationSpans()
	for i, td := range batches {
		r := 0
		if split[i] {
			r = 1
		}
		if err := p.Replicas[r].ConsumeTraces(context.Background(), td); err != nil {
			t.Fatal(err)
		}
	}
	p.Close(t)
}

// checkFlagAnswers checks what the store reads of e's span events against
// e's own counts.
func checkFlagAnswers(t *testing.T, e *flagtest.Experiment, events flagAnswers) {
	t.Helper()
	if events.storedAnywhere || events.storedExperimnt {
		t.Error("span events in their request's batch are stored as evaluations")
	}
	requests, errors := e.Counts()
	total := map[string]float64{}
	failed := map[string]float64{}
	for _, m := range events.minutes {
		total[m.Cohort] += m.Requests
		failed[m.Cohort] += m.Errors
	}
	// The range leaves out the first two minutes (the second starts before it).
	first := map[string]float64{}
	for _, q := range e.Requests {
		if q.Start.Before(e.Start.Add(2 * time.Minute)) {
			first[q.Variant]++
		}
	}
	for _, v := range []string{flagtest.Control, flagtest.Treatment} {
		if total[v] != float64(requests[v])-first[v] || total[v] == 0 {
			t.Errorf("%s: %v requests, the experiment has %d (%v in the first two minutes)", v, total[v], requests[v], first[v])
		}
		if failed[v] == 0 || failed[v] > float64(errors[v]) {
			t.Errorf("%s: %v errors, the experiment has %d", v, failed[v], errors[v])
		}
	}
	if len(events.values) != 2 || events.values[1].Dimension != "feature_flag."+flagtest.Flag || len(events.values[1].Values) != 2 {
		t.Errorf("cohort values %+v", events.values)
	}
	if len(events.exemplars) != 2 || events.exemplars[flagtest.Treatment].SlowestTraceID == "" || events.exemplars[flagtest.Treatment].FailedTraceID == "" {
		t.Errorf("exemplars %+v", events.exemplars)
	}
	if len(events.opMinutes) == 0 || len(events.flagMinutes) == 0 || len(events.byOp) <= len(events.minutes) {
		t.Errorf("%d minutes of one operation, %d flag minutes, %d minutes by operation (%d in all)",
			len(events.opMinutes), len(events.flagMinutes), len(events.byOp), len(events.minutes))
	}

}

// compareFlagAnswers checks that got, read of one shape of an experiment
// (with stored evaluations or not), is what was read of its span events.
func compareFlagAnswers(t *testing.T, name string, got, events flagAnswers, stored bool) {
	t.Helper()
	if got.storedAnywhere != stored || got.storedExperimnt != stored {
		t.Errorf("%s: stored evaluations %v, %v; want %v", name, got.storedAnywhere, got.storedExperimnt, stored)
	}
	for part, pair := range map[string][2]any{
		"cohort values": {got.values, events.values}, "minutes": {got.minutes, events.minutes}, "minutes by operation": {got.byOp, events.byOp},
		"minutes of one operation": {got.opMinutes, events.opMinutes}, "exemplars": {got.exemplars, events.exemplars},
		"flag minutes": {got.flagMinutes, events.flagMinutes},
	} {
		if !reflect.DeepEqual(pair[0], pair[1]) {
			t.Errorf("%s: %s read otherwise than span events:\n got %+v\nwant %+v", name, part, pair[0], pair[1])
		}
	}
}
