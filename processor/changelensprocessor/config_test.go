package changelensprocessor

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/changelens/changelens/processor/changelensprocessor/internal/metadata"
)

func loadConfig(t *testing.T, name string) (*Config, error) {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	sub, err := cm.Sub(component.NewIDWithName(metadata.Type, name).String())
	require.NoError(t, err)
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	if err := sub.Unmarshal(cfg); err != nil {
		return nil, err
	}
	return cfg, confmap.Validate(cfg)
}

func TestLoadConfig(t *testing.T) {
	cfg, err := loadConfig(t, "")
	require.NoError(t, err)
	assert.Equal(t, defaultConfig(), cfg)
	assert.True(t, cfg.ServiceGraph.Enabled, "call events are kept by default")

	cfg, err = loadConfig(t, "full")
	require.NoError(t, err)
	assert.Equal(t, &Config{
		EntrySpans:         EntrySpansConfig{Kinds: []string{"server", "consumer", "producer"}, IncludeRoot: false},
		KeepNonEntrySpans:  true,
		DefaultEnvironment: "staging",
		MaxOperationLength: 128,
		MaxClockSkew:       10 * time.Minute,
		Deployments: DeploymentsConfig{
			Explicit: ExplicitConfig{Enabled: true, SpanNamePatterns: []string{"^deploy ", "helm upgrade"}, CommitTimeAttributes: []string{"git.commit.time"}},
		},
		Cohorts: CohortsConfig{FeatureFlags: false, FlagKeys: []string{"new-checkout"}, Attributes: []string{"api.protocol"},
			MaxKeysPerUnit: 3, MaxValuesPerKey: 5, MaxUnits: 100},
		ServiceGraph: ServiceGraphConfig{Enabled: false},
		ErrorKinds:   ErrorKindsConfig{Enabled: true, MaxKindsPerUnit: 7, MaxUnits: 20, MaxKindLength: 64},
		ResourceUsage: ResourceUsageConfig{Enabled: true, MaxInstancesPerUnit: 50, MaxUnits: 30,
			InstanceIdleTimeout: 30 * time.Minute},
		SelfTime: SelfTimeConfig{Enabled: true},
		Outcomes: []OutcomeConfig{
			// YAML's booleans and numbers match attributes by their text.
			{Name: "purchase", SpanName: "checkout", Attributes: map[string]any{"payment.status": "ok", "payment.retried": false}},
			{Name: "signup", SpanEvent: "user.signup"},
			{Name: "onboarding_done", LogEvent: "app.onboarding", Attributes: map[string]any{"step": 3}},
		},
	}, cfg)
}

func TestInvalidConfigNamesTheField(t *testing.T) {
	for name, field := range map[string]string{
		"no_entry_spans":         "entry_spans:",
		"bad_kind":               "entry_spans.kinds[1]",
		"empty_environment":      "default_environment",
		"short_operation":        "max_operation_length",
		"bad_skew":               "max_clock_skew",
		"zero_instances":         "resource_usage.max_instances_per_unit",
		"bad_pattern":            "deployments.explicit.span_name_patterns[0]",
		"empty_commit_attribute": "deployments.explicit.commit_time_attributes[0]",
		"unknown_field":          "inferrence",
		"empty_cohort_attribute": "cohorts.attributes[0]",
		"zero_cohort_values":     "cohorts.max_values_per_key",
		"zero_error_kinds":       "error_kinds.max_kinds_per_unit",
		"short_error_kind":       "error_kinds.max_kind_length",
		"service_graph_typo":     "'service_graph' has invalid keys: enable",
		"outcome_without_match":  "outcomes[1]: set exactly one of span_name, span_event and log_event",
		// Inference moved to the query API; its old settings are rejected by name.
		"removed_inference": "inference",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := loadConfig(t, name)
			require.Error(t, err)
			assert.Contains(t, err.Error(), field)
		})
	}
}
