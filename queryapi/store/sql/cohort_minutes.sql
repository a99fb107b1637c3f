-- The two cohorts of one unit, minute by minute: weighted requests, errors,
-- the duration sum (for the mean), the merged latency histogram and, from
-- cohort_hist_1m, the body-size histograms. Minutes where only one cohort
-- served are returned too; the caller keeps the minutes both served.
-- .ByOperation splits every minute by operation (ordered by operation
-- first).
--
-- .Cohort reads cohort_hist_1m (schema v6) for @dimension; otherwise the
-- cohorts are versions read from latency_hist_1m, which holds them since
-- schema v2 (the caller reads the version dimension's sizes with .Cohort
-- and @dimension = 'version').
--
-- .SizesOnly (with .Cohort) leaves the latency histogram out: the
-- versions' sizes, whose latencies latency_hist_1m gives.
--
-- .Stored (a feature flag @flag whose unit has stored evaluations, schema
-- v12): the latency events without the flag in-row join the first stored
-- evaluation of the flag in their trace (flag_variants), measured as
-- cohort_hist_1m's view measures events (the same minute, weights and
-- histogram buckets), and each minute adds both parts. Sums of whole
-- numbers are exact in any order, so an experiment reads the same whichever
-- shape carried its evaluations. Outer names differ from the columns they
-- add: an alias named like its argument is cyclic on 18.16.
--
-- The histograms travel as text ("3,17,40" and "12,1.5,7"; toString prints
-- the shortest decimal that reads back as the same Float64): the driver
-- scans an Array column element by element through reflection, which cost
-- a 24-hour comparison ~75 ms of its ~450; the text costs the server
-- little and parses in a few milliseconds (parseHistogram).
SELECT
    m,
    cohort,
    op,
{{- if .Stored}}
    requests_total,
    errors_total,
    duration_total,
    {{template "histogram_text" "keys_total"}} AS keys_text,
    {{template "histogram_text" "weights_total"}} AS weights_text,
    {{template "histogram_text" "response_keys_total"}} AS response_keys_text,
    {{template "histogram_text" "response_weights_total"}} AS response_weights_text,
    {{template "histogram_text" "request_keys_total"}} AS request_keys_text,
    {{template "histogram_text" "request_weights_total"}} AS request_weights_text
{{- else}}
    requests,
    errors,
    duration_sum,
    {{template "histogram_text" "hist_keys"}} AS keys_text,
    {{template "histogram_text" "hist_weights"}} AS weights_text,
    {{template "histogram_text" "response_keys"}} AS response_keys_text,
    {{template "histogram_text" "response_weights"}} AS response_weights_text,
    {{template "histogram_text" "request_keys"}} AS request_keys_text,
    {{template "histogram_text" "request_weights"}} AS request_weights_text
{{- end}}
FROM
(
{{- if .Stored}}
    SELECT
        m,
        cohort,
        op,
        sum(requests) AS requests_total,
        sum(errors) AS errors_total,
        sum(duration_sum) AS duration_total,
        (sumMap(hist_keys, hist_weights) AS h).1 AS keys_total,
        h.2 AS weights_total,
        (sumMap(response_keys, response_weights) AS rs).1 AS response_keys_total,
        rs.2 AS response_weights_total,
        (sumMap(request_keys, request_weights) AS qs).1 AS request_keys_total,
        qs.2 AS request_weights_total
    FROM
    (
{{template "cohort_minutes_rollup" .}}
        UNION ALL
        SELECT
            toUInt32(toStartOfMinute(time)) AS m,
            flag_variant AS cohort,
{{- if .ByOperation}}
            CAST(operation AS String) AS op,
{{- else}}
            materialize('') AS op,
{{- end}}
            sum(weight) AS requests,
            sum(is_error * weight) AS errors,
            sum(duration_ns * weight) AS duration_sum,
            (sumMap([{{histBucket "duration_ns"}}], [weight]) AS h).1 AS hist_keys,
            h.2 AS hist_weights,
            (sumMap(
                if(response_size >= 0, [{{sizeBucket "response_size"}}], emptyArrayUInt16()),
                if(response_size >= 0, [weight], emptyArrayFloat64())) AS rs).1 AS response_keys,
            rs.2 AS response_weights,
            (sumMap(
                if(request_size >= 0, [{{sizeBucket "request_size"}}], emptyArrayUInt16()),
                if(request_size >= 0, [weight], emptyArrayFloat64())) AS qs).1 AS request_keys,
            qs.2 AS request_weights
        FROM {db}.latency_events
        GLOBAL ANY INNER JOIN
        (
{{- template "flag_variants" .}}
        ) AS evaluations USING trace_id
        WHERE service = @service
          AND environment = @environment
          AND NOT has(cohort_keys, @dimension)
          AND flag_variant IN (@control, @treatment)
{{- if .Operation}}
          AND operation = @operation
{{- end}}
{{- template "flag_event_minutes"}}
        GROUP BY m, cohort, op
    )
    GROUP BY m, cohort, op
{{- else}}
{{template "cohort_minutes_rollup" .}}
{{- end}}
)
ORDER BY op, m, cohort
LIMIT @limit
{{- define "histogram_text"}}arrayStringConcat(arrayMap(x -> toString(x), {{.}}), ',')
{{- end}}
{{- define "cohort_minutes_rollup"}}
    SELECT
        toUInt32(minute) AS m,
{{- if .Cohort}}
        value AS cohort,
{{- else}}
        CAST(version AS String) AS cohort,
{{- end}}
{{- if .ByOperation}}
        CAST(operation AS String) AS op,
{{- else}}
        materialize('') AS op,
{{- end}}
        sumMerge(request_count) AS requests,
        sumMerge(error_count) AS errors,
        sumMerge(duration_sum_ns) AS duration_sum,
{{- if .SizesOnly}}
        emptyArrayUInt16() AS hist_keys,
        emptyArrayFloat64() AS hist_weights,
{{- else}}
        (sumMapMerge(hist) AS h).1 AS hist_keys,
        h.2 AS hist_weights,
{{- end}}
{{- if .Cohort}}
        (sumMapMerge(response_size_hist) AS rs).1 AS response_keys,
        rs.2 AS response_weights,
        (sumMapMerge(request_size_hist) AS qs).1 AS request_keys,
        qs.2 AS request_weights
    FROM {db}.cohort_hist_1m
    WHERE service = @service
      AND environment = @environment
      AND dimension = @dimension
      AND value IN (@control, @treatment)
{{- else}}
        emptyArrayUInt16() AS response_keys,
        emptyArrayFloat64() AS response_weights,
        emptyArrayUInt16() AS request_keys,
        emptyArrayFloat64() AS request_weights
    FROM {db}.latency_hist_1m
    WHERE service = @service
      AND environment = @environment
      AND version IN (@control, @treatment)
{{- end}}
{{- if .Operation}}
      AND operation = @operation
{{- end}}
      AND minute >= toDateTime(@from)
      AND minute < toDateTime(@to)
    GROUP BY m, cohort, op
{{- end}}
