-- Per feature flag of unit (@service, @environment), variant and minute
-- over [@from, @to): weighted requests, errors and duration (cohort_hist_1m,
-- schema v6), for the attribution's flag mixes.
SELECT
    CAST(dimension AS String) AS dimension,
    value,
    minute,
    sumMerge(request_count) AS requests,
    sumMerge(error_count) AS errors,
    sumMerge(duration_sum_ns) / 1e6 AS duration_ms
FROM {db}.cohort_hist_1m
WHERE service = @service AND environment = @environment
  AND substring(dimension, 1, 13) = 'feature_flag.'
  AND minute >= toDateTime(@from) AND minute < toDateTime(@to)
GROUP BY dimension, value, minute
