-- The fingerprint of many deployments' before/after windows in one query:
-- per window, weighted requests and errors, the number of stored events and
-- the weighted sum of their durations (changelens-worker judges a settled
-- deployment again only when they changed). No histogram is merged: this read is cheap.
-- The external table _cl_windows(k, w, o) lists every rollup minute of every
-- window w (o: the minute's offset in it), keyed k = unit number × 2^32 +
-- minute (unix seconds); the unit number is the 1-based position of
-- "service\nenvironment" in @units. A numeric key makes the IN filter and the
-- join cheap. Every subquery that takes part in a join is named: ClickHouse
-- >= 20 refuses an unnamed one (ALIAS_REQUIRED).
SELECT
    w,
    sumMerge(request_count) AS requests,
    sumMerge(error_count) AS errors,
    toFloat64(countMerge(sample_count)) AS samples,
    sumMerge(duration_sum_ns) / 1e6 AS duration_ms
FROM
(
    SELECT
        toUInt64(indexOf(@units, concat(service, '\n', environment))) * 4294967296 + toUInt32(minute) AS k,
        request_count,
        error_count,
        sample_count,
        duration_sum_ns
    FROM {db}.latency_hist_1m
    WHERE service IN @services AND environment IN @environments
      AND minute >= toDateTime(@from) AND minute < toDateTime(@to)
      AND k IN (SELECT k FROM _cl_windows)
) AS minutes
ALL INNER JOIN _cl_windows USING (k)
GROUP BY w
