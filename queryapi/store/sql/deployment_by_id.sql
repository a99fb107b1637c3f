-- One deployment ID: its unit, deploy time and whether it was superseded,
-- from the row every read picks (see deployments.sql). Inferred deployments
-- are not stored: see Store.Impact.
SELECT
    CAST(tupleElement(w, 1) AS String) AS d_service,
    CAST(tupleElement(w, 2) AS String) AS d_environment,
    tupleElement(w, 3) AS d_deploy_time_ns,
    tupleElement(w, 4) AS d_superseded_by
FROM
(
    SELECT
        argMax((service, environment, deploy_time_ns, superseded_by),
               {{template "deployment_order"}}) AS w
    FROM {db}.deployment_events
    WHERE id = @id AND source != @source_inferred
    GROUP BY id
) AS winner
