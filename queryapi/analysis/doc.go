// Package analysis computes what changelens reports about deployments —
// duplicate merging, rollbacks, before/after verdicts, change failures,
// restore times, lead times — and the DORA figures, from deployment rows and
// window statistics. It is pure Go: no SQL, no clock (the caller passes
// "now"), no I/O. queryapi/usecase feeds it what queryapi/store reads.
//
// # Deployments
//
// Input rows are deployment events as stored (one per ID after the reader's
// argMax dedupe, superseded rows already dropped). NewTimeline then:
//
//   - Merges duplicates. A CI/CD deploy span and the version change the
//     unit's traffic shows (package inference) describe one rollout; so do
//     two deploy spans of one version (a re-run). Rows of the same unit
//     (service, environment), version and compatible previous version (equal,
//     or one of them unknown) that are adjacent in the unit's sequence of
//     successful deployments and whose deploy times are within
//     Config.MergeWindow (default 1h) of the cluster's earliest row are one
//     deployment. The survivor is the earliest explicit row when the cluster
//     has one ("explicit beats inferred"), else the earliest row; it keeps its
//     own deploy time, ID and commit, takes the earliest rollout start of the
//     cluster and a previous version from the others when it names none, and
//     the other IDs become aliases of it. Failed deploy attempts are never
//     merged.
//   - Orders each unit's successful deployments by deploy time (then ID):
//     that is "the unit's sequence". Failed deploy attempts (status failed)
//     are listed and analysed, but are not deployments: they are not in the
//     sequence, never previous/next deployments, never rollbacks, never change
//     failures and never counted in DORA figures.
//   - Rollback: deployment N with previous deployment P is a rollback when it
//     deploys a version different from P's and that version ran before P:
//     P's previous version, or a version or previous version of any earlier
//     deployment in the timeline, or inference found that the unit served N's
//     version before (this covers history older than the rows read). P is
//     then ROLLED_BACK.
//
// # Windows
//
// For a deployment at time t: before = [t − 30m, t) cut at the previous
// deployment of the unit, after = [t + 2m, t + 32m) cut at the next one.
// Statistics come from the per-minute rollup, so windows are used as whole
// minutes: a minute belongs to a window when it lies entirely inside it
// (MinuteSpan). The minute containing t therefore belongs to neither side.
// A window is closed when now ≥ its (cut) end; an after window that is not
// closed gives PENDING (with the statistics so far, for display).
//
// # Verdict (docs/analysis.md), Decide (decide.go)
//
//   - Fewer than MinRequests (50) weighted requests in either window →
//     INSUFFICIENT_DATA.
//   - Latency regression: after-p95 ≥ 1.2 × before-p95 (both from the merged
//     t-digest of the whole window) and a one-sided Mann-Whitney U test at
//     α = 0.01 says latency rose. The test is Kayenta-style: its observations
//     are the per-minute p95 values of the two windows (about 30 each), not
//     individual requests, so its cost is independent of request volume and
//     it tests whether latency was higher minute after minute rather than in
//     a few outliers. Minutes are the independent units, which is the honest
//     sample size for autocorrelated request latencies.
//   - Error-rate regression: after − before ≥ 0.01 and after ≥ 1.5 × before
//     and a one-sided pooled two-proportion z-test (Fisher's exact test on
//     counts rounded to integers when an expected cell is below 5) at α = 0.01
//     on the weighted counts.
//   - Either → DEGRADED; the mirror image (before and after swapped) →
//     IMPROVED; else NO_CHANGE.
//   - A deployment is a change failure when it is DEGRADED or ROLLED_BACK
//     (PENDING and INSUFFICIENT_DATA are not failures). failure_reasons lists
//     ROLLED_BACK, LATENCY_REGRESSION, ERROR_RATE_REGRESSION in that order.
//     Its restore time is the next deployment of the unit (rollback or fix
//     forward); none yet → empty.
//   - Lead time = deploy time − commit time when the commit time is known and
//     the difference is positive.
//
// # DORA (docs/dora.md), see DORA
//
// Over [start, end) of the deployments given (the caller selects one
// environment): deployment_count counts deployments (rollbacks included,
// failed attempts excluded) with deploy time in range; change_count =
// deployment_count − rollbacks; failed_change_count counts non-rollback
// change failures; change_failure_rate = failed ÷ changes (0 with no
// changes); lead-time median over deployments in range with a lead time
// (rollbacks included, as they are deployments); time-to-restore median over
// the failed changes counted in failed_change_count that have a restore time
// (it may lie after end). Medians of an even count are the mean of the two
// middle values. Buckets (DAY, WEEK, MONTH) are calendar buckets in UTC —
// weeks start on Monday (ISO 8601) — clipped to [start, end); each bucket's
// frequency is its count divided by its clipped length in days.
//
// # Experiments (docs/experiments.md)
//
// ExperimentDefinition is an experiment defined up front (variants and
// their shares, a primary metric with its minimum effect of interest,
// guardrails with tolerances, a planned duration); PlanExperiment checks the
// duration by a power calculation from the unit's own pre-period traffic;
// EvaluateExperiment reports each metric of each treatment against the
// control (CUPED-adjusted where pre-period values exist), tests the split
// for sample-ratio mismatch, decides with always-valid intervals while the
// experiment runs and fixed-horizon ones after, and ends in SHIP, DONT_SHIP
// or INCONCLUSIVE with a one-line summary.
package analysis
