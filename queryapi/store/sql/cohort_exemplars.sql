-- Exemplars of the two cohorts (versions) of one unit over [@from, @to):
-- the trace of the slowest request and of the latest failed one (a zero
-- trace ID when none failed). Reads latency_events, bounded by the unit (the
-- primary key's prefix) and the range.
SELECT
    CAST(version AS String) AS cohort,
    argMax(trace_id, duration_ns) AS slowest,
    argMaxIf(trace_id, start_time_ns, is_error = 1) AS failed
FROM {db}.latency_events
WHERE service = @service
  AND environment = @environment
  AND version IN (@control, @treatment)
{{- if .Operation}}
  AND operation = @operation
{{- end}}
  AND time >= toDateTime(@from)
  AND time < toDateTime(@to)
GROUP BY cohort
