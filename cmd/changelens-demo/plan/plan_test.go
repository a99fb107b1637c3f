package plan

import (
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
)

// end is a Sunday noon; the 14-day period starts on a Sunday too.
var end = time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)

func mustPlan(t *testing.T, cfg Config) *Plan {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func twoWeeks(seed uint64) Config {
	return Config{Seed: seed, Start: end.Add(-14 * 24 * time.Hour), End: end, Staging: true}
}

func TestDeterministic(t *testing.T) {
	a, b := mustPlan(t, twoWeeks(7)), mustPlan(t, twoWeeks(7))
	if !reflect.DeepEqual(a.Deployments, b.Deployments) {
		t.Fatal("same seed, different deployments")
	}
	for _, u := range a.Units {
		for ts := a.Start; ts.Before(a.End); ts = ts.Add(7 * time.Minute) {
			if a.Traffic(u, ts) != b.Traffic(u, ts) {
				t.Fatalf("same seed, different traffic for %s at %s", u, ts)
			}
		}
	}
	c := mustPlan(t, twoWeeks(8))
	if reflect.DeepEqual(a.Deployments, c.Deployments) {
		t.Fatal("different seeds, same deployments")
	}
}

func find(ds []Deployment, env string, k Kind) []Deployment {
	var out []Deployment
	for _, d := range ds {
		if d.Environment == env && d.Kind == k {
			out = append(out, d)
		}
	}
	return out
}

func TestScenario(t *testing.T) {
	hotfixed := 0
	defer func() {
		if hotfixed == 0 {
			t.Error("no seed has a release after its rollback: the hotfix is never exercised")
		}
	}()
	for _, seed := range []uint64{1, 2, 3, 42} {
		p := mustPlan(t, twoWeeks(seed))
		bad := find(p.Deployments, Production, BadRelease)
		rb := find(p.Deployments, Production, Rollback)
		if len(bad) != 1 || len(rb) != 1 {
			t.Fatalf("seed %d: %d bad releases, %d rollbacks in production, want 1 and 1", seed, len(bad), len(rb))
		}
		b, r := bad[0], rb[0]
		if !b.Explicit || !r.Explicit {
			t.Errorf("seed %d: bad release and rollback should be explicit", seed)
		}
		if got := r.Time().Sub(b.Time()); got != RollbackAfter {
			t.Errorf("seed %d: rollback %s after the bad release, want %s", seed, got, RollbackAfter)
		}
		if r.Service != b.Service || r.Version != b.PreviousVersion || r.PreviousVersion != b.Version {
			t.Errorf("seed %d: rollback %+v does not undo %+v", seed, r, b)
		}
		// The unit's next release after the rollback is the hotfix, and the
		// only deployment marked so.
		var hotfixes []Deployment
		for _, d := range p.Deployments {
			if d.Rework != "" {
				hotfixes = append(hotfixes, d)
			}
		}
		var next *Deployment
		for _, d := range p.Timeline(r.UnitKey) {
			if d.Time().After(r.Time()) && d.Kind == Regular {
				next = &d
				break
			}
		}
		if next != nil {
			hotfixed++
		}
		if next != nil && (len(hotfixes) != 1 || hotfixes[0].Version != next.Version || hotfixes[0].Rework != "hotfix") {
			t.Errorf("seed %d: hotfixes %+v, want the release after the rollback, %+v", seed, hotfixes, next)
		}
		// The bad release's impact windows (30 minutes before, 2..32 minutes after) are clean.
		for _, d := range p.Timeline(b.UnitKey) {
			if d.Version == b.Version || d.Kind == Rollback {
				continue
			}
			if gap := b.RolloutStart.Sub(d.RolloutEnd); gap >= 0 && gap < 90*time.Minute {
				t.Errorf("seed %d: %s %s ends %s before the bad release", seed, d.Service, d.Version, gap)
			}
		}
		// Profiles: p95 ×2.5 and +4 points of errors; the rollback restores the old one.
		pb, po := p.Profile(b.Service, b.Version), p.Profile(b.Service, b.PreviousVersion)
		if f := pb.P95Factor() / po.P95Factor(); math.Abs(f-BadLatencyP95Factor) > 0.1 {
			t.Errorf("seed %d: bad p95 factor %.3f", seed, f)
		}
		if d := pb.ErrorRate - po.ErrorRate; math.Abs(d-BadErrorRateIncrease) > 1e-9 {
			t.Errorf("seed %d: bad error increase %.4f", seed, d)
		}
		mid := b.RolloutEnd.Add(10 * time.Minute)
		if m := p.Mix(b.UnitKey, mid); m.To != b.Version || m.From != "" {
			t.Errorf("seed %d: mix after the bad rollout %+v", seed, m)
		}
		if m := p.Mix(b.UnitKey, r.RolloutEnd.Add(time.Minute)); m.To != b.PreviousVersion || m.From != "" {
			t.Errorf("seed %d: mix after the rollback %+v", seed, m)
		}

		// Error-rate-only regression in another service, fixed forward.
		er := find(p.Deployments, Production, ErrorRegression)
		if len(er) != 1 || er[0].Service == b.Service {
			t.Fatalf("seed %d: error regressions %+v", seed, er)
		}
		pe, pp := p.Profile(er[0].Service, er[0].Version), p.Profile(er[0].Service, er[0].PreviousVersion)
		if pe.ErrorRate-pp.ErrorRate < 0.02 || math.Abs(pe.P95Factor()/pp.P95Factor()-1) > 0.05 {
			t.Errorf("seed %d: error regression profile %+v vs %+v", seed, pe, pp)
		}
		if ff := find(p.Deployments, Production, FixForward); len(ff) != 1 || ff[0].PreviousVersion != er[0].Version || !ff[0].Time().After(er[0].Time()) {
			t.Errorf("seed %d: fix-forward %+v", seed, ff)
		}
		if len(find(p.Deployments, Production, Improvement)) != 1 || len(find(p.Deployments, Production, FailedDeploy)) != 1 {
			t.Errorf("seed %d: want one improvement and one failed deploy", seed)
		}

		// Explicit and inferred, several per service per week, lead times > 0.
		var explicit, inferred int
		perService := map[string]int{}
		for _, d := range p.Deployments {
			if d.Time().Before(p.Start) || !d.Time().Before(p.End) {
				t.Errorf("seed %d: deployment outside the period: %+v", seed, d)
			}
			if d.Explicit {
				explicit++
				if d.RunID == "" || d.DeploymentID == "" || d.Pipeline == "" || len(d.Commit) != 40 {
					t.Errorf("seed %d: explicit deployment without CI fields: %+v", seed, d)
				}
				if !d.CIStart.Before(d.CIEnd) {
					t.Errorf("seed %d: CI span %s..%s", seed, d.CIStart, d.CIEnd)
				}
				if !d.Failed() && (d.CIStart.After(d.RolloutStart) || d.CIEnd.Before(d.RolloutEnd)) {
					t.Errorf("seed %d: rollout %s..%s outside CI span %s..%s", seed, d.RolloutStart, d.RolloutEnd, d.CIStart, d.CIEnd)
				}
			} else {
				inferred++
			}
			if lt := d.LeadTime(); lt <= 0 {
				t.Errorf("seed %d: lead time %s for %+v", seed, lt, d)
			}
			if !d.Failed() {
				if r := d.RolloutEnd.Sub(d.RolloutStart); (r < 2*time.Minute || r > 5*time.Minute) && (d.Kind != CanaryWithdrawn || r != 0) {
					t.Errorf("seed %d: rollout of %s for a %s", seed, r, d.Kind)
				}
				if d.Environment == Production {
					perService[d.Service]++
				}
			}
		}
		if explicit < 10 || inferred < 5 {
			t.Errorf("seed %d: %d explicit, %d inferred deployments", seed, explicit, inferred)
		}
		for _, s := range p.Services {
			if n := perService[s.Name]; n < 4 || n > 30 {
				t.Errorf("seed %d: %s has %d production deployments in two weeks", seed, s.Name, n)
			}
		}
		checkTimelines(t, p)
	}
}

// checkTimelines: deployments of a unit are ordered, do not overlap, chain
// versions, and leave room for the processor's 10-minute hysteresis; only
// rollbacks and withdrawn canaries go back to an earlier version.
func checkTimelines(t *testing.T, p *Plan) {
	t.Helper()
	for _, u := range p.Units {
		cur := p.Baseline(u)
		var prevEnd time.Time
		seen := map[string]bool{cur: true}
		for _, d := range p.Timeline(u) {
			if d.PreviousVersion != cur {
				t.Errorf("%s: %s follows %s but the unit ran %s", u, d.Version, d.PreviousVersion, cur)
			}
			if gap := d.RolloutStart.Sub(prevEnd); !prevEnd.IsZero() && gap < 15*time.Minute {
				t.Errorf("%s: %s starts %s after the previous rollout", u, d.Version, gap)
			}
			if seen[d.Version] != d.Kind.Restores() {
				t.Errorf("%s: version %s reused by a %s", u, d.Version, d.Kind)
			}
			seen[d.Version] = true
			cur, prevEnd = d.Version, d.RolloutEnd
			if d.Kind == CanaryWithdrawn {
				// At once: the canary's share until then, nothing after.
				if m := p.Mix(u, d.RolloutStart.Add(-time.Second)); m != (Mix{From: d.Version, To: d.PreviousVersion, ToWeight: CanaryShare}) {
					t.Errorf("%s: mix just before the withdrawal of %s: %+v", u, d.PreviousVersion, m)
				}
				if m := p.Mix(u, d.RolloutStart); m != (Mix{To: d.Version, ToWeight: 1}) {
					t.Errorf("%s: mix at the withdrawal of %s: %+v", u, d.PreviousVersion, m)
				}
				continue
			}
			// Rolling update: both versions serve, the new one rising (to
			// its share, for a canary).
			share := 1.0
			if d.Kind == Canary {
				share = CanaryShare
			}
			q1 := d.RolloutStart.Add(d.RolloutEnd.Sub(d.RolloutStart) / 4)
			if m := p.Mix(u, q1); m.From != d.PreviousVersion || m.To != d.Version || math.Abs(m.ToWeight-0.25*share) > 0.01*share {
				t.Errorf("%s: mix a quarter into the rollout of %s: %+v", u, d.Version, m)
			}
			if m := p.Mix(u, d.RolloutStart.Add(-time.Second)); m.To != d.PreviousVersion || m.From != "" {
				t.Errorf("%s: mix just before the rollout of %s: %+v", u, d.Version, m)
			}
		}
	}
}

func TestStagingPrecedesProduction(t *testing.T) {
	p := mustPlan(t, twoWeeks(5))
	prod := map[string]Deployment{}
	for _, d := range p.Deployments {
		if d.Environment == Production && d.Kind != Rollback {
			k := d.Service + "@" + d.Version
			if _, ok := prod[k]; !ok {
				prod[k] = d
			}
		}
	}
	staged := 0
	for _, d := range p.Deployments {
		if d.Environment != Staging {
			continue
		}
		staged++
		pd, ok := prod[d.Service+"@"+d.Version]
		if !ok {
			t.Errorf("staging deploys %s %s, never in production", d.Service, d.Version)
			continue
		}
		lead := first(pd).Sub(d.Time())
		if lead < 25*time.Minute || lead > 4*time.Hour {
			t.Errorf("%s %s lands in staging %s before production", d.Service, d.Version, lead)
		}
		if d.Commit != pd.Commit || !d.CommitTime.Equal(pd.CommitTime) {
			t.Errorf("%s %s: staging and production deploy different commits", d.Service, d.Version)
		}
	}
	if staged < len(prod)/2 {
		t.Errorf("only %d of %d releases went through staging", staged, len(prod))
	}
	if p := mustPlan(t, Config{Seed: 5, Start: end.Add(-14 * 24 * time.Hour), End: end}); len(p.Units) != 4 || len(find(p.Deployments, Staging, Regular)) != 0 {
		t.Errorf("staging disabled: %d units", len(p.Units))
	}
}

// A short period (the emission test's) still holds the whole scenario.
func TestShortPeriod(t *testing.T) {
	start := time.Date(2026, 3, 11, 9, 0, 0, 0, time.UTC)
	p := mustPlan(t, Config{Seed: 3, Start: start, End: start.Add(2 * time.Hour), Staging: true})
	for _, k := range []Kind{BadRelease, Rollback, ErrorRegression, FixForward, Improvement, FailedDeploy, Canary, CanaryWithdrawn} {
		if n := len(find(p.Deployments, Production, k)); n != 1 {
			t.Errorf("%s: %d in production", k, n)
		}
	}
	b, r := find(p.Deployments, Production, BadRelease)[0], find(p.Deployments, Production, Rollback)[0]
	if r.Time().Sub(b.Time()) != RollbackAfter || b.RolloutStart.Sub(p.Start) < 40*time.Minute || !r.RolloutEnd.Before(p.End) {
		t.Errorf("bad release %s, rollback %s in %s..%s", b.Time(), r.Time(), p.Start, p.End)
	}
	checkTimelines(t, p)
	// Too short for the scenario: just baselines.
	p = mustPlan(t, Config{Seed: 3, Start: start, End: start.Add(30 * time.Minute)})
	if len(p.Deployments) != 0 {
		t.Errorf("30-minute period: %d deployments", len(p.Deployments))
	}
}

func TestLiveHorizon(t *testing.T) {
	for seed := range uint64(20) {
		cfg := twoWeeks(seed)
		cfg.End = cfg.End.Add(time.Duration(seed) * 97 * time.Minute) // various times of day
		past := mustPlan(t, cfg)
		cfg.Horizon = 3 * 24 * time.Hour
		live := mustPlan(t, cfg)
		n := 0
		for _, d := range live.Deployments {
			if d.Time().Before(live.End) {
				n++
			}
		}
		if !reflect.DeepEqual(live.Deployments[:n], past.Deployments) {
			t.Errorf("seed %d: a horizon changed the backfill (%d vs %d deployments)", seed, n, len(past.Deployments))
		}
		checkTimelines(t, live)
	}
	cfg := twoWeeks(9)
	cfg.Horizon = 3 * 24 * time.Hour
	live := mustPlan(t, cfg)
	after := 0
	for _, d := range live.Deployments {
		if !d.Time().Before(live.End) {
			after++
		}
	}
	if after == 0 {
		t.Error("no live deployments")
	}
	var liveNote bool
	for _, d := range live.Deployments {
		liveNote = liveNote || (d.Note == "live" && d.RolloutStart.Equal(live.End.Add(10*time.Minute)))
	}
	if !liveNote {
		t.Error("no release ten minutes into the live run")
	}
}

func TestRateFactor(t *testing.T) {
	p := mustPlan(t, twoWeeks(1))
	u := UnitKey{"checkout", Production}
	wed := time.Date(2026, 3, 11, 0, 0, 0, 0, time.UTC)
	peak, trough := p.RateFactor(u, wed.Add(15*time.Hour)), p.RateFactor(u, wed.Add(3*time.Hour))
	if math.Abs(peak-1.4) > 1e-9 || math.Abs(trough-0.6) > 1e-9 {
		t.Errorf("peak %.3f trough %.3f", peak, trough)
	}
	if s := p.RateFactor(UnitKey{"checkout", Staging}, wed.Add(15*time.Hour)); math.Abs(s-1.4*StagingRateFactor) > 1e-9 {
		t.Errorf("staging %.3f", s)
	}
	if sat := p.RateFactor(u, wed.Add(3*24*time.Hour+15*time.Hour)); math.Abs(sat-1.4*0.75) > 1e-9 {
		t.Errorf("saturday %.3f", sat)
	}
	// The mean over a weekday is 1.
	sum := 0.0
	for m := range 24 * 60 {
		sum += p.RateFactor(u, wed.Add(time.Duration(m)*time.Minute))
	}
	if mean := sum / (24 * 60); math.Abs(mean-1) > 1e-3 {
		t.Errorf("weekday mean %.4f", mean)
	}
}

func TestInvalidConfig(t *testing.T) {
	for _, c := range []Config{
		{},
		{Start: end, End: end.Add(-time.Hour)},
		{Start: end, End: end, Horizon: -time.Hour},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}

// The canary: a slower storefront version serves CanaryShare of production
// next to the stable version, then goes at once, an hour before the end of
// a long backfill (less in a short one), with no other release of the unit
// around it; staging ran the version in full before.
func TestCanary(t *testing.T) {
	sat := time.Date(2026, 3, 14, 2, 30, 0, 0, time.UTC) // a weekend night: placed all the same
	cases := []struct {
		name           string
		cfg            Config
		dur, beforeEnd time.Duration
	}{
		{"14d seed 1", twoWeeks(1), CanaryDuration, time.Hour},
		{"14d seed 42", twoWeeks(42), CanaryDuration, time.Hour},
		{"7d saturday night", Config{Seed: 5, Start: sat.Add(-7 * 24 * time.Hour), End: sat, Staging: true, Horizon: 3 * 24 * time.Hour}, CanaryDuration, time.Hour},
		{"1d", Config{Seed: 6, Start: end.Add(-24 * time.Hour), End: end, Staging: true}, CanaryDuration, time.Hour},
		{"2h", Config{Seed: 3, Start: end.Add(-2 * time.Hour), End: end, Staging: true}, 30 * time.Minute, 15 * time.Minute},
	}
	for _, tc := range cases {
		p := mustPlan(t, tc.cfg)
		cs, ws := find(p.Deployments, Production, Canary), find(p.Deployments, Production, CanaryWithdrawn)
		if len(cs) != 1 || len(ws) != 1 {
			t.Fatalf("%s: %d canaries, %d withdrawals", tc.name, len(cs), len(ws))
		}
		c, w := cs[0], ws[0]
		stable, canary := c.PreviousVersion, c.Version
		if c.Service != "storefront" || !c.Explicit || w.Explicit || w.UnitKey != c.UnitKey {
			t.Errorf("%s: canary %+v, withdrawal %+v", tc.name, c, w)
		}
		if w.Version != stable || w.PreviousVersion != canary {
			t.Errorf("%s: withdrawal %s → %s after a canary %s → %s", tc.name, w.PreviousVersion, w.Version, stable, canary)
		}
		if got := p.End.Sub(w.Time()); got != tc.beforeEnd {
			t.Errorf("%s: withdrawn %s before the end, want %s", tc.name, got, tc.beforeEnd)
		}
		if got := w.Time().Sub(c.RolloutStart); got != tc.dur {
			t.Errorf("%s: canary ran %s, want %s", tc.name, got, tc.dur)
		}
		ps, pc := p.Profile(c.Service, stable), p.Profile(c.Service, canary)
		if r := pc.LatencyFactor / ps.LatencyFactor; math.Abs(r-CanaryLatencyFactor) > 1e-9 || pc.ErrorRate != ps.ErrorRate || pc.ExtraSigma != ps.ExtraSigma {
			t.Errorf("%s: canary profile %+v against %+v", tc.name, pc, ps)
		}
		for at, want := range map[time.Time]Mix{
			c.RolloutStart.Add(-time.Second): {To: stable, ToWeight: 1},
			c.RolloutEnd:                     {From: stable, To: canary, ToWeight: CanaryShare},
			w.Time().Add(-time.Second):       {From: stable, To: canary, ToWeight: CanaryShare},
			w.Time():                         {To: stable, ToWeight: 1},
			p.End.Add(-time.Second):          {To: stable, ToWeight: 1},
		} {
			if m := p.Mix(c.UnitKey, at); m != want {
				t.Errorf("%s: mix at %s: %+v, want %+v", tc.name, at, m, want)
			}
		}
		// Nothing else happens to the unit during the canary, nor (with
		// room for it) within two hours of it, but for the release planned
		// for the start of the live run; the next release replaces the
		// stable version.
		guard := specialGuard
		if tc.cfg.End.Sub(tc.cfg.Start) < 3*24*time.Hour {
			guard = 0
		}
		next := true
		for _, d := range p.Timeline(c.UnitKey) {
			if d.Kind != Canary && d.Kind != CanaryWithdrawn && d.Note != "live" &&
				d.Time().After(c.RolloutStart.Add(-guard)) && d.Time().Before(w.Time().Add(guard)) {
				t.Errorf("%s: %s %s at %s, canary %s..%s", tc.name, d.Kind, d.Version, d.Time(), c.RolloutStart, w.Time())
			}
			if d.Time().After(w.Time()) && next {
				next = false
				if d.PreviousVersion != stable {
					t.Errorf("%s: %s follows the withdrawal from %s", tc.name, d.Version, d.PreviousVersion)
				}
			}
		}
		if tc.cfg.Horizon > 0 && next {
			t.Errorf("%s: no release after the canary in the live run", tc.name)
		}
		var staged bool
		for _, d := range find(p.Deployments, Staging, Regular) {
			staged = staged || (d.Service == c.Service && d.Version == canary && d.Time().Before(c.CIStart))
		}
		if !staged {
			t.Errorf("%s: the canary's version never reached staging", tc.name)
		}
		checkTimelines(t, p)
	}

	// Per request, the mix picks the canary with its share: over 200 000
	// seeded draws, 5 % within 4σ (σ ≈ 0.05 pts).
	p := mustPlan(t, twoWeeks(1))
	c := find(p.Deployments, Production, Canary)[0]
	m := p.Mix(c.UnitKey, c.RolloutEnd.Add(time.Minute))
	r := rand.New(rand.NewPCG(1, 2))
	const n = 200_000
	k := 0
	for range n {
		if m.Pick(r.Float64()) == c.Version {
			k++
		}
	}
	if share, sd := float64(k)/n, math.Sqrt(CanaryShare*(1-CanaryShare)/n); math.Abs(share-CanaryShare) > 4*sd {
		t.Errorf("canary share %.4f over %d requests, want %.2f ± %.4f", share, n, CanaryShare, 4*sd)
	}
}

// The flag experiment runs on checkout in production only, from the first
// minute of any period, and splits requests 50/50.
func TestExperiment(t *testing.T) {
	checkout := UnitKey{"checkout", Production}
	for _, cfg := range []Config{twoWeeks(1), {Seed: 2, Start: end.Add(-30 * time.Minute), End: end, Staging: true}} {
		p := mustPlan(t, cfg)
		for _, u := range p.Units {
			if x := p.Experiment(u); (x != nil) != (u == checkout) {
				t.Errorf("%s: experiment %+v", u, x)
			}
		}
		x := p.Experiment(checkout)
		if x == nil || x.Key != FlagKey || x.Control != "off" || x.Treatment != "on" || x.TreatmentShare != 0.5 {
			t.Fatalf("experiment %+v", x)
		}
	}
	// Its effects clear the API's thresholds (latency ×1.2 either way, error
	// rate +1 point) by a margin, so that the verdicts do not flicker.
	x := mustPlan(t, twoWeeks(1)).Experiment(checkout)
	if 1/x.LatencyFactor < 1.2*1.03 || x.ErrorRateIncrease < 0.012 || x.ResponseSizeFactor > 0.7 || x.ResponseSizeFactor < 0.5 {
		t.Errorf("effects %+v", x)
	}
	// 20 000 seeded draws: "on" half of the time within 4σ (σ ≈ 0.35 pts);
	// the same seed gives the same variants.
	const n = 20_000
	split := func(seed uint64) (on int, seq []string) {
		r := rand.New(rand.NewPCG(seed, 7))
		for range n {
			v := x.Variant(r.Float64())
			if v != x.Control && v != x.Treatment {
				t.Fatalf("variant %q", v)
			}
			if v == x.Treatment {
				on++
			}
			seq = append(seq, v)
		}
		return on, seq
	}
	on, a := split(3)
	if share, sd := float64(on)/n, math.Sqrt(0.25/n); math.Abs(share-0.5) > 4*sd {
		t.Errorf("treatment share %.4f over %d requests, want 0.5 ± %.4f", share, n, 4*sd)
	}
	if _, b := split(3); !slices.Equal(a, b) {
		t.Error("same seed, different variants")
	}
}
