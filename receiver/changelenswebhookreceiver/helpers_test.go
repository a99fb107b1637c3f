package changelenswebhookreceiver

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/changelens/changelens/internal/eventspan"
	"github.com/changelens/changelens/receiver/changelenswebhookreceiver/internal/metadatatest"
)

const (
	testGitHubSecret    = "It's a Secret to Everybody"
	testArgoSecret      = "argo-shared-secret"
	testCDToken         = "cdevents-token"
	testPagerDutySecret = "pagerduty-subscription-secret"
	testAMToken         = "alertmanager-token"
)

// testConfig serves every source with the test secrets.
func testConfig() *Config {
	cfg := defaultConfig()
	cfg.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.GitHub = configoptional.Some(GitHubConfig{Path: "/github", Secret: configopaque.String(testGitHubSecret), Service: serviceRepositoryName, Version: versionSHA})
	cfg.ArgoCD = configoptional.Some(ArgoCDConfig{Path: "/argocd", Secret: configopaque.String(testArgoSecret), Header: "Authorization", Scheme: "Bearer"})
	cfg.CDEvents = configoptional.Some(CDEventsConfig{Path: "/cdevents"})
	cfg.PagerDuty = configoptional.Some(PagerDutyConfig{Path: "/pagerduty", Secret: configopaque.String(testPagerDutySecret), Environment: "production"})
	cfg.Alertmanager = configoptional.Some(AlertmanagerConfig{Path: "/alertmanager", ServiceLabels: []string{"service", "service_name", "job"},
		EnvironmentLabels: []string{"environment", "env", "deployment_environment"}, Environment: "production"})
	return cfg
}

// harness is a receiver whose handler is called directly, with its own
// telemetry and the given next consumer.
type harness struct {
	t    *testing.T
	r    *webhookReceiver
	tel  *componenttest.Telemetry
	sink *consumertest.TracesSink
}

func newHarness(t *testing.T, cfg *Config, next consumer.Traces) *harness {
	t.Helper()
	require.NoError(t, cfg.Validate())
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	h := &harness{t: t, tel: tel}
	if next == nil {
		h.sink = new(consumertest.TracesSink)
		next = h.sink
	}
	r, err := newReceiver(metadatatest.NewSettings(tel), cfg, next)
	require.NoError(t, err)
	h.r = r
	return h
}

// post delivers body to path with the headers (name, value pairs).
func (h *harness) post(path string, body []byte, headers ...string) *httptest.ResponseRecorder {
	h.t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	h.r.handler.ServeHTTP(w, req)
	return w
}

// spans are the deploy spans passed on so far.
func (h *harness) spans() []ptrace.Span {
	var out []ptrace.Span
	for _, td := range h.sink.AllTraces() {
		for i := 0; i < td.ResourceSpans().Len(); i++ {
			ss := td.ResourceSpans().At(i).ScopeSpans()
			for j := 0; j < ss.Len(); j++ {
				for k := 0; k < ss.At(j).Spans().Len(); k++ {
					out = append(out, ss.At(j).Spans().At(k))
				}
			}
		}
	}
	return out
}

// onlySpan is the one span passed on.
func (h *harness) onlySpan() ptrace.Span {
	h.t.Helper()
	s := h.spans()
	require.Len(h.t, s, 1)
	return s[0]
}

// counter reads one of the receiver's counters for the given attributes.
func (h *harness) counter(name string, kv ...attribute.KeyValue) int64 {
	h.t.Helper()
	m, err := h.tel.GetMetric(name)
	if err != nil {
		return 0
	}
	sum, ok := m.Data.(metricdata.Sum[int64])
	require.True(h.t, ok, "%s is not an int sum", name)
	want := attribute.NewSet(kv...)
	var n int64
	for _, dp := range sum.DataPoints {
		if dp.Attributes.Equals(&want) {
			n += dp.Value
		}
	}
	return n
}

func (h *harness) rejected(source, reason string) int64 {
	return h.counter("otelcol_receiver_changelens_webhook_rejected", attribute.String("source", source), attribute.String("reason", reason))
}

func (h *harness) ignored(source string) int64 {
	return h.counter("otelcol_receiver_changelens_webhook_ignored", attribute.String("source", source))
}

func (h *harness) deployments(source, result string) int64 {
	return h.counter("otelcol_receiver_changelens_webhook_deployments", attribute.String("source", source), attribute.String("result", result))
}

func readFixture(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", rel))
	require.NoError(t, err)
	return b
}

// signGitHub is X-Hub-Signature-256 of body under secret, as GitHub computes it.
func signGitHub(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// gitHubHeaders are a signed delivery's headers.
func gitHubHeaders(event string, body []byte) []string {
	return []string{
		"Content-Type", "application/json",
		headerGitHubEvent, event,
		"X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958",
		headerGitHubSignature, signGitHub(testGitHubSecret, body),
	}
}

// signPagerDuty is one X-PagerDuty-Signature entry of body under secret.
func signPagerDuty(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "v1=" + hex.EncodeToString(mac.Sum(nil))
}

// pagerDutyHeaders are a signed v3 delivery's headers.
func pagerDutyHeaders(body []byte) []string {
	return []string{
		"Content-Type", "application/json",
		"X-Webhook-Id", "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
		headerPagerDutySignature, signPagerDuty(testPagerDutySecret, body),
	}
}

// amHeaders are an Alertmanager notification's headers.
func amHeaders() []string {
	return []string{"Content-Type", "application/json", "User-Agent", "Alertmanager/0.27.0"}
}

// incidents are the incident events passed on so far, decoded as the
// exporter decodes them.
func (h *harness) incidents() []eventspan.Incident {
	var out []eventspan.Incident
	for _, td := range h.sink.AllTraces() {
		out = append(out, incidentsOf(td)...)
	}
	return out
}

func incidentsOf(td ptrace.Traces) []eventspan.Incident {
	var out []eventspan.Incident
	for _, rs := range td.ResourceSpans().All() {
		res := eventspan.ReadResource(rs.Resource().Attributes())
		for _, ss := range rs.ScopeSpans().All() {
			if eventspan.ScopeKind(ss.Scope()) != eventspan.KindIncident {
				continue
			}
			for _, s := range ss.Spans().All() {
				out = append(out, eventspan.DecodeIncident(res, s))
			}
		}
	}
	return out
}

func (h *harness) incidentCount(source, status string) int64 {
	return h.counter("otelcol_receiver_changelens_webhook_incidents", attribute.String("source", source), attribute.String("status", status))
}

// accepted is the IDs an answer says were passed on.
func accepted(t *testing.T, w *httptest.ResponseRecorder) []string {
	t.Helper()
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var body struct {
		Status    string   `json:"status"`
		Incidents []string `json:"incidents"`
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body), w.Body.String())
	require.Equal(t, "accepted", body.Status, w.Body.String())
	return body.Incidents
}

// errorOf is the error an answer names.
func errorOf(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	assert.Equal(t, "application/json", w.Header().Get("Content-Type"))
	var body struct {
		Error string `json:"error"`
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body), w.Body.String())
	return body.Error
}

// attrs are a span's attributes as strings.
func attrs(s ptrace.Span) map[string]string {
	out := map[string]string{}
	s.Attributes().Range(func(k string, v pcommon.Value) bool {
		out[k] = v.AsString()
		return true
	})
	return out
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	require.NoError(t, err)
	return v
}

// editJSON decodes a JSON object, lets edit change it and encodes it again.
func editJSON(t *testing.T, body []byte, edit func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(body, &m))
	edit(m)
	out, err := json.Marshal(m)
	require.NoError(t, err)
	return out
}

func sub(m map[string]any, k string) map[string]any { return m[k].(map[string]any) }
