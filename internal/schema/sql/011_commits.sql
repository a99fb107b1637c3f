-- changelens schema v11: commits, the start of DORA's lead time for
-- deployments whose source names the deployed commit but not its time (a
-- GitHub deployment_status carries deployment.sha only).
--
-- commit_events holds one row per commit event (internal/eventspan): a
-- commit of a repository, mapped to a service, as a push (GitHub's push
-- webhook) carried it. commit_time is the commit's own timestamp, the same
-- in every push that carries the commit; pushed_time_ns the push's. A
-- commit reaches GitHub in several pushes (a feature branch, then main),
-- each a row of the same (service, sha): ver puts the earliest push first,
-- and readers take per key the row with the greatest (ver, row_hash), as
-- for deployment_events, since merges are eventual. Replays of one delivery
-- are identical rows and collapse. Every row of a commit has its
-- commit_time, which keeps them in one partition, where merges can
-- collapse them.
--
-- Partitioned by day of the commit's time and expired with the raw tables:
-- a deployment's lead time needs the commit only while the deployment is
-- recent. Sharded by (service, sha), so the rows of one commit meet on one
-- shard.

-- distributed: commit_events cityHash64(service, sha)
CREATE TABLE IF NOT EXISTS {{local "commit_events"}}{{onCluster}}
(
    service         {{lcString}},
    repository      {{lcString}},
    sha             String,
    commit_time     DateTime('UTC'),
    commit_time_ns  UInt64,
    pushed_time_ns  UInt64,
    ref             String,
    trace_id        FixedString(16),
    span_id         FixedString(8),
    observed_time   DateTime('UTC'),
    ver             UInt64,
    row_hash        UInt64 DEFAULT cityHash64(service, repository, sha, commit_time_ns, pushed_time_ns, ref)
)
ENGINE = {{engine "ReplacingMergeTree" "commit_events" "ver"}}
PARTITION BY toYYYYMMDD(commit_time)
ORDER BY (service, sha)
{{ttl "commit_time"}}
SETTINGS index_granularity = 8192;
