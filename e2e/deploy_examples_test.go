package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/expr-lang/expr"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
	"k8s.io/client-go/util/jsonpath"
)

// The examples in deploy/ are checked the way their controllers use them,
// against a live API: the Argo Rollouts AnalysisTemplate's web provider
// (client-go's jsonpath over the JSON body, then the expr conditions, with
// Argo Rollouts' rules for Successful / Failed / Inconclusive) and the
// Flagger canary's rollout webhook (its payload POSTed; a non-2xx answer is
// a failed check).

// argoPhase runs the AnalysisTemplate's metric against base with the given
// args and returns Argo Rollouts' measurement phase.
func argoPhase(t *testing.T, base string, args map[string]string) string {
	t.Helper()
	var tmpl struct {
		Spec struct {
			Args []struct {
				Name  string  `yaml:"name"`
				Value *string `yaml:"value"`
			} `yaml:"args"`
			Metrics []struct {
				SuccessCondition string `yaml:"successCondition"`
				FailureCondition string `yaml:"failureCondition"`
				Provider         struct {
					Web struct {
						URL      string `yaml:"url"`
						JSONPath string `yaml:"jsonPath"`
					} `yaml:"web"`
				} `yaml:"provider"`
			} `yaml:"metrics"`
		} `yaml:"spec"`
	}
	readYAML(t, "deploy/argo-rollouts/analysis-template.yaml", &tmpl)
	require.Len(t, tmpl.Spec.Metrics, 1)
	m := tmpl.Spec.Metrics[0]
	url := m.Provider.Web.URL
	for _, a := range tmpl.Spec.Args {
		v, ok := args[a.Name]
		if !ok && a.Value != nil {
			v = *a.Value
		}
		require.True(t, ok || a.Value != nil, "arg %s has no value", a.Name)
		url = strings.ReplaceAll(url, "{{args."+a.Name+"}}", v)
	}
	require.NotContains(t, url, "{{", "unresolved template in %s", url)
	url = strings.Replace(url, "http://changelens-api.observability.svc:8080", base, 1)

	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return "Error"
	}
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var data any
	require.NoError(t, json.Unmarshal(body, &data))
	jp := jsonpath.New("metrics")
	require.NoError(t, jp.Parse(m.Provider.Web.JSONPath))
	results, err := jp.FindResults(data)
	require.NoError(t, err)
	require.NotEmpty(t, results)
	require.NotEmpty(t, results[0])
	val := results[0][0].Interface()
	cond := func(c string) bool {
		env := map[string]any{"result": val}
		prog, err := expr.Compile(c, expr.Env(env), expr.AsBool())
		require.NoError(t, err, c)
		out, err := expr.Run(prog, env)
		require.NoError(t, err, c)
		return out.(bool)
	}
	success, failure := cond(m.SuccessCondition), cond(m.FailureCondition)
	switch {
	case failure:
		return "Failed"
	case success:
		return "Successful"
	}
	return "Inconclusive"
}

// flaggerPasses POSTs the canary's rollout webhook payload with the given
// version and reports whether Flagger would count the check as passed.
func flaggerPasses(t *testing.T, base, version string) bool {
	t.Helper()
	var canary struct {
		Metadata struct {
			Name      string `yaml:"name"`
			Namespace string `yaml:"namespace"`
		} `yaml:"metadata"`
		Spec struct {
			Analysis struct {
				Webhooks []struct {
					Type     string            `yaml:"type"`
					URL      string            `yaml:"url"`
					Metadata map[string]string `yaml:"metadata"`
				} `yaml:"webhooks"`
			} `yaml:"analysis"`
		} `yaml:"spec"`
	}
	readYAML(t, "deploy/flagger/canary.yaml", &canary)
	require.Len(t, canary.Spec.Analysis.Webhooks, 1)
	w := canary.Spec.Analysis.Webhooks[0]
	require.Equal(t, "rollout", w.Type)
	w.Metadata["version"] = version
	payload, err := json.Marshal(map[string]any{"name": canary.Metadata.Name, "namespace": canary.Metadata.Namespace,
		"phase": "Progressing", "checksum": "7b1c", "metadata": w.Metadata})
	require.NoError(t, err)
	url := strings.Replace(w.URL, "http://changelens-api.observability.svc:8080", base, 1)
	resp, err := http.Post(url, "application/json", bytes.NewReader(payload))
	require.NoError(t, err)
	defer resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 300
}

func readYAML(t *testing.T, rel string, out any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), rel))
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(b, out))
}
