package analysis

import "time"

// UsagePoint is one version's resource usage and requests in one bucket of
// a unit's time (queryapi/store's ResourceUsage): the input of
// CostPerCohort.
type UsagePoint struct {
	Version string
	Time    time.Time // the bucket's start
	// CPUSeconds is the CPU time the version's instances used in the
	// bucket: increments of cumulative CPU-time series plus delta points.
	CPUSeconds float64
	// MemoryByteAvg is the memory the version's instances held, on average
	// over the bucket's minutes that have points (bytes, summed over the
	// instances).
	MemoryByteAvg float64
	// Requests are the version's weighted requests in the bucket.
	Requests float64
	// Instances are the version's instances with resource usage points in
	// the bucket.
	Instances int
}
