package fakestore

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/changelens/changelens/internal/eventspan"
	"github.com/changelens/changelens/queryapi/store"
)

// usageKey is a point's identity in resource_usage (schema v14): a replay
// adds nothing.
type usageKey struct {
	service, environment, metric, instance string
	start, time                            int64
}

// AddUsage adds resource usage points as the exporter stores them (a
// point already held, by identity, is not added again).
func (s *Store) AddUsage(points ...eventspan.UsagePoint) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.usage == nil {
		s.usage = map[usageKey]eventspan.UsagePoint{}
	}
	for _, p := range points {
		if p.Temporality == eventspan.TemporalityGauge {
			p.StartTime = 0
		}
		k := usageKey{p.Service, p.Environment, p.Metric, p.Instance, p.StartTime, p.Time}
		if _, ok := s.usage[k]; !ok {
			s.usage[k] = p
		}
	}
}

// ResourceUsage answers as store.ResourceUsage: per version and bucket the
// CPU seconds (each cumulative series' value at its last point in the
// bucket minus its value at its last point before the bucket, from
// store.UsageLookback before From; a series that started inside that read
// counts from zero; a fall counts the new value; delta points summed), the
// memory (per instance and minute averaged, summed over instances,
// averaged over the bucket's minutes with points), the weighted requests
// and the instances with points; an instance's most specific metric of
// each kind only.
func (s *Store) ResourceUsage(ctx context.Context, q store.UsageQuery) ([]store.UsagePoint, error) {
	defer s.mu.Unlock()
	if err := s.begin(ctx, "ResourceUsage"); err != nil {
		return nil, err
	}
	if err := q.Validate(); err != nil {
		return nil, err
	}
	sec := func(ns int64) int64 { return ns / int64(time.Second) } // the time column's seconds
	step := int64(q.Bucket / time.Second)
	from, to := q.From.Unix(), q.To.Unix()
	rfrom := q.From.Add(-store.UsageLookback).Unix()
	type vb struct {
		version string
		bucket  int64
	}
	acc := map[vb]*store.UsagePoint{}
	instances := map[vb]map[string]bool{}
	at := func(version string, bucket int64) *store.UsagePoint {
		k := vb{version, bucket}
		if acc[k] == nil {
			acc[k] = &store.UsagePoint{Version: version, Time: time.Unix(bucket, 0).UTC()}
			instances[k] = map[string]bool{}
		}
		return acc[k]
	}
	more := func(metric, than string) bool {
		pm, pt := eventspan.UsageMetrics[metric].Priority, eventspan.UsageMetrics[than].Priority
		return pm > pt || (pm == pt && metric < than)
	}

	// CPU: each series' points in time order.
	type series struct {
		version, instance, metric, temporality string
		start                                  int64
	}
	bySeries := map[series][]eventspan.UsagePoint{}
	bestCPU, bestMem := map[string]string{}, map[string]string{}
	var gauges []eventspan.UsagePoint
	for _, p := range s.usage {
		t := sec(p.Time)
		if p.Service != q.Service || p.Environment != q.Environment || t >= to {
			continue
		}
		if p.Temporality == eventspan.TemporalityGauge {
			if t >= from {
				gauges = append(gauges, p)
				if b, ok := bestMem[p.Instance]; !ok || more(p.Metric, b) {
					bestMem[p.Instance] = p.Metric
				}
			}
			continue
		}
		if t < rfrom {
			continue
		}
		k := series{p.Version, p.Instance, p.Metric, p.Temporality, p.StartTime}
		bySeries[k] = append(bySeries[k], p)
		if b, ok := bestCPU[p.Instance]; !ok || more(p.Metric, b) {
			bestCPU[p.Instance] = p.Metric
		}
	}
	for k, ps := range bySeries {
		if bestCPU[k.instance] != k.metric {
			continue
		}
		slices.SortFunc(ps, func(a, b eventspan.UsagePoint) int { return cmp.Compare(a.Time, b.Time) })
		credit := func(bucket int64, v float64) {
			if bucket >= from {
				at(k.version, bucket).CPUSeconds += v
				instances[vb{k.version, bucket}][k.instance] = true
			}
		}
		if k.temporality == eventspan.TemporalityDelta {
			for _, p := range ps {
				credit(sec(p.Time)/step*step, p.Value)
			}
			continue
		}
		// The last point of each bucket, against the last of the bucket before.
		prev, havePrev := 0.0, false
		for i, p := range ps {
			b := sec(p.Time) / step * step
			if i+1 < len(ps) && sec(ps[i+1].Time)/step*step == b {
				continue
			}
			switch {
			case !havePrev && k.start > 0 && k.start >= rfrom*int64(time.Second):
				credit(b, p.Value)
			case !havePrev:
			case p.Value >= prev:
				credit(b, p.Value-prev)
			default:
				credit(b, p.Value)
			}
			prev, havePrev = p.Value, true
		}
	}

	// Memory: per instance and minute averaged, summed, averaged per bucket.
	type im struct {
		version, instance string
		minute            int64
	}
	sums, counts := map[im]float64{}, map[im]int{}
	for _, p := range gauges {
		if bestMem[p.Instance] != p.Metric {
			continue
		}
		k := im{p.Version, p.Instance, sec(p.Time) / 60 * 60}
		sums[k] += p.Value
		counts[k]++
	}
	type vm struct {
		version string
		minute  int64
	}
	perMinute := map[vm]float64{}
	for k, v := range sums {
		perMinute[vm{k.version, k.minute}] += v / float64(counts[k])
		b := k.minute / step * step
		at(k.version, b)
		instances[vb{k.version, b}][k.instance] = true
	}
	minutes := map[vb]int{}
	for k, v := range perMinute {
		b := vb{k.version, k.minute / step * step}
		at(b.version, b.bucket).MemoryByteAvg += v
		minutes[b]++
	}
	for k, n := range minutes {
		acc[k].MemoryByteAvg /= float64(n)
	}

	// Requests.
	for _, m := range s.minutes {
		t := m.Minute.Unix()
		if m.Service == q.Service && m.Environment == q.Environment && t >= from && t < to {
			at(m.Version, t/step*step).Requests += m.Requests
		}
	}

	out := make([]store.UsagePoint, 0, len(acc))
	for k, p := range acc {
		p.Instances = len(instances[k])
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b store.UsagePoint) int {
		return cmp.Or(cmp.Compare(a.Version, b.Version), a.Time.Compare(b.Time))
	})
	return out, nil
}
