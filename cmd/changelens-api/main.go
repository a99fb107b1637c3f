// Command changelens-api serves the changelens query API (docs/api.md): gRPC
// (changelens.v1.QueryService, grpc.health.v1, reflection) and REST through
// grpc-gateway with /openapi.json and /healthz, reading ClickHouse.
//
// Every flag has an environment fallback (CHANGELENS_ + the flag name in upper
// case with '-' → '_'; a flag given on the command line wins):
//
//	changelens-api --clickhouse-dsn clickhouse://reader:pw@localhost:9000/changelens
//
// Bearer-token auth is on when --auth-tokens-file names a file of tokens (one
// a line, '#' comments) or CHANGELENS_AUTH_TOKENS holds a comma-separated
// list; /healthz and /openapi.json stay open. The DSN password and tokens are
// never logged. --teams-file names the YAML file mapping services to teams
// (docs/teams.md); a file that does not validate stops the API at start.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/changelens/changelens/internal/envflag"
	"github.com/changelens/changelens/internal/selftelemetry"
	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/limits"
	"github.com/changelens/changelens/queryapi/server"
	"github.com/changelens/changelens/queryapi/teams"
	"github.com/changelens/changelens/webui"
)

// version is set by the build (-ldflags "-X main.version=…").
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr, nil); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "changelens-api:", err)
		os.Exit(1)
	}
}

// options are the parsed flags.
type options struct {
	dsn            string
	httpAddr       string
	grpcAddr       string
	authTokensFile string
	teamsFile      string
	otlpEndpoint   string
	logLevel       string
	limits         limits.Limits
	analysis       analysis.Config
	maxRunning     int
	queueWait      time.Duration
	ui             bool
	traceURL       string
}

func parseFlags(args []string, getenv func(string) string, out io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("changelens-api", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.dsn, "clickhouse-dsn", "", "ClickHouse DSN of a read-only user, e.g. clickhouse://reader:pw@localhost:9000/changelens (required)")
	fs.StringVar(&o.httpAddr, "http-addr", ":8080", "REST, /openapi.json and /healthz listen address")
	fs.StringVar(&o.grpcAddr, "grpc-addr", ":9090", "gRPC listen address")
	fs.StringVar(&o.authTokensFile, "auth-tokens-file", "", "file of accepted bearer tokens, one a line ('#' comments); empty and no CHANGELENS_AUTH_TOKENS: auth off")
	fs.StringVar(&o.teamsFile, "teams-file", "", "YAML file mapping services to teams, with their targets and focus metrics (docs/teams.md); empty: no teams")
	lim := limits.Default()
	fs.DurationVar(&o.limits.QueryTimeout, "query-timeout", lim.QueryTimeout, "a request's deadline (504 past it)")
	fs.StringVar(&o.otlpEndpoint, "otlp-endpoint", "", "OTLP/gRPC endpoint for the API's own traces and metrics: http://host:4317, https://host:4317 or host:4317; empty: off")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.IntVar(&o.maxRunning, "max-running", server.DefaultMaxRunning(), "requests querying ClickHouse at once; more wait up to --queue-wait, then get 503 with Retry-After")
	fs.DurationVar(&o.queueWait, "queue-wait", 2*time.Second, "longest wait for a free query slot before 503")
	fs.DurationVar(&o.limits.MaxLatencyRange, "max-latency-range", lim.MaxLatencyRange, "longest range of a latency query")
	fs.DurationVar(&o.limits.MaxReportRange, "max-report-range", lim.MaxReportRange, "longest range of a deployments or DORA query")
	fs.IntVar(&o.limits.MaxSeriesBuckets, "max-points", lim.MaxSeriesBuckets, "most buckets of a latency series (range ÷ step)")
	fs.IntVar(&o.limits.MaxSeriesPoints, "max-series-points", lim.MaxSeriesPoints, "most points of a grouped latency series (buckets × groups)")
	fs.IntVar(&o.limits.MaxPageSize, "max-page-size", lim.MaxPageSize, "largest page of /v1/deployments")
	fs.IntVar(&o.limits.MaxDeployments, "max-deployments", lim.MaxDeployments, "most deployments one request may read")
	o.analysis = analysis.DefaultConfig()
	analysis.RegisterFlags(fs, &o.analysis)
	fs.BoolVar(&o.ui, "ui", true, "serve the web UI under /ui/ on --http-addr")
	fs.StringVar(&o.traceURL, "trace-url", "", "the trace UI's address for a trace, {trace_id} replaced, e.g. http://localhost:16686/trace/{trace_id}; empty: trace IDs are not linked")
	showVersion := fs.Bool("version", false, "print the version and exit")

	if err := envflag.Parse(fs, args, getenv, "version"); err != nil {
		return o, err
	}
	if *showVersion {
		fmt.Fprintln(out, "changelens-api", version)
		return o, flag.ErrHelp
	}
	if o.dsn == "" {
		return o, errors.New("--clickhouse-dsn (or CHANGELENS_CLICKHOUSE_DSN) is required")
	}
	if o.limits.QueryTimeout <= 0 {
		return o, errors.New("--query-timeout must be positive")
	}
	if o.maxRunning <= 0 || o.queueWait <= 0 {
		return o, errors.New("--max-running and --queue-wait must be positive")
	}
	if err := (webui.Config{TraceURL: o.traceURL}).Validate(); err != nil {
		return o, fmt.Errorf("--trace-url: %w", err)
	}
	o.limits = o.limits.WithDefaults()
	if err := o.limits.Validate(); err != nil {
		return o, err
	}
	return o, nil
}

// redactDSN hides the password of a DSN for logging.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return "(unparsable DSN)"
	}
	q := u.Query()
	for k := range q {
		if strings.Contains(strings.ToLower(k), "password") || strings.Contains(strings.ToLower(k), "secret") {
			q.Set(k, "xxxxx")
		}
	}
	u.RawQuery = q.Encode()
	return u.Redacted()
}

// dsnSecrets finds the password of a DSN, parsable or not: the userinfo
// password (scheme://user:PASSWORD@host) and password=/secret= parameters.
var dsnSecrets = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://[^:/@]*:([^@]+)@|[?&][^=&]*(?i:password|secret)[^=&]*=([^&]+)`)

// scrubSecrets replaces the DSN's password, raw or URL-escaped, in msg.
func scrubSecrets(msg, dsn string) string {
	for _, m := range dsnSecrets.FindAllStringSubmatch(dsn, -1) {
		for _, secret := range m[1:] {
			if secret == "" {
				continue
			}
			msg = strings.ReplaceAll(msg, secret, "xxxxx")
			if u, err := url.PathUnescape(secret); err == nil && u != "" {
				msg = strings.ReplaceAll(msg, u, "xxxxx")
			}
		}
	}
	return msg
}

// run is main without the process: tests call it with their own args, env
// and context. ready, when not nil, receives the bound addresses.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer, ready func(grpcAddr, httpAddr net.Addr)) error {
	o, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))

	var tokens []string
	if o.authTokensFile != "" {
		if tokens, err = server.LoadTokens(o.authTokensFile); err != nil {
			return fmt.Errorf("--auth-tokens-file: %w", err)
		}
		if len(tokens) == 0 {
			return fmt.Errorf("--auth-tokens-file %s holds no token", o.authTokensFile)
		}
	}
	tokens = append(tokens, server.ParseTokenList(getenv("CHANGELENS_AUTH_TOKENS"))...)

	// Read before ClickHouse is opened: a bad file is a configuration
	// error, reported at start with the team and field it names.
	var teamMap *teams.Mapping
	if o.teamsFile != "" {
		if teamMap, err = teams.Load(o.teamsFile); err != nil {
			return fmt.Errorf("--teams-file: %w", err)
		}
	}

	tel, err := selftelemetry.Setup(ctx, selftelemetry.Config{Endpoint: o.otlpEndpoint, ServiceName: "changelens-api", ServiceVersion: version})
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tel.Shutdown(sctx); err != nil {
			log.Warn("telemetry shutdown", "error", err)
		}
	}()

	src, closeSrc, err := openSource(ctx, SourceConfig{DSN: o.dsn, Limits: o.limits, Analysis: o.analysis})
	if err != nil {
		// Driver and URL-parsing errors may quote the DSN: scrub its password.
		return fmt.Errorf("open ClickHouse %s: %s", redactDSN(o.dsn), scrubSecrets(err.Error(), o.dsn))
	}
	defer func() {
		if err := closeSrc(); err != nil {
			log.Warn("closing the source", "error", err)
		}
	}()

	var ui http.Handler
	if o.ui {
		if ui, err = webui.Handler(webui.Config{TraceURL: o.traceURL, Auth: len(tokens) > 0, Version: version}); err != nil {
			return err
		}
	}
	srv, err := server.New(server.Config{
		UI:         ui,
		Source:     src,
		AuthTokens: tokens,
		Limits:     o.limits,
		Telemetry:  tel,
		Logger:     log,
		MaxRunning: o.maxRunning,
		QueueWait:  o.queueWait,
		Teams:      teamMap,
	})
	if err != nil {
		return err
	}
	var lc net.ListenConfig
	grpcLis, err := lc.Listen(ctx, "tcp", o.grpcAddr)
	if err != nil {
		return fmt.Errorf("--grpc-addr: %w", err)
	}
	httpLis, err := lc.Listen(ctx, "tcp", o.httpAddr)
	if err != nil {
		grpcLis.Close()
		return fmt.Errorf("--http-addr: %w", err)
	}
	log.Info("changelens-api serving",
		"version", version,
		"grpc_addr", grpcLis.Addr().String(),
		"http_addr", httpLis.Addr().String(),
		"clickhouse", redactDSN(o.dsn),
		"auth", len(tokens) > 0, "auth_tokens", len(tokens),
		"teams", len(teamMap.Teams()),
		"query_timeout", o.limits.QueryTimeout.String(),
		"self_telemetry", o.otlpEndpoint != "",
		"ui", o.ui)
	if ready != nil {
		ready(grpcLis.Addr(), httpLis.Addr())
	}
	err = srv.Serve(ctx, grpcLis, httpLis)
	log.Info("changelens-api stopped")
	return err
}
