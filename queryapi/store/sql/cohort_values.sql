-- The versions one unit served over [@from, @to) with their weighted
-- requests, busiest first (the values of the cohort dimension "version").
SELECT
    CAST(version AS String) AS value,
    sumMerge(request_count) AS requests
FROM {db}.latency_hist_1m
WHERE service = @service
  AND environment = @environment
  AND minute >= toDateTime(@from)
  AND minute < toDateTime(@to)
GROUP BY value
ORDER BY requests DESC, value
LIMIT @limit
