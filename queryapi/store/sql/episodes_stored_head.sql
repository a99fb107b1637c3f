-- The newest snapshot of settled episodes changelens-worker stored for the
-- reappear setting (schema v19): its up_to (unix seconds), the number of
-- units it holds, and how many of their rows are visible yet.
SELECT
    toInt64(up_to) AS up_to_s,
    max(units) AS want,
    toUInt64(uniqExact(service, environment)) AS got
FROM {db}.version_episodes
WHERE reappear_ns = @reappear_ns
GROUP BY up_to
ORDER BY up_to DESC
LIMIT 1
