-- Latency series (.Series: buckets of @step seconds) or summary (one row per
-- group) from the per-minute rollup. Groups: none, version or operation
-- (.Group, a fixed expression chosen by code, never by input).
SELECT
{{- if .Series}}
    toUInt32(intDiv(toUInt32(minute), @step) * @step) AS bucket,
{{- else}}
    toUInt32(0) AS bucket,
{{- end}}
    {{.Group}} AS grp,
    sumMerge(request_count) AS requests,
    sumMerge(error_count) AS errors,
    arrayMap(x -> toFloat64(x), quantilesTDigestWeightedMerge(0.5, 0.9, 0.95, 0.99)(duration_digest)) AS q
FROM {db}.latency_rollup_1m
WHERE service = @service AND environment = @environment
  AND minute >= toDateTime(@from) AND minute < toDateTime(@to)
{{- if .Operation}}
  AND operation = @operation
{{- end}}
{{- if .Version}}
  AND version = @version
{{- end}}
GROUP BY bucket, grp
ORDER BY bucket, grp
LIMIT @limit
