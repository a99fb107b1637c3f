package changelensprocessor

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
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
	// Cohorts configures the cohort dimensions recorded on latency events,
	// for same-window comparisons (canaries, A/B tests).
	Cohorts CohortsConfig `mapstructure:"cohorts"`
	// ServiceGraph configures call events.
	ServiceGraph ServiceGraphConfig `mapstructure:"service_graph"`
	// ErrorKinds configures the error kind of failed latency events.
	ErrorKinds ErrorKindsConfig `mapstructure:"error_kinds"`
	// ResourceUsage configures the metrics pipeline (metrics.go).
	ResourceUsage ResourceUsageConfig `mapstructure:"resource_usage"`
	// SelfTime configures the self time of latency events (selftime.go).
	SelfTime SelfTimeConfig `mapstructure:"self_time"`
	// Outcomes are the spans, span events and log records that are
	// outcome events (outcomes.go; docs/client.md).
	Outcomes []OutcomeConfig `mapstructure:"outcomes"`
}

// SelfTimeConfig says whether latency events carry their request's self
// time: the entry span's duration outside the union of its CLIENT
// children in the batch, the proxy of a request's own CPU where the
// metrics cannot split it (flag cohorts of one process).
type SelfTimeConfig struct {
	// Enabled measures it: an index of the batch's CLIENT spans before the
	// spans are processed, a look-up per latency event after. Off by
	// default: it costs about half again the processor's time per span.
	Enabled bool `mapstructure:"enabled"`
}

// ResourceUsageConfig says whether a metrics pipeline keeps the units'
// resource-usage metrics (CPU time, memory), within bounds.
type ResourceUsageConfig struct {
	// Enabled keeps the resource-usage metrics (eventspan.UsageMetrics) of
	// resources with a service.name and an instance; when false every point
	// is dropped (reason "disabled").
	Enabled bool `mapstructure:"enabled"`
	// MaxInstancesPerUnit bounds the instances of one unit reporting at a
	// time; points of further instances fold into instance "__other__"
	// (counted, reason "instances"). An instance silent for
	// instance_idle_timeout no longer counts, so pods that come and go do
	// not exhaust the bound.
	MaxInstancesPerUnit int `mapstructure:"max_instances_per_unit"`
	// MaxUnits bounds the units whose instances are tracked; the points of
	// further units fold into instance "__other__" (counted, reason
	// "units").
	MaxUnits int `mapstructure:"max_units"`
	// InstanceIdleTimeout is how long an instance that sent no point keeps
	// its place in max_instances_per_unit.
	InstanceIdleTimeout time.Duration `mapstructure:"instance_idle_timeout"`
}

// ErrorKindsConfig says whether failed latency events carry their error
// kind (errorkinds.go), within bounds.
type ErrorKindsConfig struct {
	// Enabled: a latency event whose request failed carries its error kind:
	// the entry span's error.type, else the exception.type of an exception
	// event on the entry span or its descendants in the batch, else the
	// status class (5xx, 4xx, a gRPC status name), else _OTHER.
	Enabled bool `mapstructure:"enabled"`
	// MaxKindsPerUnit bounds the kinds of one unit; further kinds fold
	// into "__other__" (counted, reason "kinds").
	MaxKindsPerUnit int `mapstructure:"max_kinds_per_unit"`
	// MaxUnits bounds the units whose kinds are tracked; the kinds of
	// further units fold into "__other__" (counted, reason "units").
	MaxUnits int `mapstructure:"max_units"`
	// MaxKindLength caps a kind (bytes, cut at a rune boundary): exception
	// types are the application's strings.
	MaxKindLength int `mapstructure:"max_kind_length"`
}

// ServiceGraphConfig says whether outgoing calls are kept as call events.
type ServiceGraphConfig struct {
	// Enabled keeps the CLIENT and PRODUCER spans of named services as call
	// events (marked per span). The query side joins them with their
	// callees' latency events to build the service graph, so a caller's
	// regression can be attributed to its callee's deploy. When false they
	// are dropped as not_entry, as other non-entry spans are.
	Enabled bool `mapstructure:"enabled"`
}

// CohortsConfig says which cohort dimensions latency events carry, within
// bounds.
type CohortsConfig struct {
	// FeatureFlags records feature-flag evaluations in every shape
	// OpenTelemetry sends them (flags.go): span events, per-evaluation spans
	// and, in a logs pipeline, log-based events. An evaluation on the entry
	// span or its descendants in the same batch is the dimension
	// feature_flag.<key> of the entry span's latency event; any other (every
	// log-based one) a flag evaluation event the query side credits to its
	// trace's latency events.
	FeatureFlags bool `mapstructure:"feature_flags"`
	// FlagKeys limits the flags recorded to these keys; empty: any flag,
	// up to max_keys_per_unit per unit.
	FlagKeys []string `mapstructure:"flag_keys"`
	// Attributes are span attributes (else resource attributes) recorded as
	// dimension attribute.<name>, e.g. api.protocol.
	Attributes []string `mapstructure:"attributes"`
	// MaxKeysPerUnit bounds the dimensions of one unit; further ones are not
	// recorded (counted, reason "keys").
	MaxKeysPerUnit int `mapstructure:"max_keys_per_unit"`
	// MaxValuesPerKey bounds the values of one dimension of one unit;
	// further values fold into "__other__" (counted, reason "values").
	MaxValuesPerKey int `mapstructure:"max_values_per_key"`
	// MaxUnits bounds the units whose dimensions are tracked; the values of
	// further units fold into "__other__" (counted, reason "units").
	MaxUnits int `mapstructure:"max_units"`
}

// EntrySpansConfig says which spans are entry spans.
type EntrySpansConfig struct {
	// Kinds are span kinds that are entry spans: server, consumer, client,
	// producer, internal.
	Kinds []string `mapstructure:"kinds"`
	// IncludeRoot makes every root span (no parent) an entry span too.
	IncludeRoot bool `mapstructure:"include_root"`
}

// DeploymentsConfig configures deployment events. Deployments inferred from
// service.version changes are not the processor's business: the query API
// derives them from every collector's stored observations, so they cannot
// depend on which collector saw which span.
type DeploymentsConfig struct {
	// Explicit turns CI/CD deploy spans into deployment events.
	Explicit ExplicitConfig `mapstructure:"explicit"`
}

// ExplicitConfig configures deployment events from CI/CD deploy spans.
type ExplicitConfig struct {
	// Enabled: when false, deploy spans are treated like any other span.
	Enabled bool `mapstructure:"enabled"`
	// SpanNamePatterns are regular expressions; a span whose name matches one
	// is a deploy span even without cicd.pipeline.task.type=deploy. A CLIENT
	// or PRODUCER span is a call and never a deploy span.
	SpanNamePatterns []string `mapstructure:"span_name_patterns"`
	// CommitTimeAttributes are read in order; the first present gives the
	// commit time (RFC 3339 string, or unix seconds, milliseconds or
	// nanoseconds as integer or digit string).
	CommitTimeAttributes []string `mapstructure:"commit_time_attributes"`
}

var _ component.Config = (*Config)(nil)

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
	co := c.Cohorts
	for i, a := range co.Attributes {
		if strings.TrimSpace(a) == "" {
			errs = append(errs, fmt.Errorf("cohorts.attributes[%d]: empty attribute name", i))
		}
	}
	for i, k := range co.FlagKeys {
		if strings.TrimSpace(k) == "" {
			errs = append(errs, fmt.Errorf("cohorts.flag_keys[%d]: empty flag key", i))
		}
	}
	if co.MaxKeysPerUnit < 1 {
		errs = append(errs, fmt.Errorf("cohorts.max_keys_per_unit: must be at least 1, got %d", co.MaxKeysPerUnit))
	}
	if co.MaxValuesPerKey < 1 {
		errs = append(errs, fmt.Errorf("cohorts.max_values_per_key: must be at least 1, got %d", co.MaxValuesPerKey))
	}
	if co.MaxUnits < 1 {
		errs = append(errs, fmt.Errorf("cohorts.max_units: must be at least 1, got %d", co.MaxUnits))
	}
	if ek := c.ErrorKinds; ek.Enabled {
		if ek.MaxKindsPerUnit < 1 {
			errs = append(errs, fmt.Errorf("error_kinds.max_kinds_per_unit: must be at least 1, got %d", ek.MaxKindsPerUnit))
		}
		if ek.MaxUnits < 1 {
			errs = append(errs, fmt.Errorf("error_kinds.max_units: must be at least 1, got %d", ek.MaxUnits))
		}
		if ek.MaxKindLength < 8 {
			errs = append(errs, fmt.Errorf("error_kinds.max_kind_length: %d is too small (minimum 8)", ek.MaxKindLength))
		}
	}
	if ru := c.ResourceUsage; ru.Enabled {
		if ru.MaxInstancesPerUnit < 1 {
			errs = append(errs, fmt.Errorf("resource_usage.max_instances_per_unit: must be at least 1, got %d", ru.MaxInstancesPerUnit))
		}
		if ru.MaxUnits < 1 {
			errs = append(errs, fmt.Errorf("resource_usage.max_units: must be at least 1, got %d", ru.MaxUnits))
		}
		if ru.InstanceIdleTimeout < time.Minute {
			errs = append(errs, fmt.Errorf("resource_usage.instance_idle_timeout: must be at least 1m, got %s", ru.InstanceIdleTimeout))
		}
	}
	errs = append(errs, validateOutcomes(c.Outcomes)...)
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
		},
		Cohorts:      CohortsConfig{FeatureFlags: true, MaxKeysPerUnit: 10, MaxValuesPerKey: 20, MaxUnits: 10000},
		ServiceGraph: ServiceGraphConfig{Enabled: true},
		ErrorKinds:   ErrorKindsConfig{Enabled: true, MaxKindsPerUnit: 50, MaxUnits: 10000, MaxKindLength: 128},
		ResourceUsage: ResourceUsageConfig{Enabled: true, MaxInstancesPerUnit: 1000, MaxUnits: 10000,
			InstanceIdleTimeout: time.Hour},
		SelfTime: SelfTimeConfig{Enabled: false},
	}
}
