-- Deployed units seen in the per-minute histograms: one row per (service, environment,
-- version) with the first and last minute that had requests.
SELECT
    service,
    environment,
    version,
    toUInt32(min(minute)) AS first_seen,
    toUInt32(max(minute)) AS last_seen
FROM {db}.latency_hist_1m
WHERE minute >= toDateTime(@since)
{{- if .Environment}}
  AND environment = @environment
{{- end}}
GROUP BY service, environment, version
ORDER BY service, environment, last_seen DESC, version
LIMIT @limit
