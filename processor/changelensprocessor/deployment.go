package changelensprocessor

import (
	"encoding/hex"
	"hash/fnv"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/changelens/changelens/internal/eventspan"
)

// deployment is a CI/CD deploy span's deployment. Everything in it comes
// from the span, so every collector (and every retry or replay) that sees
// the span emits the same event, and the stored copies collapse.
type deployment struct {
	id            string
	unit          unitKey
	version       string
	succeeded     bool
	rolloutStart  int64 // unix ns
	deployTime    int64 // unix ns
	commitSHA     string
	commitTime    int64 // unix ns, 0 = unknown
	externalID    string
	pipelineName  string
	pipelineRunID string
	rework        string // eventspan.ReworkHotfix, ReworkRevert or ""
	traceID       pcommon.TraceID
}

// unitKey identifies a deployed unit.
type unitKey struct{ service, environment string }

// hashID is a deterministic 128-bit ID over the given fields: the same
// deployment seen by any replica, or again after a restart, gets the same ID.
func hashID(fields ...string) string {
	h := fnv.New128a()
	for _, f := range fields {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// explicitID prefers the CI system's own deployment ID; else the deploy span's identity.
func explicitID(u unitKey, version, externalID string, traceID pcommon.TraceID, spanID pcommon.SpanID) string {
	if externalID != "" {
		return hashID("explicit", u.service, u.environment, externalID)
	}
	return hashID("explicit", u.service, u.environment, version, hex.EncodeToString(traceID[:]), hex.EncodeToString(spanID[:]))
}

// deploySpanMatcher recognises CI/CD deploy spans.
type deploySpanMatcher struct {
	patterns []*regexp.Regexp
}

func newDeploySpanMatcher(cfg ExplicitConfig) *deploySpanMatcher {
	m := &deploySpanMatcher{}
	for _, p := range cfg.SpanNamePatterns {
		m.patterns = append(m.patterns, regexp.MustCompile(p)) // validated in Config.Validate
	}
	return m
}

func (m *deploySpanMatcher) matchName(name string) bool {
	for _, p := range m.patterns {
		if p.MatchString(name) {
			return true
		}
	}
	return false
}

// parseDeploySpan turns a CI/CD deploy span into a deployment; ok is false
// (with a drop reason) when the span cannot describe one.
func parseDeploySpan(s ptrace.Span, defaultEnv string, commitTimeAttrs []string) (d *deployment, reason dropReason, ok bool) {
	attrs := s.Attributes()
	str := func(k string) string {
		if v, ok := attrs.Get(k); ok {
			return v.AsString()
		}
		return ""
	}
	service := str(eventspan.AttrServiceName)
	if service == "" {
		return nil, reasonDeployMissingService, false
	}
	env := str(eventspan.AttrDeploymentEnvironment)
	if env == "" {
		env = str(eventspan.AttrDeploymentEnvironmentOld)
	}
	if env == "" {
		env = defaultEnv
	}
	start, end := int64(s.StartTimestamp()), int64(s.EndTimestamp())
	if end == 0 {
		end = start
	}
	if start <= 0 || end < start {
		return nil, reasonInvalidTimestamps, false
	}
	result := strings.ToLower(str("cicd.pipeline.task.run.result"))
	if result == "skip" {
		return nil, reasonDeploySkipped, false
	}
	succeeded := s.Status().Code() != ptrace.StatusCodeError
	switch result {
	case "failure", "error", "timeout", "cancellation":
		succeeded = false
	}
	if strings.EqualFold(str(eventspan.AttrDeploymentStatus), eventspan.StatusFailed) {
		succeeded = false
	}
	u := unitKey{strings.Clone(service), strings.Clone(env)}
	d = &deployment{
		unit:          u,
		version:       strings.Clone(str(eventspan.AttrServiceVersion)),
		succeeded:     succeeded,
		rolloutStart:  start,
		deployTime:    end,
		commitSHA:     strings.Clone(str(eventspan.AttrCommitSHA)),
		externalID:    strings.Clone(str(eventspan.AttrDeploymentID)),
		pipelineName:  strings.Clone(str(eventspan.AttrPipelineName)),
		pipelineRunID: strings.Clone(str(eventspan.AttrPipelineRunID)),
		traceID:       s.TraceID(),
	}
	// Only the marks readers know; anything else is no mark.
	switch r := strings.ToLower(str(eventspan.AttrRework)); r {
	case eventspan.ReworkHotfix, eventspan.ReworkRevert:
		d.rework = r
	}
	for _, k := range commitTimeAttrs {
		if v, ok := attrs.Get(k); ok {
			if t, ok := parseCommitTime(v); ok {
				d.commitTime = t
				break
			}
		}
	}
	d.id = explicitID(u, d.version, d.externalID, s.TraceID(), s.SpanID())
	return d, 0, true
}

// parseCommitTime accepts an RFC 3339 string, or unix seconds, milliseconds or
// nanoseconds as an integer, double or digit string (told apart by magnitude).
func parseCommitTime(v pcommon.Value) (int64, bool) {
	switch v.Type() {
	case pcommon.ValueTypeInt:
		return unixAnyToNanos(v.Int())
	case pcommon.ValueTypeDouble:
		return unixAnyToNanos(int64(v.Double()))
	case pcommon.ValueTypeStr:
		s := strings.TrimSpace(v.Str())
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return unixAnyToNanos(n)
		}
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t.UnixNano(), true
		}
	}
	return 0, false
}

func unixAnyToNanos(n int64) (int64, bool) {
	switch {
	case n <= 0:
		return 0, false
	case n < 1e11: // seconds (until year 5138)
		return n * 1e9, true
	case n < 1e14: // milliseconds
		return n * 1e6, true
	case n < 1e17: // microseconds
		return n * 1e3, true
	default: // nanoseconds
		return n, true
	}
}

// appendDeploymentEvent encodes d as a deployment event (internal/eventspan).
func appendDeploymentEvent(td ptrace.Traces, d *deployment) {
	idBytes, _ := hex.DecodeString(d.id)
	var sid pcommon.SpanID
	copy(sid[:], idBytes)
	tid := d.traceID
	if tid.IsEmpty() {
		copy(tid[:], idBytes)
	}
	eventspan.AppendDeployment(td, eventspan.Deployment{
		ID:            d.id,
		Resource:      eventspan.Resource{Service: d.unit.service, Environment: d.unit.environment, Version: d.version},
		Source:        eventspan.Explicit,
		Failed:        !d.succeeded,
		RolloutStart:  d.rolloutStart,
		DeployTime:    d.deployTime,
		CommitSHA:     d.commitSHA,
		CommitTime:    d.commitTime,
		ExternalID:    d.externalID,
		PipelineName:  d.pipelineName,
		PipelineRunID: d.pipelineRunID,
		Rework:        d.rework,
		TraceID:       tid,
		SpanID:        sid,
	})
}
