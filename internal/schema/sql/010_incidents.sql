-- changelens schema v10: incidents, DORA's change failures that latency
-- never shows (a data-loss bug, a broken button a customer reported).
--
-- incident_events holds one row per incident event (internal/eventspan): an
-- incident as it affects one unit, from the source that reported it
-- (pagerduty, alertmanager, cdevents, otlp). A source reports an incident
-- opening and, later, its resolution: both rows share (service,
-- environment, id), and the resolution replaces the opening. ver puts a
-- resolved row above an open one, so a late replay of the opening never
-- re-opens an incident; readers take per key the row with the greatest
-- (ver, resolved_time_ns, row_hash), as for deployment_events, since merges
-- are eventual. Replays of one delivery are identical rows of one key and
-- collapse. The opened time is the same in every report of an incident,
-- which keeps both rows in one partition, where merges can collapse them.
--
-- Partitioned by day of opening and expired with the raw tables: an
-- incident only matters next to the deployments and traffic of its time.

-- distributed: incident_events {{unitKey}}
CREATE TABLE IF NOT EXISTS {{local "incident_events"}}{{onCluster}}
(
    id                String,
    service           {{lcString}},
    environment       {{lcString}},
    source            {{lcString}},
    status            {{lcString}},
    severity          {{lcString}},
    title             String,
    deployment_id     String,
    opened_time       DateTime('UTC'),
    opened_time_ns    UInt64,
    resolved_time_ns  UInt64,
    trace_id          FixedString(16),
    span_id           FixedString(8),
    observed_time     DateTime('UTC'),
    ver               UInt64,
    row_hash          UInt64 DEFAULT cityHash64(id, service, environment, source, status, severity, title,
                          deployment_id, opened_time_ns, resolved_time_ns)
)
ENGINE = {{engine "ReplacingMergeTree" "incident_events" "ver"}}
PARTITION BY toYYYYMMDD(opened_time)
ORDER BY (service, environment, id)
{{ttl "opened_time"}}
SETTINGS index_granularity = 8192;
