-- Deployed units: one row per (service, environment, version) with the first
-- and last minute that had requests (per-minute histograms). A version that
-- was deployed but has served no requests yet (or a unit deployed by CI whose
-- traffic changelens does not see) is listed with the times of its successful
-- deployments instead.
--
-- .Summary (the whole retained history, no @since): the minutes come from
-- unit_versions_1d (schema v18), a row per version and day holding the
-- first and last of the minutes latency_hist_1m holds, instead of every
-- minute.
SELECT
    service,
    environment,
    version,
    toUInt32(if(countIf(src = 0) > 0, minIf(first_seen, src = 0), min(first_seen))) AS first_seen,
    toUInt32(if(countIf(src = 0) > 0, maxIf(last_seen, src = 0), max(last_seen))) AS last_seen
FROM
(
    SELECT
        materialize(toUInt8(0)) AS src,
        CAST(service AS String) AS service,
        CAST(environment AS String) AS environment,
        CAST(version AS String) AS version,
{{- if .Summary}}
        toUInt32(minMerge(first_minute)) AS first_seen,
        toUInt32(maxMerge(last_minute)) AS last_seen
    FROM {db}.unit_versions_1d
    WHERE 1
{{- else}}
        toUInt32(min(minute)) AS first_seen,
        toUInt32(max(minute)) AS last_seen
    FROM {db}.latency_hist_1m
    WHERE minute >= toDateTime(@since)
{{- end}}
{{- if .Environment}}
      AND environment = @environment
{{- end}}
    GROUP BY service, environment, version
    UNION ALL
    SELECT
        materialize(toUInt8(1)) AS src,
        CAST(service AS String) AS service,
        CAST(environment AS String) AS environment,
        CAST(version AS String) AS version,
        toUInt32(toStartOfMinute(min(deploy_time))) AS first_seen,
        toUInt32(toStartOfMinute(max(deploy_time))) AS last_seen
    FROM {db}.deployment_events
    WHERE deploy_time >= toDateTime(@since) AND status != @status_failed AND version != ''
{{- if .Environment}}
      AND environment = @environment
{{- end}}
    GROUP BY service, environment, version
) AS seen
GROUP BY service, environment, version
ORDER BY service, environment, last_seen DESC, version
LIMIT @limit
