package analysis

import (
	"errors"
	"fmt"
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
	// INSUFFICIENT_DATA. Default 50.
	MinRequests float64
	// LatencyRatio: a latency regression needs after-p95 ≥ LatencyRatio ×
	// before-p95. Default 1.2.
	LatencyRatio float64
	// Alpha is the significance level of the one-sided tests. Default 0.01.
	Alpha float64
	// ErrorRateMinDelta: an error-rate regression needs after − before ≥
	// this. Default 0.01.
	ErrorRateMinDelta float64
	// ErrorRateMinRatio: an error-rate regression needs after ≥ this ×
	// before. Default 1.5.
	ErrorRateMinRatio float64
	// MinExpectedCount: below this expected cell count the error-rate test
	// is Fisher's exact test instead of the z-test. Default 5.
	MinExpectedCount float64

	// ReappearAfter is the hysteresis of inferred deployments: a version
	// absent from a unit's traffic for at least this long and then serving
	// again is deployed again; shorter gaps are the interleaving of a rolling
	// update (package inference). Default 10m.
	ReappearAfter time.Duration
	// MergeWindow: a CI/CD deploy and the version change its traffic shows,
	// or two deploys of one version, this close (adjacent in the unit's
	// sequence) are one deployment (see the package documentation).
	// Default 1h.
	MergeWindow time.Duration
}

// DefaultConfig returns the defaults of docs/analysis.md.
func DefaultConfig() Config {
	d := DefaultDecisionConfig()
	return Config{
		BeforeWindow:      30 * time.Minute,
		AfterGap:          2 * time.Minute,
		AfterWindow:       30 * time.Minute,
		MinRequests:       d.MinRequests,
		LatencyRatio:      d.LatencyRatio,
		Alpha:             d.Alpha,
		ErrorRateMinDelta: d.ErrorRateAbsDelta,
		ErrorRateMinRatio: d.ErrorRateRelRatio,
		MinExpectedCount:  d.MinExpectedCount,
		ReappearAfter:     10 * time.Minute,
		MergeWindow:       time.Hour,
	}
}

// Decision returns the thresholds as Decide wants them.
func (c Config) Decision() DecisionConfig {
	return DecisionConfig{
		MinRequests:       c.MinRequests,
		LatencyRatio:      c.LatencyRatio,
		Alpha:             c.Alpha,
		ErrorRateAbsDelta: c.ErrorRateMinDelta,
		ErrorRateRelRatio: c.ErrorRateMinRatio,
		MinExpectedCount:  c.MinExpectedCount,
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
	if c.MergeWindow < 0 {
		errs = append(errs, fmt.Errorf("analysis: MergeWindow %s is negative", c.MergeWindow))
	}
	if err := c.Decision().Validate(); err != nil {
		errs = append(errs, fmt.Errorf("analysis: %w", err))
	}
	return errors.Join(errs...)
}
