-- changelens schema v14: resource usage (CPU time, memory) of each instance
-- of a unit, from the OTLP metrics the applications already export.
--
-- One row per data point as it arrived, after the processor summed the
-- point's attribute splits (cpu.mode, jvm.memory.pool.name, ...) per
-- instance: no increment is computed at write time, because a cumulative
-- series may reach several collectors (a load balancer splits a stream's
-- exports) and an increment needs the previous point, which another
-- collector may hold. The reader computes increments per (instance, metric,
-- start_time_ns) series from every stored point, so the answer is the same
-- whichever collector received which point.
--
-- temporality is 'cumulative' or 'delta' (sums: CPU time) or 'gauge'
-- (memory). The sorting key is the point's identity: a replay (a retry, a
-- second collector, a duplicated export) is the same key with the same
-- value, which merges collapse and readers group anyway. Sharded by unit,
-- partitioned by day of the point and expired with the raw tables.

-- distributed: resource_usage {{unitKey}}
CREATE TABLE IF NOT EXISTS {{local "resource_usage"}}{{onCluster}}
(
    service        {{lcString}},
    environment    {{lcString}},
    version        {{lcString}},
    instance       String,
    metric         {{lcString}},
    temporality    {{lcString}},
    start_time_ns  UInt64{{codec "Delta(8), ZSTD(1)"}},
    time           DateTime('UTC'){{codec "Delta(4), ZSTD(1)"}},
    time_ns        UInt64{{codec "Delta(8), ZSTD(1)"}},
    value          Float64{{codec "ZSTD(1)"}}
)
ENGINE = {{engine "ReplacingMergeTree" "resource_usage"}}
PARTITION BY toYYYYMMDD(time)
ORDER BY (service, environment, metric, instance, start_time_ns, time_ns)
{{ttl "time"}}
SETTINGS index_granularity = 8192;

-- latency_events gains self_time_ns: the request's self time as the
-- processor measured it (self_time.enabled: the entry span's duration
-- outside the union of its CLIENT children in the batch), the proxy of a
-- request's own CPU where the metrics cannot split it (flag cohorts of one
-- process); -1 when not measured, as every row before this version reads.
-- One ALTER, as in v6 and v13.

ALTER TABLE {{local "latency_events"}}{{onCluster}} ADD COLUMN self_time_ns Int64 DEFAULT -1;
{{- if clustered}}
-- The Distributed table is re-created over the altered local table (v6).
DROP TABLE IF EXISTS {{name "latency_events"}}{{onCluster}};
{{distributed "latency_events" unitKey}};
{{- end}}
