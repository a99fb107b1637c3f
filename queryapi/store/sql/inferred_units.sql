-- The units whose traffic shows versions (candidates for an inferred
-- deployment ID's unit prefix).
SELECT DISTINCT
    CAST(service AS String) AS service,
    CAST(environment AS String) AS environment
FROM {db}.version_presence
