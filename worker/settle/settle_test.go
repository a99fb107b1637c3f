package settle

import (
	"context"
	"encoding/binary"
	"log/slog"
	"maps"
	"math"
	"os"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/changelens/changelens/internal/schema"
	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/inference"
	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/store"
	"github.com/changelens/changelens/queryapi/usecase"
	"github.com/changelens/changelens/testkit/chtest"
	"github.com/changelens/changelens/testkit/pipelinetest"
	"github.com/changelens/changelens/worker/writer"
)

func TestMain(m *testing.M) { os.Exit(chtest.Main(m)) }

// traffic sends, through the real processor and exporter, 20 requests a
// minute of each unit in slow over [from, to): version v1, and from
// switchAt v2 with latency × slow[unit].
func traffic(t *testing.T, p *pipelinetest.Pipeline, seq *uint64, from, to, switchAt time.Time, slow map[string]float64) {
	t.Helper()
	units := slices.Sorted(maps.Keys(slow))
	for m := from; m.Before(to); m = m.Add(time.Minute) {
		td := ptrace.NewTraces()
		for _, unit := range units {
			version, factor := "v1", 1.0
			if !m.Before(switchAt) {
				version, factor = "v2", slow[unit]
			}
			rs := td.ResourceSpans().AppendEmpty()
			a := rs.Resource().Attributes()
			a.PutStr("service.name", unit)
			a.PutStr("deployment.environment.name", "production")
			a.PutStr("service.version", version)
			ss := rs.ScopeSpans().AppendEmpty().Spans()
			for i := range 20 {
				*seq++
				s := ss.AppendEmpty()
				var tid pcommon.TraceID
				binary.BigEndian.PutUint64(tid[8:], *seq)
				var sid pcommon.SpanID
				binary.BigEndian.PutUint64(sid[:], *seq)
				s.SetTraceID(tid)
				s.SetSpanID(sid)
				s.SetKind(ptrace.SpanKindServer)
				s.SetName("GET /")
				s.Attributes().PutInt("http.response.status_code", 200)
				at := m.Add(time.Duration(i) * 3 * time.Second)
				d := time.Duration(float64(20+i%7) * factor * float64(time.Millisecond))
				s.SetStartTimestamp(pcommon.NewTimestampFromTime(at))
				s.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(d)))
			}
		}
		p.Send(t, td)
	}
}

// Two units deploy v2 an hour into three hours of traffic that ended an
// hour ago: checkout 3× slower (DEGRADED), cart unchanged (NO_CHANGE).
// The worker stores both verdicts once (counted by verdict), the API then
// answers from them, a stored verdict that no longer matches its data is
// re-settled, and a back-fill that changes a settled window re-settles it.
func TestSettleStoresAndResettles(t *testing.T) {
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	ctx := context.Background()
	end := time.Now().UTC().Add(-time.Hour).Truncate(time.Minute)
	start, switchAt := end.Add(-3*time.Hour), end.Add(-2*time.Hour)
	p := pipelinetest.New(t, srv.Addr(), db, 1, nil)
	var seq uint64
	traffic(t, p, &seq, start, end, switchAt, map[string]float64{"checkout": 3, "cart": 1})
	p.Close(t)

	writerDSN := srv.DSN("default", "", db)
	st, err := store.Open(ctx, store.Config{DSN: writerDSN})
	require.NoError(t, err)
	defer st.Close()
	svc, err := usecase.New(st, usecase.Config{IgnoreStoredVerdicts: true, CacheSize: -1})
	require.NoError(t, err)
	conn := srv.Conn(t, db)
	w := writer.New(conn, schema.Options{Database: db})
	reader := sdkmetric.NewManualReader()
	meter := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)).Meter("test")
	s, err := New(Config{}, svc, st, w, nil, meter, slog.New(slog.DiscardHandler))
	require.NoError(t, err)

	r, err := s.Cycle(ctx, time.Now())
	require.NoError(t, err)
	assert.Equal(t, Result{Judged: 2, Settled: 2, Stored: 2, Evidence: 2, EpisodeUnits: 2}, r)
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(ctx, &rm))
	counts := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == "changelens.deployment.verdicts" {
				for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
					svc, _ := dp.Attributes.Value("service")
					v, _ := dp.Attributes.Value("verdict")
					counts[svc.AsString()+"/"+v.AsString()] += dp.Value
				}
			}
		}
	}
	assert.Equal(t, map[string]int64{"checkout/DEGRADED": 1, "cart/NO_CHANGE": 1}, counts)

	r, err = s.Cycle(ctx, time.Now())
	require.NoError(t, err)
	assert.Equal(t, Result{Judged: 2, Settled: 2}, withoutEpisodes(r), "nothing new: nothing written")

	// The API (read-only, no cache) reads the stored verdicts: the same
	// answers as computing them …
	ro := srv.DSN(chtest.ReadOnlyUser, chtest.ReadOnlyPassword, db)
	api, err := usecase.Open(ctx, ro, usecase.Config{CacheSize: -1})
	require.NoError(t, err)
	defer api.Close()
	computing, err := usecase.Open(ctx, ro, usecase.Config{CacheSize: -1, IgnoreStoredVerdicts: true})
	require.NoError(t, err)
	defer computing.Close()
	q := report.DORAQuery{Environment: "production", Start: start, End: end, Interval: report.IntervalAll}
	fromStore, err := api.DORA(ctx, q)
	require.NoError(t, err)
	computed, err := computing.DORA(ctx, q)
	require.NoError(t, err)
	assert.Equal(t, computed, fromStore)
	verdicts := func() map[string]report.Verdict {
		deps, _, err := api.Deployments(ctx, report.DeploymentQuery{Environment: "production", Start: start, End: end})
		require.NoError(t, err)
		out := map[string]report.Verdict{}
		for _, d := range deps {
			out[d.Service] = d.Verdict
		}
		return out
	}
	assert.Equal(t, map[string]report.Verdict{"checkout": report.VerdictDegraded, "cart": report.VerdictNoChange}, verdicts())

	// … and really reads them: a stored row saying otherwise (same windows)
	// is what the API answers, until the worker re-settles it.
	srv.Exec(t, "INSERT INTO "+db+".deployment_verdicts SELECT deployment_id, config_hash, service, environment, version,"+
		" before_start, before_end, after_start, after_end, 'NO_CHANGE',"+
		" (SELECT data FROM "+db+".deployment_verdicts WHERE service = 'cart' ORDER BY ver DESC LIMIT 1), settled_at, ver + 1"+
		" FROM "+db+".deployment_verdicts WHERE service = 'checkout'")
	assert.Equal(t, report.VerdictNoChange, verdicts()["checkout"], "the API answers the stored judgement")
	r, err = s.Cycle(ctx, time.Now())
	require.NoError(t, err)
	assert.Equal(t, 1, r.Resettled)
	assert.Equal(t, 1, r.Evidence, "a re-settled deployment's evidence is computed again")
	assert.Equal(t, report.VerdictDegraded, verdicts()["checkout"])

	// A back-fill of slow requests into cart's after window re-settles it.
	p = pipelinetest.New(t, srv.Addr(), db, 1, nil)
	traffic(t, p, &seq, switchAt.Add(3*time.Minute), switchAt.Add(30*time.Minute), switchAt, map[string]float64{"cart": 4})
	p.Close(t)
	r, err = s.Cycle(ctx, time.Now())
	require.NoError(t, err)
	assert.Equal(t, Result{Judged: 2, Settled: 2, Resettled: 1, Evidence: 1}, withoutEpisodes(r))
	assert.Equal(t, report.VerdictDegraded, verdicts()["cart"])
}

// checkout's v2 runs as a canary beside v1 for the 10 minutes before it
// takes all traffic (3× slower); cart switches at once, unchanged. The
// worker stores both deployments' impact evidence; the API's impact read
// from it is the one it computes, it really reads the stored row, and a
// row computed for other windows is not used.
func TestSettleStoresImpactEvidence(t *testing.T) {
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	ctx := context.Background()
	end := time.Now().UTC().Add(-time.Hour).Truncate(time.Minute)
	start, switchAt := end.Add(-3*time.Hour), end.Add(-2*time.Hour)
	p := pipelinetest.New(t, srv.Addr(), db, 1, nil)
	var seq uint64
	traffic(t, p, &seq, start, end, switchAt, map[string]float64{"checkout": 3, "cart": 1})
	canaryFrom := switchAt.Add(-10 * time.Minute)
	traffic(t, p, &seq, canaryFrom, switchAt, canaryFrom, map[string]float64{"checkout": 3})
	p.Close(t)

	st, svc, w, s := worker(t, srv, db)
	r, err := s.Cycle(ctx, time.Now())
	require.NoError(t, err)
	assert.Equal(t, Result{Judged: 2, Settled: 2, Stored: 2, Evidence: 2, EpisodeUnits: 2}, r)
	r, err = s.Cycle(ctx, time.Now())
	require.NoError(t, err)
	assert.Equal(t, Result{Judged: 2, Settled: 2}, withoutEpisodes(r), "the stored evidence fits: nothing computed again")

	ro := srv.DSN(chtest.ReadOnlyUser, chtest.ReadOnlyPassword, db)
	api, err := usecase.Open(ctx, ro, usecase.Config{CacheSize: -1})
	require.NoError(t, err)
	defer api.Close()
	computing, err := usecase.Open(ctx, ro, usecase.Config{CacheSize: -1, IgnoreStoredVerdicts: true})
	require.NoError(t, err)
	defer computing.Close()
	deps, _, err := api.Deployments(ctx, report.DeploymentQuery{Environment: "production", Start: start, End: end})
	require.NoError(t, err)
	require.Len(t, deps, 2)
	ids := map[string]string{}
	for _, d := range deps {
		ids[d.Service] = d.ID
	}
	for _, svcName := range []string{"checkout", "cart"} {
		fromStore, err := api.Impact(ctx, ids[svcName])
		require.NoError(t, err)
		computed, err := computing.Impact(ctx, ids[svcName])
		require.NoError(t, err)
		assert.True(t, same(computed, fromStore), "%s: from the store %+v, computed %+v", svcName, fromStore, computed)
	}
	im, err := api.Impact(ctx, ids["checkout"])
	require.NoError(t, err)
	require.NotNil(t, im.Canary, "v1 and v2 served the same minutes")
	assert.Equal(t, "v1", im.Canary.Control.Value)
	assert.Equal(t, "v2", im.Canary.Treatment.Value)
	assert.GreaterOrEqual(t, im.Canary.OverlapMinutes, 10)
	assert.Equal(t, 200.0*float64(im.Canary.OverlapMinutes)/10, im.Canary.Treatment.Requests, "20 requests a minute of v2 in the overlap")
	cart, err := api.Impact(ctx, ids["cart"])
	require.NoError(t, err)
	assert.Nil(t, cart.Canary, "cart's versions never served the same minute")

	stored, err := st.StoredEvidence(ctx, svc.ConfigHash(), []string{ids["checkout"], ids["cart"]})
	require.NoError(t, err)
	require.Len(t, stored, 2)
	e := stored[ids["checkout"]]
	assert.Equal(t, "v2", e.Version)
	assert.Equal(t, "v1", e.PreviousVersion)
	assert.True(t, e.WithNeighbours, "nothing attributed: the impact shows the graph around the unit")

	// The API really reads the row: a stored canary saying otherwise is
	// what it answers …
	poisoned := e
	c := *e.Canary
	c.OverlapMinutes = 777
	poisoned.Canary = &c
	require.NoError(t, w.StoreEvidence(ctx, svc.ConfigHash(), []writer.Evidence{{ID: ids["checkout"], Service: "checkout",
		Environment: "production", Evidence: poisoned}}, time.Now()))
	im, err = api.Impact(ctx, ids["checkout"])
	require.NoError(t, err)
	assert.Equal(t, 777, im.Canary.OverlapMinutes)

	// … but not one computed for other windows: that is computed live.
	poisoned.After.End = poisoned.After.End.Add(time.Minute)
	require.NoError(t, w.StoreEvidence(ctx, svc.ConfigHash(), []writer.Evidence{{ID: ids["checkout"], Service: "checkout",
		Environment: "production", Evidence: poisoned}}, time.Now().Add(time.Second)))
	im, err = api.Impact(ctx, ids["checkout"])
	require.NoError(t, err)
	computed, err := computing.Impact(ctx, ids["checkout"])
	require.NoError(t, err)
	assert.True(t, same(computed, im), "a stale row is not used: %+v", im)
	r, err = s.Cycle(ctx, time.Now())
	require.NoError(t, err)
	assert.Equal(t, 1, r.Evidence, "the worker replaces evidence that no longer fits")
	im, err = api.Impact(ctx, ids["checkout"])
	require.NoError(t, err)
	assert.True(t, same(computed, im), "the replaced row: %+v", im)
}

// worker is a Settler on db as changelens-worker runs it (no cache, stored
// verdicts ignored, no notifications), with its store, use cases and
// writer; the store closes with the test.
func worker(t *testing.T, srv *chtest.Server, db string) (*store.Store, *usecase.Service, *writer.Writer, *Settler) {
	t.Helper()
	st, err := store.Open(context.Background(), store.Config{DSN: srv.DSN("default", "", db)})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	svc, err := usecase.New(st, usecase.Config{IgnoreStoredVerdicts: true, CacheSize: -1})
	require.NoError(t, err)
	w := writer.New(srv.Conn(t, db), schema.Options{Database: db})
	s, err := New(Config{}, svc, st, w, nil, sdkmetric.NewMeterProvider().Meter("test"), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	return st, svc, w, s
}

// withoutEpisodes is r without its episode snapshot, which a cycle stores
// again when the clock passed a bucket boundary since the last one
// (TestSettleStoresEpisodes checks when).
func withoutEpisodes(r Result) Result {
	r.EpisodeUnits = 0
	return r
}

// same is reflect.DeepEqual with a NaN equal to a NaN: an impact holds
// NaN for what could not be computed, and the stored form keeps it.
func same(a, b any) bool { return sameValue(reflect.ValueOf(a), reflect.ValueOf(b)) }

func sameValue(a, b reflect.Value) bool {
	if a.IsValid() != b.IsValid() || a.Type() != b.Type() {
		return false
	}
	switch a.Kind() {
	case reflect.Float32, reflect.Float64:
		x, y := a.Float(), b.Float()
		return x == y || (math.IsNaN(x) && math.IsNaN(y))
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		if a.Type() == reflect.TypeFor[*time.Location]() {
			return a.Pointer() == b.Pointer()
		}
		return sameValue(a.Elem(), b.Elem())
	case reflect.Slice:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !sameValue(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Struct:
		for i := range a.NumField() {
			if !sameValue(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.String:
		return a.String() == b.String()
	case reflect.Bool:
		return a.Bool() == b.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return a.Int() == b.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return a.Uint() == b.Uint()
	}
	panic("same: " + a.Kind().String())
}

// The worker stores a snapshot of every unit's settled episodes when the
// settled part of the history grew by a bucket; it is the history read
// again up to its bound, filtered like it, kept per reappear setting. A
// fresh API answers from it what it answers reading the history, really
// reads it (a doctored snapshot shows), and skips a snapshot not yet
// whole.
func TestSettleStoresEpisodes(t *testing.T) {
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	ctx := context.Background()
	// The traffic runs past the settled bound (now − 1h): a fresh API joins
	// the snapshot with the buckets after it.
	end := time.Now().UTC().Add(-30 * time.Minute).Truncate(time.Minute)
	start, switchAt := end.Add(-3*time.Hour), end.Add(-2*time.Hour)
	p := pipelinetest.New(t, srv.Addr(), db, 1, nil)
	var seq uint64
	traffic(t, p, &seq, start, end, switchAt, map[string]float64{"checkout": 1, "cart": 1})
	p.Close(t)

	st, svc, w, s := worker(t, srv, db)
	now := time.Now()
	r, err := s.Cycle(ctx, now)
	require.NoError(t, err)
	assert.Equal(t, 2, r.EpisodeUnits)
	r, err = s.Cycle(ctx, now)
	require.NoError(t, err)
	assert.Equal(t, 0, r.EpisodeUnits, "the settled part has not grown")
	later := now.Add(store.BucketSize)
	r, err = s.Cycle(ctx, later)
	require.NoError(t, err)
	assert.Equal(t, 2, r.EpisodeUnits)

	re := analysis.DefaultConfig().ReappearAfter
	upTo, units, ok, err := st.StoredEpisodes(ctx, store.UnitFilter{}, re)
	require.NoError(t, err)
	require.True(t, ok)
	assert.True(t, svc.EpisodesBound(later).Equal(upTo), "snapshot up to %s, want %s", upTo, svc.EpisodesBound(later))
	full, err := st.Episodes(ctx, store.UnitFilter{}, time.Time{}, upTo, re)
	require.NoError(t, err)
	assert.Equal(t, full, units)
	require.Len(t, units[store.UnitFilter{Service: "cart", Environment: "production"}], 2, "v1 and v2")
	_, cart, ok, err := st.StoredEpisodes(ctx, store.UnitFilter{Service: "cart"}, re)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, map[store.UnitFilter]store.UnitEpisodes{{Service: "cart", Environment: "production"}: full[store.UnitFilter{Service: "cart", Environment: "production"}]}, cart)
	_, _, ok, err = st.StoredEpisodes(ctx, store.UnitFilter{}, re+time.Minute)
	require.NoError(t, err)
	assert.False(t, ok, "no snapshot for another reappear setting")

	ro := srv.DSN(chtest.ReadOnlyUser, chtest.ReadOnlyPassword, db)
	q := report.DeploymentQuery{Environment: "production", Start: start.Add(-3 * time.Hour), End: end}
	deployments := func(c usecase.Config) []report.Deployment {
		t.Helper()
		api, err := usecase.Open(ctx, ro, c) // a fresh process: every cache empty
		require.NoError(t, err)
		defer api.Close()
		deps, _, err := api.Deployments(ctx, q)
		require.NoError(t, err)
		return deps
	}
	fromHistory := deployments(usecase.Config{EpisodesStoredAge: -1})
	require.Len(t, fromHistory, 2, "v1 → v2 of each unit")
	assert.True(t, same(fromHistory, deployments(usecase.Config{})), "from the snapshot as from the history")

	// A newer snapshot in which cart ran v0 before v1 is what the API reads …
	doctored := map[store.UnitFilter]store.UnitEpisodes{}
	for u, eps := range units {
		doctored[u] = maps.Clone(eps)
	}
	cartUnit := store.UnitFilter{Service: "cart", Environment: "production"}
	doctored[cartUnit]["v0"] = []inference.Episode{{Version: "v0", First: start.Add(-2 * time.Hour).UnixNano(), Last: start.Add(-90 * time.Minute).UnixNano()}}
	newer := upTo.Add(store.BucketSize)
	require.NoError(t, w.StoreEpisodes(ctx, re, newer, doctored, now))
	var previous []string
	for _, d := range deployments(usecase.Config{}) {
		if d.Service == "cart" {
			previous = append(previous, d.PreviousVersion)
		}
	}
	assert.Contains(t, previous, "v0", "cart's deployments read from the doctored snapshot")

	// … until a newer one of which a row is missing: the history is read.
	srv.Exec(t, "INSERT INTO "+db+".version_episodes (reappear_ns, service, environment, up_to, units, versions, firsts, lasts, written_at)"+
		" SELECT "+strconv.FormatInt(int64(re), 10)+", 'cart', 'production', toDateTime("+strconv.FormatInt(newer.Add(store.BucketSize).Unix(), 10)+"), 2,"+
		" emptyArrayString(), emptyArrayUInt64(), emptyArrayUInt64(), now()")
	_, _, ok, err = st.StoredEpisodes(ctx, store.UnitFilter{}, re)
	require.NoError(t, err)
	assert.False(t, ok, "the newest snapshot is not whole")
	assert.True(t, same(fromHistory, deployments(usecase.Config{})))
}
