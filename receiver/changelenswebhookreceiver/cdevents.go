package changelenswebhookreceiver

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// CDEvents types that are deployments: a service deployed, upgraded to
// another version, or rolled back to an earlier one (any 0.x.x version of
// each event, the spec's versions so far).
const (
	typeServiceDeployed   = "dev.cdevents.service.deployed.0."
	typeServiceUpgraded   = "dev.cdevents.service.upgraded.0."
	typeServiceRolledBack = "dev.cdevents.service.rolledback.0."
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
		if err := c.authenticate(req.Header.Get("Authorization")); err != nil {
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
	var rolledBack bool
	switch t := ctx.Type; {
	case t == "":
		return delivery{}, malformed("context.type", "required")
	case strings.HasPrefix(t, typeServiceDeployed), strings.HasPrefix(t, typeServiceUpgraded):
	case strings.HasPrefix(t, typeServiceRolledBack):
		rolledBack = true
	case strings.HasPrefix(t, typeCDEventsPrefix):
		return ignore(http.StatusAccepted, "type "+t+" is not service.deployed, upgraded or rolledback 0.x"), nil
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

func (c *cdEvents) authenticate(v string) error {
	if v == "" {
		return reject(http.StatusUnauthorized, reasonMissingToken, "Authorization: required (Bearer <token>)")
	}
	scheme, token, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || !equalSecret(strings.TrimSpace(token), c.token) {
		return reject(http.StatusUnauthorized, reasonBadToken, "Authorization: wrong token")
	}
	return nil
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
