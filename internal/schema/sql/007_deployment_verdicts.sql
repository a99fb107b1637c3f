-- changelens schema v7: settled verdicts and delivered notifications, both
-- written by changelens-worker (the component with a writer credential; the
-- query API stays read-only).
--
-- deployment_verdicts: a deployment's before/after statistics and verdict,
-- computed once its after window has closed and settled, keyed by the
-- deployment and the analysis settings (config_hash) that judged it. The
-- window bounds are part of the row: a reader uses it only when the
-- deployment's windows are still those (a neighbour deployment appearing
-- later cuts them). The worker recomputes settled verdicts and writes a
-- new row (higher ver) when data arriving late or replayed changed a
-- window's statistics; readers take the highest ver per key (merges are
-- eventual). data holds both windows' statistics and the judgement in a
-- compact binary form (queryapi/store, EncodeVerdict); verdict repeats the
-- verdict for SQL readers. Small (one row per deployment and setting): not
-- partitioned, not expired.

-- distributed: deployment_verdicts {{unitKey}}
CREATE TABLE IF NOT EXISTS {{local "deployment_verdicts"}}{{onCluster}}
(
    deployment_id  String,
    config_hash    String,
    service        {{lcString}},
    environment    {{lcString}},
    version        String,
    before_start   DateTime('UTC'),
    before_end     DateTime('UTC'),
    after_start    DateTime('UTC'),
    after_end      DateTime('UTC'),
    verdict        {{lcString}},
    data           String,
    settled_at     DateTime('UTC'),
    ver            UInt64
)
ENGINE = {{engine "ReplacingMergeTree" "deployment_verdicts" "ver"}}
ORDER BY (deployment_id, config_hash);

-- notification_log: one row per notification delivered (acknowledged by
-- its target), keyed by its idempotency key (deployment, verdict, target).
-- The worker sends every due notification without a row here, so a
-- notification is delivered at least once across restarts and targets that
-- deduplicate by the key see it once.

-- distributed: notification_log cityHash64(idempotency_key)
CREATE TABLE IF NOT EXISTS {{local "notification_log"}}{{onCluster}}
(
    idempotency_key  String,
    target           {{lcString}},
    deployment_id    String,
    verdict          {{lcString}},
    delivered_at     DateTime('UTC'),
    attempts         UInt32
)
ENGINE = {{engine "ReplacingMergeTree" "notification_log"}}
ORDER BY idempotency_key;
