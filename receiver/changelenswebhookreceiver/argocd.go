package changelenswebhookreceiver

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

type argoCD struct {
	secret string
	header string
	scheme string
}

func newArgoCD(c *ArgoCDConfig) *argoCD {
	return &argoCD{secret: string(c.Secret), header: c.Header, scheme: c.Scheme}
}

// argoBody is the body of the recommended notification template (README,
// "Argo CD"): Argo CD sends whatever its template renders, so this shape is
// ours, not Argo CD's.
type argoBody struct {
	App         string `json:"app"`
	Namespace   string `json:"namespace"`
	Project     string `json:"project"`
	Environment string `json:"environment"`
	Service     string `json:"service"`
	Version     string `json:"version"`
	Revision    string `json:"revision"`
	Phase       string `json:"phase"`
	StartedAt   string `json:"startedAt"`
	FinishedAt  string `json:"finishedAt"`
	CommitTime  string `json:"commitTime"`
	Rework      string `json:"rework"`
	RepoURL     string `json:"repoURL"`
}

// noValue is what a Go template renders for a missing map key, e.g. an
// annotation the Application does not have: it means the field is empty.
const noValue = "<no value>"

func clean(s string) string {
	s = strings.TrimSpace(s)
	if s == noValue {
		return ""
	}
	return s
}

func (a *argoCD) parse(req *http.Request, body []byte) (delivery, error) {
	if err := a.authenticate(req.Header.Get(a.header)); err != nil {
		return delivery{}, err
	}
	var b argoBody
	if err := json.Unmarshal(body, &b); err != nil {
		return delivery{}, malformed("body", "not the JSON of the changelens notification template: "+err.Error())
	}
	for _, f := range []*string{&b.App, &b.Namespace, &b.Project, &b.Environment, &b.Service, &b.Version,
		&b.Revision, &b.Phase, &b.StartedAt, &b.FinishedAt, &b.CommitTime, &b.Rework, &b.RepoURL} {
		*f = clean(*f)
	}
	var failed bool
	switch strings.ToLower(b.Phase) {
	case "succeeded":
	case "failed", "error":
		failed = true
	case "running", "terminating":
		return ignore(http.StatusAccepted, "phase "+b.Phase+" is not final"), nil
	case "":
		return delivery{}, malformed("phase", "required (.app.status.operationState.phase)")
	default:
		return delivery{}, malformed("phase", "unknown operation phase "+b.Phase)
	}
	if b.App == "" {
		return delivery{}, malformed("app", "required (.app.metadata.name)")
	}
	if b.Environment == "" {
		return delivery{}, malformed("environment", "required (a label or annotation of the Application)")
	}
	if b.Revision == "" && b.Version == "" {
		return delivery{}, malformed("revision", "required (.app.status.operationState.syncResult.revision), unless version is given")
	}
	start, ok := parseTime(b.StartedAt)
	if !ok {
		return delivery{}, malformed("startedAt", "required, an RFC 3339 time (.app.status.operationState.startedAt)")
	}
	end, ok := parseTime(b.FinishedAt)
	if !ok {
		return delivery{}, malformed("finishedAt", "required, an RFC 3339 time (.app.status.operationState.finishedAt)")
	}
	app := b.App
	if b.Namespace != "" {
		app = b.Namespace + "/" + b.App
	}
	d := &deployment{
		source: sourceArgoCD,
		// One sync operation of one Application: its start identifies it,
		// whichever triggers (on-deployed, on-sync-succeeded) report it.
		externalID:  "argocd:" + app + "@" + start.UTC().Format(time.RFC3339Nano),
		service:     b.Service,
		environment: b.Environment,
		version:     b.Version,
		failed:      failed,
		start:       start,
		end:         end,
		commit:      b.Revision,
		repoURL:     b.RepoURL,
		pipeline:    "argocd/" + app,
		rework:      normalizeRework(b.Rework),
		sender:      "argocd",
	}
	if d.service == "" {
		d.service = b.App
	}
	if d.version == "" {
		d.version = b.Revision
	}
	if b.CommitTime != "" {
		if d.commitTime, ok = parseArgoTime(b.CommitTime); !ok {
			return delivery{}, malformed("commitTime", "not an RFC 3339 time")
		}
	}
	return delivery{deployment: d}, nil
}

func (a *argoCD) authenticate(v string) error {
	if v == "" {
		return reject(http.StatusUnauthorized, reasonMissingToken, "%s: required (the webhook service's headers)", a.header)
	}
	got := v
	if a.scheme != "" {
		scheme, token, ok := strings.Cut(v, " ")
		if !ok || !strings.EqualFold(scheme, a.scheme) {
			return reject(http.StatusUnauthorized, reasonBadToken, "%s: want %q followed by the secret", a.header, a.scheme)
		}
		got = strings.TrimSpace(token)
	}
	if !equalSecret(got, a.secret) {
		return reject(http.StatusUnauthorized, reasonBadToken, "%s: wrong secret", a.header)
	}
	return nil
}

// parseArgoTime also reads Go's time.Time.String(), which is what a
// template renders for .repo.GetCommitMetadata(...).Date unless told to
// format it.
func parseArgoTime(s string) (time.Time, bool) {
	if t, ok := parseTime(s); ok {
		return t, true
	}
	t, err := time.Parse("2006-01-02 15:04:05.999999999 -0700 MST", s)
	if err != nil || t.UnixNano() <= 0 {
		return time.Time{}, false
	}
	return t, true
}
