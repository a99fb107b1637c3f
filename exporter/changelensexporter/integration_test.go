package changelensexporter

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/changelens/changelens/testkit/statstest"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/changelens/changelens/exporter/changelensexporter/internal/metadata"
	"github.com/changelens/changelens/exporter/changelensexporter/internal/metadatatest"
	"github.com/changelens/changelens/internal/eventspan"
	"github.com/changelens/changelens/internal/schema"
	"github.com/changelens/changelens/internal/stats"
	"github.com/changelens/changelens/testkit/chtest"
	"github.com/changelens/changelens/testkit/eventspantest"
)

// testConfig is a config for srv/db with no queue and no retry, so push
// errors surface directly.
func testConfig(srv *chtest.Server, db string) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.Endpoints = []string{srv.Addr()}
	cfg.Database = db
	cfg.QueueConfig = configoptional.None[exporterhelper.QueueBatchConfig]()
	cfg.BackOffConfig.Enabled = false
	cfg.RetentionDays = 0
	cfg.DialTimeout = 2 * time.Second
	return cfg
}

// startExporter builds and starts the exporter core (without exporterhelper).
func startExporter(t testing.TB, cfg *Config, set exporter.Settings) *chExporter {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	e, err := newExporter(cfg, set)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = e.shutdown(context.Background()) })
	return e
}

func nopSettings() exporter.Settings { return exportertest.NewNopSettings(metadata.Type) }

func tctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func push(t testing.TB, e *chExporter, td ptrace.Traces) {
	t.Helper()
	if err := e.pushTraces(tctx(t), td); err != nil {
		t.Fatalf("push: %v", err)
	}
}

func hexID(b []byte) string { return hex.EncodeToString(b) }

// ---------------------------------------------------------------------------

type latencyRow struct {
	Service     string    `ch:"service"`
	Environment string    `ch:"environment"`
	Version     string    `ch:"version"`
	Operation   string    `ch:"operation"`
	Time        time.Time `ch:"time"`
	StartNs     uint64    `ch:"start_time_ns"`
	DurationNs  uint64    `ch:"duration_ns"`
	IsError     uint8     `ch:"is_error"`
	HTTPStatus  uint16    `ch:"http_status"`
	Weight      float64   `ch:"weight"`
	TraceID     string    `ch:"trace_id"`
	SpanID      string    `ch:"span_id"`
}

func TestIntegrationLatencyRoundTrip(t *testing.T) {
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	e := startExporter(t, testConfig(srv, db), nopSettings())

	start := time.Now().Add(-2 * time.Hour).Truncate(time.Second).Add(987654321)
	events := []eventspantest.Latency{
		{Service: "checkout", Environment: "production", Version: "1.4.2", Operation: "GET /api/v1/items/{id}",
			Start: start, Duration: 1234567 * time.Nanosecond, HTTPStatus: 200,
			TraceID: eventspantest.TraceID(1), SpanID: eventspantest.SpanID(1)},
		{Service: "checkout", Environment: "production", Version: "1.4.2", Operation: "POST /api/v1/orders",
			Start: start.Add(time.Minute), Duration: 3 * time.Second, Error: true, HTTPStatus: 503, Weight: 2.5,
			TraceID: eventspantest.TraceID(2), SpanID: eventspantest.SpanID(2)},
		{Service: "search", Environment: "staging", Version: "", Operation: "search.Svc/Query",
			Start: start.Add(2 * time.Minute), Duration: 0, Weight: 16,
			TraceID: eventspantest.TraceID(3), SpanID: eventspantest.SpanID(3)},
		{Service: "ünïcode-svc", Environment: "prod'; DROP TABLE x; --", Version: "v\"1", Operation: "GET /ä/{id}",
			Start: start.Add(3 * time.Minute), Duration: time.Hour, HTTPStatus: 404,
			TraceID: eventspantest.TraceID(4), SpanID: eventspantest.SpanID(4)},
	}
	td := ptrace.NewTraces()
	eventspantest.AppendLatency(td, events...)
	eventspantest.AppendForeign(td, 3)
	push(t, e, td)

	var rows []latencyRow
	conn := srv.Conn(t, db)
	if err := conn.Select(tctx(t), &rows, `SELECT service, environment, version, operation, time, start_time_ns,
		duration_ns, is_error, http_status, weight, lower(hex(trace_id)) AS trace_id, lower(hex(span_id)) AS span_id
		FROM latency_events ORDER BY start_time_ns`); err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(events) {
		t.Fatalf("read %d rows, want %d", len(rows), len(events))
	}
	for i, ev := range events {
		r := rows[i]
		w := ev.Weight
		if w == 0 {
			w = 1
		}
		var isErr uint8
		if ev.Error {
			isErr = 1
		}
		want := latencyRow{
			Service: ev.Service, Environment: ev.Environment, Version: ev.Version, Operation: ev.Operation,
			Time: ev.Start.Truncate(time.Second).UTC(), StartNs: uint64(ev.Start.UnixNano()), DurationNs: uint64(ev.Duration),
			IsError: isErr, HTTPStatus: uint16(ev.HTTPStatus), Weight: w,
			TraceID: hexID(ev.TraceID[:]), SpanID: hexID(ev.SpanID[:]),
		}
		r.Time = r.Time.UTC()
		if r != want {
			t.Errorf("row %d:\n got %+v\nwant %+v", i, r, want)
		}
	}

	// The read-only user (the API's) can read it and cannot write.
	ro := srv.ReadOnlyConn(t, db)
	var n uint64
	if err := ro.QueryRow(tctx(t), "SELECT count() FROM latency_events").Scan(&n); err != nil || n != uint64(len(events)) {
		t.Fatalf("read-only count = %d, %v", n, err)
	}
	if err := ro.Exec(tctx(t), "TRUNCATE TABLE latency_events"); err == nil {
		t.Fatal("read-only user could truncate")
	}
}

// ---------------------------------------------------------------------------

type rollupKey struct {
	service, env, version, op string
	minute                    int64
}

type rawAgg struct {
	weight, errW, durW float64
	n                  uint64
	durs               []float64
	ws                 []float64 // rounded weights, as the digest uses
}

func TestIntegrationRollupMatchesRaw(t *testing.T) {
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	e := startExporter(t, testConfig(srv, db), nopSettings())

	rng := rand.New(rand.NewPCG(1, 2))
	base := time.Now().Add(-3 * time.Hour).Truncate(time.Minute)
	weights := []float64{1, 1, 1, 2, 4, 10, 2.5, 1.3}
	// 4 pushes (several parts, so the rollup must merge partial states),
	// 6 minutes, 2 versions, 2 operations.
	pushRandomLatencies(t, e, rng, 4, base, 6*time.Minute, 0.8, weights)

	conn := srv.Conn(t, db)
	// Aggregates from the raw table, computed in Go.
	var raw []struct {
		Service  string    `ch:"service"`
		Env      string    `ch:"environment"`
		Version  string    `ch:"version"`
		Op       string    `ch:"operation"`
		Minute   time.Time `ch:"minute"`
		Weight   float64   `ch:"weight"`
		IsError  uint8     `ch:"is_error"`
		Duration uint64    `ch:"duration_ns"`
	}
	if err := conn.Select(tctx(t), &raw, `SELECT service, environment, version, operation,
		toStartOfMinute(time) AS minute, weight, is_error, duration_ns FROM latency_events`); err != nil {
		t.Fatal(err)
	}
	if len(raw) != 12000 {
		t.Fatalf("raw rows = %d", len(raw))
	}
	want := map[rollupKey]*rawAgg{}
	for _, r := range raw {
		k := rollupKey{r.Service, r.Env, r.Version, r.Op, r.Minute.Unix()}
		a := want[k]
		if a == nil {
			a = &rawAgg{}
			want[k] = a
		}
		a.weight += r.Weight
		a.errW += float64(r.IsError) * r.Weight
		a.durW += float64(r.Duration) * r.Weight
		a.n++
		a.durs = append(a.durs, float64(r.Duration))
		a.ws = append(a.ws, math.Max(1, math.RoundToEven(r.Weight)))
	}

	var rolled []struct {
		Service   string    `ch:"service"`
		Env       string    `ch:"environment"`
		Version   string    `ch:"version"`
		Op        string    `ch:"operation"`
		Minute    time.Time `ch:"minute"`
		Count     float64   `ch:"request_count"`
		Errors    float64   `ch:"error_count"`
		DurSum    float64   `ch:"duration_sum_ns"`
		Samples   uint64    `ch:"sample_count"`
		Quantiles []float64 `ch:"q"`
	}
	if err := conn.Select(tctx(t), &rolled, `SELECT service, environment, version, operation, minute,
		sumMerge(request_count) AS request_count, sumMerge(error_count) AS error_count,
		sumMerge(duration_sum_ns) AS duration_sum_ns, countMerge(sample_count) AS sample_count,
		arrayMap(x -> toFloat64(x), quantilesTDigestWeightedMerge(0.5, 0.9, 0.95, 0.99)(duration_digest)) AS q
		FROM latency_rollup_1m GROUP BY service, environment, version, operation, minute`); err != nil {
		t.Fatal(err)
	}
	if len(rolled) != len(want) {
		t.Fatalf("rollup has %d groups, raw has %d", len(rolled), len(want))
	}
	levels := []float64{0.5, 0.9, 0.95, 0.99}
	worst := 0.0
	for _, r := range rolled {
		a := want[rollupKey{r.Service, r.Env, r.Version, r.Op, r.Minute.Unix()}]
		if a == nil {
			t.Fatalf("rollup group %s/%s/%s/%s/%s not in raw data", r.Service, r.Env, r.Version, r.Op, r.Minute)
		}
		if !approxEqual(r.Count, a.weight, 1e-9) || !approxEqual(r.Errors, a.errW, 1e-9) || !approxEqual(r.DurSum, a.durW, 1e-9) || r.Samples != a.n {
			t.Errorf("group %s %s %s: rollup count=%v errors=%v dursum=%v n=%d; raw %v %v %v %d",
				r.Version, r.Op, r.Minute, r.Count, r.Errors, r.DurSum, r.Samples, a.weight, a.errW, a.durW, a.n)
		}
		// Quantiles: the digest's value must sit at (nearly) the right
		// weighted rank of the raw durations.
		for i, p := range levels {
			lo, hi := weightedRank(a.durs, a.ws, r.Quantiles[i])
			dev := 0.0
			if p < lo {
				dev = lo - p
			} else if p > hi {
				dev = p - hi
			}
			worst = math.Max(worst, dev)
			if dev > 0.03 {
				t.Errorf("group %s %s %s: p%.0f = %.0f ns sits at rank [%.3f, %.3f]", r.Version, r.Op, r.Minute, p*100, r.Quantiles[i], lo, hi)
			}
		}
	}
	t.Logf("%d rollup groups match the raw aggregates; worst quantile rank error %.4f", len(rolled), worst)
}

// TestIntegrationHistogramsMatchRaw checks latency_hist_1m and
// latency_hist_1h (schema v2) against the raw events: weighted counts, error
// counts, duration sums and sample counts exactly; percentiles of the merged
// histogram within 2.5 % of the raw weighted quantiles (definition: the
// smallest duration whose cumulative weight reaches q·W), per minute, per
// hour and over the whole range (histograms merged across rows and parts).
func TestIntegrationHistogramsMatchRaw(t *testing.T) {
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	e := startExporter(t, testConfig(srv, db), nopSettings())

	rng := rand.New(rand.NewPCG(7, 8))
	// 2 hours and a half, starting mid-hour, so there are 3 hours and every
	// hour row merges several inserts.
	base := time.Now().Add(-5 * time.Hour).Truncate(time.Hour).Add(20 * time.Minute)
	weights := []float64{1, 1, 1, 2, 4, 10, 2.5, 1.3, 0.4}
	pushRandomLatencies(t, e, rng, 5, base, 150*time.Minute, 0.9, weights)

	conn := srv.Conn(t, db)
	var raw []struct {
		Version  string    `ch:"version"`
		Op       string    `ch:"operation"`
		Time     time.Time `ch:"time"`
		Weight   float64   `ch:"weight"`
		IsError  uint8     `ch:"is_error"`
		Duration uint64    `ch:"duration_ns"`
	}
	if err := conn.Select(tctx(t), &raw, `SELECT version, operation, time, weight, is_error, duration_ns FROM latency_events`); err != nil {
		t.Fatal(err)
	}
	if len(raw) != 15000 {
		t.Fatalf("raw rows = %d", len(raw))
	}
	type key struct {
		version, op string
		t           int64
	}
	levels := []float64{0.5, 0.9, 0.95, 0.99}
	for _, tc := range []struct {
		table, col string
		key        func(version, op string, t time.Time) key
	}{
		{"latency_hist_1m", "minute", func(v, op string, t time.Time) key { return key{v, op, t.Truncate(time.Minute).Unix()} }},
		{"latency_hist_1h", "hour", func(v, op string, t time.Time) key { return key{v, op, t.Truncate(time.Hour).Unix()} }},
		// everything merged into one histogram per version
		{"latency_hist_1h", "toDateTime(0, 'UTC')", func(v, _ string, _ time.Time) key { return key{v, "", 0} }},
	} {
		want := map[key]*rawAgg{}
		for _, r := range raw {
			k := tc.key(r.Version, r.Op, r.Time)
			a := want[k]
			if a == nil {
				a = &rawAgg{}
				want[k] = a
			}
			a.weight += r.Weight
			a.errW += float64(r.IsError) * r.Weight
			a.durW += float64(r.Duration) * r.Weight
			a.n++
			a.durs = append(a.durs, float64(r.Duration))
			a.ws = append(a.ws, r.Weight)
		}
		opExpr := "operation"
		if strings.HasPrefix(tc.col, "toDateTime(0") {
			opExpr = "''"
		}
		var got []struct {
			Version string    `ch:"version"`
			Op      string    `ch:"op"`
			T       time.Time `ch:"t"`
			Count   float64   `ch:"request_count"`
			Errors  float64   `ch:"error_count"`
			DurSum  float64   `ch:"duration_sum_ns"`
			Samples uint64    `ch:"sample_count"`
			Keys    []uint16  `ch:"keys"`
			Vals    []float64 `ch:"vals"`
		}
		q := `SELECT version, ` + opExpr + ` AS op, ` + tc.col + ` AS t,
			sumMerge(request_count) AS request_count, sumMerge(error_count) AS error_count,
			sumMerge(duration_sum_ns) AS duration_sum_ns, countMerge(sample_count) AS sample_count,
			(sumMapMerge(hist) AS m).1 AS keys, m.2 AS vals
			FROM ` + tc.table + ` GROUP BY version, op, t`
		if err := conn.Select(tctx(t), &got, q); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s by %s: %d groups, raw has %d", tc.table, tc.col, len(got), len(want))
		}
		worst, maxKeys := 0.0, 0
		for _, g := range got {
			a := want[key{g.Version, g.Op, g.T.Unix()}]
			if a == nil {
				t.Fatalf("%s group %s/%s/%s not in raw data", tc.table, g.Version, g.Op, g.T)
			}
			if !approxEqual(g.Count, a.weight, 1e-9) || !approxEqual(g.Errors, a.errW, 1e-9) || !approxEqual(g.DurSum, a.durW, 1e-9) || g.Samples != a.n {
				t.Errorf("%s group %s %s %s: count=%v errors=%v dursum=%v n=%d; raw %v %v %v %d", tc.table,
					g.Version, g.Op, g.T, g.Count, g.Errors, g.DurSum, g.Samples, a.weight, a.errW, a.durW, a.n)
			}
			hw := 0.0
			for _, v := range g.Vals {
				hw += v
			}
			if !approxEqual(hw, a.weight, 1e-9) {
				t.Errorf("%s group %s %s %s: histogram weight %v, raw %v", tc.table, g.Version, g.Op, g.T, hw, a.weight)
			}
			maxKeys = max(maxKeys, len(g.Keys))
			qs, ok := stats.BucketQuantiles(g.Keys, g.Vals, levels, schema.HistValue)
			if !ok {
				t.Fatalf("%s group %s %s %s: empty histogram", tc.table, g.Version, g.Op, g.T)
			}
			for i, p := range levels {
				rq := statstest.LowerQuantile(a.durs, a.ws, p)
				rel := math.Abs(qs[i]-rq) / rq
				worst = math.Max(worst, rel)
				if rel > 0.025 {
					t.Errorf("%s group %s %s %s: p%.0f = %.0f ns, raw %.0f ns (%.2f %%)", tc.table, g.Version, g.Op, g.T, p*100, qs[i], rq, rel*100)
				}
			}
		}
		t.Logf("%s by %s: %d groups match the raw aggregates; worst percentile error %.2f %%, at most %d buckets", tc.table, tc.col, len(got), worst*100, maxKeys)
	}
}

func approxEqual(a, b, rel float64) bool {
	return math.Abs(a-b) <= rel*math.Max(math.Abs(a), math.Abs(b))+1e-9
}

// weightedRank returns the weighted fraction of values < q and <= q.
func weightedRank(vals, ws []float64, q float64) (lo, hi float64) {
	var below, at, total float64
	for i, v := range vals {
		total += ws[i]
		if v < q {
			below += ws[i]
		} else if v == q {
			at += ws[i]
		}
	}
	return below / total, (below + at) / total
}

// ---------------------------------------------------------------------------

// deploymentsReadQuery is the read query documented in README.md, taken
// from it: rows of one id collapse to the greatest by (ver, earliest ns
// times, row_hash), superseded deployments are dropped. Filters on anything
// but service/environment/id go outside the collapse.
func deploymentsReadQuery(t *testing.T) string {
	t.Helper()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "### `deployment_events`")
	_, block, ok2 := strings.Cut(section, "```sql\n")
	query, _, ok3 := strings.Cut(block, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal("README.md: no sql block in the deployment_events section")
	}
	return strings.NewReplacer("changelens.deployment_events", "deployment_events",
		"{service}", "?", "{environment}", "?", "{start}", "?", "{end}", "?").Replace(query)
}

type deploymentRow struct {
	ID                string    `ch:"id"`
	Service           string    `ch:"service"`
	Environment       string    `ch:"environment"`
	Version           string    `ch:"version"`
	PreviousVersion   string    `ch:"previous_version"`
	Source            string    `ch:"source"`
	Status            string    `ch:"status"`
	RolloutStartNs    uint64    `ch:"rollout_start_ns"`
	DeployTime        time.Time `ch:"deploy_time"`
	DeployTimeNs      uint64    `ch:"deploy_time_ns"`
	CommitSHA         string    `ch:"commit_sha"`
	CommitTimeNs      uint64    `ch:"commit_time_ns"`
	RollbackCandidate uint8     `ch:"rollback_candidate"`
	ExternalID        string    `ch:"external_id"`
	PipelineName      string    `ch:"pipeline_name"`
	PipelineRunID     string    `ch:"pipeline_run_id"`
	SupersededBy      string    `ch:"superseded_by"`
	TraceID           string    `ch:"trace_id"`
}

func readDeployments(t *testing.T, conn driver.Conn, service, env string, from, to time.Time) []deploymentRow {
	t.Helper()
	var rows []deploymentRow
	if err := conn.Select(tctx(t), &rows, deploymentsReadQuery(t), service, env, from, to); err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestIntegrationDeploymentWrittenTwiceReadsAsOne(t *testing.T) {
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	cfg := testConfig(srv, db)
	// Two collectors (replicas) writing the same events.
	c1 := startExporter(t, cfg, nopSettings())
	c2 := startExporter(t, testConfig(srv, db), nopSettings())

	t0 := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	const inferredID, explicitID = "11111111111111111111111111111111", "22222222222222222222222222222222"
	inferred := eventspantest.Deployment{
		ID: inferredID, Service: "checkout", Environment: "production", Version: "2.0.0", PreviousVersion: "1.9.0",
		Source: eventspan.SourceInferred, TraceID: eventspantest.TraceID(7), SpanID: eventspantest.SpanID(7),
	}
	late, early := inferred, inferred
	late.RolloutStart, late.DeployTime = t0.Add(30*time.Second), t0.Add(30*time.Second) // replica 1 saw a later first span
	early.RolloutStart, early.DeployTime = t0, t0                                       // replica 2 saw the real first span

	td := ptrace.NewTraces()
	eventspantest.AppendDeployment(td, late)
	push(t, c1, td)
	td = ptrace.NewTraces()
	eventspantest.AppendDeployment(td, early)
	push(t, c2, td)
	push(t, c2, td) // and a plain retry duplicate

	conn := srv.Conn(t, db)
	from, to := t0.Add(-time.Hour), t0.Add(time.Hour)
	rows := readDeployments(t, conn, "checkout", "production", from, to)
	if len(rows) != 1 {
		t.Fatalf("read %d deployments, want 1: %+v", len(rows), rows)
	}
	if r := rows[0]; r.ID != inferredID || r.DeployTimeNs != uint64(t0.UnixNano()) || r.Version != "2.0.0" ||
		r.PreviousVersion != "1.9.0" || r.Source != "inferred" || r.Status != "succeeded" {
		t.Fatalf("winner = %+v, want the earliest first-seen", r)
	}

	// An explicit deploy span arrives: the processor emits the explicit
	// deployment (own id) and re-emits the inferred one superseded. Both
	// replicas do; replica 2 had seen the inferred first span earlier, so it
	// reports an earlier rollout start for the same deploy time.
	deployTime := t0.Add(2 * time.Minute)
	explicit := eventspantest.Deployment{
		ID: explicitID, Service: "checkout", Environment: "production", Version: "2.0.0", PreviousVersion: "1.9.0",
		Source: eventspan.SourceExplicit, Status: eventspan.StatusSucceeded,
		RolloutStart: t0.Add(time.Minute), DeployTime: deployTime,
		CommitSHA: "deadbeef", CommitTime: t0.Add(-2 * time.Hour), ExternalID: "gh-deploy-77",
		PipelineName: "deploy-prod", PipelineRunID: "4242",
		TraceID: eventspantest.TraceID(8), SpanID: eventspantest.SpanID(8),
	}
	explicitFromReplica2 := explicit
	explicitFromReplica2.RolloutStart = t0
	superseded := late
	superseded.SupersededBy = explicitID

	td = ptrace.NewTraces()
	eventspantest.AppendDeployment(td, explicit, superseded)
	push(t, c1, td)
	td = ptrace.NewTraces()
	eventspantest.AppendDeployment(td, explicitFromReplica2)
	push(t, c2, td)

	check := func(stage string) {
		t.Helper()
		rows := readDeployments(t, conn, "checkout", "production", from, to)
		if len(rows) != 1 {
			t.Fatalf("%s: read %d deployments, want 1: %+v", stage, len(rows), rows)
		}
		r := rows[0]
		want := deploymentRow{
			ID: explicitID, Service: "checkout", Environment: "production", Version: "2.0.0", PreviousVersion: "1.9.0",
			Source: "explicit", Status: "succeeded", RolloutStartNs: uint64(t0.UnixNano()),
			DeployTime: deployTime.Truncate(time.Second).UTC(), DeployTimeNs: uint64(deployTime.UnixNano()),
			CommitSHA: "deadbeef", CommitTimeNs: uint64(explicit.CommitTime.UnixNano()),
			ExternalID: "gh-deploy-77", PipelineName: "deploy-prod", PipelineRunID: "4242",
			TraceID: hexID(explicit.TraceID[:]),
		}
		r.DeployTime = r.DeployTime.UTC()
		if r != want {
			t.Fatalf("%s:\n got %+v\nwant %+v", stage, r, want)
		}
	}
	check("before restart")

	// Restart: a new exporter instance on the same database finds the schema
	// applied and writes the same event again.
	if err := c1.shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	c3 := startExporter(t, testConfig(srv, db), nopSettings())
	td = ptrace.NewTraces()
	eventspantest.AppendDeployment(td, explicit)
	push(t, c3, td)
	check("after restart")

	// Merges collapse identical rows only (the retry duplicate and the
	// re-sent explicit event) and the answer stays the same.
	optimizeFinal(t, conn, db, "deployment_events")
	var perID []struct {
		ID string `ch:"id"`
		N  uint64 `ch:"n"`
	}
	if err := conn.Select(tctx(t), &perID, "SELECT id, count() AS n FROM deployment_events GROUP BY id ORDER BY id"); err != nil {
		t.Fatal(err)
	}
	// inferred: late, early, late superseded; explicit: replica 1's and replica 2's.
	if len(perID) != 2 || perID[0].N != 3 || perID[1].N != 2 {
		t.Fatalf("after merge: %+v, want 3 and 2 distinct rows", perID)
	}
	check("after merge")
}

// Rows of one id with the same ver (the same deploy and rollout second) but
// other content — two replicas' first spans within one second — resolve the
// same way whatever the insertion order, before and after merges: the
// earliest nanosecond first-seen, then a fixed order on content.
func TestIntegrationDeploymentTiesResolveByContent(t *testing.T) {
	srv := chtest.Shared(t)
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	base := eventspantest.Deployment{
		ID: "33333333333333333333333333333333", Service: "search", Environment: "production", Version: "4.1.0",
		PreviousVersion: "4.0.0", Source: eventspan.SourceInferred,
	}
	a, b, c := base, base, base
	a.RolloutStart, a.DeployTime = t0.Add(700*time.Millisecond), t0.Add(700*time.Millisecond)
	a.TraceID, a.SpanID = eventspantest.TraceID(1), eventspantest.SpanID(1)
	b.RolloutStart, b.DeployTime = t0.Add(200*time.Millisecond), t0.Add(200*time.Millisecond) // the earliest: wins
	b.TraceID, b.SpanID = eventspantest.TraceID(2), eventspantest.SpanID(2)
	c = b // a third replica: same instant, other first span — a tie on every time
	c.TraceID, c.SpanID = eventspantest.TraceID(3), eventspantest.SpanID(3)

	winners := map[string]bool{}
	for _, order := range [][]eventspantest.Deployment{{a, b, c}, {c, b, a}, {b, c, a}} {
		db := srv.NewDatabase(t)
		e := startExporter(t, testConfig(srv, db), nopSettings())
		for _, d := range order { // one insert per row: separate parts, as from replicas
			td := ptrace.NewTraces()
			eventspantest.AppendDeployment(td, d)
			push(t, e, td)
		}
		conn := srv.Conn(t, db)
		read := func() deploymentRow {
			rows := readDeployments(t, conn, "search", "production", t0.Add(-time.Hour), t0.Add(time.Hour))
			if len(rows) != 1 {
				t.Fatalf("read %d deployments, want 1", len(rows))
			}
			return rows[0]
		}
		before := read()
		optimizeFinal(t, conn, db, "deployment_events")
		after := read()
		before.DeployTime, after.DeployTime = before.DeployTime.UTC(), after.DeployTime.UTC()
		if before != after {
			t.Fatalf("order %d…: a merge changed the answer:\n before %+v\n after  %+v", order[0].TraceID[15], before, after)
		}
		if before.DeployTimeNs != uint64(b.DeployTime.UnixNano()) {
			t.Errorf("winner deploy time %d, want the earliest first-seen %d", before.DeployTimeNs, b.DeployTime.UnixNano())
		}
		winners[before.TraceID] = true
	}
	if len(winners) != 1 {
		t.Fatalf("insertion order changed the winner of a tie: %v", winners)
	}
}

// ---------------------------------------------------------------------------

func TestIntegrationSchemaApplyTwiceIsNoop(t *testing.T) {
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	conn := srv.Conn(t, db)
	o := schema.Options{Database: db, RetentionDays: 30, Features: schema.FeaturesFor(srv.Version())}
	// Applied reports each migration once it is recorded, in order; the
	// exporter logs it as the progress of a slow ON CLUSTER start.
	var reported []uint32
	o.Applied = func(v uint32, name string) {
		if name == "" {
			t.Errorf("migration %d reported without its name", v)
		}
		reported = append(reported, v)
	}

	res, err := schema.Apply(tctx(t), conn, o, srv.Version())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Applied, []uint32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19}) || res.Current != latestVersion {
		t.Fatalf("first apply = %+v", res)
	}
	if !slices.Equal(reported, res.Applied) {
		t.Fatalf("reported %v, applied %v", reported, res.Applied)
	}
	reported = nil
	before := showCreate(t, conn, db)

	res, err = schema.Apply(tctx(t), conn, o, srv.Version())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Applied) != 0 || res.Current != latestVersion {
		t.Fatalf("second apply = %+v, want nothing applied", res)
	}
	if len(reported) != 0 {
		t.Fatalf("second apply reported %v", reported)
	}
	var n uint64
	if err := conn.QueryRow(tctx(t), "SELECT count() FROM schema_migrations").Scan(&n); err != nil || n != migrationCount {
		t.Fatalf("schema_migrations rows = %d, %v", n, err)
	}
	if after := showCreate(t, conn, db); after != before {
		t.Fatalf("schema changed on second apply:\n%s\n---\n%s", before, after)
	}

	// An apply interrupted before it was recorded is repeated safely (every
	// statement is IF NOT EXISTS).
	srv.Exec(t, "TRUNCATE TABLE "+db+".schema_migrations")
	res, err = schema.Apply(tctx(t), conn, o, srv.Version())
	if err != nil || len(res.Applied) != migrationCount {
		t.Fatalf("re-apply after lost record = %+v, %v", res, err)
	}
	if after := showCreate(t, conn, db); after != before {
		t.Fatal("schema changed on re-apply")
	}

	// Upgrade: a database at version 1 (no histograms, no deployment_events,
	// no cohort columns, no verdict tables, no call events yet) gets
	// versions 2 to 8 only.
	for _, obj := range []string{"latency_hist_1m_mv", "latency_hist_1h_mv", "latency_hist_1m", "latency_hist_1h", "deployment_events",
		"version_presence_mv", "version_presence", "cohort_hist_1m_mv", "cohort_hist_1m", "deployment_verdicts", "notification_log",
		"call_events", "error_kinds_1m_mv", "error_kinds_1m", "resource_usage", "outcome_events", "experiments", "deployment_evidence", "unit_versions_1d_mv", "unit_versions_1d", "version_episodes"} {
		srv.Exec(t, "DROP TABLE "+db+"."+obj)
	}
	for _, c := range []string{"cohort_keys", "cohort_values", "response_size", "request_size", "parent_span_id", "error_kind", "self_time_ns", "session_id", "user_id", "crashed"} {
		srv.Exec(t, "ALTER TABLE "+db+".latency_events DROP COLUMN "+c)
	}
	srv.Exec(t, "ALTER TABLE "+db+".schema_migrations DELETE WHERE version >= 2")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := conn.QueryRow(tctx(t), "SELECT count() FROM schema_migrations").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("schema_migrations still has %d rows", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	res, err = schema.Apply(tctx(t), conn, o, srv.Version())
	if err != nil || !slices.Equal(res.Applied, []uint32{2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19}) || res.Current != latestVersion {
		t.Fatalf("upgrade from v1 = %+v, %v", res, err)
	}
	if after := showCreate(t, conn, db); after != before {
		t.Fatal("schema after upgrade differs from a fresh one")
	}

	// The exporter's start goes through the same path: nothing applied.
	e := startExporter(t, testConfig(srv, db), nopSettings())
	if v := e.serverVersion; v != srv.Version() {
		t.Fatalf("exporter detected version %q, server is %q", v, srv.Version())
	}
	if err := conn.QueryRow(tctx(t), "SELECT count() FROM schema_migrations").Scan(&n); err != nil || n != migrationCount {
		t.Fatalf("schema_migrations rows after exporter start = %d, %v", n, err)
	}
}

// latestVersion is the number of the newest embedded migration.
const latestVersion = 19

// migrationCount is the number of migrations.
const migrationCount = 19

// schemaWithout applies the whole schema to a new database, then drops the
// given tables and forgets the given migration: the database as it was
// before that migration, for upgrade tests.

func schemaWithout(t *testing.T, srv *chtest.Server, version uint32, tables ...string) (db string, conn driver.Conn, o schema.Options) {
	t.Helper()
	db = srv.NewDatabase(t)
	conn = srv.Conn(t, db)
	o = schema.Options{Database: db, Features: schema.FeaturesFor(srv.Version())}
	if _, err := schema.Apply(tctx(t), conn, o, srv.Version()); err != nil {
		t.Fatal(err)
	}
	for _, table := range tables {
		srv.Exec(t, "DROP TABLE "+db+"."+table)
	}
	srv.Exec(t, fmt.Sprintf("ALTER TABLE %s.schema_migrations DELETE WHERE version = %d", db, version))
	return db, conn, o
}

// Migration 4 carries the rows of v1's deployments table into
// deployment_events, and running it twice changes no answer.
func TestIntegrationUpgradeCopiesDeployments(t *testing.T) {
	srv := chtest.Shared(t)
	// Back to a v3 database whose v1 table holds what an older exporter wrote.
	db, conn, o := schemaWithout(t, srv, 4, "deployment_events")
	t0 := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	old := eventspantest.Deployment{
		ID: "44444444444444444444444444444444", Service: "cart", Environment: "production", Version: "7", PreviousVersion: "6",
		Source: eventspan.SourceExplicit, Status: eventspan.StatusSucceeded, RolloutStart: t0, DeployTime: t0.Add(time.Minute),
		CommitSHA: "abc", CommitTime: t0.Add(-time.Hour), TraceID: eventspantest.TraceID(9), SpanID: eventspantest.SpanID(9),
	}
	td := ptrace.NewTraces()
	eventspantest.AppendDeployment(td, old)
	enc := &encoder{}
	enc.reset(time.Now(), 0)
	enc.encode(td)
	// Today's exporter writes the old table here; it needs v9's column to.
	srv.Exec(t, "ALTER TABLE "+db+".deployments ADD COLUMN rework String DEFAULT ''")
	if err := insertDeployments(tctx(t), conn, insertSQL("`"+db+"`.`deployments`", deploymentColumnNames), &enc.dep, new(idViews)); err != nil {
		t.Fatal(err)
	}
	// deployment_events, dropped above, comes back from v4 without v9's
	// column: v9 runs again after it, as it would after v4 in an upgrade.
	srv.Exec(t, "ALTER TABLE "+db+".schema_migrations DELETE WHERE version = 9")
	waitRows(t, conn, "SELECT count() FROM schema_migrations", migrationCount-2)
	for i := 0; i < 2; i++ { // an interrupted upgrade runs the copy again
		srv.Exec(t, "ALTER TABLE "+db+".schema_migrations DELETE WHERE version IN (4, 9)")
		waitRows(t, conn, "SELECT count() FROM schema_migrations", migrationCount-2)
		res, err := schema.Apply(tctx(t), conn, o, srv.Version())
		if err != nil || !slices.Equal(res.Applied, []uint32{4, 9}) {
			t.Fatalf("upgrade = %+v, %v", res, err)
		}
		rows := readDeployments(t, conn, "cart", "production", t0.Add(-time.Hour), t0.Add(time.Hour))
		if len(rows) != 1 || rows[0].ID != old.ID || rows[0].Version != "7" || rows[0].PreviousVersion != "6" ||
			rows[0].CommitSHA != "abc" || rows[0].DeployTimeNs != uint64(old.DeployTime.UnixNano()) {
			t.Fatalf("after upgrade %d: %+v", i+1, rows)
		}
	}
}

// waitRows polls a count query until it answers want (mutations are asynchronous).
func waitRows(t *testing.T, conn driver.Conn, q string, want uint64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n uint64
		if err := conn.QueryRow(tctx(t), q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %d, want %d", q, n, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// optimizeFinal merges all parts of a table into one. OPTIMIZE is a silent
// no-op while a background merge holds some parts, so it is retried with
// optimize_throw_if_noop until one active part remains.
func optimizeFinal(t *testing.T, conn driver.Conn, db, table string) {
	t.Helper()
	ctx := clickhouse.Context(tctx(t), clickhouse.WithSettings(clickhouse.Settings{"optimize_throw_if_noop": 1}))
	var lastErr error
	for i := 0; i < 100; i++ {
		lastErr = conn.Exec(ctx, "OPTIMIZE TABLE "+db+"."+table+" FINAL")
		var parts uint64
		if err := conn.QueryRow(tctx(t), "SELECT count() FROM system.parts WHERE database = ? AND table = ? AND active", db, table).Scan(&parts); err != nil {
			t.Fatal(err)
		}
		if parts <= 1 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("OPTIMIZE %s FINAL did not merge to one part: %v", table, lastErr)
}

func showCreate(t *testing.T, conn driver.Conn, db string) string {
	t.Helper()
	var names []struct {
		Name string `ch:"name"`
	}
	if err := conn.Select(tctx(t), &names, "SELECT name FROM system.tables WHERE database = ? ORDER BY name", db); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, n := range names {
		var stmt string
		if err := conn.QueryRow(tctx(t), "SHOW CREATE TABLE "+db+"."+n.Name).Scan(&stmt); err != nil {
			t.Fatal(err)
		}
		b.WriteString(stmt + "\n")
	}
	for _, want := range []string{"latency_events", "latency_rollup_1m", "latency_rollup_1m_mv", "latency_hist_1m", "latency_hist_1m_mv",
		"latency_hist_1h", "latency_hist_1h_mv", "deployments", "deployment_events", "schema_migrations", "call_events"} {
		if !strings.Contains(b.String(), "."+want+" ") && !strings.Contains(b.String(), "."+want+"\n") {
			t.Fatalf("table %s missing:\n%s", want, b.String())
		}
	}
	return b.String()
}

// ---------------------------------------------------------------------------

func TestIntegrationRetentionSweep(t *testing.T) {
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	// A writer that keeps everything inserts old rows ...
	writer := startExporter(t, testConfig(srv, db), nopSettings())
	now := time.Now().UTC()
	var evs []eventspantest.Latency
	var calls []eventspan.Call
	for i, ago := range []int{10, 5, 3, 2, 0} {
		at := now.AddDate(0, 0, -ago).Add(-time.Minute)
		evs = append(evs, eventspantest.Latency{Service: "s", Environment: "e", Version: "1", Operation: "op",
			Start: at, Duration: time.Millisecond, Error: true, ErrorKind: "E",
			TraceID: eventspantest.TraceID(uint64(i + 1)), SpanID: eventspantest.SpanID(uint64(i + 1))})
		calls = append(calls, call(unit("s", "e", "1"), "GET", "db", at, time.Millisecond, uint64(i+1), eventspantest.SpanID(uint64(100+i))))
	}
	td := ptrace.NewTraces()
	eventspantest.AppendLatency(td, evs...)
	eventspan.AppendCall(td, calls...)
	for i, ago := range []int{10, 5, 3, 2, 0} {
		eventspan.AppendIncident(td, eventspan.Incident{ID: fmt.Sprintf("otlp:%d", i), Resource: eventspan.Resource{Service: "s", Environment: "e"},
			Source: eventspan.IncidentSourceOTLP, Opened: now.AddDate(0, 0, -ago).Add(-time.Minute).UnixNano()})
		eventspan.AppendCommit(td, eventspan.Commit{Service: "s", Repository: "o/s", SHA: fmt.Sprintf("%040d", i),
			Time: now.AddDate(0, 0, -ago).Add(-time.Minute).UnixNano()})
		eventspan.AppendFlagEvaluations(td, eventspan.FlagEvaluation{Resource: eventspan.Resource{Service: "s", Environment: "e"},
			Key: "f", Variant: "on", Time: now.AddDate(0, 0, -ago).Add(-time.Minute).UnixNano(), TraceID: eventspantest.TraceID(uint64(i + 1))})
	}
	push(t, writer, td)

	// ... and an exporter with retention_days: 3 sweeps them.
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	cfg := testConfig(srv, db)
	cfg.RetentionDays = 3
	e := startExporter(t, cfg, metadatatestSettings(tel))

	dropped, err := e.sweepRetention(tctx(t), now)
	if err != nil {
		t.Fatal(err)
	}
	// days 10 and 5 ago, in latency_events, the rollup, both histograms,
	// version_presence, cohort_hist_1m, call_events, incident_events,
	// commit_events, flag_evaluations, error_kinds_1m and unit_versions_1d;
	// day 3 ago is the first day kept (today + 3 previous days).
	if dropped != 24 {
		t.Fatalf("dropped %d partitions, want 24", dropped)
	}
	conn := srv.Conn(t, db)
	cutoff := retentionCutoff(now, 3)
	for _, q := range []string{
		"SELECT count() FROM latency_events WHERE time < toDateTime(?)",
		"SELECT count() FROM latency_rollup_1m WHERE minute < toDateTime(?)",
		"SELECT count() FROM latency_hist_1m WHERE minute < toDateTime(?)",
		"SELECT count() FROM latency_hist_1h WHERE hour < toDateTime(?)",
		"SELECT count() FROM version_presence WHERE bucket < toDateTime(?)",
		"SELECT count() FROM call_events WHERE time < toDateTime(?)",
		"SELECT count() FROM incident_events WHERE opened_time < toDateTime(?)",
		"SELECT count() FROM commit_events WHERE commit_time < toDateTime(?)",
		"SELECT count() FROM flag_evaluations WHERE time < toDateTime(?)",
		"SELECT count() FROM error_kinds_1m WHERE minute < toDateTime(?)",
		"SELECT count() FROM unit_versions_1d WHERE day_start < toDateTime(?)",
	} {
		var n uint64
		if err := conn.QueryRow(tctx(t), q, cutoff.Unix()).Scan(&n); err != nil || n != 0 {
			t.Fatalf("%s: %d rows left, %v", q, n, err)
		}
	}
	var kept uint64
	for _, table := range []string{"latency_events", "call_events", "incident_events", "commit_events", "flag_evaluations"} {
		if err := conn.QueryRow(tctx(t), "SELECT count() FROM "+table).Scan(&kept); err != nil || kept != 3 {
			t.Fatalf("%s: kept %d rows, want 3", table, kept)
		}
	}
	// A second sweep has nothing to do.
	if dropped, err := e.sweepRetention(tctx(t), now); err != nil || dropped != 0 {
		t.Fatalf("second sweep dropped %d, %v", dropped, err)
	}
	assertCounter(t, tel, "otelcol_changelens_exporter_retention_partitions_dropped", nil, 24)
}

// ---------------------------------------------------------------------------

func TestIntegrationTransientErrorsAreRetryable(t *testing.T) {
	srv := chtest.New(t) // dedicated: this test stops ClickHouse
	db := "changelens"
	srv.Stop(t)

	// The collector may start before ClickHouse: start succeeds, pushes fail
	// with retryable errors.
	cfg := testConfig(srv, db)
	cfg.DialTimeout = 500 * time.Millisecond
	e := startExporter(t, cfg, nopSettings())
	td := ptrace.NewTraces()
	eventspantest.AppendLatency(td, eventspantest.Latency{Service: "s", Environment: "e", Operation: "op",
		Start: time.Now().Add(-time.Minute), Duration: time.Millisecond,
		TraceID: eventspantest.TraceID(1), SpanID: eventspantest.SpanID(1)})
	step := time.Now()
	lap := func(what string) { t.Logf("%s: %s", what, time.Since(step).Round(time.Millisecond)); step = time.Now() }
	err := e.pushTraces(tctx(t), td)
	if err == nil || consumererrorIsPermanent(err) {
		t.Fatalf("push with ClickHouse down = %v, want a retryable error", err)
	}
	lap("failed push, server down")

	srv.Start(t)
	lap("server start")
	push(t, e, td) // schema applied lazily, then inserted
	lap("push with lazy schema")
	srv.Stop(t)
	lap("server stop")
	if err := e.pushTraces(tctx(t), td); err == nil || consumererrorIsPermanent(err) {
		t.Fatalf("push after ClickHouse stopped = %v, want a retryable error", err)
	}
	lap("failed push, server stopped")
	srv.Start(t)
	lap("server start")
	push(t, e, td)
	lap("push after restart")

	// The same span pushed twice is stored once.
	var n uint64
	if err := srv.Conn(t, db).QueryRow(tctx(t), "SELECT count() FROM latency_events").Scan(&n); err != nil || n != 1 {
		t.Fatalf("rows = %d, %v; want 1", n, err)
	}
}

// A replayed batch, and a batch half of whose spans are stored already, add
// only what is new — to the raw table and to every rollup; with deduplicate
// off, a replay is stored twice.
func TestIntegrationReplayIsStoredOnce(t *testing.T) {
	srv := chtest.Shared(t)
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	db := srv.NewDatabase(t)
	e := startExporter(t, testConfig(srv, db), metadatatestSettings(tel))
	// One base for every batch: the same span has the same time in each
	// (a base taken per batch moved when a minute turned between them).
	base := time.Now().Add(-time.Hour).Truncate(time.Minute)
	batch := func(from, to int) ptrace.Traces {
		td := ptrace.NewTraces()
		for i := from; i < to; i++ {
			eventspantest.AppendLatency(td, eventspantest.Latency{Service: "s", Environment: "e", Version: "1", Operation: "op",
				Start: base.Add(time.Duration(i) * time.Second), Duration: time.Millisecond,
				TraceID: eventspantest.TraceID(uint64(i + 1)), SpanID: eventspantest.SpanID(uint64(i + 1))})
		}
		return td
	}
	push(t, e, batch(0, 100))
	push(t, e, batch(0, 100))
	push(t, e, batch(50, 150))
	conn := srv.Conn(t, db)
	for q, want := range map[string]uint64{
		"SELECT count() FROM latency_events":                            150,
		"SELECT uniqExact(trace_id, span_id) FROM latency_events":       150,
		"SELECT toUInt64(sumMerge(request_count)) FROM latency_hist_1m": 150,
		"SELECT toUInt64(sumMerge(request_count)) FROM latency_hist_1h": 150,
	} {
		var n uint64
		if err := conn.QueryRow(tctx(t), q).Scan(&n); err != nil || n != want {
			t.Errorf("%s = %d, %v; want %d", q, n, err, want)
		}
	}
	assertCounter(t, tel, "otelcol_changelens_exporter_events_deduplicated", nil, 150)

	// The same span IDs in other traces are other spans.
	other := batch(0, 10)
	forEachSpan(other, func(s ptrace.Span) { s.SetTraceID(eventspantest.TraceID(1 << 40)) })
	push(t, e, other)
	var n uint64
	if err := conn.QueryRow(tctx(t), "SELECT count() FROM latency_events").Scan(&n); err != nil || n != 160 {
		t.Errorf("after spans with known span IDs in another trace: %d rows, %v; want 160", n, err)
	}

	cfg := testConfig(srv, db)
	cfg.Deduplicate = false
	plain := startExporter(t, cfg, nopSettings())
	push(t, plain, batch(0, 100))
	if err := conn.QueryRow(tctx(t), "SELECT count() FROM latency_events").Scan(&n); err != nil || n != 260 {
		t.Errorf("without deduplicate: %d rows, %v; want 260", n, err)
	}
}

func TestIntegrationBadDataIsPermanent(t *testing.T) {
	srv := chtest.Shared(t)
	td := ptrace.NewTraces()
	eventspantest.AppendLatency(td, eventspantest.Latency{Service: "s", Environment: "e", Operation: "not-a-number",
		Start: time.Now().Add(-time.Minute), Duration: time.Millisecond,
		TraceID: eventspantest.TraceID(1), SpanID: eventspantest.SpanID(1)})

	t.Run("server rejects the data", func(t *testing.T) {
		// A materialized view that parses operation as a number: ClickHouse
		// rejects the insert with a parse error.
		db := srv.NewDatabase(t)
		e := startExporter(t, testConfig(srv, db), nopSettings())
		srv.Exec(t, "CREATE TABLE "+db+".ops (n UInt32) ENGINE = MergeTree ORDER BY n")
		srv.Exec(t, "CREATE MATERIALIZED VIEW "+db+".ops_mv TO "+db+".ops AS SELECT toUInt32(operation) AS n FROM "+db+".latency_events")
		err := e.pushTraces(tctx(t), td)
		if err == nil || !consumererrorIsPermanent(err) {
			t.Fatalf("push = %v, want a permanent error", err)
		}
		t.Logf("permanent: %v", err)
	})

	t.Run("column type mismatch", func(t *testing.T) {
		// A hand-made table whose http_status cannot hold the exporter's data.
		db := srv.NewDatabase(t)
		createMismatchedTables(t, srv, db)
		cfg := testConfig(srv, db)
		cfg.CreateSchema = false
		e := startExporter(t, cfg, nopSettings())
		err := e.pushTraces(tctx(t), td)
		if err == nil || !consumererrorIsPermanent(err) {
			t.Fatalf("push = %v, want a permanent error", err)
		}
		t.Logf("permanent: %v", err)
	})

	t.Run("exporterhelper does not retry it", func(t *testing.T) {
		db := srv.NewDatabase(t)
		createMismatchedTables(t, srv, db)
		cfg := testConfig(srv, db)
		cfg.CreateSchema = false
		cfg.BackOffConfig.Enabled = true
		cfg.BackOffConfig.InitialInterval = 10 * time.Millisecond
		cfg.BackOffConfig.MaxElapsedTime = 0 // forever, for retryable errors
		exp, err := NewFactory().CreateTraces(context.Background(), nopSettings(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := exp.Start(context.Background(), componenttest.NewNopHost()); err != nil {
			t.Fatal(err)
		}
		defer exp.Shutdown(context.Background())
		begin := time.Now()
		if err := exp.ConsumeTraces(tctx(t), td); err == nil {
			t.Fatal("ConsumeTraces succeeded")
		}
		if d := time.Since(begin); d > 5*time.Second {
			t.Fatalf("permanent error took %s: it was retried", d)
		}
	})
}

// createMismatchedTables creates hand-made tables whose latency_events
// http_status (Date) cannot hold the exporter's data.
func createMismatchedTables(t *testing.T, srv *chtest.Server, db string) {
	srv.Exec(t, `CREATE TABLE `+db+`.latency_events (service String, environment String, version String,
		operation String, time DateTime, start_time_ns UInt64, duration_ns UInt64, is_error UInt8,
		http_status Date, weight Float64, trace_id FixedString(16), span_id FixedString(8))
		ENGINE = MergeTree ORDER BY time`)
	srv.Exec(t, `CREATE TABLE `+db+`.deployment_events (id String) ENGINE = MergeTree ORDER BY id`)
	srv.Exec(t, `CREATE TABLE `+db+`.call_events (service String) ENGINE = MergeTree ORDER BY service`)
	srv.Exec(t, `CREATE TABLE `+db+`.incident_events (id String) ENGINE = MergeTree ORDER BY id`)
	srv.Exec(t, `CREATE TABLE `+db+`.commit_events (sha String) ENGINE = MergeTree ORDER BY sha`)
	srv.Exec(t, `CREATE TABLE `+db+`.flag_evaluations (service String) ENGINE = MergeTree ORDER BY service`)
	srv.Exec(t, `CREATE TABLE `+db+`.resource_usage (service String) ENGINE = MergeTree ORDER BY service`)
	srv.Exec(t, `CREATE TABLE `+db+`.outcome_events (service String) ENGINE = MergeTree ORDER BY service`)
}

// ---------------------------------------------------------------------------

// The whole component through the factory: sending queue with batching,
// start, consume, shutdown (drains the queue), self-telemetry.
func TestIntegrationThroughFactory(t *testing.T) {
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	cfg := createDefaultConfig().(*Config)
	cfg.Endpoints = []string{srv.Addr()}
	cfg.Database = db
	cfg.Username, cfg.Password = chtest.WriterUser, chtest.WriterPassword
	q := cfg.QueueConfig.Get()
	q.Batch.Get().FlushTimeout = 100 * time.Millisecond

	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	exp, err := NewFactory().CreateTraces(context.Background(), metadatatestSettings(tel), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	const batches, perBatch = 20, 250
	for b := 0; b < batches; b++ {
		td := benchTraces(perBatch, 5)
		// make times current
		shift := time.Since(testNow)
		forEachSpan(td, func(s ptrace.Span) {
			s.SetStartTimestamp(s.StartTimestamp() + pcommonTimestamp(shift))
			s.SetEndTimestamp(s.EndTimestamp() + pcommonTimestamp(shift))
			// Each batch its own spans: deduplicate (on by default) would
			// rightly skip a batch whose spans an earlier insert stored.
			id := s.TraceID()
			id[0], id[1] = byte(b+1), 0xba
			s.SetTraceID(id)
		})
		eventspantest.AppendForeign(td, 2)
		if err := exp.ConsumeTraces(context.Background(), td); err != nil {
			t.Fatal(err)
		}
	}
	bad := ptrace.NewTraces()
	eventspantest.AppendLatency(bad, eventspantest.Latency{Service: "", Operation: "op", Start: time.Now(), Duration: time.Millisecond})
	if err := exp.ConsumeTraces(context.Background(), bad); err != nil {
		t.Fatal(err)
	}
	if err := exp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	conn := srv.Conn(t, db)
	for _, table := range []string{"latency_events", "call_events"} { // a call per entry span
		var n uint64
		if err := conn.QueryRow(tctx(t), "SELECT count() FROM "+table).Scan(&n); err != nil || n != batches*perBatch {
			t.Fatalf("%s rows = %d, %v; want %d", table, n, err, batches*perBatch)
		}
	}
	for _, typ := range []string{eventspan.EventLatency, eventspan.EventCall} {
		assertCounter(t, tel, "otelcol_changelens_exporter_events_written",
			map[string]string{eventspan.AttrEventType: typ}, batches*perBatch)
	}
	assertCounter(t, tel, "otelcol_changelens_exporter_spans_ignored", nil, batches*2)
	assertCounter(t, tel, "otelcol_changelens_exporter_events_invalid", map[string]string{"reason": reasonNames[rMissingService]}, 1)
}

// ---------------------------------------------------------------------------

// With cluster_name, data goes through Distributed tables into *_local
// tables. The harness's server has a one-shard cluster naming itself and no
// ZooKeeper: ON CLUSTER and replication are left out here (the replicated
// cluster of ZooKeeper and 2 shards × 2 replicas is tested in e2e/cluster).
func TestIntegrationDistributedTables(t *testing.T) {
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	cfg := testConfig(srv, db)
	cfg.ClusterName = chtest.ClusterName
	cfg.Replicated = false
	cfg.RetentionDays = 2
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	e, err := newExporter(cfg, nopSettings())
	if err != nil {
		t.Fatal(err)
	}
	e.schema.NoOnCluster = true
	if err := e.start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.shutdown(context.Background()) })

	td := ptrace.NewTraces()
	now := time.Now()
	var evs []eventspantest.Latency
	for i := 0; i < 100; i++ {
		evs = append(evs, eventspantest.Latency{Service: "s", Environment: "e", Version: "1", Operation: "op",
			Start: now.Add(-time.Duration(i) * time.Second), Duration: time.Millisecond,
			TraceID: eventspantest.TraceID(uint64(i + 1)), SpanID: eventspantest.SpanID(uint64(i + 1))})
	}
	eventspantest.AppendLatency(td, evs...)
	eventspantest.AppendDeployment(td, eventspantest.Deployment{ID: "33333333333333333333333333333333",
		Service: "s", Environment: "e", Version: "1", Source: eventspan.SourceInferred, RolloutStart: now, DeployTime: now})
	graphFrom := now.Add(-time.Hour).Truncate(time.Minute)
	lats, calls := graphTraffic(graphFrom, 50)
	appendByUnit(td, lats, calls)
	push(t, e, td)

	conn := srv.Conn(t, db)
	// Distributed inserts are forwarded asynchronously.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var raw, local, rolled, h1m, h1h, deps, callRows, callLocal uint64
		_ = conn.QueryRow(tctx(t), "SELECT count() FROM latency_events WHERE service = 's'").Scan(&raw)
		_ = conn.QueryRow(tctx(t), "SELECT count() FROM latency_events_local WHERE service = 's'").Scan(&local)
		_ = conn.QueryRow(tctx(t), "SELECT sumMerge(request_count) FROM latency_rollup_1m").Scan(new(float64))
		_ = conn.QueryRow(tctx(t), "SELECT countMerge(sample_count) FROM latency_rollup_1m WHERE service = 's'").Scan(&rolled)
		_ = conn.QueryRow(tctx(t), "SELECT countMerge(sample_count) FROM latency_hist_1m WHERE service = 's'").Scan(&h1m)
		_ = conn.QueryRow(tctx(t), "SELECT countMerge(sample_count) FROM latency_hist_1h WHERE service = 's'").Scan(&h1h)
		_ = conn.QueryRow(tctx(t), "SELECT count() FROM deployment_events").Scan(&deps)
		_ = conn.QueryRow(tctx(t), "SELECT count() FROM call_events").Scan(&callRows)
		_ = conn.QueryRow(tctx(t), "SELECT count() FROM call_events_local").Scan(&callLocal)
		n := uint64(len(calls))
		if raw == 100 && local == 100 && rolled == 100 && h1m == 100 && h1h == 100 && deps == 1 && callRows == n && callLocal == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("distributed=%d local=%d rollup=%d hist_1m=%d hist_1h=%d deployments=%d calls=%d calls_local=%d (want %d)",
				raw, local, rolled, h1m, h1h, deps, callRows, callLocal, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, table := range []string{"latency_events", "call_events"} {
		var engine string
		if err := conn.QueryRow(tctx(t), "SELECT engine FROM system.tables WHERE database = ? AND name = ?", db, table).Scan(&engine); err != nil || engine != "Distributed" {
			t.Fatalf("%s engine = %q, %v", table, engine, err)
		}
	}
	// The service graph join through the Distributed tables, as documented.
	if got, want := readGraph(t, srv.ReadOnlyConn(t, db), "production", graphFrom, graphFrom.Add(51*time.Second)),
		wantGraph(lats, calls, "production"); !reflect.DeepEqual(got, want) {
		t.Errorf("graph through the Distributed tables:\n got %+v\nwant %+v", got, want)
	}
	// The retention sweep finds partitions through the Distributed table and
	// drops them from the local one.
	if dropped, err := e.sweepRetention(tctx(t), now.AddDate(0, 0, 10)); err != nil || dropped < 2 {
		t.Fatalf("sweep dropped %d, %v", dropped, err)
	}
	for _, table := range []string{"latency_events_local", "call_events_local"} {
		var local uint64
		if err := conn.QueryRow(tctx(t), "SELECT count() FROM "+table).Scan(&local); err != nil || local != 0 {
			t.Fatalf("%s rows after sweep = %d, %v", table, local, err)
		}
	}
}

func forEachSpan(td ptrace.Traces, f func(ptrace.Span)) {
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		sss := td.ResourceSpans().At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				f(spans.At(k))
			}
		}
	}
}

func metadatatestSettings(tel *componenttest.Telemetry) exporter.Settings {
	return metadatatest.NewSettings(tel)
}

func consumererrorIsPermanent(err error) bool { return consumererror.IsPermanent(err) }

func pcommonTimestamp(d time.Duration) pcommon.Timestamp { return pcommon.Timestamp(d.Nanoseconds()) }

// assertCounter checks the sum of an int64 counter's data points whose
// attributes include attrs.
func assertCounter(t *testing.T, tel *componenttest.Telemetry, name string, attrs map[string]string, want int64) {
	t.Helper()
	m, err := tel.GetMetric(name)
	if err != nil {
		t.Fatalf("metric %s: %v", name, err)
	}
	sum, ok := m.Data.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("metric %s is %T", name, m.Data)
	}
	var got int64
	for _, dp := range sum.DataPoints {
		match := true
		for k, v := range attrs {
			if av, ok := dp.Attributes.Value(attribute.Key(k)); !ok || av.AsString() != v {
				match = false
			}
		}
		if match {
			got += dp.Value
		}
	}
	if got != want {
		t.Fatalf("metric %s%v = %d, want %d (%+v)", name, attrs, got, want, sum.DataPoints)
	}
}

// The queries README.md gives the API run as written, as the read-only user.
func TestIntegrationReadmeRollupQuery(t *testing.T) {
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	e := startExporter(t, testConfig(srv, db), nopSettings())
	base := time.Now().Add(-time.Hour).Truncate(time.Hour)
	var evs []eventspantest.Latency
	for i := 0; i < 600; i++ {
		evs = append(evs, eventspantest.Latency{Service: "api", Environment: "production", Version: []string{"1", "2"}[i/300],
			Operation: "GET /", Start: base.Add(time.Duration(i) * 6 * time.Second), Duration: time.Duration(10+i%10) * time.Millisecond,
			Error: i%100 == 0, TraceID: eventspantest.TraceID(uint64(i + 1)), SpanID: eventspantest.SpanID(uint64(i + 1))})
	}
	td := ptrace.NewTraces()
	eventspantest.AppendLatency(td, evs...)
	push(t, e, td)

	ro := srv.ReadOnlyConn(t, db)
	var rows []struct {
		Bucket   time.Time `ch:"bucket"`
		Version  string    `ch:"version"`
		Requests float64   `ch:"requests"`
		Errors   float64   `ch:"errors"`
		MeanNs   float64   `ch:"mean_ns"`
		Q        []float64 `ch:"q"`
	}
	// README: "Latency time series from the rollup".
	const q = `
SELECT
    toDateTime(intDiv(toUInt32(minute), ?) * ?, 'UTC') AS bucket,
    version,
    sumMerge(request_count)          AS requests,
    sumMerge(error_count)            AS errors,
    sumMerge(duration_sum_ns) / requests AS mean_ns,
    arrayMap(x -> toFloat64(x), quantilesTDigestWeightedMerge(0.5, 0.9, 0.95, 0.99)(duration_digest)) AS q
FROM latency_rollup_1m
WHERE service = ? AND environment = ? AND minute >= toDateTime(?) AND minute < toDateTime(?)
GROUP BY bucket, version
ORDER BY bucket, version`
	step := uint32(1800)
	if err := ro.Select(tctx(t), &rows, q, step, step, "api", "production", base.Unix(), base.Add(time.Hour).Unix()); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("rows = %+v", rows)
	}
	for i, r := range rows {
		if !r.Bucket.Equal(base.Add(time.Duration(i) * 30 * time.Minute)) {
			t.Errorf("bucket %d = %s", i, r.Bucket)
		}
		if r.Requests != 300 || r.Errors != 3 || len(r.Q) != 4 || r.Q[0] < 10e6 || r.Q[3] > 20e6 || r.MeanNs < 10e6 || r.MeanNs > 20e6 {
			t.Errorf("row = %+v", r)
		}
	}
}

func TestIntegrationStartFailsOnBadCredentials(t *testing.T) {
	srv := chtest.Shared(t)
	cfg := testConfig(srv, srv.NewDatabase(t))
	cfg.Username, cfg.Password = chtest.WriterUser, "wrong"
	e, err := newExporter(cfg, nopSettings())
	if err != nil {
		t.Fatal(err)
	}
	defer e.shutdown(context.Background())
	if err := e.start(context.Background(), componenttest.NewNopHost()); err == nil {
		t.Fatal("start succeeded with a wrong password")
	} else if strings.Contains(err.Error(), "wrong") {
		t.Fatalf("error leaks the password: %v", err)
	}
}

func TestIntegrationStartFailsWithoutSchema(t *testing.T) {
	srv := chtest.Shared(t)
	cfg := testConfig(srv, srv.NewDatabase(t))
	cfg.CreateSchema = false
	e, err := newExporter(cfg, nopSettings())
	if err != nil {
		t.Fatal(err)
	}
	defer e.shutdown(context.Background())
	err = e.start(context.Background(), componenttest.NewNopHost())
	if err == nil || !strings.Contains(err.Error(), "create_schema is false") {
		t.Fatalf("start = %v, want a clear error about the missing tables", err)
	}
}

// ClickHouse goes away under load and comes back: the sending queue holds the
// data, retries deliver it, nothing is lost or duplicated.
func TestIntegrationOutageNothingLost(t *testing.T) {
	srv := chtest.New(t)
	db := "changelens"
	cfg := createDefaultConfig().(*Config)
	cfg.Endpoints = []string{srv.Addr()}
	cfg.Database = db
	cfg.DialTimeout = 500 * time.Millisecond
	cfg.BackOffConfig.InitialInterval = 50 * time.Millisecond
	cfg.BackOffConfig.MaxInterval = 500 * time.Millisecond
	cfg.QueueConfig.Get().Batch.Get().FlushTimeout = 50 * time.Millisecond
	exp, err := NewFactory().CreateTraces(context.Background(), nopSettings(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	defer exp.Shutdown(context.Background())

	id := uint64(0)
	send := func(n int) {
		td := ptrace.NewTraces()
		var evs []eventspantest.Latency
		for i := 0; i < n; i++ {
			id++
			evs = append(evs, eventspantest.Latency{Service: "s", Environment: "e", Version: "1", Operation: "op",
				Start: time.Now().Add(-time.Second), Duration: time.Millisecond,
				TraceID: eventspantest.TraceID(id), SpanID: eventspantest.SpanID(id)})
		}
		eventspantest.AppendLatency(td, evs...)
		if err := exp.ConsumeTraces(context.Background(), td); err != nil {
			t.Fatalf("ConsumeTraces: %v", err)
		}
	}
	count := func() uint64 {
		var n uint64
		conn := srv.Conn(t, "")
		_ = conn.QueryRow(tctx(t), "SELECT count() FROM "+db+".latency_events").Scan(&n)
		return n
	}
	waitFor := func(want uint64) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for count() != want {
			if time.Now().After(deadline) {
				t.Fatalf("rows = %d, want %d", count(), want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	for i := 0; i < 10; i++ {
		send(100)
	}
	waitFor(1000)

	srv.Stop(t)
	for i := 0; i < 20; i++ { // accepted into the queue while ClickHouse is down
		send(100)
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // several failed attempts
	srv.Start(t)
	waitFor(3000)

	var distinct uint64
	if err := srv.Conn(t, "").QueryRow(tctx(t), "SELECT uniqExact(span_id) FROM "+db+".latency_events").Scan(&distinct); err != nil || distinct != 3000 {
		t.Fatalf("distinct events = %d, %v", distinct, err)
	}
}

// TestIntegrationReadmeHistogramQuery runs README's histogram query as the
// read-only user: its SQL percentiles equal stats.BucketQuantiles of the same
// merged histogram.
func TestIntegrationReadmeHistogramQuery(t *testing.T) {
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	e := startExporter(t, testConfig(srv, db), nopSettings())
	base := time.Now().Add(-3 * time.Hour).Truncate(time.Hour)
	var evs []eventspantest.Latency
	for i := 0; i < 1200; i++ {
		evs = append(evs, eventspantest.Latency{Service: "api", Environment: "production", Version: []string{"1", "2"}[i%2],
			Operation: "GET /", Start: base.Add(time.Duration(i) * 6 * time.Second), Duration: time.Duration(10+i%37) * time.Millisecond,
			Error: i%100 == 0, Weight: []float64{1, 2.5}[i%3/2], TraceID: eventspantest.TraceID(uint64(i + 1)), SpanID: eventspantest.SpanID(uint64(i + 1))})
	}
	td := ptrace.NewTraces()
	eventspantest.AppendLatency(td, evs...)
	push(t, e, td)

	ro := srv.ReadOnlyConn(t, db)
	var rows []struct {
		Bucket   uint32    `ch:"bucket"`
		Version  string    `ch:"version"`
		Requests float64   `ch:"requests"`
		Errors   float64   `ch:"errors"`
		Keys     []uint16  `ch:"keys"`
		Weights  []float64 `ch:"weights"`
		Cum      []float64 `ch:"cum"`
		Q        []float64 `ch:"q_ns"`
	}
	// README: the histogram query, with the placeholders bound.
	const q = `
SELECT
    toUInt32(intDiv(toUInt32(hour), ?) * ?) AS bucket,
    version,
    sumMerge(request_count) AS requests,
    sumMerge(error_count)   AS errors,
    (sumMapMerge(hist) AS h).1 AS keys,
    h.2 AS weights,
    arrayCumSum(weights) AS cum,
    arrayMap(q -> 1000 * pow(1.04, keys[arrayFirstIndex(c -> c >= q * arraySum(weights), cum)] + 0.5),
             [0.5, 0.9, 0.95, 0.99]) AS q_ns
FROM latency_hist_1h
WHERE service = ? AND environment = ?
  AND hour >= toDateTime(?) AND hour < toDateTime(?)
GROUP BY bucket, version
ORDER BY bucket, version`
	step := uint32(3600)
	if err := ro.Select(tctx(t), &rows, q, step, step, "api", "production", base.Unix(), base.Add(2*time.Hour).Unix()); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 {
		t.Fatalf("rows = %+v", rows)
	}
	var requests, errors float64
	for _, r := range rows {
		requests += r.Requests
		errors += r.Errors
		want, ok := stats.BucketQuantiles(r.Keys, r.Weights, []float64{0.5, 0.9, 0.95, 0.99}, schema.HistValue)
		if !ok || len(r.Q) != 4 {
			t.Fatalf("row = %+v", r)
		}
		for i := range want {
			if !approxEqual(r.Q[i], want[i], 1e-9) {
				t.Errorf("version %s: SQL quantiles %v, HistQuantiles %v", r.Version, r.Q, want)
			}
		}
	}
	// 800 requests of weight 1 and 400 of weight 2.5; 12 errors, 4 of them weighing 2.5.
	if requests != 1800 || errors != 18 {
		t.Errorf("requests = %v, errors = %v, want 1800, 18", requests, errors)
	}
}

// pushRandomLatencies pushes `pushes` batches of 3000 latency events of
// service "api" in production: versions 1.0.0 and 1.1.0 (the second slower),
// operations "GET /a" and "POST /b", log-normal durations (σ = sigma), starts
// uniform in [base, base+spread), 5 % errors, weights drawn from weights.
// One push per batch, so the tables merge several parts.
func pushRandomLatencies(t *testing.T, e *chExporter, rng *rand.Rand, pushes int, base time.Time, spread time.Duration, sigma float64, weights []float64) {
	t.Helper()
	id := uint64(0)
	for range pushes {
		var evs []eventspantest.Latency
		for range 3000 {
			id++
			v := []string{"1.0.0", "1.1.0"}[rng.IntN(2)]
			op := []string{"GET /a", "POST /b"}[rng.IntN(2)]
			mu := 3.0
			if v == "1.1.0" {
				mu = 3.4
			}
			durMs := math.Exp(mu + sigma*rng.NormFloat64())
			evs = append(evs, eventspantest.Latency{
				Service: "api", Environment: "production", Version: v, Operation: op,
				Start:    base.Add(time.Duration(rng.Int64N(int64(spread)))),
				Duration: time.Duration(durMs * float64(time.Millisecond)),
				Error:    rng.IntN(20) == 0, Weight: weights[rng.IntN(len(weights))],
				TraceID: eventspantest.TraceID(id), SpanID: eventspantest.SpanID(id),
			})
		}
		// one ResourceSpans per event group of equal unit: sort to make groups
		sort.Slice(evs, func(i, j int) bool { return evs[i].Version < evs[j].Version })
		td := ptrace.NewTraces()
		eventspantest.AppendLatency(td, evs...)
		push(t, e, td)
	}
}

// ---------------------------------------------------------------------------
// Same rows and percentiles on every server version.

// The t-digest of latency_rollup_1m weighs each request by its sampling weight
// rounded half up on every server (round() is half-to-even on current
// servers): the digest's total weight shows the rounding.
func TestIntegrationRollupDigestWeightRoundsHalfUp(t *testing.T) {
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	e := startExporter(t, testConfig(srv, db), nopSettings())
	minute := time.Now().Add(-time.Hour).Truncate(time.Minute)
	// half up: 1 (at least 1), 2, 3, 4, 4 = 14; half to even would give 13.
	weights := []float64{0.4, 1.5, 2.5, 3.5, 4.49}
	var evs []eventspantest.Latency
	for i, w := range weights {
		evs = append(evs, eventspantest.Latency{Service: "api", Environment: "production", Version: "1", Operation: "GET /",
			Start: minute.Add(time.Duration(i) * time.Second), Duration: time.Duration(i+1) * time.Millisecond, Weight: w,
			TraceID: eventspantest.TraceID(uint64(i + 1)), SpanID: eventspantest.SpanID(uint64(i + 1))})
	}
	td := ptrace.NewTraces()
	eventspantest.AppendLatency(td, evs...)
	push(t, e, td)

	// The state's bytes, as the server serializes it (RowBinary over HTTP:
	// the native driver cannot scan an aggregate state).
	state := httpQuery(t, srv, db, `SELECT quantilesTDigestWeightedMergeState(0.5, 0.9, 0.95, 0.99)(duration_digest)
		FROM latency_rollup_1m WHERE service = 'api' FORMAT RowBinary`)
	if got := tdigestTotalWeight(t, state); got != 14 {
		t.Fatalf("t-digest total weight %v, want 14 (weights %v rounded half up, at least 1)", got, weights)
	}
	conn := srv.Conn(t, db)
	var requests float64
	if err := conn.QueryRow(tctx(t), "SELECT sumMerge(request_count) FROM latency_rollup_1m WHERE service = 'api'").Scan(&requests); err != nil {
		t.Fatal(err)
	}
	if math.Abs(requests-12.39) > 1e-9 {
		t.Fatalf("request_count %v, want the exact Σ weight 12.39", requests)
	}
}

// httpQuery runs a query over ClickHouse's HTTP interface and returns the body.
func httpQuery(t *testing.T, srv *chtest.Server, db, q string) []byte {
	t.Helper()
	u := "http://" + srv.HTTPAddr() + "/?database=" + url.QueryEscape(db)
	resp, err := http.Post(u, "text/plain", strings.NewReader(q))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP query: %d %s %v", resp.StatusCode, body, err)
	}
	return body
}

// tdigestTotalWeight sums the centroid weights of a serialized t-digest state:
// varint count, then count × (Float32 mean, Float32 weight), little endian.
func tdigestTotalWeight(t *testing.T, b []byte) float64 {
	t.Helper()
	n, k := binary.Uvarint(b)
	if k <= 0 || len(b) != k+int(n)*8 {
		t.Fatalf("t-digest state of %d bytes: %d centroids from a %d-byte varint", len(b), n, k)
	}
	var sum float64
	for i := 0; i < int(n); i++ {
		off := k + i*8
		sum += float64(math.Float32frombits(binary.LittleEndian.Uint32(b[off+4:])))
	}
	return sum
}

// Events already past retention are dropped and counted by the exporter on
// every server: with retention_days set, a current server's table TTL would
// otherwise drop them at INSERT while 18.16 keeps them until the sweep.
func TestIntegrationExpiredEventsDroppedAlike(t *testing.T) {
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	cfg := testConfig(srv, db)
	cfg.RetentionDays = 3
	e := startExporter(t, cfg, metadatatestSettings(tel))
	now := time.Now()
	ages := []time.Duration{
		3*24*time.Hour + time.Hour,      // expired: dropped and counted
		3*24*time.Hour - 30*time.Second, // within the last minute of retention: counted as expired too
		3*24*time.Hour - time.Hour,      // kept, though its day's partition is older than today's
		time.Hour,                       // kept
	}
	var evs []eventspantest.Latency
	for i, age := range ages {
		evs = append(evs, eventspantest.Latency{Service: "api", Environment: "production", Version: "1", Operation: "GET /",
			Start: now.Add(-age), Duration: time.Millisecond,
			TraceID: eventspantest.TraceID(uint64(i + 1)), SpanID: eventspantest.SpanID(uint64(i + 1))})
	}
	td := ptrace.NewTraces()
	eventspantest.AppendLatency(td, evs...)
	push(t, e, td)

	conn := srv.Conn(t, db)
	for q, want := range map[string]uint64{
		"SELECT count() FROM latency_events":                     2,
		"SELECT countMerge(sample_count) FROM latency_rollup_1m": 2,
		"SELECT countMerge(sample_count) FROM latency_hist_1m":   2,
		"SELECT countMerge(sample_count) FROM latency_hist_1h":   2,
	} {
		var n uint64
		if err := conn.QueryRow(tctx(t), q).Scan(&n); err != nil || n != want {
			t.Errorf("%s = %d (%v), want %d", q, n, err, want)
		}
	}
	assertCounter(t, tel, "otelcol_changelens_exporter_events_invalid", map[string]string{"reason": "expired"}, 2)
}

// Migration 5 back-fills version_presence from latency_events, however many
// daily partitions they span (26.x refuses more than 100 per INSERT unless
// told), and the view keeps it up to date afterwards.
func TestIntegrationUpgradeBackfillsVersionPresence(t *testing.T) {
	srv := chtest.Shared(t)
	// Back to v4, with 150 days of events (one every 10 minutes) written before.
	db, conn, o := schemaWithout(t, srv, 5, "version_presence_mv", "version_presence")
	waitRows(t, conn, "SELECT count() FROM schema_migrations", migrationCount-1)
	settings := ""
	if o.Features.PartitionLimit {
		settings = " SETTINGS max_partitions_per_insert_block = 0"
	}
	start := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -150)
	srv.Exec(t, fmt.Sprintf(`INSERT INTO %s.latency_events (service, environment, version, operation, time, start_time_ns, duration_ns, is_error, http_status, weight, trace_id, span_id)
		SELECT 'cart', 'production', if(number < 10000, '1', '2'), 'GET /', toDateTime(%d + number * 600), toUInt64(%d + number * 600) * 1000000000 + 7,
		       1000000, 0, 200, 1, toFixedString(toString(number), 16), toFixedString(toString(number), 8)
		FROM system.numbers LIMIT %d%s`, db, start.Unix(), start.Unix(), 150*144, settings))

	res, err := schema.Apply(tctx(t), conn, o, srv.Version())
	if err != nil || !slices.Equal(res.Applied, []uint32{5}) {
		t.Fatalf("upgrade = %+v, %v", res, err)
	}
	for q, want := range map[string]uint64{
		"SELECT uniqExact(toDate(bucket)) FROM version_presence":                                      150,
		"SELECT count() FROM (SELECT bucket FROM version_presence GROUP BY service, version, bucket)": 150 * 144,
		"SELECT minMerge(first_ns) FROM version_presence WHERE version = '2'":                         uint64(start.Unix()+10000*600)*1e9 + 7,
	} {
		var n uint64
		if err := conn.QueryRow(tctx(t), q).Scan(&n); err != nil || n != want {
			t.Errorf("%s = %d, %v; want %d", q, n, err, want)
		}
	}
	// New events reach it through the view.
	e := startExporter(t, testConfig(srv, db), nopSettings())
	td := ptrace.NewTraces()
	eventspantest.AppendLatency(td, eventspantest.Latency{Service: "cart", Environment: "production", Version: "3", Operation: "GET /",
		Start: time.Now().Add(-time.Minute), Duration: time.Millisecond, TraceID: eventspantest.TraceID(1), SpanID: eventspantest.SpanID(1)})
	push(t, e, td)
	waitRows(t, conn, "SELECT count() FROM version_presence WHERE version = '3'", 1)
}

// Migration 18 back-fills unit_versions_1d from latency_hist_1m, however
// many daily partitions it spans, and the view keeps it up to date: per
// version and day, the first and last minute latency_hist_1m holds.
func TestIntegrationUpgradeBackfillsUnitVersions(t *testing.T) {
	srv := chtest.Shared(t)
	db, conn, o := schemaWithout(t, srv, 18, "unit_versions_1d_mv", "unit_versions_1d")
	waitRows(t, conn, "SELECT count() FROM schema_migrations", migrationCount-1)
	settings := ""
	if o.Features.PartitionLimit {
		settings = " SETTINGS max_partitions_per_insert_block = 0"
	}
	start := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -150)
	srv.Exec(t, fmt.Sprintf(`INSERT INTO %s.latency_events (service, environment, version, operation, time, start_time_ns, duration_ns, is_error, http_status, weight, trace_id, span_id)
		SELECT 'cart', 'production', if(number < 10000, '1', '2'), 'GET /', toDateTime(%d + 300 + number * 600), toUInt64(%d + 300 + number * 600) * 1000000000 + 7,
		       1000000, 0, 200, 1, toFixedString(toString(number), 16), toFixedString(toString(number), 8)
		FROM system.numbers LIMIT %d%s`, db, start.Unix(), start.Unix(), 150*144, settings))

	res, err := schema.Apply(tctx(t), conn, o, srv.Version())
	if err != nil || !slices.Equal(res.Applied, []uint32{18}) {
		t.Fatalf("upgrade = %+v, %v", res, err)
	}
	for q, want := range map[string]uint64{
		"SELECT uniqExact(day_start) FROM unit_versions_1d":                                                                                      150,
		"SELECT count() FROM (SELECT day_start FROM unit_versions_1d GROUP BY version, day_start)":                                               151, // the day of the switch has both
		"SELECT toUInt64(minMerge(first_minute)) FROM unit_versions_1d WHERE version = '2'":                                                      uint64(start.Unix() + 300 + 10000*600),
		"SELECT toUInt64(maxMerge(last_minute)) FROM unit_versions_1d WHERE version = '1'":                                                       uint64(start.Unix() + 300 + 9999*600),
		"SELECT toUInt64(maxMerge(last_minute)) FROM unit_versions_1d WHERE day_start = toDateTime(" + strconv.FormatInt(start.Unix(), 10) + ")": uint64(start.Unix() + 300 + 143*600),
	} {
		var n uint64
		if err := conn.QueryRow(tctx(t), q).Scan(&n); err != nil || n != want {
			t.Errorf("%s = %d, %v; want %d", q, n, err, want)
		}
	}
	// New events reach it through the view.
	e := startExporter(t, testConfig(srv, db), nopSettings())
	td := ptrace.NewTraces()
	at := time.Now().Add(-time.Minute)
	eventspantest.AppendLatency(td, eventspantest.Latency{Service: "cart", Environment: "production", Version: "3", Operation: "GET /",
		Start: at, Duration: time.Millisecond, TraceID: eventspantest.TraceID(1), SpanID: eventspantest.SpanID(1)})
	push(t, e, td)
	waitRows(t, conn, "SELECT count() FROM unit_versions_1d WHERE version = '3'", 1)
}

// Migration 6 adds the cohort and body-size columns to a latency_events
// that holds rows (they read as no dimensions and no sizes), survives being
// run again after an interruption (18.16 has no ADD COLUMN IF NOT EXISTS),
// and cohort_hist_1m then rolls up every dimension of new events.
func TestIntegrationUpgradeAddsCohortColumns(t *testing.T) {
	srv := chtest.Shared(t)
	db, conn, o := schemaWithout(t, srv, 6, "cohort_hist_1m_mv", "cohort_hist_1m")
	for _, c := range []string{"cohort_keys", "cohort_values", "response_size", "request_size"} {
		srv.Exec(t, "ALTER TABLE "+db+".latency_events DROP COLUMN "+c)
	}
	// A v5 exporter's insert.
	now := time.Now().Add(-time.Hour).Truncate(time.Minute)
	srv.Exec(t, fmt.Sprintf(`INSERT INTO %s.latency_events (service, environment, version, operation, time, start_time_ns, duration_ns, is_error, http_status, weight, trace_id, span_id)
		SELECT 'cart', 'production', '1', 'GET /', toDateTime(%d), %d, 1000000, 0, 200, 1, toFixedString('old', 16), toFixedString('old', 8)
		FROM system.numbers LIMIT 1`, db, now.Unix(), now.UnixNano()))
	for i := 0; i < 2; i++ { // an interrupted upgrade runs it again
		if i > 0 {
			srv.Exec(t, "ALTER TABLE "+db+".schema_migrations DELETE WHERE version = 6")
			waitRows(t, conn, "SELECT count() FROM schema_migrations", migrationCount-1)
		}
		res, err := schema.Apply(tctx(t), conn, o, srv.Version())
		if err != nil || !slices.Equal(res.Applied, []uint32{6}) {
			t.Fatalf("upgrade %d = %+v, %v", i, res, err)
		}
	}
	var (
		keys       []string
		resp, req  int64
		oldRecords uint64
	)
	if err := conn.QueryRow(tctx(t), "SELECT cohort_keys, response_size, request_size FROM latency_events WHERE span_id = toFixedString('old', 8)").
		Scan(&keys, &resp, &req); err != nil || len(keys) != 0 || resp != -1 || req != -1 {
		t.Fatalf("old row after the upgrade: keys %v sizes %d/%d (%v), want none and -1/-1", keys, resp, req, err)
	}
	if err := conn.QueryRow(tctx(t), "SELECT count() FROM latency_events").Scan(&oldRecords); err != nil || oldRecords != 1 {
		t.Fatalf("latency_events holds %d rows (%v), want the 1 written before", oldRecords, err)
	}

	e := startExporter(t, testConfig(srv, db), nopSettings())
	td := ptrace.NewTraces()
	for i := range 4 {
		eventspantest.AppendLatency(td, eventspantest.Latency{Service: "cart", Environment: "production", Version: "2", Operation: "GET /",
			Start: now.Add(time.Duration(i) * time.Second), Duration: time.Duration(i+1) * time.Millisecond, Error: i == 3,
			TraceID: eventspantest.TraceID(uint64(10 + i)), SpanID: eventspantest.SpanID(uint64(10 + i)),
			Cohorts:      map[string]string{"feature_flag.checkout": []string{"on", "off"}[i%2], "attribute.api.protocol": "grpc"},
			ResponseSize: int64(1000 * (i + 1)), RequestSize: int64(100 * i)})
	}
	push(t, e, td)
	type row struct {
		Dimension string   `ch:"dimension"`
		Value     string   `ch:"value"`
		Requests  float64  `ch:"requests"`
		Errors    float64  `ch:"errors"`
		Samples   uint64   `ch:"samples"`
		RespKeys  []uint16 `ch:"resp_keys"`
		ReqKeys   []uint16 `ch:"req_keys"`
	}
	var rows []row
	if err := conn.Select(tctx(t), &rows, `SELECT CAST(dimension AS String) AS dimension, value, sumMerge(request_count) AS requests,
		sumMerge(error_count) AS errors, countMerge(sample_count) AS samples,
		(sumMapMerge(response_size_hist) AS r).1 AS resp_keys, (sumMapMerge(request_size_hist) AS q).1 AS req_keys
		FROM cohort_hist_1m GROUP BY dimension, value ORDER BY dimension, value`); err != nil {
		t.Fatal(err)
	}
	b := func(n uint64) uint16 { return schema.SizeBucket(n) }
	want := []row{
		{"attribute.api.protocol", "grpc", 4, 1, 4, []uint16{b(1000), b(2000), b(3000), b(4000)}, []uint16{b(0), b(100), b(200), b(300)}},
		{"feature_flag.checkout", "off", 2, 1, 2, []uint16{b(2000), b(4000)}, []uint16{b(100), b(300)}},
		{"feature_flag.checkout", "on", 2, 0, 2, []uint16{b(1000), b(3000)}, []uint16{b(0), b(200)}},
		// only the new events: the version dimension is not back-filled
		{"version", "2", 4, 1, 4, []uint16{b(1000), b(2000), b(3000), b(4000)}, []uint16{b(0), b(100), b(200), b(300)}},
	}
	// RequestSize 0 in the test helper means absent: the first event has none.
	for i := range want {
		if want[i].ReqKeys[0] == b(0) {
			want[i].ReqKeys = want[i].ReqKeys[1:]
		}
	}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("cohort_hist_1m:\n got %+v\nwant %+v", rows, want)
	}
}
