-- The stored impact evidence (schema v17) of the deployments @ids judged
-- with the analysis settings @config_hash: per deployment the row with the
-- highest ver (argMax reads the winner without FINAL, as verdicts.sql).
SELECT
    deployment_id,
    toUInt32(argMax(before_start, ver)) AS b_start,
    toUInt32(argMax(before_end, ver)) AS b_end,
    toUInt32(argMax(after_start, ver)) AS a_start,
    toUInt32(argMax(after_end, ver)) AS a_end,
    argMax(data, ver) AS data
FROM {db}.deployment_evidence
WHERE config_hash = @config_hash
  AND deployment_id IN (SELECT arrayJoin(@ids))
GROUP BY deployment_id
