package changelensprocessor

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Config is the changelens processor's configuration.
type Config struct {
	// EntrySpans selects the spans that become latency events.
	EntrySpans EntrySpansConfig `mapstructure:"entry_spans"`
	// KeepNonEntrySpans passes spans that are not entry spans through
	// unchanged instead of dropping them from this pipeline.
	KeepNonEntrySpans bool `mapstructure:"keep_non_entry_spans"`
	// DefaultEnvironment is the environment of a resource that carries neither
	// deployment.environment.name nor the deprecated deployment.environment.
	DefaultEnvironment string `mapstructure:"default_environment"`
	// MaxOperationLength caps operation names (bytes, cut at a rune boundary)
	// so that one hostile span cannot create an unbounded key.
	MaxOperationLength int `mapstructure:"max_operation_length"`
	// MaxClockSkew is how far in the future (against the collector's clock) a
	// span may start before it is dropped as malformed.
	MaxClockSkew time.Duration `mapstructure:"max_clock_skew"`
	// Deployments configures deployment detection.
	Deployments DeploymentsConfig `mapstructure:"deployments"`
}

// EntrySpansConfig says which spans are entry spans.
type EntrySpansConfig struct {
	// Kinds are span kinds that are entry spans: server, consumer, client,
	// producer, internal.
	Kinds []string `mapstructure:"kinds"`
	// IncludeRoot makes every root span (no parent) an entry span too.
	IncludeRoot bool `mapstructure:"include_root"`
}

// DeploymentsConfig configures explicit and inferred deployment events.
type DeploymentsConfig struct {
	Explicit  ExplicitConfig  `mapstructure:"explicit"`
	Inference InferenceConfig `mapstructure:"inference"`
	// MergeWindow: an explicit and an inferred deployment of the same unit and
	// version whose times are at most this far apart are one deployment.
	MergeWindow time.Duration `mapstructure:"merge_window"`
	// MaxUnits bounds the inference state (least recently seen units are
	// evicted after their pending observations are resolved).
	MaxUnits int `mapstructure:"max_units"`
}

// ExplicitConfig configures deployment events from CI/CD deploy spans.
type ExplicitConfig struct {
	Enabled bool `mapstructure:"enabled"`
	// SpanNamePatterns are regular expressions; a span whose name matches one
	// is a deploy span even without cicd.pipeline.task.type=deploy.
	SpanNamePatterns []string `mapstructure:"span_name_patterns"`
	// CommitTimeAttributes are read in order; the first present gives the
	// commit time (RFC 3339 string, or unix seconds, milliseconds or
	// nanoseconds as integer or digit string).
	CommitTimeAttributes []string `mapstructure:"commit_time_attributes"`
}

// InferenceConfig configures deployments inferred from service.version changes.
type InferenceConfig struct {
	Enabled bool `mapstructure:"enabled"`
	// ReappearAfter is the hysteresis: a version the unit ran before counts as
	// deployed again only after it was absent at least this long (event time).
	// Shorter gaps are the interleaving of a rolling update.
	ReappearAfter time.Duration `mapstructure:"reappear_after"`
	// AllowedLateness is how far (event time) spans may arrive out of order and
	// still be ordered exactly; observations are resolved once the unit's
	// newest event time is this far past them.
	AllowedLateness time.Duration `mapstructure:"allowed_lateness"`
	// IdleFlush resolves a unit's pending observations when it has received no
	// span for this long (wall clock). It only decides when, never what:
	// outcomes depend on event time alone.
	IdleFlush time.Duration `mapstructure:"idle_flush"`
	// MaxVersionsPerUnit bounds the versions remembered per unit for rollback
	// detection (least recently seen forgotten first).
	MaxVersionsPerUnit int `mapstructure:"max_versions_per_unit"`
}

var spanKindNames = map[string]bool{"server": true, "consumer": true, "client": true, "producer": true, "internal": true}

// Validate checks the configuration; every message names the offending field.
func (c *Config) Validate() error {
	var errs []error
	if len(c.EntrySpans.Kinds) == 0 && !c.EntrySpans.IncludeRoot {
		errs = append(errs, errors.New("entry_spans: kinds is empty and include_root is false, so no span would ever be an entry span"))
	}
	for i, k := range c.EntrySpans.Kinds {
		if !spanKindNames[strings.ToLower(k)] {
			errs = append(errs, fmt.Errorf("entry_spans.kinds[%d]: unknown span kind %q (want server, consumer, client, producer or internal)", i, k))
		}
	}
	if strings.TrimSpace(c.DefaultEnvironment) == "" {
		errs = append(errs, errors.New("default_environment: must not be empty"))
	}
	if c.MaxOperationLength < 16 {
		errs = append(errs, fmt.Errorf("max_operation_length: %d is too small (minimum 16)", c.MaxOperationLength))
	}
	if c.MaxClockSkew <= 0 {
		errs = append(errs, fmt.Errorf("max_clock_skew: must be positive, got %s", c.MaxClockSkew))
	}
	d := c.Deployments
	for i, p := range d.Explicit.SpanNamePatterns {
		if _, err := regexp.Compile(p); err != nil {
			errs = append(errs, fmt.Errorf("deployments.explicit.span_name_patterns[%d]: %w", i, err))
		}
	}
	for i, a := range d.Explicit.CommitTimeAttributes {
		if strings.TrimSpace(a) == "" {
			errs = append(errs, fmt.Errorf("deployments.explicit.commit_time_attributes[%d]: empty attribute name", i))
		}
	}
	in := d.Inference
	if in.ReappearAfter < time.Second {
		errs = append(errs, fmt.Errorf("deployments.inference.reappear_after: %s is too short (minimum 1s)", in.ReappearAfter))
	}
	if in.AllowedLateness < 0 {
		errs = append(errs, fmt.Errorf("deployments.inference.allowed_lateness: must not be negative, got %s", in.AllowedLateness))
	}
	if in.IdleFlush <= 0 {
		errs = append(errs, fmt.Errorf("deployments.inference.idle_flush: must be positive, got %s", in.IdleFlush))
	}
	if in.MaxVersionsPerUnit < 2 {
		errs = append(errs, fmt.Errorf("deployments.inference.max_versions_per_unit: %d is too small (minimum 2)", in.MaxVersionsPerUnit))
	}
	if d.MergeWindow < 0 {
		errs = append(errs, fmt.Errorf("deployments.merge_window: must not be negative, got %s", d.MergeWindow))
	}
	if d.MaxUnits < 1 {
		errs = append(errs, fmt.Errorf("deployments.max_units: must be at least 1, got %d", d.MaxUnits))
	}
	return errors.Join(errs...)
}

func defaultConfig() *Config {
	return &Config{
		EntrySpans:         EntrySpansConfig{Kinds: []string{"server", "consumer"}, IncludeRoot: true},
		DefaultEnvironment: "default",
		MaxOperationLength: 256,
		MaxClockSkew:       time.Hour,
		Deployments: DeploymentsConfig{
			Explicit: ExplicitConfig{
				Enabled:              true,
				CommitTimeAttributes: []string{"changelens.commit.time", "github.head_commit.timestamp"},
			},
			Inference: InferenceConfig{
				Enabled:            true,
				ReappearAfter:      10 * time.Minute,
				AllowedLateness:    2 * time.Minute,
				IdleFlush:          30 * time.Second,
				MaxVersionsPerUnit: 32,
			},
			MergeWindow: time.Hour,
			MaxUnits:    10000,
		},
	}
}
