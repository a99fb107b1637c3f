-- changelens schema v3: the t-digest weight of latency_rollup_1m is the
-- sampling weight rounded half up, the same on every server.
--
-- v1 used round(weight), which rounds half to even on current servers
-- (round(2.5) = 2) but half up on 18.16 (round(2.5) = 3): the same events gave
-- different percentiles. floor(weight + 0.5) rounds half up everywhere.
--
-- A materialized view's query cannot be changed on 18.16 (no MODIFY QUERY), so
-- the view is dropped and created again; rows inserted between the two
-- statements (milliseconds, at upgrade) miss the t-digest rollup but not the
-- histograms, which the latency series read. Both statements are idempotent.

DROP TABLE IF EXISTS {{name "latency_rollup_1m_mv"}}{{onCluster}};

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
    quantilesTDigestWeightedState(0.5, 0.9, 0.95, 0.99)(duration_ns, toUInt64(greatest(floor(weight + 0.5), 1))) AS duration_digest
FROM {{local "latency_events"}}
GROUP BY service, environment, version, operation, minute;
