// Package schema is the ClickHouse contract between the exporter, which
// writes through it, and the query API's store, which reads through it: the
// tables, the stored values (below), the histogram bucket layout
// (histogram.go), and the versioned DDL that renders and applies them.
//
// Migrations are embedded .sql files (sql/NNN_name.sql), rendered as Go
// templates for the server's feature level and the configured cluster, and
// recorded in a schema_migrations table once applied. Every statement is
// idempotent (IF NOT EXISTS), so an interrupted or concurrent apply is safe to
// repeat; an applied migration is never run again.
package schema

import (
	"bufio"
	"cmp"
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

//go:embed sql/*.sql
var sqlFiles embed.FS

// Table names. With a cluster, data lives in <name>_local on every shard and
// <name> is a Distributed table over it; readers always use <name>.
const (
	TableLatencyEvents   = "latency_events"
	TableLatencyRollup   = "latency_rollup_1m"
	TableLatencyHist1m   = "latency_hist_1m"
	TableLatencyHist1h   = "latency_hist_1h"
	TableDeployments     = "deployment_events"   // schema v4; v1's "deployments" is no longer used
	TableVersionPresence = "version_presence"    // schema v5
	TableCohortHist1m    = "cohort_hist_1m"      // schema v6
	TableVerdicts        = "deployment_verdicts" // schema v7
	TableNotifications   = "notification_log"    // schema v7
	TableCallEvents      = "call_events"         // schema v8
	TableIncidents       = "incident_events"     // schema v10
	TableCommits         = "commit_events"       // schema v11
	TableFlagEvaluations = "flag_evaluations"    // schema v12
	TableErrorKinds1m    = "error_kinds_1m"      // schema v13
	TableResourceUsage   = "resource_usage"      // schema v14
	TableOutcomes        = "outcome_events"      // schema v15
	TableExperiments     = "experiments"         // schema v16
	TableEvidence        = "deployment_evidence" // schema v17
	TableUnitVersions1d  = "unit_versions_1d"    // schema v18
	TableVersionEpisodes = "version_episodes"    // schema v19
	TableMigrations      = "schema_migrations"
	LocalSuffix          = "_local"
)

// ReadTables are the tables and views a reader may name: the store's SQL
// is checked against them when it loads, so a table renamed here cannot
// leave a query reading a name that no longer exists.
var ReadTables = []string{TableLatencyEvents, TableLatencyRollup, TableLatencyHist1m, TableLatencyHist1h,
	TableDeployments, TableVersionPresence, TableCohortHist1m, TableVerdicts, TableNotifications, TableCallEvents,
	TableIncidents, TableCommits, TableFlagEvaluations, TableErrorKinds1m, TableResourceUsage, TableOutcomes, TableExperiments, TableEvidence, TableUnitVersions1d,
	TableVersionEpisodes}

// Cohort dimensions: the values of cohort_hist_1m.dimension, and with the
// two prefixes those of latency_events.cohort_keys (schema v6).
const (
	DimensionVersion     = "version"       // service.version
	DimensionFeatureFlag = "feature_flag." // + flag key: the variant
	DimensionAttribute   = "attribute."    // + attribute name: its value
)

// ErrorKindFolded is the error kind of latency_events.error_kind (schema
// v13) standing for the kinds beyond a unit's bound, which the processor
// folds into it.
const ErrorKindFolded = "__other__"

// KnownDimension reports whether d names a cohort dimension: "version" (or
// "", its default), "feature_flag.<key>" or "attribute.<name>".
func KnownDimension(d string) bool {
	if d == "" || d == DimensionVersion {
		return true
	}
	for _, prefix := range []string{DimensionFeatureFlag, DimensionAttribute} {
		if rest, ok := strings.CutPrefix(d, prefix); ok && rest != "" {
			return true
		}
	}
	return false
}

// RetentionTables are the day-partitioned tables retention applies to, with
// the DateTime column their partition key (toYYYYMMDD) is computed from.
var RetentionTables = []struct{ Table, TimeColumn string }{
	{TableLatencyEvents, "time"},
	{TableLatencyRollup, "minute"},
	{TableLatencyHist1m, "minute"},
	{TableLatencyHist1h, "hour"},
	{TableVersionPresence, "bucket"},
	{TableCohortHist1m, "minute"},
	{TableCallEvents, "time"},
	{TableIncidents, "opened_time"},
	{TableCommits, "commit_time"},
	{TableFlagEvaluations, "time"},
	{TableErrorKinds1m, "minute"},
	{TableResourceUsage, "time"},
	{TableOutcomes, "time"},
	{TableUnitVersions1d, "day_start"},
}

// Features are optional server features the schema uses when present.
type Features struct {
	TTL            bool // table TTL (retention without the sweeper)
	LowCardinality bool // LowCardinality(String) for low-cardinality columns
	Codecs         bool // column compression codecs
	// PartitionLimit: INSERTs touching more than
	// max_partitions_per_insert_block (100) partitions fail unless the
	// setting is lifted (a back-fill of months of daily partitions).
	PartitionLimit bool
}

// FeaturesFor returns the features of a server version ("18.16.1",
// "24.8.4.13"). Versions that cannot be parsed get none: the common subset
// works everywhere.
func FeaturesFor(version string) Features {
	major, _, ok := ParseVersion(version)
	if !ok || major < 20 {
		return Features{}
	}
	return Features{TTL: true, LowCardinality: true, Codecs: true, PartitionLimit: true}
}

// ParseVersion extracts major and minor from a ClickHouse version string.
func ParseVersion(v string) (major, minor int, ok bool) {
	parts := strings.SplitN(strings.TrimSpace(v), ".", 3)
	if len(parts) < 2 {
		return 0, 0, false
	}
	var err1, err2 error
	major, err1 = strconv.Atoi(parts[0])
	minor, err2 = strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return major, minor, true
}

// Options select how the schema is rendered.
type Options struct {
	Database      string
	Cluster       string // "" = single server
	RetentionDays int    // 0 = keep forever
	Features      Features

	// NoOnCluster leaves out "ON CLUSTER" while still creating _local and
	// Distributed tables: for a single server whose remote_servers names
	// itself (tests; distributed DDL needs ZooKeeper).
	NoOnCluster bool

	// Replicated (with Cluster) creates the Replicated* engine of every
	// table, its ZooKeeper path ReplicationPath/<database>/<table>_local
	// (ReplicationPath usually holds the {shard} macro, e.g.
	// DefaultReplicationPath) and its replica name the {replica} macro.
	// schema_migrations is then one replicated table across the whole
	// cluster (path without the shard), so every node sees what was applied.
	Replicated      bool
	ReplicationPath string

	// Applied, if set, is called by Apply after each migration it records.
	// On a cluster every statement waits for every node, so a first start
	// takes tens of seconds on an idle cluster and minutes on a busy one;
	// the exporter logs each migration so that slowness is visible as
	// progress rather than a silent start.
	Applied func(version uint32, name string)
}

// unitShardingKey is the sharding key of the Distributed tables of a unit's
// rows: one unit's rows, and what the views derive from them, on one shard.
const unitShardingKey = "cityHash64(service, environment)"

// DefaultReplicationPath is the ZooKeeper path prefix of replicated tables.
const DefaultReplicationPath = "/clickhouse/tables/{shard}"

// replicated reports whether tables get Replicated* engines.
func (o Options) replicated() bool { return o.Cluster != "" && o.Replicated }

// CheckReplicationPath reports whether p can be a ReplicationPath: a
// ZooKeeper path starting with / that fits in a quoted SQL string as it is.
func CheckReplicationPath(p string) error {
	if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "'\\`\n") {
		return fmt.Errorf("%q must be a ZooKeeper path starting with / (without quotes or backslashes)", p)
	}
	return nil
}

// replicationPrefix is ReplicationPath (or the default) without a trailing /.
func (o Options) replicationPrefix() string {
	return strings.TrimRight(cmp.Or(o.ReplicationPath, DefaultReplicationPath), "/")
}

// tableEngine renders the engine of table (the name without _local) with params
// ("ver" for a ReplacingMergeTree version column): engine(params), or its
// Replicated* form with the table's ZooKeeper path and the {replica} macro.
func (o Options) tableEngine(engine, table string, params ...string) string {
	if !o.replicated() {
		if len(params) == 0 {
			return engine
		}
		return engine + "(" + strings.Join(params, ", ") + ")"
	}
	prefix := o.replicationPrefix()
	args := append([]string{sqlString(prefix + "/" + o.Database + "/" + table + LocalSuffix), "'{replica}'"}, params...)
	return "Replicated" + engine + "(" + strings.Join(args, ", ") + ")"
}

// InsertTable is the table the exporter inserts into (Distributed with a cluster).
func (o Options) InsertTable(table string) string { return o.qualified(table) }

// LocalTable is the table holding the data on this server.
func (o Options) LocalTable(table string) string {
	if o.Cluster != "" {
		return o.qualified(table + LocalSuffix)
	}
	return o.qualified(table)
}

// OnCluster is " ON CLUSTER `c`" or "".
func (o Options) OnCluster() string {
	if o.Cluster == "" || o.NoOnCluster {
		return ""
	}
	return " ON CLUSTER " + quote(o.Cluster)
}

func (o Options) qualified(table string) string { return quote(o.Database) + "." + quote(table) }

// quote backquotes an identifier (names are validated by the config; this
// also escapes, for safety).
func quote(id string) string {
	return "`" + strings.ReplaceAll(strings.ReplaceAll(id, `\`, `\\`), "`", "\\`") + "`"
}

// Migration is one rendered schema version.
type Migration struct {
	Version    uint32
	Name       string
	Statements []string
}

// Bootstrap returns the statements that must exist before migrations run:
// the database and the schema_migrations table.
func Bootstrap(o Options) []string {
	return []string{
		"CREATE DATABASE IF NOT EXISTS " + quote(o.Database) + o.OnCluster(),
		"CREATE TABLE IF NOT EXISTS " + o.qualified(TableMigrations) + o.OnCluster() + ` (
    version        UInt32,
    name           String,
    applied_at     DateTime('UTC'),
    server_version String
) ENGINE = ` + o.migrationsEngine() + ` ORDER BY version`,
	}
}

// migrationsEngine: with a replicated cluster one replica set spanning every
// shard (its replica names are {shard}-{replica}, unique in the cluster), so
// a migration recorded through any node is seen by all.
func (o Options) migrationsEngine() string {
	if !o.replicated() {
		return "MergeTree"
	}
	prefix := strings.ReplaceAll(o.replicationPrefix(), "{shard}", "all")
	return "ReplicatedMergeTree(" + sqlString(prefix+"/"+o.Database+"/"+TableMigrations) + ", '{shard}-{replica}')"
}

// Migrations renders every embedded migration, in version order.
func Migrations(o Options) ([]Migration, error) {
	names, err := fs.Glob(sqlFiles, "sql/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []Migration
	seen := map[uint32]string{}
	for _, name := range names {
		base := strings.TrimSuffix(path.Base(name), ".sql")
		num, label, ok := strings.Cut(base, "_")
		v, err := strconv.ParseUint(num, 10, 32)
		if !ok || err != nil || v == 0 {
			return nil, fmt.Errorf("schema: migration file %s is not named NNN_name.sql", name)
		}
		if prev, dup := seen[uint32(v)]; dup {
			return nil, fmt.Errorf("schema: migrations %s and %s share version %d", prev, name, v)
		}
		seen[uint32(v)] = name
		src, err := sqlFiles.ReadFile(name)
		if err != nil {
			return nil, err
		}
		stmts, err := render(name, string(src), o)
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: uint32(v), Name: label, Statements: stmts})
	}
	return out, nil
}

func render(name, src string, o Options) ([]string, error) {
	funcs := template.FuncMap{
		"local":     o.LocalTable,
		"name":      o.qualified,
		"onCluster": o.OnCluster,
		"lcString": func() string {
			if o.Features.LowCardinality {
				return "LowCardinality(String)"
			}
			return "String"
		},
		"codec": func(c string) string {
			if o.Features.Codecs {
				return " CODEC(" + c + ")"
			}
			return ""
		},
		"histBucket": HistBucketSQL,
		"sizeBucket": SizeBucketSQL,
		"clustered":  func() bool { return o.Cluster != "" },
		"engine":     o.tableEngine,
		"unitKey":    func() string { return unitShardingKey },
		"distributed": func(table, shardingKey string) string {
			return distributedDDL(o, table, shardingKey)
		},
		"backfillSettings": func() string {
			if o.Features.PartitionLimit {
				return "SETTINGS max_partitions_per_insert_block = 0"
			}
			return ""
		},
		"ttl": func(col string) string {
			if o.Features.TTL && o.RetentionDays > 0 {
				return "TTL " + col + " + INTERVAL " + strconv.Itoa(o.RetentionDays) + " DAY"
			}
			return ""
		},
	}
	t, err := template.New(name).Funcs(funcs).Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, fmt.Errorf("schema: parse %s: %w", name, err)
	}
	var b strings.Builder
	if err := t.Execute(&b, nil); err != nil {
		return nil, fmt.Errorf("schema: render %s: %w", name, err)
	}

	// Split into statements at lines ending with ';', dropping comment lines.
	// A "-- distributed:" directive adds, with a cluster, the Distributed
	// table right after the next statement (the one creating its local
	// table), so later statements of the migration can use it.
	type dist struct{ table, key string }
	var (
		stmts   []string
		pending []dist
		cur     strings.Builder
	)
	emit := func(stmt string) {
		stmts = append(stmts, strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(stmt), ";")))
		if o.Cluster != "" {
			for _, d := range pending {
				stmts = append(stmts, distributedDDL(o, d.table, d.key))
			}
		}
		pending = pending[:0]
	}
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " \t")
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "--") {
			if d, ok := strings.CutPrefix(trimmed, "-- distributed:"); ok {
				f := strings.Fields(d)
				if len(f) < 2 {
					return nil, fmt.Errorf("schema: %s: bad directive %q", name, trimmed)
				}
				pending = append(pending, dist{f[0], strings.Join(f[1:], " ")})
			}
			continue
		}
		if trimmed == "" {
			continue
		}
		if cur.Len() > 0 {
			cur.WriteByte('\n')
		}
		cur.WriteString(line)
		if strings.HasSuffix(trimmed, ";") {
			emit(cur.String())
			cur.Reset()
		}
	}
	if strings.TrimSpace(cur.String()) != "" {
		emit(cur.String())
	}
	if len(pending) > 0 {
		return nil, fmt.Errorf("schema: %s: a distributed directive is not followed by a statement", name)
	}
	return stmts, nil
}

// distributedDDL creates the Distributed table <table> over <table>_local.
func distributedDDL(o Options, table, shardingKey string) string {
	return "CREATE TABLE IF NOT EXISTS " + o.qualified(table) + o.OnCluster() +
		" AS " + o.LocalTable(table) +
		" ENGINE = Distributed(" + sqlString(o.Cluster) + ", " + sqlString(o.Database) + ", " +
		sqlString(table+LocalSuffix) + ", " + shardingKey + ")"
}

func sqlString(s string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", `\'`) + "'"
}

// DDLTaskTimeoutSeconds is how long an ON CLUSTER statement of Apply waits
// for every host. The server's default, 180 s, is not always enough: a busy
// 18.16 replica's DDL worker has taken longer to reach an ALTER, and the
// statement then fails (code 159) while it still runs on that host in the
// background — a collector would stop at start for what is only slowness.
const DDLTaskTimeoutSeconds = 600

// DDLReadTimeout is the least read timeout of a connection that applies the
// schema ON CLUSTER: the server answers an ON CLUSTER statement only when
// every host has run it, up to DDLTaskTimeoutSeconds, and a client that
// stops waiting first (clickhouse-go's default: 300 s) fails the start
// while the statement still runs; applying again then queues behind it.
const DDLReadTimeout = (DDLTaskTimeoutSeconds + 60) * time.Second

// DDLContext is ctx with distributed_ddl_task_timeout set to
// DDLTaskTimeoutSeconds for a server of serverVersion. A server before
// 19.11 (protocol revision 54429) gets settings as unsigned varints from
// the driver, but reads this one, an Int64, zigzag-encoded: 600 sent
// arrived as 300 on 18.16, so it is sent doubled there.
func DDLContext(ctx context.Context, serverVersion string) context.Context {
	v := DDLTaskTimeoutSeconds
	if major, minor, ok := ParseVersion(serverVersion); ok && (major < 19 || major == 19 && minor < 11) {
		v *= 2
	}
	return clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"distributed_ddl_task_timeout": v}))
}

// Conn is the part of clickhouse-go's driver.Conn that Apply uses.
type Conn interface {
	Exec(ctx context.Context, query string, args ...any) error
	Select(ctx context.Context, dest any, query string, args ...any) error
}

// Result says what Apply did.
type Result struct {
	Applied []uint32 // versions applied by this call
	Current uint32   // highest version recorded after the call
}

// Apply creates the database and migrations table if needed, then runs every
// migration not yet recorded in schema_migrations and records it.
// serverVersion is stored with each record.
func Apply(ctx context.Context, conn Conn, o Options, serverVersion string) (Result, error) {
	var res Result
	if o.OnCluster() != "" {
		ctx = DDLContext(ctx, serverVersion)
	}
	migs, err := Migrations(o)
	if err != nil {
		return res, err
	}
	for _, stmt := range Bootstrap(o) {
		if err := conn.Exec(ctx, stmt); err != nil {
			return res, fmt.Errorf("schema: %s: %w", firstLine(stmt), err)
		}
	}
	applied, err := AppliedVersions(ctx, conn, o)
	if err != nil {
		return res, err
	}
	done := map[uint32]bool{}
	for _, v := range applied {
		done[v] = true
		res.Current = max(res.Current, v)
	}
	for _, m := range migs {
		if done[m.Version] {
			continue
		}
		for _, stmt := range m.Statements {
			if err := conn.Exec(ctx, stmt); err != nil && !columnExists(stmt, err) {
				return res, fmt.Errorf("schema: migration %d (%s): %s: %w", m.Version, m.Name, firstLine(stmt), err)
			}
		}
		// INSERT ... SELECT: an INSERT ... VALUES through Exec hangs on 18.16.
		if err := conn.Exec(ctx, "INSERT INTO "+o.qualified(TableMigrations)+
			" (version, name, applied_at, server_version) SELECT toUInt32(?), ?, now(), ?",
			m.Version, m.Name, serverVersion); err != nil {
			return res, fmt.Errorf("schema: recording migration %d: %w", m.Version, err)
		}
		res.Applied = append(res.Applied, m.Version)
		res.Current = max(res.Current, m.Version)
		if o.Applied != nil {
			o.Applied(m.Version, m.Name)
		}
	}
	return res, nil
}

// columnExists reports whether err says an ADD COLUMN statement's column
// is already there: 18.16 has no ADD COLUMN IF NOT EXISTS, so a migration
// repeated after an interruption meets its own columns (code 44 on 18.16,
// 15 DUPLICATE_COLUMN on current servers).
func columnExists(stmt string, err error) bool {
	return strings.HasPrefix(stmt, "ALTER TABLE") && strings.Contains(stmt, " ADD COLUMN ") &&
		strings.Contains(err.Error(), "column with this name already exists")
}

// AppliedVersions lists the versions recorded in schema_migrations.
func AppliedVersions(ctx context.Context, conn Conn, o Options) ([]uint32, error) {
	var rows []struct {
		Version uint32 `ch:"version"`
	}
	if err := conn.Select(ctx, &rows, "SELECT DISTINCT version FROM "+o.qualified(TableMigrations)+" ORDER BY version"); err != nil {
		return nil, fmt.Errorf("schema: reading %s: %w", TableMigrations, err)
	}
	out := make([]uint32, len(rows))
	for i, r := range rows {
		out[i] = r.Version
	}
	return out, nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

// Values stored in deployment_events.source and .status.
const (
	SourceExplicit  = "explicit" // a CI/CD deploy span
	SourceInferred  = "inferred" // rows of collectors before schema v5; readers skip them
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
)
