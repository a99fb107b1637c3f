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
func HistBucketSQL(col string) string {
	minNs := strconv.FormatFloat(HistMinNs, 'f', -1, 64)
	return "toUInt16(least(65535, greatest(0, floor(log(greatest(" + col + ", " + minNs + ") / " + minNs +
		") / log(" + strconv.FormatFloat(HistGamma, 'f', -1, 64) + ")))))"
}

// HistBucket is the bucket of a duration in nanoseconds, as HistBucketSQL
// computes it on the server. (A duration exactly on a bucket boundary may
// land on either side, as floating-point logarithms differ in the last bit;
// either is within the accuracy.)
func HistBucket(durationNs uint64) uint16 {
	d := math.Max(float64(durationNs), HistMinNs)
	i := math.Floor(math.Log(d/HistMinNs) / logHistGamma)
	return uint16(math.Min(65535, math.Max(0, i)))
}

// HistValue is the value in nanoseconds that represents bucket i: its
// geometric middle HistMinNs·HistGamma^(i+0.5).
func HistValue(i uint16) float64 {
	return HistMinNs * math.Exp((float64(i)+0.5)*logHistGamma)
}
