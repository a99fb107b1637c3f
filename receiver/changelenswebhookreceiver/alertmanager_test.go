package changelenswebhookreceiver

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configopaque"

	"github.com/changelens/changelens/internal/eventspan"
)

const (
	amCheckoutID = "alertmanager:ac89ccd809b194e5@1718719950"
	amPaymentsID = "alertmanager:054efbdcb5876924@1718719980"
)

// alert is the i-th alert of a notification being edited.
func alert(m map[string]any, i int) map[string]any { return m["alerts"].([]any)[i].(map[string]any) }

// A notification of two firing alerts, then of both resolved: each alert is
// one incident, opened at its startsAt and resolved at its endsAt.
func TestAlertmanagerFiringThenResolved(t *testing.T) {
	h := newHarness(t, testConfig(), nil)
	ids := accepted(t, h.post("/alertmanager", readFixture(t, "alertmanager/firing.json"), amHeaders()...))
	assert.Equal(t, []string{amCheckoutID, amPaymentsID}, ids)
	ids = accepted(t, h.post("/alertmanager", readFixture(t, "alertmanager/resolved.json"), amHeaders()...))
	assert.Equal(t, []string{amCheckoutID, amPaymentsID}, ids)

	got := h.incidents()
	require.Len(t, got, 4)
	checkout := got[0]
	assert.Equal(t, eventspan.Incident{
		ID:       amCheckoutID,
		Resource: eventspan.Resource{Service: "checkout", Environment: "production"},
		Source:   "alertmanager",
		Severity: "critical",
		Title:    "checkout: 5.2% of requests fail",
		Opened:   mustTime(t, "2024-06-18T14:12:30.512Z").UnixNano(),
		TraceID:  checkout.TraceID,
		SpanID:   checkout.SpanID,
	}, checkout)
	payments := got[1]
	assert.Equal(t, "payments", payments.Service)
	assert.Equal(t, "warning", payments.Severity)
	assert.False(t, payments.Resolved)

	for i, end := range []string{"2024-06-18T14:53:30.512Z", "2024-06-18T14:48:00.512Z"} {
		res, open := got[2+i], got[i]
		assert.True(t, res.Resolved, res.ID)
		assert.Equal(t, open.ID, res.ID)
		assert.Equal(t, open.Opened, res.Opened, "the opening is the alert's startsAt in both")
		assert.Equal(t, mustTime(t, end).UnixNano(), res.ResolvedAt, "resolved at endsAt")
		assert.NotEqual(t, open.SpanID, res.SpanID)
	}
	assert.Equal(t, int64(2), h.incidentCount(sourceAlertmanager, eventspan.IncidentOpen))
	assert.Equal(t, int64(2), h.incidentCount(sourceAlertmanager, eventspan.IncidentResolved))
	assert.Zero(t, h.ignored(sourceAlertmanager))

	// The same alert firing again later is another incident.
	refire := editJSON(t, readFixture(t, "alertmanager/firing.json"), func(m map[string]any) {
		alert(m, 0)["startsAt"] = "2024-06-18T16:00:00Z"
		m["alerts"] = m["alerts"].([]any)[:1]
	})
	assert.Equal(t, []string{"alertmanager:ac89ccd809b194e5@1718726400"}, accepted(t, h.post("/alertmanager", refire, amHeaders()...)))
}

// match_labels keeps the alerts that are incidents; the others are
// answered and counted as ignored, never the whole notification refused.
func TestAlertmanagerMatchLabels(t *testing.T) {
	body := readFixture(t, "alertmanager/firing.json")
	cfg := testConfig()
	cfg.Alertmanager.Get().MatchLabels = map[string]string{"severity": "critical", "namespace": "shop"}
	h := newHarness(t, cfg, nil)
	w := h.post("/alertmanager", body, amHeaders()...)
	assert.Equal(t, []string{amCheckoutID}, accepted(t, w))
	assert.Contains(t, w.Body.String(), `"ignored":1`)
	assert.Equal(t, int64(1), h.ignored(sourceAlertmanager), "the warning")

	cfg.Alertmanager.Get().MatchLabels = map[string]string{"changelens": "incident"}
	h = newHarness(t, cfg, nil)
	w = h.post("/alertmanager", body, amHeaders()...)
	assert.Equal(t, http.StatusOK, w.Code)
	assert.Contains(t, w.Body.String(), `"status":"ignored"`)
	assert.Empty(t, h.spans())
	assert.Equal(t, int64(2), h.ignored(sourceAlertmanager), "each alert")

	marked := editJSON(t, body, func(m map[string]any) { alert(m, 1)["labels"].(map[string]any)["changelens"] = "incident" })
	assert.Equal(t, []string{amPaymentsID}, accepted(t, h.post("/alertmanager", marked, amHeaders()...)))
}

// The service, environment, title and deployment come from the first
// label present of each list; an alert naming no service is skipped.
func TestAlertmanagerLabels(t *testing.T) {
	body := editJSON(t, readFixture(t, "alertmanager/firing.json"), func(m map[string]any) {
		a := alert(m, 0)
		labels := a["labels"].(map[string]any)
		delete(labels, "service")
		delete(labels, "environment")
		labels["service_name"] = "checkout-api"
		labels["env"] = "eu-prod"
		labels["deployment_id"] = "github:145988746"
		delete(a["annotations"].(map[string]any), "summary")
		l1 := alert(m, 1)["labels"].(map[string]any)
		delete(l1, "service")
		delete(l1, "job")
		delete(l1, "environment")
	})
	h := newHarness(t, testConfig(), nil)
	w := h.post("/alertmanager", body, amHeaders()...)
	assert.Equal(t, []string{amCheckoutID}, accepted(t, w), "the alert without a service label is skipped")
	assert.Equal(t, int64(1), h.ignored(sourceAlertmanager))
	in := h.incidents()[0]
	assert.Equal(t, "checkout-api", in.Service)
	assert.Equal(t, "eu-prod", in.Environment)
	assert.Equal(t, "HighErrorRate", in.Title, "alertname without a summary")
	assert.Equal(t, "github:145988746", in.DeploymentID)

	// job is the last resort, the configured environment the default.
	cfg := testConfig()
	cfg.Alertmanager.Get().ServiceLabels = []string{"app"}
	cfg.Alertmanager.Get().Environment = "prod"
	h = newHarness(t, cfg, nil)
	w = h.post("/alertmanager", editJSON(t, body, func(m map[string]any) {
		alert(m, 1)["labels"].(map[string]any)["app"] = "payments-app"
	}), amHeaders()...)
	assert.Equal(t, []string{amPaymentsID}, accepted(t, w))
	in = h.incidents()[0]
	assert.Equal(t, "payments-app", in.Service)
	assert.Equal(t, "prod", in.Environment)
}

func TestAlertmanagerToken(t *testing.T) {
	cfg := testConfig()
	cfg.Alertmanager.Get().Token = configopaque.String(testAMToken)
	body := readFixture(t, "alertmanager/firing.json")
	for _, c := range []struct {
		name, value, reason string
	}{
		{"missing", "", reasonMissingToken},
		{"wrong", "Bearer nope", reasonBadToken},
		{"basic", "Basic " + testAMToken, reasonBadToken},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, cfg, nil)
			headers := amHeaders()
			if c.value != "" {
				headers = append(headers, "Authorization", c.value)
			}
			w := h.post("/alertmanager", body, headers...)
			assert.Equal(t, http.StatusUnauthorized, w.Code)
			assert.Empty(t, h.spans())
			assert.Equal(t, int64(1), h.rejected(sourceAlertmanager, c.reason))
		})
	}
	h := newHarness(t, cfg, nil)
	accepted(t, h.post("/alertmanager", body, append(amHeaders(), "Authorization", "Bearer "+testAMToken)...))
}

func TestAlertmanagerMalformed(t *testing.T) {
	firing := readFixture(t, "alertmanager/firing.json")
	resolved := readFixture(t, "alertmanager/resolved.json")
	edit := func(body []byte, f func(m map[string]any)) []byte { return editJSON(t, body, f) }
	for _, c := range []struct {
		name string
		body []byte
		want string
	}{
		{"not JSON", []byte("alerts"), "body: not an Alertmanager webhook notification"},
		{"no version", edit(firing, func(m map[string]any) { delete(m, "version") }), "version: required"},
		{"version 3", edit(firing, func(m map[string]any) { m["version"] = "3" }), `version: "3" is not 4`},
		{"version a number", edit(firing, func(m map[string]any) { m["version"] = 4 }), "version: a JSON number where a string belongs"},
		{"no alerts", edit(firing, func(m map[string]any) { delete(m, "alerts") }), "alerts: required"},
		{"alerts an object", edit(firing, func(m map[string]any) { m["alerts"] = map[string]any{} }), "alerts: not an array"},
		{"an alert a string", edit(firing, func(m map[string]any) { m["alerts"] = []any{"x"} }), "alerts[0]: not an alert"},
		{"bad startsAt", edit(firing, func(m map[string]any) { alert(m, 1)["startsAt"] = "yesterday" }), "alerts[1].startsAt: not RFC 3339"},
		{"no startsAt", edit(firing, func(m map[string]any) { delete(alert(m, 0), "startsAt") }), "alerts[0].startsAt: not RFC 3339"},
		{"no status", edit(firing, func(m map[string]any) { delete(alert(m, 1), "status") }), "alerts[1].status: required"},
		{"bad status", edit(firing, func(m map[string]any) { alert(m, 0)["status"] = "pending" }), `alerts[0].status: "pending" is not firing or resolved`},
		{"no fingerprint", edit(firing, func(m map[string]any) { delete(alert(m, 0), "fingerprint") }), "alerts[0].fingerprint: required"},
		{"resolved, no endsAt", edit(resolved, func(m map[string]any) { alert(m, 1)["endsAt"] = "0001-01-01T00:00:00Z" }), "alerts[1].endsAt: not RFC 3339"},
		{"a label not a string", edit(firing, func(m map[string]any) { alert(m, 0)["labels"].(map[string]any)["severity"] = 2 }), "alerts[0].labels: a JSON number where a string belongs"},
		{"labels a list", edit(firing, func(m map[string]any) { alert(m, 1)["labels"] = []any{"a"} }), "alerts[1].labels: a JSON array where an object belongs"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, testConfig(), nil)
			w := h.post("/alertmanager", c.body, amHeaders()...)
			assert.Equal(t, http.StatusBadRequest, w.Code, w.Body.String())
			assert.True(t, strings.HasPrefix(errorOf(t, w), c.want), "%q, want %q", errorOf(t, w), c.want)
			assert.Empty(t, h.spans(), "nothing passed on, not even the well-formed alerts")
			assert.Equal(t, int64(1), h.rejected(sourceAlertmanager, reasonMalformed))
		})
	}
	// A notification of no alerts (Alertmanager sends none such) is no incident.
	h := newHarness(t, testConfig(), nil)
	w := h.post("/alertmanager", edit(firing, func(m map[string]any) { m["alerts"] = []any{} }), amHeaders()...)
	assert.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, int64(1), h.ignored(sourceAlertmanager))
}
