-- The two cohorts of one unit, minute by minute: weighted requests, errors,
-- the duration sum (for the mean), the merged latency histogram and, from
-- cohort_hist_1m, the body-size histograms. Minutes where only one cohort
-- served are returned too; the caller keeps the minutes both served.
-- .ByOperation splits every minute by operation (ordered by operation
-- first).
--
-- .Cohort reads cohort_hist_1m (schema v6) for @dimension; otherwise the
-- cohorts are versions read from latency_hist_1m, which holds them since
-- schema v2 (the caller reads the version dimension's sizes with .Cohort
-- and @dimension = 'version').
SELECT
    toUInt32(minute) AS m,
{{- if .Cohort}}
    value AS cohort,
{{- else}}
    CAST(version AS String) AS cohort,
{{- end}}
{{- if .ByOperation}}
    CAST(operation AS String) AS op,
{{- else}}
    materialize('') AS op,
{{- end}}
    sumMerge(request_count) AS requests,
    sumMerge(error_count) AS errors,
    sumMerge(duration_sum_ns) AS duration_sum,
    (sumMapMerge(hist) AS h).1 AS hist_keys,
    h.2 AS hist_weights,
{{- if .Cohort}}
    (sumMapMerge(response_size_hist) AS rs).1 AS response_keys,
    rs.2 AS response_weights,
    (sumMapMerge(request_size_hist) AS qs).1 AS request_keys,
    qs.2 AS request_weights
FROM {db}.cohort_hist_1m
WHERE service = @service
  AND environment = @environment
  AND dimension = @dimension
  AND value IN (@control, @treatment)
{{- else}}
    emptyArrayUInt16() AS response_keys,
    emptyArrayFloat64() AS response_weights,
    emptyArrayUInt16() AS request_keys,
    emptyArrayFloat64() AS request_weights
FROM {db}.latency_hist_1m
WHERE service = @service
  AND environment = @environment
  AND version IN (@control, @treatment)
{{- end}}
{{- if .Operation}}
  AND operation = @operation
{{- end}}
  AND minute >= toDateTime(@from)
  AND minute < toDateTime(@to)
GROUP BY m, cohort, op
ORDER BY op, m, cohort
LIMIT @limit
