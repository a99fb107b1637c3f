// Package notify tells people and tools about deployments that went wrong:
// a deployment judged DEGRADED, one rolled back, a failed deploy attempt
// (and, when configured, every deployment), POSTed to generic JSON
// webhooks, Slack incoming webhooks and Grafana's annotations API.
//
// Delivery is at least once: every due notification that the delivery log
// does not record as delivered is sent, retried with exponential backoff
// while the target fails (network errors, 408, 429, 5xx), and recorded once
// the target acknowledged it (2xx). Each carries an idempotency key derived
// from (deployment, event, target), the same on every attempt and after a
// restart, so a target that deduplicates by it sees each notification once.
// Target URLs and headers hold secrets (Slack's webhook URL is one): they
// are never logged; errors name the target.
package notify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/changelens/changelens/queryapi/report"
)

// Kind is what happened to a deployment.
type Kind string

const (
	KindDegraded   Kind = "degraded"    // judged DEGRADED
	KindRolledBack Kind = "rolled_back" // a later deployment rolled it back
	KindFailed     Kind = "failed"      // the deploy attempt failed
	KindDeployed   Kind = "deployed"    // any other judged deployment (Config.All)
	// KindCausedRegression: a change — another deployment, a flag — that
	// another deployment's regression is attributed to (its verdict
	// CAUSED_BY_DEPENDENCY); the event is the cause's, sent to its targets.
	KindCausedRegression Kind = "caused_regression"
)

// Event is one notification's content.
type Event struct {
	Kind Kind
	// Deployment is the event's subject: for KindCausedRegression the
	// causing deployment (a flag's: the affected one).
	Deployment    report.Deployment
	Before, After report.Window // zero for a failed attempt
	Explanation   string
	// Affected and Cause (KindCausedRegression): the deployment whose
	// regression was attributed, and what to.
	Affected *report.Deployment
	Cause    *report.Cause
}

// id is what an event is delivered once per: its subject's deployment, and
// for a caused regression the affected one too (one cause may slow several
// callers, each worth telling).
func (e Event) id() string {
	if e.Affected != nil {
		return e.Deployment.ID + ">" + e.Affected.ID
	}
	return e.Deployment.ID
}

// TargetType is the kind of receiver.
type TargetType string

const (
	TypeWebhook TargetType = "webhook" // generic JSON
	TypeSlack   TargetType = "slack"   // Slack incoming webhook
	TypeGrafana TargetType = "grafana" // Grafana annotations API (base URL; /api/annotations is appended)
)

// Target is one receiver.
type Target struct {
	Name    string            `yaml:"name"`
	Type    TargetType        `yaml:"type"`
	URL     string            `yaml:"url"`
	Headers map[string]string `yaml:"headers"` // e.g. Authorization for a webhook
	Token   string            `yaml:"token"`   // Grafana: a service account token (Bearer)
	// Services (optional) routes: the target gets only the events whose
	// subject is one of these services — a team's channel gets its own
	// deployments, and the regressions others' deployments caused that its
	// changes caused.
	Services []string `yaml:"services"`
}

// wants reports whether t gets e.
func (t Target) wants(e Event) bool {
	return len(t.Services) == 0 || slices.Contains(t.Services, e.Deployment.Service)
}

// Validate checks t, naming the field; the URL's value is never quoted.
func (t Target) Validate() error {
	switch {
	case t.Name == "":
		return errors.New("name is required")
	case t.Type != TypeWebhook && t.Type != TypeSlack && t.Type != TypeGrafana:
		return fmt.Errorf("target %s: type must be webhook, slack or grafana", t.Name)
	}
	for _, svc := range t.Services {
		if svc == "" {
			return fmt.Errorf("target %s: services must not list an empty name", t.Name)
		}
	}
	u, err := url.Parse(t.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("target %s: url must be an absolute http(s) URL", t.Name)
	}
	return nil
}

// Config configures a Notifier.
type Config struct {
	Targets []Target
	// All: notify every judged deployment, not only the ones that went
	// wrong.
	All bool
	// APIURL and DashboardURL, when set, make the links in notifications:
	// the impact in the API, the deployment-impact dashboard in Grafana.
	APIURL, DashboardURL string
	// AttemptTimeout bounds one delivery attempt. Default 10s.
	AttemptTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between attempts (doubling).
	// Defaults 1s and 30s.
	MinBackoff, MaxBackoff time.Duration
}

// Log records delivered notifications (the worker's is a ClickHouse table).
type Log interface {
	// Delivered returns which of keys are recorded as delivered.
	Delivered(ctx context.Context, keys []string) (map[string]bool, error)
	// Record records a delivery.
	Record(ctx context.Context, d Delivery) error
}

// Delivery is one acknowledged notification.
type Delivery struct {
	Key, Target, DeploymentID string
	Kind                      Kind
	At                        time.Time
	Attempts                  int
}

// Notifier delivers events to its targets.
type Notifier struct {
	cfg    Config
	client *http.Client
	log    Log
	logger *slog.Logger
}

// New returns a Notifier; every target must be valid.
func New(cfg Config, log Log, logger *slog.Logger) (*Notifier, error) {
	for i, t := range cfg.Targets {
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("notify: targets[%d]: %w", i, err)
		}
	}
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = 10 * time.Second
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(30*time.Second, cfg.MinBackoff)
	}
	return &Notifier{cfg: cfg, client: &http.Client{Timeout: cfg.AttemptTimeout}, log: log, logger: logger}, nil
}

// All reports whether every judged deployment is notified.
func (n *Notifier) All() bool { return n.cfg.All }

// Due reports whether an event of kind k is notified.
func (n *Notifier) Due(k Kind) bool { return k != KindDeployed || n.cfg.All }

// Key is the idempotency key of an event for a target: the same on every
// attempt, in every process.
func Key(deploymentID string, k Kind, target string) string {
	sum := sha256.Sum256([]byte(deploymentID + "\x00" + string(k) + "\x00" + target))
	return hex.EncodeToString(sum[:16])
}

// Deliver sends every event not yet delivered to every target, each target
// in order and independently of the others, retrying until delivered or
// ctx ends; it returns the number delivered and the first error of an
// undelivered one (those are sent again by the next call).
func (n *Notifier) Deliver(ctx context.Context, events []Event) (int, error) {
	var keys []string
	for _, e := range events {
		for _, t := range n.cfg.Targets {
			if t.wants(e) {
				keys = append(keys, Key(e.id(), e.Kind, t.Name))
			}
		}
	}
	if len(keys) == 0 {
		return 0, nil
	}
	done, err := n.log.Delivered(ctx, keys)
	if err != nil {
		return 0, fmt.Errorf("notify: reading the delivery log: %w", err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		sent  int
		first error
	)
	for _, t := range n.cfg.Targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, e := range events {
				key := Key(e.id(), e.Kind, t.Name)
				if !t.wants(e) || done[key] {
					continue
				}
				err := n.deliver(ctx, t, e, key)
				mu.Lock()
				if err == nil {
					sent++
				} else if first == nil {
					first = err
				}
				mu.Unlock()
				if err != nil {
					return // keep this target's order: the rest wait for the next call
				}
			}
		}()
	}
	wg.Wait()
	return sent, first
}

// deliver sends one notification until the target acknowledges it or ctx
// ends, then records it.
func (n *Notifier) deliver(ctx context.Context, t Target, e Event, key string) error {
	body, err := n.payload(t, e, key)
	if err != nil {
		return err
	}
	wait := n.cfg.MinBackoff
	for attempt := 1; ; attempt++ {
		retry, err := n.post(ctx, t, body, key)
		if err == nil {
			d := Delivery{Key: key, Target: t.Name, DeploymentID: e.Deployment.ID, Kind: e.Kind, At: time.Now().UTC(), Attempts: attempt}
			if err := n.log.Record(ctx, d); err != nil {
				// Delivered but not recorded: sent again later, deduplicated by the key.
				return fmt.Errorf("notify: target %s: recording delivery %s: %w", t.Name, key, err)
			}
			n.logger.Info("notification delivered", "target", t.Name, "deployment", e.Deployment.ID, "kind", e.Kind, "key", key, "attempts", attempt)
			return nil
		}
		n.logger.Warn("notification not delivered", "target", t.Name, "deployment", e.Deployment.ID, "kind", e.Kind, "attempt", attempt, "error", err)
		if !retry {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("notify: target %s: %w (last: %v)", t.Name, ctx.Err(), err)
		case <-time.After(wait):
		}
		wait = min(2*wait, n.cfg.MaxBackoff)
	}
}

// post sends body to t; retry says whether a failure may pass.
func (n *Notifier) post(ctx context.Context, t Target, body []byte, key string) (retry bool, err error) {
	u := t.URL
	if t.Type == TypeGrafana {
		u = strings.TrimRight(u, "/") + "/api/annotations"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("target %s: building the request failed", t.Name)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	for k, v := range t.Headers {
		req.Header.Set(k, v)
	}
	if t.Token != "" {
		req.Header.Set("Authorization", "Bearer "+t.Token)
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return true, fmt.Errorf("target %s: %s", t.Name, redact(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return false, nil
	case c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || c >= 500:
		return true, fmt.Errorf("target %s: HTTP %d", t.Name, c)
	default:
		return false, fmt.Errorf("target %s: HTTP %d (not retried: fix the target's configuration)", t.Name, c)
	}
}

// redact is an HTTP client error without the URL (it may hold a token).
func redact(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Op + ": " + ue.Err.Error()
	}
	return "request failed"
}

// payload is the body a target of t's type expects.
func (n *Notifier) payload(t Target, e Event, key string) ([]byte, error) {
	d := e.Deployment
	links := map[string]string{}
	if n.cfg.APIURL != "" {
		links["impact"] = strings.TrimRight(n.cfg.APIURL, "/") + "/v1/deployments/" + url.PathEscape(d.ID) + "/impact"
	}
	if n.cfg.DashboardURL != "" {
		links["dashboard"] = strings.TrimRight(n.cfg.DashboardURL, "/") + "/d/changelens-deployment-impact?var-deployment=" + url.QueryEscape(d.ID)
	}
	switch t.Type {
	case TypeSlack:
		text := fmt.Sprintf("*changelens*: %s", e.Explanation)
		if l := links["dashboard"]; l != "" {
			text += fmt.Sprintf(" <%s|Open the impact>", l)
		}
		return json.Marshal(map[string]any{
			"text": text,
			"blocks": []any{
				map[string]any{"type": "section", "text": map[string]string{"type": "mrkdwn", "text": text}},
				map[string]any{"type": "context", "elements": []any{map[string]string{"type": "mrkdwn",
					"text": fmt.Sprintf("%s · %s · %s → %s · key %s", d.Service, d.Environment, d.PreviousVersion, d.Version, key)}}},
			},
		})
	case TypeGrafana:
		tags := []string{"changelens", "service:" + d.Service, "environment:" + d.Environment, "version:" + d.Version,
			"verdict:" + d.Verdict.String(), "event:" + string(e.Kind), "idempotency-key:" + key}
		for _, r := range d.FailureReasons {
			tags = append(tags, "reason:"+r.String())
		}
		at := d.DeployTime
		if a := e.Affected; a != nil {
			tags = append(tags, "affected:"+a.Service)
			at = a.DeployTime
		}
		return json.Marshal(map[string]any{"time": at.UnixMilli(), "tags": tags, "text": e.Explanation})
	}
	type window struct {
		Start     time.Time `json:"start"`
		End       time.Time `json:"end"`
		Requests  float64   `json:"requests"`
		ErrorRate float64   `json:"error_rate"`
		P95Ms     float64   `json:"p95_ms"`
	}
	w := func(x report.Window) *window {
		if x.Start.IsZero() {
			return nil
		}
		return &window{x.Start, x.End, x.Requests, x.ErrorRate, x.P95Ms}
	}
	body := map[string]any{
		"idempotency_key": key,
		"event":           "deployment." + string(e.Kind),
		"deployment": map[string]any{
			"id": d.ID, "service": d.Service, "environment": d.Environment, "version": d.Version,
			"previous_version": d.PreviousVersion, "deploy_time": d.DeployTime, "verdict": d.Verdict.String(),
			"rollback": d.Rollback, "failed": d.Failed, "change_failure": d.ChangeFailure, "commit_sha": d.CommitSHA,
			"failure_reasons": reasonNames(d.FailureReasons),
		},
		"before":      w(e.Before),
		"after":       w(e.After),
		"regressions": regressions(d.Regressions),
		"explanation": e.Explanation,
		"links":       links,
	}
	if a := e.Affected; a != nil {
		body["affected"] = map[string]any{
			"id": a.ID, "service": a.Service, "environment": a.Environment, "version": a.Version,
			"deploy_time": a.DeployTime, "verdict": a.Verdict.String(), "regressions": regressions(a.Regressions),
			"explanation": a.Explanation,
		}
		body["regressions"] = regressions(a.Regressions)
	}
	if c := e.Cause; c != nil {
		body["cause"] = map[string]any{
			"kind": c.Kind.String(), "deployment_id": c.DeploymentID, "service": c.Service, "environment": c.Environment,
			"version": c.Version, "flag": c.Flag, "variant": c.Variant, "metric": c.Metric,
			"explained": finiteOrNil(c.Explained), "share": finiteOrNil(c.Share), "z": finiteOrNil(c.Z),
		}
	}
	return json.Marshal(body)
}

// reasonNames are failure reasons by name (NEW_ERROR_KIND, …), never nil.
func reasonNames(rs []report.FailureReason) []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.String())
	}
	return out
}

func finiteOrNil(x float64) any {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil
	}
	return x
}

// regressions are a deployment's regressed metrics as the webhook carries
// them, strongest evidence first: operation "" is the unit as a whole; an
// interval end that is open (or unknown) is null.
func regressions(rs []report.Regression) []map[string]any {
	out := make([]map[string]any, 0, len(rs))
	finite := func(x float64) any {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
		return x
	}
	for _, r := range rs {
		m := map[string]any{
			"operation": r.Operation, "other_operations": r.Remainder, "metric": r.Metric,
			"before": finite(r.Before), "after": finite(r.After), "relative_change": finite(r.RelativeChange),
			"ci_low": finite(r.CILow), "ci_high": finite(r.CIHigh),
			"before_requests": r.BeforeRequests, "after_requests": r.AfterRequests,
		}
		if r.ErrorKind != "" { // a new error kind: which, and its first trace
			m["error_kind"], m["first_trace_id"] = r.ErrorKind, r.FirstTraceID
		}
		out = append(out, m)
	}
	return out
}
