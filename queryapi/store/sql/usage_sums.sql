-- Resource usage (schema v14): the CPU-time points of a unit's instances in
-- [@rfrom, @to), per series (version, instance, metric, temporality,
-- start_time_ns) and bucket of @step seconds (aligned to the Unix epoch):
-- the series' last value in the bucket (cumulative sums) and the sum of
-- its values (delta sums). The inner query collapses replays of a point
-- (same identity, same value: a retry, a second collector, an unmerged
-- part); a delta point's start is no series identity, so delta points of an
-- instance and metric are one series here (start 0), summed per bucket.
-- Increments are the code's: a cumulative series' increment in a
-- bucket is its last value there minus its last value in the bucket
-- before, whichever collector stored which point; [@rfrom, @from) is read
-- only for that baseline.
SELECT
    version,
    instance,
    metric,
    temporality,
    if(temporality = 'delta', toUInt64(0), start_time_ns) AS series_start,
    toUInt32(intDiv(toUInt32(t), @step) * @step) AS bucket,
    argMax(v, time_ns) AS last_value,
    sum(v) AS total
FROM
(
    SELECT
        version,
        instance,
        metric,
        temporality,
        start_time_ns,
        time_ns,
        any(time) AS t,
        any(value) AS v
    FROM {db}.resource_usage
    WHERE service = @service AND environment = @environment
      AND time >= toDateTime(@rfrom) AND time < toDateTime(@to)
      AND temporality IN ('cumulative', 'delta')
    GROUP BY version, instance, metric, temporality, start_time_ns, time_ns
)
GROUP BY version, instance, metric, temporality, series_start, bucket
ORDER BY version, instance, metric, temporality, series_start, bucket
LIMIT @limit
