// Package conformance checks that changelens-api answers what its OpenAPI
// document (/openapi.json) says, by running schemathesis against a real
// server on real ClickHouse data (see TestSchemathesis).
package conformance
