package main

import (
	"context"

	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/limits"
	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/usecase"
)

// SourceConfig is what changelens-api hands to the data source.
type SourceConfig struct {
	DSN      string
	Limits   limits.Limits // the same set the server enforces
	Analysis analysis.Config
}

// openSource connects the API to ClickHouse (queryapi/usecase over
// queryapi/store) and returns the
// Source and a function that closes it. It is a variable so tests can start
// the binary's run() on a fake Source.
var openSource = func(ctx context.Context, c SourceConfig) (report.Source, func() error, error) {
	svc, err := usecase.Open(ctx, c.DSN, usecase.Config{Limits: c.Limits, Analysis: c.Analysis})
	if err != nil {
		return nil, nil, err
	}
	return svc, svc.Close, nil
}
