-- Per feature flag of unit (@service, @environment), variant and minute
-- over [@from, @to): weighted requests, errors and duration (cohort_hist_1m,
-- schema v6), for the attribution's flag mixes. .Stored: the unit has
-- stored flag evaluations (schema v12); the latency events without a flag
-- in-row count under the first stored evaluation of that flag in their
-- trace, added to the rollup's.
{{- if .Stored}}
SELECT
    dimension,
    value,
    minute,
    sum(requests) AS requests_total,
    sum(errors) AS errors_total,
    sum(duration_sum) / 1e6 AS duration_ms
FROM
(
    SELECT
        CAST(dimension AS String) AS dimension,
        value,
        minute,
        sumMerge(request_count) AS requests,
        sumMerge(error_count) AS errors,
        sumMerge(duration_sum_ns) AS duration_sum
    FROM {db}.cohort_hist_1m
    WHERE service = @service AND environment = @environment
      AND substring(dimension, 1, 13) = 'feature_flag.'
      AND minute >= toDateTime(@from) AND minute < toDateTime(@to)
    GROUP BY dimension, value, minute
    UNION ALL
    SELECT
        concat('feature_flag.', flag) AS dimension,
        flag_variant AS value,
        toStartOfMinute(time) AS minute,
        sum(weight) AS requests,
        sum(is_error * weight) AS errors,
        sum(duration_ns * weight) AS duration_sum
    FROM {db}.latency_events
    GLOBAL ALL INNER JOIN
    (
{{- template "flag_variants_all" .}}
    ) AS evaluations USING trace_id
    WHERE service = @service
      AND environment = @environment
      AND NOT has(cohort_keys, concat('feature_flag.', flag))
{{- template "flag_event_minutes"}}
    GROUP BY dimension, value, minute
)
GROUP BY dimension, value, minute
{{- else}}
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
{{- end}}
