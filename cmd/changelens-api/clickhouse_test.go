package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.yaml.in/yaml/v3"

	"github.com/changelens/changelens/testkit/chtest"
	"github.com/changelens/changelens/testkit/pipelinetest"
)

func TestMain(m *testing.M) { os.Exit(chtest.Main(m)) }

// TestAPIOnClickHouse is the binary end to end: spans through the real
// changelens processor and exporter into a real ClickHouse, then run() with
// the real store, as the read-only user, answering REST over its listener.
//
// Scenario (UTC, start = 3 h ago on a whole hour): checkout/production runs v1
// (20 ms) for an hour, then a CI deploy span deploys v2 (commit 2 h earlier),
// which serves at 60 ms. The deploy is explicit, lead time 7200 s, and a
// latency regression: DEGRADED, a change failure.
func TestAPIOnClickHouse(t *testing.T) {
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	start := time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)
	deployAt := start.Add(time.Hour)
	feedScenario(t, srv.Addr(), db, start, deployAt)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := make(chan net.Addr, 1)
	done := make(chan error, 1)
	var logs syncBuffer
	dsn := srv.DSN(chtest.ReadOnlyUser, chtest.ReadOnlyPassword, db)
	go func() {
		done <- run(ctx, []string{"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--clickhouse-dsn", dsn},
			env(nil), &logs, func(_, h net.Addr) { addrs <- h })
	}()
	var base string
	select {
	case a := <-addrs:
		base = "http://" + a.String()
	case err := <-done:
		t.Fatalf("run: %v\n%s", err, logs.String())
	case <-time.After(30 * time.Second):
		t.Fatal("run did not start")
	}
	get := func(path string, wantCode int) map[string]any {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != wantCode {
			t.Fatalf("GET %s: %d, want %d: %s\n%s", path, resp.StatusCode, wantCode, body, logs.String())
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("GET %s: %v: %s", path, err, body)
		}
		return m
	}
	rfc := func(t time.Time) string { return url.QueryEscape(t.Format(time.RFC3339)) }

	// Readiness comes from a probe in the background: NOT_SERVING until the
	// first one answered.
	ready := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(ready) {
			t.Fatal("healthz never became 200")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if h := get("/livez", 200); h["status"] != "SERVING" {
		t.Errorf("livez %v", h)
	}
	// The Kubernetes example probes paths that answer.
	for _, p := range probePaths(t, "../../deploy/kubernetes/api.yaml") {
		if h := get(p, 200); h["status"] != "SERVING" {
			t.Errorf("probe %s: %v", p, h)
		}
	}

	units := get("/v1/services?environment=production", 200)["services"].([]any)
	if len(units) != 2 || units[0].(map[string]any)["service"] != "checkout" ||
		fmt.Sprint(units[0].(map[string]any)["versions"]) != "[v2 v1]" {
		t.Errorf("services %v", units)
	}

	deps := get("/v1/deployments?service=checkout&start_time="+rfc(start)+"&end_time="+rfc(start.Add(3*time.Hour)), 200)["deployments"].([]any)
	if len(deps) != 1 {
		t.Fatalf("deployments %v", deps)
	}
	d := deps[0].(map[string]any)
	for k, want := range map[string]any{
		"version": "v2", "previous_version": "v1", "source": "SOURCE_EXPLICIT", "commit_sha": "sha-v2",
		"lead_time_seconds": 7200.0, "deploy_time": deployAt.Format(time.RFC3339), "verdict": "VERDICT_DEGRADED",
		"change_failure": true, "rollback": false, "restore_time": nil,
	} {
		if d[k] != want {
			t.Errorf("deployment %s = %v, want %v", k, d[k], want)
		}
	}

	im := get("/v1/deployments/"+d["id"].(string)+"/impact", 200)
	before, after := im["before"].(map[string]any), im["after"].(map[string]any)
	if im["verdict"] != "VERDICT_DEGRADED" || im["windows_complete"] != true ||
		before["requests"].(float64) < 250 || after["requests"].(float64) < 250 ||
		im["latency_ratio"].(float64) < 2 || im["latency_test"].(map[string]any)["significant"] != true {
		t.Errorf("impact %v", im)
	}
	get("/v1/deployments/ffffffffffffffffffffffffffffffff/impact", 404)

	lat := get("/v1/latency?service=checkout&environment=production&group_by=version&step_seconds=1800"+
		"&start_time="+rfc(start)+"&end_time="+rfc(start.Add(2*time.Hour)), 200)
	groups := map[string]float64{}
	for _, p := range lat["points"].([]any) {
		p := p.(map[string]any)
		groups[p["group"].(string)] += p["count"].(float64)
		if p95 := p["p95_ms"].(float64); (p["group"] == "v1" && (p95 < 15 || p95 > 25)) || (p["group"] == "v2" && (p95 < 50 || p95 > 70)) {
			t.Errorf("point %v", p)
		}
	}
	if groups["v1"] != 600 || groups["v2"] != 600 {
		t.Errorf("counts by version %v (points %v)", groups, lat["points"])
	}

	dora := get("/v1/dora?service=checkout&start_time="+rfc(start)+"&end_time="+rfc(start.Add(3*time.Hour)), 200)["summary"].(map[string]any)
	for k, want := range map[string]float64{"deployment_count": 1, "change_count": 1, "failed_change_count": 1,
		"change_failure_rate": 1, "lead_time_median_seconds": 7200, "lead_time_sample_count": 1} {
		if dora[k] != want {
			t.Errorf("dora %s = %v, want %v", k, dora[k], want)
		}
	}

	// A unit deployed by CI but without traffic is a unit, and its second
	// deploy names the first as its previous version.
	listed := false
	for _, u := range get("/v1/services?environment=production", 200)["services"].([]any) {
		u := u.(map[string]any)
		if u["service"] == "nightly-report" {
			listed = true
			if vs := fmt.Sprint(u["versions"]); vs != "[v2 v1]" {
				t.Errorf("nightly-report versions %s, want [v2 v1]", vs)
			}
		}
	}
	if !listed {
		t.Error("/v1/services omits nightly-report, which has deployments but no traffic")
	}
	nightly := get("/v1/deployments?service=nightly-report&environment=production&start_time="+rfc(start.Add(-time.Minute))+
		"&end_time="+rfc(start.Add(3*time.Hour)), 200)["deployments"].([]any)
	if len(nightly) != 2 {
		t.Fatalf("nightly-report deployments %v", nightly)
	}
	if d := nightly[0].(map[string]any); d["version"] != "v2" || d["previous_version"] != "v1" {
		t.Errorf("nightly-report v2: %v, want previous_version v1", d)
	}

	// Bad and hostile input, answered by the real store on this server: the
	// same status and a JSON google.rpc.Status on every ClickHouse version.
	lq := "/v1/latency?service=checkout&environment=production&start_time=" + rfc(start) + "&end_time=" + rfc(start.Add(2*time.Hour))
	for _, c := range []struct {
		path string
		code int
	}{
		{"/v1/latency?environment=production", 400},
		{lq + "&step_seconds=30", 400},
		{lq + "&group_by=hour", 400},
		{"/v1/deployments?page_size=501", 400},
		{"/v1/deployments?page_token=bm90LWEtdG9rZW4", 400},
		{"/v1/deployments/XYZ/impact", 400},
		{"/v1/dora?interval=HOUR", 400},
		{"/v1/deployments/0123456789abcdef0123456789abcdef/impact", 404},
		{"/v2/nothing", 404},
		// Hostile strings that pass validation reach SQL as parameters only.
		{"/v1/latency?service=" + url.QueryEscape("checkout' OR 1=1 --") + "&environment=production", 200},
		{"/v1/deployments?service=" + url.QueryEscape(`x\' UNION SELECT 1 --`), 200},
		{"/v1/dora?environment=" + url.QueryEscape("production'); DROP TABLE deployment_events; --"), 200},
		{"/v1/services?environment=" + url.QueryEscape("\\'\""), 200},
	} {
		body := get(c.path, c.code)
		if c.code != 200 {
			if _, ok := body["code"].(float64); !ok {
				t.Errorf("%s: body %v is not a google.rpc.Status", c.path, body)
			}
			if msg, _ := body["message"].(string); msg == "" || strings.Contains(msg, "clickhouse") || strings.Contains(msg, "code:") {
				t.Errorf("%s: message %q", c.path, msg)
			}
		}
	}
	if pts := get("/v1/latency?service="+url.QueryEscape("checkout' OR 1=1 --")+"&environment=production", 200)["points"].([]any); len(pts) != 0 {
		t.Errorf("an injected service name matched rows: %v", pts)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not stop")
	}
	if strings.Contains(logs.String(), chtest.ReadOnlyPassword) {
		t.Errorf("logs contain the password:\n%s", logs.String())
	}
}

// feedScenario sends the scenario's spans through a changelens processor into
// the changelens exporter (schema created by it) and drains both.
func feedScenario(t *testing.T, addr, db string, start, deployAt time.Time) {
	t.Helper()
	pipe := pipelinetest.New(t, addr, db, 1, nil)
	var seq uint64
	span := func(ss ptrace.SpanSlice) ptrace.Span {
		s := ss.AppendEmpty()
		seq++
		var tid pcommon.TraceID
		binary.BigEndian.PutUint64(tid[8:], seq)
		var sid pcommon.SpanID
		binary.BigEndian.PutUint64(sid[:], seq)
		s.SetTraceID(tid)
		s.SetSpanID(sid)
		return s
	}
	// 10 requests a minute for two hours; v2 from the deploy on. The
	// latency varies a little so the rank test has no all-ties sample.
	for m := 0; m < 120; m++ {
		minute := start.Add(time.Duration(m) * time.Minute)
		version, base := "v1", 20*time.Millisecond
		if !minute.Before(deployAt) {
			version, base = "v2", 60*time.Millisecond
		}
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		a := rs.Resource().Attributes()
		a.PutStr("service.name", "checkout")
		a.PutStr("deployment.environment.name", "production")
		a.PutStr("service.version", version)
		ss := rs.ScopeSpans().AppendEmpty().Spans()
		for i := 0; i < 10; i++ {
			s := span(ss)
			s.SetKind(ptrace.SpanKindServer)
			s.SetName("GET /cart")
			s.Attributes().PutStr("http.request.method", "GET")
			s.Attributes().PutStr("http.route", "/cart")
			s.Attributes().PutInt("http.response.status_code", 200)
			at := minute.Add(time.Duration(i) * 6 * time.Second)
			s.SetStartTimestamp(pcommon.NewTimestampFromTime(at))
			s.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(base + time.Duration(i%5)*time.Millisecond)))
		}
		// nightly-report runs no traffic through the collector; CI deploys
		// it twice (v1 at the start, v2 half an hour later).
		for _, d := range []struct {
			at      time.Duration
			version string
		}{{0, "v1"}, {30 * time.Minute, "v2"}} {
			if minute.Equal(start.Add(d.at)) {
				ci := td.ResourceSpans().AppendEmpty()
				ci.Resource().Attributes().PutStr("service.name", "github-actions")
				s := span(ci.ScopeSpans().AppendEmpty().Spans())
				s.SetName("deploy nightly-report")
				s.SetStartTimestamp(pcommon.NewTimestampFromTime(minute.Add(-time.Minute)))
				s.SetEndTimestamp(pcommon.NewTimestampFromTime(minute))
				ca := s.Attributes()
				ca.PutStr("cicd.pipeline.task.type", "deploy")
				ca.PutStr("service.name", "nightly-report")
				ca.PutStr("service.version", d.version)
				ca.PutStr("deployment.environment.name", "production")
			}
		}
		if minute.Equal(deployAt) {
			ci := td.ResourceSpans().AppendEmpty()
			ci.Resource().Attributes().PutStr("service.name", "github-actions")
			s := span(ci.ScopeSpans().AppendEmpty().Spans())
			s.SetName("deploy checkout")
			s.SetStartTimestamp(pcommon.NewTimestampFromTime(deployAt.Add(-3 * time.Minute)))
			s.SetEndTimestamp(pcommon.NewTimestampFromTime(deployAt))
			ca := s.Attributes()
			ca.PutStr("cicd.pipeline.task.type", "deploy")
			ca.PutStr("service.name", "checkout")
			ca.PutStr("service.version", "v2")
			ca.PutStr("deployment.environment.name", "production")
			ca.PutStr("vcs.ref.head.revision", "sha-v2")
			ca.PutInt("changelens.commit.time", deployAt.Add(-2*time.Hour).Unix())
			ca.PutStr("cicd.pipeline.task.run.result", "success")
		}
		pipe.Send(t, td)
	}
	pipe.Close(t)
}

// probePaths are the HTTP probe paths of the Deployments in a manifest.
func probePaths(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	type probe struct {
		HTTPGet struct {
			Path string `yaml:"path"`
		} `yaml:"httpGet"`
	}
	var paths []string
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var doc struct {
			Spec struct {
				Template struct {
					Spec struct {
						Containers []struct {
							Liveness  probe `yaml:"livenessProbe"`
							Readiness probe `yaml:"readinessProbe"`
						} `yaml:"containers"`
					} `yaml:"spec"`
				} `yaml:"template"`
			} `yaml:"spec"`
		}
		if err := dec.Decode(&doc); err != nil {
			break
		}
		for _, c := range doc.Spec.Template.Spec.Containers {
			paths = append(paths, c.Liveness.HTTPGet.Path, c.Readiness.HTTPGet.Path)
		}
	}
	if len(paths) != 2 || paths[0] != "/livez" || paths[1] != "/readyz" {
		t.Fatalf("%s probes %v, want liveness /livez and readiness /readyz", file, paths)
	}
	return paths
}
