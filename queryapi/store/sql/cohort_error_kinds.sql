-- The error kinds of the two cohorts of one unit, minute by minute over
-- [@from, @to): per minute, cohort and kind the weighted failed requests,
-- the first occurrence (unix ns) and its trace. .Rollup (versions, no
-- operation) reads error_kinds_1m (schema v13); otherwise the failed rows
-- of latency_events, the cohort as cohort_exemplars.sql reads it: .Cohort,
-- the value of @dimension in-row; .Stored, else the first stored
-- evaluation of flag @flag in the trace (schema v12); else the version.
SELECT
{{- if .Rollup}}
    toUInt32(minute) AS m,
    CAST(version AS String) AS cohort,
    CAST(error_kind AS String) AS kind,
    sumMerge(error_count) AS occurrences,
    minMerge(first_time_ns) AS first_ns,
    lower(hex(argMinMerge(first_trace_id))) AS first_trace
FROM {db}.error_kinds_1m
WHERE service = @service
  AND environment = @environment
  AND version IN (@control, @treatment)
  AND minute >= toDateTime(@from)
  AND minute < toDateTime(@to)
{{- else}}
    toUInt32(toStartOfMinute(time)) AS m,
{{- if .Stored}}
    if(has(cohort_keys, @dimension), cohort_values[indexOf(cohort_keys, @dimension)], flag_variant) AS cohort,
{{- else if .Cohort}}
    cohort_values[indexOf(cohort_keys, @dimension)] AS cohort,
{{- else}}
    CAST(version AS String) AS cohort,
{{- end}}
    CAST(error_kind AS String) AS kind,
    sum(weight) AS occurrences,
    min(start_time_ns) AS first_ns,
    lower(hex(argMin(trace_id, start_time_ns))) AS first_trace
FROM {db}.latency_events
{{- if .Stored}}
GLOBAL ANY LEFT JOIN
(
{{- template "flag_variants" .}}
) AS evaluations USING trace_id
{{- end}}
WHERE service = @service
  AND environment = @environment
  AND is_error = 1
  AND error_kind != ''
{{- if .Stored}}
  AND (has(cohort_keys, @dimension) OR flag_variant != '')
  AND cohort IN (@control, @treatment)
{{- else if .Cohort}}
  AND has(cohort_keys, @dimension)
  AND cohort IN (@control, @treatment)
{{- else}}
  AND version IN (@control, @treatment)
{{- end}}
{{- if .Operation}}
  AND operation = @operation
{{- end}}
{{- template "flag_event_minutes"}}
{{- end}}
GROUP BY m, cohort, kind
ORDER BY m, cohort, kind
LIMIT @limit
