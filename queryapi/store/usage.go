package store

import (
	"context"
	"math"
	"slices"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/changelens/changelens/internal/eventspan"
	"github.com/changelens/changelens/queryapi/analysis"
)

// Resource usage (schema v14): resource_usage holds CPU-time and memory
// points per instance as they arrived; ResourceUsage turns them into each
// version's CPU seconds and average memory per bucket, beside its requests
// (latency_hist_1m). Increments of cumulative series are computed here,
// from every stored point: collectors store points, never increments, so
// the answer does not depend on which collector received which point.

// UsageQuery selects a unit's resource usage: [From, To) in buckets of
// Bucket, a whole number of minutes; From and To multiples of Bucket since
// the Unix epoch (so a bucket is the same minutes in every read).
type UsageQuery struct {
	Service, Environment string
	From, To             time.Time
	Bucket               time.Duration
}

// UsagePoint is one version's usage in one bucket.
type UsagePoint = analysis.UsagePoint

// UsageLookback is how far before From the CPU series are read for their
// baseline: a cumulative series' first increment in the range needs its
// last point before it. A series silent for longer before From loses the
// increment up to its first point in the range.
const UsageLookback = time.Hour

// maxUsageRows bounds each of the reads (series × buckets, instances ×
// minutes).
const maxUsageRows = 2_000_000

// ResourceUsage reads q's unit's resource usage per version and bucket
// (sql/usage_sums.sql, usage_gauges.sql, usage_requests.sql), ordered by
// version then time; a bucket appears when the version had requests or
// usage in it. An instance reporting several CPU (memory) metrics is
// measured by the most specific one (eventspan.UsageMetrics' priority), so
// a JVM's jvm.cpu.time beside its process.cpu.time counts once. A database
// before schema v14 reads as no usage.
func (s *Store) ResourceUsage(ctx context.Context, q UsageQuery) ([]UsagePoint, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	step := int64(q.Bucket / time.Second)
	from := q.From.Unix()
	rfrom := from - int64(UsageLookback/time.Second)
	type vb struct {
		version string
		bucket  int64
	}
	acc := map[vb]*UsagePoint{}
	instances := map[vb]map[string]bool{}
	at := func(version string, bucket int64) *UsagePoint {
		k := vb{version, bucket}
		p := acc[k]
		if p == nil {
			p = &UsagePoint{Version: version, Time: time.Unix(bucket, 0).UTC()}
			acc[k] = p
		}
		return p
	}
	seen := func(version string, bucket int64, instance string) {
		k := vb{version, bucket}
		if instances[k] == nil {
			instances[k] = map[string]bool{}
		}
		instances[k][instance] = true
	}

	// CPU: per series, increments between consecutive buckets.
	var sums []sumRow
	err := s.query(ctx, "usage_sums", nil, func(rows driver.Rows) error {
		var r sumRow
		var b uint32
		if err := rows.Scan(&r.version, &r.instance, &r.metric, &r.temporality, &r.start, &b, &r.last, &r.total); err != nil {
			return err
		}
		r.bucket = int64(b)
		sums = append(sums, r)
		return nil
	}, usageArgs(q, step, clickhouse.Named("rfrom", rfrom))...)
	if missingUsage(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(sums) > maxUsageRows {
		return nil, invalid("more than %d resource-usage series buckets: narrow the range or widen the bucket", maxUsageRows)
	}
	best := bestMetrics(len(sums), func(i int) (string, string) { return sums[i].instance, sums[i].metric })
	for _, inc := range cpuIncrements(sums, rfrom*int64(time.Second)) {
		r := sums[inc.row]
		if r.bucket < from || best[r.instance] != r.metric {
			continue
		}
		at(r.version, r.bucket).CPUSeconds += inc.seconds
		seen(r.version, r.bucket, r.instance)
	}

	// Memory: per instance and minute, summed over instances, averaged
	// over the bucket's minutes.
	var gauges []gaugeRow
	err = s.query(ctx, "usage_gauges", nil, func(rows driver.Rows) error {
		var r gaugeRow
		var m uint32
		if err := rows.Scan(&r.version, &r.instance, &r.metric, &m, &r.bytes); err != nil {
			return err
		}
		r.minute = int64(m)
		gauges = append(gauges, r)
		return nil
	}, usageArgs(q, step)...)
	if err != nil {
		return nil, err
	}
	if len(gauges) > maxUsageRows {
		return nil, invalid("more than %d resource-usage instance minutes: narrow the range", maxUsageRows)
	}
	bestMem := bestMetrics(len(gauges), func(i int) (string, string) { return gauges[i].instance, gauges[i].metric })
	type vm struct {
		version string
		minute  int64
	}
	perMinute := map[vm]float64{}
	for _, g := range gauges {
		if bestMem[g.instance] != g.metric {
			continue
		}
		perMinute[vm{g.version, g.minute}] += g.bytes
		seen(g.version, g.minute/step*step, g.instance)
	}
	minutes := map[vb]int{}
	for k, bytes := range perMinute {
		b := vb{k.version, k.minute / step * step}
		at(b.version, b.bucket).MemoryByteAvg += bytes
		minutes[b]++
	}
	for k, n := range minutes {
		acc[k].MemoryByteAvg /= float64(n)
	}

	// Requests.
	err = s.query(ctx, "usage_requests", nil, func(rows driver.Rows) error {
		var (
			version string
			b       uint32
			n       float64
		)
		if err := rows.Scan(&version, &b, &n); err != nil {
			return err
		}
		at(version, int64(b)).Requests += n
		return nil
	}, usageArgs(q, step)...)
	if err != nil {
		return nil, err
	}

	out := make([]UsagePoint, 0, len(acc))
	for k, p := range acc {
		p.Instances = len(instances[k])
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b UsagePoint) int {
		if a.Version != b.Version {
			if a.Version < b.Version {
				return -1
			}
			return 1
		}
		return a.Time.Compare(b.Time)
	})
	return out, nil
}

// Validate checks q as ResourceUsage does (an invalid-argument error).
func (q UsageQuery) Validate() error {
	switch {
	case q.Service == "" || q.Environment == "":
		return invalid("resource usage: service and environment are required")
	case q.Bucket < time.Minute || q.Bucket%time.Minute != 0:
		return invalid("resource usage: bucket %s is not a whole number of minutes", q.Bucket)
	case !q.To.After(q.From):
		return invalid("resource usage: the range is empty")
	case q.From.Unix()%int64(q.Bucket/time.Second) != 0 || q.To.Unix()%int64(q.Bucket/time.Second) != 0 ||
		q.From.Nanosecond() != 0 || q.To.Nanosecond() != 0:
		return invalid("resource usage: from and to must be multiples of the bucket (%s)", q.Bucket)
	}
	return nil
}

func usageArgs(q UsageQuery, step int64, extra ...any) []any {
	return append([]any{
		clickhouse.Named("service", q.Service), clickhouse.Named("environment", q.Environment),
		clickhouse.Named("from", q.From.Unix()), clickhouse.Named("to", q.To.Unix()),
		clickhouse.Named("step", step), clickhouse.Named("limit", maxUsageRows+1),
	}, extra...)
}

// missingUsage reports whether err says the database predates schema v14.
func missingUsage(err error) bool { return missingErrorKinds(err) }

// sumRow is one CPU series' bucket.
type sumRow struct {
	version, instance, metric, temporality string
	start                                  uint64
	bucket                                 int64
	last, total                            float64
}

type increment struct {
	row     int
	seconds float64
}

// cpuIncrements returns each bucket's CPU seconds of rows (ordered by
// series then bucket, as usage_sums.sql reads them). A delta series'
// bucket is the sum of its points. A cumulative series' bucket is its last
// value minus the series' last value before it; the series' first bucket
// counts whole only when the series started in the read (its start time is
// after readFrom, unix ns: everything since the start is in it), else it is
// only the baseline. A fall is a reset that kept the start time: the new
// value is all new.
func cpuIncrements(rows []sumRow, readFrom int64) []increment {
	var out []increment
	for i, r := range rows {
		if r.temporality == eventspan.TemporalityDelta {
			out = append(out, increment{i, r.total})
			continue
		}
		first := i == 0 || !sameSeries(rows[i-1], r)
		switch {
		case first && r.start >= uint64(max(readFrom, 0)) && r.start > 0:
			out = append(out, increment{i, r.last})
		case first:
		case r.last >= rows[i-1].last:
			out = append(out, increment{i, r.last - rows[i-1].last})
		default:
			out = append(out, increment{i, r.last})
		}
	}
	return out
}

func sameSeries(a, b sumRow) bool {
	return a.version == b.version && a.instance == b.instance && a.metric == b.metric &&
		a.temporality == b.temporality && a.start == b.start
}

// bestMetrics maps each instance to its most specific metric among n rows
// (eventspan.UsageMetrics' priority; the name breaks ties).
func bestMetrics(n int, row func(int) (instance, metric string)) map[string]string {
	best := map[string]string{}
	for i := range n {
		inst, m := row(i)
		cur, ok := best[inst]
		if !ok || priority(m) > priority(cur) || (priority(m) == priority(cur) && m < cur) {
			best[inst] = m
		}
	}
	return best
}

func priority(metric string) int {
	if u, ok := eventspan.UsageMetrics[metric]; ok {
		return u.Priority
	}
	return math.MinInt
}

// gaugeRow is one instance's memory metric in one minute.
type gaugeRow struct {
	version, instance, metric string
	minute                    int64
	bytes                     float64
}
