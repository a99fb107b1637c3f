-- The service graph's calls (schema v8): per caller, callee and (with
-- .ByMinute) minute over [@from, @to) of environment @environment (with
-- .Caller only the calls of unit @service), weighted calls, failed calls
-- and their duration as the caller timed them. A call's callee is the
-- latency event whose parent is the call (same trace); a call without one
-- went to something not instrumented and is named by its peer, with
-- callee_environment ''. Callee events are read over [@callee_from,
-- @callee_to), the calls' range widened by a margin: a callee's entry span
-- starts during its call, on another host's clock. GLOBAL: over a
-- cluster's Distributed tables a call and its callee live on different
-- shards. Right-hand columns are renamed and nothing is qualified: 18.16
-- resolves neither ON keys nor qualified right-hand columns over
-- Distributed tables (docs/clickhouse.md). With .Caller the callee side
-- keeps only the children of that unit's calls (a semi-join), so the join's
-- hash table holds its callees' events, not the environment's; with
-- .Sampled both sides keep the traces whose hash is 0 modulo @sample, the
-- same traces on both sides, so edges keep their proportions at a fraction
-- of the cost.
SELECT
    caller,
    callee,
    callee_environment,
    minute,
    sum(weight) AS calls,
    sum(is_error * weight) AS errors,
    sum(duration_ns * weight) / 1e6 AS duration_ms
FROM
(
    SELECT
        CAST(service AS String) AS caller,
        if(callee_service = '', CAST(peer AS String), callee_service) AS callee,
        callee_environment,
{{- if .ByMinute}}
        toStartOfMinute(time) AS minute,
{{- else}}
        toDateTime(0, 'UTC') AS minute,
{{- end}}
        weight,
        is_error,
        duration_ns
    FROM {db}.call_events
    GLOBAL ANY LEFT JOIN
    (
        SELECT
            trace_id,
            parent_span_id AS span_id,
            CAST(service AS String) AS callee_service,
            CAST(environment AS String) AS callee_environment
        FROM {db}.latency_events
        WHERE environment = @environment
          AND time >= toDateTime(@callee_from) AND time < toDateTime(@callee_to)
          AND reinterpretAsUInt64(parent_span_id) != 0
{{- if .Caller}}
          AND (trace_id, parent_span_id) GLOBAL IN
          (
              SELECT trace_id, span_id
              FROM {db}.call_events
              WHERE environment = @environment AND service = @service
                AND time >= toDateTime(@from) AND time < toDateTime(@to)
          )
{{- end}}
{{- if .Sampled}}
          AND cityHash64(trace_id) % @sample = 0
{{- end}}
    ) AS callee USING (trace_id, span_id)
    WHERE environment = @environment
{{- if .Caller}}
      AND service = @service
{{- end}}
      AND time >= toDateTime(@from) AND time < toDateTime(@to)
{{- if .Sampled}}
      AND cityHash64(trace_id) % @sample = 0
{{- end}}
)
WHERE caller != '' AND callee != ''
GROUP BY caller, callee, callee_environment, minute
