// Package fakestore is an in-memory stand-in for queryapi/store: it
// implements usecase.Storage from rows a test adds, so the use cases —
// timelines, judging, stored verdicts, the gate, comparisons, the caches —
// run in milliseconds without ClickHouse.
//
// It mirrors the store's contract, not its SQL: the same row types, the
// same ranges (a minute belongs to [from, to) when its start does), the same
// orders and limits (*report.InvalidArgumentError past them), the same
// five-minute buckets of version presence. Everything is derived from two
// kinds of rows, as in the tables: per-minute traffic (Minute: what
// latency_hist_1m, version_presence and cohort_hist_1m hold) and CI
// deployments (what deployment_events holds), plus incidents (what
// incident_events holds), pushed commits (what commit_events holds),
// resource usage points (what resource_usage holds), calls between units,
// stored verdicts, evidence and episode snapshots, exemplar traces, and the
// raw rows the client reads need (client units' latency events with
// sessions and users, outcome events: client.go). What only the SQL
// decides — argMax over duplicate rows, sampling of the graph, body sizes, the hourly
// table — is left to the store's own tests on ClickHouse.
//
// Reads counts every call per method (cache tests assert what was read);
// SetError makes a method fail.
package fakestore

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/changelens/changelens/internal/eventspan"
	"github.com/changelens/changelens/internal/schema"
	"github.com/changelens/changelens/internal/stats"
	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/store"
)

// Minute is one unit's traffic of one version and operation in one minute,
// optionally of one cohort of other dimensions (a feature flag's variant, an
// attribute's value). Several Minutes may share a key: they add up.
type Minute struct {
	Service, Environment, Version, Operation string
	Minute                                   time.Time // truncated to the minute when added
	// Requests and Errors are weighted counts; Samples the stored events;
	// DurationMs the weighted sum of durations.
	Requests, Errors, Samples, DurationMs float64
	// Hist is the latency histogram: schema.HistBucket(ns) → weight.
	Hist map[uint16]float64
	// Cohorts maps a dimension ("feature_flag.<key>", "attribute.<name>")
	// to this traffic's value of it.
	Cohorts map[string]string
	// First and Last are the start times of its earliest and latest request
	// (version presence, hence inferred deployment times); zero: the
	// minute's start.
	First, Last time.Time
	// ErrorKinds are the error kinds of its failed requests (what
	// error_kinds_1m holds, schema v13); several may share a kind.
	ErrorKinds []ErrorKind
}

// ErrorKind is one error kind of a Minute's failed requests: their weighted
// count and the first one's time and trace (hex).
type ErrorKind struct {
	Kind         string
	Count        float64
	First        time.Time // zero: the minute's start
	FirstTraceID string
}

// Observe adds one request of the given latency (failed or not), weight 1.
func (m *Minute) Observe(latency time.Duration, failed bool) {
	m.ObserveSpan(time.Time{}, latency, failed, 1)
}

// ObserveSpan adds one stored request that started at start (zero: not
// tracked) and stands for weight requests (a sampled span's weight).
func (m *Minute) ObserveSpan(start time.Time, latency time.Duration, failed bool, weight float64) {
	if m.Hist == nil {
		m.Hist = map[uint16]float64{}
	}
	m.Requests += weight
	m.Samples++
	if failed {
		m.Errors += weight
	}
	m.DurationMs += weight * float64(latency) / float64(time.Millisecond)
	m.Hist[schema.HistBucket(uint64(latency))] += weight
	if !start.IsZero() {
		if m.First.IsZero() || start.Before(m.First) {
			m.First = start
		}
		if start.After(m.Last) {
			m.Last = start
		}
	}
}

// Call is the calls from one unit (Service, Environment) to a callee in one
// minute, as the caller timed them; CalleeEnvironment "" is an
// uninstrumented peer.
type Call struct {
	Service, Environment      string
	Callee, CalleeEnvironment string
	Minute                    time.Time
	Calls, Errors, DurationMs float64
}

type deployment struct {
	row          analysis.Row
	supersededBy string
}

type exemplarKey struct{ service, environment, dimension, cohort string }

// Store is the in-memory storage. The zero value is not usable: use New. It
// is safe for concurrent use (the use cases read in parallel).
type Store struct {
	mu          sync.Mutex
	minutes     []Minute
	calls       []Call
	deployments map[string]*deployment
	incidents   map[incidentKey]report.Incident
	commits     map[commitKey]store.Commit
	evidence    map[string]map[string]store.Evidence      // config hash → id → evidence
	verdicts    map[string]map[string]store.StoredVerdict // config hash → id →
	exemplars   map[exemplarKey]store.Exemplars
	experiments map[string]store.StoredExperiment
	snapshots   map[time.Duration]episodeSnapshot // reappear → the newest stored
	usage       map[usageKey]eventspan.UsagePoint // resource_usage (schema v14)
	// client units' events and outcome events (schema v15, client.go)
	clientEvents []ClientEvent
	outcomes     []Outcome
	reads        map[string]int
	errs         map[string]error
	closed       bool
}

// New returns an empty Store.
func New() *Store {
	return &Store{deployments: map[string]*deployment{}, incidents: map[incidentKey]report.Incident{}, commits: map[commitKey]store.Commit{},
		verdicts:  map[string]map[string]store.StoredVerdict{},
		evidence:  map[string]map[string]store.Evidence{},
		exemplars: map[exemplarKey]store.Exemplars{}, experiments: map[string]store.StoredExperiment{},
		snapshots: map[time.Duration]episodeSnapshot{}, reads: map[string]int{}, errs: map[string]error{}}
}

// AddTraffic adds per-minute traffic.
func (s *Store) AddTraffic(ms ...Minute) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range ms {
		m.Minute = m.Minute.Truncate(time.Minute).UTC()
		m.Hist = maps.Clone(m.Hist)
		m.Cohorts = maps.Clone(m.Cohorts)
		m.ErrorKinds = slices.Clone(m.ErrorKinds)
		s.minutes = append(s.minutes, m)
	}
}

// AddCalls adds calls between units.
func (s *Store) AddCalls(cs ...Call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range cs {
		c.Minute = c.Minute.Truncate(time.Minute).UTC()
		s.calls = append(s.calls, c)
	}
}

// AddDeployment adds (or replaces, by ID) a CI deployment row. A zero
// RolloutStart is the deploy time.
func (s *Store) AddDeployment(r analysis.Row) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.RolloutStart.IsZero() || r.RolloutStart.After(r.DeployTime) {
		r.RolloutStart = r.DeployTime
	}
	if r.Source == 0 {
		r.Source = report.SourceExplicit
	}
	s.deployments[r.ID] = &deployment{row: r}
}

// Supersede marks deployment id superseded by another (superseded_by).
func (s *Store) Supersede(id, by string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d, ok := s.deployments[id]; ok {
		d.supersededBy = by
	}
}

// PutVerdict stores a verdict of deployment id judged with configHash, as
// changelens-worker does.
func (s *Store) PutVerdict(configHash, id string, v store.StoredVerdict) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.verdicts[configHash] == nil {
		s.verdicts[configHash] = map[string]store.StoredVerdict{}
	}
	s.verdicts[configHash][id] = v
}

// PutEvidence stores a deployment's impact evidence under configHash, as
// changelens-worker does.
func (s *Store) PutEvidence(configHash, id string, e store.Evidence) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.evidence[configHash] == nil {
		s.evidence[configHash] = map[string]store.Evidence{}
	}
	s.evidence[configHash][id] = e
}

// episodeSnapshot is a stored snapshot of settled episodes (schema v19).
type episodeSnapshot struct {
	upTo  time.Time
	units map[store.UnitFilter]store.UnitEpisodes
}

// PutEpisodes stores a snapshot of settled episodes as changelens-worker
// does (the episodes of the buckets before upTo, split at gaps of
// reappear); a later snapshot replaces it.
func (s *Store) PutEpisodes(reappear time.Duration, upTo time.Time, units map[store.UnitFilter]store.UnitEpisodes) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snapshots[reappear] = episodeSnapshot{upTo: upTo, units: cloneUnits(units)}
}

// StoredEpisodes returns the snapshot PutEpisodes stored for reappear,
// restricted to the units of f.
func (s *Store) StoredEpisodes(ctx context.Context, f store.UnitFilter, reappear time.Duration) (time.Time, map[store.UnitFilter]store.UnitEpisodes, bool, error) {
	defer s.mu.Unlock()
	if err := s.begin(ctx, "StoredEpisodes"); err != nil {
		return time.Time{}, nil, false, err
	}
	snap, ok := s.snapshots[reappear]
	if !ok {
		return time.Time{}, nil, false, nil
	}
	out := map[store.UnitFilter]store.UnitEpisodes{}
	for u, eps := range cloneUnits(snap.units) {
		if matches(f, u.Service, u.Environment) {
			out[u] = eps
		}
	}
	return snap.upTo, out, true, nil
}

func cloneUnits(units map[store.UnitFilter]store.UnitEpisodes) map[store.UnitFilter]store.UnitEpisodes {
	out := make(map[store.UnitFilter]store.UnitEpisodes, len(units))
	for u, eps := range units {
		c := make(store.UnitEpisodes, len(eps))
		for v, e := range eps {
			c[v] = slices.Clone(e)
		}
		out[u] = c
	}
	return out
}

// SetExemplars sets the exemplar traces of one cohort of a unit's dimension
// ("" or "version" for versions).
func (s *Store) SetExemplars(service, environment, dimension, cohort string, e store.Exemplars) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.exemplars[exemplarKey{service, environment, versionDim(dimension), cohort}] = e
}

// SetError makes every call of method (e.g. "OperationWindows") fail with
// err; nil clears it.
func (s *Store) SetError(method string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs[method] = err
}

// Reads is how many times method was called.
func (s *Store) Reads(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads[method]
}

// ResetReads sets every read count to zero.
func (s *Store) ResetReads() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.reads)
}

// Closed reports whether Close was called.
func (s *Store) Closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// begin locks the store and counts a read of method; the caller unlocks.
func (s *Store) begin(ctx context.Context, method string) error {
	s.mu.Lock()
	s.reads[method]++
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("fakestore: %s: %w", method, err)
	}
	return s.errs[method]
}

func invalid(format string, args ...any) error {
	return &report.InvalidArgumentError{Reason: fmt.Sprintf(format, args...)}
}

// in reports whether minute m lies in [from, to) (zero bounds: open).
func in(m, from, to time.Time) bool {
	return (from.IsZero() || !m.Before(from)) && (to.IsZero() || m.Before(to))
}

// minuteFrom is the first minute start at or after t: a minute belongs to a
// range when its start does.
func minuteFrom(t time.Time) time.Time {
	m := t.Truncate(time.Minute)
	if m.Before(t) {
		m = m.Add(time.Minute)
	}
	return m
}

func unitOf(m Minute) analysis.UnitKey {
	return analysis.UnitKey{Service: m.Service, Environment: m.Environment}
}

func versionDim(d string) string {
	if d == "" {
		return schema.DimensionVersion
	}
	return d
}

// hist accumulates histograms and counts.
type hist struct {
	requests, errors, samples, durationMs float64
	h                                     map[uint16]float64
}

func (a *hist) add(m Minute) {
	a.requests += m.Requests
	a.errors += m.Errors
	a.samples += m.Samples
	a.durationMs += m.DurationMs
	if a.h == nil {
		a.h = map[uint16]float64{}
	}
	for k, w := range m.Hist {
		a.h[k] += w
	}
}

// arrays are the histogram as sumMap returns it: keys ascending.
func (a *hist) arrays() ([]uint16, []float64) {
	keys := slices.Sorted(maps.Keys(a.h))
	weights := make([]float64, len(keys))
	for i, k := range keys {
		weights[i] = a.h[k]
	}
	return keys, weights
}

var percentileLevels = []float64{0.5, 0.9, 0.95, 0.99}

// percentilesMs are computed as the store computes them from a merged
// histogram (zeros when empty).
func percentilesMs(keys []uint16, weights []float64) (p50, p90, p95, p99 float64) {
	q, ok := stats.BucketQuantiles(keys, weights, percentileLevels, schema.HistValue)
	if !ok {
		return 0, 0, 0, 0
	}
	return q[0] / 1e6, q[1] / 1e6, q[2] / 1e6, q[3] / 1e6
}

// Ping answers nil unless SetError("Ping", …).
func (s *Store) Ping(ctx context.Context) error {
	defer s.mu.Unlock()
	return s.begin(ctx, "Ping")
}

// Close marks the store closed.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}
