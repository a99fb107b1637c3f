-- The second read of a before/after judgement: per window w, minute offset o
-- and operation, weighted requests and errors and the weight of requests
-- slower than the operation's thresholds (histogram buckets above t1, t2:
-- the pooled p95 and p99 buckets of its stratum the first read gave) and
-- the unit's (t3, t4): external table _cl_slow(j, op, t1, t2, t3, t4), j the
-- deployment's position: w = 2j or 2j + 1.
-- The windows are the external table _cl_windows of windows.sql. ClickHouse
-- merges each minute's histograms and sums the slow buckets; what travels
-- is seven numbers per minute and operation. One join per SELECT level
-- (18.16), each joined subquery named; the thresholds enter the lambdas as
-- arrays of their own (arrayResize), never captured: 18.16 does not see a
-- column of a joined subquery inside a lambda.
SELECT
    w,
    o,
    op,
    requests,
    errors,
    arraySum(arrayFilter((v, b, t) -> b > t, tupleElement(h, 2), tupleElement(h, 1), arrayResize([t1], length(tupleElement(h, 1)), t1))) AS slow1,
    arraySum(arrayFilter((v, b, t) -> b > t, tupleElement(h, 2), tupleElement(h, 1), arrayResize([t2], length(tupleElement(h, 1)), t2))) AS slow2,
    arraySum(arrayFilter((v, b, t) -> b > t, tupleElement(h, 2), tupleElement(h, 1), arrayResize([t3], length(tupleElement(h, 1)), t3))) AS slow3,
    arraySum(arrayFilter((v, b, t) -> b > t, tupleElement(h, 2), tupleElement(h, 1), arrayResize([t4], length(tupleElement(h, 1)), t4))) AS slow4
FROM
(
    SELECT w, o, op, requests, errors, h, t1, t2, t3, t4
    FROM
    (
        SELECT
            w,
            o,
            toUInt32(intDiv(w, 2)) AS j,
            op,
            sumMerge(request_count) AS requests,
            sumMerge(error_count) AS errors,
            sumMapMerge(hist) AS h
        FROM
        (
            SELECT
                toUInt64(indexOf(@units, concat(service, '\n', environment))) * 4294967296 + toUInt32(minute) AS k,
                CAST(operation AS String) AS op,
                request_count,
                error_count,
                hist
            FROM {db}.latency_hist_1m
            WHERE service IN @services AND environment IN @environments
              AND minute >= toDateTime(@from) AND minute < toDateTime(@to)
              AND k IN (SELECT k FROM _cl_windows)
        ) AS minutes
        ALL INNER JOIN _cl_windows USING (k)
        GROUP BY w, o, op
    ) AS per_minute
    ALL INNER JOIN _cl_slow USING (j, op)
) AS joined
