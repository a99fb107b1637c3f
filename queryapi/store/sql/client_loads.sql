-- Per variant of dimension @dimension, operation of @operations and hour of
-- unit (@service, @environment) over [@from, @to): the weighted requests
-- and latency histogram (internal/schema's buckets) of the client events
-- (the page or screen loads the caller names), for percentiles per
-- variant and per hour.
SELECT
    event_variant AS variant,
    operation,
    toStartOfHour(time) AS hour,
    sum(weight) AS requests,
    (sumMap([{{histBucket "duration_ns"}}], [weight]) AS h).1 AS hist_keys,
    h.2 AS hist_weights
FROM
(
{{- template "client_event_rows" .}}
)
WHERE event_variant != ''
  AND has(@operations, CAST(operation AS String))
GROUP BY variant, operation, hour
ORDER BY variant, operation, hour
LIMIT @limit
