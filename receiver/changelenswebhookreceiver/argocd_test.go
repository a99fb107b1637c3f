package changelenswebhookreceiver

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.yaml.in/yaml/v3"
)

// renderArgoTemplate renders the README's notification template (the
// ConfigMap in testdata) for app as Argo CD's notifications engine does: a
// Go text template over {app: the Application object} with sprig's toJson.
func renderArgoTemplate(t *testing.T, app map[string]any) []byte {
	t.Helper()
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	require.NoError(t, yaml.Unmarshal(readFixture(t, "argocd/argocd-notifications-cm.yaml"), &cm))
	var tmpl struct {
		Webhook map[string]struct {
			Method string `yaml:"method"`
			Body   string `yaml:"body"`
		} `yaml:"webhook"`
	}
	require.NoError(t, yaml.Unmarshal([]byte(cm.Data["template.changelens-deployment"]), &tmpl))
	hook := tmpl.Webhook["changelens"]
	require.Equal(t, "POST", hook.Method)
	toJSON := func(v any) string {
		b, _ := json.Marshal(v)
		return string(b)
	}
	tp, err := template.New("changelens-deployment").Funcs(template.FuncMap{"toJson": toJSON}).Parse(hook.Body)
	require.NoError(t, err)
	var out bytes.Buffer
	require.NoError(t, tp.Execute(&out, map[string]any{"app": app, "context": map[string]string{}}))
	return out.Bytes()
}

func argoApplication(t *testing.T) map[string]any {
	t.Helper()
	var app map[string]any
	require.NoError(t, json.Unmarshal(readFixture(t, "argocd/application.json"), &app))
	return app
}

func argoHeaders() []string {
	return []string{"Content-Type", "application/json", "Authorization", "Bearer " + testArgoSecret}
}

// The documented template renders the documented body, and that body is one
// successful deploy span.
func TestArgoCDTemplate(t *testing.T) {
	body := renderArgoTemplate(t, argoApplication(t))
	assert.JSONEq(t, string(readFixture(t, "argocd/sync_succeeded.json")), string(body))

	h := newHarness(t, testConfig(), nil)
	w := h.post("/argocd", body, argoHeaders()...)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	s := h.onlySpan()
	assert.Equal(t, map[string]string{
		"cicd.pipeline.task.type":       "deploy",
		"cicd.pipeline.task.name":       "deploy",
		"cicd.pipeline.task.run.result": "success",
		"service.name":                  "guestbook",
		"service.version":               "1.4.2",
		"deployment.environment.name":   "production",
		"deployment.id":                 "argocd:argocd/guestbook@2024-06-18T11:20:04Z",
		"vcs.ref.head.revision":         "53e28ff20cc530b9ada2173fbbd64d48338583ba",
		"vcs.repository.url.full":       "https://github.com/argoproj/argocd-example-apps.git",
		"cicd.pipeline.name":            "argocd/argocd/guestbook",
		"changelens.webhook.source":     "argocd",
	}, attrs(s))
	assert.Equal(t, mustTime(t, "2024-06-18T11:20:04Z"), s.StartTimestamp().AsTime(), "rollout start = operation start")
	assert.Equal(t, mustTime(t, "2024-06-18T11:20:09Z"), s.EndTimestamp().AsTime(), "deploy time = operation finish")
}

// An Application without annotations, and a failed sync without a sync
// result, still render a body the receiver takes: service = the
// Application, version = the revision.
func TestArgoCDTemplateWithoutAnnotations(t *testing.T) {
	app := argoApplication(t)
	delete(sub(app, "metadata"), "annotations")
	op := sub(sub(app, "status"), "operationState")
	op["phase"] = "Failed"
	delete(op, "syncResult")
	body := renderArgoTemplate(t, app)

	h := newHarness(t, testConfig(), nil)
	w := h.post("/argocd", body, argoHeaders()...)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	s := h.onlySpan()
	a := attrs(s)
	assert.Equal(t, "guestbook", a["service.name"])
	assert.Equal(t, "53e28ff20cc530b9ada2173fbbd64d48338583ba", a["service.version"], "the revision the app is synced to")
	assert.Equal(t, "failure", a["cicd.pipeline.task.run.result"])
	assert.Equal(t, ptrace.StatusCodeError, s.Status().Code())

	// Without the environment label there is nothing to attribute the
	// deployment to: refused, naming the field.
	delete(sub(app, "metadata"), "labels")
	w = h.post("/argocd", renderArgoTemplate(t, app), argoHeaders()...)
	assert.Equal(t, http.StatusBadRequest, w.Code)
	assert.True(t, strings.HasPrefix(errorOf(t, w), "environment: required"), errorOf(t, w))
}

func TestArgoCDPhases(t *testing.T) {
	body := readFixture(t, "argocd/sync_succeeded.json")
	for phase, want := range map[string]int{"Succeeded": 200, "Failed": 200, "Error": 200, "Running": 202, "Terminating": 202, "Sleeping": 400, "": 400} {
		h := newHarness(t, testConfig(), nil)
		b := editJSON(t, body, func(m map[string]any) { m["phase"] = phase })
		w := h.post("/argocd", b, argoHeaders()...)
		assert.Equal(t, want, w.Code, "%q: %s", phase, w.Body.String())
		switch want {
		case 200:
			failed := phase != "Succeeded"
			assert.Equal(t, failed, h.onlySpan().Status().Code() == ptrace.StatusCodeError, phase)
		case 202:
			assert.Empty(t, h.spans())
			assert.Equal(t, int64(1), h.ignored(sourceArgoCD))
		default:
			assert.True(t, strings.HasPrefix(errorOf(t, w), "phase: "), phase)
		}
	}
}

func TestArgoCDAuthentication(t *testing.T) {
	body := readFixture(t, "argocd/sync_succeeded.json")
	for _, c := range []struct {
		name, value, reason string
	}{
		{"missing", "", reasonMissingToken},
		{"wrong secret", "Bearer guess", reasonBadToken},
		{"no scheme", testArgoSecret, reasonBadToken},
		{"another scheme", "Basic " + testArgoSecret, reasonBadToken},
		{"secret as a prefix", "Bearer " + testArgoSecret + "x", reasonBadToken},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, testConfig(), nil)
			headers := []string{"Content-Type", "application/json"}
			if c.value != "" {
				headers = append(headers, "Authorization", c.value)
			}
			w := h.post("/argocd", body, headers...)
			assert.Equal(t, http.StatusUnauthorized, w.Code)
			assert.NotContains(t, w.Body.String(), testArgoSecret, "the answer never repeats the secret")
			assert.Empty(t, h.spans())
			assert.Equal(t, int64(1), h.rejected(sourceArgoCD, c.reason))
		})
	}
	// The scheme is case-insensitive (RFC 9110); a header of one's own
	// without a scheme takes the bare secret.
	h := newHarness(t, testConfig(), nil)
	assert.Equal(t, http.StatusOK, h.post("/argocd", body, "Authorization", "bearer "+testArgoSecret).Code)
	cfg := testConfig()
	cfg.ArgoCD = configoptional.Some(ArgoCDConfig{Path: "/argocd", Secret: configopaque.String(testArgoSecret), Header: "X-Changelens-Token"})
	h = newHarness(t, cfg, nil)
	assert.Equal(t, http.StatusOK, h.post("/argocd", body, "X-Changelens-Token", testArgoSecret).Code)
	assert.Equal(t, http.StatusUnauthorized, h.post("/argocd", body, "Authorization", "Bearer "+testArgoSecret).Code)
}

func TestArgoCDMalformed(t *testing.T) {
	body := readFixture(t, "argocd/sync_succeeded.json")
	for _, c := range []struct {
		name string
		edit func(m map[string]any)
		want string
	}{
		{"no app", func(m map[string]any) { delete(m, "app") }, "app: required"},
		{"no environment", func(m map[string]any) { m["environment"] = nil }, "environment: required"},
		{"environment <no value>", func(m map[string]any) { m["environment"] = "<no value>" }, "environment: required"},
		{"neither revision nor version", func(m map[string]any) { m["revision"] = ""; m["version"] = nil }, "revision: required"},
		{"no startedAt", func(m map[string]any) { delete(m, "startedAt") }, "startedAt: required"},
		{"bad finishedAt", func(m map[string]any) { m["finishedAt"] = "0001-01-01T00:00:00Z" }, "finishedAt: required"},
		{"bad commitTime", func(m map[string]any) { m["commitTime"] = "last week" }, "commitTime: not an RFC 3339 time"},
		{"phase of the wrong type", func(m map[string]any) { m["phase"] = 3 }, "body: not the JSON of the changelens notification template"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, testConfig(), nil)
			w := h.post("/argocd", editJSON(t, body, c.edit), argoHeaders()...)
			assert.Equal(t, http.StatusBadRequest, w.Code)
			assert.True(t, strings.HasPrefix(errorOf(t, w), c.want), "%q, want %q", errorOf(t, w), c.want)
			assert.Empty(t, h.spans())
			assert.Equal(t, int64(1), h.rejected(sourceArgoCD, reasonMalformed))
		})
	}
}

// Optional fields: the service and version annotations, a rework marker,
// the commit time as GetCommitMetadata's Date renders unformatted.
func TestArgoCDOptionalFields(t *testing.T) {
	body := editJSON(t, readFixture(t, "argocd/sync_succeeded.json"), func(m map[string]any) {
		m["service"] = "guestbook-ui"
		m["version"] = "<no value>"
		m["rework"] = "revert"
		m["commitTime"] = time.Date(2024, 6, 18, 10, 58, 0, 0, time.FixedZone("CEST", 2*3600)).String()
	})
	h := newHarness(t, testConfig(), nil)
	require.Equal(t, http.StatusOK, h.post("/argocd", body, argoHeaders()...).Code)
	a := attrs(h.onlySpan())
	assert.Equal(t, "guestbook-ui", a["service.name"])
	assert.Equal(t, "53e28ff20cc530b9ada2173fbbd64d48338583ba", a["service.version"], "<no value> is no version")
	assert.Equal(t, "revert", a["changelens.deployment.rework"])
	assert.Equal(t, "2024-06-18T08:58:00Z", a["changelens.commit.time"])
}
