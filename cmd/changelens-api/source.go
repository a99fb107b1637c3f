package main

import (
	"context"

	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/limits"
	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/store"
)

// SourceConfig is what changelens-api hands to the data source.
type SourceConfig struct {
	DSN      string
	Limits   limits.Limits // the same set the server enforces
	Analysis analysis.Config
}

// openSource connects the API to ClickHouse (queryapi/store) and returns the
// Source and a function that closes it. It is a variable so tests can start
// the binary's run() on a fake Source.
var openSource = func(ctx context.Context, c SourceConfig) (report.Source, func() error, error) {
	st, err := store.Open(ctx, store.Config{
		DSN:      c.DSN,
		Limits:   c.Limits,
		Analysis: c.Analysis,
	})
	if err != nil {
		return nil, nil, err
	}
	return st, st.Close, nil
}
