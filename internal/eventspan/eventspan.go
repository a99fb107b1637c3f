// Package eventspan is the contract between the changelens processor and
// whatever carries its output: how latency, call and deployment events travel
// as ordinary OTLP spans. The names are below; codec.go holds the one encoder
// and decoder of the events (typed Latency, Call, Deployment, Incident and
// Commit), used by the processor, the exporter and the tests; flags.go those
// of flag evaluation events, which also travel as log records.
//
// The processor's output is a normal traces stream, so any traces exporter
// (ours, debug, OTLP to a gateway tier) can carry it. Every ScopeSpans it emits
// has the instrumentation scope name ScopeName and a scope attribute
// AttrEventType saying which kind of event its spans are:
//
// Latency events (AttrEventType = EventLatency) are the user's entry spans,
// filtered and normalised in place:
//   - resource service.name, deployment.environment.name (resolved: the
//     deprecated deployment.environment or the configured default is written
//     here), service.version (may be absent: the empty version);
//   - span name = operation ("GET /users/{id}", "pkg.Svc/Method", or the
//     original name);
//   - start/end timestamps as received; trace and span IDs as received
//     (exemplars);
//   - status code ERROR if and only if the request counts as an error;
//   - http.response.status_code (or the older http.status_code) as received;
//   - AttrWeight (double) when the span's sampling weight is not 1;
//   - http.response.body.size and http.request.body.size (bytes) as
//     received, when the span has them;
//   - AttrCohortPrefix + dimension (string) for each cohort dimension the
//     processor recorded: the feature-flag variants and listed attributes.
//   - AttrErrorKind (string) on an event whose request failed (status
//     ERROR): its error kind — the entry span's error.type, else the
//     exception.type of an exception event on it or its descendants, else
//     its status class — or ErrorKindFolded beyond the unit's bound.
//   - AttrSelfTime (int, ns) when the processor measured the request's
//     self time (self_time.enabled).
//
// With the processor's keep_non_entry_spans, other spans pass through in
// their original scopes; latency events are then marked one by one with the
// span attribute AttrEventType = EventLatency instead of by their scope.
//
// Call events are the user's CLIENT and PRODUCER spans of a named service.
// In a scope marked EventLatency every CLIENT or PRODUCER span is a call
// event unless the span itself is marked EventLatency (a client span
// configured as an entry span); in unmarked scopes (keep_non_entry_spans)
// they carry the span attribute AttrEventType = EventCall (EventKind
// resolves both). They pass through as received: the span's resource is the
// calling unit, its name the call's operation, its timestamps, status, trace
// and span IDs those of the call, AttrWeight as for latency events, and its
// peer attributes (peer.service, server.address, db.system.name, ...) as
// received. A callee's latency event whose parent span ID is a call event's
// span ID (same trace) is the other end of that call: the service graph is
// that join of stored rows, so it does not depend on which collector
// received which span of a trace. Latency events keep their parent span ID
// for it.
//
// Deployment events (AttrEventType = EventDeployment) are spans the processor
// creates from CI/CD deploy spans, one ResourceSpans each, with the
// attributes named below. Their start timestamp is the rollout start (the CI
// span's start) and their end timestamp is the deploy time (its end).
//
// Incident events (AttrEventType = EventIncident) are spans the webhook
// receivers create from incident tools (PagerDuty, Alertmanager, CDEvents)
// with AppendIncident, one ResourceSpans per affected unit: an incident of
// two services is two events of one ID. The start timestamp is when the
// incident opened; the end timestamp is its resolution, or the start while it
// is open (status open). The processor passes their scopes through as they
// are, so they reach the exporter whatever the pipeline does to traffic.
//
// Commit events (AttrEventType = EventCommit) are spans the webhook receiver
// creates from a source's pushes (GitHub push webhooks) with AppendCommit,
// one ResourceSpans per commit, the resource's service.name the service the
// repository is. The start timestamp is the commit's time, the end timestamp
// the push's (never before the start; AttrCommitPushedTime holds it
// exactly). The query side takes a deployment's commit time from them when
// its deploy span named the commit but not its time (lead time). Their
// scopes pass through the processor as incident events' do.
//
// Flag evaluation events (AttrEventType = EventFlagEvaluation) are the
// feature-flag evaluations the processor could not write onto a latency
// event as a cohort dimension: log-based evaluations, and evaluations whose
// request's entry span was not in the batch (flags.go).
package eventspan

import "github.com/changelens/changelens/internal/schema"

// ScopeName is the instrumentation scope of every ScopeSpans the processor emits.
const ScopeName = "changelens"

// SchemaVersion is written as the scope version; bump it when the encoding changes.
const SchemaVersion = "1"

// Scope attribute naming the event kind of the spans in that scope.
const (
	AttrEventType   = "changelens.event.type"
	EventLatency    = "latency"
	EventDeployment = "deployment"
	EventCall       = "call" // on spans of unmarked scopes only
	EventIncident   = "incident"
	EventCommit     = "commit"
)

// Latency event attributes (besides the semantic conventions named above).
const (
	AttrWeight = "changelens.sampling.weight" // double, adjusted count; absent means 1
	// AttrCohortPrefix + dimension = the event's value of a cohort
	// dimension: "changelens.cohort.feature_flag.<key>" = the flag's variant,
	// "changelens.cohort.attribute.<name>" = a listed attribute's value.
	AttrCohortPrefix = "changelens.cohort."
	// AttrErrorKind is a failed request's error kind (string, schema v13).
	AttrErrorKind = "changelens.error.kind"
	// AttrSelfTime is a request's self time (int, ns, schema v14): the
	// entry span's duration outside the union of its CLIENT children in
	// the processor's batch — the proxy of a request's own CPU when CPU
	// cannot be split (docs/cost.md).
	AttrSelfTime = "changelens.self_time_ns"
)

// ErrorKindFolded is the error kind of failed requests whose unit had as
// many kinds as the processor's bound allows: the fold bucket (stored as
// it is).
const ErrorKindFolded = schema.ErrorKindFolded

// Semantic-convention names the processor reads a failed request's error
// kind from.
const (
	AttrErrorType         = "error.type"
	ExceptionEvent        = "exception"
	AttrExceptionType     = "exception.type"
	AttrRPCGRPCStatusCode = "rpc.grpc.status_code"
	// ErrorTypeOther is semantic conventions' error.type of an error the
	// instrumentation names no kind of: the kind of a failed request
	// without error.type, exception or status class.
	ErrorTypeOther = "_OTHER"
)

// Cohort dimension prefixes (stored as they are: internal/schema).
const (
	DimensionFeatureFlag = schema.DimensionFeatureFlag
	DimensionAttribute   = schema.DimensionAttribute
)

// Semantic-convention names both sides read.
const (
	AttrServiceName              = "service.name"
	AttrServiceVersion           = "service.version"
	AttrDeploymentEnvironment    = "deployment.environment.name"
	AttrDeploymentEnvironmentOld = "deployment.environment"
	AttrHTTPStatusCode           = "http.response.status_code"
	AttrHTTPStatusCodeOld        = "http.status_code"
	AttrHTTPResponseBodySize     = "http.response.body.size"
	AttrHTTPRequestBodySize      = "http.request.body.size"
)

// Peer attributes of a call event, in the order DecodeCall prefers them: the
// name of the called service when the caller knows it, else the address or
// system it called.
var PeerAttributes = []string{
	"peer.service", "server.address", "net.peer.name", "db.system.name", "db.system",
	"messaging.system", "rpc.system",
}

// Deployment event attributes.
const (
	AttrDeploymentID      = "deployment.id"                            // string, changelens' deterministic ID (32 hex chars)
	AttrDeploymentStatus  = "deployment.status"                        // "succeeded" | "failed"
	AttrTaskType          = "cicd.pipeline.task.type"                  // always "deploy"
	AttrSource            = "changelens.deployment.source"             // "explicit" | "inferred"
	AttrPreviousVersion   = "changelens.deployment.previous_version"   // string, "" when unknown
	AttrRollbackCandidate = "changelens.deployment.rollback_candidate" // bool: the unit ran this version before
	AttrExternalID        = "changelens.deployment.external_id"        // string: the CI system's deployment.id, if it sent one
	AttrCommitSHA         = "vcs.ref.head.revision"                    // string
	AttrCommitTime        = "changelens.commit.time"                   // int, unix nanoseconds; absent when unknown
	AttrPipelineName      = "cicd.pipeline.name"                       // string, passed through from the CI span
	AttrPipelineRunID     = "cicd.pipeline.run.id"                     // string, passed through from the CI span
	// AttrRework is what a deploy's source says of it: "hotfix" or "revert"
	// (DORA's rework). Passed through from the CI span or webhook.
	AttrRework = "changelens.deployment.rework"
)

// Rework marks (AttrRework).
const (
	ReworkHotfix = "hotfix"
	ReworkRevert = "revert"
)

// Values.
const (
	TaskTypeDeploy  = "deploy"
	SourceExplicit  = "explicit"
	SourceInferred  = "inferred"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
)

// Incident event attributes. The unit is the resource's (and repeated on
// the span, as for deployments).
const (
	AttrIncidentID       = "changelens.incident.id"       // string: the source's stable ID, prefixed by the source ("pagerduty:Q1ABC")
	AttrIncidentSource   = "changelens.incident.source"   // IncidentSource*
	AttrIncidentStatus   = "changelens.incident.status"   // IncidentOpen | IncidentResolved
	AttrIncidentSeverity = "changelens.incident.severity" // string, as the source says it
	AttrIncidentTitle    = "changelens.incident.title"    // string
	// AttrIncidentDeploymentID is the deployment the source blames, when it
	// names one (changelens' ID or the CI system's deployment.id).
	AttrIncidentDeploymentID = "changelens.incident.deployment_id"
)

// Incident sources and statuses.
const (
	IncidentSourcePagerDuty    = "pagerduty"
	IncidentSourceAlertmanager = "alertmanager"
	IncidentSourceCDEvents     = "cdevents"
	IncidentSourceOTLP         = "otlp"
	IncidentOpen               = "open"
	IncidentResolved           = "resolved"
)

// Commit event attributes, besides AttrServiceName (the service the
// repository is, also the resource's) and AttrCommitSHA (the commit).
const (
	AttrCommitRepository = "changelens.commit.repository" // string: the repository's full name ("owner/name")
	AttrCommitRef        = "vcs.ref.head.name"            // string: the ref the push updated ("refs/heads/main")
	// AttrCommitPushedTime is when the push that carried the commit
	// happened (int, unix nanoseconds); absent when unknown.
	AttrCommitPushedTime = "changelens.commit.pushed_time"
)

// AttrSupersededBy marks an inferred deployment that a later explicit deploy
// span of the same unit and version replaced; readers drop rows carrying it.
const AttrSupersededBy = "changelens.deployment.superseded_by"
