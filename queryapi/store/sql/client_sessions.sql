-- Per variant of dimension @dimension (and hour with .Hourly) of unit
-- (@service, @environment) over [@from, @to): the sessions of its client
-- events (uniqExact session_id), those crashed — a crashed event (schema
-- v15 crashed) or a crash outcome (outcome_events name 'crash') of the
-- session in the range — and the weighted requests. A session seen in two
-- variants counts in both.
SELECT
    variant,
{{- if .Hourly}}
    hour,
{{- end}}
    count() AS sessions,
    sum(session_crashed) AS crashed_sessions,
    sum(session_requests) AS requests
FROM
(
    SELECT
        event_variant AS variant,
{{- if .Hourly}}
        toStartOfHour(time) AS hour,
{{- end}}
        unit_key,
        max(crashed = 1 OR unit_key GLOBAL IN
        (
            SELECT session_id
            FROM {db}.outcome_events
            WHERE service = @service
              AND environment = @environment
              AND name = 'crash'
              AND time >= toDateTime(@from)
              AND time < toDateTime(@to)
              AND session_id != ''
        )) AS session_crashed,
        sum(weight) AS session_requests
    FROM
    (
{{- template "client_event_rows" .}}
    )
    WHERE event_variant != ''
    GROUP BY variant, {{if .Hourly}}hour, {{end}}unit_key
)
GROUP BY variant{{if .Hourly}}, hour{{end}}
ORDER BY variant{{if .Hourly}}, hour{{end}}
LIMIT @limit
-- client_event_rows: the client events of unit (@service, @environment) over [@from, @to)
-- with their variant of dimension @dimension, for the client reads
-- (client.go): latency events of client units (schema v15) that carry the
-- key .Key (session_id or user_id). The variant is the version with
-- .Version; else the dimension's in-row value, and with .Flag (a feature
-- flag) that of the first stored evaluation of the flag in the event's
-- trace when the event carries none in-row (flags.go). Events without a
-- variant are '' (readers drop them).
{{- define "client_event_rows"}}
        SELECT
            {{.Key}} AS unit_key,
            operation,
            time,
            start_time_ns,
            duration_ns,
            weight,
            crashed,
{{- if .Version}}
            CAST(version AS String) AS event_variant
{{- else if .Flag}}
            if(has(cohort_keys, @dimension), cohort_values[indexOf(cohort_keys, @dimension)], flag_variant) AS event_variant
{{- else}}
            cohort_values[indexOf(cohort_keys, @dimension)] AS event_variant
{{- end}}
        FROM {db}.latency_events
{{- if .Flag}}
        GLOBAL ANY LEFT JOIN
        (
{{- template "flag_variants" .}}
        ) AS evaluations USING trace_id
{{- end}}
        WHERE service = @service
          AND environment = @environment
          AND time >= toDateTime(@from)
          AND time < toDateTime(@to)
          AND {{.Key}} != ''
{{- end}}
