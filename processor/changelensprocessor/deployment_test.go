package changelensprocessor

import (
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
		wantRework string
	}{
		{"rfc3339 commit time", map[string]any{"changelens.commit.time": commit.Format(time.RFC3339)}, 0, "succeeded", commit.UnixNano(), ""},
		{"unix seconds commit time", map[string]any{"changelens.commit.time": commit.Unix()}, 0, "succeeded", commit.UnixNano(), ""},
		{"unix nanoseconds as string", map[string]any{"changelens.commit.time": itoa(int(commit.UnixNano()))}, 0, "succeeded", commit.UnixNano(), ""},
		{"github timestamp fallback", map[string]any{"github.head_commit.timestamp": "2026-02-28T10:00:00+02:00"}, 0, "succeeded", time.Date(2026, 2, 28, 8, 0, 0, 0, time.UTC).UnixNano(), ""},
		{"first configured attribute wins", map[string]any{"changelens.commit.time": commit.Unix(), "github.head_commit.timestamp": "2020-01-01T00:00:00Z"}, 0, "succeeded", commit.UnixNano(), ""},
		{"unparsable commit time ignored", map[string]any{"changelens.commit.time": "yesterday"}, 0, "succeeded", 0, ""},
		{"failed by task result", map[string]any{"cicd.pipeline.task.run.result": "failure"}, 0, "failed", 0, ""},
		{"failed by deployment.status", map[string]any{"deployment.status": "failed"}, 0, "failed", 0, ""},
		{"failed by span status", nil, ptrace.StatusCodeError, "failed", 0, ""},
		{"marked a hotfix", map[string]any{"changelens.deployment.rework": "HotFix"}, 0, "succeeded", 0, "hotfix"},
		{"marked a revert", map[string]any{"changelens.deployment.rework": "revert"}, 0, "succeeded", 0, "revert"},
		{"an unknown mark is none", map[string]any{"changelens.deployment.rework": "urgent"}, 0, "succeeded", 0, ""},
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
			assert.Equal(t, tt.wantRework, d.Rework)
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

// Version changes in traffic are not deployment events: the query API infers
// them from every collector's stored observations.
func TestTrafficAloneEmitsNoDeploymentEvents(t *testing.T) {
	h := newHarness(t, nil)
	var seq uint64
	specs := traffic("cart", "v1", t0, t0.Add(30*time.Minute), 10*time.Second, &seq)
	specs = append(specs, traffic("cart", "v2", t0.Add(30*time.Minute), t0.Add(60*time.Minute), 10*time.Second, &seq)...)
	h.send(buildTraces(specs...))
	h.stop()
	deps, lat := h.events()
	assert.Empty(t, deps)
	assert.Len(t, lat, len(specs))
}

// A deploy span's event depends on the span alone: two collectors — one that
// saw the unit's traffic, one that did not — and a replay emit identical
// events, so the stored copies collapse into one row.
func TestDeploySpanEventIsAFunctionOfTheSpan(t *testing.T) {
	var seq uint64
	deploy := deploySpan("cart", "v2", t0.Add(32*time.Minute), map[string]any{"changelens.commit.time": t0.Add(-time.Hour).Unix()}, 1)
	withTraffic := newHarness(t, nil)
	withTraffic.send(buildTraces(traffic("cart", "v1", t0, t0.Add(30*time.Minute), 10*time.Second, &seq)...))
	withTraffic.send(buildTraces(deploy))
	withTraffic.stop()
	cold := newHarness(t, nil)
	cold.send(buildTraces(deploy))
	cold.send(buildTraces(deploy)) // a retry or a replay
	cold.stop()

	a, _ := withTraffic.events()
	b, _ := cold.events()
	require.Len(t, a, 1)
	require.Len(t, b, 1)
	assert.Equal(t, a[0], b[0])
	assert.Equal(t, "", a[0].Previous, "the previous version is the query API's to infer")
	assert.False(t, a[0].RollbackCandidate)
	assert.Equal(t, int64(2), counterValue(t, cold, "otelcol_processor_changelens_deployment_events", sourceAttr("explicit")), "one event per deploy span seen")
}

// A CLIENT or PRODUCER span is a call even with the deploy task type or a
// matching name: calls are never read as CI/CD tasks (the processor does not
// scan their attributes), while an INTERNAL or SERVER span still is one.
func TestCallSpansAreNeverDeploySpans(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Deployments.Explicit.SpanNamePatterns = []string{`^deploy`} })
	client := deploySpan("cart", "v2", t0, nil, 1)
	client.kind = ptrace.SpanKindClient
	producer := deploySpan("cart", "v3", t0, nil, 2)
	producer.kind = ptrace.SpanKindProducer
	server := deploySpan("cart", "v4", t0, nil, 3)
	server.kind = ptrace.SpanKindServer
	internal := deploySpan("cart", "v5", t0, nil, 4)
	h.send(buildTraces(client, producer, server, internal))
	h.stop()
	deps, _ := h.events()
	var versions []string
	for _, d := range deps {
		versions = append(versions, d.Version)
	}
	assert.ElementsMatch(t, []string{"v4", "v5"}, versions)
	_, calls := h.decode()
	assert.Len(t, calls, 2, "the CLIENT and PRODUCER spans are call events")
}
