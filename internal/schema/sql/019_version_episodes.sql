-- changelens schema v19: the settled version episodes, stored by
-- changelens-worker.
--
-- Deployments inferred from traffic depend on every unit's whole history
-- of version episodes (version_presence's five-minute buckets split at
-- gaps of the reappear setting). Read from version_presence that is every
-- bucket of the retained history — 850 000 for a year of eight units, about
-- a second on 18.16 — which a fresh API process paid on its first page.
-- The worker reads it (once per rebuild period) and writes here, per unit,
-- the episodes of the buckets before up_to; the API reads these rows and
-- only the buckets since up_to from version_presence, as its in-memory
-- cache already does.
--
-- One row per unit and snapshot, the unit's episodes as three parallel
-- arrays (versions[k] ran from firsts[k] to lasts[k], span start times in
-- ns). A snapshot's rows share up_to and carry units, the number of units
-- it holds: a reader takes the newest snapshot only once all its rows are
-- visible (a Distributed insert arrives shard by shard), and reads the
-- history itself otherwise. Episodes depend on the reappear setting
-- (reappear_ns): a snapshot serves only readers with the same one. A newer
-- snapshot replaces a unit's older row (up_to is the version column);
-- rows of units a newer snapshot no longer holds stay, and readers skip
-- them by up_to. A few rows per unit: not partitioned, not expired.

-- distributed: version_episodes {{unitKey}}
CREATE TABLE IF NOT EXISTS {{local "version_episodes"}}{{onCluster}}
(
    reappear_ns  Int64,
    service      {{lcString}},
    environment  {{lcString}},
    up_to        DateTime('UTC'),
    units        UInt32,
    versions     Array(String),
    firsts       Array(UInt64),
    lasts        Array(UInt64),
    written_at   DateTime('UTC')
)
ENGINE = {{engine "ReplacingMergeTree" "version_episodes" "up_to"}}
ORDER BY (reappear_ns, service, environment);
