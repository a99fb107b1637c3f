// Package conformance checks that changelens-api answers what its OpenAPI
// document (/openapi.json) says, by running schemathesis against a real
// server on real ClickHouse data, once with auth on and once with auth off:
// the document states security exactly when the server enforces it (see
// TestSchemathesis). schemathesis.toml holds what the document cannot say to
// schemathesis itself: a gate asked with fail_status=true answers a FAIL with
// 412, a documented answer to a valid request.
package conformance
