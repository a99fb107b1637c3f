-- Per variant of dimension @dimension of unit (@service, @environment) over
-- [@from, @to): the units (.Key: sessions or users) of its client events,
-- each under the variant of its first event in the range, those of them
-- seen in more than one variant (mixed), and those that reached outcome
-- @outcome (an outcome_events row of @outcome_service, the unit's own
-- service unless the caller names another, in the range).
SELECT
    variant,
    count() AS units,
    sum(reached) AS converted,
    sum(mixed) AS mixed_units,
    sum(mixed * reached) AS mixed_converted
FROM
(
    SELECT
        unit_key,
        argMin(event_variant, start_time_ns) AS variant,
        toUInt8(uniqExact(event_variant) > 1) AS mixed
    FROM
    (
{{- template "client_event_rows" .}}
    )
    WHERE event_variant != ''
    GROUP BY unit_key
) AS units
GLOBAL ANY LEFT JOIN
(
    SELECT
        {{.Key}} AS unit_key,
        toUInt8(1) AS reached
    FROM {db}.outcome_events
    WHERE service = @outcome_service
      AND environment = @environment
      AND name = @outcome
      AND time >= toDateTime(@from)
      AND time < toDateTime(@to)
      AND {{.Key}} != ''
    GROUP BY unit_key
) AS outcomes USING unit_key
GROUP BY variant
ORDER BY variant
LIMIT @limit
