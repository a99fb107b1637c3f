-- Resource usage (schema v14): the memory of a unit's instances in
-- [@from, @to), each instance's points (replays collapsed, as in
-- usage_sums.sql) averaged per minute, per (version, instance, metric,
-- minute). The code keeps one metric per instance (the most specific it
-- reports), sums the instances of a minute and averages the minutes of a
-- bucket.
SELECT
    version,
    instance,
    metric,
    toUInt32(toStartOfMinute(t)) AS minute,
    avg(v) AS bytes
FROM
(
    SELECT
        version,
        instance,
        metric,
        time_ns,
        any(time) AS t,
        any(value) AS v
    FROM {db}.resource_usage
    WHERE service = @service AND environment = @environment
      AND time >= toDateTime(@from) AND time < toDateTime(@to)
      AND temporality = 'gauge'
    GROUP BY version, instance, metric, start_time_ns, time_ns
)
GROUP BY version, instance, metric, minute
ORDER BY version, instance, metric, minute
LIMIT @limit
