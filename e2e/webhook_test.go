package e2e

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/changelens/changelens/queryapi/server"
	"github.com/changelens/changelens/queryapi/usecase"
	"github.com/changelens/changelens/testkit/chtest"
)

const (
	webhookGitHubSecret    = "e2e-github-secret"
	webhookArgoSecret      = "e2e-argo-secret"
	webhookCDToken         = "e2e-cdevents-token"
	webhookPagerDutySecret = "e2e-pagerduty-secret"
	webhookAMToken         = "e2e-alertmanager-token"
)

// webhookConfig is the distribution's ClickHouse pipeline (clickhouseConfig)
// with the changelens_webhook receiver feeding it beside OTLP.
func webhookConfig(endpoint string) string {
	return strings.NewReplacer(
		"receivers:\n  otlp:\n", `receivers:
  changelens_webhook:
    endpoint: `+endpoint+`
    github:
      secret: ${env:GITHUB_WEBHOOK_SECRET}
    argocd:
      secret: ${env:ARGOCD_WEBHOOK_SECRET}
    cdevents:
      token: ${env:CDEVENTS_TOKEN}
    pagerduty:
      secret: ${env:PAGERDUTY_WEBHOOK_SECRET}
      services:
        PF9KMXH: Hello-World
    alertmanager:
      token: ${env:ALERTMANAGER_TOKEN}
      match_labels:
        severity: critical
  otlp:
`,
		"receivers: [otlp]", "receivers: [otlp, changelens_webhook]",
	).Replace(clickhouseConfig(""))
}

// webhook is one delivery as its sender posts it.
type webhook struct {
	name, path string
	body       []byte
	headers    map[string]string
}

// webhookDeliveries are the receiver's fixtures (the vendors' documented
// payloads and the README's Argo CD body) moved to the last hour, signed and
// authenticated as their senders would.
func webhookDeliveries(t *testing.T, now time.Time) []webhook {
	t.Helper()
	fixture := func(rel string, times ...string) []byte {
		b, err := os.ReadFile(filepath.Join(repoRoot(t), "receiver/changelenswebhookreceiver/testdata", rel))
		require.NoError(t, err)
		for i := 0; i+1 < len(times); i += 2 {
			require.Contains(t, string(b), times[i], rel)
			b = bytes.ReplaceAll(b, []byte(times[i]), []byte(times[i+1]))
		}
		return b
	}
	at := func(ago time.Duration) string { return now.Add(-ago).UTC().Format(time.RFC3339) }
	gitHub := func(name, rel string, times ...string) webhook {
		body := fixture(rel, times...)
		mac := hmac.New(sha256.New, []byte(webhookGitHubSecret))
		mac.Write(body)
		return webhook{name, "/github", body, map[string]string{
			"Content-Type":        "application/json",
			"X-GitHub-Event":      "deployment_status",
			"X-GitHub-Delivery":   "72d3162e-cc78-11e3-81ab-4c9367dc0958",
			"X-Hub-Signature-256": "sha256=" + hex.EncodeToString(mac.Sum(nil)),
		}}
	}
	return []webhook{
		gitHub("github", "github/deployment_status.json",
			"2019-05-15T15:20:53Z", at(42*time.Minute), "2019-05-15T15:20:55Z", at(40*time.Minute)),
		gitHub("github failed", "github/deployment_status_actions_failure.json",
			"2024-06-18T09:12:03Z", at(32*time.Minute), "2024-06-18T09:14:41Z", at(30*time.Minute)),
		{"argocd", "/argocd", fixture("argocd/sync_succeeded.json",
			"2024-06-18T11:20:04Z", at(21*time.Minute), "2024-06-18T11:20:09Z", at(20*time.Minute)),
			map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + webhookArgoSecret}},
		{"cdevents", "/cdevents", fixture("cdevents/service_deployed.json",
			"2023-03-20T14:27:05.315384Z", now.Add(-10*time.Minute).UTC().Format(time.RFC3339Nano)),
			map[string]string{"Content-Type": "application/json", "Ce-Specversion": "1.0", "Ce-Type": "dev.cdevents.service.deployed.0.2.0",
				"Ce-Id": "271069a8-fc18-44f1-b38f-9d70a1695819", "Ce-Source": "/event/source/123", "Authorization": "Bearer " + webhookCDToken}},
	}
}

// incidentWebhooks are the receiver's incident fixtures moved to the last
// hour: the openings — PagerDuty's documented example triggered (its
// service mapped to Hello-World, opened after its GitHub deployment), an
// Alertmanager notification of a critical alert (checkout) and a warning
// (payments, no incident under match_labels), the CDEvents spec's
// incident.detected — and their resolutions. The CDEvents resolution says
// when its incident opened (customData.openedAt).
func incidentWebhooks(t *testing.T, now time.Time) (openings, resolutions []webhook) {
	t.Helper()
	fixture := func(rel string, times ...string) []byte {
		b, err := os.ReadFile(filepath.Join(repoRoot(t), "receiver/changelenswebhookreceiver/testdata", rel))
		require.NoError(t, err)
		for i := 0; i+1 < len(times); i += 2 {
			require.Contains(t, string(b), times[i], rel)
			b = bytes.ReplaceAll(b, []byte(times[i]), []byte(times[i+1]))
		}
		return b
	}
	at := func(ago time.Duration) string { return now.Add(-ago).UTC().Format(time.RFC3339) }
	pagerDuty := func(name, rel string, times ...string) webhook {
		body := fixture(rel, times...)
		mac := hmac.New(sha256.New, []byte(webhookPagerDutySecret))
		mac.Write(body)
		// During a rotation PagerDuty signs with both secrets.
		return webhook{name, "/pagerduty", body, map[string]string{"Content-Type": "application/json",
			"X-PagerDuty-Signature": "v1=" + strings.Repeat("ab", 32) + ",v1=" + hex.EncodeToString(mac.Sum(nil))}}
	}
	am := map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + webhookAMToken}
	cd := func(ceType string) map[string]string {
		return map[string]string{"Content-Type": "application/json", "Ce-Specversion": "1.0", "Ce-Type": ceType,
			"Ce-Id": "F4BD2B55-B6F6-4F44-AF72-BD2D0E7A8708", "Ce-Source": "/monitoring/prod1", "Authorization": "Bearer " + webhookCDToken}
	}
	openings = []webhook{
		pagerDuty("pagerduty triggered", "pagerduty/incident_triggered.json",
			"2020-04-09T15:16:27Z", at(30*time.Minute), "2020-04-09T15:16:27.431Z", at(30*time.Minute)),
		{"alertmanager firing", "/alertmanager", fixture("alertmanager/firing.json",
			"2024-06-18T14:12:30.512Z", at(45*time.Minute), "2024-06-18T14:13:00.512Z", at(44*time.Minute)), am},
		{"cdevents detected", "/cdevents", fixture("cdevents/incident_detected.json",
			"2022-11-11T13:52:20.079Z", at(35*time.Minute)), cd("dev.cdevents.incident.detected.0.2.0")},
	}
	resolutions = []webhook{
		pagerDuty("pagerduty resolved", "pagerduty/incident_resolved.json",
			"2020-04-09T15:16:27Z", at(30*time.Minute), "2020-04-09T15:58:40.113Z", at(15*time.Minute)),
		{"alertmanager resolved", "/alertmanager", fixture("alertmanager/resolved.json",
			"2024-06-18T14:12:30.512Z", at(45*time.Minute), "2024-06-18T14:13:00.512Z", at(44*time.Minute),
			"2024-06-18T14:53:30.512Z", at(10*time.Minute), "2024-06-18T14:48:00.512Z", at(12*time.Minute)), am},
		{"cdevents resolved", "/cdevents", fixture("cdevents/incident_resolved.json",
			"2022-11-11T13:52:20.079Z", at(5*time.Minute),
			`"value": "70ms"`, `"value": "70ms", "openedAt": "`+at(35*time.Minute)+`"`), cd("dev.cdevents.incident.resolved.0.2.0")},
	}
	return openings, resolutions
}

// deliverThrice posts every hook three times at once, alternating the
// endpoints, and requires each answer to be 200.
func deliverThrice(t *testing.T, endpoints []string, hooks []webhook) {
	t.Helper()
	type answer struct {
		hook     string
		status   int
		body     string
		err      error
		endpoint string
	}
	var wg sync.WaitGroup
	answers := make(chan answer, 3*len(hooks))
	for _, h := range hooks {
		for i := range 3 {
			wg.Go(func() {
				ep := endpoints[i%len(endpoints)]
				status, body, err := postWebhook(ep, h)
				answers <- answer{h.name, status, body, err, ep}
			})
		}
	}
	wg.Wait()
	close(answers)
	for a := range answers {
		require.NoError(t, a.err, a.hook)
		assert.Equal(t, http.StatusOK, a.status, "%s via %s: %s", a.hook, a.endpoint, a.body)
	}
}

func postWebhook(endpoint string, w webhook) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, "http://"+endpoint+w.path, bytes.NewReader(w.body))
	if err != nil {
		return 0, "", err
	}
	for k, v := range w.headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// optimizeDeployments merges deployment_events (optimizeTable).
func optimizeDeployments(t *testing.T, ch *chtest.Server, db string) {
	t.Helper()
	optimizeTable(t, ch, db, "deployment_events")
}

// optimizeTable merges table until each partition is one part, so identical
// rows have collapsed. OPTIMIZE is a silent no-op while a background merge
// holds parts: retried with optimize_throw_if_noop until one part per
// partition is left.
func optimizeTable(t *testing.T, ch *chtest.Server, db, table string) {
	t.Helper()
	conn := ch.Conn(t, db)
	ctx := clickhouse.Context(context.Background(), clickhouse.WithSettings(clickhouse.Settings{"optimize_throw_if_noop": 1}))
	parts := "FROM system.parts WHERE database = '" + db + "' AND table = '" + table + "' AND active"
	var lastErr error
	for range 100 {
		lastErr = conn.Exec(ctx, "OPTIMIZE TABLE "+db+"."+table+" FINAL")
		if countRows(t, ch, db, "SELECT count() "+parts) <= countRows(t, ch, db, "SELECT uniqExact(partition) "+parts) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("OPTIMIZE %s FINAL did not merge to one part per partition: %v", table, lastErr)
}

// TestWebhookDeliveriesThroughTwoCollectors: a GitHub deployment_status (a
// success and a failed attempt), an Argo CD notification and a CDEvent,
// each delivered three times — at once, through two collectors — are one
// stored deployment row each, listed by /v1/deployments as explicit
// deployments; an unsigned delivery is refused and counted. A PagerDuty
// incident (triggered, then resolved), an Alertmanager alert (firing, then
// resolved) and a CDEvents incident (detected, then resolved), each report
// delivered three times the same way, are one resolved incident_events row
// each, listed by /v1/incidents.
func TestWebhookDeliveriesThroughTwoCollectors(t *testing.T) {
	ch := chtest.Shared(t)
	db := ch.NewDatabase(t)
	env := append(chEnv(ch, db), "GITHUB_WEBHOOK_SECRET="+webhookGitHubSecret,
		"ARGOCD_WEBHOOK_SECRET="+webhookArgoSecret, "CDEVENTS_TOKEN="+webhookCDToken,
		"PAGERDUTY_WEBHOOK_SECRET="+webhookPagerDutySecret, "ALERTMANAGER_TOKEN="+webhookAMToken)
	var (
		collectors []*collector
		endpoints  []string
	)
	for range 2 {
		ep := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		collectors = append(collectors, startCollector(t, webhookConfig(ep), env...))
		endpoints = append(endpoints, ep)
	}

	now := time.Now().UTC().Truncate(time.Second)
	hooks := webhookDeliveries(t, now)
	deliverThrice(t, endpoints, hooks)
	// Each incident's opening, then its resolution.
	openings, resolutions := incidentWebhooks(t, now)
	deliverThrice(t, endpoints, openings)
	deliverThrice(t, endpoints, resolutions)

	// A delivery signed with another secret is refused and passed on to no one.
	forged := hooks[0]
	forged.headers = map[string]string{"Content-Type": "application/json", "X-GitHub-Event": "deployment_status",
		"X-Hub-Signature-256": "sha256=" + strings.Repeat("0", 64)}
	status, body, err := postWebhook(endpoints[1], forged)
	require.NoError(t, err)
	assert.Equal(t, http.StatusUnauthorized, status, body)

	// Every delivery was written (12 deployment events, however the two
	// collectors' batches split them), then collapsed to one row each.
	written := func() float64 {
		var n float64
		for _, c := range collectors {
			n += c.metric(t, "otelcol_changelens_exporter_events_written", `changelens_event_type="deployment"`)
		}
		return n
	}
	require.Eventually(t, func() bool { return written() >= float64(3*len(hooks)) }, 60*time.Second, 200*time.Millisecond,
		"deployment events written: %v", written())
	assert.Equal(t, float64(3*len(hooks)), written())
	var received, rejected float64
	for _, c := range collectors {
		received += c.metric(t, "otelcol_receiver_changelens_webhook_deployments")
		rejected += c.metric(t, "otelcol_receiver_changelens_webhook_rejected", `reason="bad_signature"`, `source="github"`)
	}
	assert.Equal(t, float64(3*len(hooks)), received)
	assert.Equal(t, 1.0, rejected)

	assert.Equal(t, uint64(len(hooks)), countRows(t, ch, db, "SELECT uniqExact(id) FROM deployment_events"))
	t.Logf("deployment_events rows before merging: %d", countRows(t, ch, db, "SELECT count() FROM deployment_events"))
	optimizeDeployments(t, ch, db)
	assert.Equal(t, uint64(len(hooks)), countRows(t, ch, db, "SELECT count() FROM deployment_events"),
		"three deliveries through two collectors are one row")
	assert.Equal(t, uint64(len(hooks)), countRows(t, ch, db, "SELECT uniqExact(external_id) FROM deployment_events"))
	assert.Equal(t, uint64(1), countRows(t, ch, db,
		"SELECT count() FROM deployment_events WHERE external_id = 'github:145988746' AND service = 'Hello-World' AND source = 'explicit'"))

	// Every incident report was written (6 deliveries of one incident event
	// each, per source), then each incident collapsed to one resolved row;
	// the Alertmanager warning was no incident.
	incidentsWritten := func() float64 {
		var n float64
		for _, c := range collectors {
			n += c.metric(t, "otelcol_changelens_exporter_events_written", `changelens_event_type="incident"`)
		}
		return n
	}
	const reports = 3 * 2 * 3 // sources × (opening, resolution) × deliveries
	require.Eventually(t, func() bool { return incidentsWritten() >= reports }, 60*time.Second, 200*time.Millisecond,
		"incident events written: %v", incidentsWritten())
	assert.Equal(t, float64(reports), incidentsWritten())
	var opened, resolvedReports, ignoredAlerts float64
	for _, c := range collectors {
		opened += c.metric(t, "otelcol_receiver_changelens_webhook_incidents", `status="open"`)
		resolvedReports += c.metric(t, "otelcol_receiver_changelens_webhook_incidents", `status="resolved"`)
		ignoredAlerts += c.metric(t, "otelcol_receiver_changelens_webhook_ignored", `source="alertmanager"`)
	}
	assert.Equal(t, float64(reports/2), opened)
	assert.Equal(t, float64(reports/2), resolvedReports)
	assert.Equal(t, 6.0, ignoredAlerts, "the warning of each Alertmanager notification")
	assert.Equal(t, uint64(3), countRows(t, ch, db, "SELECT uniqExact(id) FROM incident_events"))
	assert.Equal(t, uint64(3), countRows(t, ch, db, "SELECT count() FROM incident_events FINAL"), "FINAL: one row per incident")
	assert.Equal(t, uint64(3), countRows(t, ch, db, "SELECT count() FROM incident_events FINAL WHERE status = 'resolved'"),
		"the resolution replaces the opening")
	t.Logf("incident_events rows before merging: %d", countRows(t, ch, db, "SELECT count() FROM incident_events"))
	optimizeTable(t, ch, db, "incident_events")
	assert.Equal(t, uint64(3), countRows(t, ch, db, "SELECT count() FROM incident_events"),
		"six reports through two collectors are one row per incident")
	assert.Equal(t, uint64(3), countRows(t, ch, db, "SELECT count() FROM incident_events WHERE status = 'resolved'"))

	// The query API lists each once, explicit, at the webhook's times.
	clock := func() time.Time { return now }
	svc, err := usecase.Open(context.Background(), ch.DSN(chtest.ReadOnlyUser, chtest.ReadOnlyPassword, db), usecase.Config{CacheSize: -1, Now: clock})
	require.NoError(t, err)
	defer svc.Close()
	srv, err := server.New(server.Config{Source: svc, Now: clock})
	require.NoError(t, err)
	api := httptest.NewServer(srv.Handler())
	defer api.Close()
	type deployment struct {
		ID          string    `json:"id"`
		Service     string    `json:"service"`
		Environment string    `json:"environment"`
		Version     string    `json:"version"`
		Source      string    `json:"source"`
		CommitSHA   string    `json:"commit_sha"`
		DeployTime  time.Time `json:"deploy_time"`
		Failed      bool      `json:"failed"`
	}
	list := func(environment string) []deployment {
		t.Helper()
		q := url.Values{"environment": {environment}, "start_time": {now.Add(-2 * time.Hour).Format(time.RFC3339)},
			"end_time": {now.Format(time.RFC3339)}}
		resp, err := http.Get(api.URL + "/v1/deployments?" + q.Encode())
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
		var page struct {
			Deployments []deployment `json:"deployments"`
		}
		require.NoError(t, json.Unmarshal(b, &page), "%s", b)
		return page.Deployments
	}
	production := list("production")
	require.Len(t, production, 2, "%+v", production)
	byService := map[string]deployment{}
	for _, d := range production {
		byService[d.Service] = d
		assert.Equal(t, "SOURCE_EXPLICIT", d.Source, d.Service)
		assert.False(t, d.Failed, d.Service)
	}
	gh := byService["Hello-World"]
	assert.Equal(t, "f95f852bd8fca8fcc58a9a2d6c842781e32a215e", gh.Version)
	assert.Equal(t, "f95f852bd8fca8fcc58a9a2d6c842781e32a215e", gh.CommitSHA)
	assert.True(t, gh.DeployTime.Equal(now.Add(-40*time.Minute)), "deploy time = the status's updated_at: %s", gh.DeployTime)
	argo := byService["guestbook"]
	assert.Equal(t, "1.4.2", argo.Version)
	assert.True(t, argo.DeployTime.Equal(now.Add(-20*time.Minute)), "deploy time = finishedAt: %s", argo.DeployTime)

	staging := list("staging")
	require.Len(t, staging, 1, "%+v", staging)
	assert.Equal(t, "checkout", staging[0].Service)
	assert.True(t, staging[0].Failed, "GitHub's failure state is a failed attempt")
	assert.Equal(t, "SOURCE_EXPLICIT", staging[0].Source)

	cd := list("test123")
	require.Len(t, cd, 1, "%+v", cd)
	assert.Equal(t, "mySubject123", cd[0].Service)
	assert.Equal(t, "sha256:0b31b1c02ff458ad9b7b81cbdf8f028bd54699fa151f221d1e8de6817db93427", cd[0].Version)
	assert.Equal(t, "SOURCE_EXPLICIT", cd[0].Source)

	// /v1/incidents lists each incident once, resolved, at the webhooks'
	// times; the PagerDuty incident is linked to the GitHub deployment it
	// followed.
	type incident struct {
		ID                 string     `json:"id"`
		Source             string     `json:"source"`
		Status             string     `json:"status"`
		Severity           string     `json:"severity"`
		Title              string     `json:"title"`
		Service            string     `json:"service"`
		Environment        string     `json:"environment"`
		OpenedTime         time.Time  `json:"opened_time"`
		ResolvedTime       *time.Time `json:"resolved_time"`
		LinkedDeploymentID string     `json:"linked_deployment_id"`
	}
	incidents := func(environment string) []incident {
		t.Helper()
		q := url.Values{"environment": {environment}, "start_time": {now.Add(-2 * time.Hour).Format(time.RFC3339)},
			"end_time": {now.Format(time.RFC3339)}}
		resp, err := http.Get(api.URL + "/v1/incidents?" + q.Encode())
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
		var page struct {
			Incidents []incident `json:"incidents"`
		}
		require.NoError(t, json.Unmarshal(b, &page), "%s", b)
		return page.Incidents
	}
	resolvedAt := func(in incident, ago time.Duration) {
		t.Helper()
		assert.Equal(t, "resolved", in.Status, in.ID)
		if assert.NotNil(t, in.ResolvedTime, in.ID) {
			assert.True(t, in.ResolvedTime.Equal(now.Add(-ago)), "%s resolved at %s", in.ID, in.ResolvedTime)
		}
	}
	prod := incidents("production")
	require.Len(t, prod, 2, "%+v", prod)
	alert, page := prod[0], prod[1] // oldest first
	assert.Equal(t, fmt.Sprintf("alertmanager:ac89ccd809b194e5@%d", now.Add(-45*time.Minute).Unix()), alert.ID)
	assert.Equal(t, "alertmanager", alert.Source)
	assert.Equal(t, "checkout", alert.Service)
	assert.Equal(t, "critical", alert.Severity)
	assert.Equal(t, "checkout: 5.2% of requests fail", alert.Title)
	assert.True(t, alert.OpenedTime.Equal(now.Add(-45*time.Minute)), "opened at startsAt: %s", alert.OpenedTime)
	resolvedAt(alert, 10*time.Minute)
	assert.Equal(t, "pagerduty:PGR0VU2", page.ID)
	assert.Equal(t, "pagerduty", page.Source)
	assert.Equal(t, "Hello-World", page.Service)
	assert.Equal(t, "P1", page.Severity)
	assert.Equal(t, "A little bump in the road", page.Title)
	assert.True(t, page.OpenedTime.Equal(now.Add(-30*time.Minute)), "opened at created_at: %s", page.OpenedTime)
	resolvedAt(page, 15*time.Minute)
	assert.Equal(t, gh.ID, page.LinkedDeploymentID, "the live deployment when it opened")

	cdIncidents := incidents("prod1")
	require.Len(t, cdIncidents, 1, "%+v", cdIncidents)
	cdi := cdIncidents[0]
	assert.Equal(t, "cdevents:/monitoring/prod1#incident-123", cdi.ID)
	assert.Equal(t, "myApp", cdi.Service)
	assert.True(t, cdi.OpenedTime.Equal(now.Add(-35*time.Minute)), "opened at customData.openedAt: %s", cdi.OpenedTime)
	resolvedAt(cdi, 5*time.Minute)
}

// makeRunPagerDuty is the second --config deploy/local/run.sh gives the
// collector over config/collector.yaml: /pagerduty with the demo's secret.
const makeRunPagerDuty = "yaml:receivers::changelens_webhook::pagerduty::secret: ${env:CHANGELENS_PAGERDUTY_WEBHOOK_SECRET}"

// TestWebhookInShippedConfig: config/collector.yaml serves CDEvents and
// Alertmanager on the webhook endpoint, PagerDuty with make run's addition
// (deploy/local/run.sh); a delivery to each is a stored deployment or
// incident (an alert only when marked changelens="incident").
func TestWebhookInShippedConfig(t *testing.T) {
	ch := chtest.Shared(t)
	db := ch.NewDatabase(t)
	health := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	hook := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	runSh, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy/local/run.sh"))
	require.NoError(t, err)
	require.Contains(t, string(runSh), "'"+makeRunPagerDuty+"'", "run.sh adds PagerDuty otherwise")
	cmd := exec.Command(collectorBinary(t), "--config", filepath.Join(repoRoot(t), "config/collector.yaml"), "--config", makeRunPagerDuty)
	cmd.Env = append(os.Environ(), "CHANGELENS_QUEUE_DIR="+t.TempDir(), "CHANGELENS_HEALTH_ENDPOINT="+health,
		fmt.Sprintf("CHANGELENS_OTLP_GRPC_ENDPOINT=127.0.0.1:%d", freePort(t)), fmt.Sprintf("CHANGELENS_OTLP_HTTP_ENDPOINT=127.0.0.1:%d", freePort(t)),
		"CHANGELENS_WEBHOOK_ENDPOINT="+hook, "CHANGELENS_CDEVENTS_TOKEN="+webhookCDToken,
		"CHANGELENS_ALERTMANAGER_TOKEN="+webhookAMToken, "CHANGELENS_PAGERDUTY_WEBHOOK_SECRET="+webhookPagerDutySecret,
		"CLICKHOUSE_ENDPOINT="+ch.Addr(), "CLICKHOUSE_DATABASE="+db)
	col := &collector{exited: make(chan struct{})}
	col.launch(t, cmd)

	now := time.Now()
	cd := webhookDeliveries(t, now)[3]
	status, body, err := postWebhook(hook, cd)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status, body)
	cd.headers["Authorization"] = "Bearer guess"
	status, _, err = postWebhook(hook, cd)
	require.NoError(t, err)
	assert.Equal(t, http.StatusUnauthorized, status)

	openings, _ := incidentWebhooks(t, now)
	page, alerts := openings[0], openings[1]
	status, body, err = postWebhook(hook, page)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status, body)
	status, body, err = postWebhook(hook, alerts)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, status)
	assert.Contains(t, body, `"status":"ignored"`, "no alert is marked an incident")
	var n map[string]any
	require.NoError(t, json.Unmarshal(alerts.body, &n))
	n["alerts"].([]any)[0].(map[string]any)["labels"].(map[string]any)["changelens"] = "incident"
	alerts.body, err = json.Marshal(n)
	require.NoError(t, err)
	status, body, err = postWebhook(hook, alerts)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status, body)
	assert.Contains(t, body, `"ignored":1`)

	require.Eventually(t, func() bool {
		return countRows(t, ch, db, "SELECT count() FROM deployment_events WHERE service = 'mySubject123' AND environment = 'test123'") == 1
	}, 30*time.Second, 100*time.Millisecond, "the deployment was not stored")
	require.Eventually(t, func() bool {
		return countRows(t, ch, db, "SELECT count() FROM incident_events WHERE source IN ('pagerduty', 'alertmanager')") == 2
	}, 30*time.Second, 100*time.Millisecond, "the incidents were not stored")
	assert.Equal(t, uint64(1), countRows(t, ch, db,
		"SELECT count() FROM incident_events WHERE id = 'pagerduty:PGR0VU2' AND service = 'API Service' AND environment = 'production'"))
	assert.Equal(t, uint64(1), countRows(t, ch, db,
		"SELECT count() FROM incident_events WHERE source = 'alertmanager' AND service = 'checkout' AND status = 'open'"))
}
