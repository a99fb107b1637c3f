-- Episodes of each (service, environment, version) of the filtered units:
-- maximal runs of the version's five-minute buckets (version_presence, every
-- collector's observations merged) with no gap of @reappear_ns (≥ 5 min) or
-- more between the last span of one bucket and the first of the next. starts[k] and ends[k] are
-- the first and last span start (ns) of episode k. The whole retained
-- history is read: the baseline and the identity of every inferred
-- deployment depend on it, not on the requested range. The store reads it
-- in two parts, the settled buckets [.., @before) once in a while and the
-- recent ones [@since, ..) on every request, and joins them (inferred.go).
-- The previous bucket's last span and the next bucket's first span are
-- shifted copies of the arrays (sentinels at the ends), passed to the
-- lambdas as arguments: a lambda that captured an array would copy it once
-- per element (quadratic memory).
SELECT
    service,
    environment,
    version,
    starts,
    ends
FROM
(
    SELECT
        CAST(service AS String) AS service,
        CAST(environment AS String) AS environment,
        CAST(version AS String) AS version,
        arraySort(groupArray((fmin, lmax))) AS ml,
        arrayMap(t -> tupleElement(t, 1), ml) AS fs,
        arrayMap(t -> tupleElement(t, 2), ml) AS ls,
        arrayFilter((x, p) -> toInt64(x) - toInt64(p) >= @reappear_ns, fs, arrayPushFront(arrayPopBack(ls), toUInt64(0))) AS starts,
        arrayFilter((y, n) -> toInt64(n) - toInt64(y) >= @reappear_ns, ls, arrayPushBack(arrayPopFront(fs), toUInt64(9000000000000000000))) AS ends
    FROM
    (
        SELECT
            service,
            environment,
            version,
            bucket,
            minMerge(first_ns) AS fmin,
            maxMerge(last_ns) AS lmax
        FROM {db}.version_presence
        WHERE 1
{{- if .Service}}
          AND service = @service
{{- end}}
{{- if .Environment}}
          AND environment = @environment
{{- end}}
{{- if .Before}}
          AND bucket < toDateTime(@before)
{{- end}}
{{- if .Since}}
          AND bucket >= toDateTime(@since)
{{- end}}
        GROUP BY service, environment, version, bucket
    ) AS buckets
    GROUP BY service, environment, version
) AS versions
ORDER BY service, environment, version
