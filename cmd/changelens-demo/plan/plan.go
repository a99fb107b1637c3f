// Package plan is the demo's scenario: which services run which versions
// when, the releases (explicit with a CI deploy span or only visible as a
// service.version change), one bad release and its rollback, an error-rate
// regression fixed forward, a latency improvement, a failed deploy, a 5 %
// canary of a slower version that is withdrawn, a 50/50 feature-flag
// experiment, and the request rate and latency/error profile of every
// version.
//
// It is a pure function of its Config: no clock, no I/O, its own seeded
// random streams. The emitter (package main) turns it into spans.
package plan

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sort"
	"time"
)

// Environments.
const (
	Production = "production"
	Staging    = "staging"
)

// RollbackAfter is how long after the bad release (deploy time to deploy
// time) it is rolled back.
const RollbackAfter = 40 * time.Minute

// StagingRateFactor is staging's request rate relative to production.
const StagingRateFactor = 0.2

// MinScenarioPeriod is the shortest period that holds the special releases
// (bad release + rollback, error regression + fix, improvement, failed
// deploy, canary + withdrawal).
const MinScenarioPeriod = 2 * time.Hour

// BadLatencyP95Factor and BadErrorRateIncrease describe the bad release:
// p95 latency ×2.5 (median ×1.5 with a heavier tail) and 4 points more 5xx.
const (
	BadLatencyP95Factor       = 2.5
	badLatencyMedianFactor    = 1.5
	BadErrorRateIncrease      = 0.04
	ErrorRegressionIncrease   = 0.03
	ImprovementLatencyFactor  = 0.7
	z95                       = 1.6448536269514722
	regularJitter             = 0.03
	explicitShare             = 0.7
	specialGuard              = 2 * time.Hour
	minRegularGap             = time.Hour
	defaultLeadMedian         = 6 * time.Hour
	minLead, maxLead          = 20 * time.Minute, 5 * 24 * time.Hour
	workdayStart, workdaySpan = 9 * time.Hour, 9 * time.Hour
)

// The canary: a new storefront version serves CanaryShare of the requests
// next to the stable one, CanaryLatencyFactor slower, for CanaryDuration, and
// is withdrawn canaryBeforeEnd before the end of the backfill, so that a
// comparison over the last hours of a run finds it. Short periods scale both
// down.
const (
	CanaryShare         = 0.05
	CanaryLatencyFactor = 1.5
	CanaryDuration      = 2 * time.Hour
	canaryBeforeEnd     = time.Hour
)

// Kind says what a deployment changes.
type Kind int

const (
	// Regular is an ordinary release: latency and errors as before (±3 %).
	Regular Kind = iota
	// BadRelease is slower (p95 ×2.5) and fails more (+4 points of 5xx); rolled back in production.
	BadRelease
	// Rollback redeploys the version the bad release replaced.
	Rollback
	// ErrorRegression fails more (+3 points of 5xx) at unchanged latency; fixed forward.
	ErrorRegression
	// FixForward is the patch release that fixes the error regression.
	FixForward
	// Improvement makes the service 30 % faster from then on.
	Improvement
	// FailedDeploy is a CI deploy that failed: no version change, retried later.
	FailedDeploy
	// Canary starts a new version that serves only CanaryShare of the
	// requests, next to the version it replaces, which keeps the rest.
	Canary
	// CanaryWithdrawn ends a canary at once: the version it was tried
	// against serves everything again. Nothing is deployed, but the traffic
	// shows a version coming back, so changelens infers a deployment (a
	// rollback by return) at the canary's last request.
	CanaryWithdrawn
)

func (k Kind) String() string {
	switch k {
	case Regular:
		return "regular"
	case BadRelease:
		return "bad-release"
	case Rollback:
		return "rollback"
	case ErrorRegression:
		return "error-regression"
	case FixForward:
		return "fix-forward"
	case Improvement:
		return "improvement"
	case FailedDeploy:
		return "failed-deploy"
	case Canary:
		return "canary"
	case CanaryWithdrawn:
		return "canary-withdrawn"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Restores reports a deployment back to a version the unit ran before.
func (k Kind) Restores() bool { return k == Rollback || k == CanaryWithdrawn }

// UnitKey is a deployed unit: (service.name, deployment.environment.name).
type UnitKey struct {
	Service, Environment string
}

func (u UnitKey) String() string { return u.Service + "/" + u.Environment }

// Deployment is one deploy of a unit.
type Deployment struct {
	UnitKey
	Version, PreviousVersion string
	Kind                     Kind
	// Explicit deployments have a CI/CD deploy span (CIStart..CIEnd);
	// the others are visible only as a service.version change.
	Explicit bool
	// Note is a human remark for the summary ("retry of a failed deploy", …).
	Note string
	// RolloutStart..RolloutEnd is the rolling update: the new version's share of
	// requests rises linearly from 0 to 1 (a canary: to CanaryShare) while the
	// previous one fades out. Zero for a failed deploy; empty for a canary
	// withdrawn, which goes at once.
	RolloutStart, RolloutEnd time.Time
	// CIStart..CIEnd is the deploy span (explicit deployments only).
	CIStart, CIEnd time.Time
	Pipeline       string
	RunID          string
	DeploymentID   string
	// Commit and CommitTime: the revision deployed and when it was committed.
	Commit     string
	CommitTime time.Time
	// Rework is what the deploy span says of it (changelens.deployment.rework):
	// "hotfix" for the first release of a unit after a rollback — the fix
	// of the bad release, shipped from a hotfix branch — else "".
	Rework string
}

// Time is the deployment time as changelens records it: the end of the CI
// deploy span for explicit deployments, the first span of the new version
// (the rollout start) for inferred ones.
func (d Deployment) Time() time.Time {
	if d.Explicit {
		return d.CIEnd
	}
	return d.RolloutStart
}

// LeadTime is Time − CommitTime.
func (d Deployment) LeadTime() time.Duration { return d.Time().Sub(d.CommitTime) }

// Failed reports a deploy that failed (recorded, but not a deployment in DORA terms).
func (d Deployment) Failed() bool { return d.Kind == FailedDeploy }

// Profile is how a version of a service behaves.
type Profile struct {
	// LatencyFactor multiplies every route's median latency.
	LatencyFactor float64
	// ExtraSigma widens the log-normal tail (added to every route's sigma).
	ExtraSigma float64
	// ErrorRate is the probability of a 5xx answer.
	ErrorRate float64
}

// P95Factor is the profile's p95 latency relative to LatencyFactor 1, ExtraSigma 0.
func (p Profile) P95Factor() float64 { return p.LatencyFactor * math.Exp(z95*p.ExtraSigma) }

// Mix is the versions serving a unit at an instant: To with probability
// ToWeight, From otherwise (From is empty outside a rolling update or a
// canary).
type Mix struct {
	From, To string
	ToWeight float64
}

// Pick returns the version for a uniform draw u in [0, 1).
func (m Mix) Pick(u float64) string {
	if m.From != "" && u >= m.ToWeight {
		return m.From
	}
	return m.To
}

// Traffic is a unit's traffic characteristics at an instant.
type Traffic struct {
	// RateFactor multiplies the per-service request rate (--rps): environment
	// share × time of day × weekday.
	RateFactor float64
	Mix        Mix
	// Profiles of Mix.From (zero if none) and Mix.To.
	FromProfile, ToProfile Profile
}

// Config is everything the plan depends on.
type Config struct {
	Seed uint64
	// Start..End is the period emitted as backfill; End is "now" for a live run.
	Start, End time.Time
	// Horizon schedules regular releases past End, for a live run.
	Horizon time.Duration
	// Staging adds a staging environment (StagingRateFactor of the traffic)
	// where every release lands between 30 minutes and 3.5 hours before production.
	Staging bool
}

// Experiment is a feature flag that splits a unit's requests between two
// variants, evaluated in every request (an OpenFeature hook records a
// feature_flag.evaluation span event). The treatment variant changes the
// requests it serves by the factors given.
type Experiment struct {
	Unit               UnitKey
	Key, Provider      string
	Control, Treatment string
	// TreatmentShare is the probability that a request gets Treatment.
	TreatmentShare float64
	// LatencyFactor multiplies the latency of treated requests,
	// ResponseSizeFactor their response bodies; ErrorRateIncrease is added
	// to their probability of a 5xx answer.
	LatencyFactor, ResponseSizeFactor, ErrorRateIncrease float64
}

// Variant returns the variant for a uniform draw u in [0, 1).
func (x *Experiment) Variant(u float64) string {
	if u < x.TreatmentShare {
		return x.Treatment
	}
	return x.Control
}

// The experiment: checkout's new flow answers with smaller bodies and
// faster, but fails more. Its effects clear the API's thresholds (latency
// ×1.2, error rate +1 point) by a margin, so that its verdicts are stable.
const (
	FlagKey                = "new-checkout-flow"
	FlagLatencyFactor      = 0.8
	FlagResponseSizeFactor = 0.6
	FlagErrorRateIncrease  = 0.015
)

// Plan is the scenario.
type Plan struct {
	Config
	Services []Service
	Units    []UnitKey
	// Deployments, including failed deploys, ordered by Time.
	Deployments []Deployment
	// Experiments run for the whole period and the live run.
	Experiments []Experiment

	baseline  map[UnitKey]string
	timelines map[UnitKey][]Deployment // successful, ordered by RolloutStart
	profiles  map[string]map[string]Profile
	services  map[string]*Service
}

// New builds the plan for cfg.
func New(cfg Config) (*Plan, error) {
	if cfg.Start.IsZero() || cfg.End.IsZero() {
		return nil, errors.New("plan: start and end are required")
	}
	if cfg.End.Before(cfg.Start) {
		return nil, fmt.Errorf("plan: end %s is before start %s", cfg.End, cfg.Start)
	}
	if cfg.Horizon < 0 {
		return nil, fmt.Errorf("plan: negative horizon %s", cfg.Horizon)
	}
	cfg.Start, cfg.End = cfg.Start.UTC(), cfg.End.UTC()
	p := &Plan{
		Config:    cfg,
		Services:  Services(),
		baseline:  map[UnitKey]string{},
		timelines: map[UnitKey][]Deployment{},
		profiles:  map[string]map[string]Profile{},
		services:  map[string]*Service{},
	}
	envs := []string{Production}
	if cfg.Staging {
		envs = append(envs, Staging)
	}
	for i := range p.Services {
		s := &p.Services[i]
		p.services[s.Name] = s
		p.profiles[s.Name] = map[string]Profile{}
		for _, env := range envs {
			p.Units = append(p.Units, UnitKey{s.Name, env})
		}
	}

	p.Experiments = []Experiment{{
		Unit: UnitKey{"checkout", Production}, Key: FlagKey, Provider: "flagd",
		Control: "off", Treatment: "on", TreatmentShare: 0.5,
		LatencyFactor: FlagLatencyFactor, ResponseSizeFactor: FlagResponseSizeFactor, ErrorRateIncrease: FlagErrorRateIncrease,
	}}

	b := &builder{p: p, commits: map[string]*commit{}}
	specials := b.specials()
	for i := range p.Services {
		svc := &p.Services[i]
		prod := b.production(svc, specials[svc.Name])
		p.Deployments = append(p.Deployments, prod...)
		if cfg.Staging {
			p.Deployments = append(p.Deployments, b.staging(svc, prod)...)
		}
	}
	b.assignCommits()
	sort.SliceStable(p.Deployments, func(i, j int) bool {
		a, c := p.Deployments[i], p.Deployments[j]
		if !a.Time().Equal(c.Time()) {
			return a.Time().Before(c.Time())
		}
		if a.Service != c.Service {
			return a.Service < c.Service
		}
		return a.Environment < c.Environment
	})
	b.assignRuns()
	for _, d := range p.Deployments {
		if !d.Failed() {
			p.timelines[d.UnitKey] = append(p.timelines[d.UnitKey], d)
		}
	}
	for u, tl := range p.timelines {
		sort.SliceStable(tl, func(i, j int) bool { return tl[i].RolloutStart.Before(tl[j].RolloutStart) })
		p.timelines[u] = tl
	}
	return p, nil
}

// Service returns the named service, or nil.
func (p *Plan) Service(name string) *Service { return p.services[name] }

// Baseline is the version a unit runs at the start of the period.
func (p *Plan) Baseline(u UnitKey) string { return p.baseline[u] }

// Profile is how a version of a service behaves.
func (p *Plan) Profile(service, version string) Profile {
	if pr, ok := p.profiles[service][version]; ok {
		return pr
	}
	base := 0.005
	if s := p.services[service]; s != nil {
		base = s.BaseErrorRate
	}
	return Profile{LatencyFactor: 1, ErrorRate: base}
}

// Experiment is the experiment running on u, or nil.
func (p *Plan) Experiment(u UnitKey) *Experiment {
	for i := range p.Experiments {
		if p.Experiments[i].Unit == u {
			return &p.Experiments[i]
		}
	}
	return nil
}

// Mix is the versions serving u at t.
func (p *Plan) Mix(u UnitKey, t time.Time) Mix {
	tl := p.timelines[u]
	i := sort.Search(len(tl), func(i int) bool { return tl[i].RolloutStart.After(t) }) - 1
	if i < 0 {
		return Mix{To: p.baseline[u], ToWeight: 1}
	}
	d := tl[i]
	w := 1.0
	if d.Kind == Canary {
		w = CanaryShare
	}
	if t.Before(d.RolloutEnd) {
		w *= float64(t.Sub(d.RolloutStart)) / float64(d.RolloutEnd.Sub(d.RolloutStart))
	}
	if w == 1 {
		return Mix{To: d.Version, ToWeight: 1}
	}
	return Mix{From: d.PreviousVersion, To: d.Version, ToWeight: w}
}

// RateFactor is u's request rate at t relative to the per-service rate:
// staging gets StagingRateFactor; the day peaks at 15:00 UTC (×1.4) and
// bottoms at 03:00 (×0.6); weekends are ×0.75.
func (p *Plan) RateFactor(u UnitKey, t time.Time) float64 {
	f := 1.0
	if u.Environment == Staging {
		f = StagingRateFactor
	}
	t = t.UTC()
	h := float64(t.Hour()) + float64(t.Minute())/60 + float64(t.Second())/3600
	f *= 1 + 0.4*math.Sin(2*math.Pi*(h-9)/24)
	if wd := t.Weekday(); wd == time.Saturday || wd == time.Sunday {
		f *= 0.75
	}
	return f
}

// Traffic is u's traffic characteristics at t (use it per minute or per request).
func (p *Plan) Traffic(u UnitKey, t time.Time) Traffic {
	m := p.Mix(u, t)
	tr := Traffic{RateFactor: p.RateFactor(u, t), Mix: m, ToProfile: p.Profile(u.Service, m.To)}
	if m.From != "" {
		tr.FromProfile = p.Profile(u.Service, m.From)
	}
	return tr
}

// Timeline is u's successful deployments ordered by rollout start.
func (p *Plan) Timeline(u UnitKey) []Deployment { return p.timelines[u] }

// --- construction ---

type builder struct {
	p       *Plan
	commits map[string]*commit // service + "@" + version
}

type commit struct {
	sha   string
	first time.Time // first deploy start (any environment)
	time  time.Time
}

// rng returns an independent stream per purpose, so adding or removing one
// part of the scenario does not reshuffle the others.
func (b *builder) rng(purpose string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(purpose))
	return rand.New(rand.NewPCG(b.p.Seed, h.Sum64()))
}

func (b *builder) period() time.Duration { return b.p.End.Sub(b.p.Start) }

// place puts a special release at fraction frac of the period; on periods of
// three days or more it moves to hh:mm UTC of that day, on a weekday.
func (b *builder) place(frac float64, hh, mm int, lo, hi time.Duration) time.Time {
	P := b.period()
	t := b.p.Start.Add(time.Duration(frac * float64(P)))
	if P >= 3*24*time.Hour {
		t = t.Truncate(24 * time.Hour).Add(time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute)
		for t.Weekday() == time.Saturday || t.Weekday() == time.Sunday {
			t = t.Add(-24 * time.Hour)
		}
	}
	if min := b.p.Start.Add(lo); t.Before(min) {
		t = min
	}
	if max := b.p.End.Add(-hi); t.After(max) {
		t = max
	}
	return t.Truncate(time.Second)
}

type event struct {
	kind     Kind
	at       time.Time // rollout start (failed deploy: CI start)
	until    time.Time // a canary's withdrawal
	explicit bool
	note     string
}

// specials are the scripted releases per service (production).
func (b *builder) specials() map[string][]event {
	out := map[string][]event{}
	P := b.period()
	if P >= MinScenarioPeriod {
		gap := min(max(P/8, 20*time.Minute), 150*time.Minute)
		// A 30 % latency improvement early in the period.
		out["storefront"] = append(out["storefront"], event{kind: Improvement, at: b.place(0.35, 11, 20, 45*time.Minute, 40*time.Minute), explicit: true})
		// An error-rate-only regression, inferred (no CI span), fixed forward.
		e := b.place(0.6, 10, 40, 45*time.Minute, 60*time.Minute)
		out["catalog"] = append(out["catalog"],
			event{kind: ErrorRegression, at: e},
			event{kind: FixForward, at: e.Add(gap), explicit: true, note: "fixes the error regression"})
		// A deploy that fails in CI, retried successfully.
		f := b.place(0.7, 16, 5, 45*time.Minute, 45*time.Minute)
		out["payments"] = append(out["payments"],
			event{kind: FailedDeploy, at: f, explicit: true, note: "CI deploy failed; version unchanged"},
			event{kind: Regular, at: f.Add(min(gap, 75*time.Minute)), explicit: true, note: "retry of the failed deploy"})
		// The bad release and its rollback (placed by the production builder).
		out["checkout"] = append(out["checkout"], event{kind: BadRelease, at: b.place(0.85, 14, 10, 45*time.Minute, 55*time.Minute), explicit: true})
		// A canary in the last hours, whatever the time of day, so that a
		// run's recent history holds one; storefront has room for it in
		// every period (its other special comes at a third of it).
		w := b.p.End.Add(-min(P/8, canaryBeforeEnd)).Truncate(time.Second)
		out["storefront"] = append(out["storefront"], event{kind: Canary, at: w.Add(-min(P/4, CanaryDuration)), until: w, explicit: true})
	}
	if b.p.Horizon >= 40*time.Minute {
		// Something to watch live: a release ten minutes into the live run.
		out["storefront"] = append(out["storefront"], event{kind: Regular, at: b.p.End.Add(10 * time.Minute), explicit: true, note: "live"})
	}
	return out
}

func poisson(r *rand.Rand, lambda float64) int {
	l, k, p := math.Exp(-lambda), 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

func (b *builder) rollout(r *rand.Rand, at time.Time, d time.Duration, explicit bool) (rs, re, cs, ce time.Time) {
	rs, re = at, at.Add(d)
	if explicit {
		cs = rs.Add(-(40*time.Second + time.Duration(r.IntN(80))*time.Second))
		ce = re.Add(10*time.Second + time.Duration(r.IntN(30))*time.Second)
	}
	return
}

type semver struct{ major, minor, patch int }

func (v semver) String() string { return fmt.Sprintf("%d.%d.%d", v.major, v.minor, v.patch) }

// production schedules a service's production releases: the specials plus
// regular working-hours releases (Poisson per weekday, at least an hour apart
// and two hours away from any special), versions and profiles.
func (b *builder) production(svc *Service, specials []event) []Deployment {
	p := b.p
	r := b.rng("regular/" + svc.Name)
	end := p.End.Add(p.Horizon)
	latest := end.Add(-10 * time.Minute)

	var regular []event
	for day := p.Start.Truncate(24 * time.Hour); day.Before(end); day = day.Add(24 * time.Hour) {
		if day.Weekday() == time.Saturday || day.Weekday() == time.Sunday {
			continue
		}
		n := poisson(r, svc.DeploysPerWeek/5)
		for range n {
			at := day.Add(workdayStart + time.Duration(r.Int64N(int64(workdaySpan/time.Second)))*time.Second)
			regular = append(regular, event{kind: Regular, at: at, explicit: r.Float64() < explicitShare})
		}
	}
	sort.SliceStable(regular, func(i, j int) bool { return regular[i].at.Before(regular[j].at) })
	var kept []event
	for _, e := range regular {
		// Not in the first hour, nor in the last ten minutes of the backfill
		// or of the horizon (so that a horizon never changes the backfill).
		if e.at.Before(p.Start.Add(time.Hour)) || !e.at.Before(latest) ||
			(!e.at.Before(p.End.Add(-10*time.Minute)) && e.at.Before(p.End)) {
			continue
		}
		if n := len(kept); n > 0 && e.at.Sub(kept[n-1].at) < minRegularGap {
			continue
		}
		near := false
		for _, s := range specials {
			if s.note == "live" && e.at.Before(p.End) {
				continue // the horizon must not change the backfill
			}
			lo, hi := s.at.Add(-specialGuard), s.at.Add(specialGuard)
			if s.kind == BadRelease {
				hi = hi.Add(RollbackAfter)
			}
			if s.kind == Canary {
				hi = s.until.Add(specialGuard)
			}
			if e.at.After(lo) && e.at.Before(hi) {
				near = true
				break
			}
		}
		if !near {
			kept = append(kept, e)
		}
	}
	events := append(kept, specials...)
	sort.SliceStable(events, func(i, j int) bool { return events[i].at.Before(events[j].at) })

	// Versions and profiles.
	vr := b.rng("versions/" + svc.Name)
	cur := semver{svc.Major, 2 + vr.IntN(8), vr.IntN(3)}
	highest := cur.minor
	unit := UnitKey{svc.Name, Production}
	p.baseline[unit] = cur.String()
	if p.Staging {
		p.baseline[UnitKey{svc.Name, Staging}] = cur.String()
	}
	base := 1.0
	prof := p.profiles[svc.Name]
	prof[cur.String()] = Profile{LatencyFactor: base, ErrorRate: svc.BaseErrorRate}
	b.commit(svc.Name, cur.String(), time.Time{})

	var out []Deployment
	dr := b.rng("rollouts/" + svc.Name)
	for _, e := range events {
		prev := cur
		d := Deployment{UnitKey: unit, Kind: e.kind, Explicit: e.explicit, Note: e.note, PreviousVersion: cur.String()}
		next := cur
		switch e.kind {
		case FixForward:
			next.patch++
		case FailedDeploy:
			next = semver{svc.Major, highest + 1, 0}
		default:
			highest++
			next = semver{svc.Major, highest, 0}
		}
		d.Version = next.String()
		if _, ok := prof[d.Version]; !ok {
			switch e.kind {
			case BadRelease:
				prof[d.Version] = Profile{
					LatencyFactor: base * badLatencyMedianFactor,
					ExtraSigma:    math.Log(BadLatencyP95Factor/badLatencyMedianFactor) / z95,
					ErrorRate:     svc.BaseErrorRate + BadErrorRateIncrease,
				}
			case ErrorRegression:
				prof[d.Version] = Profile{LatencyFactor: base, ErrorRate: svc.BaseErrorRate + ErrorRegressionIncrease}
			case Improvement:
				base *= ImprovementLatencyFactor
				prof[d.Version] = Profile{LatencyFactor: base, ErrorRate: svc.BaseErrorRate}
			case Canary:
				prof[d.Version] = Profile{LatencyFactor: prof[prev.String()].LatencyFactor * CanaryLatencyFactor, ErrorRate: svc.BaseErrorRate}
			default:
				j := 1 + regularJitter*(2*vr.Float64()-1)
				prof[d.Version] = Profile{LatencyFactor: base * j, ErrorRate: svc.BaseErrorRate}
			}
		}
		if e.kind == FailedDeploy {
			d.CIStart = e.at
			d.CIEnd = e.at.Add(2*time.Minute + time.Duration(dr.IntN(120))*time.Second)
			d.Pipeline = "deploy-" + svc.Name
			b.commit(svc.Name, d.Version, d.CIStart)
			out = append(out, d)
			continue
		}
		d.RolloutStart, d.RolloutEnd, d.CIStart, d.CIEnd = b.rollout(dr, e.at, 3*time.Minute+time.Duration(dr.IntN(120))*time.Second, d.Explicit)
		d.Pipeline = "deploy-" + svc.Name
		b.commit(svc.Name, d.Version, first(d))
		out = append(out, d)
		cur = next

		if e.kind == BadRelease {
			// Rolled back RollbackAfter later (deploy time to deploy time), explicit, a quick 3-minute rollout.
			rb := Deployment{UnitKey: unit, Kind: Rollback, Explicit: true, Version: d.PreviousVersion, PreviousVersion: d.Version,
				Pipeline: "rollback-" + svc.Name, Note: "rolls back the bad release"}
			rb.CIEnd = d.Time().Add(RollbackAfter)
			rb.RolloutEnd = rb.CIEnd.Add(-15 * time.Second)
			rb.RolloutStart = rb.RolloutEnd.Add(-3 * time.Minute)
			rb.CIStart = rb.RolloutStart.Add(-30 * time.Second)
			out = append(out, rb)
			cur = prev
		}
		if e.kind == Regular && d.Explicit && len(out) >= 2 && out[len(out)-2].Kind == Rollback {
			out[len(out)-1].Rework = "hotfix"
			if out[len(out)-1].Note == "" {
				out[len(out)-1].Note = "hotfix: the bad release, fixed"
			}
		}
		if e.kind == Canary {
			// No deploy: the canary's pods go at once (its rollout is empty).
			w := Deployment{UnitKey: unit, Kind: CanaryWithdrawn, Version: d.PreviousVersion, PreviousVersion: d.Version,
				RolloutStart: e.until, RolloutEnd: e.until}
			out = append(out, w)
			cur = prev
		}
	}
	return out
}

// first is when a deployment first touches the world: CI start or rollout start.
func first(d Deployment) time.Time {
	if d.Explicit && !d.CIStart.IsZero() {
		return d.CIStart
	}
	return d.RolloutStart
}

// commit registers a version's first deploy (zero: the baseline).
func (b *builder) commit(service, version string, at time.Time) {
	k := service + "@" + version
	c := b.commits[k]
	if c == nil {
		c = &commit{first: at}
		b.commits[k] = c
		return
	}
	if !at.IsZero() && (c.first.IsZero() || at.Before(c.first)) {
		c.first = at
	}
}

// staging lands every production release (not rollbacks, not retries)
// between 30 minutes and 3.5 hours before its first production attempt, in
// version order; a release with no room for that skips staging.
func (b *builder) staging(svc *Service, prod []Deployment) []Deployment {
	p := b.p
	r := b.rng("staging/" + svc.Name)
	unit := UnitKey{svc.Name, Staging}
	cur := p.baseline[unit]
	var out []Deployment
	staged := map[string]bool{cur: true}
	lo := p.Start.Add(30 * time.Minute)
	for _, d := range prod {
		if d.Kind.Restores() || staged[d.Version] {
			continue
		}
		staged[d.Version] = true
		hi := first(d).Add(-30 * time.Minute)
		from := lo
		if l := hi.Add(-210 * time.Minute); l.After(from) {
			from = l
		}
		if !first(d).Before(p.End) && from.Before(p.End) {
			from = p.End // a live release is staged live too: the backfill does not depend on the horizon
		}
		if !hi.After(from) {
			continue
		}
		at := from.Add(time.Duration(r.Int64N(int64(hi.Sub(from)/time.Second)+1)) * time.Second)
		kind := d.Kind
		if kind == FailedDeploy || kind == Canary {
			kind = Regular
		}
		s := Deployment{UnitKey: unit, Kind: kind, Explicit: d.Explicit, Version: d.Version, PreviousVersion: cur,
			Pipeline: "deploy-" + svc.Name}
		switch d.Kind {
		case BadRelease:
			s.Note = "not caught in staging"
		case Canary:
			// Staging has no traffic split: the whole unit runs it.
			s.Note = fmt.Sprintf("the production canary's version (latency ×%.1f), in full", CanaryLatencyFactor)
		}
		s.RolloutStart, s.RolloutEnd, s.CIStart, s.CIEnd = b.rollout(r, at, 2*time.Minute+time.Duration(r.IntN(60))*time.Second, s.Explicit)
		b.commit(svc.Name, s.Version, first(s))
		out = append(out, s)
		cur = s.Version
		lo = s.Time().Add(15 * time.Minute)
		if s.RolloutEnd.After(s.Time()) {
			lo = s.RolloutEnd.Add(15 * time.Minute)
		}
	}
	return out
}

// assignCommits gives every version a fake SHA and a commit time a
// log-normal lead (median 6 h, 20 min … 5 days) before its first deploy;
// baseline versions were committed one to five days before the period.
func (b *builder) assignCommits() {
	for k, c := range b.commits {
		r := b.rng("commit/" + k)
		var sha [20]byte
		for i := range sha {
			sha[i] = byte(r.UintN(256))
		}
		c.sha = fmt.Sprintf("%x", sha)
		if c.first.IsZero() {
			c.time = b.p.Start.Add(-(24*time.Hour + time.Duration(r.Int64N(int64(4*24*time.Hour/time.Second)))*time.Second))
			continue
		}
		lead := time.Duration(float64(defaultLeadMedian) * math.Exp(r.NormFloat64()))
		lead = min(max(lead, minLead), maxLead).Truncate(time.Second)
		c.time = c.first.Add(-lead)
	}
	for i := range b.p.Deployments {
		d := &b.p.Deployments[i]
		c := b.commits[d.Service+"@"+d.Version]
		d.Commit, d.CommitTime = c.sha, c.time
	}
}

// assignRuns numbers CI runs in deploy-time order.
func (b *builder) assignRuns() {
	r := b.rng("runs")
	run := 9_100_000_000 + r.Int64N(100_000_000)
	dep := 1_800_000_000 + r.Int64N(100_000_000)
	for i := range b.p.Deployments {
		d := &b.p.Deployments[i]
		if !d.Explicit {
			d.Pipeline = ""
			continue
		}
		run += 1 + r.Int64N(40)
		dep++
		d.RunID = fmt.Sprint(run)
		d.DeploymentID = fmt.Sprint(dep)
	}
}
