package changelenswebhookreceiver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/changelens/changelens/internal/eventspan"
	"github.com/changelens/changelens/processor/changelensprocessor"
	"github.com/changelens/changelens/receiver/changelenswebhookreceiver/internal/metadata"
)

// One signed delivery of each source, as its sender posts it.
type fixtureDelivery struct {
	source, path string
	body         []byte
	headers      []string
}

func fixtureDeliveries(t testing.TB) []fixtureDelivery {
	gh := readFixture(t, "github/deployment_status.json")
	ghFailed := readFixture(t, "github/deployment_status_actions_failure.json")
	cd := readFixture(t, "cdevents/service_deployed.json")
	return []fixtureDelivery{
		{sourceGitHub, "/github", gh, gitHubHeaders("deployment_status", gh)},
		{sourceGitHub, "/github", ghFailed, gitHubHeaders("deployment_status", ghFailed)},
		{sourceArgoCD, "/argocd", readFixture(t, "argocd/sync_succeeded.json"), argoHeaders()},
		{sourceCDEvents, "/cdevents", cd, binaryHeaders("dev.cdevents.service.deployed.0.2.0")},
	}
}

// One delivery of each incident source's opening and resolution.
func incidentDeliveries(t testing.TB) []fixtureDelivery {
	pdTriggered := readFixture(t, "pagerduty/incident_triggered.json")
	pdResolved := readFixture(t, "pagerduty/incident_resolved.json")
	return []fixtureDelivery{
		{sourcePagerDuty, "/pagerduty", pdTriggered, pagerDutyHeaders(pdTriggered)},
		{sourcePagerDuty, "/pagerduty", pdResolved, pagerDutyHeaders(pdResolved)},
		{sourceAlertmanager, "/alertmanager", readFixture(t, "alertmanager/firing.json"), amHeaders()},
		{sourceAlertmanager, "/alertmanager", readFixture(t, "alertmanager/resolved.json"), amHeaders()},
		{sourceCDEvents, "/cdevents", readFixture(t, "cdevents/incident_detected.json"), binaryHeaders("dev.cdevents.incident.detected.0.2.0")},
		{sourceCDEvents, "/cdevents", readFixture(t, "cdevents/incident_resolved.json"), binaryHeaders("dev.cdevents.incident.resolved.0.2.0")},
	}
}

// An incident delivered again — retried, redelivered, sent by both
// Alertmanagers of a pair, to another collector — is the identical span,
// so its stored rows are identical and collapse; each opening and each
// resolution is a span of its own.
func TestIncidentRedeliveryIsTheSameSpan(t *testing.T) {
	m := ptrace.ProtoMarshaler{}
	seen := map[string]string{}
	for _, d := range incidentDeliveries(t) {
		a, b := newHarness(t, testConfig(), nil), newHarness(t, testConfig(), nil)
		for range 3 {
			accepted(t, a.post(d.path, d.body, d.headers...))
		}
		accepted(t, b.post(d.path, d.body, d.headers...))
		all := append(a.sink.AllTraces(), b.sink.AllTraces()...)
		require.Len(t, all, 4)
		first, err := m.MarshalTraces(all[0])
		require.NoError(t, err)
		for _, td := range all[1:] {
			again, err := m.MarshalTraces(td)
			require.NoError(t, err)
			assert.Equal(t, first, again, "%s: every delivery is the same span", d.path)
		}
		for _, in := range incidentsOf(all[0]) {
			key := in.ID + " " + in.Status()
			span := in.TraceID.String() + in.SpanID.String()
			for k, v := range seen {
				assert.NotEqual(t, v, span, "%s and %s share a span", k, key)
			}
			seen[key] = span
		}
	}
	assert.Len(t, seen, 8, "PagerDuty 2, Alertmanager 2 × 2, CDEvents 2")
}

// If the pipeline cannot take the incidents the sender is told to retry
// (503) and nothing is counted as passed on.
func TestIncidentConsumerFailureAnswers503(t *testing.T) {
	failing := true
	next, err := consumer.NewTraces(func(context.Context, ptrace.Traces) error {
		if failing {
			return errors.New("sending queue is full")
		}
		return nil
	})
	require.NoError(t, err)
	cfg := testConfig()
	cfg.Alertmanager.Get().MatchLabels = map[string]string{"severity": "critical"}
	h := newHarness(t, cfg, next)
	for _, d := range incidentDeliveries(t) {
		w := h.post(d.path, d.body, d.headers...)
		assert.Equal(t, http.StatusServiceUnavailable, w.Code, d.path)
		assert.Equal(t, "5", w.Header().Get("Retry-After"))
		assert.Equal(t, "the collector could not take the incidents now; retry", errorOf(t, w))
	}
	assert.Equal(t, int64(2), h.rejected(sourcePagerDuty, reasonConsumer))
	assert.Equal(t, int64(2), h.rejected(sourceAlertmanager, reasonConsumer))
	assert.Zero(t, h.incidentCount(sourcePagerDuty, eventspan.IncidentOpen))
	assert.Zero(t, h.ignored(sourceAlertmanager), "the skipped alert of a refused notification is not counted")
	failing = false
	for _, d := range incidentDeliveries(t) {
		accepted(t, h.post(d.path, d.body, d.headers...))
	}
	assert.Equal(t, int64(1), h.incidentCount(sourcePagerDuty, eventspan.IncidentOpen))
	assert.Equal(t, int64(1), h.incidentCount(sourceAlertmanager, eventspan.IncidentResolved))
	assert.Equal(t, int64(2), h.ignored(sourceAlertmanager), "the warning, firing and resolved")
}

// Incident events pass through the changelens processor as the receiver
// encoded them.
func TestIncidentsThroughTheProcessor(t *testing.T) {
	sink := new(consumertest.TracesSink)
	pf := changelensprocessor.NewFactory()
	proc, err := pf.CreateTraces(context.Background(), processortest.NewNopSettings(pf.Type()), pf.CreateDefaultConfig(), sink)
	require.NoError(t, err)
	require.NoError(t, proc.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, proc.Shutdown(context.Background())) })

	direct := newHarness(t, testConfig(), nil)
	h := newHarness(t, testConfig(), proc)
	for _, d := range incidentDeliveries(t) {
		accepted(t, h.post(d.path, d.body, d.headers...))
		accepted(t, direct.post(d.path, d.body, d.headers...))
	}
	var got []eventspan.Incident
	for _, td := range sink.AllTraces() {
		got = append(got, incidentsOf(td)...)
	}
	assert.Equal(t, direct.incidents(), got)
	assert.Len(t, got, 8)
}

// If the pipeline cannot take the span the sender is told to retry (503),
// and the retry passes the deployment on.
func TestConsumerFailureAnswers503(t *testing.T) {
	failing := true
	next, err := consumer.NewTraces(func(context.Context, ptrace.Traces) error {
		if failing {
			return errors.New("sending queue is full")
		}
		return nil
	})
	require.NoError(t, err)
	h := newHarness(t, testConfig(), next)
	for _, d := range fixtureDeliveries(t) {
		w := h.post(d.path, d.body, d.headers...)
		assert.Equal(t, http.StatusServiceUnavailable, w.Code, d.path)
		assert.Equal(t, "5", w.Header().Get("Retry-After"))
		assert.NotContains(t, errorOf(t, w), "queue", "internal errors stay in the log")
	}
	assert.Equal(t, int64(2), h.rejected(sourceGitHub, reasonConsumer))
	assert.Equal(t, int64(1), h.rejected(sourceArgoCD, reasonConsumer))
	assert.Equal(t, int64(0), h.deployments(sourceGitHub, resultSuccess))
	failing = false
	for _, d := range fixtureDeliveries(t) {
		assert.Equal(t, http.StatusOK, h.post(d.path, d.body, d.headers...).Code, d.path)
	}
	assert.Equal(t, int64(1), h.deployments(sourceGitHub, resultSuccess))
	assert.Equal(t, int64(1), h.deployments(sourceGitHub, resultFailure))
	assert.Equal(t, int64(1), h.deployments(sourceCDEvents, resultSuccess))
}

func TestOnlyPost(t *testing.T) {
	h := newHarness(t, testConfig(), nil)
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		req, err := http.NewRequest(m, "/github", http.NoBody)
		require.NoError(t, err)
		w := httptest.NewRecorder()
		h.r.handler.ServeHTTP(w, req)
		assert.Equal(t, http.StatusMethodNotAllowed, w.Code, m)
		assert.Equal(t, "POST", w.Header().Get("Allow"))
	}
	assert.Equal(t, int64(3), h.rejected(sourceGitHub, reasonMethod))
}

// A webhook delivered again — by the sender's retry, a person's redelivery,
// or to another collector — is the identical span, so it makes the
// identical event and one stored row.
func TestRedeliveryIsTheSameSpan(t *testing.T) {
	for _, d := range fixtureDeliveries(t) {
		a, b := newHarness(t, testConfig(), nil), newHarness(t, testConfig(), nil)
		for range 3 {
			require.Equal(t, http.StatusOK, a.post(d.path, d.body, d.headers...).Code)
		}
		require.Equal(t, http.StatusOK, b.post(d.path, d.body, d.headers...).Code)
		all := append(a.sink.AllTraces(), b.sink.AllTraces()...)
		require.Len(t, all, 4)
		m := ptrace.ProtoMarshaler{}
		first, err := m.MarshalTraces(all[0])
		require.NoError(t, err)
		for _, td := range all[1:] {
			again, err := m.MarshalTraces(td)
			require.NoError(t, err)
			assert.Equal(t, first, again, "%s: every delivery is the same span", d.path)
		}
	}
	// Distinct deployments are distinct spans.
	h := newHarness(t, testConfig(), nil)
	for _, d := range fixtureDeliveries(t) {
		require.Equal(t, http.StatusOK, h.post(d.path, d.body, d.headers...).Code)
	}
	seen := map[string]bool{}
	for _, s := range h.spans() {
		seen[s.TraceID().String()+s.SpanID().String()] = true
	}
	assert.Len(t, seen, len(fixtureDeliveries(t)))
}

// The receiver's spans are what the changelens processor makes deployment
// events of: through the real processor, each delivery is one explicit
// deployment event carrying the source's ID, and redeliveries give the
// same event ID.
func TestThroughTheProcessor(t *testing.T) {
	sink := new(consumertest.TracesSink)
	pf := changelensprocessor.NewFactory()
	proc, err := pf.CreateTraces(context.Background(), processortest.NewNopSettings(pf.Type()), pf.CreateDefaultConfig(), sink)
	require.NoError(t, err)
	require.NoError(t, proc.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, proc.Shutdown(context.Background())) })

	h := newHarness(t, testConfig(), proc)
	for _, d := range fixtureDeliveries(t) {
		for range 2 {
			require.Equal(t, http.StatusOK, h.post(d.path, d.body, d.headers...).Code)
		}
	}
	var events []eventspan.Deployment
	for _, td := range sink.AllTraces() {
		for i := 0; i < td.ResourceSpans().Len(); i++ {
			rs := td.ResourceSpans().At(i)
			res := eventspan.ReadResource(rs.Resource().Attributes())
			for j := 0; j < rs.ScopeSpans().Len(); j++ {
				ss := rs.ScopeSpans().At(j)
				if eventspan.ScopeKind(ss.Scope()) != eventspan.KindDeployment {
					continue
				}
				for k := 0; k < ss.Spans().Len(); k++ {
					events = append(events, eventspan.DecodeDeployment(res, ss.Spans().At(k)))
				}
			}
		}
	}
	require.Len(t, events, 8, "one event per delivery")
	for i := 0; i < len(events); i += 2 {
		assert.Equal(t, events[i], events[i+1], "a redelivery is the same event")
	}
	gh, ghFailed, argo, cd := events[0], events[2], events[4], events[6]
	assert.Equal(t, eventspan.Explicit, gh.Source)
	assert.Equal(t, "github:145988746", gh.ExternalID)
	assert.Equal(t, eventspan.Resource{Service: "Hello-World", Environment: "production", Version: "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"}, gh.Resource)
	assert.Equal(t, "f95f852bd8fca8fcc58a9a2d6c842781e32a215e", gh.CommitSHA)
	assert.Equal(t, mustTime(t, "2019-05-15T15:20:55Z").UnixNano(), gh.DeployTime)
	assert.Equal(t, mustTime(t, "2019-05-15T15:20:53Z").UnixNano(), gh.RolloutStart)
	assert.False(t, gh.Failed)
	assert.True(t, ghFailed.Failed)
	assert.Equal(t, "deploy", ghFailed.PipelineName)
	assert.Equal(t, "9563451823", ghFailed.PipelineRunID)
	assert.Equal(t, "argocd:argocd/guestbook@2024-06-18T11:20:04Z", argo.ExternalID)
	assert.Equal(t, eventspan.Resource{Service: "guestbook", Environment: "production", Version: "1.4.2"}, argo.Resource)
	assert.Equal(t, eventspan.Resource{Service: "mySubject123", Environment: "test123",
		Version: "sha256:0b31b1c02ff458ad9b7b81cbdf8f028bd54699fa151f221d1e8de6817db93427"}, cd.Resource)
	ids := map[string]bool{gh.ID: true, ghFailed.ID: true, argo.ID: true, cd.ID: true}
	assert.Len(t, ids, 4)
	for id := range ids {
		assert.Regexp(t, `^[0-9a-f]{32}$`, id)
	}
}

// Over a real listener, through confighttp: the paths configured answer, a
// body past max_request_body_size is refused with 413 and counted, and the
// receiver shuts down cleanly.
func TestOverHTTP(t *testing.T) {
	cfg := testConfig()
	cfg.MaxRequestBodySize = 64 << 10
	tel := componenttest.NewTelemetry()
	defer func() { require.NoError(t, tel.Shutdown(context.Background())) }()
	sink := new(consumertest.TracesSink)
	set := receivertest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	rcv, err := NewFactory().CreateTraces(context.Background(), set, cfg, sink)
	require.NoError(t, err)
	require.NoError(t, rcv.Start(context.Background(), componenttest.NewNopHost()))
	defer func() { require.NoError(t, rcv.Shutdown(context.Background())) }()
	base := "http://" + rcv.(*webhookReceiver).addr

	post := func(path string, body []byte, headers ...string) (*http.Response, string) {
		req, err := http.NewRequest(http.MethodPost, base+path, bytes.NewReader(body))
		require.NoError(t, err)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp, string(b)
	}
	for _, d := range fixtureDeliveries(t) {
		resp, body := post(d.path, d.body, d.headers...)
		assert.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", d.path, body)
	}
	assert.Equal(t, 4, sink.SpanCount())

	big := bytes.Repeat([]byte(" "), 128<<10)
	resp, body := post("/cdevents", big, "Content-Type", "application/json")
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, body)
	assert.Contains(t, body, `"error"`)
	resp, _ = post("/gitlab", []byte("{}"))
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Equal(t, 4, sink.SpanCount())
}

// Secrets appear in no log line and no answer, whatever is sent.
func TestSecretsNeverLogged(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	cfg := testConfig()
	tel := componenttest.NewTelemetry()
	defer func() { require.NoError(t, tel.Shutdown(context.Background())) }()
	set := receivertest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	set.Logger = zap.New(core)
	r, err := newReceiver(set, cfg, consumertest.NewErr(errors.New("down")))
	require.NoError(t, err)
	h := &harness{t: t, r: r, tel: tel}

	var answers strings.Builder
	gh := readFixture(t, "github/deployment_status.json")
	for _, w := range []*httptest.ResponseRecorder{
		h.post("/github", gh, gitHubHeaders("deployment_status", gh)...),
		h.post("/github", gh, headerGitHubEvent, "deployment_status", headerGitHubSignature, "sha256="+testGitHubSecret),
		h.post("/argocd", []byte(`{}`), "Authorization", "Bearer "+testArgoSecret+"-not"),
		h.post("/argocd", readFixture(t, "argocd/sync_succeeded.json"), argoHeaders()...),
	} {
		answers.WriteString(w.Body.String())
	}
	require.NotZero(t, logs.Len())
	for _, e := range logs.All() {
		line := e.Message
		for k, v := range e.ContextMap() {
			line += " " + k + "=" + fmt.Sprint(v)
		}
		for _, secret := range []string{testGitHubSecret, testArgoSecret} {
			assert.NotContains(t, line, secret)
		}
	}
	for _, secret := range []string{testGitHubSecret, testArgoSecret} {
		assert.NotContains(t, answers.String(), secret)
	}
}

// metadata.yaml documents the rejected reasons the code counts, all of them.
func TestMetadataListsRejectReasons(t *testing.T) {
	b, err := os.ReadFile("metadata.yaml")
	require.NoError(t, err)
	m := regexp.MustCompile(`by source and reason \(([^)]*)\)`).FindSubmatch(b)
	require.NotNil(t, m, "the rejected metric's description without its reasons")
	assert.Equal(t, rejectReasons, strings.Split(string(m[1]), ", "))
}
