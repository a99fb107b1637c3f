// Package loadtest measures the built query API (bin/changelens-api) under
// concurrent clients on realistic data: BenchmarkAPILoad loads a week of
// traffic through the real processor and exporter into a real ClickHouse,
// starts the binary as a subprocess and prints, per heavy endpoint and
// client count, status codes, latency, throughput, the liveness probe's
// latency and the API's peak memory. It asserts no timings: the table is
// for comparing builds (CHANGELENS_LOAD_API_BIN measures another binary the
// same way). Run it with `make bench`, or alone:
//
//	make build && CHTEST_ENGINE=clickhouse-server CHTEST_EXPECT_VERSION=18.16. \
//	  go test -run '^$' -bench APILoad -benchtime 1x -timeout 30m ./loadtest/
//
// Every endpoint is measured in two modes: "distinct" requests (each one's
// range a minute further back, so none is identical to another in flight
// and each costs its own query — though ranges that overlap, as a
// dashboard's refreshes and scrolls do, may share cached parts, such as the
// settled buckets of a latency series) and the "same" request from every
// client, as the viewers of one dashboard send it (which a server may
// answer from one shared query and one shared encoding).
//
// Knobs (environment): CHANGELENS_LOAD_DURATION (per cell, default 10s),
// CHANGELENS_LOAD_CLIENTS (default "1,10,50,200"), CHANGELENS_LOAD_ENDPOINTS
// (subset of "latency,dora,deployments,compare"), CHANGELENS_LOAD_MODES
// ("distinct,same"), CHANGELENS_LOAD_DAYS (default 7) and
// CHANGELENS_LOAD_PER_MINUTE (requests per minute per service, default 120).
package loadtest
