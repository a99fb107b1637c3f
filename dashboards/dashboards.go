// Package dashboards holds changelens's Grafana dashboards (classic dashboard
// JSON, schemaVersion 41) and their provisioning files: an Infinity
// datasource (yesoreyeram-infinity-datasource) pointing at changelens-api and
// a file provider for the JSON. See README.md.
//
// Grafana cannot run in this project's CI, so dashboards_test.go checks them
// instead: it lints every file (uids, panel ids, grid, datasources,
// variables, links, Infinity query shape against the OpenAPI spec) and then
// executes every variable, panel and annotation query, the way Grafana and the
// Infinity backend would, against a live changelens-api over real ClickHouse
// data written by the real processor and exporter.
package dashboards

import "embed"

// Files holds json/*.json (one dashboard each) and provisioning/**.yaml.
//
//go:embed json/*.json provisioning/datasources/*.yaml provisioning/dashboards/*.yaml
var Files embed.FS
