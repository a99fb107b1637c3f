-- changelens schema v18: the versions each unit served, one row a day.
--
-- /v1/services lists every unit's versions with the first and last minute
-- that had requests. Read from latency_hist_1m that is every minute of the
-- retained history (half a second for a year of eight units, on every page
-- that lists services). This table keeps per (service, environment,
-- version, day) the first and last of those minutes: the same minutes, of
-- the same events (toStartOfMinute(time), as latency_hist_1m's view), a
-- few rows per unit and day. min and max are idempotent, so a replayed
-- batch or a second copy of a span changes nothing.
--
-- Partitioned by day and expired like latency_hist_1m (retention drops the
-- same days; the column is not named "day", which the retention sweep's
-- own alias would shadow); the view is created before the back-fill from
-- latency_hist_1m, so no row inserted meanwhile is missed. Where a TTL
-- expires rows (servers ≥ 20) a day's row goes at the day's start plus the
-- retention, latency_hist_1m's minutes of that day one by one after it:
-- for the oldest retained day the two may differ until the retention sweep
-- drops that day from both.

-- distributed: unit_versions_1d {{unitKey}}
CREATE TABLE IF NOT EXISTS {{local "unit_versions_1d"}}{{onCluster}}
(
    service       {{lcString}},
    environment   {{lcString}},
    version       {{lcString}},
    day_start     DateTime('UTC'),
    first_minute  AggregateFunction(min, DateTime('UTC')),
    last_minute   AggregateFunction(max, DateTime('UTC'))
)
ENGINE = {{engine "AggregatingMergeTree" "unit_versions_1d"}}
PARTITION BY toYYYYMMDD(day_start)
ORDER BY (service, environment, version, day_start)
{{ttl "day_start"}};

CREATE MATERIALIZED VIEW IF NOT EXISTS {{name "unit_versions_1d_mv"}}{{onCluster}}
TO {{local "unit_versions_1d"}}
AS SELECT
    service,
    environment,
    version,
    toStartOfDay(toStartOfMinute(time)) AS day_start,
    minState(toStartOfMinute(time)) AS first_minute,
    maxState(toStartOfMinute(time)) AS last_minute
FROM {{local "latency_events"}}
GROUP BY service, environment, version, day_start;

INSERT INTO {{name "unit_versions_1d"}} (service, environment, version, day_start, first_minute, last_minute)
SELECT
    service,
    environment,
    version,
    toStartOfDay(minute) AS day_start,
    minState(minute) AS first_minute,
    maxState(minute) AS last_minute
FROM {{name "latency_hist_1m"}}
GROUP BY service, environment, version, day_start
{{backfillSettings}};
