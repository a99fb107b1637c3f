-- changelens schema v16: experiment definitions.
--
-- An experiment is defined up front (docs/experiments.md): the unit, the
-- dimension and its variants, the expected split, the primary metric with
-- its minimum effect of interest, guardrails and a planned duration. The
-- worker holds the writer credential, so it is the one that stores them:
-- from YAML files kept in git (--experiments-dir), validated before a row
-- is written. The API only reads them.
--
-- One row per applied revision: definition is the validated definition as
-- JSON (the API's Experiment message), definition_hash its SHA-256, so a
-- file applied again unchanged writes nothing new; ver (ns of the write)
-- makes the newest revision win for readers, whatever merges did. A
-- definition removed from the directory is not deleted: its results stay
-- readable, and an experiment stops by its own end time.
--
-- distributed: experiments cityHash64(id)
CREATE TABLE IF NOT EXISTS {{local "experiments"}}{{onCluster}}
(
    id               String,
    service          {{lcString}},
    environment      {{lcString}},
    definition       String,
    definition_hash  String,
    source           String,
    applied_at       DateTime('UTC'),
    ver              UInt64
)
ENGINE = {{engine "ReplacingMergeTree" "experiments" "ver"}}
ORDER BY id;
