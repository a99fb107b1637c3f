package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/usecase"
	"github.com/changelens/changelens/testkit/chtest"
)

// The rollouts of three services over 14 hours, sent as batches that each
// cover 10 minutes of traffic:
//
//	payments  20 req/min  2.0.0 → 2.1.0 at 2h (5-minute rolling update),
//	                      → 2.2.0 at 6h (latency ×3), → 2.1.0 at 9h (rollback)
//	search    20 req/min  1.0 → 1.1 at 3h (CI deploy span, ends at 3h02m),
//	                      → 1.2 at 7h, canary 1.3 on 10 % of requests
//	                      10h–10h20m then withdrawn (back to 1.2)
//	ledger    1 req/min   v1 → v2 at 5h
type replicaSpan struct {
	service, version string
	start            time.Time
	dur              time.Duration
	failed           bool
}

type replicaDeploy struct {
	service, version string
	end              time.Time
}

const replicaHours = 14

func replicaScenario(start time.Time) ([]replicaSpan, []replicaDeploy) {
	r := rand.New(rand.NewPCG(9, 9))
	var spans []replicaSpan
	at := func(d time.Duration) time.Time { return start.Add(d) }
	// rolling picks the new version with a probability rising from 0 to 1
	// over [from, from+over).
	rolling := func(t time.Time, from time.Duration, over time.Duration, old, neu string) string {
		switch f := float64(t.Sub(at(from))) / float64(over); {
		case f < 0:
			return old
		case f >= 1:
			return neu
		case r.Float64() < f:
			return neu
		}
		return old
	}
	emit := func(service string, perMinute int, version func(time.Time) (string, float64)) {
		for m := 0; m < replicaHours*60; m++ {
			for i := range perMinute {
				t := at(time.Duration(m)*time.Minute + time.Duration(i)*time.Minute/time.Duration(perMinute) + time.Duration(r.IntN(1000))*time.Millisecond)
				v, slow := version(t)
				d := time.Duration(40e6 * slow * math.Exp(0.3*r.NormFloat64()))
				spans = append(spans, replicaSpan{service, v, t, d, r.Float64() < 0.01})
			}
		}
	}
	emit("payments", 20, func(t time.Time) (string, float64) {
		switch {
		case t.Before(at(6 * time.Hour)):
			return rolling(t, 2*time.Hour, 5*time.Minute, "2.0.0", "2.1.0"), 1
		case t.Before(at(9 * time.Hour)):
			v := rolling(t, 6*time.Hour, 5*time.Minute, "2.1.0", "2.2.0")
			if v == "2.2.0" {
				return v, 3
			}
			return v, 1
		}
		return rolling(t, 9*time.Hour, 3*time.Minute, "2.2.0", "2.1.0"), 1
	})
	emit("search", 20, func(t time.Time) (string, float64) {
		switch {
		case t.Before(at(7 * time.Hour)):
			return rolling(t, 3*time.Hour, 4*time.Minute, "1.0", "1.1"), 1
		case t.Before(at(10*time.Hour)) || !t.Before(at(10*time.Hour+20*time.Minute)):
			return rolling(t, 7*time.Hour, 4*time.Minute, "1.1", "1.2"), 1
		case r.Float64() < 0.1:
			return "1.3", 1
		}
		return "1.2", 1
	})
	emit("ledger", 1, func(t time.Time) (string, float64) {
		if t.Before(at(5 * time.Hour)) {
			return "v1", 1
		}
		return "v2", 1
	})
	slices.SortStableFunc(spans, func(a, b replicaSpan) int { return a.start.Compare(b.start) })
	return spans, []replicaDeploy{{"search", "1.1", at(3*time.Hour + 2*time.Minute)}}
}

// replicaBatches cuts the scenario into 10-minute batches, in the order
// they are delivered: every fifth batch is held back and delivered after
// all the others (hours late in event time).
func replicaBatches(start time.Time, spans []replicaSpan, deploys []replicaDeploy) []ptrace.Traces {
	const window = 10 * time.Minute
	n := replicaHours * 60 / 10
	batches := make([]ptrace.Traces, n)
	res := make([]map[string]ptrace.SpanSlice, n)
	for i := range batches {
		batches[i] = ptrace.NewTraces()
		res[i] = map[string]ptrace.SpanSlice{}
	}
	for i, s := range spans {
		b := int(s.start.Sub(start) / window)
		key := s.service + "\x00" + s.version
		ss, ok := res[b][key]
		if !ok {
			rs := batches[b].ResourceSpans().AppendEmpty()
			a := rs.Resource().Attributes()
			a.PutStr("service.name", s.service)
			a.PutStr("service.version", s.version)
			a.PutStr("deployment.environment.name", "production")
			ss = rs.ScopeSpans().AppendEmpty().Spans()
			res[b][key] = ss
		}
		sp := ss.AppendEmpty()
		var tid pcommon.TraceID
		binary.BigEndian.PutUint64(tid[8:], uint64(i+1))
		sp.SetTraceID(tid)
		var sid pcommon.SpanID
		binary.BigEndian.PutUint64(sid[:], uint64(i+1))
		sp.SetSpanID(sid)
		sp.SetKind(ptrace.SpanKindServer)
		sp.SetName("GET /api")
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(s.start))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(s.start.Add(s.dur)))
		sp.Attributes().PutStr("http.request.method", "GET")
		sp.Attributes().PutStr("http.route", "/api")
		if s.failed {
			sp.Attributes().PutInt("http.response.status_code", 500)
		} else {
			sp.Attributes().PutInt("http.response.status_code", 200)
		}
	}
	for i, d := range deploys {
		b := int(d.end.Sub(start) / window)
		rs := batches[b].ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "ci")
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		var tid pcommon.TraceID
		binary.BigEndian.PutUint64(tid[:8], uint64(i+1))
		sp.SetTraceID(tid)
		sp.SetSpanID(pcommon.SpanID{0xde, 0xb1, byte(i + 1)})
		sp.SetKind(ptrace.SpanKindInternal)
		sp.SetName("deploy " + d.service)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(d.end.Add(-4 * time.Minute)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(d.end))
		a := sp.Attributes()
		a.PutStr("cicd.pipeline.task.type", "deploy")
		a.PutStr("service.name", d.service)
		a.PutStr("service.version", d.version)
		a.PutStr("deployment.environment.name", "production")
		a.PutStr("vcs.ref.head.revision", "sha-"+d.version)
	}
	var onTime, late []ptrace.Traces
	for i, b := range batches {
		if i%5 == 3 {
			late = append(late, b)
		} else {
			onTime = append(onTime, b)
		}
	}
	return append(onTime, late...)
}

type otlpClient struct {
	conn   *grpc.ClientConn
	client ptraceotlp.GRPCClient
}

func dialCollector(t *testing.T, c *collector) *otlpClient {
	t.Helper()
	conn, err := grpc.NewClient(c.otlpAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return &otlpClient{conn: conn, client: ptraceotlp.NewGRPCClient(conn)}
}

// deliver sends batch i to clients[(i+shift) % len(clients)] (round robin).
func deliver(t *testing.T, batches []ptrace.Traces, clients []*otlpClient, shift int) {
	t.Helper()
	for i, b := range batches {
		c := clients[(i+shift)%len(clients)]
		td := ptrace.NewTraces()
		b.CopyTo(td) // the collector's processor changes what it is given
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := c.client.Export(ctx, ptraceotlp.NewExportRequestFromTraces(td))
		cancel()
		require.NoError(t, err, "batch %d", i)
	}
}

type answers struct {
	deployments []report.Deployment
	dora        report.DORAReport
	// What the cluster test compares too: per-version latency summaries and
	// 5-minute series of every service, the units, and the search canary's
	// comparison.
	summaries, series []report.LatencyPoint
	units             []report.Unit
	compare           report.Comparison
}

func readAnswers(t *testing.T, ch *chtest.Server, db string, start, now time.Time) answers {
	t.Helper()
	return readAnswersDSN(t, ch.DSN(chtest.ReadOnlyUser, chtest.ReadOnlyPassword, db), start, now)
}

func readAnswersDSN(t *testing.T, dsn string, start, now time.Time) answers {
	t.Helper()
	st, err := usecase.Open(context.Background(), dsn,
		usecase.Config{Now: func() time.Time { return now }, CacheSize: -1})
	require.NoError(t, err)
	defer st.Close()
	ctx := context.Background()
	var a answers
	q := report.DeploymentQuery{Environment: "production", Start: start, End: now, PageSize: 1000}
	a.deployments, _, err = st.Deployments(ctx, q)
	require.NoError(t, err)
	a.dora, err = st.DORA(ctx, report.DORAQuery{Environment: "production", Start: start, End: now, Interval: report.IntervalAll})
	require.NoError(t, err)
	for _, svc := range []string{"payments", "search", "ledger"} {
		lq := report.LatencyQuery{Service: svc, Environment: "production", Start: start, End: now, GroupBy: report.GroupByVersion}
		sum, err := st.LatencySummary(ctx, lq)
		require.NoError(t, err)
		a.summaries = append(a.summaries, sum...)
		lq.Step = 5 * time.Minute
		ser, err := st.Latency(ctx, lq)
		require.NoError(t, err)
		a.series = append(a.series, ser...)
	}
	a.units, err = st.Units(ctx, "production")
	require.NoError(t, err)
	a.compare, err = st.Compare(ctx, report.CompareQuery{Service: "search", Environment: "production",
		Start: start.Add(10 * time.Hour), End: start.Add(10*time.Hour + 20*time.Minute), Control: "1.2", Treatment: "1.3"})
	require.NoError(t, err)
	sameNaN(a.compare.ErrorKinds)
	return a
}

// sameNaN replaces the NaNs of an error-kind answer ("not tested") by a
// value equal to itself, so two answers compare equal when they say the
// same.
func sameNaN(ek *report.ErrorKinds) {
	if ek == nil {
		return
	}
	fix := func(fs ...*float64) {
		for _, f := range fs {
			if math.IsNaN(*f) {
				*f = -1
			}
		}
	}
	fix(&ek.MDE, &ek.BeforeRequests, &ek.AfterRequests, &ek.HistoryRequests)
	for _, ks := range [][]report.ErrorKind{ek.New, ek.Rose} {
		for i := range ks {
			k := &ks[i]
			fix(&k.Before, &k.After, &k.BeforeRate, &k.AfterRate, &k.RateLow, &k.RateHigh, &k.RateRatio, &k.RatioLow, &k.RatioHigh,
				&k.Phi, &k.PValue, &k.AdjustedPValue)
		}
	}
}

func waitStored(t *testing.T, ch *chtest.Server, db string, spans int) {
	t.Helper()
	require.Eventually(t, func() bool {
		return countRows(t, ch, db, "SELECT count() FROM latency_events") >= uint64(spans)
	}, 240*time.Second, 250*time.Millisecond, "%s: rows did not arrive", db)
	time.Sleep(500 * time.Millisecond) // a batch more: nothing else may arrive
	require.Equal(t, uint64(spans), countRows(t, ch, db, "SELECT count() FROM latency_events"), db)
}

// TestReplicasAgree: the same rollouts through one collector and through
// three collectors behind a round-robin split (batches of 10 minutes, every
// fifth one delivered hours late) give identical deployments — IDs, times,
// previous versions, verdicts — and DORA figures; replaying everything
// changes nothing; a canary at 1 request/minute is one deployment.
func TestReplicasAgree(t *testing.T) {
	ch := chtest.Shared(t)
	start := time.Now().Add(-(replicaHours + 1) * time.Hour).Truncate(time.Hour)
	now := start.Add((replicaHours + 1) * time.Hour)
	spans, deploys := replicaScenario(start)
	batches := replicaBatches(start, spans, deploys)

	dbOne, dbThree := ch.NewDatabase(t), ch.NewDatabase(t)
	one := dialCollector(t, startCollector(t, clickhouseConfig(""), chEnv(ch, dbOne)...))
	var (
		three      []*otlpClient
		collectors []*collector
	)
	for range 3 {
		c := startCollector(t, clickhouseConfig(""), chEnv(ch, dbThree)...)
		collectors = append(collectors, c)
		three = append(three, dialCollector(t, c))
	}
	deliver(t, batches, []*otlpClient{one}, 0)
	deliver(t, batches, three, 0)
	waitStored(t, ch, dbOne, len(spans))
	waitStored(t, ch, dbThree, len(spans))

	a1 := readAnswers(t, ch, dbOne, start, now)
	a3 := readAnswers(t, ch, dbThree, start, now)
	assert.Equal(t, a1.deployments, a3.deployments, "deployments through 1 and 3 collectors")
	assert.Equal(t, a1.dora, a3.dora, "DORA through 1 and 3 collectors")

	// And they are the rollouts that happened.
	first := map[string]time.Time{} // service/version → first span
	for _, s := range spans {
		k := s.service + "/" + s.version
		if f, ok := first[k]; !ok || s.start.Before(f) {
			first[k] = s.start
		}
	}
	type want struct {
		service, prev, version string
		at                     time.Time
		source                 report.DeploySource
		rollback               bool
	}
	wants := []want{
		{"payments", "2.0.0", "2.1.0", first["payments/2.1.0"], report.SourceInferred, false},
		{"payments", "2.1.0", "2.2.0", first["payments/2.2.0"], report.SourceInferred, false},
		{"payments", "2.2.0", "2.1.0", start.Add(9 * time.Hour), report.SourceInferred, true}, // at the first 2.1.0 span after 2.2.0's absence began
		{"search", "1.0", "1.1", deploys[0].end, report.SourceExplicit, false},
		{"search", "1.1", "1.2", first["search/1.2"], report.SourceInferred, false},
		{"search", "1.2", "1.3", first["search/1.3"], report.SourceInferred, false},
		{"search", "1.3", "1.2", time.Time{}, report.SourceInferred, true}, // at 1.3's last span
		{"ledger", "v1", "v2", first["ledger/v2"], report.SourceInferred, false},
	}
	got := slices.Clone(a3.deployments)
	slices.SortFunc(got, func(a, b report.Deployment) int { return a.DeployTime.Compare(b.DeployTime) })
	var lines []string
	for _, d := range got {
		lines = append(lines, fmt.Sprintf("%s %s→%s %s %v rollback=%v verdict=%d", d.Service, d.PreviousVersion, d.Version,
			d.DeployTime.Sub(start), d.Source, d.Rollback, d.Verdict))
	}
	t.Logf("deployments through 3 collectors:\n%s", strings.Join(lines, "\n"))
	require.Len(t, got, len(wants), "deployments:\n%v", lines)
	for _, w := range wants {
		i := slices.IndexFunc(got, func(d report.Deployment) bool {
			return d.Service == w.service && d.PreviousVersion == w.prev && d.Version == w.version && d.Rollback == w.rollback
		})
		if !assert.GreaterOrEqual(t, i, 0, "%s %s→%s not found in\n%v", w.service, w.prev, w.version, lines) {
			continue
		}
		d := got[i]
		assert.Equal(t, w.source, d.Source, "%s %s", w.service, w.version)
		if w.service == "payments" && w.rollback {
			// The rollback's first 2.1.0 span is within its 3-minute rolling window.
			assert.True(t, !d.DeployTime.Before(w.at) && d.DeployTime.Before(w.at.Add(3*time.Minute)), "%s rollback at %s", w.service, d.DeployTime.Sub(start))
		} else if !w.at.IsZero() {
			assert.True(t, d.DeployTime.Equal(w.at), "%s %s at %s, want %s", w.service, w.version, d.DeployTime.Sub(start), w.at.Sub(start))
		}
		if w.service == "search" && w.version == "1.1" {
			assert.True(t, d.RolloutStart.Equal(deploys[0].end.Add(-4*time.Minute)), "rollout start = the CI span's start (before the first 1.1 span): %s", d.RolloutStart.Sub(start))
		}
		if w.version == "2.2.0" {
			assert.Equal(t, report.VerdictDegraded, d.Verdict, "payments 2.2.0 is 3× slower")
			assert.True(t, d.ChangeFailure)
		}
	}
	assert.Equal(t, 8, a3.dora.Summary.DeploymentCount)

	// Everything delivered again (another split): stored once, nothing changes.
	deliver(t, batches, three, 1)
	require.Eventually(t, func() bool {
		var n float64
		for _, c := range collectors {
			n += c.metric(t, "otelcol_changelens_exporter_events_deduplicated")
		}
		return n >= float64(len(spans))
	}, 120*time.Second, 250*time.Millisecond, "the replay was not processed")
	waitStored(t, ch, dbThree, len(spans))
	replayed := readAnswers(t, ch, dbThree, start, now)
	assert.Equal(t, a3.deployments, replayed.deployments, "deployments after a replay")
	assert.Equal(t, a3.dora, replayed.dora, "DORA after a replay")
}
