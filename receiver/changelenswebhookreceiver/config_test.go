package changelenswebhookreceiver

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/changelens/changelens/receiver/changelenswebhookreceiver/internal/metadata"
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
	assert.Equal(t, defaultEndpoint, cfg.NetAddr.Endpoint)
	assert.Equal(t, &GitHubConfig{Path: "/github", Secret: "gh-secret", Service: serviceRepositoryName, Version: versionSHA}, cfg.GitHub.Get())
	assert.Equal(t, &ArgoCDConfig{Path: "/argocd", Secret: "argo-secret", Header: "Authorization", Scheme: "Bearer"}, cfg.ArgoCD.Get())
	assert.Equal(t, &CDEventsConfig{Path: "/cdevents"}, cfg.CDEvents.Get(), "an empty section serves the source with its defaults")
	assert.Equal(t, &PagerDutyConfig{Path: "/pagerduty", Secret: "pd-secret", Environment: "production"}, cfg.PagerDuty.Get())
	assert.Equal(t, &AlertmanagerConfig{Path: "/alertmanager", ServiceLabels: []string{"service", "service_name", "job"},
		EnvironmentLabels: []string{"environment", "env", "deployment_environment"}, Environment: "production"}, cfg.Alertmanager.Get())

	cfg, err = loadConfig(t, "full")
	require.NoError(t, err)
	assert.Equal(t, "0.0.0.0:9999", cfg.NetAddr.Endpoint)
	assert.Equal(t, int64(1<<20), cfg.MaxRequestBodySize)
	assert.Equal(t, &GitHubConfig{Path: "/hooks/github", Secret: "gh-secret", Service: serviceRepositoryFullName,
		Services: map[string]string{"acme/monorepo": "storefront"}, Version: versionShortSHA}, cfg.GitHub.Get())
	assert.Equal(t, &ArgoCDConfig{Path: "/hooks/argocd", Secret: "argo-secret", Header: "X-Changelens-Token", Scheme: ""}, cfg.ArgoCD.Get())
	assert.Equal(t, &CDEventsConfig{Path: "/hooks/cdevents", Token: "cd-token"}, cfg.CDEvents.Get())
	assert.Equal(t, &PagerDutyConfig{Path: "/hooks/pagerduty", Secret: "pd-secret", Services: map[string]string{"PF9KMXH": "api", "Checkout": "checkout"},
		Environment: "prod", Environments: map[string]string{"PSTAGE1": "staging"}}, cfg.PagerDuty.Get())
	assert.Equal(t, &AlertmanagerConfig{Path: "/hooks/alertmanager", Token: "am-token", ServiceLabels: []string{"app"},
		EnvironmentLabels: []string{}, Environment: "prod", MatchLabels: map[string]string{"changelens": "incident"}}, cfg.Alertmanager.Get())

	for _, name := range []string{"cdevents_only", "github_disabled"} {
		cfg, err = loadConfig(t, name)
		require.NoError(t, err, name)
		assert.Nil(t, cfg.GitHub.Get(), "%s: a source not configured is not served", name)
		assert.Nil(t, cfg.ArgoCD.Get(), name)
		assert.Nil(t, cfg.PagerDuty.Get(), name)
		assert.Nil(t, cfg.Alertmanager.Get(), name)
		assert.NotNil(t, cfg.CDEvents.Get(), name)
	}
	cfg, err = loadConfig(t, "incidents_only")
	require.NoError(t, err)
	assert.Nil(t, cfg.CDEvents.Get())
	assert.Equal(t, "/alertmanager", cfg.Alertmanager.Get().Path)
	assert.Equal(t, "/pagerduty", cfg.PagerDuty.Get().Path)
}

func TestInvalidConfigNamesTheField(t *testing.T) {
	for name, field := range map[string]string{
		"no_source":                   "github, argocd, cdevents, pagerduty, alertmanager: configure at least one source",
		"pagerduty_no_secret":         "pagerduty.secret: required",
		"pagerduty_empty_environment": "pagerduty.environment: must not be empty",
		"pagerduty_empty_mapping":     "pagerduty.services[PF9KMXH]: empty name",
		"pagerduty_empty_env_mapping": "pagerduty.environments[API Service]: empty name",
		"alertmanager_no_labels":      "alertmanager.service_labels: must name at least one label",
		"alertmanager_empty_label":    "alertmanager.environment_labels[1]: empty label name",
		"alertmanager_empty_env":      "alertmanager.environment: must not be empty",
		"alertmanager_empty_match":    "alertmanager.match_labels: empty label name",
		"alertmanager_same_path":      `alertmanager.path: "/pagerduty" is already pagerduty.path`,
		"github_no_secret":            "github.secret: required",
		"github_bad_service":          "github.service:",
		"github_bad_version":          "github.version:",
		"github_empty_mapping":        "github.services[acme/api]",
		"argocd_no_secret":            "argocd.secret: required",
		"argocd_empty_header":         "argocd.header",
		"argocd_bad_scheme":           "argocd.scheme",
		"bad_path":                    "cdevents.path",
		"same_path":                   `cdevents.path: "/hooks" is already github.path`,
		"empty_endpoint":              "endpoint",
		"unknown_field":               "secrett",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := loadConfig(t, name)
			require.Error(t, err)
			assert.Contains(t, err.Error(), field)
		})
	}
}

// Secrets print as [REDACTED] wherever the configuration is printed.
func TestConfigRedactsSecrets(t *testing.T) {
	cfg, err := loadConfig(t, "full")
	require.NoError(t, err)
	for _, s := range []string{fmt.Sprintf("%v", *cfg.GitHub.Get()), fmt.Sprintf("%+v", *cfg.ArgoCD.Get()), fmt.Sprintf("%v", *cfg.CDEvents.Get()),
		fmt.Sprintf("%+v", *cfg.PagerDuty.Get()), fmt.Sprintf("%+v", *cfg.Alertmanager.Get())} {
		assert.NotContains(t, s, "secret\"")
		for _, secret := range []string{"gh-secret", "argo-secret", "cd-token", "pd-secret", "am-token"} {
			assert.NotContains(t, s, secret)
		}
		assert.Contains(t, s, "[REDACTED]")
	}
	conf := confmap.New()
	require.NoError(t, conf.Marshal(cfg))
	assert.Equal(t, "[REDACTED]", conf.Get("github::secret"))
	assert.Equal(t, "[REDACTED]", conf.Get("pagerduty::secret"))
	assert.Equal(t, "[REDACTED]", conf.Get("alertmanager::token"))
}
