-- Before/after window statistics of many deployments in one query.
-- The external table _cl_windows(k, w) lists every rollup minute of every
-- window w, keyed k = unit number × 2^32 + minute (unix seconds); the unit
-- number is the 1-based position of "service\nenvironment" in @units. A
-- numeric key makes the IN filter and the join cheap. Per window: weighted
-- requests and errors, the quantiles of the merged t-digest of the whole
-- window, and the p95 of each of its minutes (the Mann-Whitney observations).
-- Every subquery that takes part in a join is named: ClickHouse >= 20 refuses
-- an unnamed one (ALIAS_REQUIRED).
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
        k,
        sumMerge(request_count) AS m_requests,
        sumMerge(error_count) AS m_errors,
        quantilesTDigestWeightedMerge(0.5, 0.9, 0.95, 0.99)(duration_digest) AS m_q,
        quantilesTDigestWeightedMergeState(0.5, 0.9, 0.95, 0.99)(duration_digest) AS m_state
    FROM
    (
        SELECT
            toUInt64(indexOf(@units, concat(service, '\n', environment))) * 4294967296 + toUInt32(minute) AS k,
            request_count,
            error_count,
            duration_digest
        FROM {db}.latency_rollup_1m
        WHERE service IN @services AND environment IN @environments
          AND minute >= toDateTime(@from) AND minute < toDateTime(@to)
          AND k IN (SELECT k FROM _cl_windows)
    ) AS minutes
    ALL INNER JOIN _cl_windows USING (k)
    GROUP BY w, k
) AS per_minute
GROUP BY w
