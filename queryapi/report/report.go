// Package report holds what the query API reports — units, latency series,
// deployments with their change-failure analysis, DORA figures — and the
// Source interface through which the API server obtains them. The server
// (queryapi/server) turns these into protobuf messages; the ClickHouse-backed
// implementation computes them.
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

// FailureReason says why a deployment is a change failure.
type FailureReason int

const (
	ReasonRolledBack FailureReason = iota + 1
	ReasonLatencyRegression
	ReasonErrorRateRegression
)

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
}

// DeploymentQuery lists deployments with DeployTime in [Start, End), newest first.
type DeploymentQuery struct {
	Service     string // optional
	Environment string // optional
	Start, End  time.Time
	PageSize    int
	PageToken   string // opaque, from a previous page
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
}

// Interval of DORA buckets.
type Interval int

const (
	IntervalAll Interval = iota
	IntervalDay
	IntervalWeek
	IntervalMonth
)

// DORAQuery selects the DORA figures over [Start, End) of one environment.
type DORAQuery struct {
	Service     string // optional
	Environment string // required (the server defaults it to "production")
	Start, End  time.Time
	Interval    Interval
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

// Reasons of a gate answer.
const (
	GateReasonLatencyRegression   = "LATENCY_REGRESSION"
	GateReasonErrorRateRegression = "ERROR_RATE_REGRESSION"
	GateReasonInsufficientData    = "INSUFFICIENT_DATA"
	GateReasonNoDeployment        = "NO_DEPLOYMENT"
	GateReasonNoBaseline          = "NO_BASELINE"
)

// GateAnswer is a gate's decision and what it rests on.
type GateAnswer struct {
	Result       GateResult
	Mode         GateMode // 0 when there was nothing to judge
	Reasons      []string
	DeploymentID string // "" when no deployment of the version was found
	Control      Cohort // the baseline
	Treatment    Cohort // the version asked about
	// OverlapMinutes: CANARY, the minutes both served; BEFORE_AFTER, 0.
	OverlapMinutes int
	Metrics        []CompareMetric
	EvaluatedAt    time.Time
	Explanation    string // one sentence a person can act on
}
