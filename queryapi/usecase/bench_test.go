package usecase

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/changelens/changelens/internal/schema"

	"github.com/changelens/changelens/testkit/pipelinetest"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/changelens/changelens/exporter/changelensexporter"
	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/limits"
	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/store"
	"github.com/changelens/changelens/testkit/chtest"
	"github.com/changelens/changelens/worker/writer"
)

// docs/performance.md: DORA and latency queries over 30 days answer with p95 ≤ 50 ms
// and stay flat when the raw rows grow 10×; the anchor is the same aggregate
// by direct SQL. The benchmarks load 30 days of traffic of 10 services
// (3 deployments a day each, half of them explicit CI deploys, every 7th a
// regression) at two volumes 10× apart through the real processor and
// exporter, then time, per volume:
//
//	api-cold    Service.DORA / Service.Latency (DORA: caches off)
//	api-warm    Service.DORA with the caches warm (closed windows)
//	rollup-sql  the API's SQL by direct query: DORA windows on the t-digest
//	            rollup (latency_rollup_1m), latency series on the histograms
//	            (latency_hist_1m, and latency_hist_1h for hourly series)
//	tdigest-sql latency series only: the same aggregate on the t-digest
//	            rollup, what the API read before the histograms
//	raw-sql     the same aggregate by direct SQL on latency_events
//
// and report p50-ms and p95-ms over b.N runs (plus load figures). They only
// run with -bench; use a fixed count, e.g.
//
//	go test -run '^$' -bench 'DORA|Latency' -benchtime 20x -timeout 40m ./queryapi/store/

const (
	benchServices   = 10
	benchDays       = 30
	benchDeployGap  = 8 * time.Hour // 3 deployments a day per service
	benchDORAEnv    = "production"
	benchLatencySvc = "svc03"
)

// benchVolumes are requests per minute per service: 3 → 1.3M events over
// 30 days, 30 → 13M. CHANGELENS_BENCH_PER_MINUTE (e.g. "5,50") overrides.
func benchVolumes(b *testing.B) []int {
	v := os.Getenv("CHANGELENS_BENCH_PER_MINUTE")
	if v == "" {
		return []int{3, 30}
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			b.Fatalf("CHANGELENS_BENCH_PER_MINUTE=%q: want positive integers", v)
		}
		out = append(out, n)
	}
	return out
}

type benchData struct {
	database   string
	start, end time.Time
	events     int
	load       time.Duration
	// verdictsStored: storeVerdicts wrote the settled verdicts.
	verdictsStored bool
}

var (
	benchMu     sync.Mutex
	benchLoaded = map[int]*benchData{}
)

func benchScenario(start time.Time, perMinute int) *scenario {
	sc := &scenario{
		start:      start,
		length:     benchDays * 24 * time.Hour,
		seed:       uint64(perMinute),
		baseMedian: 40 * time.Millisecond,
		sigma:      0.35,
	}
	for i := 0; i < benchServices; i++ {
		s := svcSpec{name: fmt.Sprintf("svc%02d", i), env: benchDORAEnv, perMinute: perMinute}
		s.phases = append(s.phases, phase{at: 0, version: "v0", latency: 1, errRate: 0.01})
		offset := time.Duration(i) * 47 * time.Minute
		for k := 1; ; k++ {
			at := offset + time.Duration(k)*benchDeployGap
			if at >= sc.length-time.Hour {
				break
			}
			p := phase{at: at, version: fmt.Sprintf("v%d", k), latency: 1, errRate: 0.01}
			if k%7 == 0 {
				p.latency = 1.6 // a regression, fixed by the next deploy
			}
			s.phases = append(s.phases, p)
			if i%2 == 0 {
				sc.ci = append(sc.ci, ciSpec{service: s.name, env: s.env, version: p.version, deploy: at, lead: 2 * time.Hour})
			}
		}
		if s.name == benchLatencySvc { // a 50/50 flag experiment: cohorts of a flag dimension
			s.flag = &flagSpec{key: benchFlag, share: 0.5, latency: 1, errRate: 0.01, sizeX: 0.8}
		}
		sc.services = append(sc.services, s)
	}
	return sc
}

const benchFlag = "bench-flag"

// loadBench loads one volume once per process.
func loadBench(b *testing.B, srv *chtest.Server, perMinute int) *benchData {
	b.Helper()
	benchMu.Lock()
	defer benchMu.Unlock()
	if d, ok := benchLoaded[perMinute]; ok {
		return d
	}
	db := fmt.Sprintf("bench_%d_%x", perMinute, time.Now().UnixNano()&0xffffff)
	srv.Exec(b, "CREATE DATABASE "+db)
	now := time.Now().UTC()
	end := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, -1)
	start := end.AddDate(0, 0, -benchDays)
	sc := benchScenario(start, perMinute)
	t0 := time.Now()
	p := pipelinetest.New(b, srv.Addr(), db, 1, func(c *changelensexporter.Config) {
		q := c.QueueConfig.Get()
		q.BlockOnOverflow = true // back-pressure instead of dropping
	})
	sc.feed(b, p, false)
	p.Close(b)
	d := &benchData{database: db, start: start, end: end, load: time.Since(t0)}
	conn := srv.Conn(b, db)
	var n uint64
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM latency_events").Scan(&n); err != nil {
		b.Fatal(err)
	}
	d.events = int(n)
	benchLoaded[perMinute] = d
	return d
}

func benchStore(b *testing.B, srv *chtest.Server, d *benchData, cache bool) *Service {
	b.Helper()
	cfg := Config{Limits: limits.Limits{QueryTimeout: time.Minute}}
	if !cache {
		cfg.CacheSize = -1
	}
	return openService(b, srv.DSN(chtest.ReadOnlyUser, chtest.ReadOnlyPassword, d.database), cfg)
}

// timed runs fn b.N times and reports the p50 and p95 latency in ms.
func timed(b *testing.B, fn func() error) {
	b.Helper()
	if err := fn(); err != nil { // warm-up (connections, caches of the server)
		b.Fatal(err)
	}
	durs := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if err := fn(); err != nil {
			b.Fatal(err)
		}
		durs = append(durs, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(durs)
	pct := func(q float64) float64 {
		i := int(q*float64(len(durs))+0.5) - 1
		return float64(durs[min(max(i, 0), len(durs)-1)]) / 1e6
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.95), "p95-ms")
}

func reportLoad(b *testing.B, d *benchData) {
	b.ReportMetric(float64(d.events), "events")
	b.ReportMetric(float64(d.events)/d.load.Seconds(), "load-events/s")
}

// rawWindowsSQL is sql/windows.sql computed from latency_events instead of
// the rollup: the same per-window counts, merged-digest quantiles and
// per-minute p95 values.
const rawWindowsSQL = `
SELECT w, sum(m_requests), sum(m_errors),
       arrayMap(x -> toFloat64(x), quantilesTDigestWeightedMerge(0.5, 0.9, 0.95, 0.99)(m_state)),
       groupArray(toFloat64(m_q[3]))
FROM
(
    SELECT w, k,
        sum(weight) AS m_requests,
        sum(is_error * weight) AS m_errors,
        quantilesTDigestWeighted(0.5, 0.9, 0.95, 0.99)(duration_ns, toUInt64(greatest(floor(weight + 0.5), 1))) AS m_q,
        quantilesTDigestWeightedState(0.5, 0.9, 0.95, 0.99)(duration_ns, toUInt64(greatest(floor(weight + 0.5), 1))) AS m_state
    FROM
    (
        SELECT toUInt64(indexOf(@units, concat(service, '\n', environment))) * 4294967296 + toUInt32(toStartOfMinute(time)) AS k,
               weight, is_error, duration_ns
        FROM latency_events
        WHERE service IN @services AND environment IN @environments
          AND time >= toDateTime(@from) AND time < toDateTime(@to)
          AND k IN (SELECT k FROM _cl_windows)
    ) AS minutes
    ALL INNER JOIN _cl_windows USING (k)
    GROUP BY w, k
) AS per_minute
GROUP BY w`

func drain(rows driver.Rows, err error) error {
	if err != nil {
		return err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("no rows")
	}
	return nil
}

func BenchmarkDORA(b *testing.B) {
	srv := chtest.Shared(b)
	for _, vol := range benchVolumes(b) {
		d := loadBench(b, srv, vol)
		name := fmt.Sprintf("events=%.1fM", float64(d.events)/1e6)
		q := report.DORAQuery{Environment: benchDORAEnv, Start: d.start, End: d.end, Interval: report.IntervalDay}
		ctx := context.Background()

		b.Run(name+"/api-cold", func(b *testing.B) {
			st := benchStore(b, srv, d, false)
			st.cfg.IgnoreStoredVerdicts = true // every verdict computed (what changelens-worker stores)
			var deps int
			timed(b, func() error {
				rep, err := st.DORA(ctx, q)
				deps = rep.Summary.DeploymentCount
				return err
			})
			b.ReportMetric(float64(deps), "deployments")
			reportLoad(b, d)
		})
		b.Run(name+"/api-warm", func(b *testing.B) {
			st := benchStore(b, srv, d, true)
			timed(b, func() error { _, err := st.DORA(ctx, q); return err })
		})
		// The same cold request once changelens-worker stored the settled
		// verdicts: they are read, not recomputed.
		storeVerdicts(b, srv, d)
		b.Run(name+"/api-cold-stored", func(b *testing.B) {
			st := benchStore(b, srv, d, false)
			timed(b, func() error { _, err := st.DORA(ctx, q); return err })
		})

		// The window statistics of the same deployments by direct SQL.
		st := benchStore(b, srv, d, false)
		tl, err := st.timeline(ctx, unitFilter{Environment: benchDORAEnv}, d.start, d.end)
		if err != nil {
			b.Fatal(err)
		}
		var items []*analysis.Item
		var idx []int
		for _, it := range tl.Items() {
			if !it.Deployment.Failed && !it.Deployment.DeployTime.Before(d.start) && it.Deployment.DeployTime.Before(d.end) {
				idx = append(idx, len(items))
				items = append(items, it)
			}
		}
		rollupSQL, err := st.clickhouse().SQL("windows", nil)
		if err != nil {
			b.Fatal(err)
		}
		rawSQL := rawWindowsSQL
		// sql/windows.sql reads the t-digest rollup itself: no separate t-digest line.
		for _, v := range [][2]string{{"rollup-sql", rollupSQL}, {"raw-sql", rawSQL}} {
			query := v[1]
			b.Run(name+"/"+v[0], func(b *testing.B) {
				conn := srv.Conn(b, d.database)
				timed(b, func() error {
					wq, err := store.WindowsQuery(items, idx)
					if err != nil {
						return err
					}
					qctx := clickhouse.Context(ctx, clickhouse.WithExternalTable(wq.Table))
					return drain(conn.Query(qctx, query, wq.Args...))
				})
			})
		}
	}
}

// BenchmarkDeployments times /v1/deployments' store call: the first page
// (50, newest first) of a 30-day listing of one environment, and one
// service's whole 30 days, caches off (every verdict computed, the whole
// history of version episodes read); api-page-warm is the first page with
// the caches on (settled verdicts and episodes kept, as a running API has
// them).
func BenchmarkDeployments(b *testing.B) {
	srv := chtest.Shared(b)
	for _, vol := range benchVolumes(b) {
		d := loadBench(b, srv, vol)
		name := fmt.Sprintf("events=%.1fM", float64(d.events)/1e6)
		ctx := context.Background()
		for _, c := range []struct {
			name  string
			q     report.DeploymentQuery
			cache bool
		}{
			{"api-page", report.DeploymentQuery{Environment: benchDORAEnv, Start: d.start, End: d.end}, false},
			{"api-page-warm", report.DeploymentQuery{Environment: benchDORAEnv, Start: d.start, End: d.end}, true},
			{"api-service", report.DeploymentQuery{Service: benchLatencySvc, Environment: benchDORAEnv, Start: d.start, End: d.end, PageSize: 1000}, false},
		} {
			b.Run(name+"/"+c.name, func(b *testing.B) {
				st := benchStore(b, srv, d, c.cache)
				var n int
				timed(b, func() error {
					deps, _, err := st.Deployments(ctx, c.q)
					n = len(deps)
					return err
				})
				b.ReportMetric(float64(n), "deployments")
			})
		}
	}
}

func BenchmarkLatency(b *testing.B) {
	srv := chtest.Shared(b)
	for _, vol := range benchVolumes(b) {
		d := loadBench(b, srv, vol)
		name := fmt.Sprintf("events=%.1fM", float64(d.events)/1e6)
		ctx := context.Background()
		// One service, 30 days, hourly buckets by version: 720 buckets.
		q := report.LatencyQuery{Service: benchLatencySvc, Environment: benchDORAEnv, Start: d.start, End: d.end,
			Step: time.Hour, GroupBy: report.GroupByVersion}

		b.Run(name+"/api", func(b *testing.B) {
			st := benchStore(b, srv, d, false)
			var n int
			timed(b, func() error { pts, err := st.Latency(ctx, q); n = len(pts); return err })
			b.ReportMetric(float64(n), "points")
			reportLoad(b, d)
		})
		st := benchStore(b, srv, d, false)
		rollupSQL, err := st.clickhouse().LatencySQL(q, true)
		if err != nil {
			b.Fatal(err)
		}
		tdigestSQL := `
SELECT toUInt32(intDiv(toUInt32(minute), @step) * @step) AS bucket, version AS grp,
       sumMerge(request_count), sumMerge(error_count),
       arrayMap(x -> toFloat64(x), quantilesTDigestWeightedMerge(0.5, 0.9, 0.95, 0.99)(duration_digest))
FROM latency_rollup_1m
WHERE service = @service AND environment = @environment AND minute >= toDateTime(@from) AND minute < toDateTime(@to)
GROUP BY bucket, grp ORDER BY bucket, grp LIMIT @limit`
		rawSQL := `
SELECT toUInt32(intDiv(toUInt32(time), @step) * @step) AS bucket, version AS grp,
       sum(weight), sum(is_error * weight),
       arrayMap(x -> toFloat64(x), quantilesTDigestWeighted(0.5, 0.9, 0.95, 0.99)(duration_ns, toUInt64(greatest(floor(weight + 0.5), 1))))
FROM latency_events
WHERE service = @service AND environment = @environment AND time >= toDateTime(@from) AND time < toDateTime(@to)
GROUP BY bucket, grp ORDER BY bucket, grp LIMIT @limit`
		args := []any{
			clickhouse.Named("service", q.Service), clickhouse.Named("environment", q.Environment),
			clickhouse.Named("from", q.Start.Unix()), clickhouse.Named("to", q.End.Unix()),
			clickhouse.Named("hfrom", q.Start.Unix()), clickhouse.Named("hto", q.End.Unix()),
			clickhouse.Named("operation", ""), clickhouse.Named("version", ""),
			clickhouse.Named("step", 3600), clickhouse.Named("limit", 100000),
		}
		for _, v := range [][2]string{{"rollup-sql", rollupSQL}, {"tdigest-sql", tdigestSQL}, {"raw-sql", rawSQL}} {
			query := v[1]
			b.Run(name+"/"+v[0], func(b *testing.B) {
				conn := srv.Conn(b, d.database)
				timed(b, func() error { return drain(conn.Query(ctx, query, args...)) })
			})
		}
	}
}

// BenchmarkEpisodes times the inference input alone: every unit's version
// episodes over the whole retained history (sql/episodes.sql).
func BenchmarkEpisodes(b *testing.B) {
	srv := chtest.Shared(b)
	for _, vol := range benchVolumes(b) {
		d := loadBench(b, srv, vol)
		name := fmt.Sprintf("events=%.1fM", float64(d.events)/1e6)
		st := benchStore(b, srv, d, false)
		ctx := context.Background()
		b.Run(name+"/environment", func(b *testing.B) {
			timed(b, func() error { _, err := st.inferred(ctx, unitFilter{Environment: benchDORAEnv}); return err })
		})
		if q := os.Getenv("CHANGELENS_BENCH_EPISODES_SQL"); q != "" {
			b.Run(name+"/sql-variant", func(b *testing.B) {
				conn := srv.Conn(b, d.database)
				timed(b, func() error {
					return drain(conn.Query(ctx, q, clickhouse.Named("reappear_ns", int64(10*time.Minute))))
				})
			})
		}
	}
}

// BenchmarkCompare times /v1/compare: two versions of one service over the
// last 24 hours of the benchmark data (cold: caches off; the comparison
// reads the per-minute histograms of both versions and bootstraps 1000
// resamples).
func BenchmarkCompare(b *testing.B) {
	srv := chtest.Shared(b)
	for _, vol := range benchVolumes(b) {
		d := loadBench(b, srv, vol)
		name := fmt.Sprintf("events=%.1fM", float64(d.events)/1e6)
		st := benchStore(b, srv, d, false)
		ctx := context.Background()
		units, err := st.Units(ctx, benchDORAEnv)
		if err != nil {
			b.Fatal(err)
		}
		var versions []string
		for _, u := range units {
			if u.Service == benchLatencySvc {
				versions = u.Versions
			}
		}
		if len(versions) < 2 {
			b.Fatalf("%s has versions %v", benchLatencySvc, versions)
		}
		q := report.CompareQuery{Service: benchLatencySvc, Environment: benchDORAEnv, Start: d.end.Add(-24 * time.Hour), End: d.end,
			Dimension: schema.DimensionVersion, Control: versions[1], Treatment: versions[0]}
		b.Run(name+"/api-24h", func(b *testing.B) {
			timed(b, func() error { _, err := st.Compare(ctx, q); return err })
		})
		fq := q
		fq.Dimension, fq.Control, fq.Treatment = schema.DimensionFeatureFlag+benchFlag, "off", "on"
		b.Run(name+"/api-24h-flag", func(b *testing.B) {
			timed(b, func() error { _, err := st.Compare(ctx, fq); return err })
		})
	}
}

// storeVerdicts does what changelens-worker does for the benchmark data:
// judges every deployment and stores the settled verdicts.
func storeVerdicts(b *testing.B, srv *chtest.Server, d *benchData) {
	b.Helper()
	benchMu.Lock()
	defer benchMu.Unlock()
	if d.verdictsStored {
		return
	}
	svc := benchStore(b, srv, d, false)
	svc.cfg.IgnoreStoredVerdicts = true
	ctx := context.Background()
	j, err := svc.Judge(ctx, d.start.Add(-24*time.Hour), d.end.Add(24*time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	vs := make([]writer.Verdict, len(j.Settled))
	for i, v := range j.Settled {
		dep := v.Impact.Deployment
		vs[i] = writer.Verdict{ID: dep.ID, Service: dep.Service, Environment: dep.Environment, Version: dep.Version, Verdict: dep.Verdict,
			Before: v.Before, After: v.After, Stats: v.Stats, Judgement: v.Judgement}
	}
	if err := writer.New(srv.Conn(b, d.database), schema.Options{Database: d.database}).StoreVerdicts(ctx, svc.ConfigHash(), vs, time.Now()); err != nil {
		b.Fatal(err)
	}
	d.verdictsStored = true
}
