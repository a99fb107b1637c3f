package schema

import (
	"math"
	"strconv"
)

// The latency histograms of latency_hist_1m / latency_hist_1h (schema v2):
// bucket i holds the durations in [HistMinNs·HistGamma^i,
// HistMinNs·HistGamma^(i+1)) nanoseconds, bucket 0 also everything below
// HistMinNs; a histogram maps bucket index → Σ weight. The bucket's value is
// its geometric middle HistMinNs·HistGamma^(i+0.5), within √HistGamma − 1 ≈
// 1.98 % of every duration in it. The materialized views compute the bucket
// with HistBucketSQL, readers turn buckets back into durations with
// HistValue: both from the constants here.
const (
	HistGamma = 1.04
	HistMinNs = 1000.0
)

// logHistGamma is ln(HistGamma).
var logHistGamma = math.Log(HistGamma)

// HistBucketSQL is the SQL expression of HistBucket over the UInt64 column
// col (what the views store).
func HistBucketSQL(col string) string { return bucketSQL(col, HistMinNs) }

// SizeMinBytes is the lower bound of the body-size histograms of
// cohort_hist_1m (schema v6): the latency layout over bytes, bucket i
// holding [SizeMinBytes·HistGamma^i, SizeMinBytes·HistGamma^(i+1)) bytes
// (empty bodies count in bucket 0).
const SizeMinBytes = 1.0

// SizeBucketSQL is the SQL expression of a body size's bucket over the
// Int64 column col (non-negative where the views use it).
func SizeBucketSQL(col string) string { return bucketSQL(col, SizeMinBytes) }

// SizeValue is the size in bytes that represents size bucket i.
func SizeValue(i uint16) float64 { return HistValue(i) / HistMinNs * SizeMinBytes }

// SizeBucket is the bucket of a size in bytes, as SizeBucketSQL computes it.
func SizeBucket(bytes uint64) uint16 { return bucketOf(float64(bytes), SizeMinBytes) }

func bucketSQL(col string, lowest float64) string {
	lo := strconv.FormatFloat(lowest, 'f', -1, 64)
	return "toUInt16(least(65535, greatest(0, floor(log(greatest(" + col + ", " + lo + ") / " + lo +
		") / log(" + strconv.FormatFloat(HistGamma, 'f', -1, 64) + ")))))"
}

// HistBucket is the bucket of a duration in nanoseconds, as HistBucketSQL
// computes it on the server. (A duration exactly on a bucket boundary may
// land on either side, as floating-point logarithms differ in the last bit;
// either is within the accuracy.)
func HistBucket(durationNs uint64) uint16 { return bucketOf(float64(durationNs), HistMinNs) }

func bucketOf(v, lowest float64) uint16 {
	i := math.Floor(math.Log(math.Max(v, lowest)/lowest) / logHistGamma)
	return uint16(math.Min(65535, math.Max(0, i)))
}

// HistValue is the value in nanoseconds that represents bucket i: its
// geometric middle HistMinNs·HistGamma^(i+0.5).
func HistValue(i uint16) float64 {
	return HistMinNs * math.Exp((float64(i)+0.5)*logHistGamma)
}
