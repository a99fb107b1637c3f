-- changelens schema v17: the evidence a deployment's impact page shows
-- beside its settled verdict, stored by changelens-worker.
--
-- deployment_evidence: the canary comparison (the new version against the
-- previous one in the minutes both served) and the service graph around
-- the unit, which the query API would otherwise compute afresh on every
-- impact request — each a handful of reads over a settled past that no
-- longer changes. Keyed like deployment_verdicts (the deployment and the
-- analysis settings' config_hash) and, like it, valid only for the windows
-- and versions it was computed on: a reader checks them, and computes live
-- what does not match. A newer row (higher ver) replaces an older one when
-- the worker re-settles the deployment. data is the compact binary form of
-- queryapi/store (EncodeEvidence). One row per deployment and setting: not
-- partitioned, not expired.

-- distributed: deployment_evidence {{unitKey}}
CREATE TABLE IF NOT EXISTS {{local "deployment_evidence"}}{{onCluster}}
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
    data           String,
    settled_at     DateTime('UTC'),
    ver            UInt64
)
ENGINE = {{engine "ReplacingMergeTree" "deployment_evidence" "ver"}}
ORDER BY (deployment_id, config_hash);
