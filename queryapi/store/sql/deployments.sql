-- Deployments of the filtered units, one row per ID: argMax(column, ver)
-- because ReplacingMergeTree merges are eventual; superseded rows dropped.
-- One query, UNION ALL of the parts in .Parts (tagged by the first column):
--   0 "range":  deploy time in [@from_ns, @to_ns), failed attempts included;
--   1 "before": the 4 latest successful deployments per unit in
--               [@before_horizon_ns, @from_ns);
--   2 "after":  the 4 earliest successful deployments per unit in
--               [@to_ns, @after_horizon_ns).
-- A WHERE on deploy_time before the collapse could keep a losing row of an
-- ID and drop the winner. So the IDs are chosen by any row in the part's
-- scanned seconds [@<part>_scan_from, @<part>_scan_to) (which hold every
-- winning row the outer filter can accept), and every row of those IDs is
-- collapsed.
{{- range $i, $p := .Parts}}
{{- if $i}}
UNION ALL
{{- end}}
SELECT * FROM
(
    SELECT
        toUInt8({{$i}}) AS part,
        id,
        d_service,
        d_environment,
        d_version,
        d_previous_version,
        d_source,
        d_status,
        d_rollout_start_ns,
        d_deploy_time_ns,
        d_commit_sha,
        d_commit_time_ns,
        d_rollback_candidate
    FROM
    (
        SELECT
            id,
            any(service) AS d_service,
            any(environment) AS d_environment,
            argMax(version, ver) AS d_version,
            argMax(previous_version, ver) AS d_previous_version,
            argMax(source, ver) AS d_source,
            argMax(status, ver) AS d_status,
            argMax(rollout_start_ns, ver) AS d_rollout_start_ns,
            argMax(deploy_time_ns, ver) AS d_deploy_time_ns,
            argMax(commit_sha, ver) AS d_commit_sha,
            argMax(commit_time_ns, ver) AS d_commit_time_ns,
            argMax(rollback_candidate, ver) AS d_rollback_candidate,
            argMax(superseded_by, ver) AS d_superseded_by
        FROM {db}.deployments
        WHERE 1
{{- if $.Service}}
          AND service = @service
{{- end}}
{{- if $.Environment}}
          AND environment = @environment
{{- end}}
          AND id IN
          (
              SELECT id
              FROM {db}.deployments
              WHERE deploy_time >= toDateTime(@{{$p}}_scan_from) AND deploy_time < toDateTime(@{{$p}}_scan_to)
{{- if $.Service}}
                AND service = @service
{{- end}}
{{- if $.Environment}}
                AND environment = @environment
{{- end}}
          )
        GROUP BY id
    )
    WHERE d_superseded_by = ''
{{- if eq $p "range"}}
      AND d_deploy_time_ns >= @from_ns AND d_deploy_time_ns < @to_ns
    ORDER BY d_deploy_time_ns, id
{{- else if eq $p "before"}}
      AND d_deploy_time_ns < @from_ns AND d_deploy_time_ns >= @before_horizon_ns AND d_status != 'failed'
    ORDER BY d_deploy_time_ns DESC, id DESC
    LIMIT 4 BY d_service, d_environment
{{- else}}
      AND d_deploy_time_ns >= @to_ns AND d_deploy_time_ns < @after_horizon_ns AND d_status != 'failed'
    ORDER BY d_deploy_time_ns, id
    LIMIT 4 BY d_service, d_environment
{{- end}}
    LIMIT @limit
)
{{- end}}
