package schema

import (
	"strings"
	"testing"
)

func allSQL(t *testing.T, o Options) []string {
	t.Helper()
	migs, err := Migrations(o)
	if err != nil {
		t.Fatal(err)
	}
	if len(migs) == 0 || migs[0].Version != 1 {
		t.Fatalf("migrations = %+v", migs)
	}
	var out []string
	for _, m := range migs {
		out = append(out, m.Statements...)
	}
	return out
}

func joined(stmts []string) string { return strings.Join(stmts, ";\n") }

func TestFeaturesFor(t *testing.T) {
	for v, want := range map[string]Features{
		"18.16.1":      {},
		"19.17.4.11":   {},
		"20.3.21.2":    {TTL: true, LowCardinality: true, Codecs: true, PartitionLimit: true},
		"24.8.4.13":    {TTL: true, LowCardinality: true, Codecs: true, PartitionLimit: true},
		"26.1.1.1":     {TTL: true, LowCardinality: true, Codecs: true, PartitionLimit: true},
		"":             {},
		"garbage":      {},
		"v23.x.broken": {},
	} {
		if got := FeaturesFor(v); got != want {
			t.Errorf("FeaturesFor(%q) = %+v, want %+v", v, got, want)
		}
	}
}

func TestRenderLegacy(t *testing.T) {
	stmts := allSQL(t, Options{Database: "changelens", RetentionDays: 30})
	sql := joined(stmts)
	for _, forbidden := range []string{"TTL", "CODEC", "LowCardinality", "max_partitions_per_insert_block", "DateTime64", "ON CLUSTER", "Distributed", "_local", "{{", "--"} {
		if strings.Contains(sql, forbidden) {
			t.Errorf("18.16 schema contains %q:\n%s", forbidden, sql)
		}
	}
	for _, want := range []string{
		"CREATE TABLE IF NOT EXISTS `changelens`.`latency_events`",
		"PARTITION BY toYYYYMMDD(time)",
		"ORDER BY (service, environment, operation, time)",
		"CREATE TABLE IF NOT EXISTS `changelens`.`latency_rollup_1m`",
		"ENGINE = AggregatingMergeTree",
		"ORDER BY (service, environment, version, operation, minute)",
		"CREATE MATERIALIZED VIEW IF NOT EXISTS `changelens`.`latency_rollup_1m_mv`\nTO `changelens`.`latency_rollup_1m`",
		"FROM `changelens`.`latency_events`",
		"quantilesTDigestWeightedState(0.5, 0.9, 0.95, 0.99)(duration_ns, toUInt64(greatest(round(weight), 1)))",
		"ENGINE = ReplacingMergeTree(ver)",
		"ORDER BY (service, environment, id)",
		// v2: bounded histograms, each view fed from the raw table
		"CREATE TABLE IF NOT EXISTS `changelens`.`latency_hist_1m`",
		"CREATE TABLE IF NOT EXISTS `changelens`.`latency_hist_1h`",
		"hist             AggregateFunction(sumMap, Array(UInt16), Array(Float64))",
		"PARTITION BY toYYYYMMDD(hour)",
		"ORDER BY (service, environment, version, operation, hour)",
		"CREATE MATERIALIZED VIEW IF NOT EXISTS `changelens`.`latency_hist_1m_mv`\nTO `changelens`.`latency_hist_1m`",
		"CREATE MATERIALIZED VIEW IF NOT EXISTS `changelens`.`latency_hist_1h_mv`\nTO `changelens`.`latency_hist_1h`",
		"sumMapState([toUInt16(least(65535, greatest(0, floor(log(greatest(duration_ns, 1000) / 1000) / log(1.04)))))], [weight]) AS hist",
		"toStartOfHour(time) AS hour",
		// v3: the rollup view again, rounding half up on every server
		"DROP TABLE IF EXISTS `changelens`.`latency_rollup_1m_mv`",
		"quantilesTDigestWeightedState(0.5, 0.9, 0.95, 0.99)(duration_ns, toUInt64(greatest(floor(weight + 0.5), 1)))",
		// v4: deployment events keyed by content, v1's rows copied
		"CREATE TABLE IF NOT EXISTS `changelens`.`deployment_events`",
		"ORDER BY (service, environment, id, row_hash)",
		"INSERT INTO `changelens`.`deployment_events`",
		"FROM `changelens`.`deployments`",
		// v5: version observations per minute, fed by a view and backfilled
		"CREATE TABLE IF NOT EXISTS `changelens`.`version_presence`",
		"CREATE MATERIALIZED VIEW IF NOT EXISTS `changelens`.`version_presence_mv`\nTO `changelens`.`version_presence`",
		"INSERT INTO `changelens`.`version_presence`",
		// v8: the callee's parent span, the callers' calls
		"ALTER TABLE `changelens`.`latency_events` ADD COLUMN parent_span_id FixedString(8)",
		"CREATE TABLE IF NOT EXISTS `changelens`.`call_events`\n(\n    service        String,",
		"    peer           String,\n    time           DateTime('UTC'),\n    start_time_ns  UInt64,\n    duration_ns    UInt64,\n" +
			"    is_error       UInt8,\n    weight         Float64,\n    trace_id       FixedString(16),\n    span_id        FixedString(8)\n)\n" +
			"ENGINE = MergeTree\nPARTITION BY toYYYYMMDD(time)\nORDER BY (environment, service, time)\nSETTINGS index_granularity = 8192",
	} {
		if !strings.Contains(sql, want) {
			t.Errorf("schema lacks %q", want)
		}
	}
	if !strings.Contains(sql, "CREATE TABLE IF NOT EXISTS `changelens`.`incident_events`\n(") ||
		!strings.Contains(sql, "ENGINE = ReplacingMergeTree(ver)\nPARTITION BY toYYYYMMDD(opened_time)\nORDER BY (service, environment, id)\nSETTINGS") {
		t.Errorf("schema lacks v10's incident_events:\n%s", sql)
	}
	if !strings.Contains(sql, "CREATE TABLE IF NOT EXISTS `changelens`.`commit_events`\n(\n    service         String,\n    repository      String,\n    sha             String,\n    commit_time     DateTime('UTC'),") ||
		!strings.Contains(sql, "ENGINE = ReplacingMergeTree(ver)\nPARTITION BY toYYYYMMDD(commit_time)\nORDER BY (service, sha)\nSETTINGS index_granularity = 8192") {
		t.Errorf("schema lacks v11's commit_events:\n%s", sql)
	}
	if !strings.Contains(sql, "CREATE TABLE IF NOT EXISTS `changelens`.`flag_evaluations`\n(\n    service      String,\n    environment  String,\n    flag_key     String,\n    variant      String,\n    time         DateTime('UTC'),\n    time_ns      UInt64,") ||
		!strings.Contains(sql, "ENGINE = ReplacingMergeTree\nPARTITION BY toYYYYMMDD(time)\nORDER BY (service, environment, flag_key, trace_id, time_ns, span_id, variant)\nSETTINGS index_granularity = 8192") {
		t.Errorf("schema lacks v12's flag_evaluations:\n%s", sql)
	}
	if !strings.Contains(sql, "ALTER TABLE `changelens`.`latency_events` ADD COLUMN error_kind String") ||
		!strings.Contains(sql, "CREATE TABLE IF NOT EXISTS `changelens`.`error_kinds_1m`\n(\n    service         String,\n    environment     String,\n    version         String,\n    error_kind      String,\n    minute          DateTime('UTC'),\n"+
			"    error_count     AggregateFunction(sum, Float64),\n    first_time_ns   AggregateFunction(min, UInt64),\n    first_trace_id  AggregateFunction(argMin, FixedString(16), UInt64)\n)\n"+
			"ENGINE = AggregatingMergeTree\nPARTITION BY toYYYYMMDD(minute)\nORDER BY (service, environment, version, error_kind, minute)") ||
		!strings.Contains(sql, "CREATE MATERIALIZED VIEW IF NOT EXISTS `changelens`.`error_kinds_1m_mv`\nTO `changelens`.`error_kinds_1m`") ||
		!strings.Contains(sql, "argMinState(trace_id, start_time_ns) AS first_trace_id\nFROM `changelens`.`latency_events`\nWHERE is_error = 1 AND error_kind != ''") {
		t.Errorf("schema lacks v13's error_kind and error_kinds_1m:\n%s", sql)
	}
	if !strings.Contains(sql, "CREATE TABLE IF NOT EXISTS `changelens`.`resource_usage`\n(\n    service        String,") ||
		!strings.Contains(sql, "ENGINE = ReplacingMergeTree\nPARTITION BY toYYYYMMDD(time)\nORDER BY (service, environment, metric, instance, start_time_ns, time_ns)\nSETTINGS index_granularity = 8192") {
		t.Errorf("schema lacks v14's resource_usage:\n%s", sql)
	}
	if !strings.Contains(sql, "ALTER TABLE `changelens`.`latency_events` ADD COLUMN self_time_ns Int64 DEFAULT -1") {
		t.Errorf("schema lacks v14's self_time_ns")
	}
	if !strings.Contains(sql, "ALTER TABLE `changelens`.`latency_events` ADD COLUMN session_id String") ||
		!strings.Contains(sql, "ALTER TABLE `changelens`.`latency_events` ADD COLUMN crashed UInt8") ||
		!strings.Contains(sql, "ENGINE = ReplacingMergeTree\nPARTITION BY toYYYYMMDD(time)\nORDER BY (service, environment, name, session_id, user_id, time_ns, trace_id, span_id)") {
		t.Errorf("schema lacks v15's session columns and outcome_events:\n%s", sql)
	}
	if !strings.Contains(sql, "CREATE TABLE IF NOT EXISTS `changelens`.`version_episodes`\n(\n    reappear_ns  Int64,\n    service      String,") ||
		!strings.Contains(sql, "ENGINE = ReplacingMergeTree(up_to)\nORDER BY (reappear_ns, service, environment)") {
		t.Errorf("schema lacks v19's version_episodes:\n%s", sql)
	}
	if len(stmts) != 44 {
		t.Errorf("%d statements, want 44 (v1: 3 tables + 1 view; v2: 2 tables + 2 views; v3: drop + view; v4: table + copy; v5: table + view + backfill; v6: 4 columns + table + view; v7: 2 tables; v8: column + table; v9: column; v10: table; v11: table; v12: table; v13: column + table + view; v14: table + column; v15: 3 columns + table; v16: table; v17: table; v18: table + view + backfill; v19: table)", len(stmts))
	}
	for _, s := range stmts {
		if strings.HasSuffix(s, ";") || strings.TrimSpace(s) != s {
			t.Errorf("statement not trimmed: %q", s)
		}
	}
}

func TestRenderModern(t *testing.T) {
	o := Options{Database: "obs", RetentionDays: 14, Features: FeaturesFor("24.8.1.1")}
	sql := joined(allSQL(t, o))
	for _, want := range []string{
		"service        LowCardinality(String)",
		"time           DateTime('UTC') CODEC(Delta(4), ZSTD(1))",
		"TTL time + INTERVAL 14 DAY",
		"TTL minute + INTERVAL 14 DAY",
		"TTL hour + INTERVAL 14 DAY",
		"TTL bucket + INTERVAL 14 DAY",
		"ADD COLUMN cohort_keys Array(LowCardinality(String))",
		"dimension          LowCardinality(String)",
		// v8: call_events as latency_events, expired by its own TTL
		"    peer           LowCardinality(String),\n    time           DateTime('UTC') CODEC(Delta(4), ZSTD(1)),\n" +
			"    start_time_ns  UInt64 CODEC(Delta(8), ZSTD(1)),\n    duration_ns    UInt64 CODEC(ZSTD(1)),",
		"ORDER BY (environment, service, time)\nTTL time + INTERVAL 14 DAY\nSETTINGS index_granularity = 8192",
		// the back-fill of version_presence may span months of daily partitions
		"GROUP BY service, environment, version, bucket\nSETTINGS max_partitions_per_insert_block = 0",
		// v11: commit_events expired by the commit's time like the raw tables
		"    service         LowCardinality(String),\n    repository      LowCardinality(String),",
		"ORDER BY (service, sha)\nTTL commit_time + INTERVAL 14 DAY\nSETTINGS index_granularity = 8192",
		// v12: flag_evaluations expired like the raw tables
		"    flag_key     LowCardinality(String),\n    variant      String,\n    time         DateTime('UTC') CODEC(Delta(4), ZSTD(1)),",
		"ORDER BY (service, environment, flag_key, trace_id, time_ns, span_id, variant)\nTTL time + INTERVAL 14 DAY\nSETTINGS index_granularity = 8192",
		// v13: the error kind, low-cardinality, and its rollup expired like the others
		"ADD COLUMN error_kind LowCardinality(String)",
		"    error_kind      LowCardinality(String),\n    minute          DateTime('UTC'),",
		"ORDER BY (service, environment, version, error_kind, minute)\nTTL minute + INTERVAL 14 DAY",
	} {
		if !strings.Contains(sql, want) {
			t.Errorf("modern schema lacks %q:\n%s", want, sql)
		}
	}
	// The logical schema is the same: no column changes type for readers.
	if strings.Contains(sql, "DateTime64") {
		t.Error("DateTime64 must not be used (readers share one schema)")
	}
	o.RetentionDays = 0
	if sql := joined(allSQL(t, o)); strings.Contains(sql, "TTL") {
		t.Error("retention_days 0 must not set a TTL")
	}
}

func TestRenderCluster(t *testing.T) {
	o := Options{Database: "changelens", Cluster: "prod", RetentionDays: 30}
	stmts := allSQL(t, o)
	sql := joined(stmts)
	for _, want := range []string{
		"CREATE TABLE IF NOT EXISTS `changelens`.`latency_events_local` ON CLUSTER `prod`",
		"CREATE TABLE IF NOT EXISTS `changelens`.`latency_rollup_1m_local` ON CLUSTER `prod`",
		"CREATE TABLE IF NOT EXISTS `changelens`.`deployments_local` ON CLUSTER `prod`",
		// the view reads and writes the local tables on every shard
		"CREATE MATERIALIZED VIEW IF NOT EXISTS `changelens`.`latency_rollup_1m_mv` ON CLUSTER `prod`\nTO `changelens`.`latency_rollup_1m_local`",
		"FROM `changelens`.`latency_events_local`",
		"CREATE TABLE IF NOT EXISTS `changelens`.`latency_events` ON CLUSTER `prod` AS `changelens`.`latency_events_local` ENGINE = Distributed('prod', 'changelens', 'latency_events_local', cityHash64(service, environment))",
		"CREATE TABLE IF NOT EXISTS `changelens`.`latency_rollup_1m` ON CLUSTER `prod` AS `changelens`.`latency_rollup_1m_local` ENGINE = Distributed('prod', 'changelens', 'latency_rollup_1m_local', cityHash64(service, environment))",
		"CREATE TABLE IF NOT EXISTS `changelens`.`deployments` ON CLUSTER `prod` AS `changelens`.`deployments_local` ENGINE = Distributed('prod', 'changelens', 'deployments_local', cityHash64(service, environment))",
		"CREATE MATERIALIZED VIEW IF NOT EXISTS `changelens`.`latency_hist_1m_mv` ON CLUSTER `prod`\nTO `changelens`.`latency_hist_1m_local`",
		"CREATE MATERIALIZED VIEW IF NOT EXISTS `changelens`.`latency_hist_1h_mv` ON CLUSTER `prod`\nTO `changelens`.`latency_hist_1h_local`",
		"CREATE TABLE IF NOT EXISTS `changelens`.`latency_hist_1m` ON CLUSTER `prod` AS `changelens`.`latency_hist_1m_local` ENGINE = Distributed('prod', 'changelens', 'latency_hist_1m_local', cityHash64(service, environment))",
		"CREATE TABLE IF NOT EXISTS `changelens`.`latency_hist_1h` ON CLUSTER `prod` AS `changelens`.`latency_hist_1h_local` ENGINE = Distributed('prod', 'changelens', 'latency_hist_1h_local', cityHash64(service, environment))",
		"CREATE TABLE IF NOT EXISTS `changelens`.`deployment_events` ON CLUSTER `prod` AS `changelens`.`deployment_events_local` ENGINE = Distributed('prod', 'changelens', 'deployment_events_local', cityHash64(service, environment))",
		// the copy of v1's rows goes through the Distributed tables
		"INSERT INTO `changelens`.`deployment_events`",
		"FROM `changelens`.`deployments`",
		// one unit's version observations on one shard
		"CREATE TABLE IF NOT EXISTS `changelens`.`version_presence` ON CLUSTER `prod` AS `changelens`.`version_presence_local` ENGINE = Distributed('prod', 'changelens', 'version_presence_local', cityHash64(service, environment))",
		"FROM `changelens`.`latency_events_local`\nWHERE version != ''",
		// v6: the columns on the local and the Distributed table, the cohort rollup
		"ALTER TABLE `changelens`.`latency_events_local` ON CLUSTER `prod` ADD COLUMN cohort_keys Array(String)",
		"DROP TABLE IF EXISTS `changelens`.`latency_events` ON CLUSTER `prod`;\nCREATE TABLE IF NOT EXISTS `changelens`.`latency_events` ON CLUSTER `prod` AS `changelens`.`latency_events_local` ENGINE = Distributed('prod', 'changelens', 'latency_events_local', cityHash64(service, environment))",
		"CREATE MATERIALIZED VIEW IF NOT EXISTS `changelens`.`cohort_hist_1m_mv` ON CLUSTER `prod`\nTO `changelens`.`cohort_hist_1m_local`",
		// v8: the column on the local and the Distributed table, call_events sharded by the caller
		"ALTER TABLE `changelens`.`latency_events_local` ON CLUSTER `prod` ADD COLUMN parent_span_id FixedString(8);\n" +
			"DROP TABLE IF EXISTS `changelens`.`latency_events` ON CLUSTER `prod`;\n" +
			"CREATE TABLE IF NOT EXISTS `changelens`.`latency_events` ON CLUSTER `prod` AS `changelens`.`latency_events_local` ENGINE = Distributed('prod', 'changelens', 'latency_events_local', cityHash64(service, environment));\n" +
			"CREATE TABLE IF NOT EXISTS `changelens`.`call_events_local` ON CLUSTER `prod`\n(",
		"ORDER BY (environment, service, time)\nSETTINGS index_granularity = 8192;\n" +
			"CREATE TABLE IF NOT EXISTS `changelens`.`call_events` ON CLUSTER `prod` AS `changelens`.`call_events_local` ENGINE = Distributed('prod', 'changelens', 'call_events_local', cityHash64(service, environment))",
	} {
		if !strings.Contains(sql, want) {
			t.Errorf("cluster schema lacks\n  %s\nin\n%s", want, sql)
		}
	}
	if !strings.Contains(sql, "CREATE TABLE IF NOT EXISTS `changelens`.`incident_events` ON CLUSTER `prod` AS `changelens`.`incident_events_local` ENGINE = Distributed('prod', 'changelens', 'incident_events_local', cityHash64(service, environment))") {
		t.Errorf("cluster schema lacks the Distributed incident_events")
	}
	if !strings.Contains(sql, "CREATE TABLE IF NOT EXISTS `changelens`.`commit_events_local` ON CLUSTER `prod`\n(") ||
		!strings.Contains(sql, "CREATE TABLE IF NOT EXISTS `changelens`.`commit_events` ON CLUSTER `prod` AS `changelens`.`commit_events_local` ENGINE = Distributed('prod', 'changelens', 'commit_events_local', cityHash64(service, sha))") {
		t.Errorf("cluster schema lacks commit_events, local and Distributed by commit")
	}
	if !strings.Contains(sql, "CREATE TABLE IF NOT EXISTS `changelens`.`flag_evaluations` ON CLUSTER `prod` AS `changelens`.`flag_evaluations_local` ENGINE = Distributed('prod', 'changelens', 'flag_evaluations_local', cityHash64(service, environment))") {
		t.Errorf("cluster schema lacks the Distributed flag_evaluations, sharded by unit")
	}
	if !strings.Contains(sql, "ALTER TABLE `changelens`.`latency_events_local` ON CLUSTER `prod` ADD COLUMN error_kind String;\n"+
		"DROP TABLE IF EXISTS `changelens`.`latency_events` ON CLUSTER `prod`;\n"+
		"CREATE TABLE IF NOT EXISTS `changelens`.`latency_events` ON CLUSTER `prod` AS `changelens`.`latency_events_local` ENGINE = Distributed('prod', 'changelens', 'latency_events_local', cityHash64(service, environment));\n"+
		"CREATE TABLE IF NOT EXISTS `changelens`.`error_kinds_1m_local` ON CLUSTER `prod`\n(") ||
		!strings.Contains(sql, "CREATE TABLE IF NOT EXISTS `changelens`.`error_kinds_1m` ON CLUSTER `prod` AS `changelens`.`error_kinds_1m_local` ENGINE = Distributed('prod', 'changelens', 'error_kinds_1m_local', cityHash64(service, environment))") ||
		!strings.Contains(sql, "CREATE MATERIALIZED VIEW IF NOT EXISTS `changelens`.`error_kinds_1m_mv` ON CLUSTER `prod`\nTO `changelens`.`error_kinds_1m_local`") {
		t.Errorf("cluster schema lacks v13's column on both tables and error_kinds_1m, local, Distributed by unit and fed on every shard")
	}
	if !strings.Contains(sql, "CREATE TABLE IF NOT EXISTS `changelens`.`resource_usage` ON CLUSTER `prod` AS `changelens`.`resource_usage_local` ENGINE = Distributed('prod', 'changelens', 'resource_usage_local', cityHash64(service, environment))") {
		t.Errorf("cluster schema lacks v14's resource_usage, Distributed by unit")
	}
	if !strings.Contains(sql, "CREATE TABLE IF NOT EXISTS `changelens`.`outcome_events` ON CLUSTER `prod` AS `changelens`.`outcome_events_local` ENGINE = Distributed('prod', 'changelens', 'outcome_events_local', cityHash64(service, environment))") {
		t.Errorf("cluster schema lacks the Distributed outcome_events, sharded by unit")
	}
	if len(stmts) != 77 {
		t.Errorf("%d statements, want 77 (v1: 3 local + view + 3 distributed; v2: 2 local + 2 views + 2 distributed; v3: drop + view; v4: local + distributed + copy; v5: local + distributed + view + backfill; v6: 4 columns + drop and re-create of the distributed table + local + distributed + view; v7: 2 local + 2 distributed; v8: column + drop and re-create of the distributed table + local + distributed; v9: column + drop and re-create of the distributed table; v10: local + distributed; v11: local + distributed; v12: local + distributed; v13: column + drop and re-create of the distributed table + local + distributed + view; v14: local + distributed + column + drop and re-create of the distributed table; v15: 3 columns + drop and re-create of the distributed table + local + distributed; v16: local + distributed; v17: local + distributed; v18: local + distributed + view + backfill; v19: local + distributed)", len(stmts))
	}
	// A Distributed table comes right after the local table it wraps, before
	// any statement that may use it.
	idx := func(s string) int { return strings.Index(sql, s) }
	if idx("ENGINE = Distributed('prod', 'changelens', 'deployments_local'") < idx("`deployments_local` ON CLUSTER") {
		t.Error("distributed table created before its local table")
	}
	if idx("ENGINE = Distributed('prod', 'changelens', 'deployment_events_local'") > idx("INSERT INTO `changelens`.`deployment_events`") {
		t.Error("the copy into deployment_events runs before its Distributed table exists")
	}
	boot := joined(Bootstrap(o))
	for _, want := range []string{
		"CREATE DATABASE IF NOT EXISTS `changelens` ON CLUSTER `prod`",
		"CREATE TABLE IF NOT EXISTS `changelens`.`schema_migrations` ON CLUSTER `prod`",
	} {
		if !strings.Contains(boot, want) {
			t.Errorf("bootstrap lacks %q", want)
		}
	}
	if got := o.InsertTable(TableLatencyEvents); got != "`changelens`.`latency_events`" {
		t.Errorf("insert table = %s (inserts go through the Distributed table)", got)
	}
	if got := o.LocalTable(TableLatencyEvents); got != "`changelens`.`latency_events_local`" {
		t.Errorf("local table = %s", got)
	}

	if strings.Contains(sql, "Replicated") {
		t.Error("replicated engines without Replicated")
	}

	// Replicated: every local table's engine is its Replicated* form with a
	// ZooKeeper path per shard and table; schema_migrations is one replica
	// set across the cluster.
	r := o
	r.Replicated = true
	rsql := joined(allSQL(t, r))
	for _, want := range []string{
		"ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/changelens/latency_events_local', '{replica}')",
		"ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/changelens/latency_hist_1m_local', '{replica}')",
		"ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/changelens/deployment_events_local', '{replica}', ver)",
		"ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/changelens/notification_log_local', '{replica}')",
		"ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/changelens/call_events_local', '{replica}')",
		"ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/changelens/commit_events_local', '{replica}', ver)",
		"ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/changelens/flag_evaluations_local', '{replica}')",
		"ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/changelens/error_kinds_1m_local', '{replica}')",
	} {
		if !strings.Contains(rsql, want) {
			t.Errorf("replicated schema lacks\n  %s", want)
		}
	}
	for _, line := range strings.Split(rsql, "\n") {
		if strings.HasPrefix(line, "ENGINE = ") && !strings.HasPrefix(line, "ENGINE = Replicated") {
			t.Errorf("a local table without a replicated engine: %s", line)
		}
	}
	if boot := joined(Bootstrap(r)); !strings.Contains(boot, "ENGINE = ReplicatedMergeTree('/clickhouse/tables/all/changelens/schema_migrations', '{shard}-{replica}')") {
		t.Errorf("replicated schema_migrations: %s", boot)
	}
	r.ReplicationPath = "/ch/{cluster}/{shard}/"
	if !strings.Contains(joined(allSQL(t, r)), "ReplicatedMergeTree('/ch/{cluster}/{shard}/changelens/latency_events_local', '{replica}')") {
		t.Error("replication_path not used")
	}

	o.NoOnCluster = true
	if sql := joined(allSQL(t, o)); strings.Contains(sql, "ON CLUSTER") || !strings.Contains(sql, "Distributed(") {
		t.Error("NoOnCluster must drop ON CLUSTER but keep the Distributed tables")
	}
}

func TestQuote(t *testing.T) {
	if got := quote("a`b\\c"); got != "`a\\`b\\\\c`" {
		t.Errorf("quote = %s", got)
	}
	if got := sqlString("it's"); got != `'it\'s'` {
		t.Errorf("sqlString = %s", got)
	}
}

// Every day-partitioned table is swept by retention, by the column its
// partition key is computed from: a table left out (call_events, schema v8,
// was one to add) would grow forever on 18.16, which has no TTL.
func TestRetentionTablesCoverEveryPartitionedTable(t *testing.T) {
	want := map[string]string{}
	for _, stmt := range allSQL(t, Options{Database: "db"}) {
		name, ok := strings.CutPrefix(stmt, "CREATE TABLE IF NOT EXISTS `db`.`")
		if !ok {
			continue
		}
		name = name[:strings.IndexByte(name, '`')]
		if _, col, ok := strings.Cut(stmt, "PARTITION BY toYYYYMMDD("); ok {
			want[name] = col[:strings.IndexByte(col, ')')]
		}
	}
	got := map[string]string{}
	for _, rt := range RetentionTables {
		got[rt.Table] = rt.TimeColumn
	}
	if len(want) == 0 || len(got) != len(want) {
		t.Errorf("RetentionTables = %v, the day-partitioned tables are %v", got, want)
	}
	for table, col := range want {
		if got[table] != col {
			t.Errorf("%s (partitioned by day of %s): RetentionTables has %q", table, col, got[table])
		}
	}
}
