package stats

import (
	"container/heap"
	"math"
	"math/rand/v2"
)

// Reservoir keeps a uniform random sample of at most K values from a stream
// of unknown length: Vitter's Algorithm R (Vitter 1985, "Random sampling
// with a reservoir", ACM TOMS 11(1)). The first K values fill the
// reservoir; the i-th value (1-based, i > K) replaces a uniformly chosen
// slot with probability K/i. After n values every value is in the sample
// with probability min(1, K/n).
//
// The random source is a PCG generator seeded from the seed given to
// NewReservoir, so the same seed and input give the same sample. A
// Reservoir is not safe for concurrent use.
type Reservoir struct {
	k     int
	seen  int64
	items []float64
	rng   *rand.Rand
}

// NewReservoir returns an empty reservoir of capacity k seeded with seed.
// It panics if k < 1.
func NewReservoir(k int, seed uint64) *Reservoir {
	if k < 1 {
		panic("stats: reservoir capacity must be at least 1")
	}
	return &Reservoir{k: k, items: make([]float64, 0, min(k, 1024)), rng: newRand(seed)}
}

func newRand(seed uint64) *rand.Rand {
	// The second PCG word is a fixed odd constant so that one seed is
	// enough to reproduce a sample.
	return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
}

// Add offers one value to the reservoir.
func (r *Reservoir) Add(x float64) {
	r.seen++
	if len(r.items) < r.k {
		r.items = append(r.items, x)
		return
	}
	if j := r.rng.Int64N(r.seen); j < int64(r.k) {
		r.items[j] = x
	}
}

// Seen returns how many values have been offered.
func (r *Reservoir) Seen() int64 { return r.seen }

// Cap returns the capacity K.
func (r *Reservoir) Cap() int { return r.k }

// Sample returns a copy of the current sample (in no particular order).
func (r *Reservoir) Sample() []float64 { return append([]float64(nil), r.items...) }

// WeightedReservoir keeps a weighted random sample without replacement of at
// most K values from a stream: Algorithm A-Res of Efraimidis & Spirakis
// (2006, "Weighted random sampling with a reservoir", Information
// Processing Letters 97(5)). Each value with weight w > 0 gets the key
// u^(1/w), u uniform on (0, 1], and the K values with the largest keys are
// kept (here compared as ln(u)/w, which orders identically and does not
// underflow).
//
// The result has the distribution of K successive draws without
// replacement, each picking a remaining value with probability proportional
// to its weight. It is meant for events that carry a sampling weight (an
// event with weight w stands for w requests): a value's chance of entering
// the sample grows with the number of requests it represents, so the sample
// approximates a uniform sample of the represented requests. The
// approximation is close when K is small relative to the total weight and
// no single weight is a large share of it; with K = 1 it is exact (the one
// value is drawn with probability w/W). With all weights equal it is a
// uniform sample without replacement, like Reservoir.
//
// Values with a weight that is not a positive finite number are ignored.
// Seeded like Reservoir; not safe for concurrent use.
type WeightedReservoir struct {
	k           int
	seen        int64
	totalWeight float64
	h           keyHeap
	rng         *rand.Rand
}

// NewWeightedReservoir returns an empty weighted reservoir of capacity k
// seeded with seed. It panics if k < 1.
func NewWeightedReservoir(k int, seed uint64) *WeightedReservoir {
	if k < 1 {
		panic("stats: reservoir capacity must be at least 1")
	}
	return &WeightedReservoir{k: k, h: make(keyHeap, 0, min(k, 1024)), rng: newRand(seed)}
}

// Add offers value x with weight w. It reports whether the value was
// accepted for consideration (w positive and finite).
func (r *WeightedReservoir) Add(x, w float64) bool {
	if !(w > 0) || math.IsInf(w, 1) {
		return false
	}
	r.seen++
	r.totalWeight += w
	u := 1 - r.rng.Float64() // (0, 1]
	key := math.Log(u) / w   // ln(u^(1/w)); larger is better
	if len(r.h) < r.k {
		heap.Push(&r.h, keyed{key: key, x: x, w: w})
		return true
	}
	if key > r.h[0].key {
		r.h[0] = keyed{key: key, x: x, w: w}
		heap.Fix(&r.h, 0)
	}
	return true
}

// Seen returns how many values with a valid weight have been offered.
func (r *WeightedReservoir) Seen() int64 { return r.seen }

// TotalWeight returns the sum of the valid weights offered.
func (r *WeightedReservoir) TotalWeight() float64 { return r.totalWeight }

// Cap returns the capacity K.
func (r *WeightedReservoir) Cap() int { return r.k }

// Sample returns a copy of the sampled values (in no particular order).
func (r *WeightedReservoir) Sample() []float64 {
	out := make([]float64, len(r.h))
	for i, e := range r.h {
		out[i] = e.x
	}
	return out
}

// SampleWithWeights returns the sampled values and their original weights,
// index-aligned (in no particular order).
func (r *WeightedReservoir) SampleWithWeights() (xs, ws []float64) {
	xs = make([]float64, len(r.h))
	ws = make([]float64, len(r.h))
	for i, e := range r.h {
		xs[i], ws[i] = e.x, e.w
	}
	return xs, ws
}

type keyed struct{ key, x, w float64 }

// keyHeap is a min-heap on key: the root is the weakest kept value.
type keyHeap []keyed

func (h keyHeap) Len() int           { return len(h) }
func (h keyHeap) Less(i, j int) bool { return h[i].key < h[j].key }
func (h keyHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *keyHeap) Push(x any)        { *h = append(*h, x.(keyed)) }
func (h *keyHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
