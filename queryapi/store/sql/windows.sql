-- Before/after window statistics of many deployments in one query, from the
-- per-minute histograms. The external table _cl_windows(k, w) lists every
-- minute of every window w, keyed k = unit number × 2^32 + minute (unix
-- seconds); the unit number is the 1-based position of
-- "service\nenvironment" in @units. A numeric key makes the IN filter and the
-- join cheap. Per window: weighted requests and errors, the window's merged
-- histogram (bucket indexes ascending, weights; percentiles in Go), and the
-- p95 bucket of each of its minutes (the Mann-Whitney observations): the
-- first bucket whose cumulative weight reaches 0.95 of the minute's weight
-- (to a relative 1e-9, as stats.HistQuantiles).
SELECT
    w,
    sum(m_requests) AS requests,
    sum(m_errors) AS errors,
    (sumMap(m_keys, m_weights) AS h).1 AS hist_keys,
    h.2 AS hist_weights,
    groupArray(m_p95) AS minute_p95
FROM
(
    SELECT
        w,
        k,
        sumMerge(request_count) AS m_requests,
        sumMerge(error_count) AS m_errors,
        (sumMapMerge(hist) AS mh).1 AS m_keys,
        mh.2 AS m_weights,
        m_keys[arrayFirstIndex(c -> c >= (0.95 - 1e-9) * arraySum(m_weights), arrayCumSum(m_weights))] AS m_p95
    FROM
    (
        SELECT
            toUInt64(indexOf(@units, concat(service, '\n', environment))) * 4294967296 + toUInt32(minute) AS k,
            request_count,
            error_count,
            hist
        FROM {db}.latency_hist_1m
        WHERE service IN @services AND environment IN @environments
          AND minute >= toDateTime(@from) AND minute < toDateTime(@to)
          AND k IN (SELECT k FROM _cl_windows)
    )
    ALL INNER JOIN _cl_windows USING (k)
    GROUP BY w, k
)
GROUP BY w
