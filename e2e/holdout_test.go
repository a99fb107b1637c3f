package e2e

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/changelens/changelens/queryapi/server"
	"github.com/changelens/changelens/queryapi/usecase"
	"github.com/changelens/changelens/testkit/chtest"
)

// TestDORAHoldOut: thirty days of four services deployed from four sources
// (OTLP deploy spans, GitHub — half of its commit times only from push
// webhooks —, Argo CD, CDEvents) with incidents from
// PagerDuty and Alertmanager — rollbacks, fix-forwards, hotfixes, reverts,
// failed attempts, incidents resolved before, after and never — every
// webhook delivered three times at once through two collectors. Every
// deployment is classified as scripted (failure reasons, rework reason,
// restore time), every incident linked to the deployment it followed, and
// the five figures are exact.
func TestDORAHoldOut(t *testing.T) {
	ch := chtest.Shared(t)
	db := ch.NewDatabase(t)
	env := append(chEnv(ch, db), "GITHUB_WEBHOOK_SECRET="+webhookGitHubSecret, "ARGOCD_WEBHOOK_SECRET="+webhookArgoSecret,
		"CDEVENTS_TOKEN="+webhookCDToken, "PAGERDUTY_WEBHOOK_SECRET="+webhookPagerDutySecret, "ALERTMANAGER_TOKEN="+webhookAMToken)
	var (
		collectors []*collector
		endpoints  []string
	)
	for range 2 {
		ep := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		collectors = append(collectors, startCollector(t, webhookConfig(ep), env...))
		endpoints = append(endpoints, ep)
	}

	end := time.Now().UTC().Truncate(time.Minute)
	start := end.Add(-30 * 24 * time.Hour)
	const seed = 2025
	deps, incs := holdOutScript(seed, start, end)
	var successes, failedAttempts, rollbacks, fixForwards, hotfixes, reverts, withIncident int
	for _, d := range deps {
		switch {
		case d.failed:
			failedAttempts++
			continue
		case d.rework == reworkRollback:
			rollbacks++
		case d.rework == reworkFixForward:
			fixForwards++
		case d.rework == reworkHotfix:
			hotfixes++
		case d.rework == reworkRevert:
			reverts++
		}
		successes++
		if len(d.incidents) > 0 {
			withIncident++
		}
	}
	t.Logf("script (seed %d): %d deployments, %d failed attempts, %d rollbacks, %d fix-forwards, %d hotfixes, %d reverts, %d incidents on %d deployments",
		seed, successes, failedAttempts, rollbacks, fixForwards, hotfixes, reverts, len(incs), withIncident)
	require.GreaterOrEqual(t, successes, 150)
	for _, n := range []int{failedAttempts, rollbacks, fixForwards, hotfixes, reverts, withIncident} {
		require.Positive(t, n, "the script exercises every case")
	}
	bySource := map[string]int{}
	for _, in := range incs {
		bySource[in.source]++
	}
	require.Positive(t, bySource["pagerduty"])
	require.Positive(t, bySource["alertmanager"])

	// OTLP deploy spans from a real OTLP client, alternating collectors.
	var otlp []*scriptedDeploy
	var hooks []webhook
	for _, d := range deps {
		if d.source == "otlp" {
			otlp = append(otlp, d)
		} else {
			hooks = append(hooks, holdOutDeployHook(t, d))
		}
		if holdOutPushed(d) && !d.failed {
			hooks = append(hooks, holdOutPushHook(t, d))
		}
	}
	for _, in := range incs {
		hooks = append(hooks, holdOutIncidentHooks(t, in)...)
	}
	for i, c := range collectors {
		var mine []*scriptedDeploy
		for j, d := range otlp {
			if j%2 == i {
				mine = append(mine, d)
			}
		}
		sendDeploySpans(t, c.otlpAddr, mine)
	}

	// Every webhook three times, in a shuffled order (a resolution may
	// arrive before its opening), through both collectors at once.
	type post struct {
		h  webhook
		ep string
	}
	var posts []post
	for _, h := range hooks {
		for i := range 3 {
			posts = append(posts, post{h, endpoints[i%2]})
		}
	}
	rand.New(rand.NewPCG(seed, 1)).Shuffle(len(posts), func(i, j int) { posts[i], posts[j] = posts[j], posts[i] })
	work := make(chan post)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var refused []string
	for range 8 {
		wg.Go(func() {
			for p := range work {
				status, body, err := postWebhook(p.ep, p.h)
				if err != nil || status != http.StatusOK {
					mu.Lock()
					refused = append(refused, fmt.Sprintf("%s: %d %s %v", p.h.name, status, body, err))
					mu.Unlock()
				}
			}
		})
	}
	for _, p := range posts {
		work <- p
	}
	close(work)
	wg.Wait()
	require.Empty(t, refused)

	// Everything stored, each once however often it was delivered.
	var explicit int
	for _, d := range deps {
		if d.source != "otlp" {
			explicit++
		}
	}
	written := func(kind string) float64 {
		var n float64
		for _, c := range collectors {
			n += c.metric(t, "otelcol_changelens_exporter_events_written", `changelens_event_type="`+kind+`"`)
		}
		return n
	}
	require.Eventually(t, func() bool { return written("deployment") >= float64(3*explicit+len(otlp)) }, 90*time.Second, 250*time.Millisecond,
		"deployment events written: %v of %d", written("deployment"), 3*explicit+len(otlp))
	require.Eventually(t, func() bool { return written("incident") >= float64(3*holdOutIncidentDeliveries(incs)) }, 90*time.Second, 250*time.Millisecond,
		"incident events written: %v of %d", written("incident"), 3*holdOutIncidentDeliveries(incs))
	var pushes int
	for _, d := range deps {
		if holdOutPushed(d) && !d.failed {
			pushes++
		}
	}
	require.Eventually(t, func() bool {
		return countRows(t, ch, db, "SELECT count() FROM commit_events FINAL") == uint64(pushes)
	}, 90*time.Second, 250*time.Millisecond, "pushed commits stored: %d", pushes)
	optimizeDeployments(t, ch, db)
	// One deployment ID per deployment however often it was delivered.
	// Rows of one ID may still differ where a collector adds what only it
	// saw (the unit's previous version in its memory); readers take one row
	// per ID, and the listing below checks each deployment is listed once.
	assert.Equal(t, uint64(len(deps)), countRows(t, ch, db, "SELECT uniqExact(id) FROM deployment_events"), "one ID per deployment")
	t.Logf("deployment_events rows after merging: %d for %d deployments", countRows(t, ch, db, "SELECT count() FROM deployment_events"), len(deps))
	assert.Equal(t, uint64(len(incs)), countRows(t, ch, db, "SELECT count() FROM incident_events FINAL"), "one row per incident")
	assert.Equal(t, uint64(len(incs)), countRows(t, ch, db, "SELECT uniqExact(id) FROM incident_events"))

	// The query API, as a user reads it.
	clock := func() time.Time { return end }
	svc, err := usecase.Open(context.Background(), ch.DSN(chtest.ReadOnlyUser, chtest.ReadOnlyPassword, db), usecase.Config{CacheSize: -1, Now: clock})
	require.NoError(t, err)
	defer svc.Close()
	srv, err := server.New(server.Config{Source: svc, Now: clock})
	require.NoError(t, err)
	api := httptest.NewServer(srv.Handler())
	defer api.Close()
	window := url.Values{"environment": {"production"}, "start_time": {start.Format(time.RFC3339)}, "end_time": {end.Format(time.RFC3339)}}

	type apiDeployment struct {
		ID             string    `json:"id"`
		Service        string    `json:"service"`
		Version        string    `json:"version"`
		DeployTime     time.Time `json:"deploy_time"`
		Failed         bool      `json:"failed"`
		Rollback       bool      `json:"rollback"`
		ChangeFailure  bool      `json:"change_failure"`
		FailureReasons []string  `json:"failure_reasons"`
		ReworkReason   string    `json:"rework_reason"`
		RestoreTime    time.Time `json:"restore_time"`
		LeadTime       float64   `json:"lead_time_seconds"`
		CommitSHA      string    `json:"commit_sha"`
	}
	var listed []apiDeployment
	page := ""
	for {
		q := url.Values{"page_size": {"500"}, "page_token": {page}}
		for k, v := range window {
			q[k] = v
		}
		var resp struct {
			Deployments []apiDeployment `json:"deployments"`
			Next        string          `json:"next_page_token"`
		}
		getJSON(t, api.URL+"/v1/deployments?"+q.Encode(), &resp)
		listed = append(listed, resp.Deployments...)
		if page = resp.Next; page == "" {
			break
		}
	}
	require.Len(t, listed, len(deps), "every deployment and failed attempt, once")
	key := func(service, version string, at time.Time, failed bool) string {
		return fmt.Sprintf("%s %s %s %v", service, version, at.UTC().Format(time.RFC3339), failed)
	}
	got := map[string]apiDeployment{}
	for _, d := range listed {
		got[key(d.Service, d.Version, d.DeployTime, d.Failed)] = d
	}
	idOf := map[*scriptedDeploy]string{}
	for _, d := range deps {
		k := key(d.service, d.version, d.at, d.failed)
		a, ok := got[k]
		if !assert.True(t, ok, "not listed: %s (#%d from %s)", k, d.n, d.source) {
			continue
		}
		idOf[d] = a.ID
		what := fmt.Sprintf("#%d %s via %s", d.n, k, d.source)
		assert.Equal(t, d.rollback, a.Rollback, "rollback: %s", what)
		assert.Equal(t, append([]string{}, d.reasons...), append([]string{}, a.FailureReasons...), "failure reasons: %s", what)
		assert.Equal(t, len(d.reasons) > 0, a.ChangeFailure, "change failure: %s", what)
		assert.Equal(t, cmp.Or(d.rework, "REWORK_REASON_UNSPECIFIED"), a.ReworkReason, "rework reason: %s", what)
		assert.True(t, d.restoreAt.Equal(a.RestoreTime), "restore: %s: want %s, got %s", what, d.restoreAt, a.RestoreTime)
		assert.Equal(t, d.commit, a.CommitSHA, "commit: %s", what)
		if !d.commitAt.IsZero() && !d.failed {
			assert.Equal(t, d.at.Sub(d.commitAt).Seconds(), a.LeadTime, "lead time: %s", what)
		}
	}

	// Each incident linked to the deployment it followed.
	var incidents struct {
		Incidents []struct {
			ID       string    `json:"id"`
			Source   string    `json:"source"`
			Status   string    `json:"status"`
			Service  string    `json:"service"`
			Opened   time.Time `json:"opened_time"`
			Resolved time.Time `json:"resolved_time"`
			Linked   string    `json:"linked_deployment_id"`
		} `json:"incidents"`
	}
	getJSON(t, api.URL+"/v1/incidents?"+window.Encode(), &incidents)
	require.Len(t, incidents.Incidents, len(incs))
	byID := map[string]int{}
	for i, in := range incidents.Incidents {
		byID[in.ID] = i
	}
	for _, in := range incs {
		i, ok := byID[holdOutIncidentID(in)]
		if !assert.True(t, ok, "incident %s not listed", holdOutIncidentID(in)) {
			continue
		}
		a := incidents.Incidents[i]
		assert.Equal(t, in.source, a.Source)
		assert.Equal(t, in.service, a.Service)
		assert.True(t, in.opened.Equal(a.Opened), "%s opened %s, got %s", a.ID, in.opened, a.Opened)
		assert.True(t, in.resolved.Equal(a.Resolved), "%s resolved %s, got %s", a.ID, in.resolved, a.Resolved)
		assert.Equal(t, idOf[in.follows], a.Linked, "%s follows #%d", a.ID, in.follows.n)
	}

	// The five figures, exact.
	var dora struct {
		Summary struct {
			DeploymentCount     int     `json:"deployment_count"`
			Frequency           float64 `json:"deployment_frequency_per_day"`
			ChangeCount         int     `json:"change_count"`
			FailedChangeCount   int     `json:"failed_change_count"`
			ChangeFailureRate   float64 `json:"change_failure_rate"`
			LeadTimeMedian      float64 `json:"lead_time_median_seconds"`
			LeadTimeSamples     int     `json:"lead_time_sample_count"`
			TimeToRestoreMedian float64 `json:"time_to_restore_median_seconds"`
			RestoreSamples      int     `json:"restore_sample_count"`
			ReworkCount         int     `json:"rework_count"`
			ReworkRate          float64 `json:"rework_rate"`
		} `json:"summary"`
	}
	getJSON(t, api.URL+"/v1/dora?"+window.Encode(), &dora)
	want := expectFigures(deps, start, end)
	s := dora.Summary
	t.Logf("figures: %+v", s)
	assert.Equal(t, want.deployments, s.DeploymentCount, "deployment_count")
	assert.InDelta(t, want.frequency, s.Frequency, 1e-9, "deployment_frequency_per_day")
	assert.Equal(t, want.changes, s.ChangeCount, "change_count")
	assert.Equal(t, want.failedChanges, s.FailedChangeCount, "failed_change_count")
	assert.InDelta(t, want.cfr, s.ChangeFailureRate, 1e-12, "change_failure_rate")
	assert.Equal(t, want.leadSamples, s.LeadTimeSamples, "lead_time_sample_count")
	assert.Equal(t, want.leadMedian, s.LeadTimeMedian, "lead_time_median_seconds")
	assert.Equal(t, want.restoreSamples, s.RestoreSamples, "restore_sample_count")
	assert.Equal(t, want.restoreMedian, s.TimeToRestoreMedian, "time_to_restore_median_seconds")
	assert.Equal(t, want.rework, s.ReworkCount, "rework_count")
	assert.InDelta(t, want.reworkRate, s.ReworkRate, 1e-12, "rework_rate")
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", u, b)
	require.NoError(t, json.Unmarshal(b, v), "%s", b)
}

// sendDeploySpans sends ds as CI/CD deploy spans through the OTel Go SDK,
// as a pipeline's own instrumentation would.
func sendDeploySpans(t *testing.T, endpoint string, ds []*scriptedDeploy) {
	t.Helper()
	exp, err := otlptracegrpc.New(context.Background(), otlptracegrpc.WithEndpoint(endpoint), otlptracegrpc.WithInsecure())
	require.NoError(t, err)
	res := resource.NewWithAttributes("", attribute.String("service.name", "release-pipeline"))
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithBatcher(exp, sdktrace.WithMaxExportBatchSize(64)))
	tracer := tp.Tracer("holdout")
	for _, d := range ds {
		result := "success"
		if d.failed {
			result = "failure"
		}
		attrs := []attribute.KeyValue{
			attribute.String("cicd.pipeline.task.type", "deploy"), attribute.String("cicd.pipeline.task.run.result", result),
			attribute.String("service.name", d.service), attribute.String("service.version", d.version),
			attribute.String("deployment.environment.name", "production"), attribute.String("deployment.id", fmt.Sprintf("release-%d", d.n)),
			attribute.String("vcs.ref.head.revision", d.commit), attribute.String("cicd.pipeline.name", "release"),
		}
		if !d.commitAt.IsZero() {
			attrs = append(attrs, attribute.String("changelens.commit.time", d.commitAt.Format(time.RFC3339)))
		}
		if d.mark != "" {
			attrs = append(attrs, attribute.String("changelens.deployment.rework", d.mark))
		}
		_, span := tracer.Start(context.Background(), "deploy "+d.service, trace.WithTimestamp(d.start),
			trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(attrs...))
		span.End(trace.WithTimestamp(d.at))
	}
	require.NoError(t, tp.Shutdown(context.Background()))
}

// fixtureJSON is one of the receiver's fixtures (a vendor's documented
// payload) as a JSON object to change.
func fixtureJSON(t *testing.T, rel string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "receiver/changelenswebhookreceiver/testdata", rel))
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	return m
}

func set(m map[string]any, path string, v any) {
	keys := strings.Split(path, ".")
	for _, k := range keys[:len(keys)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[keys[len(keys)-1]] = v
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

func rfc3339(at time.Time) string { return at.UTC().Format(time.RFC3339) }

// holdOutDeployHook is d as its source's webhook reports it: the vendor's
// documented payload with the script's values.
func holdOutDeployHook(t *testing.T, d *scriptedDeploy) webhook {
	t.Helper()
	name := fmt.Sprintf("#%d %s %s@%s", d.n, d.source, d.service, d.version)
	switch d.source {
	case "github":
		m := fixtureJSON(t, "github/deployment_status.json")
		payload := map[string]any{"service": d.service, "version": d.version}
		if !d.commitAt.IsZero() && !holdOutPushed(d) {
			payload["commit_time"] = rfc3339(d.commitAt)
		}
		if d.mark != "" {
			payload["rework"] = d.mark
		}
		state := "success"
		if d.failed {
			state = "failure"
		}
		set(m, "deployment.id", 700000+d.n)
		set(m, "deployment.sha", d.commit)
		set(m, "deployment.environment", "production")
		set(m, "deployment.payload", payload)
		set(m, "deployment.created_at", rfc3339(d.start))
		set(m, "deployment_status.state", state)
		set(m, "deployment_status.created_at", rfc3339(d.at))
		set(m, "deployment_status.updated_at", rfc3339(d.at))
		body := mustJSON(t, m)
		mac := hmac.New(sha256.New, []byte(webhookGitHubSecret))
		mac.Write(body)
		return webhook{name, "/github", body, map[string]string{
			"Content-Type": "application/json", "X-GitHub-Event": "deployment_status",
			"X-GitHub-Delivery": fmt.Sprintf("holdout-%d", d.n), "X-Hub-Signature-256": "sha256=" + hex.EncodeToString(mac.Sum(nil)),
		}}
	case "argocd":
		m := fixtureJSON(t, "argocd/sync_succeeded.json")
		phase := "Succeeded"
		if d.failed {
			phase = "Failed"
		}
		m["app"], m["service"], m["version"], m["revision"], m["phase"] = d.service, nil, d.version, d.commit, phase
		m["startedAt"], m["finishedAt"] = rfc3339(d.start), rfc3339(d.at)
		if !d.commitAt.IsZero() {
			m["commitTime"] = rfc3339(d.commitAt)
		}
		if d.mark != "" {
			m["rework"] = d.mark
		}
		return webhook{name, "/argocd", mustJSON(t, m),
			map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + webhookArgoSecret}}
	case "cdevents":
		m := fixtureJSON(t, "cdevents/service_deployed.json")
		typ := "dev.cdevents.service.deployed.0.2.0"
		if d.mark == "revert" {
			typ = "dev.cdevents.service.rolledback.0.2.0"
		}
		id := fmt.Sprintf("holdout-%d", d.n)
		set(m, "context.id", id)
		set(m, "context.source", "/holdout/deployer")
		set(m, "context.type", typ)
		set(m, "context.timestamp", d.at.UTC().Format(time.RFC3339Nano))
		set(m, "subject.id", d.service)
		set(m, "subject.content.environment.id", "production")
		set(m, "subject.content.artifactId", "pkg:oci/"+d.service+"@"+d.version)
		custom := map[string]any{"version": d.version, "commit": d.commit}
		if !d.commitAt.IsZero() {
			custom["commitTime"] = rfc3339(d.commitAt)
		}
		if d.mark == "hotfix" {
			custom["rework"] = "hotfix"
		}
		m["customData"] = custom
		return webhook{name, "/cdevents", mustJSON(t, m), map[string]string{"Content-Type": "application/json", "Ce-Specversion": "1.0",
			"Ce-Type": typ, "Ce-Id": id, "Ce-Source": "/holdout/deployer", "Authorization": "Bearer " + webhookCDToken}}
	}
	t.Fatalf("no webhook for source %s", d.source)
	return webhook{}
}

// holdOutPushed says whether d's commit time reaches changelens only by
// GitHub's push webhook (every other GitHub deployment carries it in its
// payload).
func holdOutPushed(d *scriptedDeploy) bool {
	return d.source == "github" && !d.rollback && !d.commitAt.IsZero() && d.n%2 == 0
}

// holdOutPushHook is the push of d's commit to main, as GitHub delivers it.
func holdOutPushHook(t *testing.T, d *scriptedDeploy) webhook {
	t.Helper()
	m := fixtureJSON(t, "github/push.json")
	commit := map[string]any{"id": d.commit, "tree_id": strings.Repeat("4b", 20), "distinct": true, "message": "Release " + d.version,
		"timestamp": rfc3339(d.commitAt), "url": "https://github.com/acme/payments/commit/" + d.commit,
		"author":    map[string]any{"name": "A. Developer", "email": "dev@example.com", "username": "dev"},
		"committer": map[string]any{"name": "A. Developer", "email": "dev@example.com", "username": "dev"},
		"added":     []any{}, "removed": []any{}, "modified": []any{"main.go"}}
	m["ref"], m["before"], m["after"], m["created"], m["deleted"] = "refs/heads/main", strings.Repeat("0", 40), d.commit, false, false
	m["commits"], m["head_commit"] = []any{commit}, commit
	set(m, "repository.name", d.service)
	set(m, "repository.full_name", "acme/"+d.service)
	body := mustJSON(t, m)
	mac := hmac.New(sha256.New, []byte(webhookGitHubSecret))
	mac.Write(body)
	return webhook{fmt.Sprintf("push #%d %s", d.n, d.commit), "/github", body, map[string]string{
		"Content-Type": "application/json", "X-GitHub-Event": "push",
		"X-GitHub-Delivery": fmt.Sprintf("holdout-push-%d", d.n), "X-Hub-Signature-256": "sha256=" + hex.EncodeToString(mac.Sum(nil)),
	}}
}

func holdOutIncidentID(in *scriptedIncident) string {
	if in.source == "pagerduty" {
		return fmt.Sprintf("pagerduty:QHOLD%04d", in.n)
	}
	return fmt.Sprintf("alertmanager:%016x@%d", 0xa1e47000+in.n, in.opened.Unix())
}

// holdOutIncidentDeliveries counts the incident events the script's
// webhooks carry once (an opening, and a resolution when there is one).
func holdOutIncidentDeliveries(incs []*scriptedIncident) int {
	n := 0
	for _, in := range incs {
		n++
		if !in.resolved.IsZero() {
			n++
		}
	}
	return n
}

// holdOutIncidentHooks are in's deliveries: PagerDuty's v3 webhook (signed)
// or Alertmanager's (bearer token), firing and, when resolved, resolved.
func holdOutIncidentHooks(t *testing.T, in *scriptedIncident) []webhook {
	t.Helper()
	var out []webhook
	states := []bool{false}
	if !in.resolved.IsZero() {
		states = append(states, true)
	}
	for _, resolved := range states {
		name := fmt.Sprintf("incident #%d %s resolved=%v", in.n, in.source, resolved)
		if in.source == "pagerduty" {
			typ, status, at := "incident.triggered", "triggered", in.opened
			if resolved {
				typ, status, at = "incident.resolved", "resolved", in.resolved
			}
			id := fmt.Sprintf("QHOLD%04d", in.n)
			body := mustJSON(t, map[string]any{"event": map[string]any{
				"id": fmt.Sprintf("01HOLD%04d%v", in.n, resolved), "event_type": typ, "resource_type": "incident",
				"occurred_at": at.UTC().Format("2006-01-02T15:04:05.000Z"), "agent": nil, "client": nil,
				"data": map[string]any{
					"id": id, "type": "incident", "self": "https://api.pagerduty.com/incidents/" + id,
					"html_url": "https://acme.pagerduty.com/incidents/" + id, "number": in.n, "status": status,
					"incident_key": fmt.Sprintf("holdout-%d", in.n), "created_at": rfc3339(in.opened),
					"title": "Customers report failures in " + in.service,
					"service": map[string]any{"html_url": "https://acme.pagerduty.com/services/PSVC01", "id": "PSVC01",
						"self": "https://api.pagerduty.com/services/PSVC01", "summary": in.service, "type": "service_reference"},
					"assignees": []any{}, "escalation_policy": map[string]any{"id": "PEP01", "summary": "on-call", "type": "escalation_policy_reference"},
					"teams": []any{}, "priority": map[string]any{"id": "PPRI1", "summary": "P1", "type": "priority_reference"},
					"urgency": "high", "conference_bridge": nil, "resolve_reason": nil,
				},
			}})
			mac := hmac.New(sha256.New, []byte(webhookPagerDutySecret))
			mac.Write(body)
			out = append(out, webhook{name, "/pagerduty", body, map[string]string{"Content-Type": "application/json",
				"X-PagerDuty-Signature": "v1=" + hex.EncodeToString(mac.Sum(nil)), "X-Webhook-Id": fmt.Sprintf("holdout-%d-%v", in.n, resolved)}})
			continue
		}
		status, ends := "firing", "0001-01-01T00:00:00Z"
		if resolved {
			status, ends = "resolved", rfc3339(in.resolved)
		}
		labels := map[string]any{"alertname": "CheckoutErrors", "service": in.service, "environment": "production", "severity": "critical"}
		body := mustJSON(t, map[string]any{
			"version": "4", "groupKey": `{}:{alertname="CheckoutErrors"}`, "truncatedAlerts": 0, "status": status,
			"receiver": "changelens", "groupLabels": map[string]any{"alertname": "CheckoutErrors"}, "commonLabels": labels,
			"commonAnnotations": map[string]any{"summary": "Checkout fails for customers"}, "externalURL": "http://alertmanager:9093",
			"alerts": []any{map[string]any{
				"status": status, "labels": labels, "annotations": map[string]any{"summary": "Checkout fails for customers"},
				"startsAt": rfc3339(in.opened), "endsAt": ends, "generatorURL": "http://prometheus:9090/graph",
				"fingerprint": fmt.Sprintf("%016x", 0xa1e47000+in.n),
			}},
		})
		out = append(out, webhook{name, "/alertmanager", body, map[string]string{"Content-Type": "application/json",
			"Authorization": "Bearer " + webhookAMToken}})
	}
	return out
}
