package changelensexporter

import (
	"math"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/changelens/changelens/internal/eventspan"
	"github.com/changelens/changelens/internal/schema"
)

// reason is why an event was dropped (attribute "reason" of events_invalid).
type reason uint8

const (
	rMissingService reason = iota
	rInvalidTimestamps
	rFutureTimestamp
	rExpired
	rInvalidWeight
	rMissingID
	rMissingIncidentID
	rMissingCommitSHA
	rInvalidFlagEvaluation
	rInvalidUsage
	rInvalidOutcome
	numReasons
)

var reasonNames = [numReasons]string{
	rMissingService:    "missing_service_name",
	rInvalidTimestamps: "invalid_timestamps",
	rFutureTimestamp:   "future_timestamp",
	rExpired:           "expired",
	rInvalidWeight:     "invalid_weight",
	rMissingID:         "missing_deployment_id",
	rMissingIncidentID: "missing_incident_id",
	rMissingCommitSHA:  "missing_commit_sha",
	// A flag evaluation event without a flag key, a variant or a trace.
	rInvalidFlagEvaluation: "invalid_flag_evaluation",
	// A resource usage point without an instance, or with a value that is
	// no count of seconds or bytes (negative, NaN, infinite).
	rInvalidUsage: "invalid_resource_usage",
	// An outcome event without a name, or with neither session nor user.
	rInvalidOutcome: "invalid_outcome",
}

const (
	// minEventTime rejects zero and nonsense timestamps (before 2000-01-01).
	minEventTime = 946684800 * int64(time.Second)
	// maxFuture is how far ahead of the exporter's clock an event may be
	// (clock skew); further is rejected, so a hostile timestamp can neither
	// overflow DateTime nor create far-future partitions.
	maxFuture = 24 * time.Hour
)

// latencyColumns are the latency_events columns of one insert, in
// latencyColumnNames order.
type latencyColumns struct {
	service, environment, version, operation []string
	time                                     []int64 // unix seconds (DateTime)
	startNs, durationNs                      []uint64
	isError                                  []uint8
	httpStatus                               []uint16
	weight                                   []float64
	traceIDs                                 []byte // 16 bytes per row
	spanIDs                                  []byte // 8 bytes per row
	cohortKeys, cohortValues                 [][]string
	responseSize, requestSize                []int64 // eventspan.NoSize when absent
	parentSpanIDs                            []byte  // 8 bytes per row, zero: a root
	errorKind                                []string
	selfTime                                 []int64 // ns; -1 not measured
	sessionID, userID                        []string
	crashed                                  []uint8
}

var latencyColumnNames = []string{
	"service", "environment", "version", "operation", "time", "start_time_ns",
	"duration_ns", "is_error", "http_status", "weight", "trace_id", "span_id",
	"cohort_keys", "cohort_values", "response_size", "request_size", // schema v6
	"parent_span_id",                   // schema v8
	"error_kind",                       // schema v13
	"self_time_ns",                     // schema v14
	"session_id", "user_id", "crashed", // schema v15
}

func (c *latencyColumns) reset() {
	c.service, c.environment, c.version, c.operation = c.service[:0], c.environment[:0], c.version[:0], c.operation[:0]
	c.time, c.startNs, c.durationNs = c.time[:0], c.startNs[:0], c.durationNs[:0]
	c.isError, c.httpStatus, c.weight = c.isError[:0], c.httpStatus[:0], c.weight[:0]
	c.traceIDs, c.spanIDs = c.traceIDs[:0], c.spanIDs[:0]
	c.cohortKeys, c.cohortValues = c.cohortKeys[:0], c.cohortValues[:0]
	c.responseSize, c.requestSize = c.responseSize[:0], c.requestSize[:0]
	c.parentSpanIDs = c.parentSpanIDs[:0]
	c.errorKind = c.errorKind[:0]
	c.selfTime = c.selfTime[:0]
	c.sessionID, c.userID, c.crashed = c.sessionID[:0], c.userID[:0], c.crashed[:0]
}

// clearStrings drops references into the exported pdata so a pooled encoder
// does not keep it alive.
func (c *latencyColumns) clearStrings() {
	clear(c.service)
	clear(c.environment)
	clear(c.version)
	clear(c.operation)
	clear(c.cohortKeys)
	clear(c.cohortValues)
	clear(c.errorKind)
	clear(c.sessionID)
	clear(c.userID)
}

func (c *latencyColumns) rows() int { return len(c.service) }

// callColumns are the call_events columns of one insert, in callColumnNames
// order.
type callColumns struct {
	service, environment, version, operation, peer []string
	time                                           []int64 // unix seconds (DateTime)
	startNs, durationNs                            []uint64
	isError                                        []uint8
	weight                                         []float64
	traceIDs                                       []byte // 16 bytes per row
	spanIDs                                        []byte // 8 bytes per row
}

var callColumnNames = []string{
	"service", "environment", "version", "operation", "peer", "time", "start_time_ns",
	"duration_ns", "is_error", "weight", "trace_id", "span_id",
}

func (c *callColumns) reset() {
	c.service, c.environment, c.version, c.operation, c.peer = c.service[:0], c.environment[:0], c.version[:0], c.operation[:0], c.peer[:0]
	c.time, c.startNs, c.durationNs = c.time[:0], c.startNs[:0], c.durationNs[:0]
	c.isError, c.weight = c.isError[:0], c.weight[:0]
	c.traceIDs, c.spanIDs = c.traceIDs[:0], c.spanIDs[:0]
}

// clearStrings drops references into the exported pdata so a pooled encoder
// does not keep it alive.
func (c *callColumns) clearStrings() {
	clear(c.service)
	clear(c.environment)
	clear(c.version)
	clear(c.operation)
	clear(c.peer)
}

func (c *callColumns) rows() int { return len(c.service) }

// deploymentColumns are the deployments columns, in deploymentColumnNames order.
type deploymentColumns struct {
	id, service, environment, version, previousVersion, source, status []string
	rolloutStart                                                       []int64
	rolloutStartNs                                                     []uint64
	deployTime                                                         []int64
	deployTimeNs                                                       []uint64
	commitSHA                                                          []string
	commitTime                                                         []int64
	commitTimeNs                                                       []uint64
	rollbackCandidate                                                  []uint8
	externalID, pipelineName, pipelineRunID, supersededBy              []string
	rework                                                             []string
	traceIDs, spanIDs                                                  []byte
	observedTime                                                       []int64
	ver                                                                []uint64
}

var deploymentColumnNames = []string{
	"id", "service", "environment", "version", "previous_version", "source", "status",
	"rollout_start", "rollout_start_ns", "deploy_time", "deploy_time_ns",
	"commit_sha", "commit_time", "commit_time_ns", "rollback_candidate",
	"external_id", "pipeline_name", "pipeline_run_id", "superseded_by",
	"trace_id", "span_id", "observed_time", "ver", "rework",
}

func (c *deploymentColumns) reset() {
	*c = deploymentColumns{
		id: c.id[:0], service: c.service[:0], environment: c.environment[:0], version: c.version[:0],
		previousVersion: c.previousVersion[:0], source: c.source[:0], status: c.status[:0],
		rolloutStart: c.rolloutStart[:0], rolloutStartNs: c.rolloutStartNs[:0],
		deployTime: c.deployTime[:0], deployTimeNs: c.deployTimeNs[:0],
		commitSHA: c.commitSHA[:0], commitTime: c.commitTime[:0], commitTimeNs: c.commitTimeNs[:0],
		rollbackCandidate: c.rollbackCandidate[:0],
		externalID:        c.externalID[:0], pipelineName: c.pipelineName[:0], pipelineRunID: c.pipelineRunID[:0],
		supersededBy: c.supersededBy[:0], rework: c.rework[:0],
		traceIDs: c.traceIDs[:0], spanIDs: c.spanIDs[:0],
		observedTime: c.observedTime[:0], ver: c.ver[:0],
	}
}

func (c *deploymentColumns) clearStrings() {
	for _, s := range [][]string{c.id, c.service, c.environment, c.version, c.previousVersion, c.source,
		c.status, c.commitSHA, c.externalID, c.pipelineName, c.pipelineRunID, c.supersededBy, c.rework} {
		clear(s)
	}
}

func (c *deploymentColumns) rows() int { return len(c.id) }

// incidentColumns are the incident_events columns, in incidentColumnNames order.
type incidentColumns struct {
	id, service, environment, source, status, severity, title, deploymentID []string
	openedTime                                                              []int64
	openedTimeNs, resolvedTimeNs                                            []uint64
	traceIDs, spanIDs                                                       []byte
	observedTime                                                            []int64
	ver                                                                     []uint64
}

var incidentColumnNames = []string{
	"id", "service", "environment", "source", "status", "severity", "title", "deployment_id",
	"opened_time", "opened_time_ns", "resolved_time_ns", "trace_id", "span_id", "observed_time", "ver",
}

func (c *incidentColumns) reset() {
	*c = incidentColumns{
		id: c.id[:0], service: c.service[:0], environment: c.environment[:0], source: c.source[:0],
		status: c.status[:0], severity: c.severity[:0], title: c.title[:0], deploymentID: c.deploymentID[:0],
		openedTime: c.openedTime[:0], openedTimeNs: c.openedTimeNs[:0], resolvedTimeNs: c.resolvedTimeNs[:0],
		traceIDs: c.traceIDs[:0], spanIDs: c.spanIDs[:0], observedTime: c.observedTime[:0], ver: c.ver[:0],
	}
}

func (c *incidentColumns) clearStrings() {
	for _, s := range [][]string{c.id, c.service, c.environment, c.source, c.status, c.severity, c.title, c.deploymentID} {
		clear(s)
	}
}

func (c *incidentColumns) rows() int { return len(c.id) }

// commitColumns are the commit_events columns, in commitColumnNames order.
type commitColumns struct {
	service, repository, sha   []string
	commitTime                 []int64
	commitTimeNs, pushedTimeNs []uint64
	ref                        []string
	traceIDs, spanIDs          []byte
	observedTime               []int64
	ver                        []uint64
}

var commitColumnNames = []string{
	"service", "repository", "sha", "commit_time", "commit_time_ns", "pushed_time_ns", "ref",
	"trace_id", "span_id", "observed_time", "ver",
}

func (c *commitColumns) reset() {
	*c = commitColumns{
		service: c.service[:0], repository: c.repository[:0], sha: c.sha[:0],
		commitTime: c.commitTime[:0], commitTimeNs: c.commitTimeNs[:0], pushedTimeNs: c.pushedTimeNs[:0],
		ref: c.ref[:0], traceIDs: c.traceIDs[:0], spanIDs: c.spanIDs[:0], observedTime: c.observedTime[:0], ver: c.ver[:0],
	}
}

func (c *commitColumns) clearStrings() {
	for _, s := range [][]string{c.service, c.repository, c.sha, c.ref} {
		clear(s)
	}
}

func (c *commitColumns) rows() int { return len(c.sha) }

// encoder turns one ptrace.Traces into column slices. It is reused through a
// sync.Pool; strings point into the pdata being exported and are only valid
// until the insert has copied them.
type encoder struct {
	lat   latencyColumns
	dep   deploymentColumns
	call  callColumns
	inc   incidentColumns
	com   commitColumns
	flag  flagColumns
	usage usageColumns
	out   outcomeColumns

	ignoredPoints int64             // metric points that are not resource usage events
	ignored       int64             // spans that are not changelens events
	ignoredLogs   int64             // log records that are not flag evaluation events
	invalid       [numReasons]int64 // events dropped, by reason

	// settings
	minTime, maxTime int64 // accepted event start range, unix nanos
	nowSec           int64
}

// inWindow reports whether an event at t (unix ns) may be stored: not
// before minEventTime, not beyond the accepted future, not past retention;
// otherwise it counts the reason the event is dropped.
func (e *encoder) inWindow(t int64) bool {
	switch {
	case t < minEventTime:
		e.invalid[rInvalidTimestamps]++
	case t > e.maxTime:
		e.invalid[rFutureTimestamp]++
	case t < e.minTime:
		e.invalid[rExpired]++
	default:
		return true
	}
	return false
}

func (e *encoder) reset(now time.Time, retentionDays int) {
	e.lat.reset()
	e.dep.reset()
	e.call.reset()
	e.inc.reset()
	e.com.reset()
	e.flag.reset()
	e.usage.reset()
	e.out.reset()
	e.ignored, e.ignoredLogs, e.ignoredPoints = 0, 0, 0
	e.invalid = [numReasons]int64{}
	e.minTime = minEventTime
	if retentionDays > 0 {
		// Events already past retention are dropped here (reason "expired"),
		// on every server version alike: a table TTL (>= 20) would drop them
		// at INSERT, 18.16 would keep them until the sweep. The minute of
		// margin keeps an event the exporter accepts from expiring between
		// this check and the server's.
		cut := now.AddDate(0, 0, -retentionDays).Add(expiryMargin).UnixNano()
		e.minTime = max(e.minTime, cut)
	}
	e.maxTime = now.Add(maxFuture).UnixNano()
	e.nowSec = now.Unix()
}

// release drops references into the exported pdata before the encoder goes
// back to the pool.
func (e *encoder) release() {
	e.lat.clearStrings()
	e.dep.clearStrings()
	e.call.clearStrings()
	e.inc.clearStrings()
	e.com.clearStrings()
	e.flag.clearStrings()
	e.usage.clearStrings()
	e.out.clearStrings()
}

// expiryMargin: events within this much of their expiry at insert count as expired.
const expiryMargin = time.Minute

func startOfDayUTC(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// encode appends every event in td to the column slices.
func (e *encoder) encode(td ptrace.Traces) {
	rss := td.ResourceSpans()
	for i, n := 0, rss.Len(); i < n; i++ {
		rs := rss.At(i)
		var (
			res     eventspan.Resource
			resRead bool
			// client: the resource is a browser or mobile app, whose
			// latency events carry a session (decided once per resource,
			// so a server's spans pay nothing).
			client bool
		)
		sss := rs.ScopeSpans()
		for j, m := 0, sss.Len(); j < m; j++ {
			ss := sss.At(j)
			spans := ss.Spans()
			scopeKind := eventspan.ScopeKind(ss.Scope())
			for k, l := 0, spans.Len(); k < l; k++ {
				span := spans.At(k)
				// Call events share their unit's latency scopes (told apart
				// by span kind), and a processor keeping non-entry spans
				// marks events per span: eventspan resolves both.
				kind := eventspan.EventKind(scopeKind, span)
				if kind != eventspan.KindNone && !resRead {
					res, resRead = eventspan.ReadResource(rs.Resource().Attributes()), true
					client = eventspan.IsClientResource(rs.Resource().Attributes())
				}
				switch kind {
				case eventspan.KindLatency:
					var cl eventspan.Client
					if client {
						cl = eventspan.ReadClient(span, rs.Resource().Attributes())
					}
					e.addLatency(eventspan.DecodeLatency(res, span), cl)
				case eventspan.KindCall:
					e.addCall(eventspan.DecodeCall(res, span))
				case eventspan.KindDeployment:
					e.addDeployment(eventspan.DecodeDeployment(res, span))
				case eventspan.KindIncident:
					e.addIncident(eventspan.DecodeIncident(res, span))
				case eventspan.KindCommit:
					e.addCommit(eventspan.DecodeCommit(res, span))
				case eventspan.KindFlagEvaluation:
					e.addFlagEvaluation(eventspan.DecodeFlagEvaluation(res, span))
				case eventspan.KindOutcome:
					e.addOutcome(eventspan.DecodeOutcome(res, span))
				default:
					e.ignored++
				}
			}
		}
	}
}

// accept reports whether a latency or call event can be stored, counting
// it under its reason when not: both kinds are raw rows of the same
// day-partitioned, expiring shape, so they are held to the same rules.
func (e *encoder) accept(service string, start, end int64, weight float64) bool {
	if service == "" {
		e.invalid[rMissingService]++
		return false
	}
	switch {
	case start < minEventTime || end < start:
		e.invalid[rInvalidTimestamps]++
		return false
	case start > e.maxTime:
		e.invalid[rFutureTimestamp]++
		return false
	case start < e.minTime:
		e.invalid[rExpired]++
		return false
	}
	if !(weight > 0) || math.IsInf(weight, 0) { // also catches NaN
		e.invalid[rInvalidWeight]++
		return false
	}
	return true
}

func (e *encoder) addLatency(l eventspan.Latency, cl eventspan.Client) {
	if !e.accept(l.Service, l.Start, l.End, l.Weight) {
		return
	}
	c := &e.lat
	c.service = append(c.service, l.Service)
	c.environment = append(c.environment, l.Environment)
	c.version = append(c.version, l.Version)
	c.operation = append(c.operation, l.Operation)
	c.time = append(c.time, l.Start/int64(time.Second))
	c.startNs = append(c.startNs, uint64(l.Start))
	c.durationNs = append(c.durationNs, uint64(l.End-l.Start))
	var isErr uint8
	kind := ""
	if l.Error {
		isErr, kind = 1, l.ErrorKind // a kind only on a failed request
	}
	c.isError = append(c.isError, isErr)
	c.errorKind = append(c.errorKind, kind)
	self := l.SelfTime
	if self <= 0 {
		self = -1
	}
	c.selfTime = append(c.selfTime, self)
	c.httpStatus = append(c.httpStatus, l.HTTPStatus)
	c.weight = append(c.weight, l.Weight)
	c.traceIDs = append(c.traceIDs, l.TraceID[:]...)
	c.spanIDs = append(c.spanIDs, l.SpanID[:]...)
	var keys, values []string // nil: an empty array, without allocating
	if len(l.Cohorts) > 0 {
		keys, values = make([]string, len(l.Cohorts)), make([]string, len(l.Cohorts))
		for i, co := range l.Cohorts {
			keys[i], values[i] = co.Dimension, co.Value
		}
	}
	c.cohortKeys = append(c.cohortKeys, keys)
	c.cohortValues = append(c.cohortValues, values)
	c.responseSize = append(c.responseSize, l.ResponseSize)
	c.requestSize = append(c.requestSize, l.RequestSize)
	c.parentSpanIDs = append(c.parentSpanIDs, l.ParentSpanID[:]...)
	c.sessionID = append(c.sessionID, cl.SessionID)
	c.userID = append(c.userID, cl.UserID)
	var crashed uint8
	if cl.Crashed {
		crashed = 1
	}
	c.crashed = append(c.crashed, crashed)
}

func (e *encoder) addCall(ev eventspan.Call) {
	if !e.accept(ev.Service, ev.Start, ev.End, ev.Weight) {
		return
	}
	c := &e.call
	c.service = append(c.service, ev.Service)
	c.environment = append(c.environment, ev.Environment)
	c.version = append(c.version, ev.Version)
	c.operation = append(c.operation, ev.Operation)
	c.peer = append(c.peer, ev.Peer)
	c.time = append(c.time, ev.Start/int64(time.Second))
	c.startNs = append(c.startNs, uint64(ev.Start))
	c.durationNs = append(c.durationNs, uint64(ev.End-ev.Start))
	var isErr uint8
	if ev.Error {
		isErr = 1
	}
	c.isError = append(c.isError, isErr)
	c.weight = append(c.weight, ev.Weight)
	c.traceIDs = append(c.traceIDs, ev.TraceID[:]...)
	c.spanIDs = append(c.spanIDs, ev.SpanID[:]...)
}

// Bits of the deployments ReplacingMergeTree version (see deploymentVer).
const (
	verSupersededBit = 1 << 63
	verExplicitBit   = 1 << 62
	verDeployBits    = 34 // seconds: until year 2514
	verLeadBits      = 28 // seconds: ~8.5 years
	verDeployMax     = 1<<verDeployBits - 1
	verLeadMax       = 1<<verLeadBits - 1
)

// deploymentVer orders rows of one deployment id; readers take the highest
// (ties: the earliest ns times, then the server-computed row_hash):
//  1. a row marking the deployment superseded (it must never be un-done),
//  2. explicit over inferred,
//  3. the earliest deploy time (late spans move an inferred first-seen earlier;
//     replicas that saw different first spans converge on the earliest),
//  4. the earliest rollout start (longest rollout) for the same deploy time.
func deploymentVer(superseded, explicit bool, deploySec, rolloutSec int64) uint64 {
	var v uint64
	if superseded {
		v |= verSupersededBit
	}
	if explicit {
		v |= verExplicitBit
	}
	d := min(max(deploySec, 0), verDeployMax)
	v |= uint64(verDeployMax-d) << verLeadBits
	lead := min(max(deploySec-rolloutSec, 0), verLeadMax)
	v |= uint64(lead)
	return v
}

func (e *encoder) addDeployment(d eventspan.Deployment) {
	if d.ID == "" {
		e.invalid[rMissingID]++
		return
	}
	if d.Service == "" {
		e.invalid[rMissingService]++
		return
	}
	switch {
	case d.DeployTime < minEventTime:
		e.invalid[rInvalidTimestamps]++
		return
	case d.DeployTime > e.maxTime:
		e.invalid[rFutureTimestamp]++
		return
	}
	commitNs := d.CommitTime
	if commitNs < minEventTime || commitNs > e.maxTime {
		commitNs = 0 // unknown
	}
	source, status := schema.SourceExplicit, schema.StatusSucceeded
	if d.Source == eventspan.Inferred {
		source = schema.SourceInferred
	}
	if d.Failed {
		status = schema.StatusFailed
	}

	c := &e.dep
	c.id = append(c.id, d.ID)
	c.service = append(c.service, d.Service)
	c.environment = append(c.environment, d.Environment)
	c.version = append(c.version, d.Version)
	c.previousVersion = append(c.previousVersion, d.PreviousVersion)
	c.source = append(c.source, source)
	c.status = append(c.status, status)
	startSec, endSec := d.RolloutStart/int64(time.Second), d.DeployTime/int64(time.Second)
	c.rolloutStart = append(c.rolloutStart, startSec)
	c.rolloutStartNs = append(c.rolloutStartNs, uint64(d.RolloutStart))
	c.deployTime = append(c.deployTime, endSec)
	c.deployTimeNs = append(c.deployTimeNs, uint64(d.DeployTime))
	c.commitSHA = append(c.commitSHA, d.CommitSHA)
	c.commitTime = append(c.commitTime, commitNs/int64(time.Second))
	c.commitTimeNs = append(c.commitTimeNs, uint64(commitNs))
	var rb uint8
	if d.RollbackCandidate {
		rb = 1
	}
	c.rollbackCandidate = append(c.rollbackCandidate, rb)
	c.externalID = append(c.externalID, d.ExternalID)
	c.pipelineName = append(c.pipelineName, d.PipelineName)
	c.pipelineRunID = append(c.pipelineRunID, d.PipelineRunID)
	c.supersededBy = append(c.supersededBy, d.SupersededBy)
	c.rework = append(c.rework, d.Rework)
	c.traceIDs = append(c.traceIDs, d.TraceID[:]...)
	c.spanIDs = append(c.spanIDs, d.SpanID[:]...)
	c.observedTime = append(c.observedTime, e.nowSec)
	c.ver = append(c.ver, deploymentVer(d.SupersededBy != "", d.Source == eventspan.Explicit, endSec, startSec))
}

// verResolvedBit puts an incident's resolution above its opening whatever
// order they arrive in (a replayed opening must not re-open it); below it,
// the later observation of the same status wins (a severity raised).
const verResolvedBit = 1 << 63

func (e *encoder) addIncident(in eventspan.Incident) {
	if in.ID == "" {
		e.invalid[rMissingIncidentID]++
		return
	}
	if in.Service == "" {
		e.invalid[rMissingService]++
		return
	}
	if !e.inWindow(in.Opened) {
		return
	}
	c := &e.inc
	c.id = append(c.id, in.ID)
	c.service = append(c.service, in.Service)
	c.environment = append(c.environment, in.Environment)
	c.source = append(c.source, in.Source)
	c.status = append(c.status, in.Status())
	c.severity = append(c.severity, in.Severity)
	c.title = append(c.title, in.Title)
	c.deploymentID = append(c.deploymentID, in.DeploymentID)
	c.openedTime = append(c.openedTime, in.Opened/int64(time.Second))
	c.openedTimeNs = append(c.openedTimeNs, uint64(in.Opened))
	var resolved uint64
	ver := uint64(max(e.nowSec, 0))
	if in.Resolved {
		resolved = uint64(max(in.ResolvedAt, in.Opened))
		ver |= verResolvedBit
	}
	c.resolvedTimeNs = append(c.resolvedTimeNs, resolved)
	c.traceIDs = append(c.traceIDs, in.TraceID[:]...)
	c.spanIDs = append(c.spanIDs, in.SpanID[:]...)
	c.observedTime = append(c.observedTime, e.nowSec)
	c.ver = append(c.ver, ver)
}

// commitVer orders the rows of one commit (one per push that carried it):
// the earliest push is the greatest, a push of unknown time the least.
// Derived from the event alone, so every collector and replica agrees.
func commitVer(pushedNs int64) uint64 {
	if pushedNs <= 0 {
		return 0
	}
	return uint64(math.MaxInt64 - pushedNs)
}

func (e *encoder) addCommit(cm eventspan.Commit) {
	if cm.SHA == "" {
		e.invalid[rMissingCommitSHA]++
		return
	}
	if cm.Service == "" {
		e.invalid[rMissingService]++
		return
	}
	if !e.inWindow(cm.Time) {
		return
	}
	pushed := cm.Pushed
	if pushed < minEventTime || pushed > e.maxTime {
		pushed = 0 // unknown
	}
	c := &e.com
	c.service = append(c.service, cm.Service)
	c.repository = append(c.repository, cm.Repository)
	c.sha = append(c.sha, cm.SHA)
	c.commitTime = append(c.commitTime, cm.Time/int64(time.Second))
	c.commitTimeNs = append(c.commitTimeNs, uint64(cm.Time))
	c.pushedTimeNs = append(c.pushedTimeNs, uint64(pushed))
	c.ref = append(c.ref, cm.Ref)
	c.traceIDs = append(c.traceIDs, cm.TraceID[:]...)
	c.spanIDs = append(c.spanIDs, cm.SpanID[:]...)
	c.observedTime = append(c.observedTime, e.nowSec)
	c.ver = append(c.ver, commitVer(pushed))
}
