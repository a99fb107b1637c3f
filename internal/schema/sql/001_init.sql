-- changelens schema v1: raw latency events, their per-minute rollup, deployments.
--
-- Rendered with Go text/template (see schema.go). Template functions:
--   local "t"    the table that stores data: db.t, or db.t_local with cluster_name
--   name "t"     db.t, never suffixed (materialized views)
--   onCluster    " ON CLUSTER c" with cluster_name, else empty
--   lcString     LowCardinality(String) on servers that have it (>= 20), else String
--   codec "..."  " CODEC(...)" on servers that have codecs (>= 20), else empty
--   ttl "col"    "TTL col + INTERVAL n DAY" when retention_days > 0 on servers with TTL (>= 20)
--   backfillSettings  lifts the per-INSERT partition limit (>= 20) for back-fills
--   histBucket "col"  the latency histogram bucket of a duration column (histogram.go)
--   unitKey      the sharding key of a unit's rows, cityHash64(service, environment)
--   engine "E" "t" [params]  the engine E(params) of table t, or with a
--                replicated cluster ReplicatedE('<replication_path>/<db>/t_local', '{replica}'[, params])
-- "-- distributed: <table> <sharding key>" lines ask for a Distributed table
-- <table> over <table>_local when cluster_name is set. Sharding keys keep
-- one unit's (service, environment's) rows on one shard: the materialized
-- views then write its aggregates on that shard too, and the per-unit
-- window queries stay shard-local.
--
-- Times are DateTime('UTC') (seconds) plus UInt64 nanoseconds: DateTime64 does
-- not exist on 18.16, the oldest server this schema supports.

-- distributed: latency_events {{unitKey}}
CREATE TABLE IF NOT EXISTS {{local "latency_events"}}{{onCluster}}
(
    service        {{lcString}},
    environment    {{lcString}},
    version        {{lcString}},
    operation      {{lcString}},
    time           DateTime('UTC'){{codec "Delta(4), ZSTD(1)"}},
    start_time_ns  UInt64{{codec "Delta(8), ZSTD(1)"}},
    duration_ns    UInt64{{codec "ZSTD(1)"}},
    is_error       UInt8,
    http_status    UInt16,
    weight         Float64,
    trace_id       FixedString(16),
    span_id        FixedString(8)
)
ENGINE = {{engine "MergeTree" "latency_events"}}
PARTITION BY toYYYYMMDD(time)
ORDER BY (service, environment, operation, time)
{{ttl "time"}}
SETTINGS index_granularity = 8192;

-- distributed: latency_rollup_1m {{unitKey}}
CREATE TABLE IF NOT EXISTS {{local "latency_rollup_1m"}}{{onCluster}}
(
    service          {{lcString}},
    environment      {{lcString}},
    version          {{lcString}},
    operation        {{lcString}},
    minute           DateTime('UTC'),
    request_count    AggregateFunction(sum, Float64),
    error_count      AggregateFunction(sum, Float64),
    duration_sum_ns  AggregateFunction(sum, Float64),
    sample_count     AggregateFunction(count),
    duration_digest  AggregateFunction(quantilesTDigestWeighted(0.5, 0.9, 0.95, 0.99), UInt64, UInt64)
)
ENGINE = {{engine "AggregatingMergeTree" "latency_rollup_1m"}}
PARTITION BY toYYYYMMDD(minute)
ORDER BY (service, environment, version, operation, minute)
{{ttl "minute"}};

-- The t-digest weight must be an integer on 18.16: the sampling weight is
-- rounded (minimum 1). Counts, error counts and duration sums use the exact
-- Float64 weight.
CREATE MATERIALIZED VIEW IF NOT EXISTS {{name "latency_rollup_1m_mv"}}{{onCluster}}
TO {{local "latency_rollup_1m"}}
AS SELECT
    service,
    environment,
    version,
    operation,
    toStartOfMinute(time) AS minute,
    sumState(weight) AS request_count,
    sumState(is_error * weight) AS error_count,
    sumState(duration_ns * weight) AS duration_sum_ns,
    countState() AS sample_count,
    quantilesTDigestWeightedState(0.5, 0.9, 0.95, 0.99)(duration_ns, toUInt64(greatest(round(weight), 1))) AS duration_digest
FROM {{local "latency_events"}}
GROUP BY service, environment, version, operation, minute;

-- One row per deployment event; rows with the same id collapse on merge to
-- the one with the highest ver (see README: superseded > explicit >
-- earliest deploy_time > earliest rollout_start). Readers must not rely on
-- merges: GROUP BY id with argMax(column, ver), or FINAL.
-- distributed: deployments {{unitKey}}
CREATE TABLE IF NOT EXISTS {{local "deployments"}}{{onCluster}}
(
    id                  String,
    service             {{lcString}},
    environment         {{lcString}},
    version             String,
    previous_version    String,
    source              {{lcString}},
    status              {{lcString}},
    rollout_start       DateTime('UTC'),
    rollout_start_ns    UInt64,
    deploy_time         DateTime('UTC'),
    deploy_time_ns      UInt64,
    commit_sha          String,
    commit_time         DateTime('UTC'),
    commit_time_ns      UInt64,
    rollback_candidate  UInt8,
    external_id         String,
    pipeline_name       String,
    pipeline_run_id     String,
    superseded_by       String,
    trace_id            FixedString(16),
    span_id             FixedString(8),
    observed_time       DateTime('UTC'),
    ver                 UInt64
)
ENGINE = {{engine "ReplacingMergeTree" "deployments" "ver"}}
ORDER BY (service, environment, id);
