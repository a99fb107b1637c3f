-- Deployments of the filtered units, one row per ID: argMax(column, ver)
-- because ReplacingMergeTree merges are eventual; superseded rows dropped.
-- Variants (template field .Part):
--   "range":  deploy time in [@from_ns, @to_ns), failed attempts included;
--   "before": the 4 latest successful deployments per unit in
--             [@from_ns - horizon, @from_ns);
--   "after":  the 4 earliest successful deployments per unit in
--             [@to_ns, @to_ns + horizon).
-- A WHERE on deploy_time before the collapse could keep a losing row of an
-- ID and drop the winner. So the IDs are chosen by any row in the scanned
-- seconds [@scan_from, @scan_to) (which hold every winning row the outer
-- filter can accept), and every row of those IDs is collapsed.
SELECT
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
{{- if .Service}}
      AND service = @service
{{- end}}
{{- if .Environment}}
      AND environment = @environment
{{- end}}
      AND id IN
      (
          SELECT id
          FROM {db}.deployments
          WHERE deploy_time >= toDateTime(@scan_from) AND deploy_time < toDateTime(@scan_to)
{{- if .Service}}
            AND service = @service
{{- end}}
{{- if .Environment}}
            AND environment = @environment
{{- end}}
      )
    GROUP BY id
)
WHERE d_superseded_by = ''
{{- if eq .Part "range"}}
  AND d_deploy_time_ns >= @from_ns AND d_deploy_time_ns < @to_ns
ORDER BY d_deploy_time_ns, id
{{- else if eq .Part "before"}}
  AND d_deploy_time_ns < @from_ns AND d_deploy_time_ns >= @horizon_ns AND d_status != 'failed'
ORDER BY d_deploy_time_ns DESC, id DESC
LIMIT 4 BY d_service, d_environment
{{- else}}
  AND d_deploy_time_ns >= @to_ns AND d_deploy_time_ns < @horizon_ns AND d_status != 'failed'
ORDER BY d_deploy_time_ns, id
LIMIT 4 BY d_service, d_environment
{{- end}}
LIMIT @limit
