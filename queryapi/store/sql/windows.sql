-- Before/after window statistics of many deployments in one query.
-- The external table _cl_windows(service, environment, m, w) lists every
-- rollup minute m (unix seconds) of every window w. Per window: weighted
-- requests and errors, the quantiles of the merged t-digest of the whole
-- window, and the p95 of each of its minutes (the Mann-Whitney observations).
SELECT
    w,
    sum(m_requests) AS requests,
    sum(m_errors) AS errors,
    arrayMap(x -> toFloat64(x), quantilesTDigestWeightedMerge(0.5, 0.9, 0.95, 0.99)(m_state)) AS q,
    groupArray(toFloat64(m_q[3])) AS minute_p95
FROM
(
    SELECT
        w,
        m,
        sumMerge(request_count) AS m_requests,
        sumMerge(error_count) AS m_errors,
        quantilesTDigestWeightedMerge(0.5, 0.9, 0.95, 0.99)(duration_digest) AS m_q,
        quantilesTDigestWeightedMergeState(0.5, 0.9, 0.95, 0.99)(duration_digest) AS m_state
    FROM
    (
        SELECT service, environment, toUInt32(minute) AS m, request_count, error_count, duration_digest
        FROM {db}.latency_rollup_1m
        WHERE service IN (SELECT service FROM _cl_windows)
          AND environment IN (SELECT environment FROM _cl_windows)
          AND minute >= toDateTime(@from) AND minute < toDateTime(@to)
          AND (service, environment, toUInt32(minute)) IN (SELECT service, environment, m FROM _cl_windows)
    )
    ALL INNER JOIN _cl_windows USING (service, environment, m)
    GROUP BY w, m
)
GROUP BY w
