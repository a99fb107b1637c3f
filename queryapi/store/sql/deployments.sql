-- Deployments of the filtered units, one row per ID: the row with the greatest
-- (ver, earliest deploy_time_ns, earliest rollout_start_ns, row_hash). Merges
-- are eventual and collapse only rows of identical content, and the order is
-- total on content, so every read picks the same row whatever was merged or
-- inserted first. Superseded deployments dropped.
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
-- GLOBAL IN: on a cluster deployment_events is Distributed, and the IDs are
-- chosen once, through it, and sent to every shard (a plain IN would read
-- every shard from every shard, which ClickHouse refuses); on one server it
-- is an IN.
-- Inferred rows written by collectors before schema v5 are skipped:
-- inferred deployments are derived from version_presence (episodes.sql).
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
        d_rollback_candidate,
        d_rework
    FROM
    (
        SELECT
            id,
            argMax((service, environment, version, previous_version, source, status, rollout_start_ns,
                    deploy_time_ns, commit_sha, commit_time_ns, rollback_candidate, superseded_by, rework),
                   {{template "deployment_order"}}) AS w,
            CAST(tupleElement(w, 1) AS String) AS d_service,
            CAST(tupleElement(w, 2) AS String) AS d_environment,
            tupleElement(w, 3) AS d_version,
            tupleElement(w, 4) AS d_previous_version,
            CAST(tupleElement(w, 5) AS String) AS d_source,
            CAST(tupleElement(w, 6) AS String) AS d_status,
            tupleElement(w, 7) AS d_rollout_start_ns,
            tupleElement(w, 8) AS d_deploy_time_ns,
            tupleElement(w, 9) AS d_commit_sha,
            tupleElement(w, 10) AS d_commit_time_ns,
            tupleElement(w, 11) AS d_rollback_candidate,
            tupleElement(w, 12) AS d_superseded_by,
            CAST(tupleElement(w, 13) AS String) AS d_rework
        FROM {db}.deployment_events
        WHERE 1
{{- if $.Service}}
          AND service = @service
{{- end}}
{{- if $.Environment}}
          AND environment = @environment
{{- end}}
          AND id GLOBAL IN
          (
              SELECT id
              FROM {db}.deployment_events
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
    WHERE d_superseded_by = '' AND d_source != @source_inferred
{{- if eq $p "range"}}
      AND d_deploy_time_ns >= @from_ns AND d_deploy_time_ns < @to_ns
    ORDER BY d_deploy_time_ns, id
{{- else if eq $p "before"}}
      AND d_deploy_time_ns < @from_ns AND d_deploy_time_ns >= @before_horizon_ns AND d_status != @status_failed
    ORDER BY d_deploy_time_ns DESC, id DESC
    LIMIT 4 BY d_service, d_environment
{{- else}}
      AND d_deploy_time_ns >= @to_ns AND d_deploy_time_ns < @after_horizon_ns AND d_status != @status_failed
    ORDER BY d_deploy_time_ns, id
    LIMIT 4 BY d_service, d_environment
{{- end}}
    LIMIT @limit
)
{{- end}}
{{- define "deployment_order"}}
{{- /* the order that picks the row standing for a deployment id (see above);
       deployment_by_id.sql uses it too */ -}}
(ver, -toInt64(deploy_time_ns), -toInt64(rollout_start_ns), row_hash)
{{- end}}
