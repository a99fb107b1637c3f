package changelenswebhookreceiver

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"

	"github.com/changelens/changelens/internal/eventspan"
)

// binaryHeaders are the CloudEvents HTTP binary-mode headers of a CDEvent
// (the CDEvents CloudEvents binding: ce-id, ce-source, ce-type, ce-time and
// ce-subject copied from its context and subject).
func binaryHeaders(ceType string) []string {
	return []string{
		"Content-Type", "application/json; charset=utf-8",
		"Ce-Specversion", "1.0",
		"Ce-Id", "271069a8-fc18-44f1-b38f-9d70a1695819",
		"Ce-Source", "/event/source/123",
		"Ce-Type", ceType,
		"Ce-Time", "2023-03-20T14:27:05.315384Z",
		"Ce-Subject", "mySubject123",
	}
}

// The spec's service.deployed example (v0.4.1) in binary mode.
func TestCDEventsServiceDeployed(t *testing.T) {
	h := newHarness(t, testConfig(), nil)
	body := readFixture(t, "cdevents/service_deployed.json")
	w := h.post("/cdevents", body, binaryHeaders("dev.cdevents.service.deployed.0.2.0")...)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	s := h.onlySpan()
	assert.Equal(t, map[string]string{
		"cicd.pipeline.task.type":       "deploy",
		"cicd.pipeline.task.name":       "deploy",
		"cicd.pipeline.task.run.result": "success",
		"service.name":                  "mySubject123",
		"service.version":               "sha256:0b31b1c02ff458ad9b7b81cbdf8f028bd54699fa151f221d1e8de6817db93427",
		"deployment.environment.name":   "test123",
		"deployment.id":                 "cdevents:/event/source/123#271069a8-fc18-44f1-b38f-9d70a1695819",
		"cicd.pipeline.name":            "/event/source/123",
		"cicd.pipeline.run.id":          "4c8cb7dd-3448-41de-8768-eec704e2829b",
		"changelens.webhook.source":     "cdevents",
	}, attrs(s))
	at := mustTime(t, "2023-03-20T14:27:05.315384Z")
	assert.Equal(t, at, s.StartTimestamp().AsTime())
	assert.Equal(t, at, s.EndTimestamp().AsTime())
	assert.Equal(t, int64(1), h.deployments(sourceCDEvents, resultSuccess))
}

// A rollback is a deployment of the version rolled back to, marked revert.
func TestCDEventsServiceRolledBack(t *testing.T) {
	h := newHarness(t, testConfig(), nil)
	body := readFixture(t, "cdevents/service_rolledback.json")
	require.Equal(t, http.StatusOK, h.post("/cdevents", body, binaryHeaders("dev.cdevents.service.rolledback.0.2.0")...).Code)
	a := attrs(h.onlySpan())
	assert.Equal(t, "revert", a["changelens.deployment.rework"])
	assert.Equal(t, "success", a["cicd.pipeline.task.run.result"])

	// service.upgraded (the spec's other deployment of a service) too.
	up := editJSON(t, readFixture(t, "cdevents/service_deployed.json"), func(m map[string]any) {
		c := sub(m, "context")
		c["type"] = "dev.cdevents.service.upgraded.0.2.0"
		c["id"] = "upgrade-1"
	})
	require.Equal(t, http.StatusOK, h.post("/cdevents", up, binaryHeaders("dev.cdevents.service.upgraded.0.2.0")...).Code)
	assert.Len(t, h.spans(), 2)
}

// Structured mode: the CloudEvent is the body and the CDEvent its data;
// customData's changelens fields fill version, commit, commit time, rework.
func TestCDEventsStructured(t *testing.T) {
	body := readFixture(t, "cdevents/service_deployed_structured.json")
	for _, contentType := range []string{"application/cloudevents+json; charset=UTF-8", "application/json"} {
		h := newHarness(t, testConfig(), nil)
		w := h.post("/cdevents", body, "Content-Type", contentType)
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		s := h.onlySpan()
		a := attrs(s)
		assert.Equal(t, "payments", a["service.name"])
		assert.Equal(t, "production", a["deployment.environment.name"])
		assert.Equal(t, "2.4.0", a["service.version"], "customData.version wins over the artifact's digest")
		assert.Equal(t, "8f2c4b7a1e9d3c5f6a0b2d4e6f8a1c3e5b7d9f02", a["vcs.ref.head.revision"])
		assert.Equal(t, "2024-06-18T08:47:12Z", a["changelens.commit.time"])
		assert.Equal(t, "hotfix", a["changelens.deployment.rework"])
		assert.Equal(t, "cdevents:/tekton/prod-cluster/pipelineruns#9d4c7c1e-2f0b-4b7e-8d59-0c2f3a6b1e42", a["deployment.id"])
		assert.Equal(t, mustTime(t, "2024-06-18T10:02:31.512Z"), s.EndTimestamp().AsTime())
	}
}

// A bare CDEvent, posted as JSON without CloudEvents headers, is taken as
// binary mode without them.
func TestCDEventsBare(t *testing.T) {
	h := newHarness(t, testConfig(), nil)
	require.Equal(t, http.StatusOK, h.post("/cdevents", readFixture(t, "cdevents/service_deployed.json"), "Content-Type", "application/json").Code)
	assert.Equal(t, "mySubject123", attrs(h.onlySpan())["service.name"])
}

func TestCDEventsToken(t *testing.T) {
	cfg := testConfig()
	cfg.CDEvents = configoptional.Some(CDEventsConfig{Path: "/cdevents", Token: configopaque.String(testCDToken)})
	body := readFixture(t, "cdevents/service_deployed.json")
	for _, c := range []struct {
		name, value, reason string
	}{
		{"missing", "", reasonMissingToken},
		{"wrong", "Bearer nope", reasonBadToken},
		{"not bearer", "Token " + testCDToken, reasonBadToken},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, cfg, nil)
			headers := binaryHeaders("dev.cdevents.service.deployed.0.2.0")
			if c.value != "" {
				headers = append(headers, "Authorization", c.value)
			}
			w := h.post("/cdevents", body, headers...)
			assert.Equal(t, http.StatusUnauthorized, w.Code)
			assert.Empty(t, h.spans())
			assert.Equal(t, int64(1), h.rejected(sourceCDEvents, c.reason))
		})
	}
	h := newHarness(t, cfg, nil)
	w := h.post("/cdevents", body, append(binaryHeaders("dev.cdevents.service.deployed.0.2.0"), "Authorization", "Bearer "+testCDToken)...)
	assert.Equal(t, http.StatusOK, w.Code, w.Body.String())
}

func TestCDEventsIgnoredAndMalformed(t *testing.T) {
	body := readFixture(t, "cdevents/service_deployed.json")
	edit := func(f func(m map[string]any)) []byte { return editJSON(t, body, f) }

	h := newHarness(t, testConfig(), nil)
	for _, typ := range []string{"dev.cdevents.pipelinerun.finished.0.2.0", "dev.cdevents.service.removed.0.2.0", "dev.cdevents.service.deployed.1.0.0"} {
		b := edit(func(m map[string]any) { sub(m, "context")["type"] = typ })
		w := h.post("/cdevents", b, binaryHeaders(typ)...)
		assert.Equal(t, http.StatusAccepted, w.Code, typ)
	}
	assert.Empty(t, h.spans())
	assert.Equal(t, int64(3), h.ignored(sourceCDEvents))

	for _, c := range []struct {
		name string
		body []byte
		want string
	}{
		{"no environment", edit(func(m map[string]any) { delete(sub(sub(m, "subject"), "content"), "environment") }), "subject.content.environment.id: required"},
		{"empty environment id", edit(func(m map[string]any) {
			sub(sub(m, "subject"), "content")["environment"] = map[string]any{"source": "/x"}
		}), "subject.content.environment.id: required"},
		{"no artifact", edit(func(m map[string]any) { delete(sub(sub(m, "subject"), "content"), "artifactId") }), "subject.content.artifactId: required"},
		{"no subject", edit(func(m map[string]any) { delete(m, "subject") }), "subject.id: required"},
		{"no id", edit(func(m map[string]any) { delete(sub(m, "context"), "id") }), "context.id: required"},
		{"no source", edit(func(m map[string]any) { delete(sub(m, "context"), "source") }), "context.source: required"},
		{"no type", edit(func(m map[string]any) { delete(sub(m, "context"), "type") }), "context.type: required"},
		{"not a CDEvents type", edit(func(m map[string]any) { sub(m, "context")["type"] = "com.example.deployed" }), "context.type: not a CDEvents type"},
		{"bad timestamp", edit(func(m map[string]any) { sub(m, "context")["timestamp"] = "now" }), "context.timestamp: required, an RFC 3339 time"},
		{"bad commit time", edit(func(m map[string]any) { m["customData"] = map[string]any{"commitTime": "then"} }), "customData.commitTime"},
		{"not JSON", []byte("<event/>"), "body: not a CDEvent"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, testConfig(), nil)
			w := h.post("/cdevents", c.body, binaryHeaders("dev.cdevents.service.deployed.0.2.0")...)
			assert.Equal(t, http.StatusBadRequest, w.Code)
			assert.True(t, strings.HasPrefix(errorOf(t, w), c.want), "%q, want %q", errorOf(t, w), c.want)
			assert.Empty(t, h.spans())
			assert.Equal(t, int64(1), h.rejected(sourceCDEvents, reasonMalformed))
		})
	}

	h = newHarness(t, testConfig(), nil)
	w := h.post("/cdevents", []byte(`[`+string(body)+`]`), "Content-Type", "application/cloudevents-batch+json")
	assert.Equal(t, http.StatusUnsupportedMediaType, w.Code)
	w = h.post("/cdevents", body, "Content-Type", "text/xml")
	assert.Equal(t, http.StatusUnsupportedMediaType, w.Code)
	assert.Equal(t, int64(2), h.rejected(sourceCDEvents, reasonMediaType))
	w = h.post("/cdevents", []byte(`{"specversion":"1.0","id":"1","source":"/s","type":"dev.cdevents.service.deployed.0.2.0"}`),
		"Content-Type", "application/cloudevents+json")
	assert.Equal(t, http.StatusBadRequest, w.Code)
	assert.Equal(t, "data: required (the CDEvent)", errorOf(t, w))
}

func TestArtifactVersion(t *testing.T) {
	for id, want := range map[string]string{
		"pkg:oci/myapp@sha256%3A0b31b1c02ff458ad9b7b81cbdf8f028bd54699fa151f221d1e8de6817db93427": "sha256:0b31b1c02ff458ad9b7b81cbdf8f028bd54699fa151f221d1e8de6817db93427",
		"pkg:oci/payments@sha256%3Aabc?repository_url=ghcr.io%2Facme%2Fpayments&tag=2.4.0":        "sha256:abc",
		"pkg:golang/github.com/acme/api@v1.4.0#cmd/api":                                           "v1.4.0",
		"pkg:npm/%40acme/web@3.2.1":                     "3.2.1",
		"pkg:maven/org.acme/billing@2.0.0-RC1?type=jar": "2.0.0-RC1",
		"pkg:oci/unversioned":                           "pkg:oci/unversioned",
		"ghcr.io/acme/payments:2.4.0":                   "ghcr.io/acme/payments:2.4.0",
	} {
		assert.Equal(t, want, artifactVersion(id), id)
	}
}

// The spec's incident examples (v0.4.1): detected and reported open the
// incident, resolved resolves it; all three share the subject's ID.
func TestCDEventsIncidents(t *testing.T) {
	const id = "cdevents:/monitoring/prod1#incident-123"
	at := mustTime(t, "2022-11-11T13:52:20.079Z").UnixNano()
	h := newHarness(t, testConfig(), nil)
	for _, c := range []struct{ fixture, ceType string }{
		{"cdevents/incident_detected.json", "dev.cdevents.incident.detected.0.2.0"},
		{"cdevents/incident_reported.json", "dev.cdevents.incident.reported.0.2.0"},
		{"cdevents/incident_resolved.json", "dev.cdevents.incident.resolved.0.2.0"},
	} {
		w := h.post("/cdevents", readFixture(t, c.fixture), binaryHeaders(c.ceType)...)
		assert.Equal(t, []string{id}, accepted(t, w), c.fixture)
	}
	got := h.incidents()
	require.Len(t, got, 3)
	detected := got[0]
	assert.Equal(t, eventspan.Incident{
		ID: id,
		Resource: eventspan.Resource{Service: "myApp", Environment: "prod1",
			Version: "sha256:0b31b1c02ff458ad9b7b81cbdf8f028bd54699fa151f221d1e8de6817db93427"},
		Source:  "cdevents",
		Title:   "Response time above threshold of 100ms",
		Opened:  at,
		TraceID: detected.TraceID,
		SpanID:  detected.SpanID,
	}, detected)
	reported := got[1]
	assert.False(t, reported.Resolved)
	assert.Equal(t, "medium", reported.Severity, "customData.severity")
	assert.Equal(t, detected.SpanID, reported.SpanID, "another opening of the same incident")
	resolved := got[2]
	assert.True(t, resolved.Resolved)
	assert.Equal(t, id, resolved.ID)
	assert.Equal(t, at, resolved.ResolvedAt)
	assert.Equal(t, at, resolved.Opened, "a resolution without customData.openedAt opens when it resolves")
	assert.Equal(t, "Response time restored below 100ms", resolved.Title)
	assert.NotEqual(t, detected.SpanID, resolved.SpanID)
	assert.Equal(t, int64(2), h.incidentCount(sourceCDEvents, eventspan.IncidentOpen))
	assert.Equal(t, int64(1), h.incidentCount(sourceCDEvents, eventspan.IncidentResolved))
}

// customData.openedAt, title, severity and deploymentId, changelens'
// convention, say what the spec's incident events cannot.
func TestCDEventsIncidentCustomData(t *testing.T) {
	body := editJSON(t, readFixture(t, "cdevents/incident_resolved.json"), func(m map[string]any) {
		sub(m, "context")["timestamp"] = "2022-11-11T14:30:00Z"
		m["customData"] = map[string]any{"openedAt": "2022-11-11T13:52:20.079Z", "title": "checkout slow", "severity": "P2",
			"deploymentId": "cdevents:/tekton/prod#9d4c", "value": 70}
	})
	h := newHarness(t, testConfig(), nil)
	accepted(t, h.post("/cdevents", body, binaryHeaders("dev.cdevents.incident.resolved.0.2.0")...))
	in := h.incidents()[0]
	assert.Equal(t, mustTime(t, "2022-11-11T13:52:20.079Z").UnixNano(), in.Opened)
	assert.Equal(t, mustTime(t, "2022-11-11T14:30:00Z").UnixNano(), in.ResolvedAt)
	assert.Equal(t, "checkout slow", in.Title)
	assert.Equal(t, "P2", in.Severity)
	assert.Equal(t, "cdevents:/tekton/prod#9d4c", in.DeploymentID)

	// Structured mode, as any CDEvent.
	structured := editJSON(t, readFixture(t, "cdevents/service_deployed_structured.json"), func(m map[string]any) {
		var ev map[string]any
		require.NoError(t, json.Unmarshal(readFixture(t, "cdevents/incident_detected.json"), &ev))
		m["type"], m["data"] = "dev.cdevents.incident.detected.0.2.0", ev
	})
	h = newHarness(t, testConfig(), nil)
	assert.Equal(t, []string{"cdevents:/monitoring/prod1#incident-123"},
		accepted(t, h.post("/cdevents", structured, "Content-Type", "application/cloudevents+json")))
}

func TestCDEventsIncidentMalformed(t *testing.T) {
	body := readFixture(t, "cdevents/incident_detected.json")
	edit := func(f func(m map[string]any)) []byte { return editJSON(t, body, f) }
	content := func(m map[string]any) map[string]any { return sub(sub(m, "subject"), "content") }
	for _, c := range []struct {
		name string
		body []byte
		want string
	}{
		{"no service", edit(func(m map[string]any) { delete(content(m), "service") }), "subject.content.service.id: required"},
		{"no environment", edit(func(m map[string]any) { delete(content(m), "environment") }), "subject.content.environment.id: required"},
		{"no subject id", edit(func(m map[string]any) { delete(sub(m, "subject"), "id") }), "subject.id: required (the incident)"},
		{"bad timestamp", edit(func(m map[string]any) { sub(m, "context")["timestamp"] = "now" }), "context.timestamp"},
		{"bad openedAt", edit(func(m map[string]any) { m["customData"] = map[string]any{"openedAt": "then"} }), "customData.openedAt: not an RFC 3339 time"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, testConfig(), nil)
			w := h.post("/cdevents", c.body, binaryHeaders("dev.cdevents.incident.detected.0.2.0")...)
			assert.Equal(t, http.StatusBadRequest, w.Code)
			assert.True(t, strings.HasPrefix(errorOf(t, w), c.want), "%q, want %q", errorOf(t, w), c.want)
			assert.Empty(t, h.spans())
			assert.Equal(t, int64(1), h.rejected(sourceCDEvents, reasonMalformed))
		})
	}
	// Other incident-adjacent types (ticket.*) are no incident.
	h := newHarness(t, testConfig(), nil)
	ticket := edit(func(m map[string]any) { sub(m, "context")["type"] = "dev.cdevents.ticket.created.0.1.0" })
	assert.Equal(t, http.StatusAccepted, h.post("/cdevents", ticket, binaryHeaders("dev.cdevents.ticket.created.0.1.0")...).Code)
}
