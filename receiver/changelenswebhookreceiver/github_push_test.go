package changelenswebhookreceiver

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"

	"github.com/changelens/changelens/internal/eventspan"
)

// commits are the commit events passed on so far, decoded as the exporter
// decodes them.
func (h *harness) commits() []eventspan.Commit {
	var out []eventspan.Commit
	for _, td := range h.sink.AllTraces() {
		out = append(out, commitsOf(td)...)
	}
	return out
}

func commitsOf(td ptrace.Traces) []eventspan.Commit {
	var out []eventspan.Commit
	for _, rs := range td.ResourceSpans().All() {
		res := eventspan.ReadResource(rs.Resource().Attributes())
		for _, ss := range rs.ScopeSpans().All() {
			if eventspan.ScopeKind(ss.Scope()) != eventspan.KindCommit {
				continue
			}
			for _, s := range ss.Spans().All() {
				out = append(out, eventspan.DecodeCommit(res, s))
			}
		}
	}
	return out
}

func (h *harness) commitCount(source string) int64 {
	return h.counter("otelcol_receiver_changelens_webhook_commits", attribute.String("source", source))
}

const fixtureSHA = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"

// GitHub's documented push delivery (a tag pushed at the repository's
// head commit) becomes one commit event: the head commit of the
// repository's service, its time, the push's time and ref.
func TestGitHubPush(t *testing.T) {
	h := newHarness(t, testConfig(), nil)
	body := readFixture(t, "github/push.json")
	w := h.post("/github", body, gitHubHeaders("push", body)...)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	assert.JSONEq(t, `{"status":"accepted","service":"Hello-World","commits":["`+fixtureSHA+`"]}`, w.Body.String())

	got := h.commits()
	require.Len(t, got, 1)
	c := got[0]
	assert.Equal(t, eventspan.Commit{
		Service: "Hello-World", Repository: "Codertocat/Hello-World", SHA: fixtureSHA,
		Time:    mustTime(t, "2019-05-15T15:20:41Z").UnixNano(), // head_commit.timestamp
		Pushed:  mustTime(t, "2019-05-15T15:20:57Z").UnixNano(), // repository.pushed_at 1557933657
		Ref:     "refs/tags/simple-tag",
		TraceID: c.TraceID, SpanID: c.SpanID, // below
	}, c)
	assert.Equal(t, "5d2597514df1c5116b737d09a12164ea", c.TraceID.String(), "derived from the repository and the commit")
	assert.Equal(t, "bfc7d6eae5fe9441", c.SpanID.String())
	td := h.sink.AllTraces()[0]
	res, _ := td.ResourceSpans().At(0).Resource().Attributes().Get("service.name")
	assert.Equal(t, "Hello-World", res.Str(), "the resource is the repository's service")
	assert.Equal(t, "commit "+fixtureSHA, td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Name())
	assert.Equal(t, int64(1), h.commitCount(sourceGitHub))
	assert.Zero(t, h.ignored(sourceGitHub))
}

// A branch push: every commit of commits and the head commit (itself the
// last of commits) once, IDs lower case, the repository mapped to its
// service; a commit without a readable timestamp or an id is skipped and
// counted.
func TestGitHubPushCommits(t *testing.T) {
	cfg := testConfig()
	g := cfg.GitHub.Get()
	g.Services = map[string]string{"Codertocat/Hello-World": "greeter"}
	cfg.GitHub = configoptional.Some(*g)
	h := newHarness(t, cfg, nil)
	body := editJSON(t, readFixture(t, "github/push.json"), func(m map[string]any) {
		head := sub(m, "head_commit")
		head["id"], head["timestamp"] = "F95F852BD8FCA8FCC58A9A2D6C842781E32A215E", "2019-05-15T17:20:41+02:00"
		m["ref"], m["created"], m["before"], m["after"] = "refs/heads/master", false, fixtureSHA, head["id"]
		m["commits"] = []any{
			map[string]any{"id": fixtureSHA, "timestamp": "2019-05-15T08:20:41-07:00"},
			map[string]any{"id": "0123456789abcdef0123456789abcdef01234567", "timestamp": "yesterday"},
			map[string]any{"timestamp": "2019-05-15T08:20:41-07:00"},
			map[string]any{"id": "f95f852bd8fca8fcc58a9a2d6c842781e32a215e", "timestamp": "2019-05-15T17:20:41+02:00"},
		}
	})
	w := h.post("/github", body, gitHubHeaders("push", body)...)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	assert.JSONEq(t, `{"status":"accepted","service":"greeter","ignored":2,
		"commits":["`+fixtureSHA+`","f95f852bd8fca8fcc58a9a2d6c842781e32a215e"]}`, w.Body.String())
	got := h.commits()
	require.Len(t, got, 2)
	pushed := mustTime(t, "2019-05-15T15:20:57Z").UnixNano()
	for i, want := range []struct {
		sha, at string
	}{{fixtureSHA, "2019-05-15T15:20:41Z"}, {"f95f852bd8fca8fcc58a9a2d6c842781e32a215e", "2019-05-15T15:20:41Z"}} {
		c := got[i]
		assert.Equal(t, want.sha, c.SHA)
		assert.Equal(t, "greeter", c.Service, "github.services maps the repository")
		assert.Equal(t, mustTime(t, want.at).UnixNano(), c.Time, "the offset is read")
		assert.Equal(t, pushed, c.Pushed)
		assert.Equal(t, "refs/heads/master", c.Ref)
	}
	assert.Equal(t, int64(2), h.commitCount(sourceGitHub))
	assert.Equal(t, int64(2), h.ignored(sourceGitHub), "the commits without a time or an id")

	// The same commit in another push (the tag) is the same span.
	tag := readFixture(t, "github/push.json")
	require.Equal(t, http.StatusOK, h.post("/github", tag, gitHubHeaders("push", tag)...).Code)
	all := h.commits()
	require.Len(t, all, 3)
	assert.Equal(t, all[0].TraceID, all[2].TraceID)
	assert.Equal(t, all[0].SpanID, all[2].SpanID)
	assert.NotEqual(t, all[0].Ref, all[2].Ref)
}

// A redelivered push (GitHub's "Redeliver", a retry after a 503) gives
// the identical spans.
func TestGitHubPushReplay(t *testing.T) {
	h := newHarness(t, testConfig(), nil)
	body := readFixture(t, "github/push.json")
	for range 2 {
		require.Equal(t, http.StatusOK, h.post("/github", body, gitHubHeaders("push", body)...).Code)
	}
	tds := h.sink.AllTraces()
	require.Len(t, tds, 2)
	m := ptrace.ProtoMarshaler{}
	first, err := m.MarshalTraces(tds[0])
	require.NoError(t, err)
	second, err := m.MarshalTraces(tds[1])
	require.NoError(t, err)
	assert.Equal(t, first, second)
	assert.Equal(t, int64(2), h.commitCount(sourceGitHub))
}

// The push documented before (the tag deleted) and a push without commits
// are answered 202 and counted; nothing is passed on.
func TestGitHubPushIgnored(t *testing.T) {
	h := newHarness(t, testConfig(), nil)
	deleted := editJSON(t, readFixture(t, "github/push.json"), func(m map[string]any) {
		m["before"], m["after"] = fixtureSHA, "0000000000000000000000000000000000000000"
		m["created"], m["deleted"], m["head_commit"] = false, true, nil
	})
	w := h.post("/github", deleted, gitHubHeaders("push", deleted)...)
	assert.Equal(t, http.StatusAccepted, w.Code, w.Body.String())
	assert.JSONEq(t, `{"status":"ignored","reason":"push deletes refs/tags/simple-tag"}`, w.Body.String())

	empty := editJSON(t, readFixture(t, "github/push.json"), func(m map[string]any) { m["head_commit"] = nil })
	w = h.post("/github", empty, gitHubHeaders("push", empty)...)
	assert.Equal(t, http.StatusAccepted, w.Code, w.Body.String())
	assert.Contains(t, w.Body.String(), "carries no commits")

	undated := editJSON(t, readFixture(t, "github/push.json"), func(m map[string]any) { delete(sub(m, "head_commit"), "timestamp") })
	w = h.post("/github", undated, gitHubHeaders("push", undated)...)
	assert.Equal(t, http.StatusAccepted, w.Code, w.Body.String())

	assert.Empty(t, h.spans())
	assert.Equal(t, int64(3), h.ignored(sourceGitHub))
	assert.Zero(t, h.commitCount(sourceGitHub))
}

// A push is authenticated as every GitHub delivery: a signature of another
// body, or none, is 401 and counted, and nothing is passed on.
func TestGitHubPushSignature(t *testing.T) {
	h := newHarness(t, testConfig(), nil)
	body := readFixture(t, "github/push.json")
	forged := editJSON(t, body, func(m map[string]any) { sub(m, "head_commit")["timestamp"] = "2019-05-15T15:20:40Z" })
	headers := gitHubHeaders("push", body) // signed for the original body
	w := h.post("/github", forged, headers...)
	assert.Equal(t, http.StatusUnauthorized, w.Code)
	assert.Contains(t, errorOf(t, w), headerGitHubSignature)
	w = h.post("/github", body, "Content-Type", "application/json", headerGitHubEvent, "push")
	assert.Equal(t, http.StatusUnauthorized, w.Code)
	assert.Empty(t, h.spans())
	assert.Equal(t, int64(1), h.rejected(sourceGitHub, reasonBadSignature))
	assert.Equal(t, int64(1), h.rejected(sourceGitHub, reasonMissingSignature))
	assert.Zero(t, h.commitCount(sourceGitHub))
}

// A form-encoded push delivery is read from its payload field; a push
// without a repository is 400 naming it.
func TestGitHubPushFormAndMalformed(t *testing.T) {
	h := newHarness(t, testConfig(), nil)
	body := []byte(url.Values{"payload": {string(readFixture(t, "github/push.json"))}}.Encode())
	headers := gitHubHeaders("push", body)
	headers[1] = "application/x-www-form-urlencoded"
	w := h.post("/github", body, headers...)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Len(t, h.commits(), 1)

	noRepo := editJSON(t, readFixture(t, "github/push.json"), func(m map[string]any) { delete(m, "repository") })
	w = h.post("/github", noRepo, gitHubHeaders("push", noRepo)...)
	assert.Equal(t, http.StatusBadRequest, w.Code)
	assert.Equal(t, "repository.full_name: required", errorOf(t, w))
	notJSON := []byte("[1, 2]")
	w = h.post("/github", notJSON, gitHubHeaders("push", notJSON)...)
	assert.Equal(t, http.StatusBadRequest, w.Code)
	assert.Contains(t, errorOf(t, w), "not a JSON push event")
	assert.Equal(t, int64(2), h.rejected(sourceGitHub, reasonMalformed))
}
