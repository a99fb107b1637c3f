package conformance

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/changelens/changelens/queryapi/limits"
	"github.com/changelens/changelens/queryapi/server"
	"github.com/changelens/changelens/queryapi/teams"
	"github.com/changelens/changelens/queryapi/usecase"
	"github.com/changelens/changelens/testkit/chtest"
	"github.com/changelens/changelens/testkit/pipelinetest"
)

func TestMain(m *testing.M) { os.Exit(chtest.Main(m)) }

// EnvSchemathesis names the schemathesis CLI (st) to run; default the
// repository's .venv/bin/st (make test installs it), and a missing CLI fails
// the test. `make test` runs this package once, in a step of its own on
// ClickHouse 18.16 (the runs check the document against the server, which
// does not depend on the engine; the two at once take 1½–2 minutes on 2
// cores, one alone 1¼), not in the two Go legs.
const EnvSchemathesis = "CHANGELENS_SCHEMATHESIS"

// EnvSchemathesisArgs holds extra arguments for st run.
const EnvSchemathesisArgs = "CHANGELENS_SCHEMATHESIS_ARGS"

// Schemathesis is bounded and reproducible: a fixed seed, a fixed number of
// cases per operation, no example database carried between runs.
const (
	seed        = "20240601"
	maxExamples = "50"
)

// token is the one bearer token the API accepts when auth is on.
const token = "conformance-token"

// TestSchemathesis serves the API on ClickHouse holding a small scenario and
// runs schemathesis with every check against its /openapi.json, twice, at
// once, on the same data: with auth on and with auth off. Any failure of
// either fails the test. The document states security exactly when the
// server enforces it (queryapi/server/openapi.go), and each run checks that:
//
//   - "auth": the document requires the bearer token; schemathesis sends it
//     on every request except where it checks that a request without it (or
//     with a wrong one) is refused (ignored_auth, missing_required_header);
//   - "no-auth": the document declares no security and no 401; schemathesis
//     sends no credentials, and every valid request must be answered.
//
// No check needs excluding. schemathesis_hooks.py makes the cases generated
// as valid obey the rules that tie parameters together, which the document
// states in words only. One run alone: -run '^TestSchemathesis$/^auth$'
// (or /^no-auth$).
func TestSchemathesis(t *testing.T) {
	st := os.Getenv(EnvSchemathesis)
	if st == "" {
		st = filepath.Join("..", ".venv", "bin", "st")
	}
	if _, err := os.Stat(st); err != nil {
		t.Fatalf("schemathesis CLI %s: %v (make test installs it into .venv from requirements-test.txt; or set %s)", st, err, EnvSchemathesis)
	}
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	now := time.Now().UTC().Truncate(time.Minute)
	feedScenario(t, srv.Addr(), db, now)

	// The subtests run in parallel, after this function returns: what they
	// share is released by cleanups, which wait for them.
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	lim := limits.Default()
	src, err := usecase.Open(ctx, srv.DSN(chtest.ReadOnlyUser, chtest.ReadOnlyPassword, db), usecase.Config{Limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	// One team, the OpenAPI document's example (team=payments with
	// service=checkout), so that the examples and the retrospective reach
	// the source.
	teamMap, err := teams.Parse([]byte("teams:\n  - name: payments\n    services: [checkout, payments]\n    targets:\n      lead_time_hours: 24\n"))
	if err != nil {
		t.Fatal(err)
	}

	for _, r := range []struct {
		name   string
		tokens []string
	}{{"auth", []string{token}}, {"no-auth", nil}} {
		t.Run(r.name, func(t *testing.T) {
			// Both at once: on 2 cores a run waits for the server and
			// ClickHouse much of the time, so the pair takes far less than
			// twice one run.
			t.Parallel()
			runSchemathesis(ctx, t, st, server.Config{Source: src, Limits: lim, AuthTokens: r.tokens, Teams: teamMap})
		})
	}
}

// stdoutMu keeps the reports of the parallel runs apart on stdout.
var stdoutMu sync.Mutex

// runSchemathesis serves the API with cfg on a port of its own and runs
// schemathesis against it; auth is on when cfg has tokens.
func runSchemathesis(ctx context.Context, t *testing.T, st string, cfg server.Config) {
	auth := len(cfg.AuthTokens) > 0
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	logPath := filepath.Join(t.TempDir(), "api.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cfg.Logger = slog.New(slog.NewJSONHandler(logFile, &slog.HandlerOptions{Level: slog.LevelWarn}))
	api, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- api.Serve(ctx, nil, lis) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	base := "http://" + lis.Addr().String()
	waitReady(t, base)
	checkDocumentSecurity(t, base, auth)

	hooks, err := filepath.Abs("schemathesis_hooks.py")
	if err != nil {
		t.Fatal(err)
	}
	config, err := filepath.Abs("schemathesis.toml")
	if err != nil {
		t.Fatal(err)
	}
	// One worker: on 2 cores more buys little, and CPython 3.11's ast.parse,
	// which Hypothesis calls to describe filters, is not safe across threads
	// ("AST constructor recursion depth mismatch").
	args := []string{"--config-file", config, "run", base + "/openapi.json",
		"--checks", "all",
		"--max-examples", maxExamples, "--seed", seed,
		"--generation-database", "none",
		"--workers", "1",
		"--request-timeout", "60",
		"--no-color",
	}
	if auth {
		args = append(args, "--header", "Authorization: Bearer "+cfg.AuthTokens[0])
	}
	// More arguments for a closer look, e.g. "--report har --report-dir
	// /tmp/st" (each run reports into a subdirectory named after it).
	args = append(args, perRun(strings.Fields(os.Getenv(EnvSchemathesisArgs)), t.Name())...)
	t.Logf("SCHEMATHESIS_HOOKS=%s %s", hooks, shellQuote(append([]string{st}, args...)))
	cmd := exec.CommandContext(ctx, st, args...)
	cmd.Env = append(os.Environ(), "SCHEMATHESIS_HOOKS="+hooks)
	cmd.Dir = t.TempDir() // its caches (.hypothesis, .schemathesis) stay out of the tree
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	runErr := cmd.Run()
	took := time.Since(start).Round(time.Second)
	stdoutMu.Lock()
	fmt.Printf("==== schemathesis, %s (auth %s), %s ====\n%s", t.Name(), map[bool]string{true: "on", false: "off"}[auth], took, out.Bytes())
	stdoutMu.Unlock()
	t.Logf("schemathesis ran %s", took)
	if runErr != nil {
		var ee *exec.ExitError
		if errors.As(runErr, &ee) {
			t.Errorf("schemathesis found failures (exit %d); server log:\n%s", ee.ExitCode(), tail(logPath))
		} else {
			t.Errorf("schemathesis: %v", runErr)
		}
	}
}

// checkDocumentSecurity fails the test unless the served document declares
// the bearer security exactly when auth is on, so that each run tests what
// it is named for.
func checkDocumentSecurity(t *testing.T, base string, auth bool) {
	t.Helper()
	resp, err := http.Get(base + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		SecurityDefinitions map[string]any `json:"securityDefinitions"`
		Security            []any          `json:"security"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatalf("/openapi.json: %v", err)
	}
	if declared := doc.SecurityDefinitions["bearer"] != nil && len(doc.Security) > 0; declared != auth {
		t.Fatalf("auth on: %v, but the document declares the bearer security: %v", auth, declared)
	}
}

// perRun gives each run a report directory of its own: a --report-dir
// value gets the run's name appended.
func perRun(args []string, name string) []string {
	name = strings.ReplaceAll(name, "/", "-")
	out := slices.Clone(args)
	for i, a := range out {
		switch {
		case a == "--report-dir" && i+1 < len(out):
			out[i+1] = filepath.Join(out[i+1], name)
		case strings.HasPrefix(a, "--report-dir="):
			out[i] = "--report-dir=" + filepath.Join(strings.TrimPrefix(a, "--report-dir="), name)
		}
	}
	return out
}

// shellQuote renders a command line a shell runs as given.
func shellQuote(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=,") == "" {
			out[i] = a
		} else {
			out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(out, " ")
}

func waitReady(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/readyz never answered 200", base)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 8000 {
		b = b[len(b)-8000:]
	}
	return string(b)
}

// feedScenario loads, through the real processor and exporter, data that the
// default ranges (the last hour, day or 30 days) see, so generated requests
// reach the store's code paths with rows to read, not only empty answers:
//
//   - checkout/production serves v1 for three hours (8 requests a minute,
//     GET /cart and POST /orders, 1 in 40 failing); a CI deploy puts v2
//     (commit known) in as a canary 90 minutes ago at 2 requests a minute,
//     1.5× slower; every request evaluates the flag new-checkout (on/off);
//   - nightly-report has no traffic, only two CI deploys without a commit
//     time (null commit_time, null restore_time).
func feedScenario(t *testing.T, addr, db string, now time.Time) {
	t.Helper()
	pipe := pipelinetest.New(t, addr, db, 1, nil)
	start := now.Add(-3 * time.Hour)
	canaryAt := now.Add(-90 * time.Minute)
	var seq uint64
	span := func(ss ptrace.SpanSlice, tid pcommon.TraceID) ptrace.Span {
		s := ss.AppendEmpty()
		seq++
		var sid pcommon.SpanID
		binary.BigEndian.PutUint64(sid[:], seq)
		s.SetTraceID(tid)
		s.SetSpanID(sid)
		return s
	}
	newTrace := func() pcommon.TraceID {
		var tid pcommon.TraceID
		binary.BigEndian.PutUint64(tid[:8], seq+1)
		binary.BigEndian.PutUint64(tid[8:], 0x5eed)
		return tid
	}
	deploy := func(td ptrace.Traces, at time.Time, service, version string, commit time.Time) {
		ci := td.ResourceSpans().AppendEmpty()
		ci.Resource().Attributes().PutStr("service.name", "github-actions")
		s := span(ci.ScopeSpans().AppendEmpty().Spans(), newTrace())
		s.SetName("deploy " + service)
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(at.Add(-2 * time.Minute)))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(at))
		a := s.Attributes()
		a.PutStr("cicd.pipeline.task.type", "deploy")
		a.PutStr("cicd.pipeline.task.run.result", "success")
		a.PutStr("service.name", service)
		a.PutStr("service.version", version)
		a.PutStr("deployment.environment.name", "production")
		if !commit.IsZero() {
			a.PutStr("vcs.ref.head.revision", "sha-"+version)
			a.PutInt("changelens.commit.time", commit.Unix())
		}
	}
	for m := 0; m < 180; m++ {
		minute := start.Add(time.Duration(m) * time.Minute)
		td := ptrace.NewTraces()
		serve := func(version string, n int, base time.Duration) {
			rs := td.ResourceSpans().AppendEmpty()
			a := rs.Resource().Attributes()
			a.PutStr("service.name", "checkout")
			a.PutStr("deployment.environment.name", "production")
			a.PutStr("service.version", version)
			ss := rs.ScopeSpans().AppendEmpty().Spans()
			for i := 0; i < n; i++ {
				tid := newTrace()
				s := span(ss, tid)
				s.SetKind(ptrace.SpanKindServer)
				method, route := "GET", "/cart"
				if i%4 == 3 {
					method, route = "POST", "/orders"
				}
				s.SetName(method + " " + route)
				s.Attributes().PutStr("http.request.method", method)
				s.Attributes().PutStr("http.route", route)
				code := int64(200)
				if (m*n+i)%40 == 0 {
					code = 500
					s.Status().SetCode(ptrace.StatusCodeError)
				}
				s.Attributes().PutInt("http.response.status_code", code)
				s.Attributes().PutInt("http.response.body.size", int64(900+37*i))
				at := minute.Add(time.Duration(i) * time.Minute / time.Duration(n))
				s.SetStartTimestamp(pcommon.NewTimestampFromTime(at))
				s.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(base + time.Duration(i%7)*time.Millisecond)))
				f := span(ss, tid)
				f.SetParentSpanID(s.SpanID())
				f.SetKind(ptrace.SpanKindInternal)
				f.SetName("evaluate flags")
				f.SetStartTimestamp(s.StartTimestamp())
				f.SetEndTimestamp(s.StartTimestamp() + 1000)
				e := f.Events().AppendEmpty()
				e.SetName("feature_flag.evaluation")
				e.Attributes().PutStr("feature_flag.key", "new-checkout")
				e.Attributes().PutStr("feature_flag.result.variant", map[bool]string{true: "on", false: "off"}[i%2 == 0])
			}
		}
		serve("v1", 8, 20*time.Millisecond)
		if !minute.Before(canaryAt) {
			serve("v2", 2, 30*time.Millisecond)
		}
		switch {
		case minute.Equal(canaryAt):
			deploy(td, canaryAt, "checkout", "v2", canaryAt.Add(-2*time.Hour))
		case minute.Equal(start.Add(10 * time.Minute)):
			deploy(td, minute, "nightly-report", "v1", time.Time{})
		case minute.Equal(start.Add(40 * time.Minute)):
			deploy(td, minute, "nightly-report", "v2", time.Time{})
		}
		pipe.Send(t, td)
	}
	pipe.Close(t)
	fmt.Fprintf(os.Stderr, "conformance: scenario loaded into %s (%d spans)\n", db, seq)
}
