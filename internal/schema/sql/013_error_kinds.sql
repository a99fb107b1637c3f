-- changelens schema v13: the error kinds of failed requests, per minute.
--
-- latency_events gains error_kind: a failed request's error kind as the
-- processor read it (the entry span's error.type, else the exception.type
-- of an exception event on it or its descendants, else its status class;
-- '__other__' beyond the unit's bound), '' on every other row. Rows written
-- before this version read as no kind. One ALTER, as in v6: 18.16 has no
-- ADD COLUMN IF NOT EXISTS (the migration runner treats "column already
-- exists" as done).

ALTER TABLE {{local "latency_events"}}{{onCluster}} ADD COLUMN error_kind {{lcString}};
{{- if clustered}}
-- The Distributed table is re-created over the altered local table (v6).
DROP TABLE IF EXISTS {{name "latency_events"}}{{onCluster}};
{{distributed "latency_events" unitKey}};
{{- end}}

-- error_kinds_1m: per (unit, version, error kind, minute) the weighted
-- failed requests of the kind, its first occurrence (start_time_ns) and the
-- trace of that occurrence (argMin by start_time_ns), fed from the raw table
-- by its view: the new-error-kind rule reads each kind's occurrences minute
-- by minute in a deployment's windows and over a longer history, and names
-- the first trace. No back-fill: rows before this version have no kind.

-- distributed: error_kinds_1m {{unitKey}}
CREATE TABLE IF NOT EXISTS {{local "error_kinds_1m"}}{{onCluster}}
(
    service         {{lcString}},
    environment     {{lcString}},
    version         {{lcString}},
    error_kind      {{lcString}},
    minute          DateTime('UTC'),
    error_count     AggregateFunction(sum, Float64),
    first_time_ns   AggregateFunction(min, UInt64),
    first_trace_id  AggregateFunction(argMin, FixedString(16), UInt64)
)
ENGINE = {{engine "AggregatingMergeTree" "error_kinds_1m"}}
PARTITION BY toYYYYMMDD(minute)
ORDER BY (service, environment, version, error_kind, minute)
{{ttl "minute"}};

CREATE MATERIALIZED VIEW IF NOT EXISTS {{name "error_kinds_1m_mv"}}{{onCluster}}
TO {{local "error_kinds_1m"}}
AS SELECT
    service,
    environment,
    version,
    error_kind,
    toStartOfMinute(time) AS minute,
    sumState(weight) AS error_count,
    minState(start_time_ns) AS first_time_ns,
    argMinState(trace_id, start_time_ns) AS first_trace_id
FROM {{local "latency_events"}}
WHERE is_error = 1 AND error_kind != ''
GROUP BY service, environment, version, error_kind, minute;
