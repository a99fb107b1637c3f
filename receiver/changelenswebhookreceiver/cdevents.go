package changelenswebhookreceiver

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/changelens/changelens/internal/eventspan"
)

// CDEvents types that are deployments: a service deployed, upgraded to
// another version, or rolled back to an earlier one; and incidents: one
// detected (by a system) or reported (through a ticket), and resolved. Any
// 0.x.x version of each event, the spec's versions so far.
const (
	typeServiceDeployed   = "dev.cdevents.service.deployed.0."
	typeServiceUpgraded   = "dev.cdevents.service.upgraded.0."
	typeServiceRolledBack = "dev.cdevents.service.rolledback.0."
	typeIncidentDetected  = "dev.cdevents.incident.detected.0."
	typeIncidentReported  = "dev.cdevents.incident.reported.0."
	typeIncidentResolved  = "dev.cdevents.incident.resolved.0."
	typeCDEventsPrefix    = "dev.cdevents."
)

type cdEvents struct {
	token string
}

func newCDEvents(c *CDEventsConfig) *cdEvents { return &cdEvents{token: string(c.Token)} }

// cdEvent is the part of a CDEvent (spec v0.4: context, subject, customData)
// the mapping reads.
type cdEvent struct {
	Context struct {
		ID        string `json:"id"`
		Source    string `json:"source"`
		Type      string `json:"type"`
		Timestamp string `json:"timestamp"`
		ChainID   string `json:"chainId"`
	} `json:"context"`
	Subject *struct {
		ID      string `json:"id"`
		Content struct {
			Environment *struct {
				ID string `json:"id"`
			} `json:"environment"`
			ArtifactID string `json:"artifactId"`
			// An incident's (the service is the subject of a
			// service event, and its id the service).
			Service *struct {
				ID string `json:"id"`
			} `json:"service"`
			Description string `json:"description"`
		} `json:"content"`
	} `json:"subject"`
	CustomData json.RawMessage `json:"customData"`
}

// cloudEvent is a CloudEvent in structured mode (JSON event format).
type cloudEvent struct {
	SpecVersion string          `json:"specversion"`
	Data        json.RawMessage `json:"data"`
	DataBase64  string          `json:"data_base64"`
}

// cdCustomData is what changelens reads from customData (README).
type cdCustomData struct {
	Rework     string `json:"rework"`
	Version    string `json:"version"`
	Commit     string `json:"commit"`
	CommitTime string `json:"commitTime"`
}

func (c *cdEvents) parse(req *http.Request, body []byte) (delivery, error) {
	if c.token != "" {
		if err := bearer(req.Header.Get("Authorization"), c.token); err != nil {
			return delivery{}, err
		}
	}
	raw, err := cdEventOf(req.Header, body)
	if err != nil {
		return delivery{}, err
	}
	var ev cdEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		return delivery{}, malformed("body", "not a CDEvent: "+err.Error())
	}
	ctx := ev.Context
	var rolledBack, incident, resolved bool
	switch t := ctx.Type; {
	case t == "":
		return delivery{}, malformed("context.type", "required")
	case strings.HasPrefix(t, typeServiceDeployed), strings.HasPrefix(t, typeServiceUpgraded):
	case strings.HasPrefix(t, typeServiceRolledBack):
		rolledBack = true
	case strings.HasPrefix(t, typeIncidentDetected), strings.HasPrefix(t, typeIncidentReported):
		incident = true
	case strings.HasPrefix(t, typeIncidentResolved):
		incident, resolved = true, true
	case strings.HasPrefix(t, typeCDEventsPrefix):
		return ignore(http.StatusAccepted, "type "+t+" is not service.deployed, upgraded or rolledback, or incident.detected, reported or resolved 0.x"), nil
	default:
		return delivery{}, malformed("context.type", "not a CDEvents type: "+t)
	}
	if ctx.ID == "" {
		return delivery{}, malformed("context.id", "required")
	}
	if ctx.Source == "" {
		return delivery{}, malformed("context.source", "required")
	}
	at, ok := parseTime(ctx.Timestamp)
	if !ok {
		return delivery{}, malformed("context.timestamp", "required, an RFC 3339 time")
	}
	s := ev.Subject
	if incident {
		return cdIncident(&ev, at, resolved)
	}
	if s == nil || s.ID == "" {
		return delivery{}, malformed("subject.id", "required (the service)")
	}
	if s.Content.Environment == nil || s.Content.Environment.ID == "" {
		return delivery{}, malformed("subject.content.environment.id", "required")
	}
	if s.Content.ArtifactID == "" {
		return delivery{}, malformed("subject.content.artifactId", "required")
	}
	extra := customDataOf(ev.CustomData)
	d := &deployment{
		source: sourceCDEvents,
		// A CloudEvent is identified by source and id, which every
		// redelivery keeps.
		externalID:  "cdevents:" + ctx.Source + "#" + ctx.ID,
		service:     s.ID,
		environment: s.Content.Environment.ID,
		version:     extra.Version,
		start:       at,
		end:         at,
		commit:      extra.Commit,
		pipeline:    ctx.Source,
		pipelineRun: ctx.ChainID,
		rework:      normalizeRework(extra.Rework),
		sender:      "cdevents",
	}
	if d.version == "" {
		d.version = artifactVersion(s.Content.ArtifactID)
	}
	if d.rework == "" && rolledBack {
		d.rework = reworkRevert
	}
	if extra.CommitTime != "" {
		if d.commitTime, ok = parseTime(extra.CommitTime); !ok {
			return delivery{}, malformed("customData.commitTime", "not an RFC 3339 time")
		}
	}
	return delivery{deployment: d}, nil
}

// cdEventOf returns the CDEvent a request carries, in either CloudEvents
// HTTP mode: binary (ce-* headers, the CDEvent as the body) or structured
// (the CloudEvent as the body, the CDEvent its data). A bare CDEvent posted
// without CloudEvents headers is taken too, as binary mode without them.
func cdEventOf(h http.Header, body []byte) ([]byte, error) {
	mt := "application/json"
	if ct := h.Get("Content-Type"); ct != "" {
		var err error
		if mt, _, err = mime.ParseMediaType(ct); err != nil {
			return nil, reject(http.StatusUnsupportedMediaType, reasonMediaType, "Content-Type: %v", err)
		}
	}
	switch {
	case mt == "application/cloudevents-batch+json":
		return nil, reject(http.StatusUnsupportedMediaType, reasonMediaType, "Content-Type: batched CloudEvents are not supported; send one event per request")
	case mt == "application/cloudevents+json":
		return structuredData(body)
	case mt != "application/json" && !strings.HasSuffix(mt, "+json"):
		return nil, reject(http.StatusUnsupportedMediaType, reasonMediaType, "Content-Type: %s is not JSON", mt)
	case h.Get("Ce-Specversion") != "":
		return body, nil
	}
	var probe struct {
		SpecVersion string `json:"specversion"`
	}
	if err := json.Unmarshal(body, &probe); err != nil {
		return nil, malformed("body", "not JSON: "+err.Error())
	}
	if probe.SpecVersion != "" {
		return structuredData(body)
	}
	return body, nil
}

func structuredData(body []byte) ([]byte, error) {
	var ce cloudEvent
	if err := json.Unmarshal(body, &ce); err != nil {
		return nil, malformed("body", "not a structured CloudEvent: "+err.Error())
	}
	if ce.SpecVersion == "" {
		return nil, malformed("specversion", "required")
	}
	if d := bytes.TrimSpace(ce.Data); len(d) > 0 && d[0] == '{' {
		return d, nil
	}
	if ce.DataBase64 != "" {
		d, err := base64.StdEncoding.DecodeString(ce.DataBase64)
		if err != nil {
			return nil, malformed("data_base64", err.Error())
		}
		return d, nil
	}
	return nil, malformed("data", "required (the CDEvent)")
}

// cdIncident maps an incident event (detected, reported or resolved at
// at). Its ID is the incident's, the subject's, not the event's: every
// event of one incident shares it, so the resolution replaces the opening.
func cdIncident(ev *cdEvent, at time.Time, resolved bool) (delivery, error) {
	s := ev.Subject
	if s == nil || s.ID == "" {
		return delivery{}, malformed("subject.id", "required (the incident)")
	}
	c := &s.Content
	if c.Environment == nil || c.Environment.ID == "" {
		return delivery{}, malformed("subject.content.environment.id", "required")
	}
	if c.Service == nil || c.Service.ID == "" {
		return delivery{}, malformed("subject.content.service.id", "required (the service the incident affects)")
	}
	f, _ := stringFields(ev.CustomData)
	in := eventspan.Incident{
		ID:           "cdevents:" + ev.Context.Source + "#" + s.ID,
		Source:       eventspan.IncidentSourceCDEvents,
		Resolved:     resolved,
		Severity:     f["severity"],
		Title:        f["title"],
		DeploymentID: f["deploymentId"],
		Opened:       unixNano(at),
	}
	in.Service, in.Environment = c.Service.ID, c.Environment.ID
	if c.ArtifactID != "" {
		in.Version = artifactVersion(c.ArtifactID)
	}
	if in.Title == "" {
		in.Title = c.Description
	}
	// Every report of an incident must carry its opening time (the row of
	// the resolution replaces the opening's). A detected or reported event
	// is the opening, unless customData.openedAt says when it opened; a
	// resolution without openedAt knows of no opening but itself.
	if v := f["openedAt"]; v != "" {
		opened, ok := parseTime(v)
		if !ok {
			return delivery{}, malformed("customData.openedAt", "not an RFC 3339 time")
		}
		in.Opened = unixNano(opened)
	}
	if resolved {
		in.ResolvedAt = max(unixNano(at), in.Opened)
	}
	return delivery{incidents: []eventspan.Incident{in}}, nil
}

// customDataOf reads changelens' fields from customData when it is a JSON
// object; the spec lets it be anything else too (base64 of any content),
// which carries nothing for us.
func customDataOf(raw json.RawMessage) cdCustomData {
	f, _ := stringFields(raw)
	return cdCustomData{Rework: f["rework"], Version: f["version"], Commit: f["commit"], CommitTime: f["commitTime"]}
}

// artifactVersion is the version of a package URL
// (pkg:oci/myapp@sha256%3A0b31…?repository_url=… → sha256:0b31…), or the
// whole artifact ID when it is not a purl with a version.
func artifactVersion(id string) string {
	if !strings.HasPrefix(id, "pkg:") {
		return id
	}
	p := id
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	i := strings.LastIndexByte(p, '@')
	if i < 0 || i == len(p)-1 {
		return id
	}
	v, err := url.PathUnescape(p[i+1:])
	if err != nil {
		return p[i+1:]
	}
	return v
}
