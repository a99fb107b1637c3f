package changelensprocessor

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// deploySpan is a CI/CD pipeline span deploying service@version, ending at end.
func deploySpan(service, version string, end time.Time, attrs map[string]any, seq uint64) spanSpec {
	a := map[string]any{
		"cicd.pipeline.task.type":     "deploy",
		"service.name":                service,
		"service.version":             version,
		"deployment.environment.name": "production",
		"vcs.ref.head.revision":       "c0ffee" + version,
		"cicd.pipeline.name":          "deploy-" + service,
	}
	for k, v := range attrs {
		a[k] = v
	}
	return spanSpec{service: "github-actions", env: "ci", kind: ptrace.SpanKindInternal, name: "deploy",
		start: end.Add(-3 * time.Minute), dur: 3 * time.Minute, attrs: a, parent: true, seq: 1_000_000 + seq}
}

func TestExplicitDeploySpan(t *testing.T) {
	commit := t0.Add(-26 * time.Hour)
	tests := []struct {
		name       string
		attrs      map[string]any
		status     ptrace.StatusCode
		wantStatus string
		wantCommit int64
	}{
		{"rfc3339 commit time", map[string]any{"changelens.commit.time": commit.Format(time.RFC3339)}, 0, "succeeded", commit.UnixNano()},
		{"unix seconds commit time", map[string]any{"changelens.commit.time": commit.Unix()}, 0, "succeeded", commit.UnixNano()},
		{"unix nanoseconds as string", map[string]any{"changelens.commit.time": itoa(int(commit.UnixNano()))}, 0, "succeeded", commit.UnixNano()},
		{"github timestamp fallback", map[string]any{"github.head_commit.timestamp": "2026-02-28T10:00:00+02:00"}, 0, "succeeded", time.Date(2026, 2, 28, 8, 0, 0, 0, time.UTC).UnixNano()},
		{"first configured attribute wins", map[string]any{"changelens.commit.time": commit.Unix(), "github.head_commit.timestamp": "2020-01-01T00:00:00Z"}, 0, "succeeded", commit.UnixNano()},
		{"unparsable commit time ignored", map[string]any{"changelens.commit.time": "yesterday"}, 0, "succeeded", 0},
		{"failed by task result", map[string]any{"cicd.pipeline.task.run.result": "failure"}, 0, "failed", 0},
		{"failed by deployment.status", map[string]any{"deployment.status": "failed"}, 0, "failed", 0},
		{"failed by span status", nil, ptrace.StatusCodeError, "failed", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			sp := deploySpan("checkout", "v2", t0, tt.attrs, 1)
			sp.status = tt.status
			h.send(buildTraces(sp))
			h.stop()
			deps, lat := h.events()
			assert.Empty(t, lat, "a deploy span is not a latency event")
			require.Len(t, deps, 1)
			d := deps[0]
			assert.Equal(t, "checkout", d.Service)
			assert.Equal(t, "production", d.Env)
			assert.Equal(t, "v2", d.Version)
			assert.Equal(t, "explicit", d.Source)
			assert.Equal(t, tt.wantStatus, d.Status)
			assert.Equal(t, "c0ffeev2", d.CommitSHA)
			assert.Equal(t, tt.wantCommit, d.CommitTime)
			assert.True(t, d.DeployTime.Equal(t0), "deploy time is the span end")
			assert.True(t, d.RolloutStart.Equal(t0.Add(-3*time.Minute)))
			assert.Len(t, d.ID, 32)
		})
	}
}

func TestDeploySpanByNamePatternAndDrops(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Deployments.Explicit.SpanNamePatterns = []string{`^helm upgrade `} })
	byName := deploySpan("cart", "v9", t0, nil, 1)
	delete(byName.attrs, "cicd.pipeline.task.type")
	byName.name = "helm upgrade cart"
	noService := deploySpan("x", "v1", t0, nil, 2)
	delete(noService.attrs, "service.name")
	skipped := deploySpan("cart", "v10", t0, map[string]any{"cicd.pipeline.task.run.result": "skip"}, 3)
	h.send(buildTraces(byName, noService, skipped))
	h.stop()
	deps, _ := h.events()
	require.Len(t, deps, 1)
	assert.Equal(t, "v9", deps[0].Version)
	assert.Equal(t, int64(1), droppedCount(t, h, reasonDeployMissingService))
	assert.Equal(t, int64(1), droppedCount(t, h, reasonDeploySkipped))
}

func TestInferredFirstSeen(t *testing.T) {
	h := newHarness(t, nil)
	var seq uint64
	specs := traffic("cart", "v1", t0, t0.Add(30*time.Minute), 10*time.Second, &seq)
	v2start := t0.Add(30*time.Minute + 7*time.Second)
	specs = append(specs, traffic("cart", "v2", v2start, t0.Add(60*time.Minute), 10*time.Second, &seq)...)
	h.send(buildTraces(specs...))
	h.stop()
	deps, lat := h.events()
	assert.Len(t, lat, len(specs))
	require.Len(t, deps, 1, "the baseline v1 is not a deployment; v2 is")
	d := deps[0]
	assert.Equal(t, "inferred", d.Source)
	assert.Equal(t, "v2", d.Version)
	assert.Equal(t, "v1", d.Previous)
	assert.True(t, d.DeployTime.Equal(v2start), "deployed at the first v2 span: %s", d.DeployTime)
	assert.False(t, d.RollbackCandidate)
	assert.Equal(t, int64(1), counterValue(t, h, "otelcol_processor_changelens_deployments_detected", sourceAttr("inferred")))
}

func TestLateSpanMovesFirstSeenEarlierWithoutSecondDeployment(t *testing.T) {
	h := newHarness(t, nil)
	var seq uint64
	h.send(buildTraces(traffic("cart", "v1", t0, t0.Add(30*time.Minute), 10*time.Second, &seq)...))
	h.send(buildTraces(traffic("cart", "v2", t0.Add(31*time.Minute), t0.Add(60*time.Minute), 10*time.Second, &seq)...))
	// Arrives after v2's deployment was resolved, from a slow exporter.
	h.send(buildTraces(request("cart", "v2", t0.Add(30*time.Minute+30*time.Second), 99999)))
	h.stop()
	deps, _ := h.events()
	require.Len(t, deps, 1)
	assert.True(t, deps[0].DeployTime.Equal(t0.Add(30*time.Minute+30*time.Second)), "first-seen moved earlier: %s", deps[0].DeployTime)
}

// rollout sends v1 → v2 → v1 traffic with explicit deploy spans for all three.
func TestRollbackV1V2V1Explicit(t *testing.T) {
	h := newHarness(t, nil)
	var seq uint64
	specs := []spanSpec{deploySpan("cart", "v1", t0, nil, 1)}
	specs = append(specs, traffic("cart", "v1", t0.Add(time.Minute), t0.Add(time.Hour), 15*time.Second, &seq)...)
	specs = append(specs, deploySpan("cart", "v2", t0.Add(time.Hour), nil, 2))
	specs = append(specs, traffic("cart", "v2", t0.Add(time.Hour+time.Minute), t0.Add(2*time.Hour), 15*time.Second, &seq)...)
	specs = append(specs, deploySpan("cart", "v1", t0.Add(2*time.Hour), nil, 3))
	specs = append(specs, traffic("cart", "v1", t0.Add(2*time.Hour+time.Minute), t0.Add(3*time.Hour), 15*time.Second, &seq)...)
	h.send(buildTraces(specs...))
	h.stop()
	deps, _ := h.events()
	require.Len(t, deps, 3)
	sortByTime(deps)
	assert.Equal(t, []string{"v1", "v2", "v1"}, versions(deps))
	assert.Equal(t, []bool{false, false, true}, rollbacks(deps), "the third is a rollback candidate")
	assert.Equal(t, "v2", deps[2].Previous)
	for _, d := range deps {
		assert.Equal(t, "explicit", d.Source, "inferred detections merged into the explicit deploys")
	}
	assert.NotEqual(t, deps[0].ID, deps[2].ID)
}

// A unit deployed only by CI (no traffic through this collector) still gets
// its previous version, from its own deploy history.
func TestExplicitDeployWithoutTrafficNamesPreviousVersion(t *testing.T) {
	h := newHarness(t, nil)
	h.send(buildTraces(deploySpan("batch-job", "v1", t0, nil, 1)))
	h.send(buildTraces(deploySpan("batch-job", "v2", t0.Add(time.Hour), nil, 2)))
	h.send(buildTraces(deploySpan("batch-job", "v2", t0.Add(2*time.Hour), map[string]any{"cicd.pipeline.run.id": "again"}, 3)))
	h.stop()
	deps, lat := h.events()
	require.Empty(t, lat)
	require.Len(t, deps, 3)
	sortByTime(deps)
	assert.Equal(t, []string{"v1", "v2", "v2"}, versions(deps))
	assert.Equal(t, "", deps[0].Previous, "nothing is known before the first deploy")
	assert.Equal(t, "v1", deps[1].Previous)
	assert.Equal(t, "", deps[2].Previous, "a redeploy of the running version replaces nothing")
}

func TestRollbackInferred(t *testing.T) {
	h := newHarness(t, nil)
	var seq uint64
	specs := traffic("cart", "v1", t0, t0.Add(time.Hour), 15*time.Second, &seq)
	specs = append(specs, traffic("cart", "v2", t0.Add(time.Hour), t0.Add(2*time.Hour), 15*time.Second, &seq)...)
	specs = append(specs, traffic("cart", "v1", t0.Add(2*time.Hour), t0.Add(3*time.Hour), 15*time.Second, &seq)...)
	specs = append(specs, traffic("cart", "v2", t0.Add(3*time.Hour), t0.Add(4*time.Hour), 15*time.Second, &seq)...)
	h.send(buildTraces(specs...))
	h.stop()
	deps, _ := h.events()
	require.Len(t, deps, 3, "baseline v1, then v2, v1 (rollback), v2 again")
	sortByTime(deps)
	assert.Equal(t, []string{"v2", "v1", "v2"}, versions(deps))
	assert.Equal(t, []bool{false, true, true}, rollbacks(deps))
	assert.Equal(t, []string{"v1", "v2", "v1"}, []string{deps[0].Previous, deps[1].Previous, deps[2].Previous})
	assert.NotEqual(t, deps[0].ID, deps[2].ID, "the same version deployed twice is two deployments")
}

func TestRollingUpdateInterleavingIsOneDeployment(t *testing.T) {
	h := newHarness(t, nil)
	var seq uint64
	specs := traffic("cart", "v1", t0, t0.Add(time.Hour), 5*time.Second, &seq)
	// A 6-minute rolling update: both versions serve, v1 fading out.
	r := rand.New(rand.NewPCG(1, 2))
	for at := t0.Add(time.Hour); at.Before(t0.Add(time.Hour + 6*time.Minute)); at = at.Add(2 * time.Second) {
		v := "v1"
		if r.Float64() < at.Sub(t0.Add(time.Hour)).Minutes()/6 {
			v = "v2"
		}
		seq++
		specs = append(specs, request("cart", v, at, seq))
	}
	specs = append(specs, traffic("cart", "v2", t0.Add(time.Hour+6*time.Minute), t0.Add(2*time.Hour), 5*time.Second, &seq)...)
	h.send(buildTraces(specs...))
	h.stop()
	deps, _ := h.events()
	require.Len(t, deps, 1)
	assert.Equal(t, "v2", deps[0].Version)
	assert.False(t, deps[0].RollbackCandidate)
}

func rolloutScenario() []spanSpec {
	var seq uint64
	var specs []spanSpec
	for _, svc := range []string{"cart", "search"} {
		specs = append(specs, traffic(svc, "v1", t0, t0.Add(40*time.Minute), 20*time.Second, &seq)...)
		specs = append(specs, traffic(svc, "v2", t0.Add(40*time.Minute), t0.Add(80*time.Minute), 20*time.Second, &seq)...)
		specs = append(specs, traffic(svc, "v1", t0.Add(80*time.Minute), t0.Add(120*time.Minute), 20*time.Second, &seq)...)
	}
	specs = append(specs, deploySpan("cart", "v3", t0.Add(125*time.Minute), nil, 1))
	specs = append(specs, traffic("cart", "v3", t0.Add(123*time.Minute), t0.Add(150*time.Minute), 20*time.Second, &seq)...)
	return specs
}

func runScenario(t *testing.T, batches [][]spanSpec, mutate func(*Config)) []deployEvent {
	h := newHarness(t, mutate)
	for _, b := range batches {
		h.send(buildTraces(b...))
	}
	h.stop()
	deps, _ := h.events()
	sortByTime(deps)
	return deps
}

func TestShuffledReplayGivesSameDeploymentsAndIDs(t *testing.T) {
	specs := rolloutScenario()
	ordered := runScenario(t, [][]spanSpec{specs}, nil)
	require.Len(t, ordered, 5, "cart: v2, v1, v3; search: v2, v1")

	shuffled := append([]spanSpec(nil), specs...)
	rand.New(rand.NewPCG(7, 7)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	assert.Equal(t, ordered, runScenario(t, [][]spanSpec{shuffled}, nil), "one shuffled batch")

	// Many shuffled batches: exact while disorder stays within allowed_lateness.
	var batches [][]spanSpec
	for i := 0; i < len(shuffled); i += 50 {
		batches = append(batches, shuffled[i:min(i+50, len(shuffled))])
	}
	assert.Equal(t, ordered, runScenario(t, batches, func(c *Config) { c.Deployments.Inference.AllowedLateness = 4 * time.Hour }), "many shuffled batches")
}

func TestTwoInstancesSameRolloutSameIDs(t *testing.T) {
	specs := rolloutScenario()
	a := runScenario(t, [][]spanSpec{specs}, nil)
	// The second instance receives the same spans in smaller batches, in a different grouping.
	var batches [][]spanSpec
	for i := 0; i < len(specs); i += 37 {
		batches = append(batches, specs[i:min(i+37, len(specs))])
	}
	b := runScenario(t, batches, nil)
	require.NotEmpty(t, a)
	assert.Equal(t, ids(a), ids(b))
}

func TestRestartKeepsIDs(t *testing.T) {
	specs := rolloutScenario()
	full := runScenario(t, [][]spanSpec{specs}, nil)
	// A restarted collector that only sees the traffic from minute 30 on (its
	// state was lost) must name the deployments it still sees identically.
	var tail []spanSpec
	for _, s := range specs {
		if !s.start.Before(t0.Add(30 * time.Minute)) {
			tail = append(tail, s)
		}
	}
	restarted := runScenario(t, [][]spanSpec{tail}, nil)
	assert.Equal(t, ids(full), ids(restarted))
}

func TestExplicitAndInferredMerge(t *testing.T) {
	var seq uint64
	base := traffic("cart", "v1", t0, t0.Add(30*time.Minute), 10*time.Second, &seq)
	v2 := traffic("cart", "v2", t0.Add(30*time.Minute), t0.Add(60*time.Minute), 10*time.Second, &seq)
	deploy := deploySpan("cart", "v2", t0.Add(32*time.Minute), nil, 1)

	for name, batches := range map[string][][]spanSpec{
		"deploy span first":  {{deploy}, base, v2},
		"deploy span last":   {base, v2, {deploy}},
		"deploy span within": {base, append([]spanSpec{deploy}, v2...)},
	} {
		t.Run(name, func(t *testing.T) {
			deps := runScenario(t, batches, nil)
			require.Len(t, deps, 1, "%+v", deps)
			d := deps[0]
			assert.Equal(t, "explicit", d.Source)
			assert.Equal(t, "v1", d.Previous)
			assert.True(t, d.DeployTime.Equal(t0.Add(32*time.Minute)), "explicit deploy time wins")
			assert.True(t, d.RolloutStart.Equal(t0.Add(29*time.Minute)) || d.RolloutStart.Equal(t0.Add(30*time.Minute)),
				"rollout start is the earlier of the CI span start and the first v2 span: %s", d.RolloutStart)
		})
	}
}

func TestFailedExplicitDeployDoesNotAbsorbInferred(t *testing.T) {
	var seq uint64
	specs := traffic("cart", "v1", t0, t0.Add(30*time.Minute), 10*time.Second, &seq)
	specs = append(specs, deploySpan("cart", "v2", t0.Add(30*time.Minute), map[string]any{"cicd.pipeline.task.run.result": "failure"}, 1))
	specs = append(specs, traffic("cart", "v2", t0.Add(29*time.Minute), t0.Add(31*time.Minute), 10*time.Second, &seq)...)
	deps := runScenario(t, [][]spanSpec{specs}, nil)
	require.Len(t, deps, 2)
	assert.ElementsMatch(t, []string{"explicit/failed", "inferred/succeeded"}, []string{deps[0].Source + "/" + deps[0].Status, deps[1].Source + "/" + deps[1].Status})
}

func TestBoundedUnitState(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Deployments.MaxUnits = 3 })
	var seq uint64
	for i := range 10 {
		// Each unit gets a new version, so evicted units must resolve what they hold first.
		specs := traffic("svc"+itoa(i), "v1", t0, t0.Add(20*time.Minute), 10*time.Second, &seq)
		specs = append(specs, traffic("svc"+itoa(i), "v2", t0.Add(20*time.Minute), t0.Add(21*time.Minute), 10*time.Second, &seq)...)
		h.send(buildTraces(specs...))
	}
	assert.Equal(t, int64(3), gaugeValue(t, h, "otelcol_processor_changelens_tracked_units"))
	h.stop()
	deps, _ := h.events()
	assert.Len(t, deps, 10, "every unit's deployment survives eviction")
}

func sortByTime(d []deployEvent) {
	for i := 1; i < len(d); i++ {
		for j := i; j > 0 && (d[j].DeployTime.Before(d[j-1].DeployTime) || (d[j].DeployTime.Equal(d[j-1].DeployTime) && d[j].ID < d[j-1].ID)); j-- {
			d[j], d[j-1] = d[j-1], d[j]
		}
	}
}

func versions(d []deployEvent) []string {
	var out []string
	for _, e := range d {
		out = append(out, e.Version)
	}
	return out
}

func rollbacks(d []deployEvent) []bool {
	var out []bool
	for _, e := range d {
		out = append(out, e.RollbackCandidate)
	}
	return out
}

func ids(d []deployEvent) []string {
	var out []string
	for _, e := range d {
		out = append(out, e.Service+"@"+e.Version+"="+e.ID)
	}
	return out
}
