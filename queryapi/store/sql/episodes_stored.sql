-- The episodes of the filtered units in one stored snapshot (schema v19):
-- per unit, versions[k] ran from firsts[k] to lasts[k]. A unit's row may
-- be there twice (two workers, or a retried insert): one is taken.
SELECT
    CAST(service AS String) AS svc,
    CAST(environment AS String) AS env,
    versions,
    firsts,
    lasts
FROM {db}.version_episodes
WHERE reappear_ns = @reappear_ns
  AND up_to = toDateTime(@up_to)
{{- if .Service}}
  AND service = @service
{{- end}}
{{- if .Environment}}
  AND environment = @environment
{{- end}}
LIMIT 1 BY service, environment
