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
	fs.Float64Var(&c.LatencyRatio, "latency-ratio", def.LatencyRatio, "impact analysis: a latency regression needs after p95 ≥ ratio × before p95")
	fs.Float64Var(&c.Alpha, "alpha", def.Alpha, "impact analysis: significance level of the one-sided tests")
	fs.Float64Var(&c.ErrorRateMinDelta, "error-rate-min-delta", def.ErrorRateMinDelta, "impact analysis: an error-rate regression needs after − before ≥ delta")
	fs.Float64Var(&c.ErrorRateMinRatio, "error-rate-min-ratio", def.ErrorRateMinRatio, "impact analysis: an error-rate regression needs after ≥ ratio × before")
	fs.Float64Var(&c.MinExpectedCount, "min-expected-count", def.MinExpectedCount, "impact analysis: below this expected cell count the error-rate test is Fisher's exact test")
	fs.DurationVar(&c.MergeWindow, "merge-window", def.MergeWindow, "a CI/CD deploy and the version change its traffic shows (or two deploys of one version) this close are one deployment")
	fs.DurationVar(&c.ReappearAfter, "reappear-after", def.ReappearAfter, "a version absent from a unit's traffic this long and then serving again is deployed again; shorter gaps are a rolling update (minimum 5m)")
}
