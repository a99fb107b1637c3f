// Package limits is the one set of bounds the query API holds every request
// to (docs/api.md): the server validates requests against them, naming the
// parameter (bounds.go holds the bounds of single values); the use cases
// (queryapi/usecase) hold what a request reads to them — deployments in a
// range, units, groups, series points, page sizes — passing row bounds down
// to the store's queries, which know no limits of their own. A zero field
// takes its default.
package limits

import (
	"cmp"
	"errors"
	"fmt"
	"time"
)

// Limits bound every request.
type Limits struct {
	// QueryTimeout is a request's deadline (504 past it), and so the longest
	// any of its ClickHouse queries may run. Default 30s.
	QueryTimeout time.Duration
	// MaxLatencyRange bounds end − start of latency queries. Default 90 days.
	MaxLatencyRange time.Duration
	// MaxReportRange bounds end − start of deployment and DORA queries.
	// Default 366 days.
	MaxReportRange time.Duration
	// MaxSeriesBuckets bounds the buckets of one latency series
	// (range ÷ step). Default 2000.
	MaxSeriesBuckets int
	// MaxSeriesPoints bounds the points of a grouped latency series
	// (buckets × groups). Default 11000.
	MaxSeriesPoints int
	// MaxGroups bounds the rows of a latency summary. Default 1000.
	MaxGroups int
	// DefaultPageSize and MaxPageSize bound /v1/deployments pages.
	// Defaults 50 and 500.
	DefaultPageSize, MaxPageSize int
	// MaxDeployments bounds the deployments one request reads (a larger
	// range is rejected as too large). Default 50000.
	MaxDeployments int
	// MaxUnits bounds the unit/version rows of /v1/services. Default 10000.
	MaxUnits int
	// MaxIncidents bounds the incidents one request reads (a larger range
	// is rejected as too large). Default 50000.
	MaxIncidents int
}

// MaxCompareRange caps end − start of a same-window comparison whatever
// MaxLatencyRange says: a comparison reads two cohorts a minute, so a week of
// minutes bounds what one request holds in memory.
const MaxCompareRange = 7 * 24 * time.Hour

// CompareRange is the longest range one comparison may cover.
func (l Limits) CompareRange() time.Duration { return min(l.MaxLatencyRange, MaxCompareRange) }

// Default returns the defaults.
func Default() Limits {
	return Limits{
		QueryTimeout:     30 * time.Second,
		MaxLatencyRange:  90 * 24 * time.Hour,
		MaxReportRange:   366 * 24 * time.Hour,
		MaxSeriesBuckets: 2000,
		MaxSeriesPoints:  11000,
		MaxGroups:        1000,
		DefaultPageSize:  50,
		MaxPageSize:      500,
		MaxDeployments:   50000,
		MaxUnits:         10000,
		MaxIncidents:     50000,
	}
}

// WithDefaults fills the zero fields.
func (l Limits) WithDefaults() Limits {
	d := Default()
	l.QueryTimeout = cmp.Or(l.QueryTimeout, d.QueryTimeout)
	l.MaxLatencyRange = cmp.Or(l.MaxLatencyRange, d.MaxLatencyRange)
	l.MaxReportRange = cmp.Or(l.MaxReportRange, d.MaxReportRange)
	l.MaxSeriesBuckets = cmp.Or(l.MaxSeriesBuckets, d.MaxSeriesBuckets)
	l.MaxSeriesPoints = cmp.Or(l.MaxSeriesPoints, d.MaxSeriesPoints)
	l.MaxGroups = cmp.Or(l.MaxGroups, d.MaxGroups)
	l.MaxPageSize = cmp.Or(l.MaxPageSize, d.MaxPageSize)
	l.DefaultPageSize = cmp.Or(l.DefaultPageSize, min(d.DefaultPageSize, l.MaxPageSize))
	l.MaxDeployments = cmp.Or(l.MaxDeployments, d.MaxDeployments)
	l.MaxUnits = cmp.Or(l.MaxUnits, d.MaxUnits)
	l.MaxIncidents = cmp.Or(l.MaxIncidents, d.MaxIncidents)
	return l
}

// Validate checks filled limits; messages name the field.
func (l Limits) Validate() error {
	var errs []error
	for name, v := range map[string]time.Duration{"QueryTimeout": l.QueryTimeout, "MaxLatencyRange": l.MaxLatencyRange, "MaxReportRange": l.MaxReportRange} {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("limits: %s must be positive, got %s", name, v))
		}
	}
	for name, v := range map[string]int{"MaxSeriesBuckets": l.MaxSeriesBuckets, "MaxSeriesPoints": l.MaxSeriesPoints, "MaxGroups": l.MaxGroups,
		"DefaultPageSize": l.DefaultPageSize, "MaxPageSize": l.MaxPageSize, "MaxDeployments": l.MaxDeployments, "MaxUnits": l.MaxUnits,
		"MaxIncidents": l.MaxIncidents} {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("limits: %s must be positive, got %d", name, v))
		}
	}
	if l.DefaultPageSize > l.MaxPageSize {
		errs = append(errs, fmt.Errorf("limits: DefaultPageSize %d exceeds MaxPageSize %d", l.DefaultPageSize, l.MaxPageSize))
	}
	if l.MaxSeriesPoints < l.MaxSeriesBuckets {
		errs = append(errs, fmt.Errorf("limits: MaxSeriesPoints %d is below MaxSeriesBuckets %d", l.MaxSeriesPoints, l.MaxSeriesBuckets))
	}
	return errors.Join(errs...)
}
