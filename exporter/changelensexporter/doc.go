//go:generate mdatagen metadata.yaml

// Package changelensexporter writes the changelens processor's events
// (latency and deployment events encoded as spans, see internal/eventspan)
// to ClickHouse. It owns the ClickHouse schema: see README.md.
package changelensexporter // import "github.com/changelens/changelens/exporter/changelensexporter"
