-- changelens schema v4: deployment events keyed by content, so that every
-- read resolves a deployment the same way.
--
-- v1's deployments table collapsed rows of one id to the highest ver, and
-- among rows with equal ver to whichever the merge (or argMax) met last: two
-- replicas describing one deployment differently within the same second
-- (other first span, other superseding deploy) read differently before and
-- after a merge. deployment_events keeps one row per distinct content
-- (row_hash, computed by the server from every column but observed_time and
-- ver) and collapses only identical rows; readers take per id the row with
-- the greatest (ver, row_hash): a total order on content, independent of
-- insertion order and merges.
--
-- The rows of v1's deployments table are copied over (through the Distributed
-- tables with a cluster, which is why a Distributed table is created right
-- after the table it covers) (re-running the copy
-- only adds identical rows, which collapse). The old table is left in place,
-- unused; drop it once the upgrade is done.

-- distributed: deployment_events {{unitKey}}
CREATE TABLE IF NOT EXISTS {{local "deployment_events"}}{{onCluster}}
(
    id                  String,
    service             {{lcString}},
    environment         {{lcString}},
    version             String,
    previous_version    String,
    source              {{lcString}},
    status              {{lcString}},
    rollout_start       DateTime('UTC'),
    rollout_start_ns    UInt64,
    deploy_time         DateTime('UTC'),
    deploy_time_ns      UInt64,
    commit_sha          String,
    commit_time         DateTime('UTC'),
    commit_time_ns      UInt64,
    rollback_candidate  UInt8,
    external_id         String,
    pipeline_name       String,
    pipeline_run_id     String,
    superseded_by       String,
    trace_id            FixedString(16),
    span_id             FixedString(8),
    observed_time       DateTime('UTC'),
    ver                 UInt64,
    row_hash            UInt64 DEFAULT cityHash64(id, service, environment, version, previous_version,
                            source, status, rollout_start_ns, deploy_time_ns, commit_sha, commit_time_ns,
                            rollback_candidate, external_id, pipeline_name, pipeline_run_id, superseded_by,
                            trace_id, span_id)
)
ENGINE = {{engine "ReplacingMergeTree" "deployment_events" "ver"}}
ORDER BY (service, environment, id, row_hash);

INSERT INTO {{name "deployment_events"}}
    (id, service, environment, version, previous_version, source, status, rollout_start, rollout_start_ns,
     deploy_time, deploy_time_ns, commit_sha, commit_time, commit_time_ns, rollback_candidate, external_id,
     pipeline_name, pipeline_run_id, superseded_by, trace_id, span_id, observed_time, ver)
SELECT
     id, service, environment, version, previous_version, source, status, rollout_start, rollout_start_ns,
     deploy_time, deploy_time_ns, commit_sha, commit_time, commit_time_ns, rollback_candidate, external_id,
     pipeline_name, pipeline_run_id, superseded_by, trace_id, span_id, observed_time, ver
FROM {{name "deployments"}};
