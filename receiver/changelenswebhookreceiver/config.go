package changelenswebhookreceiver

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
)

// defaultEndpoint is the webhook listener's address unless endpoint is set;
// 8088 is free of the collector's usual ports (4317/4318 OTLP, 8888
// metrics, 13133 health) and of changelens-api's (8080, 9090).
const defaultEndpoint = "localhost:8088"

// Config is the changelens_webhook receiver's configuration. A source is
// served exactly when its section is present (an empty section takes the
// defaults), so a collector exposes no path nobody configured.
type Config struct {
	// ServerConfig is the HTTP server (endpoint, tls, max_request_body_size,
	// ...), confighttp's settings as every collector HTTP receiver has them.
	confighttp.ServerConfig `mapstructure:",squash"`
	// GitHub serves GitHub's deployment_status and push webhooks.
	GitHub configoptional.Optional[GitHubConfig] `mapstructure:"github"`
	// ArgoCD serves the Argo CD notifications webhook service.
	ArgoCD configoptional.Optional[ArgoCDConfig] `mapstructure:"argocd"`
	// CDEvents serves CDEvents over the CloudEvents HTTP binding: service
	// events (deployments) and incident events.
	CDEvents configoptional.Optional[CDEventsConfig] `mapstructure:"cdevents"`
	// PagerDuty serves PagerDuty's v3 webhooks (incidents).
	PagerDuty configoptional.Optional[PagerDutyConfig] `mapstructure:"pagerduty"`
	// Alertmanager serves Prometheus Alertmanager's webhook (incidents).
	Alertmanager configoptional.Optional[AlertmanagerConfig] `mapstructure:"alertmanager"`
}

// GitHubConfig configures the GitHub source.
type GitHubConfig struct {
	// Path is the URL path GitHub posts to.
	Path string `mapstructure:"path"`
	// Secret is the webhook's secret: every delivery must carry
	// X-Hub-Signature-256, the HMAC-SHA256 of its body under it. Required:
	// an unsigned deployment endpoint would let anyone write deployments.
	Secret configopaque.String `mapstructure:"secret"`
	// Service names the deployed service when the deployment's payload has
	// no "service": repository_name (Hello-World) or repository_full_name
	// (Codertocat/Hello-World).
	Service string `mapstructure:"service"`
	// Services maps a repository's full name to its service, for
	// repositories whose name is not the service.name their spans carry; it
	// wins over service, not over the payload's "service".
	Services map[string]string `mapstructure:"services"`
	// Version says which field is the deployed service.version when the
	// payload has no "version": sha (the full commit), short_sha (its first
	// 7 characters, git's abbreviation) or ref (the branch or tag). It must
	// equal the service.version the service's own spans report, or the
	// query side sees a deploy and a version change as two deployments.
	Version string `mapstructure:"version"`
}

// ArgoCDConfig configures the Argo CD source. Argo CD does not sign its
// notifications; a shared secret in a header authenticates them.
type ArgoCDConfig struct {
	// Path is the URL path the notifications webhook service posts to.
	Path string `mapstructure:"path"`
	// Secret is the shared secret the webhook service sends in Header.
	// Required.
	Secret configopaque.String `mapstructure:"secret"`
	// Header is the request header carrying the secret.
	Header string `mapstructure:"header"`
	// Scheme prefixes the secret in Header ("Bearer" expects
	// "Bearer <secret>"); empty expects the bare secret.
	Scheme string `mapstructure:"scheme"`
}

// CDEventsConfig configures the CDEvents source.
type CDEventsConfig struct {
	// Path is the URL path CloudEvents are posted to.
	Path string `mapstructure:"path"`
	// Token, when set, must arrive as "Authorization: Bearer <token>".
	// CloudEvents has no signature of its own, so without it the path
	// accepts anyone who can reach it: keep it on a private network.
	Token configopaque.String `mapstructure:"token"`
}

// PagerDutyConfig configures the PagerDuty source: a v3 webhook
// subscription's deliveries, each signed with the subscription's secret.
type PagerDutyConfig struct {
	// Path is the URL path the webhook subscription posts to.
	Path string `mapstructure:"path"`
	// Secret is the subscription's signing secret (PagerDuty shows it once,
	// when the subscription is created). Required: every delivery must
	// carry X-PagerDuty-Signature, v1= the HMAC-SHA256 of its body under it.
	Secret configopaque.String `mapstructure:"secret"`
	// Services maps a PagerDuty service, by its ID (PF9KMXH) or its name
	// (the summary, "API Service"), to the service.name its spans carry;
	// an unmapped PagerDuty service is taken by its name.
	Services map[string]string `mapstructure:"services"`
	// Environment is the environment of every incident (PagerDuty names
	// none), unless Environments maps its PagerDuty service.
	Environment string `mapstructure:"environment"`
	// Environments maps a PagerDuty service, by ID or name, to the
	// environment of its incidents.
	Environments map[string]string `mapstructure:"environments"`
}

// AlertmanagerConfig configures the Alertmanager source: a webhook_config
// receiver's notifications, each alert one incident.
type AlertmanagerConfig struct {
	// Path is the URL path Alertmanager posts to.
	Path string `mapstructure:"path"`
	// Token, when set, must arrive as "Authorization: Bearer <token>"
	// (Alertmanager's http_config.authorization.credentials). Alertmanager
	// does not sign notifications: without it the path accepts anyone who
	// can reach it.
	Token configopaque.String `mapstructure:"token"`
	// ServiceLabels are the labels naming an alert's service, the first
	// present wins; an alert with none of them is no incident.
	ServiceLabels []string `mapstructure:"service_labels"`
	// EnvironmentLabels are the labels naming an alert's environment, the
	// first present wins; else Environment.
	EnvironmentLabels []string `mapstructure:"environment_labels"`
	// Environment is the environment of an alert without an environment label.
	Environment string `mapstructure:"environment"`
	// MatchLabels selects the alerts that are incidents: those carrying
	// every one of these labels with its value. Not every alert is a
	// user-facing incident (a disk filling up, a certificate expiring in a
	// month); route only the ones that are, or mark them (changelens:
	// incident, severity: critical). Empty: every alert is.
	MatchLabels map[string]string `mapstructure:"match_labels"`
}

var _ component.Config = (*Config)(nil)

// GitHub service and version rules.
const (
	serviceRepositoryName     = "repository_name"
	serviceRepositoryFullName = "repository_full_name"
	versionSHA                = "sha"
	versionShortSHA           = "short_sha"
	versionRef                = "ref"
)

// Validate checks the configuration; every message names the offending field.
func (c *Config) Validate() error {
	var errs []error
	if strings.TrimSpace(c.NetAddr.Endpoint) == "" {
		errs = append(errs, errors.New("endpoint: must not be empty"))
	}
	if !c.GitHub.HasValue() && !c.ArgoCD.HasValue() && !c.CDEvents.HasValue() && !c.PagerDuty.HasValue() && !c.Alertmanager.HasValue() {
		errs = append(errs, errors.New("github, argocd, cdevents, pagerduty, alertmanager: configure at least one source"))
	}
	paths := map[string]string{}
	checkPath := func(field, p string) {
		switch {
		case !strings.HasPrefix(p, "/"):
			errs = append(errs, fmt.Errorf("%s: %q must start with /", field, p))
		case paths[p] != "":
			errs = append(errs, fmt.Errorf("%s: %q is already %s", field, p, paths[p]))
		default:
			paths[p] = field
		}
	}
	if g := c.GitHub.Get(); g != nil {
		checkPath("github.path", g.Path)
		if g.Secret == "" {
			errs = append(errs, errors.New("github.secret: required (the webhook's secret, which signs every delivery)"))
		}
		if g.Service != serviceRepositoryName && g.Service != serviceRepositoryFullName {
			errs = append(errs, fmt.Errorf("github.service: %q is not %s or %s", g.Service, serviceRepositoryName, serviceRepositoryFullName))
		}
		for repo, svc := range g.Services {
			if strings.TrimSpace(svc) == "" {
				errs = append(errs, fmt.Errorf("github.services[%s]: empty service name", repo))
			}
		}
		if g.Version != versionSHA && g.Version != versionShortSHA && g.Version != versionRef {
			errs = append(errs, fmt.Errorf("github.version: %q is not %s, %s or %s", g.Version, versionSHA, versionShortSHA, versionRef))
		}
	}
	if a := c.ArgoCD.Get(); a != nil {
		checkPath("argocd.path", a.Path)
		if a.Secret == "" {
			errs = append(errs, errors.New("argocd.secret: required (Argo CD does not sign notifications; the shared secret is their only authentication)"))
		}
		if strings.TrimSpace(a.Header) == "" {
			errs = append(errs, errors.New("argocd.header: must not be empty"))
		}
		if strings.ContainsAny(a.Scheme, " \t") {
			errs = append(errs, fmt.Errorf("argocd.scheme: %q must be one word (e.g. Bearer) or empty", a.Scheme))
		}
	}
	if e := c.CDEvents.Get(); e != nil {
		checkPath("cdevents.path", e.Path)
	}
	if p := c.PagerDuty.Get(); p != nil {
		checkPath("pagerduty.path", p.Path)
		if p.Secret == "" {
			errs = append(errs, errors.New("pagerduty.secret: required (the webhook subscription's signing secret)"))
		}
		errs = append(errs, checkMapping("pagerduty.services", p.Services)...)
		if strings.TrimSpace(p.Environment) == "" {
			errs = append(errs, errors.New("pagerduty.environment: must not be empty"))
		}
		errs = append(errs, checkMapping("pagerduty.environments", p.Environments)...)
	}
	if a := c.Alertmanager.Get(); a != nil {
		checkPath("alertmanager.path", a.Path)
		if len(a.ServiceLabels) == 0 {
			errs = append(errs, errors.New("alertmanager.service_labels: must name at least one label"))
		}
		errs = append(errs, checkLabels("alertmanager.service_labels", a.ServiceLabels)...)
		errs = append(errs, checkLabels("alertmanager.environment_labels", a.EnvironmentLabels)...)
		if strings.TrimSpace(a.Environment) == "" {
			errs = append(errs, errors.New("alertmanager.environment: must not be empty"))
		}
		for _, k := range slices.Sorted(maps.Keys(a.MatchLabels)) {
			if strings.TrimSpace(k) == "" {
				errs = append(errs, errors.New("alertmanager.match_labels: empty label name"))
			}
		}
	}
	return errors.Join(errs...)
}

// checkMapping refuses a mapping to an empty name, naming its key.
func checkMapping(field string, m map[string]string) []error {
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if strings.TrimSpace(m[k]) == "" {
			errs = append(errs, fmt.Errorf("%s[%s]: empty name", field, k))
		}
	}
	return errs
}

// checkLabels refuses an empty label name, naming its index.
func checkLabels(field string, labels []string) []error {
	var errs []error
	for i, l := range labels {
		if strings.TrimSpace(l) == "" {
			errs = append(errs, fmt.Errorf("%s[%d]: empty label name", field, i))
		}
	}
	return errs
}

func defaultConfig() *Config {
	srv := confighttp.NewDefaultServerConfig()
	srv.NetAddr.Endpoint = defaultEndpoint
	return &Config{
		ServerConfig: srv,
		GitHub:       configoptional.Default(GitHubConfig{Path: "/github", Service: serviceRepositoryName, Version: versionSHA}),
		ArgoCD:       configoptional.Default(ArgoCDConfig{Path: "/argocd", Header: "Authorization", Scheme: "Bearer"}),
		CDEvents:     configoptional.Default(CDEventsConfig{Path: "/cdevents"}),
		PagerDuty:    configoptional.Default(PagerDutyConfig{Path: "/pagerduty", Environment: defaultIncidentEnvironment}),
		Alertmanager: configoptional.Default(AlertmanagerConfig{
			Path:              "/alertmanager",
			ServiceLabels:     []string{"service", "service_name", "job"},
			EnvironmentLabels: []string{"environment", "env", "deployment_environment"},
			Environment:       defaultIncidentEnvironment,
		}),
	}
}
