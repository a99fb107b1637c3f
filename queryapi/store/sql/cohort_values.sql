-- The cohort dimensions of one unit over [@from, @to) and the values seen
-- with their weighted requests, busiest first (at most @limit per
-- dimension): "version" from latency_hist_1m (complete since schema v2), the
-- processor's dimensions from cohort_hist_1m (schema v6).
SELECT dimension, value, requests
FROM
(
    SELECT
        'version' AS dimension,
        CAST(version AS String) AS value,
        sumMerge(request_count) AS requests
    FROM {db}.latency_hist_1m
    WHERE service = @service
      AND environment = @environment
      AND minute >= toDateTime(@from)
      AND minute < toDateTime(@to)
    GROUP BY value
    UNION ALL
    SELECT
        CAST(dimension AS String) AS dimension,
        value,
        sumMerge(request_count) AS requests
    FROM {db}.cohort_hist_1m
    WHERE service = @service
      AND environment = @environment
      AND dimension != 'version'
      AND minute >= toDateTime(@from)
      AND minute < toDateTime(@to)
    GROUP BY dimension, value
)
ORDER BY dimension = 'version' DESC, dimension, requests DESC, value
LIMIT @limit BY dimension
