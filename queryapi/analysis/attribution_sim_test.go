package analysis

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/changelens/changelens/queryapi/report"
)

// The simulation of docs/analysis.md ("Attribution"): incidents in which a
// unit's deployment overlaps 1 to 4 other changes within ±15 minutes — its
// callees' deployments and feature-flag changes — exactly one of which
// (possibly the unit's own deployment) made the unit slower or fail more.
//
// Model (incidentRun), per minute of the hour around the deployment (at
// minute 30):
//   - the unit serves R requests a minute (incidentSize: 60–1500 for clear
//     incidents, × the load below), spending self time of mean U(15, 40) ms
//     per request and calling 1 to 3 callees U(0.5, 2) times per request,
//     U(10, 50) ms per call, of which it waits U(50 %, 100 %) (parallel
//     calls); coefficient of variation 1 for both (sums per minute are
//     drawn from their normal approximation); 0.5 % of requests fail on
//     their own and 0.2 % of calls fail (a failed call fails its request);
//   - shared load: a multiplicative N(1, 0.05) per minute and, in half of
//     the incidents, a ramp to U(1.5, 2.5)× over 10 minutes at a random
//     minute; latency (self and callee) grows as load^0.273; 3 control
//     units of 100–500 requests a minute see the same load, each with its
//     sensitivity N(1, 0.1);
//   - 0 or 1 flags already in use (variants equal) plus, as changes, flag
//     changes: a variant's share from 0–10 % to 40–60 % at the change's
//     minute;
//   - the guilty change raises the unit's mean latency by a relative
//     U(15 %, 60 %) (faint incidents: U(5 %, 15 %) at 60–300 requests a
//     minute) or, in 30 % of the incidents, its error rate by 3 points: the
//     own deployment through its self time or (30 % of latency incidents)
//     by calling a callee more often; a callee's deployment through its
//     time (failures) per call; a flag change's new variant through its
//     self time, its calls, or its failures; innocent changes change
//     nothing.
// The rule replaced blames the deployment for whatever happened in its
// windows.

type incidentOutcome struct {
	guilty   report.CauseKind
	first    bool // the guilty change ranked first
	blamed   bool // the own deployment keeps the blame (not attributed elsewhere)
	changes  int
	latency  bool
	ownFirst bool
}

// incidentSize bounds the traffic (requests a minute) and the guilty
// change's rise of the mean latency.
type incidentSize struct{ rateLo, rateHi, riseLo, riseHi float64 }

var (
	incidentsClear = incidentSize{60, 1500, 0.15, 0.6}
	incidentsFaint = incidentSize{60, 300, 0.05, 0.15}
)

func incidentRun(rng *rand.Rand, size incidentSize, cfg Config) incidentOutcome {
	const n = 60
	t0 := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	start := t0.Add(-30 * time.Minute)
	latency := rng.Float64() < 0.7
	rate := size.rateLo + (size.rateHi-size.rateLo)*rng.Float64()
	selfMs := 15 + 25*rng.Float64()

	type callee struct {
		name                string
		perReq, ms          float64
		overlap             float64 // the share of a call's time the caller waits (parallel calls)
		deployAt            int     // -1: no deployment
		guilty              bool
		slower, failureRate float64
	}
	callees := make([]*callee, 1+rng.IntN(3))
	for i := range callees {
		callees[i] = &callee{name: fmt.Sprintf("callee-%d", i), perReq: 0.5 + 1.5*rng.Float64(),
			ms: 10 + 40*rng.Float64(), overlap: 0.5 + 0.5*rng.Float64(), deployAt: -1, slower: 1, failureRate: 0.002}
	}
	type flag struct {
		key          string
		changeAt     int // -1: no change
		from, to     float64
		guilty       bool
		slower, fail float64
		calls        []float64 // per callee: the variant's calls per request multiplier
	}
	var flags []*flag
	if rng.IntN(2) == 0 {
		flags = append(flags, &flag{key: "steady", changeAt: -1, from: 0.5, to: 0.5, slower: 1, calls: ones(len(callees))})
	}

	// The changes: the own deployment and 1–4 others.
	kinds := []report.CauseKind{report.CauseOwnDeployment}
	for range 1 + rng.IntN(4) {
		if rng.IntN(2) == 0 {
			kinds = append(kinds, report.CauseCalleeDeployment)
		} else {
			kinds = append(kinds, report.CauseFeatureFlag)
		}
	}
	guiltyIdx := rng.IntN(len(kinds))
	// The incident: the guilty change raises the unit's mean latency by
	// U(20 %, 60 %), or its error rate by 3 points.
	base := selfMs
	for _, c := range callees {
		base += c.overlap * c.perReq * c.ms
	}
	rise := size.riseLo + (size.riseHi-size.riseLo)*rng.Float64()
	// A guilty own deployment or flag makes the unit slower by itself, or
	// (30 % of latency incidents) by calling a callee more often.
	byCalls, callsOf := latency && rng.Float64() < 0.3, rng.IntN(len(callees))
	ownCalls := ones(len(callees))
	var changes []Change
	ownSlower, ownFail := 1.0, 0.0
	for i, k := range kinds {
		guilty := i == guiltyIdx
		at := 30 + rng.IntN(31) - 15
		switch k {
		case report.CauseOwnDeployment:
			if guilty {
				switch {
				case byCalls:
					c := callees[callsOf]
					ownCalls[callsOf] = 1 + rise*base/(c.overlap*c.perReq*c.ms)
				case latency:
					ownSlower = 1 + rise*base/selfMs
				default:
					ownFail = 0.03
				}
			}
		case report.CauseCalleeDeployment:
			var c *callee
			for _, cand := range rng.Perm(len(callees)) {
				if callees[cand].deployAt < 0 {
					c = callees[cand]
					break
				}
			}
			if c == nil { // every callee deploys already: a flag instead
				kinds[i] = report.CauseFeatureFlag
				k = report.CauseFeatureFlag
				break
			}
			c.deployAt, c.guilty = at, guilty
			if guilty {
				if latency {
					c.slower = 1 + rise*base/(c.perReq*c.ms)
				} else {
					c.failureRate = math.Min(0.002+0.03/c.perReq, 1)
				}
			}
			changes = append(changes, Change{Kind: k, DeploymentID: "dep-" + c.name, Service: c.name,
				Environment: "prod", Start: start.Add(time.Duration(at) * time.Minute), End: start.Add(time.Duration(at) * time.Minute)})
		}
		if k == report.CauseFeatureFlag {
			f := &flag{key: fmt.Sprintf("flag-%d", i), changeAt: at, from: 0.1 * rng.Float64(),
				to: 0.4 + 0.2*rng.Float64(), guilty: guilty, slower: 1, calls: ones(len(callees))}
			if guilty {
				switch {
				case byCalls:
					c := callees[callsOf]
					f.calls[callsOf] = 1 + rise*base/((f.to-f.from)*c.overlap*c.perReq*c.ms)
				case latency:
					f.slower = 1 + rise*base/((f.to-f.from)*selfMs)
				default:
					f.fail = 0.03 / (f.to - f.from)
				}
			}
			flags = append(flags, f)
		}
	}

	// Shared load.
	load := make([]float64, n)
	for m := range load {
		load[m] = 1 + 0.05*rng.NormFloat64()
	}
	if rng.IntN(2) == 0 {
		peak, at := 1.5+rng.Float64(), 10+rng.IntN(40)
		for m := range load {
			load[m] *= 1 + (peak-1)*math.Min(math.Max(float64(m-at)/10, 0), 1)
		}
	}
	ownAt := 30
	e := &AttributionEvidence{Start: start, Unit: make([]MinuteSums, n), Changes: changes}
	calleeSeries := make([]NeighbourSeries, len(callees))
	for i, c := range callees {
		calleeSeries[i] = NeighbourSeries{Service: c.name, Environment: "prod", Minutes: make([]MinuteSums, n)}
	}
	flagSeries := make([]FlagSeries, len(flags))
	for i, f := range flags {
		flagSeries[i] = FlagSeries{Key: f.key, Variants: []VariantSeries{{"off", make([]MinuteSums, n)}, {"on", make([]MinuteSums, n)}}}
	}
	normalSum := func(count, mean float64) float64 { // a sum of count draws, cv 1
		if count <= 0 {
			return 0
		}
		return math.Max(count*mean+math.Sqrt(count)*mean*rng.NormFloat64(), 0)
	}
	binomial := func(count, p float64) float64 {
		if count <= 0 || p <= 0 {
			return 0
		}
		return math.Max(math.Round(count*p+math.Sqrt(count*p*(1-p))*rng.NormFloat64()), 0)
	}
	for m := 0; m < n; m++ {
		req := float64(poissonDraw(rng, rate*load[m]))
		slow := math.Pow(load[m], 0.273)
		// Split the minute's requests into cells of the flags' variants
		// (independent flags): each cell with its own self time and
		// failure rate.
		type cell struct {
			req      float64
			variants []int
		}
		cells := []cell{{req: req}}
		for _, f := range flags {
			share := f.from
			if f.changeAt >= 0 && m >= f.changeAt {
				share = f.to
			}
			var next []cell
			for _, c := range cells {
				on := binomial(c.req, share)
				next = append(next, cell{c.req - on, append(append([]int(nil), c.variants...), 0)},
					cell{on, append(append([]int(nil), c.variants...), 1)})
			}
			cells = next
		}
		for _, c := range cells {
			if c.req <= 0 {
				continue
			}
			mult, fail := slow, 0.005
			callMult := ones(len(callees))
			if m >= ownAt {
				mult *= ownSlower
				fail += ownFail
				for i := range callMult {
					callMult[i] *= ownCalls[i]
				}
			}
			for fi, v := range c.variants {
				if v == 1 {
					mult *= flags[fi].slower
					fail += flags[fi].fail
					for i := range callMult {
						callMult[i] *= flags[fi].calls[i]
					}
				}
			}
			dur := normalSum(c.req, selfMs*mult)
			errs := binomial(c.req, fail)
			for i, cl := range callees {
				calls := float64(poissonDraw(rng, c.req*cl.perReq*callMult[i]))
				ms, fr := cl.ms*slow, 0.002
				if cl.deployAt >= 0 && m >= cl.deployAt {
					ms *= cl.slower
					fr = cl.failureRate
				}
				cd := normalSum(calls, ms)
				ce := binomial(calls, fr)
				calleeSeries[i].Minutes[m].add(MinuteSums{calls, ce, cd})
				dur += cl.overlap * cd
				errs += ce
			}
			errs = math.Min(errs, c.req)
			sums := MinuteSums{c.req, errs, dur}
			e.Unit[m].add(sums)
			for fi, v := range c.variants {
				flagSeries[fi].Variants[v].Minutes[m].add(sums)
			}
		}
	}
	e.Callees, e.Flags = calleeSeries, flagSeries

	// 3 control units share the load, each with its sensitivity to it.
	e.Control = make([]MinuteSums, n)
	for range 3 {
		r, ms, sens := 100+400*rng.Float64(), 20+60*rng.Float64(), 1+0.1*rng.NormFloat64()
		for m := 0; m < n; m++ {
			req := float64(poissonDraw(rng, r*load[m]))
			e.Control[m].add(MinuteSums{req, binomial(req, 0.005), normalSum(req, ms*math.Pow(load[m], 0.273*sens))})
		}
	}
	own := Change{Kind: report.CauseOwnDeployment, DeploymentID: "own", Service: "unit", Environment: "prod",
		Start: start.Add(time.Duration(ownAt) * time.Minute), End: start.Add(time.Duration(ownAt) * time.Minute)}
	causes, elsewhere := Attribute(e, own, !latency, cfg)
	out := incidentOutcome{guilty: kinds[guiltyIdx], blamed: !elsewhere, changes: len(kinds), latency: latency}
	top := causes[0]
	out.ownFirst = top.Kind == report.CauseOwnDeployment
	switch kinds[guiltyIdx] {
	case report.CauseOwnDeployment:
		out.first = top.Kind == report.CauseOwnDeployment
	case report.CauseCalleeDeployment:
		for _, c := range callees {
			if c.guilty {
				out.first = top.Kind == report.CauseCalleeDeployment && top.Service == c.name
			}
		}
	case report.CauseFeatureFlag:
		for _, f := range flags {
			if f.guilty {
				out.first = top.Kind == report.CauseFeatureFlag && top.Flag == f.key
			}
		}
	}
	return out
}

type attributionRates struct {
	runs, first, innocent, innocentBlamed, guilty, guiltyBlamed int
	byKind                                                      map[report.CauseKind][2]int
}

func attributionRuns(size incidentSize, runs int, seed uint64, cfg Config) attributionRates {
	rng := rand.New(rand.NewPCG(seed, seed))
	r := attributionRates{runs: runs, byKind: map[report.CauseKind][2]int{}}
	for range runs {
		o := incidentRun(rng, size, cfg)
		k := r.byKind[o.guilty]
		k[1]++
		if o.first {
			r.first++
			k[0]++
		}
		r.byKind[o.guilty] = k
		if o.guilty == report.CauseOwnDeployment {
			r.guilty++
			if o.blamed {
				r.guiltyBlamed++
			}
		} else {
			r.innocent++
			if o.blamed {
				r.innocentBlamed++
			}
		}
	}
	return r
}

func pctOf(a, b int) float64 { return 100 * float64(a) / float64(max(b, 1)) }

func (r attributionRates) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "  true cause ranked first: %.1f %% (rule replaced: %.1f %%)\n", pctOf(r.first, r.runs), pctOf(r.guilty, r.runs))
	for _, k := range []report.CauseKind{report.CauseOwnDeployment, report.CauseCalleeDeployment, report.CauseFeatureFlag} {
		fmt.Fprintf(&b, "    guilty %s: %.1f %% of %d\n", k, pctOf(r.byKind[k][0], r.byKind[k][1]), r.byKind[k][1])
	}
	fmt.Fprintf(&b, "  innocent own deployment blamed: %.1f %% of %d (rule replaced: 100 %%)\n", pctOf(r.innocentBlamed, r.innocent), r.innocent)
	fmt.Fprintf(&b, "  guilty own deployment blamed: %.1f %% of %d (rule replaced: 100 %%)\n", pctOf(r.guiltyBlamed, r.guilty), r.guilty)
	return b.String()
}

// TestAttributionSimulation: seed 21, 1000 incidents (the issue asks for
// 100; more give tighter rates) of clear regressions (+15–60 % at 60–1500
// requests a minute): the true cause must rank first in ≥ 90 % of them and
// an innocent own deployment keep the blame in ≤ 2 %; a guilty own
// deployment must keep it (≥ 95 %). Faint ones (+5–15 % at 60–300 a
// minute, seed 22) are reported, not bounded: where the method runs out.
func TestAttributionSimulation(t *testing.T) {
	cfg := DefaultConfig()
	clear := attributionRuns(incidentsClear, 1000, 21, cfg)
	faint := attributionRuns(incidentsFaint, 1000, 22, cfg)
	t.Logf("attribution, 1000 clear incidents (seed 21) with 2–5 overlapping changes:\n%s", clear)
	t.Logf("attribution, 1000 faint incidents (seed 22):\n%s", faint)
	if p := pctOf(clear.first, clear.runs); p < 90 {
		t.Errorf("true cause ranked first in %.1f %% of incidents, want ≥ 90 %%", p)
	}
	if p := pctOf(clear.innocentBlamed, clear.innocent); p > 2 {
		t.Errorf("innocent own deployment blamed in %.1f %%, want ≤ 2 %%", p)
	}
	if p := pctOf(clear.guiltyBlamed, clear.guilty); p < 95 {
		t.Errorf("guilty own deployment blamed in %.1f %%, want ≥ 95 %%", p)
	}
	// An innocent deployment is never blamed more often for a faint
	// regression than for a clear one by much: unexplained regressions stay
	// with the deployment, as before.
	if p := pctOf(faint.guiltyBlamed, faint.guilty); p < 95 {
		t.Errorf("faint: guilty own deployment blamed in %.1f %%, want ≥ 95 %%", p)
	}
}

func ones(n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = 1
	}
	return out
}
