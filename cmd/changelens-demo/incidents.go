package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/changelens/changelens/cmd/changelens-demo/plan"
)

// The environment variables holding the webhook receiver's secrets, the
// names config/collector.yaml and deploy/local/run.sh give them.
const (
	envPagerDutySecret   = "CHANGELENS_PAGERDUTY_WEBHOOK_SECRET"
	envAlertmanagerToken = "CHANGELENS_ALERTMANAGER_TOKEN"
)

// demoIncident is one incident of the scenario, reported to the webhook
// receiver as its source would: opened, then resolved.
type demoIncident struct {
	source           string // "alertmanager" or "pagerduty"
	service, env     string
	title, severity  string
	opened, resolved time.Time
	blamed           plan.Deployment // the release it followed
}

// Offsets of the incidents from the bad release's deploy time and its
// rollback's: the error-rate alert fires once its 3-minute "for" has
// passed and resolves a few minutes after the rollback; customers' reports
// reach on-call later, and on-call resolves the page once the graphs are
// flat again.
const (
	alertAfterDeploy   = 4 * time.Minute
	alertAfterRollback = 3 * time.Minute
	pageAfterDeploy    = 12 * time.Minute
	pageAfterRollback  = 8 * time.Minute
)

// planIncidents are the scenario's incidents: the bad checkout release in
// production (p95 ×2.5, +4 points of 5xx, rolled back 40 minutes later)
// fires a Prometheus alert and gets a PagerDuty incident, both resolved
// after the rollback. None when the release falls outside [from, to); an
// incident resolving at or after to is reported open only.
func planIncidents(p *plan.Plan, from, to time.Time) []demoIncident {
	var bad, rollback *plan.Deployment
	for i := range p.Deployments {
		d := &p.Deployments[i]
		if d.Environment != plan.Production {
			continue
		}
		switch {
		case d.Kind == plan.BadRelease && bad == nil:
			bad = d
		case d.Kind == plan.Rollback && bad != nil && d.Service == bad.Service && rollback == nil:
			rollback = d
		}
	}
	if bad == nil || rollback == nil || bad.Time().Before(from) || !bad.Time().Add(pageAfterDeploy).Before(to) {
		return nil
	}
	// Whole seconds, as both sources report times.
	deployed, rolledBack := bad.Time().Truncate(time.Second), rollback.Time().Truncate(time.Second)
	out := []demoIncident{
		{source: "alertmanager", service: bad.Service, env: bad.Environment, severity: "critical",
			title:  bad.Service + ": error rate above 2%",
			opened: deployed.Add(alertAfterDeploy), resolved: rolledBack.Add(alertAfterRollback), blamed: *bad},
		{source: "pagerduty", service: bad.Service, env: bad.Environment, severity: "P2",
			title:  "Customers report failed and slow checkouts",
			opened: deployed.Add(pageAfterDeploy), resolved: rolledBack.Add(pageAfterRollback), blamed: *bad},
	}
	for i := range out {
		if !out[i].resolved.Before(to) {
			out[i].resolved = time.Time{}
		}
	}
	return out
}

// webhookPoster posts the incidents' webhooks as Alertmanager and PagerDuty
// would, authenticated with the secrets of the environment.
type webhookPoster struct {
	endpoint  string // host:port of the changelens_webhook receiver
	pdSecret  string
	amToken   string
	client    *http.Client
	retryFor  time.Duration
	retryWait time.Duration
}

func newWebhookPoster(endpoint string) *webhookPoster {
	return &webhookPoster{endpoint: strings.TrimSuffix(endpoint, "/"), pdSecret: os.Getenv(envPagerDutySecret),
		amToken: os.Getenv(envAlertmanagerToken), client: &http.Client{Timeout: 10 * time.Second},
		retryFor: time.Minute, retryWait: time.Second}
}

// report posts each incident's opening, then its resolution, and returns
// the incident IDs the receiver accepted.
func (w *webhookPoster) report(ctx context.Context, incidents []demoIncident) ([]string, error) {
	var ids []string
	for _, in := range incidents {
		for _, resolved := range []bool{false, true} {
			if resolved && in.resolved.IsZero() {
				continue // still open at the end of the backfill
			}
			var (
				path    string
				body    []byte
				headers = map[string]string{"Content-Type": "application/json"}
			)
			switch in.source {
			case "alertmanager":
				path, body = "/alertmanager", alertmanagerNotification(in, resolved)
				if w.amToken != "" {
					headers["Authorization"] = "Bearer " + w.amToken
				}
			case "pagerduty":
				path, body = "/pagerduty", pagerDutyWebhook(in, resolved)
				mac := hmac.New(sha256.New, []byte(w.pdSecret))
				mac.Write(body)
				headers["X-PagerDuty-Signature"] = "v1=" + hex.EncodeToString(mac.Sum(nil))
			}
			got, err := w.post(ctx, path, body, headers)
			if err != nil {
				return ids, fmt.Errorf("%s incident of %s: %w", in.source, in.service, err)
			}
			for _, id := range got {
				if !slices.Contains(ids, id) {
					ids = append(ids, id)
				}
			}
		}
	}
	return ids, nil
}

// post delivers one webhook, retrying while the receiver cannot be reached
// or answers 503 (the collector starting, its queue full).
func (w *webhookPoster) post(ctx context.Context, path string, body []byte, headers map[string]string) ([]string, error) {
	deadline := time.Now().Add(w.retryFor)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+w.endpoint+path, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := w.client.Do(req)
		retry := err != nil
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusOK:
				var a struct {
					Incidents []string `json:"incidents"`
				}
				_ = json.Unmarshal(b, &a)
				return a.Incidents, nil
			case resp.StatusCode == http.StatusServiceUnavailable:
				retry, err = true, fmt.Errorf("POST %s: %s", path, resp.Status)
			default:
				return nil, fmt.Errorf("POST %s: %s: %s", path, resp.Status, bytes.TrimSpace(b))
			}
		}
		if !retry || time.Now().After(deadline) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(w.retryWait):
		}
	}
}

// alertmanagerNotification is the webhook_config notification (version 4)
// of the incident's alert, firing or resolved.
func alertmanagerNotification(in demoIncident, resolved bool) []byte {
	labels := map[string]string{"alertname": "HighErrorRate", "service": in.service, "environment": in.env,
		"severity": in.severity, "changelens": "incident", "namespace": "shop"}
	status, ends := "firing", "0001-01-01T00:00:00Z"
	if resolved {
		status, ends = "resolved", in.resolved.UTC().Format(time.RFC3339)
	}
	alert := map[string]any{
		"status": status, "labels": labels,
		"annotations": map[string]string{"summary": in.title,
			"description": "More than 2% of " + in.service + "'s requests answered 5xx over the last 5 minutes."},
		"startsAt": in.opened.UTC().Format(time.RFC3339), "endsAt": ends,
		"generatorURL": "http://prometheus.shop.example:9090/graph?g0.expr=job%3A" + in.service + "%3Aerror_ratio5m+%3E+0.02&g0.tab=1",
		"fingerprint":  alertFingerprint(labels),
	}
	b, _ := json.Marshal(map[string]any{
		"receiver": "changelens", "status": status, "alerts": []any{alert},
		"groupLabels":       map[string]string{"alertname": "HighErrorRate"},
		"commonLabels":      labels,
		"commonAnnotations": alert["annotations"],
		"externalURL":       "http://alertmanager.shop.example:9093",
		"version":           "4", "groupKey": `{}/{changelens="incident"}:{alertname="HighErrorRate"}`, "truncatedAlerts": 0,
	})
	return b
}

// alertFingerprint is Prometheus' fingerprint of a label set (FNV-1a over the
// sorted names and values, each followed by 0xff), as Alertmanager sends it.
func alertFingerprint(labels map[string]string) string {
	h := fnv.New64a()
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		h.Write([]byte(k))
		h.Write([]byte{0xff})
		h.Write([]byte(labels[k]))
		h.Write([]byte{0xff})
	}
	return fmt.Sprintf("%016x", h.Sum64())
}

// pagerDutyWebhook is the v3 webhook of the incident's triggering or
// resolution, shaped as PagerDuty's documented payload.
func pagerDutyWebhook(in demoIncident, resolved bool) []byte {
	// Stable IDs from the incident: the same scenario reports the same
	// incident, so a rerun of the demo replays rather than duplicates.
	sum := sha256.Sum256([]byte(in.service + "@" + in.opened.UTC().Format(time.RFC3339)))
	id := "Q" + strings.ToUpper(hex.EncodeToString(sum[:4]))[:6]
	eventID, eventType, status, at := hex.EncodeToString(sum[4:16])+"t", "incident.triggered", "triggered", in.opened
	if resolved {
		eventID, eventType, status, at = hex.EncodeToString(sum[4:16])+"r", "incident.resolved", "resolved", in.resolved
	}
	b, _ := json.Marshal(map[string]any{"event": map[string]any{
		"id": eventID, "event_type": eventType,
		"resource_type": "incident", "occurred_at": at.UTC().Format(time.RFC3339),
		"agent": nil, "client": map[string]any{"name": "PagerDuty"},
		"data": map[string]any{
			"id": id, "type": "incident", "self": "https://api.pagerduty.com/incidents/" + id,
			"html_url": "https://shop.pagerduty.com/incidents/" + id, "number": 1, "status": status,
			"created_at": in.opened.UTC().Format(time.RFC3339), "title": in.title, "urgency": "high",
			"service":  map[string]any{"id": "PSHOP01", "summary": in.service, "type": "service_reference"},
			"priority": map[string]any{"id": "PPRIO02", "summary": in.severity, "type": "priority_reference"},
		},
	}})
	return b
}
