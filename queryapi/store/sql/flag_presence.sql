-- Whether unit (@service, @environment) has stored feature-flag
-- evaluations (flag_evaluations, schema v12) over [@eval_from, @eval_to),
-- of flag @flag with .Flag: the cohort queries join the unit's latency
-- events with them only then, so units whose evaluations are all cohort
-- dimensions in-row (span events in the entry span's batch) pay nothing.
-- A column, not a constant, is selected: over a Distributed table 18.16
-- loses the WHERE's columns of a constant-only subquery.
SELECT count() AS n
FROM
(
    SELECT trace_id
    FROM {db}.flag_evaluations
    WHERE service = @service
      AND environment = @environment
{{- if .Flag}}
      AND flag_key = @flag
{{- end}}
      AND time >= toDateTime(@eval_from)
      AND time < toDateTime(@eval_to)
    LIMIT 1
)
{{- define "flag_variants"}}
{{- /* per trace, the first stored evaluation of flag @flag: its variant */}}
        SELECT
            trace_id,
            argMin(variant, (time_ns, span_id, variant)) AS flag_variant
        FROM {db}.flag_evaluations
        WHERE service = @service
          AND environment = @environment
          AND flag_key = @flag
          AND time >= toDateTime(@eval_from)
          AND time < toDateTime(@eval_to)
        GROUP BY trace_id
{{- end}}
{{- define "flag_variants_all"}}
{{- /* per trace and flag, the first stored evaluation: its variant */}}
        SELECT
            trace_id,
            CAST(flag_key AS String) AS flag,
            argMin(variant, (time_ns, span_id, variant)) AS flag_variant
        FROM {db}.flag_evaluations
        WHERE service = @service
          AND environment = @environment
          AND time >= toDateTime(@eval_from)
          AND time < toDateTime(@eval_to)
        GROUP BY trace_id, flag
{{- end}}
{{- define "flag_event_minutes"}}
{{- /* latency events of the minutes of [@from, @to), as cohort_hist_1m groups them */}}
      AND time >= toDateTime(@from)
      AND time < toDateTime(@to) + 60
      AND toStartOfMinute(time) >= toDateTime(@from)
      AND toStartOfMinute(time) < toDateTime(@to)
{{- end}}
