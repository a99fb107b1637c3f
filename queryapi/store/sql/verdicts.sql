-- The stored verdicts (schema v7) of the deployments @ids judged with the
-- analysis settings @config_hash: per deployment the row with the highest
-- ver (a ReplacingMergeTree merges eventually; argMax reads the winner
-- without FINAL, on every server). The IDs are a set (IN), not an array
-- each row is searched in (has): a year's deployments made that a quarter
-- of a second per chunk.
SELECT
    deployment_id,
    toUInt32(argMax(before_start, ver)) AS b_start,
    toUInt32(argMax(before_end, ver)) AS b_end,
    toUInt32(argMax(after_start, ver)) AS a_start,
    toUInt32(argMax(after_end, ver)) AS a_end,
    argMax(data, ver) AS data
FROM {db}.deployment_verdicts
WHERE config_hash = @config_hash
  AND deployment_id IN (SELECT arrayJoin(@ids))
GROUP BY deployment_id
