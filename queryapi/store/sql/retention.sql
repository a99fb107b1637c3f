-- Per variant of dimension @dimension of unit (@service, @environment): the
-- users of its client events over [@from, @to), each under the variant of
-- its first event there; those whose first event is at least @days days
-- before @until (eligible: a return could have been seen), and those of
-- them seen again — any client event of the unit in [first + @days days,
-- @until).
SELECT
    variant,
    count() AS users,
    sum(eligible) AS eligible_users,
    sum(eligible * toUInt8(last_ns >= first_ns + @days_ns)) AS retained
FROM
(
    SELECT
        unit_key,
        argMin(event_variant, start_time_ns) AS variant,
        min(start_time_ns) AS first_ns,
        toUInt8(min(start_time_ns) + @days_ns <= @until_ns) AS eligible
    FROM
    (
{{- template "client_event_rows" .}}
    )
    WHERE event_variant != ''
    GROUP BY unit_key
) AS users
GLOBAL ANY LEFT JOIN
(
    SELECT
        user_id AS unit_key,
        max(start_time_ns) AS last_ns
    FROM {db}.latency_events
    WHERE service = @service
      AND environment = @environment
      AND time >= toDateTime(@from)
      AND time < toDateTime(@until)
      AND user_id != ''
    GROUP BY unit_key
) AS later USING unit_key
GROUP BY variant
ORDER BY variant
LIMIT @limit
