-- Incidents of the filtered units opened in [@from_ns, @to_ns), one row per
-- (service, environment, id): the row with the greatest (ver,
-- resolved_time_ns, row_hash), so a resolution wins over the opening it
-- replaces whatever merges have done, and every read picks the same row.
-- As in deployments.sql the keys are chosen by any row in the scanned
-- seconds [@scan_from, @scan_to) and every row of those keys is collapsed:
-- a WHERE before the collapse could keep a losing row and drop the winner.
-- GLOBAL IN for the Distributed table of a cluster.
SELECT
    id,
    i_service,
    i_environment,
    i_source,
    i_status,
    i_severity,
    i_title,
    i_deployment_id,
    i_opened_ns,
    i_resolved_ns
FROM
(
    SELECT
        id,
        CAST(service AS String) AS i_service,
        CAST(environment AS String) AS i_environment,
        argMax((CAST(source AS String), CAST(status AS String), CAST(severity AS String), title, deployment_id,
                opened_time_ns, resolved_time_ns),
               (ver, resolved_time_ns, row_hash)) AS w,
        tupleElement(w, 1) AS i_source,
        tupleElement(w, 2) AS i_status,
        tupleElement(w, 3) AS i_severity,
        tupleElement(w, 4) AS i_title,
        tupleElement(w, 5) AS i_deployment_id,
        tupleElement(w, 6) AS i_opened_ns,
        tupleElement(w, 7) AS i_resolved_ns
    FROM {db}.incident_events
    WHERE 1
{{- if .Service}}
      AND service = @service
{{- end}}
{{- if .Environment}}
      AND environment = @environment
{{- end}}
      AND (service, environment, id) GLOBAL IN
      (
          SELECT service, environment, id
          FROM {db}.incident_events
          WHERE opened_time >= toDateTime(@scan_from) AND opened_time < toDateTime(@scan_to)
{{- if .Service}}
            AND service = @service
{{- end}}
{{- if .Environment}}
            AND environment = @environment
{{- end}}
      )
    GROUP BY service, environment, id
)
WHERE i_opened_ns >= @from_ns AND i_opened_ns < @to_ns
ORDER BY i_opened_ns, i_service, i_environment, id
LIMIT @limit
