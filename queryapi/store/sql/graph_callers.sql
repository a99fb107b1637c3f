-- The requests unit (@service, @environment) served over [@from, @to), per
-- minute and per unit that called it: weighted requests, errors and
-- duration (as the unit served them) of its entry spans whose parent is a
-- call event (schema v8) of that caller, in the same trace; the call side
-- keeps only the parents of the unit's events (a semi-join: the join's hash
-- table holds its callers' calls, not the environment's). Calls are read
-- over [@caller_from, @caller_to), widened by a margin (a call starts before
-- its callee's span, on another host's clock). GLOBAL and the renamed,
-- unqualified columns: see graph_calls.sql.
SELECT
    caller,
    caller_environment,
    toStartOfMinute(time) AS minute,
    sum(weight) AS requests,
    sum(is_error * weight) AS errors,
    sum(duration_ns * weight) / 1e6 AS duration_ms
FROM {db}.latency_events
GLOBAL ANY INNER JOIN
(
    SELECT
        trace_id,
        span_id AS parent_span_id,
        CAST(service AS String) AS caller,
        CAST(environment AS String) AS caller_environment
    FROM {db}.call_events
    WHERE environment = @environment
      AND time >= toDateTime(@caller_from) AND time < toDateTime(@caller_to)
      AND (trace_id, span_id) GLOBAL IN
      (
          SELECT trace_id, parent_span_id
          FROM {db}.latency_events
          WHERE service = @service AND environment = @environment
            AND time >= toDateTime(@from) AND time < toDateTime(@to)
            AND reinterpretAsUInt64(parent_span_id) != 0
      )
) AS calls USING (trace_id, parent_span_id)
WHERE service = @service AND environment = @environment
  AND time >= toDateTime(@from) AND time < toDateTime(@to)
  AND reinterpretAsUInt64(parent_span_id) != 0
GROUP BY caller, caller_environment, minute
