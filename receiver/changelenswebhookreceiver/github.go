package changelenswebhookreceiver

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// The GitHub headers a delivery is read by.
const (
	headerGitHubEvent     = "X-GitHub-Event"
	headerGitHubSignature = "X-Hub-Signature-256"
)

type gitHub struct {
	secret   []byte
	service  string
	services map[string]string
	version  string
}

func newGitHub(c *GitHubConfig) *gitHub {
	return &gitHub{secret: []byte(c.Secret), service: c.Service, services: c.Services, version: c.Version}
}

// ghEvent is the part of a deployment_status delivery the mapping reads
// (GitHub's webhook payload, "deployment_status" event).
type ghEvent struct {
	DeploymentStatus *struct {
		ID        json.Number `json:"id"`
		State     string      `json:"state"`
		CreatedAt string      `json:"created_at"`
		UpdatedAt string      `json:"updated_at"`
	} `json:"deployment_status"`
	Deployment *struct {
		ID          json.Number     `json:"id"`
		SHA         string          `json:"sha"`
		Ref         string          `json:"ref"`
		Environment string          `json:"environment"`
		Payload     json.RawMessage `json:"payload"`
		CreatedAt   string          `json:"created_at"`
		App         *struct {
			Name string `json:"name"`
		} `json:"performed_via_github_app"`
	} `json:"deployment"`
	Repository *ghRepository `json:"repository"`
	Workflow   *struct {
		Name string `json:"name"`
	} `json:"workflow"`
	WorkflowRun *struct {
		ID   json.Number `json:"id"`
		Name string      `json:"name"`
	} `json:"workflow_run"`
}

// ghRepository is the repository a delivery is about.
type ghRepository struct {
	Name     string `json:"name"`
	FullName string `json:"full_name"`
	HTMLURL  string `json:"html_url"`
}

// ghPayload is what a deployment's free-form payload may say about it
// (changelens' convention, documented in the README).
type ghPayload struct {
	Service, Version, Rework, CommitTime string
}

func (g *gitHub) parse(req *http.Request, body []byte) (delivery, error) {
	// Authenticate before reading anything: an unsigned request learns
	// nothing, not even whether its event would have been ignored.
	sig := req.Header.Get(headerGitHubSignature)
	if sig == "" {
		return delivery{}, reject(http.StatusUnauthorized, reasonMissingSignature, "%s: required (set the webhook's secret)", headerGitHubSignature)
	}
	if !g.validSignature(sig, body) {
		return delivery{}, reject(http.StatusUnauthorized, reasonBadSignature, "%s: does not match the body under the configured secret", headerGitHubSignature)
	}
	event := req.Header.Get(headerGitHubEvent)
	switch event {
	case "":
		return delivery{}, malformed(headerGitHubEvent, "required")
	case "ping":
		return ignore(http.StatusOK, "ping"), nil
	case "push":
		return g.parsePush(req, body)
	case "deployment_status":
	default:
		return ignore(http.StatusAccepted, "event "+event+" is neither deployment_status nor push"), nil
	}
	payload, err := formPayload(req.Header.Get("Content-Type"), body)
	if err != nil {
		return delivery{}, err
	}
	var ev ghEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return delivery{}, malformed("body", "not a JSON deployment_status event: "+err.Error())
	}
	st, dep := ev.DeploymentStatus, ev.Deployment
	if st == nil {
		return delivery{}, malformed("deployment_status", "required")
	}
	if dep == nil {
		return delivery{}, malformed("deployment", "required")
	}
	var failed bool
	switch st.State {
	case "success":
	case "failure", "error":
		failed = true
	case "":
		return delivery{}, malformed("deployment_status.state", "required")
	default: // pending, queued, in_progress, inactive: not an outcome
		return ignore(http.StatusAccepted, "deployment_status.state "+st.State+" is not final"), nil
	}
	if dep.ID == "" {
		return delivery{}, malformed("deployment.id", "required")
	}
	if dep.Environment == "" {
		return delivery{}, malformed("deployment.environment", "required")
	}
	extra := gitHubPayload(dep.Payload)
	d := &deployment{
		source:      sourceGitHub,
		externalID:  "github:" + dep.ID.String(),
		environment: dep.Environment,
		failed:      failed,
		commit:      dep.SHA,
		ref:         dep.Ref,
		rework:      normalizeRework(extra.Rework),
		sender:      "github",
	}
	if failed {
		// A deployment's failed attempt and its eventual success are two
		// rows (the failure listed, the success counted), each stable.
		d.externalID += ":failed"
	}
	if d.service, err = g.serviceOf(&ev, extra.Service); err != nil {
		return delivery{}, err
	}
	if d.version, err = g.versionOf(dep.SHA, dep.Ref, extra.Version); err != nil {
		return delivery{}, err
	}
	deployed := st.UpdatedAt
	if deployed == "" {
		deployed = st.CreatedAt
	}
	var ok bool
	if d.end, ok = parseTime(deployed); !ok {
		return delivery{}, malformed("deployment_status.updated_at", "required, an RFC 3339 time")
	}
	if dep.CreatedAt != "" {
		if d.start, ok = parseTime(dep.CreatedAt); !ok {
			return delivery{}, malformed("deployment.created_at", "not an RFC 3339 time")
		}
	}
	// An unreadable commit time costs the lead time, not the deployment:
	// the payload is frozen, a refusal could never be redelivered right.
	d.commitTime, _ = parseTime(extra.CommitTime)
	if d.rework == "" {
		d.rework = reworkOfRef(dep.Ref)
	}
	if r := ev.Repository; r != nil {
		d.repoURL = r.HTMLURL
	}
	switch {
	case ev.Workflow != nil && ev.Workflow.Name != "":
		d.pipeline = ev.Workflow.Name
	case ev.WorkflowRun != nil && ev.WorkflowRun.Name != "":
		d.pipeline = ev.WorkflowRun.Name
	case dep.App != nil && dep.App.Name != "":
		d.pipeline = dep.App.Name
	default:
		d.pipeline = "github deployments"
	}
	if ev.WorkflowRun != nil {
		d.pipelineRun = ev.WorkflowRun.ID.String()
	}
	return delivery{deployment: d}, nil
}

// validSignature checks "sha256=<hex>" against the body's HMAC-SHA256.
func (g *gitHub) validSignature(header string, body []byte) bool {
	hexSum, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSum)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, g.secret)
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

// formPayload returns the JSON of a delivery: the body itself, or its
// payload field when the webhook's content type is
// application/x-www-form-urlencoded (GitHub offers both; the signature is
// over the body as sent either way).
func formPayload(contentType string, body []byte) ([]byte, error) {
	mt := "application/json"
	if contentType != "" {
		var err error
		if mt, _, err = mime.ParseMediaType(contentType); err != nil {
			return nil, reject(http.StatusUnsupportedMediaType, reasonMediaType, "Content-Type: %v", err)
		}
	}
	switch mt {
	case "application/json":
		return body, nil
	case "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, malformed("body", "not a form: "+err.Error())
		}
		p := form.Get("payload")
		if p == "" {
			return nil, malformed("payload", "required in a form-encoded delivery")
		}
		return []byte(p), nil
	}
	return nil, reject(http.StatusUnsupportedMediaType, reasonMediaType,
		"Content-Type: %s is neither application/json nor application/x-www-form-urlencoded", mt)
}

// gitHubPayload reads deployment.payload, which GitHub keeps as the
// creator sent it: an object, a string (JSON of one, or any text), or
// nothing. What it cannot read it ignores, since a deployment's payload is
// frozen and a refusal could never be redelivered right.
func gitHubPayload(raw json.RawMessage) ghPayload {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		raw = []byte(s)
	}
	f, _ := stringFields(raw)
	return ghPayload{Service: f["service"], Version: f["version"], Rework: f["rework"], CommitTime: f["commit_time"]}
}

func (g *gitHub) serviceOf(ev *ghEvent, fromPayload string) (string, error) {
	if fromPayload != "" {
		return fromPayload, nil
	}
	r := ev.Repository
	if r == nil || r.FullName == "" || r.Name == "" {
		return "", malformed("repository.full_name", "required (or deployment.payload.service)")
	}
	return g.serviceOfRepository(r), nil
}

// serviceOfRepository is the service a repository is: github.services'
// name for it, else its name or full name (github.service).
func (g *gitHub) serviceOfRepository(r *ghRepository) string {
	if s, ok := g.services[r.FullName]; ok {
		return s
	}
	if g.service == serviceRepositoryFullName {
		return r.FullName
	}
	return r.Name
}

func (g *gitHub) versionOf(sha, ref, fromPayload string) (string, error) {
	if fromPayload != "" {
		return fromPayload, nil
	}
	switch g.version {
	case versionRef:
		if ref == "" {
			return "", malformed("deployment.ref", "required (github.version is ref)")
		}
		return shortRef(ref), nil
	case versionShortSHA:
		if len(sha) < 7 {
			return "", malformed("deployment.sha", "required (github.version is short_sha)")
		}
		return sha[:7], nil
	}
	if sha == "" {
		return "", malformed("deployment.sha", "required (github.version is sha)")
	}
	return sha, nil
}

func shortRef(ref string) string {
	for _, p := range []string{"refs/heads/", "refs/tags/"} {
		if r, ok := strings.CutPrefix(ref, p); ok {
			return r
		}
	}
	return ref
}

// reworkOfRef reads the branch naming conventions of hotfixes and of
// GitHub's own revert button (revert-<pr>-<branch>).
func reworkOfRef(ref string) string {
	r := shortRef(ref)
	switch {
	case strings.HasPrefix(r, "hotfix/"):
		return reworkHotfix
	case strings.HasPrefix(r, "revert-"):
		return reworkRevert
	}
	return ""
}
