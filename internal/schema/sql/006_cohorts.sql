-- changelens schema v6: cohort dimensions and body sizes of latency events,
-- and their per-minute rollup for same-window comparisons (canary, A/B).
--
-- latency_events gains, per event, the cohort dimensions the processor
-- recorded (parallel arrays: cohort_keys[i] = "feature_flag.<key>" or
-- "attribute.<name>", cohort_values[i] its value) and the HTTP response and
-- request body sizes in bytes (-1: the span carried none). Rows written
-- before this version read as no dimensions and no sizes: nothing is lost
-- and nothing needs rewriting (ADD COLUMN only changes metadata).
--
-- One ALTER per column: 18.16 has no ADD COLUMN IF NOT EXISTS, so the
-- migration runner treats "column already exists" on an ADD COLUMN as done
-- (schema.go), which keeps an interrupted upgrade repeatable.

ALTER TABLE {{local "latency_events"}}{{onCluster}} ADD COLUMN cohort_keys Array({{lcString}});
ALTER TABLE {{local "latency_events"}}{{onCluster}} ADD COLUMN cohort_values Array(String);
ALTER TABLE {{local "latency_events"}}{{onCluster}} ADD COLUMN response_size Int64 DEFAULT -1;
ALTER TABLE {{local "latency_events"}}{{onCluster}} ADD COLUMN request_size Int64 DEFAULT -1;
{{- if clustered}}
-- The Distributed table is re-created over the altered local table rather
-- than altered: 18.16 refuses ALTER … ON CLUSTER of a table that is not
-- replicated on a cluster whose shards replicate. It holds no rows of its
-- own (the exporter inserts synchronously); readers see it missing for the
-- moment between the two statements. Both are idempotent.
DROP TABLE IF EXISTS {{name "latency_events"}}{{onCluster}};
{{distributed "latency_events" unitKey}};
{{- end}}

-- cohort_hist_1m: per (unit, dimension, value, operation, minute) what
-- latency_hist_1m holds per version, plus body-size histograms. Every event
-- counts once under "version" (its service.version) and once under each of
-- its cohort dimensions, so a comparison along any dimension reads one table.
-- Size histograms use the latency layout over bytes (histogram.go,
-- SizeBucketSQL: bucket i holds [1.04^i, 1.04^(i+1)) bytes); events without
-- a size add nothing to them.
--
-- No back-fill: rows written before this version have no dimensions or
-- sizes, and the version dimension's requests, errors and latency are read
-- from latency_hist_1m, which has them since schema v2; the comparison reads
-- only sizes of the version dimension from here.

-- distributed: cohort_hist_1m {{unitKey}}
CREATE TABLE IF NOT EXISTS {{local "cohort_hist_1m"}}{{onCluster}}
(
    service            {{lcString}},
    environment        {{lcString}},
    dimension          {{lcString}},
    value              String,
    operation          {{lcString}},
    minute             DateTime('UTC'),
    request_count      AggregateFunction(sum, Float64),
    error_count        AggregateFunction(sum, Float64),
    duration_sum_ns    AggregateFunction(sum, Float64),
    sample_count       AggregateFunction(count),
    hist               AggregateFunction(sumMap, Array(UInt16), Array(Float64)),
    response_size_hist AggregateFunction(sumMap, Array(UInt16), Array(Float64)),
    request_size_hist  AggregateFunction(sumMap, Array(UInt16), Array(Float64))
)
ENGINE = {{engine "AggregatingMergeTree" "cohort_hist_1m"}}
PARTITION BY toYYYYMMDD(minute)
ORDER BY (service, environment, dimension, value, operation, minute)
{{ttl "minute"}};

CREATE MATERIALIZED VIEW IF NOT EXISTS {{name "cohort_hist_1m_mv"}}{{onCluster}}
TO {{local "cohort_hist_1m"}}
AS SELECT
    service,
    environment,
    dimension,
    value,
    operation,
    toStartOfMinute(time) AS minute,
    sumState(weight) AS request_count,
    sumState(is_error * weight) AS error_count,
    sumState(duration_ns * weight) AS duration_sum_ns,
    countState() AS sample_count,
    sumMapState([{{histBucket "duration_ns"}}], [weight]) AS hist,
    sumMapState(
        if(response_size >= 0, [{{sizeBucket "response_size"}}], emptyArrayUInt16()),
        if(response_size >= 0, [weight], emptyArrayFloat64())) AS response_size_hist,
    sumMapState(
        if(request_size >= 0, [{{sizeBucket "request_size"}}], emptyArrayUInt16()),
        if(request_size >= 0, [weight], emptyArrayFloat64())) AS request_size_hist
FROM {{local "latency_events"}}
ARRAY JOIN
    arrayConcat(['version'], CAST(cohort_keys AS Array(String))) AS dimension,
    arrayConcat([CAST(version AS String)], cohort_values) AS value
GROUP BY service, environment, dimension, value, operation, minute;
