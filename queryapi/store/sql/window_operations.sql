-- The first read of a before/after judgement: per window w and operation,
-- weighted requests and errors, the number of stored events and the latency
-- histogram merged over the window's minutes and every version (sumMap of
-- latency_hist_1m, schema v2). The windows are the external table
-- _cl_windows of windows.sql. ClickHouse merges; what travels is one
-- bounded histogram per window and operation.
SELECT
    w,
    op,
    sumMerge(request_count) AS requests,
    sumMerge(error_count) AS errors,
    toFloat64(countMerge(sample_count)) AS samples,
    sumMerge(duration_sum_ns) / 1e6 AS duration_ms,
    (sumMapMerge(hist) AS h).1 AS hist_keys,
    h.2 AS hist_weights
FROM
(
    SELECT
        toUInt64(indexOf(@units, concat(service, '\n', environment))) * 4294967296 + toUInt32(minute) AS k,
        CAST(operation AS String) AS op,
        request_count,
        error_count,
        sample_count,
        duration_sum_ns,
        hist
    FROM {db}.latency_hist_1m
    WHERE service IN @services AND environment IN @environments
      AND minute >= toDateTime(@from) AND minute < toDateTime(@to)
      AND k IN (SELECT k FROM _cl_windows)
) AS minutes
ALL INNER JOIN _cl_windows USING (k)
GROUP BY w, op
