// Package openapiv2 embeds the OpenAPI v2 spec that protoc-gen-openapiv2
// generates from queryapi/proto (`make proto`); changelens-api serves it at
// /openapi.json.
package openapiv2

import _ "embed"

// QueryServiceJSON is changelens/v1/query.swagger.json.
//
//go:embed changelens/v1/query.swagger.json
var QueryServiceJSON []byte
