//go:generate mdatagen metadata.yaml

// Package changelensexporter writes the changelens processor's events
// (latency, call and deployment events encoded as spans, see
// internal/eventspan) to ClickHouse. It applies the versioned schema of
// internal/schema at start and enforces retention: see README.md.
package changelensexporter // import "github.com/changelens/changelens/exporter/changelensexporter"
