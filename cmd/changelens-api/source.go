package main

import (
	"context"
	"errors"

	"github.com/changelens/changelens/queryapi/report"
)

// SourceConfig is what changelens-api hands to the data source.
type SourceConfig struct {
	DSN      string
	Analysis Analysis
}

// openSource connects the API to its data and returns the Source and a
// function that closes it. It is a variable so tests can start the binary's
// run() on a fake Source.
//
// TODO(store): wire queryapi/store in once it lands — the only edit needed:
//
//	st, err := store.Open(ctx, store.Config{
//		DSN: c.DSN,
//		// analysis parameters from c.Analysis: BeforeWindow, AfterGap,
//		// AfterWindow, MinRequests, LatencyRatio, Alpha,
//		// ErrorRateMinDelta, ErrorRateMinRatio
//	})
//	if err != nil {
//		return nil, nil, err
//	}
//	return st, st.Close, nil
var openSource = func(ctx context.Context, c SourceConfig) (report.Source, func() error, error) {
	return nil, nil, errors.New("no data source compiled in: queryapi/store is not wired into cmd/changelens-api/source.go yet")
}
