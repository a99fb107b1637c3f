package analysis

import "flag"

// RegisterFlags defines the command-line flags of every threshold of c
// (defaults: c's values). The API and the worker share them, so that both
// judge with the same settings (stored verdicts are keyed by them).
func RegisterFlags(fs *flag.FlagSet, c *Config) {
	def := *c
	fs.DurationVar(&c.BeforeWindow, "before-window", def.BeforeWindow, "impact analysis: length of the before window [t − before-window, t)")
	fs.DurationVar(&c.AfterGap, "after-gap", def.AfterGap, "impact analysis: gap between the deploy and the after window")
	fs.DurationVar(&c.AfterWindow, "after-window", def.AfterWindow, "impact analysis: length of the after window [t + after-gap, t + after-gap + after-window)")
	fs.Float64Var(&c.MinRequests, "min-requests", def.MinRequests, "impact analysis: fewest weighted requests per window, else INSUFFICIENT_DATA")
	fs.Float64Var(&c.Alpha, "alpha", def.Alpha, "impact analysis: family-wise significance level over a deployment's operations and metrics (weighted Holm)")
	fs.Float64Var(&c.CompareAlpha, "compare-alpha", def.CompareAlpha, "same-window comparisons and the canary gate: significance level of each test")
	fs.Float64Var(&c.LatencyFloor, "latency-floor", def.LatencyFloor, "impact analysis: a latency percentile regressed only if its 95% interval does not rule out a rise of this much (relative)")
	fs.Float64Var(&c.ErrorRateFloorRatio, "error-rate-floor-ratio", def.ErrorRateFloorRatio, "impact analysis: an error rate regressed only if its interval does not rule out after ≥ ratio × before")
	fs.Float64Var(&c.ErrorRateFloorDelta, "error-rate-floor-delta", def.ErrorRateFloorDelta, "impact analysis: an error rate regressed only if its interval does not rule out after − before ≥ delta")
	fs.IntVar(&c.MaxOperations, "max-operations", def.MaxOperations, "impact analysis: most operations of a unit judged one by one (the busiest); the rest are pooled")
	fs.Float64Var(&c.Power, "power", def.Power, "impact analysis: power of the minimum detectable effect stated with every verdict")
	fs.IntVar(&c.DispersionLags, "dispersion-lags", def.DispersionLags, "impact analysis: minutes apart whose correlation the per-minute dispersion allows for (Newey-West lags)")
	fs.Float64Var(&c.ErrorKindAlpha, "error-kind-alpha", def.ErrorKindAlpha, "impact analysis: family-wise significance level of a deployment's error-kind tests (new and risen error kinds)")
	fs.Float64Var(&c.ErrorKindFloor, "error-kind-floor", def.ErrorKindFloor, "impact analysis: a new error kind is NEW_ERROR_KIND only if its rate's 95% interval does not rule out this share of requests")
	fs.IntVar(&c.ErrorKindMinMinutes, "error-kind-min-minutes", def.ErrorKindMinMinutes, "impact analysis: fewest minutes of the after window an error kind must occur in to be new (one burst is one occurrence)")
	fs.DurationVar(&c.ErrorKindHistory, "error-kind-history", def.ErrorKindHistory, "impact analysis: lookback before the before window whose error kinds (of every other version) are known, not new; 0 reads none")
	fs.DurationVar(&c.AttributionWindow, "attribution-window", def.AttributionWindow, "attribution: changes this close to a deployment are candidate causes, each judged on this long either side of it")
	fs.Float64Var(&c.AttributionZ, "attribution-z", def.AttributionZ, "attribution: standardized rise of a change's component that counts as evidence")
	fs.Float64Var(&c.AttributionShare, "attribution-share", def.AttributionShare, "attribution: share of a regression other changes must explain before the deployment is not blamed")
	fs.Float64Var(&c.FlagShareChange, "flag-share-change", def.FlagShareChange, "attribution: a feature flag changed when a variant's share of requests moved by this much")
	fs.Float64Var(&c.LatencyRatio, "latency-ratio", def.LatencyRatio, "same-window comparisons and the canary gate: a latency percentile is WORSE only if treatment ≥ ratio × control")
	fs.Float64Var(&c.ErrorRateMinDelta, "error-rate-min-delta", def.ErrorRateMinDelta, "same-window comparisons and the canary gate: an error rate is WORSE only if treatment − control ≥ delta")
	fs.Float64Var(&c.ErrorRateMinRatio, "error-rate-min-ratio", def.ErrorRateMinRatio, "same-window comparisons and the canary gate: an error rate is WORSE only if treatment ≥ ratio × control")
	fs.Float64Var(&c.MinExpectedCount, "min-expected-count", def.MinExpectedCount, "same-window comparisons: below this expected cell count the error-rate test is Fisher's exact test")
	fs.DurationVar(&c.FixForwardWindow, "fix-forward-window", def.FixForwardWindow, "a deployment this soon after a change failure of its unit is a fix-forward (DORA rework)")
	fs.DurationVar(&c.MergeWindow, "merge-window", def.MergeWindow, "a CI/CD deploy and the version change its traffic shows (or two deploys of one version) this close are one deployment")
	fs.DurationVar(&c.ReappearAfter, "reappear-after", def.ReappearAfter, "a version absent from a unit's traffic this long and then serving again is deployed again; shorter gaps are a rolling update (minimum 5m)")
}
