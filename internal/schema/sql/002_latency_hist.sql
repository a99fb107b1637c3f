-- changelens schema v2: bounded log-bucket latency histograms, per minute and
-- per hour, each fed from latency_events by its own materialized view.
--
-- Why: the t-digest state of latency_rollup_1m keeps about one centroid per
-- value until ~2048 centroids, so below ~2000 requests a minute per series it
-- grows linearly with traffic and the rollup is no cheaper than the raw table.
-- A histogram over fixed logarithmic buckets is bounded whatever the traffic.
--
-- Buckets (histogram.go; gamma = 1.04, relative accuracy ±2 %): a duration d (ns) falls in
--   i = floor(log(max(d, 1000) / 1000) / log(1.04))
-- i.e. bucket i holds [1 µs · 1.04^i, 1 µs · 1.04^(i+1)); durations below
-- 1 µs count in bucket 0. Readers use the geometric middle
-- 1000 ns · 1.04^(i + 0.5) as the bucket's value, within 1.98 % of every
-- duration in it. 1 µs … 1 h spans buckets 0 … 561; the largest UInt64
-- duration is bucket 954, so a state never has more than 955 entries (a real
-- service fills a few dozen to 200). hist maps bucket index → Σ weight (exact Float64
-- sampling weights; sumMap sums them per key).
--
-- The hourly table is fed by its own view from latency_events, not from the
-- minute table: each view aggregates the inserted block of raw events, and
-- neither table depends on the other.
--
-- Idempotent (IF NOT EXISTS). Views see only rows inserted after they exist:
-- data written before this version is not backfilled (see README).

-- distributed: latency_hist_1m {{unitKey}}
CREATE TABLE IF NOT EXISTS {{local "latency_hist_1m"}}{{onCluster}}
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
    hist             AggregateFunction(sumMap, Array(UInt16), Array(Float64))
)
ENGINE = {{engine "AggregatingMergeTree" "latency_hist_1m"}}
PARTITION BY toYYYYMMDD(minute)
ORDER BY (service, environment, version, operation, minute)
{{ttl "minute"}};

CREATE MATERIALIZED VIEW IF NOT EXISTS {{name "latency_hist_1m_mv"}}{{onCluster}}
TO {{local "latency_hist_1m"}}
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
    sumMapState([{{histBucket "duration_ns"}}], [weight]) AS hist
FROM {{local "latency_events"}}
GROUP BY service, environment, version, operation, minute;

-- distributed: latency_hist_1h {{unitKey}}
CREATE TABLE IF NOT EXISTS {{local "latency_hist_1h"}}{{onCluster}}
(
    service          {{lcString}},
    environment      {{lcString}},
    version          {{lcString}},
    operation        {{lcString}},
    hour             DateTime('UTC'),
    request_count    AggregateFunction(sum, Float64),
    error_count      AggregateFunction(sum, Float64),
    duration_sum_ns  AggregateFunction(sum, Float64),
    sample_count     AggregateFunction(count),
    hist             AggregateFunction(sumMap, Array(UInt16), Array(Float64))
)
ENGINE = {{engine "AggregatingMergeTree" "latency_hist_1h"}}
PARTITION BY toYYYYMMDD(hour)
ORDER BY (service, environment, version, operation, hour)
{{ttl "hour"}};

CREATE MATERIALIZED VIEW IF NOT EXISTS {{name "latency_hist_1h_mv"}}{{onCluster}}
TO {{local "latency_hist_1h"}}
AS SELECT
    service,
    environment,
    version,
    operation,
    toStartOfHour(time) AS hour,
    sumState(weight) AS request_count,
    sumState(is_error * weight) AS error_count,
    sumState(duration_ns * weight) AS duration_sum_ns,
    countState() AS sample_count,
    sumMapState([{{histBucket "duration_ns"}}], [weight]) AS hist
FROM {{local "latency_events"}}
GROUP BY service, environment, version, operation, hour;
