-- The cohort dimensions of one unit over [@from, @to) and the values seen
-- with their weighted requests, busiest first (at most @limit per
-- dimension): "version" from latency_hist_1m (complete since schema v2), the
-- processor's dimensions from cohort_hist_1m (schema v6). .Stored: the unit
-- has stored flag evaluations (schema v12); the latency events of the
-- minutes of the range without a flag in-row count under the first stored
-- evaluation of that flag in their trace, added to the rollup's.
SELECT dimension, value, {{if .Stored}}sum(requests) AS requests_total{{else}}requests{{end}}
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
{{- if .Stored}}
    UNION ALL
    SELECT
        concat('feature_flag.', flag) AS dimension,
        flag_variant AS value,
        sum(weight) AS requests
    FROM {db}.latency_events
    GLOBAL ALL INNER JOIN
    (
{{- template "flag_variants_all" .}}
    ) AS evaluations USING trace_id
    WHERE service = @service
      AND environment = @environment
      AND NOT has(cohort_keys, concat('feature_flag.', flag))
{{- template "flag_event_minutes"}}
    GROUP BY dimension, value
{{- end}}
)
{{- if .Stored}}
GROUP BY dimension, value
ORDER BY dimension = 'version' DESC, dimension, requests_total DESC, value
{{- else}}
ORDER BY dimension = 'version' DESC, dimension, requests DESC, value
{{- end}}
LIMIT @limit BY dimension
