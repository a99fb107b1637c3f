// Package report is the query side's model: what the API reports — units,
// latency series, deployments with their verdicts, causes and
// change-failure analysis, DORA figures, same-window comparisons, gate
// answers, the service graph — the queries that ask for them, and the
// Source interface through which the API server obtains them. The server
// (queryapi/server) maps these to protobuf (one table per enum);
// queryapi/usecase computes them.
package report

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned for an unknown deployment ID (HTTP 404).
var ErrNotFound = errors.New("not found")

// InvalidArgumentError is returned for input a Source rejects (HTTP 400); the
// server validates most input before calling a Source.
type InvalidArgumentError struct{ Reason string }

func (e *InvalidArgumentError) Error() string { return e.Reason }

// Unit is a deployed unit seen in the data.
type Unit struct {
	Service     string
	Environment string
	Versions    []string // newest last-seen first
	FirstSeen   time.Time
	LastSeen    time.Time
}

// GroupBy splits latency series.
type GroupBy int

const (
	GroupByNone GroupBy = iota
	GroupByVersion
	GroupByOperation
)

// LatencyQuery selects latency data; Operation and Version are optional filters.
type LatencyQuery struct {
	Service     string
	Environment string
	Operation   string
	Version     string
	Start, End  time.Time // [Start, End)
	Step        time.Duration
	GroupBy     GroupBy
}

// LatencyPoint is one (time bucket, group) of a series, or one group of a summary
// (Time = query start). Counts are weighted by the sampling weight.
type LatencyPoint struct {
	Time       time.Time
	Group      string // "" with GroupByNone
	Count      float64
	ErrorCount float64
	ErrorRate  float64 // ErrorCount / Count, 0 when Count is 0
	P50Ms      float64
	P90Ms      float64
	P95Ms      float64
	P99Ms      float64
}

// DeploySource says how a deployment was detected.
type DeploySource int

const (
	SourceExplicit DeploySource = iota + 1
	SourceInferred
)

// Verdict of the before/after comparison (docs/analysis.md).
type Verdict int

const (
	VerdictPending Verdict = iota + 1
	VerdictInsufficientData
	VerdictNoChange
	VerdictImproved
	VerdictDegraded
	// VerdictCausedByDependency: the unit's metrics regressed, but the
	// regression is explained by a concurrent change elsewhere — a callee's
	// or caller's deployment, a feature flag's variant share — named by
	// Deployment.Cause; not the deployment's change failure.
	VerdictCausedByDependency
)

// String is the verdict's name without the API's prefix ("DEGRADED", …), as
// stored verdicts, notifications and metrics carry it.
func (v Verdict) String() string {
	switch v {
	case VerdictPending:
		return "PENDING"
	case VerdictInsufficientData:
		return "INSUFFICIENT_DATA"
	case VerdictNoChange:
		return "NO_CHANGE"
	case VerdictImproved:
		return "IMPROVED"
	case VerdictDegraded:
		return "DEGRADED"
	case VerdictCausedByDependency:
		return "CAUSED_BY_DEPENDENCY"
	}
	return "UNKNOWN"
}

// CompareVerdict is the verdict of a same-window cohort comparison
// (treatment against control), per metric and overall.
type CompareVerdict int

const (
	CompareInsufficientData CompareVerdict = iota + 1
	CompareNoDifference
	CompareBetter
	CompareWorse
)

// String is the compare verdict's name without the API's prefix ("WORSE", …).
func (v CompareVerdict) String() string {
	switch v {
	case CompareInsufficientData:
		return "INSUFFICIENT_DATA"
	case CompareNoDifference:
		return "NO_DIFFERENCE"
	case CompareBetter:
		return "BETTER"
	case CompareWorse:
		return "WORSE"
	}
	return "UNKNOWN"
}

// FailureReason says why a deployment is a change failure.
type FailureReason int

const (
	ReasonRolledBack FailureReason = iota + 1
	ReasonLatencyRegression
	ReasonErrorRateRegression
	// ReasonIncident: an incident followed the deployment (docs/dora.md).
	ReasonIncident
	// ReasonNewErrorKind: the deployed version fails with an error kind
	// the baseline never showed, at a significant rate (docs/analysis.md,
	// "New error kinds").
	ReasonNewErrorKind
)

// String is the reason's name without the API's prefix ("ROLLED_BACK", …).
func (r FailureReason) String() string {
	switch r {
	case ReasonRolledBack:
		return "ROLLED_BACK"
	case ReasonLatencyRegression:
		return "LATENCY_REGRESSION"
	case ReasonErrorRateRegression:
		return "ERROR_RATE_REGRESSION"
	case ReasonIncident:
		return "INCIDENT"
	case ReasonNewErrorKind:
		return "NEW_ERROR_KIND"
	}
	return "UNKNOWN"
}

// ParseVerdict, ParseCompareVerdict and ParseFailureReason invert String;
// ok is false for any other name. Stored data name enum values, never their
// order numbers, so reordering an enum changes no stored meaning.
func ParseVerdict(s string) (Verdict, bool) {
	return parseName(s, VerdictPending, VerdictCausedByDependency)
}

// ParseCauseKind inverts CauseKind.String.
func ParseCauseKind(s string) (CauseKind, bool) {
	return parseName(s, CauseOwnDeployment, CauseFeatureFlag)
}

// ParseCompareVerdict inverts CompareVerdict.String.
func ParseCompareVerdict(s string) (CompareVerdict, bool) {
	return parseName(s, CompareInsufficientData, CompareWorse)
}

// ParseFailureReason inverts FailureReason.String.
func ParseFailureReason(s string) (FailureReason, bool) {
	return parseName(s, ReasonRolledBack, ReasonNewErrorKind)
}

func parseName[E interface {
	~int
	String() string
}](s string, first, last E) (E, bool) {
	for e := first; e <= last; e++ {
		if e.String() == s {
			return e, true
		}
	}
	return 0, false
}

// Deployment is one deployment after merging duplicate rows, with its analysis.
type Deployment struct {
	ID              string
	Service         string
	Environment     string
	Version         string
	PreviousVersion string
	DeployTime      time.Time
	RolloutStart    time.Time
	Source          DeploySource
	Failed          bool // a failed deploy attempt: listed, never counted in DORA figures
	CommitSHA       string
	CommitTime      time.Time // zero when unknown
	LeadTime        time.Duration
	HasLeadTime     bool // commit time known and lead time > 0
	Rollback        bool // deploys a version the unit ran before the previous deployment
	ChangeFailure   bool
	FailureReasons  []FailureReason
	RestoreTime     time.Time // zero when not (yet) restored or not a failure
	TimeToRestore   time.Duration
	Verdict         Verdict
	// Regressions are the regressed metrics behind a DEGRADED verdict —
	// of the unit as a whole and of single operations — strongest evidence
	// first.
	Regressions []Regression
	// Explanation is the verdict in one sentence a person can act on.
	Explanation string
	// Cause is the change a CAUSED_BY_DEPENDENCY verdict names; nil
	// otherwise.
	Cause *Cause
	// ReworkMark is what the deployment's source said of it ("hotfix",
	// "revert"; "" for nothing), ReworkReason why it counts as rework
	// (DORA's deployment rework rate), 0 when it does not.
	ReworkMark   string
	ReworkReason ReworkReason
}

// ReworkReason is why a deployment counts as rework: it was not planned but
// made to fix a user-facing problem (DORA 2024 onwards).
type ReworkReason int

const (
	ReworkRollback   ReworkReason = iota + 1 // deploys a version the unit ran before
	ReworkFixForward                         // follows a failed change of the unit within the fix-forward window
	ReworkHotfix                             // its source marked it a hotfix
	ReworkRevert                             // its source marked it a revert
)

// String is the reason's name without the API's prefix ("FIX_FORWARD", …).
func (r ReworkReason) String() string {
	switch r {
	case ReworkRollback:
		return "ROLLBACK"
	case ReworkFixForward:
		return "FIX_FORWARD"
	case ReworkHotfix:
		return "HOTFIX"
	case ReworkRevert:
		return "REVERT"
	}
	return ""
}

// Source marks of a deployment (ReworkMark).
const (
	ReworkMarkHotfix = "hotfix"
	ReworkMarkRevert = "revert"
)

// CauseKind is the kind of change a regression is attributed to.
type CauseKind int

const (
	CauseOwnDeployment    CauseKind = iota + 1 // the judged deployment itself
	CauseCalleeDeployment                      // a deployment of a unit the judged unit calls
	CauseCallerDeployment                      // a deployment of a unit that calls the judged unit
	CauseFeatureFlag                           // a feature flag's variant shares changed
)

// String is the kind's name without the API's prefix ("CALLEE_DEPLOYMENT", …).
func (k CauseKind) String() string {
	switch k {
	case CauseOwnDeployment:
		return "OWN_DEPLOYMENT"
	case CauseCalleeDeployment:
		return "CALLEE_DEPLOYMENT"
	case CauseCallerDeployment:
		return "CALLER_DEPLOYMENT"
	case CauseFeatureFlag:
		return "FEATURE_FLAG"
	}
	return "UNKNOWN"
}

// Cause is one change that overlapped a deployment's windows, with the
// evidence that it explains the deployment's regression (docs/analysis.md,
// "Attribution").
type Cause struct {
	Kind CauseKind
	// The deployment (own, callee or caller): its id and unit.
	DeploymentID, Service, Environment, Version string
	// For a feature flag: its key and the variant whose share rose most.
	Flag, Variant string
	// Start and End bound the change: a deployment's rollout, a flag's
	// minute of change.
	Start, End time.Time
	// Metric is the decomposed metric: "latency_mean_ms" (milliseconds per
	// request of the judged unit) or "error_rate".
	Metric string
	// Before and After are the change's component of the judged unit's
	// metric in the quarter-hours either side of the change (the judged
	// unit's self time, its time waiting on the callee, the flag's mix, the
	// caller's excess); Explained = the change of it net of the controls'
	// shift, with Z its standardized evidence; Share = Explained ÷ the
	// unit's own change at its deployment.
	Before, After, Explained, Share, Z float64
	// Significant: Z at least the attribution threshold.
	Significant bool
	// Rank orders the changes, 1 = the most likely cause.
	Rank int
}

// Neighbour is a unit the judged unit calls or is called by, in its
// windows: the service graph around the deployment.
type Neighbour struct {
	Service, Environment string // Environment "" for an uninstrumented peer
	// Callee: the judged unit calls it; else it calls the judged unit.
	Callee bool
	// Calls per minute, their mean duration (ms) and error rate in the
	// deployment's before and after windows: a callee's as the judged unit
	// timed its calls, a caller's as the judged unit served them.
	CallsPerMinuteBefore, CallsPerMinuteAfter float64
	MeanMsBefore, MeanMsAfter                 float64
	ErrorRateBefore, ErrorRateAfter           float64
	// Deployments are the ids of its deployments in the windows.
	Deployments []string
}

// GraphEdge is the calls from one unit to another (or to an uninstrumented
// peer: CalleeEnvironment "") over a range, as the caller counted and timed
// them.
type GraphEdge struct {
	CallerService, CallerEnvironment string
	CalleeService, CalleeEnvironment string
	Calls, Errors, DurationMs        float64
}

// GraphQuery asks for the service graph of Environment over [Start, End),
// optionally only the edges from or to Service.
type GraphQuery struct {
	Environment, Service string
	Start, End           time.Time
}

// Attribution is what a deployment's regression was attributed to.
type Attribution struct {
	// Causes are the changes overlapping the windows, most likely first.
	Causes []Cause
	// Neighbours are the units calling or called by the judged unit.
	Neighbours []Neighbour
}

// Regression is one regressed metric of a deployment, of the unit as a
// whole (Operation "" and not Remainder) or of one operation.
type Regression struct {
	Operation string
	// Remainder: the operations with too little traffic to be judged one by
	// one, pooled.
	Remainder bool
	Metric    string
	// Before and After (the after side at the before window's mix of
	// operations for the unit), RelativeChange = After ÷ Before − 1 with its
	// 95 % interval (CIHigh +Inf when open-ended).
	Before, After                 float64
	RelativeChange, CILow, CIHigh float64
	BeforeRequests, AfterRequests float64
	// ErrorKind and FirstTraceID (Metric "new_error_kind"): the new error
	// kind and its first trace after the deployment; Before and After are
	// its rates, RelativeChange +Inf, CILow and CIHigh the after rate's
	// 95 % interval.
	ErrorKind, FirstTraceID string
}

// ErrorKinds is the new-error-kind rule's answer (docs/analysis.md, "New
// error kinds"): a deployment's after window against its before window
// (and the history before it), or a comparison's treatment against its
// control in the minutes both served.
type ErrorKinds struct {
	// Tested: both sides had the minimum of requests.
	Tested bool
	// NewErrorKind: a kind absent from the baseline is WORSE (the
	// deployment's NEW_ERROR_KIND).
	NewErrorKind bool
	// BeforeRequests and AfterRequests are the sides' weighted requests
	// (control and treatment for a comparison), HistoryRequests the
	// history lookback's (0: none read).
	BeforeRequests, AfterRequests, HistoryRequests float64
	// Family is the number of kinds tested (Tarone); MDE the smallest rate
	// of a new kind found with the configured power (+Inf: none; NaN: not
	// tested).
	Family int
	MDE    float64
	// New are the kinds absent from the baseline and seen after, strongest
	// evidence first; Rose the known kinds whose rate rose (WORSE).
	New, Rose []ErrorKind
	// Explanation names the new kinds and those that rose, or says none.
	Explanation string
}

// ErrorKind is one error kind's figures and verdict.
type ErrorKind struct {
	Kind string
	// Folded: the bucket of the kinds beyond the unit's bound (never new).
	Folded, New bool
	// Verdict: WORSE (new: NEW_ERROR_KIND; known: rose), NO_DIFFERENCE,
	// or INSUFFICIENT_DATA (not tested).
	Verdict CompareVerdict
	// Before and After are the weighted occurrences, the rates those over
	// the sides' requests; RateLow and RateHigh the after rate's 95 %
	// interval.
	Before, After, BeforeRate, AfterRate, RateLow, RateHigh float64
	// RateRatio = AfterRate ÷ BeforeRate (+Inf for a kind absent before)
	// with its 95 % interval.
	RateRatio, RatioLow, RatioHigh float64
	// Phi is the dispersion the counts were deflated by; Minutes the
	// minutes of the after side holding the kind.
	Phi     float64
	Minutes int
	// PValue is one-sided (a rise), AdjustedPValue family-wise (Holm).
	PValue, AdjustedPValue float64
	Test                   string
	// FirstTraceID (hex) and FirstSeen: the kind's first occurrence after.
	FirstTraceID string
	FirstSeen    time.Time
}

// Incident statuses (Incident.Status).
const (
	IncidentOpen     = "open"
	IncidentResolved = "resolved"
)

// Incident is one incident as it affected one unit, linked to the
// deployment it followed.
type Incident struct {
	ID          string // the source's stable ID ("pagerduty:Q1ABC")
	Source      string // pagerduty, alertmanager, cdevents, otlp
	Status      string // IncidentOpen or IncidentResolved
	Severity    string
	Title       string
	Service     string
	Environment string
	Opened      time.Time
	Resolved    time.Time // zero while open
	// DeploymentID is the deployment the source named ("" for none);
	// LinkedDeploymentID the one changelens linked it to: the one named,
	// else the unit's live deployment when the incident opened ("" when
	// none is known).
	DeploymentID       string
	LinkedDeploymentID string
}

// IncidentQuery lists the incidents opened in [Start, End), oldest first.
type IncidentQuery struct {
	Service string // optional
	// Services (optional: a team's) keeps only these services.
	Services    []string
	Environment string
	Start, End  time.Time
}

// DeploymentQuery lists deployments with DeployTime in [Start, End), newest first.
type DeploymentQuery struct {
	Service string // optional
	// Services (optional: a team's) keeps only these services.
	Services    []string
	Environment string // optional
	// CauseKind (optional) keeps deployments whose verdict names a cause of
	// this kind (a DEGRADED one: CauseOwnDeployment); CausedBy (optional)
	// those whose verdict names this deployment id or flag key.
	CauseKind  CauseKind
	CausedBy   string
	Start, End time.Time
	PageSize   int
	PageToken  string // opaque, from a previous page
}

// Window is one side of an impact comparison.
type Window struct {
	Start, End time.Time
	Requests   float64 // weighted
	Errors     float64 // weighted
	ErrorRate  float64
	P50Ms      float64
	P95Ms      float64
	P99Ms      float64
}

// Test is one statistical test of an impact analysis.
type Test struct {
	Name        string  // e.g. "mann-whitney-u (per-minute p95)", "two-proportion-z", "fisher-exact"
	Statistic   float64 // U or z; for Fisher the odds ratio
	PValue      float64 // one-sided, in the direction tested
	Significant bool    // PValue < alpha
	Direction   string  // "increase" or "decrease": the alternative tested
}

// ImpactMetric is one guarded metric (p95, p99, error rate) of a
// deployment's before/after judgement, of the unit or of one operation
// (docs/analysis.md).
type ImpactMetric struct {
	Metric string // latency_p95_ms, latency_p99_ms, error_rate
	// Before and After: milliseconds, or error rates. For the unit the after
	// side is taken at the before window's mix of operations, as the test
	// compares them.
	Before, After float64
	// RelativeChange = After ÷ Before − 1 (NaN when Before is 0) with its
	// 95 % interval (CIHigh +Inf when open-ended; for the error rate the
	// exact interval of the rate ratio − 1).
	RelativeChange, CILow, CIHigh float64
	// MDE is the smallest relative rise the test detects with 80 % power at
	// this sample size, never below the practical floor (+Inf when none up
	// to 20×; NaN when Before is 0); MDEValue is the after value at the MDE
	// (ms, or an error rate): "nothing larger than MDEValue".
	MDE, MDEValue float64
	// PValue is one-sided, in the direction the metric moved;
	// AdjustedPValue the family-wise (weighted Holm) adjusted one.
	PValue, AdjustedPValue float64
	// Z is the standardized evidence of a rise (negative for a fall): the
	// ranking of regressions.
	Z    float64
	Test string
	// Against a control (Impact.Control): RawChange is after ÷ before − 1
	// of the unit itself, ControlChange what the control series did
	// meanwhile, and RelativeChange (with its interval) the difference, what
	// is judged; NaN without a control.
	RawChange, ControlChange float64
	// Verdict: WORSE a regression, BETTER an improvement, NO_DIFFERENCE,
	// or INSUFFICIENT_DATA (not tested).
	Verdict CompareVerdict
}

// Control is what a before/after judgement compared the deployed unit
// with (docs/analysis.md, "Controls").
type Control struct {
	// Kind: "environment" (other units of the environment that did not
	// deploy), "service_elsewhere" (the same service in other environments),
	// "previous_day" (the unit a day earlier) or "none" (the plain
	// before/after comparison).
	Kind string
	// Series names the control series ("service/environment").
	Series []string
	// Shifts are what the controls did to each metric meanwhile.
	Shifts []ControlShift
}

// ControlShift is a control's change of one metric between the windows,
// with its 95 % interval (the series' spread included).
type ControlShift struct {
	Metric                string
	Change, CILow, CIHigh float64
}

// OperationImpact is one operation (or the pooled remainder) of a
// deployment's before/after judgement.
type OperationImpact struct {
	Operation string // "" for the remainder
	// Remainder pools the operations with too little traffic to be judged
	// one by one (they still count in the unit's tests).
	Remainder bool
	// Operations is the number of operations (1 unless Remainder).
	Operations                    int
	BeforeRequests, AfterRequests float64
	// Judged: enough requests in both windows to be judged on its own.
	Judged  bool
	Metrics []ImpactMetric
	// Verdict: WORSE when any metric regressed.
	Verdict CompareVerdict
	// Rank orders the regressed operations by evidence (1 = strongest);
	// 0 when not regressed.
	Rank int
}

// Impact is the before/after analysis of one deployment.
type Impact struct {
	Deployment      Deployment
	Before, After   Window
	LatencyRatio    float64 // after p95 / before p95 (0 when before is 0)
	ErrorRateDelta  float64 // after − before
	LatencyTest     Test
	ErrorRateTest   Test
	Verdict         Verdict
	Reasons         []FailureReason
	WindowsComplete bool // false while the after window is still open (PENDING)
	// Canary is the new version against the previous one in the minutes
	// both served (rollout start to after-window end); nil when none.
	Canary *Comparison
	// Metrics are the unit's guarded metrics (all operations), Operations
	// every operation, regressed ones first by rank (docs/analysis.md).
	Metrics    []ImpactMetric
	Operations []OperationImpact
	// RequestsNeeded: about this many requests per window would detect a
	// rise of p95 as large as the practical floor.
	RequestsNeeded float64
	// Control is what the metrics were judged against.
	Control Control
	// Attribution ranks the changes that overlapped the windows by how
	// much of a regression each explains (empty when nothing regressed).
	Attribution Attribution
	// ErrorKinds are the new error kinds and those that rose (nil: not
	// read).
	ErrorKinds *ErrorKinds
	// Explanation is the verdict in one sentence a person can act on.
	Explanation string
}

// Interval of DORA buckets.
type Interval int

const (
	IntervalAll Interval = iota
	IntervalDay
	IntervalWeek
	IntervalMonth
	IntervalQuarter // calendar quarters, UTC
)

// DORAQuery selects the DORA figures over [Start, End) of one environment.
type DORAQuery struct {
	Service string // optional
	// Services (optional: a team's) counts only these services.
	Services    []string
	Environment string // required (the server defaults it to "production")
	Start, End  time.Time
	Interval    Interval
	// Edition is the DORA report the figures are benchmarked against
	// (Editions; "" for DefaultEdition).
	Edition string
}

// DORA report editions figures can be benchmarked against: the 2021,
// 2023 or 2024 report's four performance clusters, or the 2025 report's distributions
// (a 0–10 score per metric against the industry's, no clusters).
const (
	Edition2021    = "2021"
	Edition2023    = "2023"
	Edition2024    = "2024"
	Edition2025    = "2025"
	DefaultEdition = Edition2025
)

// Editions are the editions a DORA report can be benchmarked against.
var Editions = []string{Edition2021, Edition2023, Edition2024, Edition2025}

// MetricBenchmark is one metric's figure placed against an edition: a
// cluster (2023) or a 0–10 score with the industry's mean and standard
// deviation and the share of respondents scoring lower (2025).
type MetricBenchmark struct {
	Metric  string // deployment_frequency, lead_time, change_failure_rate, failed_deployment_recovery_time, rework_rate
	Edition string
	Tier    Tier // 2021, 2023, 2024; TierUnknown with 2025 or too few samples
	// 2025: Score is 0 (worst) … 10 (best) and Percentile the share of the
	// industry scoring below (normal approximation), both only when Scored
	// (enough samples); IndustryMean and IndustryStd the score's
	// distribution over all industries. Zero otherwise — no NaN, so two
	// reports of the same data compare equal.
	Scored                    bool
	Score, Percentile         float64
	IndustryMean, IndustryStd float64
}

// Tier is a DORA 2023 performance cluster.
type Tier int

const (
	TierUnknown Tier = iota
	TierLow
	TierMedium
	TierHigh
	TierElite
)

// DORAFigures are the four keys over one range (docs/dora.md).
type DORAFigures struct {
	Start, End                 time.Time
	DeploymentCount            int
	DeploymentFrequencyPerDay  float64
	ChangeCount                int // deployments − rollbacks
	FailedChangeCount          int
	ChangeFailureRate          float64 // failed ÷ changes; 0 when there are no changes
	LeadTimeMedianSeconds      float64
	LeadTimeSampleCount        int
	TimeToRestoreMedianSeconds float64
	RestoreSampleCount         int
	FrequencyTier              Tier
	LeadTimeTier               Tier
	ChangeFailureRateTier      Tier
	TimeToRestoreTier          Tier
	// Rework (DORA 2024 onwards): deployments made to fix a user-facing
	// problem (rollbacks, fix-forwards, hotfixes, reverts) ÷ deployments.
	ReworkCount int
	ReworkRate  float64
	// Benchmarks place the five figures against the query's edition.
	Benchmarks []MetricBenchmark
}

// DORAReport is the summary over the whole range plus one entry per interval bucket.
type DORAReport struct {
	Summary   DORAFigures
	Intervals []DORAFigures
}

// CompareQuery compares two cohorts of one unit over [Start, End), in the
// minutes both served.
type CompareQuery struct {
	Service, Environment string
	Start, End           time.Time
	Dimension            string // "version" (or ""), "feature_flag.<key>", "attribute.<name>"
	Control, Treatment   string
	Operation            string  // optional
	ExpectedShare        float64 // optional treatment share in (0, 1): the SRM check
}

// CompareMetric is one metric of a comparison (docs/analysis.md).
type CompareMetric struct {
	Metric                        string
	Control, Treatment            float64
	RelativeChange, CILow, CIHigh float64
	PValue                        float64
	Test                          string
	Verdict                       CompareVerdict
}

// Cohort is one side of a comparison.
type Cohort struct {
	Value           string
	Requests, Share float64
	// Traces worth opening: the slowest request's and the latest failed
	// one's (hex; "" when none). Set on the whole comparison only.
	SlowestTraceID, FailedTraceID string
}

// SampleRatio is the sample-ratio-mismatch check of a split.
type SampleRatio struct {
	ExpectedShare, ObservedShare, PValue float64
	Mismatch                             bool
}

// Comparison is a same-window comparison of two cohorts.
type Comparison struct {
	Control, Treatment Cohort
	OverlapMinutes     int
	Metrics            []CompareMetric
	Verdict            CompareVerdict
	SRM                *SampleRatio // nil without an expected share
	// Operations are the same comparison per operation, busiest first (at
	// most 10; absent when the query names an operation or spans more
	// than a day).
	Operations []OperationComparison
	// ErrorKinds: the treatment's error kinds against the control's in the
	// minutes both served (the control as the baseline; nil: not read).
	ErrorKinds *ErrorKinds
}

// OperationComparison is the comparison of one operation.
type OperationComparison struct {
	Operation          string
	Control, Treatment Cohort
	OverlapMinutes     int
	Metrics            []CompareMetric
	Verdict            CompareVerdict
}

// CohortQuery lists the cohort dimensions of one unit over [Start, End).
type CohortQuery struct {
	Service, Environment string
	Start, End           time.Time
}

// CohortValue is one value of a dimension with its weighted requests.
type CohortValue struct {
	Value    string
	Requests float64
}

// CohortDimension is a dimension and the values seen, busiest first.
type CohortDimension struct {
	Dimension string
	Values    []CohortValue
}

// Source answers the API's questions. Implementations must parameterize all
// SQL, be read-only, and respect ctx deadlines.
type Source interface {
	Units(ctx context.Context, environment string) ([]Unit, error)
	Latency(ctx context.Context, q LatencyQuery) ([]LatencyPoint, error)
	LatencySummary(ctx context.Context, q LatencyQuery) ([]LatencyPoint, error)
	Deployments(ctx context.Context, q DeploymentQuery) (deps []Deployment, nextPageToken string, err error)
	Impact(ctx context.Context, deploymentID string) (Impact, error)
	DORA(ctx context.Context, q DORAQuery) (DORAReport, error)
	Compare(ctx context.Context, q CompareQuery) (Comparison, error)
	Cohorts(ctx context.Context, q CohortQuery) ([]CohortDimension, error)
	Gate(ctx context.Context, q GateQuery) (GateAnswer, error)
	Graph(ctx context.Context, q GraphQuery) ([]GraphEdge, error)
	Incidents(ctx context.Context, q IncidentQuery) ([]Incident, error)
}

// GateQuery asks whether the rollout of Version of one unit may continue.
type GateQuery struct {
	Service, Environment, Version string
	// BaselineVersion is what the version is compared with; "": the
	// version its latest deployment replaced.
	BaselineVersion string
}

// GateResult is a gate's answer.
type GateResult int

const (
	GatePass GateResult = iota + 1
	GateFail
	GateInconclusive
)

// GateMode is how a gate judged.
type GateMode int

const (
	// GateCanary: both versions are serving; the same-window comparison
	// with a sequential test.
	GateCanary GateMode = iota + 1
	// GateBeforeAfter: the version replaced the baseline; the before/after
	// windows of its deployment so far.
	GateBeforeAfter
)

// GateReason is why a gate answered as it did; its value is the API's
// string (gate answers carry reasons as strings, so that a controller's
// analysis template can match them).
type GateReason string

// Reasons of a gate answer.
const (
	GateReasonLatencyRegression   GateReason = "LATENCY_REGRESSION"
	GateReasonErrorRateRegression GateReason = "ERROR_RATE_REGRESSION"
	GateReasonNewErrorKind        GateReason = "NEW_ERROR_KIND"
	GateReasonInsufficientData    GateReason = "INSUFFICIENT_DATA"
	GateReasonNoDeployment        GateReason = "NO_DEPLOYMENT"
	GateReasonNoBaseline          GateReason = "NO_BASELINE"
)

// GateAnswer is a gate's decision and what it rests on.
type GateAnswer struct {
	Result       GateResult
	Mode         GateMode // 0 when there was nothing to judge
	Reasons      []GateReason
	DeploymentID string // "" when no deployment of the version was found
	Control      Cohort // the baseline
	Treatment    Cohort // the version asked about
	// OverlapMinutes: CANARY, the minutes both served; BEFORE_AFTER, 0.
	OverlapMinutes int
	Metrics        []CompareMetric
	// Regressions (BEFORE_AFTER): the regressed metrics of the unit and of
	// its operations so far, strongest evidence first.
	Regressions []Regression
	EvaluatedAt time.Time
	Explanation string // one sentence a person can act on
}
