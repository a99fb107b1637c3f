-- changelens schema v5: which versions served each unit, minute by minute.
--
-- Inferred deployments are derived when the data is read, from the union of
-- what every collector wrote, so they cannot depend on which collector saw
-- which span or in what order (see docs/deployments.md). This table is that
-- union at minute precision: per (service, environment, version, minute) the
-- earliest and latest start time of its entry spans. min and max are
-- idempotent, so a replayed batch or a second copy of a span changes nothing.
--
-- The view is created before the backfill from latency_events, so no row
-- inserted meanwhile is missed (rows seen twice do not matter, see above).

-- distributed: version_minutes cityHash64(service, environment)
CREATE TABLE IF NOT EXISTS {{local "version_minutes"}}{{onCluster}}
(
    service      {{lcString}},
    environment  {{lcString}},
    version      {{lcString}},
    minute       DateTime('UTC'),
    first_ns     AggregateFunction(min, UInt64),
    last_ns      AggregateFunction(max, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMMDD(minute)
ORDER BY (service, environment, version, minute)
{{ttl "minute"}};

CREATE MATERIALIZED VIEW IF NOT EXISTS {{name "version_minutes_mv"}}{{onCluster}}
TO {{local "version_minutes"}}
AS SELECT
    service,
    environment,
    version,
    toStartOfMinute(time) AS minute,
    minState(start_time_ns) AS first_ns,
    maxState(start_time_ns) AS last_ns
FROM {{local "latency_events"}}
WHERE version != ''
GROUP BY service, environment, version, minute;

INSERT INTO {{name "version_minutes"}} (service, environment, version, minute, first_ns, last_ns)
SELECT
    service,
    environment,
    version,
    toStartOfMinute(time) AS minute,
    minState(start_time_ns) AS first_ns,
    maxState(start_time_ns) AS last_ns
FROM {{name "latency_events"}}
WHERE version != ''
GROUP BY service, environment, version, minute;
