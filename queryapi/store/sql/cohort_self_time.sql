-- Self time (schema v14) of the two cohorts of one unit over [@from, @to):
-- per cohort the weighted requests whose self time the processor measured
-- (self_time_ns >= 0; -1 is "not measured") and the weighted sums of their
-- self time and its square, for the mean and its spread. The proxy of a
-- request's own CPU where the metrics cannot split it (flag cohorts of one
-- process, docs/cost.md). Cohorts as cohort_exemplars.sql reads them:
-- .Cohort values of @dimension in-row, .Stored also the first stored
-- evaluation of flag @flag in the trace, else versions.
SELECT
{{- if .Stored}}
    if(has(cohort_keys, @dimension), cohort_values[indexOf(cohort_keys, @dimension)], flag_variant) AS cohort,
{{- else if .Cohort}}
    cohort_values[indexOf(cohort_keys, @dimension)] AS cohort,
{{- else}}
    CAST(version AS String) AS cohort,
{{- end}}
    sum(weight) AS requests,
    sum(weight * toFloat64(self_time_ns)) AS self_ns,
    sum(weight * toFloat64(self_time_ns) * toFloat64(self_time_ns)) AS self_ns2
FROM {db}.latency_events
{{- if .Stored}}
GLOBAL ANY LEFT JOIN
(
{{- template "flag_variants" .}}
) AS evaluations USING trace_id
{{- end}}
WHERE service = @service
  AND environment = @environment
  AND self_time_ns >= 0
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
