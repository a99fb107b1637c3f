-- changelens schema v8: the service graph, as a join of stored rows.
--
-- call_events holds one row per call event: a unit's outgoing CLIENT or
-- PRODUCER span (internal/eventspan), its unit being the caller. A callee's
-- latency event whose parent_span_id is a call's span_id, in the same trace,
-- is the other end of that call:
--     call_events.(trace_id, span_id) = latency_events.(trace_id, parent_span_id)
-- Readers join at query time rather than the exporter pairing spans as they
-- arrive: the two ends of a call often reach different collectors, or one
-- collector in different batches, and only stored rows are the same whoever
-- received what. A call whose callee is not instrumented has no match and is
-- known by its peer (peer.service, server.address, db.system.name, ...).
-- The join's SQL, tested on 18.16 and 26.x: docs/clickhouse.md.
--
-- latency_events gains parent_span_id. Rows written before this version read
-- as zero bytes, no parent: they are nobody's callee, as an entry span whose
-- caller is not instrumented. ADD COLUMN only changes metadata.
--
-- One ALTER per column: 18.16 has no ADD COLUMN IF NOT EXISTS, so the
-- migration runner treats "column already exists" on an ADD COLUMN as done
-- (schema.go), which keeps an interrupted upgrade repeatable.

ALTER TABLE {{local "latency_events"}}{{onCluster}} ADD COLUMN parent_span_id FixedString(8);
{{- if clustered}}
-- The Distributed table is re-created over the altered local table rather
-- than altered: 18.16 refuses ALTER … ON CLUSTER of a table that is not
-- replicated on a cluster whose shards replicate. It holds no rows of its
-- own (the exporter inserts synchronously); readers see it missing for the
-- moment between the two statements. Both are idempotent.
DROP TABLE IF EXISTS {{name "latency_events"}}{{onCluster}};
{{distributed "latency_events" unitKey}};
{{- end}}

-- call_events: sharded, like every table, by its unit (the caller), so a
-- unit's calls sit on one shard; a callee's latency events sit on the
-- callee's, so the graph join over the Distributed tables is GLOBAL. Ordered
-- by environment first: the graph reads a whole environment (or one caller
-- of it) over a time range. No rollup: the graph needs the callee, which only
-- the join knows. Expired with the other raw tables.

-- distributed: call_events {{unitKey}}
CREATE TABLE IF NOT EXISTS {{local "call_events"}}{{onCluster}}
(
    service        {{lcString}},
    environment    {{lcString}},
    version        {{lcString}},
    operation      {{lcString}},
    peer           {{lcString}},
    time           DateTime('UTC'){{codec "Delta(4), ZSTD(1)"}},
    start_time_ns  UInt64{{codec "Delta(8), ZSTD(1)"}},
    duration_ns    UInt64{{codec "ZSTD(1)"}},
    is_error       UInt8,
    weight         Float64,
    trace_id       FixedString(16),
    span_id        FixedString(8)
)
ENGINE = {{engine "MergeTree" "call_events"}}
PARTITION BY toYYYYMMDD(time)
ORDER BY (environment, service, time)
{{ttl "time"}}
SETTINGS index_granularity = 8192;
