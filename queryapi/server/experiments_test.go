package server

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

func (ts *testServer) post(t *testing.T, path, body string) (int, map[string]any) {
	t.Helper()
	resp, err := httpClient.Post(ts.base+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, decode(t, raw)
}

const planBody = `{"id":"x","unit":{"service":"app","environment":"production"},"dimension":"version",` +
	`"variants":[{"name":"1","control":true,"share":0.5},{"name":"2","share":0.5}],` +
	`"primary_metric":{"metric":"latency_p95","min_effect":0.05},"guardrails":[{"metric":"cpu_per_request","max_degradation":0.1}],` +
	`"start_time":"2026-11-20T00:00:00Z","planned_duration":"14d"}`

// Bad definitions are a 400 naming the field, in a JSON body, and never
// reach the source; a good one is planned.
func TestPlanExperimentNamesTheField(t *testing.T) {
	src := &fakeSource{}
	ts := startServer(t, Config{Source: src})
	for _, tc := range []struct{ name, from, to, field string }{
		{"no primary metric", `"primary_metric":{"metric":"latency_p95","min_effect":0.05},`, ``, "experiment.primary_metric"},
		{"unknown metric", `"cpu_per_request"`, `"cpu_per_requests"`, "experiment.guardrails[0].metric"},
		{"one variant", `{"name":"1","control":true,"share":0.5},`, ``, "experiment.variants"},
		{"bad duration", `"14d"`, `"fortnight"`, "experiment.planned_duration"},
		{"no start", `"start_time":"2026-11-20T00:00:00Z",`, ``, "experiment.start_time"},
		{"bad dimension", `"dimension":"version"`, `"dimension":"colour"`, "experiment.dimension"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := strings.Replace(planBody, tc.from, tc.to, 1)
			if body == planBody {
				t.Fatal("the case changed nothing")
			}
			before := src.Calls()
			code, m := ts.post(t, "/v1/experiments:plan", body)
			if code != http.StatusBadRequest || !strings.HasPrefix(m["message"].(string), tc.field+":") {
				t.Fatalf("%d %v, want 400 naming %s", code, m, tc.field)
			}
			if src.Calls() != before {
				t.Error("an invalid definition reached the source")
			}
		})
	}
	code, m := ts.post(t, "/v1/experiments:plan", planBody)
	if code != http.StatusOK || m["sufficient"] != true || !strings.Contains(m["message"].(string), "needs 9 days") {
		t.Fatalf("%d %v", code, m)
	}
	if p := m["primary"].(map[string]any); p["days_needed"] != json.Number("9") {
		t.Errorf("primary plan %v", p)
	}
}

func TestExperimentReportREST(t *testing.T) {
	ts := startServer(t, Config{Source: &fakeSource{}})
	code, m := ts.getJSON(t, "/v1/experiments/"+expID+"/report")
	if code != http.StatusOK || m["decision"] != "EXPERIMENT_DECISION_DONT_SHIP" || m["status"] != "EXPERIMENT_STATUS_COMPLETE" ||
		!strings.Contains(m["summary"].(string), "guardrail cost failed") {
		t.Fatalf("%d %v", code, m)
	}
	tr := m["treatments"].([]any)[0].(map[string]any)
	mr := tr["metrics"].([]any)[0].(map[string]any)
	if mr["metric"] != "cpu_per_request" || mr["verdict"] != "FAILED" || mr["unit"] != "cpu_seconds_per_1000_requests" ||
		mr["relative_effect"] != json.Number("1") || mr["p_value"] != nil {
		t.Errorf("metric %v", mr)
	}
	if e := m["experiment"].(map[string]any); e["planned_duration"] != "14d" || e["start_time"] != "2026-11-20T00:00:00Z" {
		t.Errorf("experiment %v", e)
	}
	if code, m := ts.getJSON(t, "/v1/experiments/nope/report"); code != http.StatusNotFound {
		t.Errorf("unknown id: %d %v", code, m)
	}
	if code, m := ts.getJSON(t, "/v1/experiments/bad%20id/report"); code != http.StatusBadRequest || !strings.HasPrefix(m["message"].(string), "id:") {
		t.Errorf("bad id: %d %v", code, m)
	}
	code, m = ts.getJSON(t, "/v1/experiments")
	if code != http.StatusOK || len(m["experiments"].([]any)) != 1 {
		t.Fatalf("list: %d %v", code, m)
	}
}
