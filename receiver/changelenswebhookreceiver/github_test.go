package changelenswebhookreceiver

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// GitHub's documented deployment_status delivery becomes one successful
// deploy span with the attributes the processor reads.
func TestGitHubDeploymentStatus(t *testing.T) {
	h := newHarness(t, testConfig(), nil)
	body := readFixture(t, "github/deployment_status.json")
	w := h.post("/github", body, gitHubHeaders("deployment_status", body)...)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var answer map[string]string
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &answer))
	assert.Equal(t, map[string]string{"status": "accepted", "deployment_id": "github:145988746", "service": "Hello-World",
		"environment": "production", "version": "f95f852bd8fca8fcc58a9a2d6c842781e32a215e", "result": "success"}, answer)

	s := h.onlySpan()
	assert.Equal(t, map[string]string{
		"cicd.pipeline.task.type":       "deploy",
		"cicd.pipeline.task.name":       "deploy",
		"cicd.pipeline.task.run.result": "success",
		"service.name":                  "Hello-World",
		"service.version":               "f95f852bd8fca8fcc58a9a2d6c842781e32a215e",
		"deployment.environment.name":   "production",
		"deployment.id":                 "github:145988746",
		"vcs.ref.head.revision":         "f95f852bd8fca8fcc58a9a2d6c842781e32a215e",
		"vcs.ref.head.name":             "master",
		"vcs.repository.url.full":       "https://github.com/Codertocat/Hello-World",
		"cicd.pipeline.name":            "github deployments",
		"changelens.webhook.source":     "github",
	}, attrs(s))
	assert.Equal(t, "deploy Hello-World", s.Name())
	assert.Equal(t, ptrace.SpanKindInternal, s.Kind())
	assert.Equal(t, ptrace.StatusCodeUnset, s.Status().Code())
	assert.True(t, s.ParentSpanID().IsEmpty(), "a root span, as a CI system's deploy span is")
	assert.Equal(t, mustTime(t, "2019-05-15T15:20:53Z"), s.StartTimestamp().AsTime(), "rollout start = deployment.created_at")
	assert.Equal(t, mustTime(t, "2019-05-15T15:20:55Z"), s.EndTimestamp().AsTime(), "deploy time = deployment_status.updated_at")
	res, _ := h.sink.AllTraces()[0].ResourceSpans().At(0).Resource().Attributes().Get("service.name")
	assert.Equal(t, "github", res.Str(), "the resource is the system that deployed")
	assert.Equal(t, int64(1), h.deployments(sourceGitHub, resultSuccess))
}

// A failed status from GitHub Actions: a failed attempt with its own ID, the
// payload's service and version, the workflow as the pipeline, the hotfix
// branch marking the rework.
func TestGitHubActionsFailure(t *testing.T) {
	h := newHarness(t, testConfig(), nil)
	body := readFixture(t, "github/deployment_status_actions_failure.json")
	w := h.post("/github", body, gitHubHeaders("deployment_status", body)...)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	s := h.onlySpan()
	a := attrs(s)
	assert.Equal(t, "failure", a["cicd.pipeline.task.run.result"])
	assert.Equal(t, ptrace.StatusCodeError, s.Status().Code())
	assert.Equal(t, "github:1634790011:failed", a["deployment.id"], "a failed attempt is not the deployment's success")
	assert.Equal(t, "checkout", a["service.name"], "deployment.payload.service wins over the repository")
	assert.Equal(t, "1.8.1", a["service.version"], "deployment.payload.version wins over the sha")
	assert.Equal(t, "staging", a["deployment.environment.name"])
	assert.Equal(t, "3d0e7c6f0b1a2c4d5e6f708192a3b4c5d6e7f809", a["vcs.ref.head.revision"])
	assert.Equal(t, "hotfix", a["changelens.deployment.rework"], "ref hotfix/…")
	assert.Equal(t, "deploy", a["cicd.pipeline.name"])
	assert.Equal(t, "9563451823", a["cicd.pipeline.run.id"])
	assert.Equal(t, mustTime(t, "2024-06-18T09:12:03Z"), s.StartTimestamp().AsTime())
	assert.Equal(t, mustTime(t, "2024-06-18T09:14:41Z"), s.EndTimestamp().AsTime())
	assert.Equal(t, int64(1), h.deployments(sourceGitHub, resultFailure))
}

func TestGitHubSignature(t *testing.T) {
	body := readFixture(t, "github/deployment_status.json")
	tampered := editJSON(t, body, func(m map[string]any) { sub(m, "deployment")["environment"] = "staging" })
	for _, c := range []struct {
		name      string
		body      []byte
		signature string
		reason    string
	}{
		{"missing", body, "", reasonMissingSignature},
		{"another secret", body, signGitHub("not the secret", body), reasonBadSignature},
		{"the body changed after signing", tampered, signGitHub(testGitHubSecret, body), reasonBadSignature},
		{"sha1 only", body, "sha1=0123456789abcdef0123456789abcdef01234567", reasonBadSignature},
		{"not hex", body, "sha256=zz", reasonBadSignature},
		{"empty digest", body, "sha256=", reasonBadSignature},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, testConfig(), nil)
			headers := []string{"Content-Type", "application/json", headerGitHubEvent, "deployment_status"}
			if c.signature != "" {
				headers = append(headers, headerGitHubSignature, c.signature)
			}
			w := h.post("/github", c.body, headers...)
			assert.Equal(t, http.StatusUnauthorized, w.Code)
			assert.Contains(t, errorOf(t, w), headerGitHubSignature)
			assert.Empty(t, h.spans(), "never passed on")
			assert.Equal(t, int64(1), h.rejected(sourceGitHub, c.reason))
		})
	}
	// An unsigned ping or an unsigned event we would ignore is refused too:
	// nothing answers an unauthenticated caller but 401.
	h := newHarness(t, testConfig(), nil)
	ping := readFixture(t, "github/ping.json")
	assert.Equal(t, http.StatusUnauthorized, h.post("/github", ping, headerGitHubEvent, "ping").Code)
	assert.Equal(t, http.StatusUnauthorized, h.post("/github", ping, headerGitHubEvent, "push", headerGitHubSignature, "sha256=00").Code)
}

func TestGitHubIgnored(t *testing.T) {
	h := newHarness(t, testConfig(), nil)
	ping := readFixture(t, "github/ping.json")
	w := h.post("/github", ping, gitHubHeaders("ping", ping)...)
	assert.Equal(t, http.StatusOK, w.Code, "ping")
	assert.JSONEq(t, `{"status":"ignored","reason":"ping"}`, w.Body.String())

	body := readFixture(t, "github/deployment_status.json")
	w = h.post("/github", body, gitHubHeaders("deployment", body)...)
	assert.Equal(t, http.StatusAccepted, w.Code, "another event")
	for _, state := range []string{"pending", "queued", "in_progress", "inactive"} {
		b := editJSON(t, body, func(m map[string]any) { sub(m, "deployment_status")["state"] = state })
		w := h.post("/github", b, gitHubHeaders("deployment_status", b)...)
		assert.Equal(t, http.StatusAccepted, w.Code, state)
		assert.Contains(t, w.Body.String(), state)
	}
	assert.Empty(t, h.spans())
	assert.Equal(t, int64(6), h.ignored(sourceGitHub))
}

func TestGitHubMalformed(t *testing.T) {
	body := readFixture(t, "github/deployment_status.json")
	edit := func(f func(m map[string]any)) []byte { return editJSON(t, body, f) }
	for _, c := range []struct {
		name   string
		body   []byte
		status int
		want   string
	}{
		{"no environment", edit(func(m map[string]any) { delete(sub(m, "deployment"), "environment") }), 400, "deployment.environment: required"},
		{"empty environment", edit(func(m map[string]any) { sub(m, "deployment")["environment"] = "" }), 400, "deployment.environment: required"},
		{"no deployment", edit(func(m map[string]any) { delete(m, "deployment") }), 400, "deployment: required"},
		{"no status", edit(func(m map[string]any) { delete(m, "deployment_status") }), 400, "deployment_status: required"},
		{"no state", edit(func(m map[string]any) { delete(sub(m, "deployment_status"), "state") }), 400, "deployment_status.state: required"},
		{"no deployment id", edit(func(m map[string]any) { delete(sub(m, "deployment"), "id") }), 400, "deployment.id: required"},
		{"no sha", edit(func(m map[string]any) { delete(sub(m, "deployment"), "sha") }), 400, "deployment.sha: required"},
		{"no repository", edit(func(m map[string]any) { delete(m, "repository") }), 400, "repository.full_name: required"},
		{"no status time", edit(func(m map[string]any) {
			delete(sub(m, "deployment_status"), "updated_at")
			delete(sub(m, "deployment_status"), "created_at")
		}), 400, "deployment_status.updated_at: required"},
		{"bad created_at", edit(func(m map[string]any) { sub(m, "deployment")["created_at"] = "yesterday" }), 400, "deployment.created_at: not an RFC 3339 time"},
		{"not JSON", []byte(`{"deployment": `), 400, "body: not a JSON deployment_status event"},
		{"id of the wrong type", edit(func(m map[string]any) { sub(m, "deployment")["id"] = map[string]any{} }), 400, "body: not a JSON deployment_status event"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, testConfig(), nil)
			w := h.post("/github", c.body, gitHubHeaders("deployment_status", c.body)...)
			assert.Equal(t, c.status, w.Code)
			assert.Contains(t, errorOf(t, w), c.want)
			assert.Empty(t, h.spans())
			assert.Equal(t, int64(1), h.rejected(sourceGitHub, reasonMalformed))
		})
	}
	h := newHarness(t, testConfig(), nil)
	w := h.post("/github", body, headerGitHubSignature, signGitHub(testGitHubSecret, body))
	assert.Equal(t, http.StatusBadRequest, w.Code)
	assert.Equal(t, "X-GitHub-Event: required", errorOf(t, w))
	headers := gitHubHeaders("deployment_status", body)
	headers[1] = "text/plain"
	w = h.post("/github", body, headers...)
	assert.Equal(t, http.StatusUnsupportedMediaType, w.Code)
	assert.Contains(t, errorOf(t, w), "Content-Type")
	assert.Equal(t, int64(1), h.rejected(sourceGitHub, reasonMediaType))
}

// GitHub's other content type, application/x-www-form-urlencoded, signs the
// form as sent and carries the same event in payload.
func TestGitHubFormEncoded(t *testing.T) {
	body := readFixture(t, "github/deployment_status.json")
	jsonH := newHarness(t, testConfig(), nil)
	require.Equal(t, http.StatusOK, jsonH.post("/github", body, gitHubHeaders("deployment_status", body)...).Code)

	form := []byte(url.Values{"payload": {string(body)}}.Encode())
	formH := newHarness(t, testConfig(), nil)
	headers := gitHubHeaders("deployment_status", form)
	headers[1] = "application/x-www-form-urlencoded"
	w := formH.post("/github", form, headers...)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	assert.Equal(t, jsonH.sink.AllTraces(), formH.sink.AllTraces())
}

func TestGitHubServiceAndVersionRules(t *testing.T) {
	body := readFixture(t, "github/deployment_status.json")
	withPayload := func(p any) []byte {
		return editJSON(t, body, func(m map[string]any) { sub(m, "deployment")["payload"] = p })
	}
	for _, c := range []struct {
		name             string
		configure        func(g *GitHubConfig)
		body             []byte
		service, version string
	}{
		{"defaults", nil, body, "Hello-World", "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"},
		{"short sha", func(g *GitHubConfig) { g.Version = versionShortSHA }, body, "Hello-World", "f95f852"},
		{"ref", func(g *GitHubConfig) { g.Version = versionRef }, body, "Hello-World", "master"},
		{"tag ref", func(g *GitHubConfig) { g.Version = versionRef },
			editJSON(t, body, func(m map[string]any) { sub(m, "deployment")["ref"] = "refs/tags/v2.3.0" }), "Hello-World", "v2.3.0"},
		{"full name", func(g *GitHubConfig) { g.Service = serviceRepositoryFullName }, body, "Codertocat/Hello-World", "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"},
		{"mapped", func(g *GitHubConfig) { g.Services = map[string]string{"Codertocat/Hello-World": "greeter"} }, body, "greeter", "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"},
		{"payload wins over the mapping", func(g *GitHubConfig) { g.Services = map[string]string{"Codertocat/Hello-World": "greeter"} },
			withPayload(map[string]any{"service": "hello", "version": "3.1.0"}), "hello", "3.1.0"},
		{"payload as a JSON string", nil, withPayload(`{"service": "hello", "version": "3.1.0"}`), "hello", "3.1.0"},
		{"payload of other types", nil, withPayload(map[string]any{"service": 7, "version": []any{"x"}, "deploy_by": "robot"}),
			"Hello-World", "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"},
		{"payload a plain string", nil, withPayload("deploy it"), "Hello-World", "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"},
		{"payload a broken JSON string", nil, withPayload(`{"service": `), "Hello-World", "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig()
			if c.configure != nil {
				g := cfg.GitHub.Get()
				c.configure(g)
				cfg.GitHub = configoptional.Some(*g)
			}
			h := newHarness(t, cfg, nil)
			w := h.post("/github", c.body, gitHubHeaders("deployment_status", c.body)...)
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
			a := attrs(h.onlySpan())
			assert.Equal(t, c.service, a["service.name"])
			assert.Equal(t, c.version, a["service.version"])
			assert.Equal(t, "f95f852bd8fca8fcc58a9a2d6c842781e32a215e", a["vcs.ref.head.revision"], "the commit is the sha whatever the version")
		})
	}
}

func TestGitHubRework(t *testing.T) {
	body := readFixture(t, "github/deployment_status.json")
	for _, c := range []struct {
		ref     string
		payload map[string]any
		want    string
	}{
		{"master", nil, ""},
		{"hotfix/login-loop", nil, "hotfix"},
		{"refs/heads/hotfix/login-loop", nil, "hotfix"},
		{"revert-1347-new-checkout", nil, "revert"},
		{"hotfixes-are-not-this", nil, ""},
		{"master", map[string]any{"rework": "Revert"}, "revert"},
		{"master", map[string]any{"rework": "hotfix"}, "hotfix"},
		{"hotfix/x", map[string]any{"rework": "revert"}, "revert"},
		{"master", map[string]any{"rework": "yes please"}, ""},
	} {
		b := editJSON(t, body, func(m map[string]any) {
			d := sub(m, "deployment")
			d["ref"] = c.ref
			if c.payload != nil {
				d["payload"] = c.payload
			}
		})
		h := newHarness(t, testConfig(), nil)
		require.Equal(t, http.StatusOK, h.post("/github", b, gitHubHeaders("deployment_status", b)...).Code)
		got, ok := h.onlySpan().Attributes().Get("changelens.deployment.rework")
		if c.want == "" {
			assert.False(t, ok, "%s %v: no rework attribute", c.ref, c.payload)
			continue
		}
		assert.Equal(t, c.want, got.Str(), "%s %v", c.ref, c.payload)
	}
}

// The commit time, when the deployment's creator puts it in the payload,
// reaches the span for lead times.
func TestGitHubCommitTime(t *testing.T) {
	body := editJSON(t, readFixture(t, "github/deployment_status.json"), func(m map[string]any) {
		sub(m, "deployment")["payload"] = map[string]any{"commit_time": "2019-05-15T14:02:11+02:00"}
	})
	h := newHarness(t, testConfig(), nil)
	require.Equal(t, http.StatusOK, h.post("/github", body, gitHubHeaders("deployment_status", body)...).Code)
	assert.Equal(t, "2019-05-15T12:02:11Z", attrs(h.onlySpan())["changelens.commit.time"])

	// One it cannot read costs the lead time, not the deployment.
	body = editJSON(t, body, func(m map[string]any) {
		sub(m, "deployment")["payload"] = map[string]any{"commit_time": "soon"}
	})
	h = newHarness(t, testConfig(), nil)
	require.Equal(t, http.StatusOK, h.post("/github", body, gitHubHeaders("deployment_status", body)...).Code)
	assert.NotContains(t, attrs(h.onlySpan()), "changelens.commit.time")
}
