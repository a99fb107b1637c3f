package usecase

import (
	"context"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/changelens/changelens/queryapi/report"
)

// A latency series' buckets are aligned to multiples of the step since the
// epoch, so the same bucket appears in every request that covers it whole:
// a dashboard refreshing "the last 7 days" every 30 s, or a panel scrolled
// by a few minutes, asks again for thousands of buckets of which only the
// edges are new. seriesCache keeps the points of whole buckets that ended
// at least SeriesSettle ago (late spans have arrived by then) for
// SeriesTTL (back-fills are seen within it), and a request reads from
// ClickHouse only the buckets around the longest cached run — the cost of
// a few buckets instead of the whole range. Partial buckets at a request's
// edges are never cached: they depend on the range, not only on the bucket.

// seriesKey is one bucket of one series.
type seriesKey struct {
	service, environment, operation, version string
	group                                    report.GroupBy
	step                                     time.Duration
	bucket                                   int64 // Unix seconds
}

// seriesBucket holds one bucket's points (none: the bucket had no
// requests) and when they were read.
type seriesBucket struct {
	points []report.LatencyPoint
	read   time.Time
}

// minCachedRun is the fewest cached buckets worth splitting a query for:
// below it one query over the range costs less than two around the run.
const minCachedRun = 16

func keyOf(q report.LatencyQuery, bucket int64) seriesKey {
	return seriesKey{q.Service, q.Environment, q.Operation, q.Version, q.GroupBy, q.Step, bucket}
}

// seriesPoints answers a (validated) series request through the bucket
// cache.
func (s *Service) seriesPoints(ctx context.Context, q report.LatencyQuery) ([]report.LatencyPoint, error) {
	limit := s.cfg.Limits.MaxSeriesPoints
	if s.series == nil {
		return s.st.LatencyPoints(ctx, q, true, limit)
	}
	step := int64(q.Step / time.Second)
	from, to := ceilUnix(q.Start), ceilUnix(q.End)
	now := s.cfg.Now()
	// Whole buckets [first, end): starting at or after from, ending by to
	// and settled.
	first := (from + step - 1) / step * step
	end := min(to, now.Add(-s.cfg.SeriesSettle).Unix()) / step * step
	if end-first < minCachedRun*step {
		return s.st.LatencyPoints(ctx, q, true, limit)
	}

	// The longest run of cached buckets, fresh enough.
	n := int((end - first) / step)
	hit := make([][]report.LatencyPoint, n)
	runStart, runLen, curStart := 0, 0, 0
	for i := range n {
		b, ok := s.series.get(keyOf(q, first+int64(i)*step))
		if !ok || now.Sub(b.read) > s.cfg.SeriesTTL {
			curStart = i + 1
			continue
		}
		hit[i] = b.points
		if i+1-curStart > runLen {
			runStart, runLen = curStart, i+1-curStart
		}
	}
	var head, tail []report.LatencyPoint
	if runLen < minCachedRun {
		pts, err := s.st.LatencyPoints(ctx, q, true, limit)
		if err != nil {
			return nil, err
		}
		s.storeBuckets(q, pts, first, end, now)
		return pts, nil
	}
	runFrom := time.Unix(first+int64(runStart)*step, 0).UTC()
	runTo := time.Unix(first+int64(runStart+runLen)*step, 0).UTC()
	g, gctx := errgroup.WithContext(ctx)
	if q.Start.Before(runFrom) {
		g.Go(func() (err error) {
			hq := q
			hq.End = runFrom
			head, err = s.st.LatencyPoints(gctx, hq, true, limit)
			return err
		})
	}
	if runTo.Before(q.End) {
		g.Go(func() (err error) {
			tq := q
			tq.Start = runTo
			tail, err = s.st.LatencyPoints(gctx, tq, true, limit)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := make([]report.LatencyPoint, 0, len(head)+len(tail)+runLen*2)
	out = append(out, head...)
	for _, pts := range hit[runStart : runStart+runLen] {
		out = append(out, pts...)
	}
	out = append(out, tail...)
	if len(out) > limit {
		return nil, invalid("more than %d points: raise step_seconds, narrow the range or filter", limit)
	}
	s.storeBuckets(q, head, first, end, now)
	s.storeBuckets(q, tail, first, end, now)
	return out, nil
}

// storeBuckets caches the whole settled buckets of [first, end) that pts
// (points ordered by time, as the store returns them) covers: every bucket
// between pts' query bounds, the empty ones too.
func (s *Service) storeBuckets(q report.LatencyQuery, pts []report.LatencyPoint, first, end int64, now time.Time) {
	if len(pts) == 0 {
		return // which buckets the query covered is not known here: cache nothing
	}
	step := int64(q.Step / time.Second)
	lo := max(first, pts[0].Time.Unix())
	hi := min(end, pts[len(pts)-1].Time.Unix()+step)
	i := 0
	for b := lo; b < hi; b += step {
		for i < len(pts) && pts[i].Time.Unix() < b {
			i++
		}
		j := i
		for j < len(pts) && pts[j].Time.Unix() == b {
			j++
		}
		s.series.put(keyOf(q, b), seriesBucket{points: slices.Clip(pts[i:j]), read: now})
		i = j
	}
}

func ceilUnix(t time.Time) int64 {
	u := t.Unix()
	if t.Truncate(time.Second).Before(t) {
		u++
	}
	return u
}
