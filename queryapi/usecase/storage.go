package usecase

import (
	"context"
	"time"

	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/store"
)

// The Service reads through these interfaces rather than *store.Store so
// that the use cases — timelines, judging, the gate, comparisons, the
// caches — can be tested in memory (testkit/fakestore) in milliseconds,
// leaving to ClickHouse-backed tests only what the SQL itself decides. Each
// groups the reads of one kind of data; the row types stay the store's
// (store.CohortMinute, store.WindowPair, …), so a fake returns exactly what
// the real reader does. *store.Store implements them all.

// DeploymentReader reads the deployment history: CI deployment rows and the
// version episodes inferred deployments come from.
type DeploymentReader interface {
	// DeploymentRows: the CI deployments with deploy time in [from, to)
	// (failed attempts included) plus each unit's 4 latest successful ones
	// in [before, from) and 4 earliest in [to, after); inRange counts the
	// rows in [from, to), at most limit+1.
	DeploymentRows(ctx context.Context, f store.UnitFilter, from, to, before, after time.Time, limit int) (rows []analysis.Row, inRange int, err error)
	// DeploymentByID: the unit, deploy time and superseded_by of a stored
	// deployment; found is false when no row has the ID.
	DeploymentByID(ctx context.Context, id string) (unit store.UnitFilter, deployTime time.Time, supersededBy string, found bool, err error)
	// Episodes: the version episodes of the units of f over the
	// store.BucketSize buckets in [since, before) (zero: unbounded), split
	// at gaps of reappear or more.
	Episodes(ctx context.Context, f store.UnitFilter, since, before time.Time, reappear time.Duration) (map[store.UnitFilter]store.UnitEpisodes, error)
	// StoredEpisodes: the newest whole snapshot of settled episodes the
	// worker stored for reappear, restricted to the units of f: their
	// episodes over the buckets before upTo; ok is false without one.
	StoredEpisodes(ctx context.Context, f store.UnitFilter, reappear time.Duration) (upTo time.Time, units map[store.UnitFilter]store.UnitEpisodes, ok bool, err error)
	// InferredUnits: the units whose traffic shows versions.
	InferredUnits(ctx context.Context) ([]store.UnitFilter, error)
}

// IncidentReader reads the incidents the sources reported.
type IncidentReader interface {
	// IncidentRows: the incidents of the units of f opened in [from, to),
	// one per (service, environment, id) in its latest state, oldest first;
	// more than limit is an *report.InvalidArgumentError.
	IncidentRows(ctx context.Context, f store.UnitFilter, from, to time.Time, limit int) ([]report.Incident, error)
}

// WindowReader reads the before/after windows of many deployments at once:
// window j of the result belongs to items[idx[j]] and covers its
// MinuteWindows.
type WindowReader interface {
	// WindowTotals: every window's counts, the fingerprint of its data.
	WindowTotals(ctx context.Context, items []*analysis.Item, idx []int) ([]store.WindowPair, error)
	// OperationWindows: per deployment, its operations with each window
	// merged (counts and latency histogram).
	OperationWindows(ctx context.Context, items []*analysis.Item, idx []int) ([][]analysis.OperationWindows, error)
	// OperationMinutes adds to evidence[j] every minute of its operations,
	// slow requests counted against the thresholds evidence[j] set.
	OperationMinutes(ctx context.Context, items []*analysis.Item, idx []int, evidence []*analysis.Evidence) error
	// ErrorKinds: per deployment, its error kinds minute by minute in its
	// windows and, with history > 0, their occurrences under every other
	// version over the lookback before its before window (with the unit's
	// requests there); nil when the storage has no error kinds (a schema
	// before v13).
	ErrorKinds(ctx context.Context, items []*analysis.Item, idx []int, history time.Duration) ([]store.ErrorKindWindows, error)
}

// VerdictReader reads the verdicts and impact evidence changelens-worker
// stored.
type VerdictReader interface {
	// StoredVerdicts: the stored verdicts of ids judged with the settings
	// configHash (missing IDs have none).
	StoredVerdicts(ctx context.Context, configHash string, ids []string) (map[string]store.StoredVerdict, error)
	// StoredEvidence: the stored impact evidence of ids judged with the
	// settings configHash (missing IDs have none).
	StoredEvidence(ctx context.Context, configHash string, ids []string) (map[string]store.Evidence, error)
}

// LatencyReader reads latency series, summaries and the units seen.
type LatencyReader interface {
	// LatencyPoints: a series (one point per bucket of q.Step and group,
	// ordered by time then group) or a summary (one row per group); more
	// than limit points is an *report.InvalidArgumentError.
	LatencyPoints(ctx context.Context, q report.LatencyQuery, series bool, limit int) ([]report.LatencyPoint, error)
	// UnitRows: the units seen or deployed since since (one environment,
	// or all when empty); more than limit unit versions is an
	// *report.InvalidArgumentError.
	UnitRows(ctx context.Context, environment string, since time.Time, limit int) ([]report.Unit, error)
}

// CohortReader reads what comparisons of cohorts need.
type CohortReader interface {
	// CohortMinutes: the minutes of q's two cohorts over [q.Start, q.End),
	// ordered by (operation,) minute, cohort; more than limit rows is an
	// *report.InvalidArgumentError.
	CohortMinutes(ctx context.Context, q report.CompareQuery, byOperation bool, limit int) ([]store.CohortMinute, error)
	// CohortExemplars: per cohort of q, its slowest and latest failed trace.
	CohortExemplars(ctx context.Context, q report.CompareQuery) (map[string]store.Exemplars, error)
	// CohortValues: the cohort dimensions of one unit and their values,
	// busiest first (at most limit per dimension).
	CohortValues(ctx context.Context, service, environment string, from, to time.Time, limit int) ([]report.CohortDimension, error)
	// CohortErrorKinds: the error kinds of q's two cohorts minute by
	// minute, ordered by minute, cohort, kind; more than limit rows is an
	// *report.InvalidArgumentError; ok false when the storage has no error
	// kinds.
	CohortErrorKinds(ctx context.Context, q report.CompareQuery, limit int) (rows []store.CohortKindMinute, ok bool, err error)
}

// TrafficReader reads, minute by minute, what attribution and controls
// compare a deployment's unit with: the service graph's calls, the callers
// a unit served, units' traffic and feature-flag variants.
type TrafficReader interface {
	// Calls: the calls of environment env over [from, to) — with caller set
	// only that unit's, with byMinute per minute, with sample > 1 of one
	// trace in sample.
	Calls(ctx context.Context, env, caller string, from, to time.Time, byMinute bool, sample uint64) ([]store.Edge, error)
	// Callers: per minute, the requests u served each unit that called it.
	Callers(ctx context.Context, u analysis.UnitKey, from, to time.Time) ([]store.CallerMinute, error)
	// UnitMinutes: the units' per-minute traffic, all versions and
	// operations together.
	UnitMinutes(ctx context.Context, units []analysis.UnitKey, from, to time.Time) ([]store.UnitMinute, error)
	// FlagMinutes: u's traffic per feature flag, variant and minute.
	FlagMinutes(ctx context.Context, u analysis.UnitKey, from, to time.Time) ([]store.FlagMinute, error)
}

// ExperimentReader reads what experiments need beyond the cohort reads.
type ExperimentReader interface {
	// Experiments: the stored experiment definitions, every one for id ""
	// (ordered by id), else at most the one.
	Experiments(ctx context.Context, id string) ([]store.StoredExperiment, error)
	// ResourceUsage: a unit's CPU seconds, memory and requests per version
	// and bucket (schema v14).
	ResourceUsage(ctx context.Context, q store.UsageQuery) ([]store.UsagePoint, error)
	// CohortSelfTime: the self time of q's two cohorts (the CPU proxy where
	// one process serves both); absent cohorts measured none.
	CohortSelfTime(ctx context.Context, q report.CompareQuery) (map[string]store.SelfTime, error)
	// ClientCohorts, Conversions, Retention, UnitCovariates: a client unit's
	// sessions, crashes and loads, conversions to an outcome, retention and
	// per-user values for CUPED, per variant (schema v15).
	ClientCohorts(ctx context.Context, q store.ClientQuery, operations []string, limit int) ([]store.ClientCohort, error)
	Conversions(ctx context.Context, q store.ClientQuery, by store.ConversionsBy, outcome, outcomeService string, limit int) ([]store.Conversion, error)
	Retention(ctx context.Context, q store.ClientQuery, days int, until time.Time, limit int) ([]store.RetentionRow, error)
	UnitCovariates(ctx context.Context, q store.ClientQuery, preFrom time.Time, m store.CovariateMetric, limit int) ([]store.UnitCovariate, error)
}

// Storage is everything a Service reads, and the connection's health and
// end.
type Storage interface {
	DeploymentReader
	IncidentReader
	WindowReader
	VerdictReader
	LatencyReader
	CohortReader
	TrafficReader
	ExperimentReader
	// Ping checks that the storage answers (health checks).
	Ping(ctx context.Context) error
	// Close releases it (called by Service.Close only when Open opened it).
	Close() error
}
