package changelenswebhookreceiver

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/changelens/changelens/internal/eventspan"
)

// The labels an alert's severity and blamed deployment are read from.
const (
	amSeverityLabel   = "severity"
	amDeploymentLabel = "deployment_id"
)

type alertmanager struct {
	token             string
	serviceLabels     []string
	environmentLabels []string
	environment       string
	match             map[string]string
}

func newAlertmanager(c *AlertmanagerConfig) *alertmanager {
	return &alertmanager{token: string(c.Token), serviceLabels: c.ServiceLabels, environmentLabels: c.EnvironmentLabels,
		environment: c.Environment, match: c.MatchLabels}
}

// amWebhook is Alertmanager's webhook body (webhook_config, version 4).
type amWebhook struct {
	Version         string    `json:"version"`
	GroupKey        string    `json:"groupKey"`
	TruncatedAlerts int       `json:"truncatedAlerts"`
	Status          string    `json:"status"`
	Receiver        string    `json:"receiver"`
	Alerts          []amAlert `json:"alerts"`
}

// amWebhookRaw is the same body with its alerts undecoded, read to name the
// member of the alert a notification that failed to decode is wrong in.
type amWebhookRaw struct {
	Version string          `json:"version"`
	Alerts  json.RawMessage `json:"alerts"`
}

// amAlert is one alert of a notification.
type amAlert struct {
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    string            `json:"startsAt"`
	EndsAt      string            `json:"endsAt"`
	Fingerprint string            `json:"fingerprint"`
}

func (a *alertmanager) parse(req *http.Request, body []byte) (delivery, error) {
	if a.token != "" {
		if err := bearer(req.Header.Get("Authorization"), a.token); err != nil {
			return delivery{}, err
		}
	}
	var wh amWebhook
	if err := json.Unmarshal(body, &wh); err != nil {
		return delivery{}, whyNotAlerts(body, err)
	}
	if err := checkVersion(wh.Version); err != nil {
		return delivery{}, err
	}
	if wh.Alerts == nil {
		return delivery{}, malformed("alerts", "required")
	}
	alerts := wh.Alerts
	var del delivery
	for i := range alerts {
		field := func(f string) string { return fmt.Sprintf("alerts[%d]%s", i, f) }
		al := &alerts[i]
		var resolved bool
		switch al.Status {
		case "firing":
		case "resolved":
			resolved = true
		case "":
			return delivery{}, malformed(field(".status"), "required (firing or resolved)")
		default:
			return delivery{}, malformed(field(".status"), strconv.Quote(al.Status)+" is not firing or resolved")
		}
		if al.Fingerprint == "" {
			return delivery{}, malformed(field(".fingerprint"), "required")
		}
		starts, ok := parseTime(al.StartsAt)
		if !ok {
			return delivery{}, malformed(field(".startsAt"), "not RFC 3339")
		}
		in := eventspan.Incident{
			// The fingerprint is the alert's label set; the start tells a
			// later re-fire of the same alert, a new incident, apart.
			ID:           "alertmanager:" + al.Fingerprint + "@" + strconv.FormatInt(starts.Unix(), 10),
			Source:       eventspan.IncidentSourceAlertmanager,
			Resolved:     resolved,
			Severity:     al.Labels[amSeverityLabel],
			Title:        al.Annotations["summary"],
			Opened:       unixNano(starts),
			DeploymentID: al.Labels[amDeploymentLabel],
		}
		if resolved {
			ends, ok := parseTime(al.EndsAt)
			if !ok {
				return delivery{}, malformed(field(".endsAt"), "not RFC 3339 (a resolved alert's resolution)")
			}
			in.ResolvedAt = max(unixNano(ends), in.Opened)
		}
		// The body is checked whole before any alert is skipped, so a
		// malformed notification is refused whichever alerts it holds.
		if !a.matches(al.Labels) {
			del.skipped++
			continue
		}
		if in.Service = firstLabel(al.Labels, a.serviceLabels); in.Service == "" {
			del.skipped++
			continue
		}
		if in.Environment = firstLabel(al.Labels, a.environmentLabels); in.Environment == "" {
			in.Environment = a.environment
		}
		if in.Title == "" {
			in.Title = al.Labels["alertname"]
		}
		del.incidents = append(del.incidents, in)
	}
	if len(del.incidents) == 0 {
		del.status = http.StatusOK
		del.note = fmt.Sprintf("none of the %d alerts is an incident (match_labels, or no service label)", len(alerts))
	}
	return del, nil
}

func checkVersion(v string) error {
	switch v {
	case "4":
		return nil
	case "":
		return malformed("version", "required (Alertmanager's webhook sends version 4)")
	}
	return malformed("version", strconv.Quote(v)+" is not 4, the webhook format this receiver reads")
}

// whyNotAlerts names what makes body, which failed to decode with err, no
// notification: the body, the version, the alerts, or the alert and member.
func whyNotAlerts(body []byte, err error) error {
	var wh amWebhookRaw
	if err := decodeJSON(body, &wh, "", "an Alertmanager webhook notification"); err != nil {
		return err
	}
	if err := checkVersion(wh.Version); err != nil {
		return err
	}
	var alerts []json.RawMessage
	if json.Unmarshal(wh.Alerts, &alerts) != nil {
		return malformed("alerts", "not an array")
	}
	for i, raw := range alerts {
		var al amAlert
		if err := decodeJSON(raw, &al, fmt.Sprintf("alerts[%d].", i), "an alert"); err != nil {
			return err
		}
	}
	return malformed("body", "not an Alertmanager webhook notification: "+err.Error())
}

// matches says whether labels carry every match_labels value.
func (a *alertmanager) matches(labels map[string]string) bool {
	for k, v := range a.match {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// firstLabel is the value of the first of names present (and not empty).
func firstLabel(labels map[string]string, names []string) string {
	for _, n := range names {
		if v := labels[n]; v != "" {
			return v
		}
	}
	return ""
}

// decodeJSON decodes body into v; a member of the wrong type is refused
// naming it (prefix + its path: "alerts[2].startsAt: a JSON number where a
// string belongs"), anything else as not being what (a document of the
// source).
func decodeJSON(body []byte, v any, prefix, what string) error {
	err := json.Unmarshal(body, v)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		// Field is the member; for a map's value, the map's.
		return malformed(prefix+te.Field, "a JSON "+te.Value+" where "+jsonType(te.Type.Kind().String())+" belongs")
	}
	field := "body"
	if prefix != "" {
		field = strings.TrimSuffix(prefix, ".")
	}
	return malformed(field, "not "+what+": "+err.Error())
}

// jsonType names a Go kind as the JSON type it decodes.
func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "map", "struct":
		return "an object"
	case "slice", "array":
		return "an array"
	case "int", "int64", "float64":
		return "a number"
	}
	return kind
}
