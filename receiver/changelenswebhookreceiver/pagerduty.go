package changelenswebhookreceiver

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/changelens/changelens/internal/eventspan"
)

const headerPagerDutySignature = "X-PagerDuty-Signature"

// PagerDuty v3 event types that change an incident's status.
const (
	pdIncidentTriggered = "incident.triggered"
	pdIncidentResolved  = "incident.resolved"
	pdIncidentReopened  = "incident.reopened"
)

type pagerDuty struct {
	secret       []byte
	services     map[string]string
	environment  string
	environments map[string]string
}

func newPagerDuty(c *PagerDutyConfig) *pagerDuty {
	return &pagerDuty{secret: []byte(c.Secret), services: c.Services, environment: c.Environment, environments: c.Environments}
}

// pdWebhook is the part of a v3 webhook delivery the mapping reads
// (PagerDuty's "Webhook Payload": one event, its data the incident).
type pdWebhook struct {
	Event *struct {
		ID           string `json:"id"`
		EventType    string `json:"event_type"`
		ResourceType string `json:"resource_type"`
		OccurredAt   string `json:"occurred_at"`
		Data         *struct {
			ID        string `json:"id"`
			Type      string `json:"type"`
			Title     string `json:"title"`
			CreatedAt string `json:"created_at"`
			Urgency   string `json:"urgency"`
			Priority  *struct {
				Summary string `json:"summary"`
			} `json:"priority"`
			Service *struct {
				ID      string `json:"id"`
				Summary string `json:"summary"`
			} `json:"service"`
		} `json:"data"`
	} `json:"event"`
}

func (p *pagerDuty) parse(req *http.Request, body []byte) (delivery, error) {
	// Authenticate before reading anything, pings included.
	sig := req.Header.Get(headerPagerDutySignature)
	if sig == "" {
		return delivery{}, reject(http.StatusUnauthorized, reasonMissingSignature, "%s: required (the subscription's deliveries are signed)", headerPagerDutySignature)
	}
	if !p.validSignature(sig, body) {
		return delivery{}, reject(http.StatusUnauthorized, reasonBadSignature, "%s: no v1 signature matches the body under the configured secret", headerPagerDutySignature)
	}
	var wh pdWebhook
	if err := decodeJSON(body, &wh, "", "a JSON PagerDuty v3 webhook"); err != nil {
		return delivery{}, err
	}
	ev := wh.Event
	if ev == nil {
		return delivery{}, malformed("event", "required")
	}
	var resolved bool
	switch ev.EventType {
	case pdIncidentTriggered, pdIncidentReopened:
	case pdIncidentResolved:
		resolved = true
	case "":
		return delivery{}, malformed("event.event_type", "required")
	default:
		// pagey.ping (the subscription's test), incident.acknowledged,
		// .annotated, .priority_updated, ...: no change of status. 200,
		// since PagerDuty counts anything else as a failed delivery.
		return ignore(http.StatusOK, "event_type "+ev.EventType+" is not incident.triggered, .resolved or .reopened"), nil
	}
	d := ev.Data
	if d == nil {
		return delivery{}, malformed("event.data", "required (the incident)")
	}
	if d.Type != "" && d.Type != "incident" {
		return delivery{}, malformed("event.data.type", "not incident: "+d.Type)
	}
	if d.ID == "" {
		return delivery{}, malformed("event.data.id", "required")
	}
	opened, ok := parseTime(d.CreatedAt)
	if !ok {
		return delivery{}, malformed("event.data.created_at", "required, an RFC 3339 time")
	}
	if d.Service == nil || (d.Service.ID == "" && d.Service.Summary == "") {
		return delivery{}, malformed("event.data.service", "required (the incident's service)")
	}
	in := eventspan.Incident{
		ID:       "pagerduty:" + d.ID,
		Source:   eventspan.IncidentSourcePagerDuty,
		Resolved: resolved,
		Title:    d.Title,
		Severity: d.Urgency,
		Opened:   unixNano(opened),
	}
	if d.Priority != nil && d.Priority.Summary != "" {
		in.Severity = d.Priority.Summary
	}
	in.Service = p.lookup(p.services, d.Service.ID, d.Service.Summary)
	if in.Service == "" {
		in.Service = d.Service.Summary
	}
	if in.Service == "" {
		return delivery{}, malformed("event.data.service.summary", "required unless pagerduty.services maps the service's ID "+d.Service.ID)
	}
	if in.Environment = p.lookup(p.environments, d.Service.ID, d.Service.Summary); in.Environment == "" {
		in.Environment = p.environment
	}
	if resolved {
		at, ok := parseTime(ev.OccurredAt)
		if !ok {
			return delivery{}, malformed("event.occurred_at", "required, an RFC 3339 time (the resolution)")
		}
		in.ResolvedAt = max(unixNano(at), in.Opened)
	}
	return delivery{incidents: []eventspan.Incident{in}}, nil
}

// lookup finds a PagerDuty service in a mapping by its ID, else its name.
func (p *pagerDuty) lookup(m map[string]string, id, name string) string {
	if v, ok := m[id]; ok && id != "" {
		return v
	}
	if v, ok := m[name]; ok && name != "" {
		return v
	}
	return ""
}

// validSignature checks X-PagerDuty-Signature: one or more comma-separated
// signatures (several while PagerDuty rotates the secret), any v1= one of
// which must be the body's HMAC-SHA256 under the secret.
func (p *pagerDuty) validSignature(header string, body []byte) bool {
	mac := hmac.New(sha256.New, p.secret)
	mac.Write(body)
	want := mac.Sum(nil)
	ok := false
	for _, sig := range strings.Split(header, ",") {
		hexSum, found := strings.CutPrefix(strings.TrimSpace(sig), "v1=")
		if !found {
			continue
		}
		got, err := hex.DecodeString(hexSum)
		if err == nil && hmac.Equal(got, want) {
			ok = true // no early return: every signature is compared
		}
	}
	return ok
}
