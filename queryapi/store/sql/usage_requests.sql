-- A unit's requests per version and bucket of @step seconds (aligned to the
-- Unix epoch) over the minutes [@from, @to) of latency_hist_1m: weighted by
-- the sampling weights, as every request count is; the denominator of the
-- resource usage per request.
SELECT
    version,
    toUInt32(intDiv(toUInt32(minute), @step) * @step) AS bucket,
    sumMerge(request_count) AS requests
FROM {db}.latency_hist_1m
WHERE service = @service AND environment = @environment
  AND minute >= toDateTime(@from) AND minute < toDateTime(@to)
GROUP BY version, bucket
ORDER BY version, bucket
LIMIT @limit
