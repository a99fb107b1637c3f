package analysis

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/changelens/changelens/queryapi/report"
)

// The simulations of docs/analysis.md ("Controls"): deployments during
// causes the whole environment shares — a load ramp and the time of day —
// judged with the environment's undeployed units as controls, beside the
// same rule without them (the plain before/after comparison) on the same
// runs.
//
// Environment model (envRun): each run draws
//   - a load ramp: traffic rises by a factor F ~ U(2, 3) over L ~ U(5, 15)
//     minutes starting at a minute ~ U(−20, +10) around the deploy, and
//     every unit's latency by F^0.273 (+35 % at 3×: latency grows with
//     load);
//   - the time of day: a daily log-latency swing of amplitude 0.2 at a
//     random phase (up to ±5 % across the two windows);
//   - each unit's sensitivity to both ~ N(1, 0.1): units never respond
//     alike.
// The deployed unit serves 5 operations at 10 req/s; the controls are 3 to
// 5 undeployed units of 3 operations at 5–20 req/s; otherwise the standard
// traffic of the before/after simulations.

// envScenario is what a run of envRun plants.
type envScenario struct {
	ramp, diurnal bool
	slower        float64 // the deployed version's latency factor (0: 1)
}

func envRun(sc envScenario, rng *rand.Rand) simOutcome {
	const total = 30 + 2 + 30
	shared := make([]float64, total)
	rate := make([]float64, total)
	for m := range rate {
		rate[m] = 1
	}
	if sc.ramp {
		factor := 2 + rng.Float64()
		length := 5 + rng.Float64()*10
		start := 30 - 20 + rng.Float64()*30
		for m := range rate {
			f := math.Min(math.Max((float64(m)-start)/length, 0), 1)
			rate[m] = 1 + (factor-1)*f
			shared[m] += math.Log(1.35) / math.Log(3) * math.Log(rate[m])
		}
	}
	if sc.diurnal {
		phase := rng.Float64() * 1440
		for m := range shared {
			shared[m] += 0.2 * math.Sin(2*math.Pi*(float64(m)+phase)/1440)
		}
	}
	unit := defaultTraffic(5, 10)
	unit.shared, unit.rateMult, unit.sensitivity = shared, rate, 1+0.1*rng.NormFloat64()
	if sc.slower > 0 {
		unit = unit.withLatency(sc.slower)
	}
	for range 3 + rng.IntN(3) {
		c := defaultTraffic(3, 5+15*rng.Float64())
		c.shared, c.rateMult, c.sensitivity = shared, rate, 1+0.1*rng.NormFloat64()
		unit.controlUnits = append(unit.controlUnits, c)
	}
	return simulate(unit, rng)
}

func envRuns(sc envScenario, n int, seed uint64) []simOutcome {
	out := make([]simOutcome, n)
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := w; k < n; k += 2 {
				out[k] = envRun(sc, rand.New(rand.NewPCG(seed, uint64(k))))
			}
		}()
	}
	wg.Wait()
	return out
}

// TestControlsSimulation asserts the rates docs/analysis.md states for
// deployments during shared causes; -v prints the table.
func TestControlsSimulation(t *testing.T) {
	if testing.Short() {
		t.Skip("simulation: run without -short")
	}
	var rows []string
	for _, c := range []struct {
		name      string
		sc        envScenario
		seed      uint64
		min, most float64
	}{
		{"no real change, a shared load ramp", envScenario{ramp: true}, 401, 0, 0.01},
		{"no real change, the time of day", envScenario{diurnal: true}, 402, 0, 0.01},
		{"no real change, a load ramp and the time of day", envScenario{ramp: true, diurnal: true}, 403, 0, 0.01},
		{"+20 % on every request, a load ramp and the time of day", envScenario{ramp: true, diurnal: true, slower: 1.2}, 404, 0.9, 0},
		{"+20 % on every request, nothing shared", envScenario{slower: 1.2}, 405, 0.9, 0},
	} {
		runs := envRuns(c.sc, simRunsPerCase, c.seed)
		n, plain, env := 0, 0, 0
		for _, o := range runs {
			if o.j.Verdict == report.VerdictDegraded {
				n++
			}
			if o.plain == report.VerdictDegraded {
				plain++
			}
			if o.j.Control.Kind == ControlEnvironment {
				env++
			}
		}
		if env != len(runs) {
			t.Errorf("%s: the environment was the control in %d of %d runs", c.name, env, len(runs))
		}
		rate := float64(n) / float64(len(runs))
		rows = append(rows, fmt.Sprintf("| %s | %d | %d / %d (%.1f %%) | %d / %d (%.1f %%) |", c.name, c.seed, n, len(runs), 100*rate,
			plain, len(runs), 100*float64(plain)/float64(len(runs))))
		if c.most > 0 && rate > c.most {
			t.Errorf("%s: %d of %d DEGRADED, want at most %.0f %%", c.name, n, len(runs), 100*c.most)
		}
		if c.min > 0 && rate < c.min {
			t.Errorf("%s: %d of %d DEGRADED, want at least %.0f %%", c.name, n, len(runs), 100*c.min)
		}
	}
	t.Logf("\n| deployment (500 runs, 3–5 undeployed units) | seed | DEGRADED, with controls | without (the plain rule) |\n|---|---|---|---|\n%s", strings.Join(rows, "\n"))
}
