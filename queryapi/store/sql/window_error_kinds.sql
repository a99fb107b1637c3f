-- The error kinds of deployments' windows: per window w, minute offset o
-- and error kind, the weighted failed requests of the kind (every version,
-- as the windows' requests are), its first occurrence in the minute
-- (unix ns) and that occurrence's trace, from error_kinds_1m (schema v13).
-- The windows are the external table _cl_windows of windows.sql; each
-- (unit, minute, kind) is one row of the inner query, joined with every
-- window holding the minute. What travels is a row per minute and kind the
-- unit failed with: a few per minute.
SELECT
    w,
    o,
    kind,
    occurrences,
    first_ns,
    first_trace
FROM
(
    SELECT
        toUInt64(indexOf(@units, concat(service, '\n', environment))) * 4294967296 + toUInt32(minute) AS k,
        CAST(error_kind AS String) AS kind,
        sumMerge(error_count) AS occurrences,
        minMerge(first_time_ns) AS first_ns,
        lower(hex(argMinMerge(first_trace_id))) AS first_trace
    FROM {db}.error_kinds_1m
    WHERE service IN @services AND environment IN @environments
      AND minute >= toDateTime(@from) AND minute < toDateTime(@to)
      AND k IN (SELECT k FROM _cl_windows)
    GROUP BY k, kind
) AS kinds
ALL INNER JOIN _cl_windows USING (k)
