-- Exemplars of the two cohorts of one unit over [@from, @to): the trace of
-- the slowest request and of the latest failed one (a zero trace ID when
-- none failed). Reads latency_events, bounded by the unit (the primary
-- key's prefix) and the range. .Cohort: the cohorts are values of
-- @dimension (schema v6 columns), else versions. .Stored: an event without
-- the flag in-row takes the first stored evaluation of flag @flag in its
-- trace (schema v12), as cohort_minutes does. Ties (requests as slow, or
-- failed in the same nanosecond) go to the larger trace ID, so the answer
-- computed by the worker and stored equals one computed again.
SELECT
{{- if .Stored}}
    if(has(cohort_keys, @dimension), cohort_values[indexOf(cohort_keys, @dimension)], flag_variant) AS cohort,
{{- else if .Cohort}}
    cohort_values[indexOf(cohort_keys, @dimension)] AS cohort,
{{- else}}
    CAST(version AS String) AS cohort,
{{- end}}
    argMax(trace_id, (duration_ns, trace_id)) AS slowest,
    argMaxIf(trace_id, (start_time_ns, trace_id), is_error = 1) AS failed
FROM {db}.latency_events
{{- if .Stored}}
GLOBAL ANY LEFT JOIN
(
{{- template "flag_variants" .}}
) AS evaluations USING trace_id
{{- end}}
WHERE service = @service
  AND environment = @environment
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
  AND time >= toDateTime(@from)
  AND time < toDateTime(@to)
GROUP BY cohort
