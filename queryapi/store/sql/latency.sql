-- Latency series (.Series: buckets of @step seconds) or summary (one row per
-- group) from the exporter's log-bucket histograms. Groups: none, version or
-- operation (.Group, a fixed expression chosen by code, never by input).
-- Per row: weighted requests and errors and the merged histogram as
-- (bucket indexes ascending, weights); the percentiles are computed in Go
-- (stats.HistQuantiles). Constant columns are materialize()d: over a
-- Distributed table (a cluster) 18.16 refuses a column that is constant in
-- one shard's stream and not in another's ("must be constant in result").
--
-- .Hourly: the whole hours [@hfrom, @hto) come from latency_hist_1h and only
-- the minutes of [@from, @to) outside them from latency_hist_1m: [@from,
-- @hfrom) when .Head, [@hto, @to) when .Tail (separate plain ranges, so
-- partition pruning reads at most the edge days). The code uses it for
-- summaries and for steps that are whole hours, so every bucket is a union
-- of whole hours and edge minutes. Otherwise all of [@from, @to) comes from
-- latency_hist_1m. A minute (hour) belongs to the range when its start does.
SELECT
    bucket,
    grp,
    sumMerge(request_count) AS requests,
    sumMerge(error_count) AS errors,
    (sumMapMerge(hist) AS h).1 AS hist_keys,
    h.2 AS hist_weights
FROM
(
{{- if .Hourly}}
    SELECT
        {{template "latency_bucket_hour" .}} AS bucket,
        {{.Group}} AS grp,
        request_count,
        error_count,
        hist
    FROM {db}.latency_hist_1h
    WHERE service = @service AND environment = @environment
      AND hour >= toDateTime(@hfrom) AND hour < toDateTime(@hto)
{{- template "latency_filters" .}}
{{- if .Head}}
    UNION ALL
{{template "latency_minutes" .Minutes "@from" "@hfrom"}}
{{- end}}
{{- if .Tail}}
    UNION ALL
{{template "latency_minutes" .Minutes "@hto" "@to"}}
{{- end}}
{{- else}}
{{template "latency_minutes" .Minutes "@from" "@to"}}
{{- end}}
)
GROUP BY bucket, grp
ORDER BY bucket, grp
LIMIT @limit
{{- define "latency_bucket_hour"}}
{{- if .Series}}toUInt32(intDiv(toUInt32(hour), @step) * @step){{else}}materialize(toUInt32(0)){{end}}
{{- end}}
{{- define "latency_bucket_minute"}}
{{- if .Series}}toUInt32(intDiv(toUInt32(minute), @step) * @step){{else}}materialize(toUInt32(0)){{end}}
{{- end}}
{{- define "latency_minutes"}}
{{- /* minutes [.From, .To) of latency_hist_1m; the bounds are parameter names chosen by code */}}
    SELECT
        {{template "latency_bucket_minute" .}} AS bucket,
        {{.Group}} AS grp,
        request_count,
        error_count,
        hist
    FROM {db}.latency_hist_1m
    WHERE service = @service AND environment = @environment
      AND minute >= toDateTime({{.From}}) AND minute < toDateTime({{.To}})
{{- template "latency_filters" .}}
{{- end}}
{{- define "latency_filters"}}
{{- if .Operation}}
      AND operation = @operation
{{- end}}
{{- if .Version}}
      AND version = @version
{{- end}}
{{- end}}
