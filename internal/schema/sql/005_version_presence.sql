-- changelens schema v5: which versions served each unit, five minutes at a
-- time.
--
-- Inferred deployments are derived when the data is read, from the union of
-- what every collector wrote, so they cannot depend on which collector saw
-- which span or in what order (see docs/deployments.md). This table is that
-- union: per (service, environment, version, five-minute bucket) the earliest
-- and latest start time of its entry spans. min and max are idempotent, so a
-- replayed batch or a second copy of a span changes nothing.
--
-- Why five minutes: readers detect gaps of reappear_after (at least five
-- minutes) between the last span of one bucket and the first span of the
-- next non-empty one; a gap inside a bucket is shorter than five minutes and
-- never counts, so the result is exact, with a fifth of the rows of a
-- per-minute table.
--
-- The view is created before the back-fill from latency_events, so no row
-- inserted meanwhile is missed (rows seen twice do not matter, see above).
-- The back-fill may span months of daily partitions (backfillSettings).

-- distributed: version_presence {{unitKey}}
CREATE TABLE IF NOT EXISTS {{local "version_presence"}}{{onCluster}}
(
    service      {{lcString}},
    environment  {{lcString}},
    version      {{lcString}},
    bucket       DateTime('UTC'),
    first_ns     AggregateFunction(min, UInt64),
    last_ns      AggregateFunction(max, UInt64)
)
ENGINE = {{engine "AggregatingMergeTree" "version_presence"}}
PARTITION BY toYYYYMMDD(bucket)
ORDER BY (service, environment, version, bucket)
{{ttl "bucket"}};

CREATE MATERIALIZED VIEW IF NOT EXISTS {{name "version_presence_mv"}}{{onCluster}}
TO {{local "version_presence"}}
AS SELECT
    service,
    environment,
    version,
    toStartOfFiveMinute(time) AS bucket,
    minState(start_time_ns) AS first_ns,
    maxState(start_time_ns) AS last_ns
FROM {{local "latency_events"}}
WHERE version != ''
GROUP BY service, environment, version, bucket;

INSERT INTO {{name "version_presence"}} (service, environment, version, bucket, first_ns, last_ns)
SELECT
    service,
    environment,
    version,
    toStartOfFiveMinute(time) AS bucket,
    minState(start_time_ns) AS first_ns,
    maxState(start_time_ns) AS last_ns
FROM {{name "latency_events"}}
WHERE version != ''
GROUP BY service, environment, version, bucket
{{backfillSettings}};
