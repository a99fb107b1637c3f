-- changelens schema v15: client sessions, users, crashes and outcomes.
--
-- latency_events gains, for the latency events of client units (browser and
-- mobile SDKs, told apart by their resource: docs/client.md), the session
-- (session.id) and user (enduser.id, else user.id) of the event, and
-- crashed = 1 when the event's span shows a crash (an exception event with
-- exception.escaped = true, or a crash event). Server units' rows keep ''
-- and 0, as do rows written before this version. One ALTER per column (v6:
-- 18.16 has no ADD COLUMN IF NOT EXISTS).

ALTER TABLE {{local "latency_events"}}{{onCluster}} ADD COLUMN session_id String;
ALTER TABLE {{local "latency_events"}}{{onCluster}} ADD COLUMN user_id String;
ALTER TABLE {{local "latency_events"}}{{onCluster}} ADD COLUMN crashed UInt8;
{{- if clustered}}
-- The Distributed table is re-created over the altered local table (v6).
DROP TABLE IF EXISTS {{name "latency_events"}}{{onCluster}};
{{distributed "latency_events" unitKey}};
{{- end}}

-- outcome_events: one row per occurrence of a configured outcome (the
-- processor's outcomes: a span, span event or log record matching a name
-- and attributes) and per crash log record of a client unit (name
-- 'crash'): the unit, the outcome, when, the session and user it belongs
-- to, and the trace and span it came from. Conversion and crash rates per
-- cohort join these with the unit's latency events by session or user when
-- read.
--
-- Every column is in the sorting key: a replayed outcome (a retry, a second
-- collector) is an identical row, which merges collapse; readers count
-- distinct sessions or users anyway. Sharded by unit like latency_events.

-- distributed: outcome_events {{unitKey}}
CREATE TABLE IF NOT EXISTS {{local "outcome_events"}}{{onCluster}}
(
    service      {{lcString}},
    environment  {{lcString}},
    name         {{lcString}},
    time         DateTime('UTC'){{codec "Delta(4), ZSTD(1)"}},
    time_ns      UInt64{{codec "Delta(8), ZSTD(1)"}},
    session_id   String,
    user_id      String,
    trace_id     FixedString(16),
    span_id      FixedString(8)
)
ENGINE = {{engine "ReplacingMergeTree" "outcome_events"}}
PARTITION BY toYYYYMMDD(time)
ORDER BY (service, environment, name, session_id, user_id, time_ns, trace_id, span_id)
{{ttl "time"}}
SETTINGS index_granularity = 8192;
