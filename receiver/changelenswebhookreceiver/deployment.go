package changelenswebhookreceiver

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/changelens/changelens/internal/eventspan"
)

// Span attributes of a deploy span beyond the ones the processor reads
// (internal/eventspan), from the OpenTelemetry CI/CD and VCS conventions.
const (
	attrTaskRunResult = "cicd.pipeline.task.run.result"
	attrTaskName      = "cicd.pipeline.task.name"
	attrRefName       = "vcs.ref.head.name"
	attrRepositoryURL = "vcs.repository.url.full"
	// attrRework marks a hotfix or a revert; the query side reads it from
	// the span (the processor does not interpret it).
	attrRework = "changelens.deployment.rework"
	// attrSource names the webhook source a span came from.
	attrSource = "changelens.webhook.source"
)

// Values of cicd.pipeline.task.run.result and of changelens.deployment.rework.
const (
	resultSuccess = "success"
	resultFailure = "failure"
	reworkHotfix  = "hotfix"
	reworkRevert  = "revert"
)

// scopeName is the instrumentation scope of the spans the receiver makes.
const scopeName = "github.com/changelens/changelens/receiver/changelenswebhookreceiver"

// deployment is what one delivery says happened, in the words the processor
// reads. Nothing in it may depend on when or where the delivery arrived:
// a redelivery must give the identical span.
type deployment struct {
	source      string // github, argocd, cdevents
	externalID  string // the source's own deployment ID, prefixed by source
	service     string
	environment string
	version     string
	failed      bool
	start, end  time.Time // rollout start, deploy time
	commit      string
	commitTime  time.Time // zero: unknown
	ref         string
	repoURL     string
	pipeline    string
	pipelineRun string
	rework      string // "", hotfix or revert
	sender      string // the resource's service.name: the system that deployed
}

func (d *deployment) result() string {
	if d.failed {
		return resultFailure
	}
	return resultSuccess
}

// spanIDs derives the span's IDs from its deployment ID alone, so every
// delivery of one deployment — retried, redelivered, through another
// collector — is the same span, and the stored rows it makes are identical
// (their content hash includes the trace ID).
func (d *deployment) spanIDs() (pcommon.TraceID, pcommon.SpanID) {
	sum := sha256.Sum256([]byte("changelens_webhook\x00" + d.externalID))
	var tid pcommon.TraceID
	var sid pcommon.SpanID
	copy(tid[:], sum[:16])
	copy(sid[:], sum[16:24])
	return tid, sid
}

// appendTo appends d as one CI/CD deploy span in a ResourceSpans of its own.
func (d *deployment) appendTo(td ptrace.Traces) {
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr(eventspan.AttrServiceName, d.sender)
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName(scopeName)
	s := ss.Spans().AppendEmpty()
	tid, sid := d.spanIDs()
	s.SetTraceID(tid)
	s.SetSpanID(sid)
	s.SetKind(ptrace.SpanKindInternal)
	s.SetName("deploy " + d.service)
	start, end := d.start, d.end
	if start.IsZero() || start.After(end) {
		start = end
	}
	s.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	s.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
	if d.failed {
		s.Status().SetCode(ptrace.StatusCodeError)
	}
	a := s.Attributes()
	a.EnsureCapacity(16)
	a.PutStr(eventspan.AttrTaskType, eventspan.TaskTypeDeploy)
	a.PutStr(attrTaskName, "deploy")
	a.PutStr(attrTaskRunResult, d.result())
	a.PutStr(eventspan.AttrServiceName, d.service)
	a.PutStr(eventspan.AttrServiceVersion, d.version)
	a.PutStr(eventspan.AttrDeploymentEnvironment, d.environment)
	a.PutStr(eventspan.AttrDeploymentID, d.externalID)
	a.PutStr(attrSource, d.source)
	putIf(a, eventspan.AttrCommitSHA, d.commit)
	if !d.commitTime.IsZero() {
		a.PutStr(eventspan.AttrCommitTime, d.commitTime.UTC().Format(time.RFC3339Nano))
	}
	putIf(a, attrRefName, d.ref)
	putIf(a, attrRepositoryURL, d.repoURL)
	putIf(a, eventspan.AttrPipelineName, d.pipeline)
	putIf(a, eventspan.AttrPipelineRunID, d.pipelineRun)
	putIf(a, attrRework, d.rework)
}

func putIf(a pcommon.Map, k, v string) {
	if v != "" {
		a.PutStr(k, v)
	}
}

// normalizeRework reads a source's hotfix/revert marker; anything else is
// no marker. A deployment is not refused for a marker it cannot read: the
// payload that carries it is often frozen (a GitHub deployment's), so a
// refusal could never be fixed by a redelivery.
func normalizeRework(v string) string {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case reworkHotfix:
		return reworkHotfix
	case reworkRevert, "rollback":
		return reworkRevert
	}
	return ""
}

// stringFields reads the string members of a JSON object found in a
// free-form field (a GitHub deployment's payload, a CDEvent's customData).
// Members of other types are skipped one by one: someone else's field of
// the same name costs only itself, never the deployment. Anything but an
// object has no fields.
func stringFields(raw []byte) (map[string]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, nil
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(members))
	for k, v := range members {
		var s string
		if json.Unmarshal(v, &s) == nil {
			out[k] = strings.TrimSpace(s)
		}
	}
	return out, nil
}

// parseTime reads an RFC 3339 time; ok is false for anything else.
func parseTime(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.UnixNano() <= 0 {
		return time.Time{}, false
	}
	return t, true
}
