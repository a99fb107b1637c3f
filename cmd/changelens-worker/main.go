// Command changelens-worker is the component of changelens that writes
// beside the collectors: it stores the settled verdicts of deployments
// (deployment_verdicts, read by the query API instead of recomputing them)
// and sends notifications about deployments that went wrong (webhook,
// Slack, Grafana annotations). It needs a ClickHouse user that may INSERT
// into those two tables; the query API keeps its read-only user.
//
// Every flag has an environment fallback (CHANGELENS_ + the flag name in upper
// case with '-' → '_'; a flag given on the command line wins). Analysis flags
// must match the API's: stored verdicts are keyed by the settings.
//
//	changelens-worker --clickhouse-dsn clickhouse://worker:pw@localhost:9000/changelens \
//	    --notify-config notify.yaml
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"go.yaml.in/yaml/v3"

	"github.com/changelens/changelens/internal/chident"
	"github.com/changelens/changelens/internal/envflag"
	"github.com/changelens/changelens/internal/schema"
	"github.com/changelens/changelens/internal/selftelemetry"
	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/store"
	"github.com/changelens/changelens/queryapi/usecase"
	"github.com/changelens/changelens/worker/experiments"
	"github.com/changelens/changelens/worker/notify"
	"github.com/changelens/changelens/worker/settle"
	"github.com/changelens/changelens/worker/writer"
)

// version is set by the build (-ldflags "-X main.version=…").
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "changelens-worker:", err)
		os.Exit(1)
	}
}

type options struct {
	dsn          string
	interval     time.Duration
	once         bool
	createSchema bool
	// cluster options, as the exporter's cluster_name, replicated and
	// replication_path: the worker applies the same schema.
	cluster         string
	replicated      bool
	replicationPath string
	notifyConfig    string
	experimentsDir  string
	otlpEndpoint    string
	logLevel        string
	settle          settle.Config
	analysis        analysis.Config
	queryTimeout    time.Duration
	notifyBackoff   time.Duration
}

func parseFlags(args []string, getenv func(string) string, out io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("changelens-worker", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.dsn, "clickhouse-dsn", "", "ClickHouse DSN of a user that may INSERT into deployment_verdicts and notification_log, e.g. clickhouse://worker:pw@localhost:9000/changelens (required)")
	fs.DurationVar(&o.interval, "interval", time.Minute, "time between cycles (judge, store, notify)")
	fs.BoolVar(&o.once, "once", false, "run one cycle and exit (cron, tests)")
	fs.BoolVar(&o.createSchema, "create-schema", true, "apply the versioned schema at start (as the exporter does; needs CREATE rights)")
	fs.StringVar(&o.cluster, "cluster-name", "", "the ClickHouse cluster the collectors' exporter writes to (its cluster_name); empty: one server")
	fs.BoolVar(&o.replicated, "replicated", true, "with --cluster-name: the tables are Replicated* (the exporter's replicated)")
	fs.StringVar(&o.replicationPath, "replication-path", schema.DefaultReplicationPath, "with --cluster-name and --replicated: ZooKeeper path prefix (the exporter's replication_path)")
	fs.StringVar(&o.notifyConfig, "notify-config", "", "YAML file of notification targets (see the README); empty: no notifications")
	fs.StringVar(&o.experimentsDir, "experiments-dir", "", "directory of experiment definitions (YAML, docs/experiments.md) applied every cycle; empty: none")
	fs.DurationVar(&o.settle.Lookback, "lookback", 30*24*time.Hour, "deployments this recent are judged each cycle and re-settled when their data changed")
	fs.DurationVar(&o.settle.NotifyLookback, "notify-lookback", 24*time.Hour, "only deployments this recent are notified")
	fs.DurationVar(&o.settle.NotifyTimeout, "notify-timeout", time.Minute, "how long a cycle keeps retrying deliveries; the rest go with the next cycle")
	fs.DurationVar(&o.notifyBackoff, "notify-max-backoff", 30*time.Second, "longest wait between delivery attempts")
	fs.DurationVar(&o.queryTimeout, "query-timeout", 5*time.Minute, "a ClickHouse query's deadline")
	fs.StringVar(&o.otlpEndpoint, "otlp-endpoint", "", "OTLP/gRPC endpoint for the worker's own metrics (changelens.deployment.verdicts); empty: off")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	o.analysis = analysis.DefaultConfig()
	analysis.RegisterFlags(fs, &o.analysis)
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := envflag.Parse(fs, args, getenv, "version"); err != nil {
		return o, err
	}
	if *showVersion {
		fmt.Fprintln(out, "changelens-worker", version)
		return o, flag.ErrHelp
	}
	switch {
	case o.dsn == "":
		return o, errors.New("--clickhouse-dsn (or CHANGELENS_CLICKHOUSE_DSN) is required")
	case o.interval <= 0:
		return o, errors.New("--interval must be positive")
	case o.queryTimeout <= 0:
		return o, errors.New("--query-timeout must be positive")
	case o.experimentsDir != "":
		if fi, err := os.Stat(o.experimentsDir); err != nil || !fi.IsDir() {
			return o, fmt.Errorf("--experiments-dir: %q is not a readable directory", o.experimentsDir)
		}
	case o.cluster != "" && !chident.Valid(o.cluster):
		return o, fmt.Errorf("--cluster-name: %q is not a valid name (letters, digits and _, not starting with a digit)", o.cluster)
	}
	if o.cluster != "" && o.replicated {
		if err := schema.CheckReplicationPath(o.replicationPath); err != nil {
			return o, fmt.Errorf("--replication-path: %w", err)
		}
	}
	return o, o.analysis.Validate()
}

// notifyFile is the --notify-config file. ${VAR} references are expanded
// from the environment, so secrets (Slack URLs, tokens) can stay out of it.
type notifyFile struct {
	Targets      []notify.Target `yaml:"targets"`
	All          bool            `yaml:"all"`
	APIURL       string          `yaml:"api_url"`
	DashboardURL string          `yaml:"dashboard_url"`
}

func loadNotify(path string, getenv func(string) string) (notifyFile, error) {
	var f notifyFile
	b, err := os.ReadFile(path)
	if err != nil {
		return f, err
	}
	dec := yaml.NewDecoder(strings.NewReader(os.Expand(string(b), getenv)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return f, fmt.Errorf("%s: %w", path, err)
	}
	if len(f.Targets) == 0 {
		return f, fmt.Errorf("%s: targets: at least one target is required", path)
	}
	return f, nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	o, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))

	tel, err := selftelemetry.Setup(ctx, selftelemetry.Config{Endpoint: o.otlpEndpoint, ServiceName: "changelens-worker", ServiceVersion: version})
	if err != nil {
		return err
	}
	defer func() { _ = tel.Shutdown(context.Background()) }()

	// The store resolves and validates the database as the API does; the
	// worker's own connection writes (and applies the schema).
	st, err := store.Open(ctx, store.Config{DSN: o.dsn, QueryTimeout: o.queryTimeout})
	if err != nil {
		return err
	}
	defer st.Close()
	opts, err := clickhouse.ParseDSN(o.dsn)
	if err != nil {
		return errors.New("--clickhouse-dsn: not a valid DSN") // the DSN holds a password: not quoted
	}
	opts.Auth.Database = ""
	if o.cluster != "" && o.createSchema {
		opts.ReadTimeout = max(opts.ReadTimeout, schema.DDLReadTimeout)
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return fmt.Errorf("clickhouse: %w", err)
	}
	defer conn.Close()
	var serverVersion string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&serverVersion); err != nil {
		return fmt.Errorf("clickhouse: %w", err)
	}
	db := st.Database()
	so := schema.Options{Database: db, Features: schema.FeaturesFor(serverVersion),
		Cluster: o.cluster, Replicated: o.replicated, ReplicationPath: o.replicationPath}
	if o.createSchema {
		if _, err := schema.Apply(ctx, conn, so, serverVersion); err != nil {
			return err
		}
	}
	cfg := usecase.Config{Analysis: o.analysis, IgnoreStoredVerdicts: true, CacheSize: -1}
	cfg.Limits.QueryTimeout = o.queryTimeout
	cfg.Limits.MaxDeployments = 1 << 20
	svc, err := usecase.New(st, cfg)
	if err != nil {
		return err
	}
	var n *notify.Notifier
	if o.notifyConfig != "" {
		f, err := loadNotify(o.notifyConfig, getenv)
		if err != nil {
			return fmt.Errorf("--notify-config: %w", err)
		}
		n, err = notify.New(notify.Config{Targets: f.Targets, All: f.All, APIURL: f.APIURL, DashboardURL: f.DashboardURL,
			MaxBackoff: o.notifyBackoff}, writer.New(conn, so), log)
		if err != nil {
			return fmt.Errorf("--notify-config: %w", err)
		}
	}
	s, err := settle.New(o.settle, svc, st, writer.New(conn, so), n, tel.MeterProvider.Meter("changelens-worker"), log)
	if err != nil {
		return err
	}
	log.Info("changelens-worker started", "version", version, "clickhouse", serverVersion, "database", db,
		"config_hash", svc.ConfigHash(), "interval", o.interval, "notifications", n != nil)
	for {
		t0 := time.Now()
		if o.experimentsDir != "" {
			// Before the cycle, so a definition just committed is readable
			// by the time the cycle's verdicts are.
			er, err := experiments.Apply(ctx, o.experimentsDir, st, writer.New(conn, so), t0)
			for _, bad := range er.Invalid {
				log.Error("experiment definition not applied", "error", bad)
			}
			if err != nil {
				log.Error("experiments not applied", "error", err)
			} else if er.Applied > 0 || len(er.Invalid) > 0 {
				log.Info("experiments", "applied", er.Applied, "unchanged", er.Unchanged, "invalid", len(er.Invalid))
			}
		}
		r, err := s.Cycle(ctx, t0)
		if err != nil {
			log.Error("cycle failed", "error", err)
		} else {
			log.Info("cycle", "judged", r.Judged, "settled", r.Settled, "stored", r.Stored, "resettled", r.Resettled, "evidence", r.Evidence, "episode_units", r.EpisodeUnits,
				"notified", r.Notified, "took", time.Since(t0).Round(time.Millisecond))
		}
		if o.once {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(o.interval):
		}
	}
}
