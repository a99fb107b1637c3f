-- The error-kind history of deployments: for each deployment j of the
-- external table _cl_history(j, u, v, f, t) — its unit's number u in
-- @units, its version v and the lookback [f, t) before its before window
-- (unix seconds) — each kind's weighted occurrences over the lookback under
-- every version but v (error_kinds_1m, schema v13), and, with kind '', the
-- unit's weighted requests of every version but v over the lookback
-- (error kinds are never ''): its whole hours from latency_hist_1h, the
-- minutes at its edges from latency_hist_1m — the external table
-- _cl_history_edges(k, j, v) lists them, keyed as windows.sql keys minutes.
-- The lookbacks of one unit's deployments overlap: each row joins each of
-- them. Names differ from the columns they are made of (18.16).
SELECT j, kind, sum(n) AS occurrences
FROM
(
    SELECT j, kind, n, m, f, t, ver, v
    FROM
    (
        SELECT
            toUInt64(indexOf(@units, concat(service, '\n', environment))) AS u,
            CAST(version AS String) AS ver,
            CAST(error_kind AS String) AS kind,
            toUInt32(minute) AS m,
            sumMerge(error_count) AS n
        FROM {db}.error_kinds_1m
        WHERE service IN @services AND environment IN @environments
          AND minute >= toDateTime(@from) AND minute < toDateTime(@to)
        GROUP BY u, ver, kind, m
    ) AS kinds
    ALL INNER JOIN _cl_history USING (u)
) AS joined
WHERE m >= f AND m < t AND ver != v
GROUP BY j, kind
UNION ALL
SELECT j, '' AS kind, sum(n) AS occurrences
FROM
(
    SELECT j, n, m, f, t, ver, v
    FROM
    (
        SELECT
            toUInt64(indexOf(@units, concat(service, '\n', environment))) AS u,
            CAST(version AS String) AS ver,
            toUInt32(hour) AS m,
            sumMerge(request_count) AS n
        FROM {db}.latency_hist_1h
        WHERE service IN @services AND environment IN @environments
          AND hour >= toDateTime(@from) AND hour < toDateTime(@to)
        GROUP BY u, ver, m
    ) AS hours
    ALL INNER JOIN _cl_history USING (u)
) AS joined
WHERE m >= f AND m + 3600 <= t AND ver != v
GROUP BY j
UNION ALL
SELECT j, '' AS kind, sum(n) AS occurrences
FROM
(
    SELECT j, n, ver, v
    FROM
    (
        SELECT
            toUInt64(indexOf(@units, concat(service, '\n', environment))) * 4294967296 + toUInt32(minute) AS k,
            CAST(version AS String) AS ver,
            sumMerge(request_count) AS n
        FROM {db}.latency_hist_1m
        WHERE service IN @services AND environment IN @environments
          AND minute >= toDateTime(@from) AND minute < toDateTime(@to)
          AND k IN (SELECT k FROM _cl_history_edges)
        GROUP BY k, ver
    ) AS edges
    ALL INNER JOIN _cl_history_edges USING (k)
) AS joined
WHERE ver != v
GROUP BY j
