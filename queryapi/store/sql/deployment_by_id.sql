-- One deployment ID: its unit, deploy time and whether it was superseded.
SELECT
    argMax(service, ver) AS d_service,
    argMax(environment, ver) AS d_environment,
    argMax(deploy_time_ns, ver) AS d_deploy_time_ns,
    argMax(superseded_by, ver) AS d_superseded_by
FROM {db}.deployments
WHERE id = @id
GROUP BY id
