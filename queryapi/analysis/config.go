package analysis

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Config holds every threshold of the analysis. DefaultConfig returns the
// defaults of docs/analysis.md.
type Config struct {
	// BeforeWindow is the length of the before window [t − BeforeWindow, t).
	// Default 30m.
	BeforeWindow time.Duration
	// AfterGap is the gap between the deployment and its after window,
	// which is [t + AfterGap, t + AfterGap + AfterWindow). Default 2m.
	AfterGap time.Duration
	// AfterWindow is the length of the after window. Default 30m.
	AfterWindow time.Duration

	// MinRequests: fewer weighted requests in either window gives
	// INSUFFICIENT_DATA; an operation needs as many in both windows to be
	// judged on its own (else it joins the remainder). Default 50.
	MinRequests float64
	// Alpha is the family-wise significance level of a before/after
	// judgement, over every operation and metric (weighted Holm). Default
	// 0.005: A/A false alarms then stay below 1 % even where minutes are
	// more correlated than the dispersion estimate allows for
	// (docs/analysis.md).
	Alpha float64

	// The before/after rule (docs/analysis.md).

	// LatencyFloor: a latency percentile regressed only when its 95 %
	// interval does not rule out a rise of this much (relative). Default
	// 0.05.
	LatencyFloor float64
	// ErrorRateFloorRatio and ErrorRateFloorDelta: an error rate regressed
	// only when its 95 % intervals do not rule out after ≥ ratio × before
	// and after − before ≥ delta. Defaults 1.5 and 0.001.
	ErrorRateFloorRatio float64
	ErrorRateFloorDelta float64
	// MaxOperations: at most this many operations of a unit (the busiest
	// with MinRequests in both windows) are judged one by one; the others
	// are pooled into the remainder. Default 50.
	MaxOperations int
	// Power of the minimum detectable effect every answer states. Default
	// 0.8.
	Power float64
	// DispersionLags: the per-minute dispersion of the counts allows for
	// correlation of minutes up to this many apart (Newey–West lags).
	// Default 2.
	DispersionLags int

	// New error kinds (docs/analysis.md, "New error kinds").

	// ErrorKindAlpha is the family-wise significance level of a
	// deployment's error-kind tests (Holm over the kinds Tarone's rule
	// keeps): a family of its own beside the before/after rule's, so the
	// deployment's false DEGRADED is bounded by Alpha + ErrorKindAlpha.
	// Default 0.005.
	ErrorKindAlpha float64
	// ErrorKindFloor: a new error kind makes a deployment DEGRADED only
	// when its after rate's 95 % interval does not rule out this rate (a
	// kind that rose, only when its difference's does not rule out a rise
	// of this much). Default 0.0005 (0.05 % of requests).
	ErrorKindFloor float64
	// ErrorKindMinMinutes: a kind is new (or rose) only when it occurred in
	// at least this many minutes of the after window: one burst is one
	// occurrence. Default 2.
	ErrorKindMinMinutes int
	// ErrorKindHistory is the lookback before a deployment's before window
	// whose error kinds are known too (every version but the deployed
	// one): a kind seen there is not new, however long it was absent.
	// Default 7 days; 0 reads no history (the before window alone says what
	// is known).
	ErrorKindHistory time.Duration

	// Attribution of a regression to a concurrent change (docs/analysis.md,
	// "Attribution").

	// AttributionWindow: changes starting this close to the deployment are
	// candidates, and each is judged on this long either side of it (at
	// most the before and after windows). Default 15m.
	AttributionWindow time.Duration
	// AttributionZ: a change explains a regression when its component rose
	// with at least this standardized evidence. Default 3.
	AttributionZ float64
	// AttributionShare: a regression is attributed elsewhere only when the
	// deployment's own component did not rise significantly and other
	// changes explain at least this share of it. Default 0.5.
	AttributionShare float64
	// FlagShareChange: a feature flag changed when a variant's share of the
	// unit's requests moved by at least this much. Default 0.05.
	FlagShareChange float64

	// The same-window comparison (canary, A/B) and the canary gate.

	// CompareAlpha is the significance level of each test of a same-window
	// comparison and of the canary gate's sequential tests. Default 0.01.
	CompareAlpha float64
	// LatencyRatio: a latency percentile is WORSE only when treatment ≥
	// LatencyRatio × control. Default 1.2.
	LatencyRatio float64
	// ErrorRateMinDelta: an error rate is WORSE only when treatment −
	// control ≥ this. Default 0.01.
	ErrorRateMinDelta float64
	// ErrorRateMinRatio: an error rate is WORSE only when treatment ≥ this
	// × control. Default 1.5.
	ErrorRateMinRatio float64
	// MinExpectedCount: below this expected cell count the error-rate test
	// is Fisher's exact test instead of the z-test. Default 5.
	MinExpectedCount float64

	// ReappearAfter is the hysteresis of inferred deployments: a version
	// absent from a unit's traffic for at least this long and then serving
	// again is deployed again; shorter gaps are the interleaving of a rolling
	// update (package inference). Default 10m.
	ReappearAfter time.Duration
	// FixForwardWindow: a deployment following a change failure of its
	// unit this soon is a fix-forward, and counts as rework (DORA's
	// deployment rework rate). Default 24h.
	FixForwardWindow time.Duration
	// MergeWindow: a CI/CD deploy and the version change its traffic shows,
	// or two deploys of one version, this close (adjacent in the unit's
	// sequence) are one deployment (see the package documentation).
	// Default 1h.
	MergeWindow time.Duration
}

// DefaultConfig returns the defaults of docs/analysis.md.
func DefaultConfig() Config {
	return Config{
		BeforeWindow:        30 * time.Minute,
		AfterGap:            2 * time.Minute,
		AfterWindow:         30 * time.Minute,
		MinRequests:         50,
		Alpha:               0.005,
		LatencyFloor:        0.05,
		ErrorRateFloorRatio: 1.5,
		ErrorRateFloorDelta: 0.001,
		MaxOperations:       50,
		Power:               0.8,
		DispersionLags:      2,
		ErrorKindAlpha:      0.005,
		ErrorKindFloor:      0.0005,
		ErrorKindMinMinutes: 2,
		ErrorKindHistory:    7 * 24 * time.Hour,
		AttributionWindow:   15 * time.Minute,
		AttributionZ:        3,
		AttributionShare:    0.5,
		FlagShareChange:     0.05,
		CompareAlpha:        0.01,
		LatencyRatio:        1.2,
		ErrorRateMinDelta:   0.01,
		ErrorRateMinRatio:   1.5,
		MinExpectedCount:    5,
		ReappearAfter:       10 * time.Minute,
		MergeWindow:         time.Hour,
		FixForwardWindow:    24 * time.Hour,
	}
}

// Validate checks the configuration; messages name the field.
func (c Config) Validate() error {
	var errs []error
	if c.BeforeWindow < time.Minute {
		errs = append(errs, fmt.Errorf("analysis: BeforeWindow %s is shorter than one minute", c.BeforeWindow))
	}
	if c.AfterWindow < time.Minute {
		errs = append(errs, fmt.Errorf("analysis: AfterWindow %s is shorter than one minute", c.AfterWindow))
	}
	if c.AfterGap < 0 {
		errs = append(errs, fmt.Errorf("analysis: AfterGap %s is negative", c.AfterGap))
	}
	if c.ReappearAfter < 5*time.Minute {
		errs = append(errs, fmt.Errorf("analysis: ReappearAfter %s is shorter than five minutes (versions are recorded per five minutes)", c.ReappearAfter))
	}
	fin := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	if !fin(c.LatencyFloor) || c.LatencyFloor < 0 {
		errs = append(errs, fmt.Errorf("analysis: LatencyFloor %v must be a relative change ≥ 0", c.LatencyFloor))
	}
	if !fin(c.ErrorRateFloorRatio) || c.ErrorRateFloorRatio < 1 {
		errs = append(errs, fmt.Errorf("analysis: ErrorRateFloorRatio %v must be ≥ 1", c.ErrorRateFloorRatio))
	}
	if !fin(c.ErrorRateFloorDelta) || c.ErrorRateFloorDelta < 0 || c.ErrorRateFloorDelta >= 1 {
		errs = append(errs, fmt.Errorf("analysis: ErrorRateFloorDelta %v must be in [0, 1)", c.ErrorRateFloorDelta))
	}
	if !(c.Alpha > 0 && c.Alpha < 1) {
		errs = append(errs, fmt.Errorf("analysis: Alpha %v must be in (0, 1)", c.Alpha))
	}
	if c.MaxOperations < 1 || c.MaxOperations > 1000 {
		errs = append(errs, fmt.Errorf("analysis: MaxOperations %d must be between 1 and 1000", c.MaxOperations))
	}
	if !(c.Power >= 0.5 && c.Power < 1) {
		errs = append(errs, fmt.Errorf("analysis: Power %v must be in [0.5, 1)", c.Power))
	}
	if c.DispersionLags < 0 || c.DispersionLags > 30 {
		errs = append(errs, fmt.Errorf("analysis: DispersionLags %d must be between 0 and 30", c.DispersionLags))
	}
	if !(c.ErrorKindAlpha > 0 && c.ErrorKindAlpha < 1) {
		errs = append(errs, fmt.Errorf("analysis: ErrorKindAlpha %v must be in (0, 1)", c.ErrorKindAlpha))
	}
	if !fin(c.ErrorKindFloor) || c.ErrorKindFloor < 0 || c.ErrorKindFloor >= 1 {
		errs = append(errs, fmt.Errorf("analysis: ErrorKindFloor %v must be in [0, 1)", c.ErrorKindFloor))
	}
	if c.ErrorKindMinMinutes < 1 || c.ErrorKindMinMinutes > 60 {
		errs = append(errs, fmt.Errorf("analysis: ErrorKindMinMinutes %d must be between 1 and 60", c.ErrorKindMinMinutes))
	}
	if c.ErrorKindHistory < 0 || c.ErrorKindHistory > 90*24*time.Hour {
		errs = append(errs, fmt.Errorf("analysis: ErrorKindHistory %s must be between 0 and 90 days", c.ErrorKindHistory))
	}
	if c.AttributionWindow < 5*time.Minute {
		errs = append(errs, fmt.Errorf("analysis: AttributionWindow %s is shorter than five minutes", c.AttributionWindow))
	}
	if !(c.AttributionZ >= 1 && c.AttributionZ <= 10) {
		errs = append(errs, fmt.Errorf("analysis: AttributionZ %v must be in [1, 10]", c.AttributionZ))
	}
	if !(c.AttributionShare > 0 && c.AttributionShare <= 1) {
		errs = append(errs, fmt.Errorf("analysis: AttributionShare %v must be in (0, 1]", c.AttributionShare))
	}
	if !(c.FlagShareChange > 0 && c.FlagShareChange < 1) {
		errs = append(errs, fmt.Errorf("analysis: FlagShareChange %v must be in (0, 1)", c.FlagShareChange))
	}
	if c.FixForwardWindow < 0 {
		errs = append(errs, fmt.Errorf("analysis: FixForwardWindow %s is negative", c.FixForwardWindow))
	}
	if c.MergeWindow < 0 {
		errs = append(errs, fmt.Errorf("analysis: MergeWindow %s is negative", c.MergeWindow))
	}
	if !fin(c.MinRequests) || c.MinRequests < 0 {
		errs = append(errs, fmt.Errorf("analysis: MinRequests %v must be ≥ 0", c.MinRequests))
	}
	if !(c.CompareAlpha > 0 && c.CompareAlpha < 1) {
		errs = append(errs, fmt.Errorf("analysis: CompareAlpha %v must be in (0, 1)", c.CompareAlpha))
	}
	if !fin(c.LatencyRatio) || c.LatencyRatio < 1 {
		errs = append(errs, fmt.Errorf("analysis: LatencyRatio %v must be ≥ 1", c.LatencyRatio))
	}
	if !fin(c.ErrorRateMinDelta) || c.ErrorRateMinDelta < 0 {
		errs = append(errs, fmt.Errorf("analysis: ErrorRateMinDelta %v must be ≥ 0", c.ErrorRateMinDelta))
	}
	if !fin(c.ErrorRateMinRatio) || c.ErrorRateMinRatio < 1 {
		errs = append(errs, fmt.Errorf("analysis: ErrorRateMinRatio %v must be ≥ 1", c.ErrorRateMinRatio))
	}
	if !fin(c.MinExpectedCount) || c.MinExpectedCount < 0 {
		errs = append(errs, fmt.Errorf("analysis: MinExpectedCount %v must be ≥ 0", c.MinExpectedCount))
	}
	return errors.Join(errs...)
}
