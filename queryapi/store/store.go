// Package store reads the ClickHouse tables of internal/schema (up to
// schema v16): the histograms latency_hist_1m and latency_hist_1h,
// cohort_hist_1m, error_kinds_1m (errorkinds.go), resource_usage
// (usage.go), version_presence, deployment_events, incident_events,
// commit_events, outcome_events and v15's sessions (client.go), the
// worker's deployment_verdicts and experiments, and the raw
// latency_events, call_events and flag_evaluations where only rows will do
// (a comparison's exemplar traces; the service graph, which joins a call to
// its callee's entry span; feature-flag cohorts of evaluations that are no
// dimension in-row, see flags.go). It decides nothing: queryapi/usecase
// pages, caches and judges on top.
//
// Every query is a parameterized SELECT (clickhouse-go named binding,
// @name; values are never spliced into SQL by this package; the only
// identifier, the database name, comes from the configuration), is bounded
// (LIMIT, maximum range, maximum points given by the caller) and runs under
// the caller's deadline capped by Config.QueryTimeout. It needs no settings
// and no writes, so a read-only ClickHouse user is enough. The SQL is in
// sql/*.sql and runs unchanged on ClickHouse 18.16 and current releases.
//
// # Deployments
//
// deployment_events is a ReplacingMergeTree(ver) keyed by content whose
// merges are eventual, so rows are read GROUP BY id, taking the row with the
// greatest (ver, earliest ns times, row_hash) — the same row on every read;
// deployments whose superseded_by is set, and inferred rows of collectors
// before schema v5, are dropped. DeploymentRows reads, in one query of
// three UNION ALL parts, the range itself (failed attempts included), and
// the 4 latest successful deployments of each unit before it and the 4
// earliest after it (4 so that merged duplicates cannot hide the true
// neighbour). The IDs are chosen by any row in the scanned range and all
// rows of those IDs are collapsed, so a losing row never stands in for a
// winner outside the scan. Rows naming their commit but not its time take
// it from commit_events (FillCommitTimes). Episodes reads the version episodes of
// version_presence (sql/episodes.sql), the input of inferred deployments.
//
// # Window evidence
//
// OperationWindows and OperationMinutes read what the before/after rule
// judges for many deployments at once (sql/window_operations.sql,
// sql/window_minutes.sql): the minutes of every window travel to ClickHouse
// as an external table, which the queries join with latency_hist_1m; the
// first merges each operation's window, the second counts each minute's
// requests above the thresholds the first set. WindowTotals (sql/windows.sql)
// reads only every window's counts, the fingerprint of its data.
//
// # Latency
//
// Series and summaries merge the exporter's log-bucket histograms
// (sumMapMerge) and sums; the percentiles are computed in Go from the merged
// (bucket, weight) arrays by stats.BucketQuantiles (within 2 % of the exact
// weighted quantile). Summaries, and series whose step is a whole number of
// hours, read the whole hours of the range from latency_hist_1h and only the
// minutes at its edges from latency_hist_1m; other series read
// latency_hist_1m. Buckets are intDiv(toUInt32(minute), step) * step,
// aligned to the Unix epoch; a minute belongs to [start, end) when its start
// does.
package store

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/changelens/changelens/internal/chident"
	"github.com/changelens/changelens/internal/schema"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/changelens/changelens/queryapi/report"
)

//go:embed sql/*.sql
var sqlFiles embed.FS

const defaultDatabase = "changelens"

// Store reads changelens data from ClickHouse. It is safe for concurrent use.
type Store struct {
	cfg      Config
	conn     driver.Conn
	database string
	tmpl     *template.Template
}

// Open validates cfg, connects to ClickHouse and pings it.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	opts, err := clickhouse.ParseDSN(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("store: DSN: %w", err)
	}
	database := cfg.Database
	if database == "" {
		database = opts.Auth.Database
	}
	if database == "" {
		database = defaultDatabase
	}
	if !chident.Valid(database) {
		return nil, fmt.Errorf("store: database %q is not a valid name (letters, digits and _, not starting with a digit)", database)
	}
	// Tables are always qualified; connecting without a default database
	// lets the API start before the exporter created it.
	opts.Auth.Database = ""
	if opts.Compression == nil {
		opts.Compression = &clickhouse.Compression{Method: clickhouse.CompressionLZ4}
	}
	opts.ClientInfo.Products = append(opts.ClientInfo.Products, struct{ Name, Version string }{"changelens-api", "1"})

	tmpl, err := loadTemplates(database)
	if err != nil {
		return nil, err
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	s := &Store{cfg: cfg, conn: conn, database: database, tmpl: tmpl}
	if err := s.Ping(ctx); err != nil {
		_ = conn.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the connection pool.
func (s *Store) Close() error { return s.conn.Close() }

// Ping checks that ClickHouse answers (for health checks).
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()
	if err := s.conn.Ping(ctx); err != nil {
		return fmt.Errorf("store: ping ClickHouse: %w", err)
	}
	return nil
}

// Database is the database the store reads.
func (s *Store) Database() string { return s.database }

// tableRef is a table a query names: {db}.<name>.
var tableRef = regexp.MustCompile(`\{db\}\.([A-Za-z0-9_]+)`)

// checkTables fails when a query names a table internal/schema does not
// define.
func checkTables(file, src string) error {
	for _, m := range tableRef.FindAllStringSubmatch(src, -1) {
		if !slices.Contains(schema.ReadTables, m[1]) {
			return fmt.Errorf("store: sql/%s reads table %q, which internal/schema does not define", file, m[1])
		}
	}
	return nil
}

func loadTemplates(database string) (*template.Template, error) {
	// The bucket expressions of internal/schema: a query measuring raw
	// events as a view does buckets them as the view does.
	root := template.New("").Option("missingkey=error").Funcs(template.FuncMap{
		"histBucket": schema.HistBucketSQL,
		"sizeBucket": schema.SizeBucketSQL,
	})
	entries, err := sqlFiles.ReadDir("sql")
	if err != nil {
		return nil, err
	}
	quoted := "`" + database + "`"
	for _, e := range entries {
		b, err := sqlFiles.ReadFile("sql/" + e.Name())
		if err != nil {
			return nil, err
		}
		src := stripComments(string(b))
		if err := checkTables(e.Name(), src); err != nil {
			return nil, err
		}
		src = strings.ReplaceAll(src, "{db}", quoted)
		if _, err := root.New(strings.TrimSuffix(e.Name(), ".sql")).Parse(src); err != nil {
			return nil, fmt.Errorf("store: parse sql/%s: %w", e.Name(), err)
		}
	}
	return root, nil
}

// stripComments drops whole-line "--" comments (they document the files;
// the server need not parse them).
func stripComments(src string) string {
	var b strings.Builder
	for _, line := range strings.Split(src, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "--") {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// SQL renders the named query of sql/ for the given variant data (for
// benchmarks that time the store's SQL by itself).
func (s *Store) SQL(name string, data any) (string, error) { return s.sql(name, data) }

// sql renders the named query for the given variant data.
func (s *Store) sql(name string, data any) (string, error) {
	var b bytes.Buffer
	if err := s.tmpl.ExecuteTemplate(&b, name, data); err != nil {
		return "", fmt.Errorf("store: render %s: %w", name, err)
	}
	return b.String(), nil
}

// queryContext caps ctx's deadline at QueryTimeout.
func (s *Store) queryContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.cfg.QueryTimeout)
}

// query runs a SELECT and calls scan for every row.
func (s *Store) query(ctx context.Context, name string, variant any, scan func(driver.Rows) error, args ...any) error {
	q, err := s.sql(name, variant)
	if err != nil {
		return err
	}
	ctx, cancel := s.queryContext(ctx)
	defer cancel()
	rows, err := s.conn.Query(ctx, q, args...)
	if err != nil {
		return queryError(ctx, name, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return fmt.Errorf("store: %s: scan: %w", name, err)
		}
	}
	if err := rows.Err(); err != nil {
		return queryError(ctx, name, err)
	}
	return nil
}

// queryError wraps a query failure; a deadline keeps
// context.DeadlineExceeded in the chain (HTTP 504).
func queryError(ctx context.Context, name string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		return fmt.Errorf("store: %s: %w (%v)", name, ctxErr, err)
	}
	return fmt.Errorf("store: %s: %w", name, err)
}

func invalid(format string, args ...any) error {
	return &report.InvalidArgumentError{Reason: fmt.Sprintf(format, args...)}
}

func unixSeconds(t time.Time) int64 {
	u := t.Unix()
	if u < 0 {
		return 0
	}
	if u > 1<<32-1 {
		return 1<<32 - 1
	}
	return u
}

// ceilSeconds is t rounded up to a whole second, in Unix seconds.
func ceilSeconds(t time.Time) int64 {
	u := unixSeconds(t)
	if t.Truncate(time.Second).Before(t) {
		u++
	}
	return u
}

func unixNanos(t time.Time) int64 {
	if t.Before(time.Unix(0, 0)) {
		return 0
	}
	return t.UnixNano()
}
