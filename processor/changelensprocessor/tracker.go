package changelensprocessor

import (
	"container/list"
	"slices"
	"strings"
	"time"
)

// unitKey identifies a deployed unit.
type unitKey struct{ service, environment string }

// observation summarises the entry spans of one unit version that started in
// one time bucket: the earliest and latest start times seen.
type observation struct {
	unit     unitKey
	version  string
	bucket   int64
	min, max int64 // unix nanoseconds
}

type pendingKey struct {
	version string
	bucket  int64
}

type span struct{ min, max int64 }

type versionState struct {
	lastSeen int64
}

// unitState is the inference state of one unit. Observations wait in pending
// until the unit's watermark (newest event time seen) has moved
// allowed_lateness past them; then they are resolved in event-time order, so
// the outcome does not depend on arrival order within that horizon.
type unitState struct {
	key     unitKey
	pending map[pendingKey]span
	// minBucket is a lower bound of the pending buckets: resolution waits
	// until the watermark passes it, so most batches skip scanning pending.
	minBucket int64
	watermark int64 // newest event time observed
	horizon   int64 // event time up to which observations were resolved
	lastWall  time.Time

	hasCurrent bool
	current    string
	versions   map[string]*versionState
	recent     []*deployment // newest last, bounded
}

const maxRecentDeployments = 32

// tracker holds the bounded, LRU-evicted inference state of all units and
// turns observations and explicit deploy spans into deployment events.
type tracker struct {
	reappear    int64
	lateness    int64
	bucket      int64
	mergeWindow int64
	maxUnits    int
	maxVersions int
	inference   bool

	units map[unitKey]*list.Element // of *unitState
	lru   *list.List                // front = most recently used

	touched []*unitState // scratch for observe
}

func newTracker(cfg *Config) *tracker {
	re := int64(cfg.Deployments.Inference.ReappearAfter)
	b := re / 8
	if b <= 0 {
		b = 1
	}
	return &tracker{
		reappear:    re,
		lateness:    int64(cfg.Deployments.Inference.AllowedLateness),
		bucket:      b,
		mergeWindow: int64(cfg.Deployments.MergeWindow),
		maxUnits:    cfg.Deployments.MaxUnits,
		maxVersions: cfg.Deployments.Inference.MaxVersionsPerUnit,
		inference:   cfg.Deployments.Inference.Enabled,
		units:       make(map[unitKey]*list.Element),
		lru:         list.New(),
	}
}

func (t *tracker) unitCount() int { return t.lru.Len() }

// unit returns the state of k, creating it (and evicting the least recently
// used unit, after resolving what it still holds) when needed.
func (t *tracker) unit(k unitKey, out *[]*deployment) *unitState {
	if el, ok := t.units[k]; ok {
		t.lru.MoveToFront(el)
		return el.Value.(*unitState)
	}
	if t.lru.Len() >= t.maxUnits {
		oldest := t.lru.Back()
		u := oldest.Value.(*unitState)
		t.resolve(u, maxInt64, out)
		t.lru.Remove(oldest)
		delete(t.units, u.key)
	}
	// Clone: keys outlive the batch whose memory the strings may point into.
	k = unitKey{strings.Clone(k.service), strings.Clone(k.environment)}
	u := &unitState{key: k, pending: make(map[pendingKey]span), versions: make(map[string]*versionState), horizon: minInt64}
	t.units[k] = t.lru.PushFront(u)
	return u
}

const (
	maxInt64 = int64(^uint64(0) >> 1)
	minInt64 = -maxInt64 - 1
)

// maxPendingPerUnit bounds the observations a unit may hold unresolved; past it
// the oldest are resolved early (a replay of months of data in one batch).
const maxPendingPerUnit = 1 << 14

// observe records observations and resolves what the watermark allows.
func (t *tracker) observe(obs []observation, wall time.Time, out *[]*deployment) {
	if !t.inference {
		return
	}
	touched := t.touched[:0]
	for i := range obs {
		o := &obs[i]
		u := t.unit(o.unit, out)
		u.lastWall = wall
		if o.max > u.watermark {
			u.watermark = o.max
		}
		if o.min < u.horizon {
			t.late(u, o, out)
			continue
		}
		pk := pendingKey{o.version, o.bucket}
		if s, ok := u.pending[pk]; ok {
			u.pending[pk] = span{min(s.min, o.min), max(s.max, o.max)}
		} else {
			if len(u.pending) == 0 || o.bucket < u.minBucket {
				u.minBucket = o.bucket
			}
			pk.version = strings.Clone(pk.version)
			u.pending[pk] = span{o.min, o.max}
		}
		if !slices.Contains(touched, u) {
			touched = append(touched, u)
		}
	}
	for _, u := range touched {
		upTo := u.watermark - t.lateness
		if len(u.pending) > maxPendingPerUnit {
			upTo = t.medianPendingEnd(u)
		} else if (u.minBucket+1)*t.bucket > upTo {
			continue // nothing pending is old enough yet
		}
		t.resolve(u, upTo, out)
	}
	clear(touched)
	t.touched = touched[:0]
}

// medianPendingEnd is a resolution bound that frees about half of u's pending set.
func (t *tracker) medianPendingEnd(u *unitState) int64 {
	bs := make([]int64, 0, len(u.pending))
	for k := range u.pending {
		bs = append(bs, k.bucket)
	}
	slices.Sort(bs)
	return (bs[len(bs)/2] + 1) * t.bucket
}

// flushIdle resolves everything pending for units that received nothing since idleSince.
func (t *tracker) flushIdle(idleSince time.Time, out *[]*deployment) {
	for el := t.lru.Front(); el != nil; el = el.Next() {
		u := el.Value.(*unitState)
		if len(u.pending) > 0 && u.lastWall.Before(idleSince) {
			t.resolve(u, maxInt64, out)
		}
	}
}

// flushAll resolves everything pending (shutdown).
func (t *tracker) flushAll(out *[]*deployment) {
	for el := t.lru.Front(); el != nil; el = el.Next() {
		t.resolve(el.Value.(*unitState), maxInt64, out)
	}
}

// resolve applies, in event-time order, the pending observations whose bucket
// ends at or before upTo.
func (t *tracker) resolve(u *unitState, upTo int64, out *[]*deployment) {
	if len(u.pending) == 0 {
		return
	}
	var ready []observation
	u.minBucket = maxInt64
	for k, s := range u.pending {
		if upTo == maxInt64 || (k.bucket+1)*t.bucket <= upTo {
			ready = append(ready, observation{version: k.version, bucket: k.bucket, min: s.min, max: s.max})
			delete(u.pending, k)
		} else {
			u.minBucket = min(u.minBucket, k.bucket)
		}
	}
	if len(ready) == 0 {
		return
	}
	slices.SortFunc(ready, func(a, b observation) int {
		if a.min != b.min {
			return cmpInt64(a.min, b.min)
		}
		return strings.Compare(a.version, b.version)
	})
	for i := range ready {
		t.apply(u, &ready[i], out)
	}
	if upTo == maxInt64 {
		u.horizon = max(u.horizon, u.watermark+1)
	} else {
		u.horizon = max(u.horizon, upTo)
	}
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// apply advances u's state machine by one observation in event-time order.
//
// The rules (documented in the README):
//   - the first version a unit is ever seen with is its baseline, not a deployment;
//   - a version never seen before is a deployment at its first span;
//   - a version the unit ran before is deployed again (rollback candidate) when
//     it had been absent for at least reappear_after, or when the current version
//     has been absent that long while it kept serving (an aborted rollout);
//   - anything else is the interleaving of a rolling update.
func (t *tracker) apply(u *unitState, o *observation, out *[]*deployment) {
	vs := u.versions[o.version]
	switch {
	case !u.hasCurrent:
		u.hasCurrent, u.current = true, o.version
		vs = t.addVersion(u, o.version)
	case o.version == u.current:
	case vs == nil:
		t.inferred(u, o.version, o.min, false, out)
		vs = t.addVersion(u, o.version)
	default:
		cur := u.versions[u.current]
		if o.min-vs.lastSeen >= t.reappear || (cur != nil && o.min-cur.lastSeen >= t.reappear) {
			t.inferred(u, o.version, o.min, true, out)
		}
	}
	vs.lastSeen = max(vs.lastSeen, o.max)
}

func (t *tracker) addVersion(u *unitState, v string) *versionState {
	if len(u.versions) >= t.maxVersions {
		var oldest string
		first := true
		var oldestSeen int64
		for name, s := range u.versions {
			if name == u.current {
				continue
			}
			if first || s.lastSeen < oldestSeen || (s.lastSeen == oldestSeen && name < oldest) {
				oldest, oldestSeen, first = name, s.lastSeen, false
			}
		}
		delete(u.versions, oldest)
	}
	vs := &versionState{lastSeen: minInt64}
	u.versions[v] = vs
	return vs
}

// inferred records a deployment of version v at event time at, merging it
// into a successful explicit deploy of the same version within merge_window.
func (t *tracker) inferred(u *unitState, v string, at int64, rollback bool, out *[]*deployment) {
	prev := u.current
	u.current = v
	for i := len(u.recent) - 1; i >= 0; i-- {
		e := u.recent[i]
		if e.source == sourceExplicit && e.succeeded && e.version == v && absInt64(e.deployTime-at) <= t.mergeWindow && !e.absorbedInferred {
			e.absorbedInferred = true
			changed := false
			if at < e.rolloutStart {
				e.rolloutStart, changed = at, true
			}
			if e.previousVersion == "" && prev != v {
				e.previousVersion, changed = prev, true
			}
			if rollback && !e.rollbackCandidate {
				e.rollbackCandidate, changed = true, true
			}
			if changed {
				*out = append(*out, e)
			}
			return
		}
	}
	t.emitInferred(u, v, prev, at, rollback, out)
}

// late handles an observation older than what was already resolved: it can
// move the first-seen time of the deployment that introduced its version
// earlier (same ID, re-emitted), or reveal a version never seen at all; it
// never creates a second deployment of a version it already attributed.
func (t *tracker) late(u *unitState, o *observation, out *[]*deployment) {
	if vs := u.versions[o.version]; vs != nil {
		vs.lastSeen = max(vs.lastSeen, o.max)
		for i := len(u.recent) - 1; i >= 0; i-- {
			d := u.recent[i]
			if d.version != o.version || d.source != sourceInferred || d.supersededBy != "" {
				continue
			}
			if o.min < d.rolloutStart && (i == 0 || o.min > u.recent[i-1].deployTime) {
				d.rolloutStart, d.deployTime = o.min, o.min
				*out = append(*out, d)
			}
			break
		}
		return
	}
	if !u.hasCurrent {
		return
	}
	// A version never seen, arriving late: a deployment at its first span, after
	// whatever was deployed before that time.
	prev := u.current
	for i := len(u.recent) - 1; i >= 0; i-- {
		if u.recent[i].deployTime <= o.min {
			prev = u.recent[i].version
			break
		}
	}
	v := strings.Clone(o.version)
	t.addVersion(u, v).lastSeen = o.max
	if u.versions[u.current] == nil || o.min > u.versions[u.current].lastSeen {
		u.current = v
	}
	t.emitInferred(u, v, prev, o.min, false, out)
}

// emitInferred records and emits an inferred deployment of v (replacing prev)
// at event time at.
func (t *tracker) emitInferred(u *unitState, v, prev string, at int64, rollback bool, out *[]*deployment) {
	d := &deployment{
		unit:              u.key,
		version:           v,
		previousVersion:   prev,
		source:            sourceInferred,
		succeeded:         true,
		rolloutStart:      at,
		deployTime:        at,
		rollbackCandidate: rollback,
	}
	d.id = inferredID(u.key, v, prev, at/t.reappear)
	t.remember(u, d)
	*out = append(*out, d)
}

// explicit records a deploy span's deployment and merges it with an inferred
// deployment of the same unit and version within merge_window.
func (t *tracker) explicit(d *deployment, out *[]*deployment) {
	u := t.unit(d.unit, out)
	for _, r := range u.recent {
		if r.id == d.id { // the same deploy span again (retry, second replica)
			*out = append(*out, r)
			return
		}
	}
	if d.previousVersion == "" {
		d.previousVersion = t.versionBefore(u, d)
	}
	if d.succeeded {
		for i := len(u.recent) - 1; i >= 0; i-- {
			r := u.recent[i]
			if r.source == sourceInferred && r.supersededBy == "" && r.version == d.version && absInt64(r.deployTime-d.deployTime) <= t.mergeWindow {
				r.supersededBy = d.id
				d.absorbedInferred = true
				d.rolloutStart = min(d.rolloutStart, r.rolloutStart)
				d.rollbackCandidate = d.rollbackCandidate || r.rollbackCandidate
				if r.previousVersion != "" {
					d.previousVersion = r.previousVersion
				}
				*out = append(*out, r)
				break
			}
		}
		if v := u.versions[d.version]; v != nil && !d.absorbedInferred && d.version != u.current {
			d.rollbackCandidate = true
		}
	}
	t.remember(u, d)
	*out = append(*out, d)
}

// versionBefore is the version unit u ran before deployment d: the one its
// traffic shows, else (a unit without traffic, deployed by CI only) the
// version of its latest successful deployment before d; "" when unknown or
// when that is d's own version.
func (t *tracker) versionBefore(u *unitState, d *deployment) string {
	if u.hasCurrent {
		if u.current != d.version {
			return u.current
		}
		return ""
	}
	for i := len(u.recent) - 1; i >= 0; i-- {
		r := u.recent[i]
		if r.succeeded && r.supersededBy == "" && r.deployTime <= d.deployTime {
			if r.version != d.version {
				return r.version
			}
			return ""
		}
	}
	return ""
}

func (t *tracker) remember(u *unitState, d *deployment) {
	u.recent = append(u.recent, d)
	slices.SortStableFunc(u.recent, func(a, b *deployment) int { return cmpInt64(a.deployTime, b.deployTime) })
	if len(u.recent) > maxRecentDeployments {
		u.recent = slices.Delete(u.recent, 0, len(u.recent)-maxRecentDeployments)
	}
}

func absInt64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}
