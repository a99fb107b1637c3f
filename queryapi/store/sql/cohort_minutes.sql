-- The two cohorts (versions) of one unit, minute by minute: weighted
-- requests, errors, the duration sum (for the mean) and the merged latency
-- histogram, from latency_hist_1m. Minutes where only one cohort served are
-- returned too; the caller keeps the minutes both served. .ByOperation
-- splits every minute by operation (ordered by operation first).
SELECT
    toUInt32(minute) AS m,
    CAST(version AS String) AS cohort,
{{- if .ByOperation}}
    CAST(operation AS String) AS op,
{{- else}}
    '' AS op,
{{- end}}
    sumMerge(request_count) AS requests,
    sumMerge(error_count) AS errors,
    sumMerge(duration_sum_ns) AS duration_sum,
    (sumMapMerge(hist) AS h).1 AS hist_keys,
    h.2 AS hist_weights
FROM {db}.latency_hist_1m
WHERE service = @service
  AND environment = @environment
  AND version IN (@control, @treatment)
{{- if .Operation}}
  AND operation = @operation
{{- end}}
  AND minute >= toDateTime(@from)
  AND minute < toDateTime(@to)
GROUP BY m, cohort, op
ORDER BY op, m, cohort
LIMIT @limit
