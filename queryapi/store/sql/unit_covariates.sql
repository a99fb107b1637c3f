-- For CUPED: per user of the client events of unit (@service,
-- @environment) over [@from, @to), its variant of dimension @dimension (that
-- of its first event there), its value in the range and in the pre-period
-- [@pre_from, @from): with .Load the weighted sum of the durations (ms) of
-- operations @operations and their weight; else the distinct outcome events
-- @outcome of @outcome_service (count, weight 1 each). At most @limit
-- users, a deterministic sample: the lowest cityHash64 of the user id.
-- 18.16 has one JOIN per SELECT, so the in-range outcomes are joined inside.
SELECT
    unit_key,
    variant,
    value_sum,
    value_n,
    pre_sum,
    pre_n
FROM
(
    SELECT
        unit_key,
        variant,
{{- if .Load}}
        value_sum,
        value_n
{{- else}}
        cur_sum AS value_sum,
        toFloat64(1) AS value_n
{{- end}}
    FROM
    (
        SELECT
            unit_key,
            argMin(event_variant, start_time_ns) AS variant,
            sumIf(duration_ns * weight, has(@operations, CAST(operation AS String))) / 1e6 AS value_sum,
            sumIf(weight, has(@operations, CAST(operation AS String))) AS value_n
        FROM
        (
{{- template "client_event_rows" .}}
        )
        WHERE event_variant != ''
        GROUP BY unit_key
    ) AS units
{{- if not .Load}}
    GLOBAL ANY LEFT JOIN
    (
        SELECT
            user_id AS unit_key,
            toFloat64(uniqExact(time_ns, trace_id, span_id)) AS cur_sum
        FROM {db}.outcome_events
        WHERE service = @outcome_service
          AND environment = @environment
          AND name = @outcome
          AND time >= toDateTime(@from)
          AND time < toDateTime(@to)
          AND user_id != ''
        GROUP BY unit_key
    ) AS cur USING unit_key
{{- end}}
) AS in_range
GLOBAL ANY LEFT JOIN
(
{{- if .Load}}
    SELECT
        user_id AS unit_key,
        sum(duration_ns * weight) / 1e6 AS pre_sum,
        sum(weight) AS pre_n
    FROM {db}.latency_events
    WHERE service = @service
      AND environment = @environment
      AND time >= toDateTime(@pre_from)
      AND time < toDateTime(@from)
      AND user_id != ''
      AND has(@operations, CAST(operation AS String))
    GROUP BY unit_key
{{- else}}
    SELECT
        user_id AS unit_key,
        toFloat64(uniqExact(time_ns, trace_id, span_id)) AS pre_sum,
        toFloat64(1) AS pre_n
    FROM {db}.outcome_events
    WHERE service = @outcome_service
      AND environment = @environment
      AND name = @outcome
      AND time >= toDateTime(@pre_from)
      AND time < toDateTime(@from)
      AND user_id != ''
    GROUP BY unit_key
{{- end}}
) AS pre USING unit_key
ORDER BY cityHash64(unit_key), unit_key
LIMIT @limit
