-- The pushed commits (commit_events, schema v11) that may be the commits
-- deployments named without a time: of the services @commit_services, with
-- an ID beginning with one of @commit_prefixes (the first 7 hexadecimal
-- digits of each named commit, lower case). Which commit a deployment named
-- — equal, or the one its abbreviation begins — is decided in Go
-- (store.FillCommitTimes), where the fake store decides it too. One row per
-- (service, sha): its earliest push, the row with the greatest (ver,
-- row_hash), whatever merges have done. The services narrow the primary
-- key (service, sha); substring, not startsWith: 18.16.
SELECT
    CAST(service AS String) AS c_service,
    sha,
    argMax(commit_time_ns, (ver, row_hash)) AS c_commit_time_ns
FROM {db}.commit_events
WHERE service IN @commit_services
  AND has(@commit_prefixes, substring(sha, 1, 7))
GROUP BY service, sha
