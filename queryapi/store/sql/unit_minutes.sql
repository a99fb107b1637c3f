-- Per unit of @units ("service\nenvironment") and minute over [@from,
-- @to): weighted requests, errors and duration, all versions and
-- operations together (the attribution's per-minute series).
SELECT
    CAST(service AS String) AS service,
    CAST(environment AS String) AS environment,
    minute,
    sumMerge(request_count) AS requests,
    sumMerge(error_count) AS errors,
    sumMerge(duration_sum_ns) / 1e6 AS duration_ms
FROM {db}.latency_hist_1m
WHERE service IN @services AND environment IN @environments
  AND has(@units, concat(service, '\n', environment))
  AND minute >= toDateTime(@from) AND minute < toDateTime(@to)
GROUP BY service, environment, minute
