-- The experiment definitions (schema v16) the worker stored: per id the
-- revision with the highest ver (a ReplacingMergeTree merges eventually;
-- argMax reads the winner without FINAL, on every server). @id = '' reads
-- every experiment.
SELECT
    id,
    argMax(service, ver) AS service,
    argMax(environment, ver) AS environment,
    argMax(definition, ver) AS definition,
    argMax(definition_hash, ver) AS definition_hash,
    argMax(source, ver) AS source,
    toUInt32(argMax(applied_at, ver)) AS applied_at
FROM {db}.experiments
WHERE @id = '' OR id = @id
GROUP BY id
ORDER BY id
