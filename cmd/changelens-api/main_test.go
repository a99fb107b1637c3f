package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/limits"
	"github.com/changelens/changelens/queryapi/report"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestFlagsAndEnv(t *testing.T) {
	o, err := parseFlags([]string{"--http-addr", "127.0.0.1:1"}, env(map[string]string{
		"CHANGELENS_CLICKHOUSE_DSN": "clickhouse://r:pw@h:9000/db",
		"CHANGELENS_HTTP_ADDR":      "ignored:2", // the flag wins
		"CHANGELENS_GRPC_ADDR":      "127.0.0.1:3",
		"CHANGELENS_QUERY_TIMEOUT":  "5s",
		"CHANGELENS_ALPHA":          "0.05",
		"CHANGELENS_BEFORE_WINDOW":  "1h",
		"CHANGELENS_MIN_REQUESTS":   "20",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.dsn != "clickhouse://r:pw@h:9000/db" || o.httpAddr != "127.0.0.1:1" || o.grpcAddr != "127.0.0.1:3" ||
		o.limits.QueryTimeout != 5*time.Second || o.analysis.Alpha != 0.05 || o.analysis.BeforeWindow != time.Hour ||
		o.analysis.MinRequests != 20 {
		t.Errorf("options %+v", o)
	}
	// Defaults (docs/analysis.md).
	o, err = parseFlags([]string{"--clickhouse-dsn", "clickhouse://h:9000/db"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := analysis.Config{BeforeWindow: 30 * time.Minute, AfterGap: 2 * time.Minute, AfterWindow: 30 * time.Minute,
		MinRequests: 50, Alpha: 0.005, LatencyFloor: 0.05, ErrorRateFloorRatio: 1.5, ErrorRateFloorDelta: 0.001,
		MaxOperations: 50, Power: 0.8, DispersionLags: 2, ErrorKindAlpha: 0.005, ErrorKindFloor: 0.0005, ErrorKindMinMinutes: 2,
		ErrorKindHistory: 7 * 24 * time.Hour, AttributionWindow: 15 * time.Minute, AttributionZ: 3, AttributionShare: 0.5, FlagShareChange: 0.05,
		CompareAlpha: 0.01, LatencyRatio: 1.2, ErrorRateMinDelta: 0.01, ErrorRateMinRatio: 1.5,
		MinExpectedCount: 5, ReappearAfter: 10 * time.Minute, MergeWindow: time.Hour, FixForwardWindow: 24 * time.Hour}
	if o.analysis != want || o.analysis != analysis.DefaultConfig() || o.httpAddr != ":8080" || o.grpcAddr != ":9090" || o.limits != limits.Default() {
		t.Errorf("defaults %+v", o)
	}

	for _, c := range []struct {
		args []string
		env  map[string]string
	}{
		{nil, nil}, // no DSN
		{[]string{"--clickhouse-dsn", "x", "extra"}, nil},
		{[]string{"--clickhouse-dsn", "x", "--query-timeout", "0s"}, nil},
		{[]string{"--clickhouse-dsn", "x"}, map[string]string{"CHANGELENS_QUERY_TIMEOUT": "soon"}},
		{[]string{"--no-such-flag"}, nil},
	} {
		if _, err := parseFlags(c.args, env(c.env), io.Discard); err == nil {
			t.Errorf("%v %v: no error", c.args, c.env)
		}
	}
}

func TestRedactDSN(t *testing.T) {
	for in, want := range map[string]string{
		"clickhouse://reader:hunter2@localhost:9000/changelens":              "clickhouse://reader:xxxxx@localhost:9000/changelens",
		"clickhouse://localhost:9000/changelens?username=r&password=hunter2": "clickhouse://localhost:9000/changelens?password=xxxxx&username=r",
		"tcp://host:9000?debug=true":                                         "tcp://host:9000?debug=true",
		"hunter2":                                                            "(unparsable DSN)",
	} {
		if got := redactDSN(in); got != want {
			t.Errorf("redactDSN(%q) = %q, want %q", in, got, want)
		}
	}
}

type stubSource struct{}

func (stubSource) Graph(context.Context, report.GraphQuery) ([]report.GraphEdge, error) {
	return nil, nil
}
func (stubSource) Units(context.Context, string) ([]report.Unit, error) { return nil, nil }
func (stubSource) Incidents(context.Context, report.IncidentQuery) ([]report.Incident, error) {
	return nil, nil
}
func (stubSource) Latency(context.Context, report.LatencyQuery) ([]report.LatencyPoint, error) {
	return nil, nil
}
func (stubSource) LatencySummary(context.Context, report.LatencyQuery) ([]report.LatencyPoint, error) {
	return nil, nil
}
func (stubSource) Deployments(context.Context, report.DeploymentQuery) ([]report.Deployment, string, error) {
	return nil, "", nil
}
func (stubSource) Impact(context.Context, string) (report.Impact, error) {
	return report.Impact{}, report.ErrNotFound
}
func (stubSource) Compare(context.Context, report.CompareQuery) (report.Comparison, error) {
	return report.Comparison{}, nil
}
func (stubSource) Cohorts(context.Context, report.CohortQuery) ([]report.CohortDimension, error) {
	return nil, nil
}
func (stubSource) Gate(context.Context, report.GateQuery) (report.GateAnswer, error) {
	return report.GateAnswer{}, nil
}
func (stubSource) DORA(context.Context, report.DORAQuery) (report.DORAReport, error) {
	return report.DORAReport{}, nil
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRun starts the binary's run() on free ports with a stub Source: it
// serves, enforces the token, logs no secret, and stops cleanly on cancel.
func TestRun(t *testing.T) {
	var got SourceConfig
	closed := false
	orig := openSource
	openSource = func(_ context.Context, c SourceConfig) (report.Source, func() error, error) {
		got = c
		return stubSource{}, func() error { closed = true; return nil }, nil
	}
	defer func() { openSource = orig }()

	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte("file-token-123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan [2]net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
			"--auth-tokens-file", tokens, "--after-window", "45m"},
			env(map[string]string{
				"CHANGELENS_CLICKHOUSE_DSN": "clickhouse://reader:hunter2@localhost:9000/changelens",
				"CHANGELENS_AUTH_TOKENS":    "env-token-456",
			}), &logs, func(g, h net.Addr) { addrs <- [2]net.Addr{g, h} })
	}()
	var base string
	select {
	case a := <-addrs:
		base = "http://" + a[1].String()
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("run did not start")
	}
	if got.DSN != "clickhouse://reader:hunter2@localhost:9000/changelens" || got.Analysis.AfterWindow != 45*time.Minute {
		t.Errorf("source config %+v", got)
	}
	get := func(path, token string) int {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := get("/healthz", ""); c != 200 {
		t.Errorf("healthz %d", c)
	}
	if c := get("/v1/dora", ""); c != 401 {
		t.Errorf("no token %d", c)
	}
	if c := get("/v1/dora", "file-token-123"); c != 200 {
		t.Errorf("file token %d", c)
	}
	if c := get("/v1/dora", "env-token-456"); c != 200 {
		t.Errorf("env token %d", c)
	}
	if c := get("/v1/deployments/0123456789abcdef0123456789abcdef/impact", "env-token-456"); c != 404 {
		t.Errorf("impact %d", c)
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
	if !closed {
		t.Error("source not closed")
	}
	out := logs.String()
	for _, secret := range []string{"hunter2", "file-token-123", "env-token-456"} {
		if strings.Contains(out, secret) {
			t.Errorf("logs contain %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "reader:xxxxx@localhost:9000") || !strings.Contains(out, `"auth_tokens":2`) {
		t.Errorf("startup log:\n%s", out)
	}
}

// TestRunClickHouseUnavailable: with the real store and no ClickHouse (or a
// malformed DSN), run fails at once, and neither the error nor the logs
// carry the password.
func TestRunClickHouseUnavailable(t *testing.T) {
	for _, dsn := range []string{
		"clickhouse://reader:hunter2@127.0.0.1:1/changelens?dial_timeout=2s",
		"clickhouse://reader:hunter2@127.0.0.1:notaport/changelens",
		"clickhouse://reader:hun%74er2@127.0.0.1:notaport/changelens",
		"clickhouse://127.0.0.1:notaport/changelens?username=reader&password=hunter2",
		"clickhouse://127.0.0.1:1/changelens?username=reader&password=hunter2&dial_timeout=2s",
	} {
		var logs syncBuffer
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := run(ctx, []string{"--clickhouse-dsn", dsn, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"},
			env(nil), &logs, func(net.Addr, net.Addr) { t.Errorf("%s: serving without ClickHouse", dsn) })
		cancel()
		if err == nil {
			t.Errorf("%s: no error", dsn)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") || strings.Contains(logs.String(), "hunter2") {
			t.Errorf("password leaked: %v %s", err, logs.String())
		}
	}
}

func TestScrubSecrets(t *testing.T) {
	for _, c := range []struct{ msg, dsn, want string }{
		{`parse "clickhouse://u:p%40ss@h:x/db": invalid port`, "clickhouse://u:p%40ss@h:x/db", `parse "clickhouse://u:xxxxx@h:x/db": invalid port`},
		{"auth p@ss failed", "clickhouse://u:p%40ss@h:9000/db", "auth xxxxx failed"},
		{"q=hunter2", "tcp://h:9000?username=u&password=hunter2", "q=xxxxx"},
		{"nothing secret", "clickhouse://h:9000/db", "nothing secret"},
	} {
		if got := scrubSecrets(c.msg, c.dsn); got != c.want {
			t.Errorf("scrubSecrets(%q, %q) = %q, want %q", c.msg, c.dsn, got, c.want)
		}
	}
}

// TestRunBadTeamsFile: a teams file that does not validate stops the API at
// start, before ClickHouse is opened, with the file, team and field named;
// the environment fallback reads the same flag.
func TestRunBadTeamsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "teams.yaml")
	doc := "teams:\n  - name: payments\n    services: [checkout]\n    targets:\n      change_failure_rate: 2\n"
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		args []string
		env  map[string]string
	}{
		"flag": {args: []string{"--teams-file", path}},
		"env":  {env: map[string]string{"CHANGELENS_TEAMS_FILE": path}},
	} {
		args := append([]string{"--clickhouse-dsn", "clickhouse://127.0.0.1:1/changelens?dial_timeout=1s",
			"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}, c.args...)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := run(ctx, args, env(c.env), io.Discard, func(net.Addr, net.Addr) { t.Errorf("%s: serving with a bad teams file", name) })
		cancel()
		if err == nil {
			t.Fatalf("%s: no error", name)
		}
		for _, want := range []string{"--teams-file", path, `team "payments"`, "targets.change_failure_rate"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q does not name %s", name, err, want)
			}
		}
		if strings.Contains(err.Error(), "ClickHouse") {
			t.Errorf("%s: ClickHouse was opened before the teams file was checked: %v", name, err)
		}
	}
}
