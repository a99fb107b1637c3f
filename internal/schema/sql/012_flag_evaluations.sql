-- changelens schema v12: feature-flag evaluations that are not a cohort
-- dimension of a latency event.
--
-- The processor writes a flag's variant onto the latency event of the
-- request's entry span when the evaluation and the entry span reach it in
-- one batch (a span event or a per-evaluation span below the entry span):
-- cohort_keys/cohort_values, rolled up by cohort_hist_1m (schema v6). Every
-- other evaluation is a flag evaluation event (internal/eventspan), one row
-- here: a log-based evaluation (the feature_flag.evaluation event on the
-- Logs API, which reaches a logs pipeline, maybe another collector's), and
-- a span event or evaluation span whose entry span was in another batch.
-- The query side credits a row to the latency events of its unit and trace
-- that do not carry the flag themselves (the first evaluation of the flag in
-- the trace counts, by time, span and variant), so the cohort is a function
-- of the stored rows, whichever collector received which signal.
--
-- Every column is in the sorting key: the replay of an evaluation (a retry,
-- a second collector) is an identical row, which merges collapse; readers
-- group per trace anyway. Sharded by unit, like latency_events, so a unit's
-- evaluations and events live on one shard. Partitioned by day of the
-- evaluation and expired with the raw tables.

-- distributed: flag_evaluations {{unitKey}}
CREATE TABLE IF NOT EXISTS {{local "flag_evaluations"}}{{onCluster}}
(
    service      {{lcString}},
    environment  {{lcString}},
    flag_key     {{lcString}},
    variant      String,
    time         DateTime('UTC'){{codec "Delta(4), ZSTD(1)"}},
    time_ns      UInt64{{codec "Delta(8), ZSTD(1)"}},
    trace_id     FixedString(16),
    span_id      FixedString(8)
)
ENGINE = {{engine "ReplacingMergeTree" "flag_evaluations"}}
PARTITION BY toYYYYMMDD(time)
ORDER BY (service, environment, flag_key, trace_id, time_ns, span_id, variant)
{{ttl "time"}}
SETTINGS index_granularity = 8192;
