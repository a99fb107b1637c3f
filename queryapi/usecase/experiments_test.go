package usecase

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/changelens/changelens/internal/eventspan"
	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/experimentspec"
	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/store"
	"github.com/changelens/changelens/testkit/fakestore"
)

// experimentStory is the app shop-app's flag order-screen-api, GraphQL
// against REST, for a week after a week of REST alone; the backend orders
// serves each variant from its own version (REST 2.9.0, GraphQL 3.0.0):
// the same latency, cpuRatio × the CPU per request; the app's screen loads
// loadGainMs faster; the same conversion; the treatment's sessions crash
// at crashTreatment (the control's at 0.5 %).
func experimentStory(t *testing.T, users int, cpuRatio, loadGainMs, crashTreatment float64) (*fakestore.Store, experimentspec.Spec, time.Time) {
	t.Helper()
	st := fakestore.New()
	start := t0.Add(7 * 24 * time.Hour)
	end := start.Add(7 * 24 * time.Hour)
	versions := map[string]float64{"2.9.0": 1, "3.0.0": cpuRatio} // CPU seconds per request, relative
	for v := range versions {
		from := start
		if v == "2.9.0" {
			from = t0
		}
		load{service: "orders", env: "production", version: v, op: "GET /orders", from: from, to: end, perMinute: 20, errorsPerMin: 0,
			median: 80 * time.Millisecond}.add(st)
	}
	// The app's screen loads are its latency events too (what its version
	// list is read from).
	load{service: "shop-app", env: "production", version: "5.4.0", op: "screen order", from: t0, to: end, perMinute: 1,
		median: 700 * time.Millisecond}.add(st)
	// CPU: one instance per version, a cumulative counter sampled every
	// minute, 20 requests a minute × 5 ms (REST) of CPU each.
	for v, ratio := range versions {
		from := start
		if v == "2.9.0" {
			from = t0
		}
		cum := 0.0
		var pts []eventspan.UsagePoint
		for m := from; m.Before(end); m = m.Add(time.Minute) {
			cum += 20 * 0.005 * ratio
			pts = append(pts, eventspan.UsagePoint{Resource: eventspan.Resource{Service: "orders", Environment: "production", Version: v},
				Instance: "orders-" + v, Metric: "process.cpu.time", Temporality: eventspan.TemporalityCumulative,
				StartTime: from.UnixNano(), Time: m.Add(time.Minute - time.Second).UnixNano(), Value: cum})
		}
		st.AddUsage(pts...)
	}
	// Client sessions: users a day, one session each, one screen load,
	// 10 % convert; the variant by user (after the start), 2.9.0 before.
	rng := rand.New(rand.NewPCG(25, 1))
	for day := range 14 {
		for u := range users {
			user := "u" + string(rune('a'+u%26)) + strings.Repeat("x", u/26)
			at := t0.Add(time.Duration(day)*24*time.Hour + time.Duration(rng.IntN(86400))*time.Second)
			variant, base := "rest", 700.0
			crash := 0.005
			if !at.Before(start) && u%2 == 1 {
				variant, base, crash = "graphql", 700-loadGainMs, crashTreatment
			}
			var cohorts map[string]string
			if !at.Before(start) {
				cohorts = map[string]string{"feature_flag.order-screen-api": variant}
			}
			session := user + "-" + string(rune('0'+day%10)) + string(rune('a'+day/10))
			ms := base * (0.8 + 0.4*rng.Float64())
			st.AddClientEvents(fakestore.ClientEvent{Service: "shop-app", Environment: "production", Version: "5.4.0", Operation: "screen order",
				Start: at, Duration: time.Duration(ms * float64(time.Millisecond)), SessionID: session, UserID: user, Crashed: rng.Float64() < crash,
				Cohorts: cohorts})
			if rng.Float64() < 0.10 {
				st.AddOutcomes(fakestore.Outcome{Service: "shop-app", Environment: "production", Name: "checkout", Time: at.Add(time.Minute),
					SessionID: session, UserID: user, ID: session})
			}
		}
	}
	spec := experimentspec.Spec{ID: "graphql", Unit: analysis.ExperimentUnit{Service: "shop-app", Environment: "production"}, Dimension: "flag:order-screen-api",
		Variants: []analysis.ExperimentVariant{{Name: "rest", Control: true, Share: 0.5}, {Name: "graphql", Share: 0.5}},
		Backend: &experimentspec.Backend{Unit: analysis.ExperimentUnit{Service: "orders", Environment: "production"}, Dimension: "version",
			Variants: map[string]string{"rest": "2.9.0", "graphql": "3.0.0"}},
		PrimaryMetric:    &analysis.PrimaryMetric{Metric: analysis.ExpLoadP75, MinEffect: 0.05},
		Guardrails:       []analysis.Guardrail{{Metric: analysis.ExpCPUPerRequest, MaxDegradation: 0.10}, {Metric: analysis.ExpCrashRate}},
		SecondaryMetrics: []string{analysis.ExpConversionRate}, ConversionOutcome: "checkout", LoadOperations: []string{"screen order"},
		StartTime: start, PlannedDuration: "7d", RandomizationUnit: experimentspec.UnitSession}
	if err := spec.Validate(); err != nil {
		t.Fatal(err)
	}
	js, hash := spec.Canonical()
	st.PutExperiment(store.StoredExperiment{ID: spec.ID, Service: "shop-app", Environment: "production", Definition: js, Hash: hash, Source: "graphql.yaml", AppliedAt: start})
	return st, spec, end
}

func expMetric(r ExperimentResult, name string) analysis.MetricResult {
	for _, m := range r.Report.Treatments[0].Metrics {
		if m.Metric == name {
			return m
		}
	}
	return analysis.MetricResult{}
}

// The story's report reads each signal where it lives — latency from the
// requests, CPU from the metrics, loads, crashes and conversions from the
// client's sessions — and decides DONT_SHIP on the cost guardrail however
// much faster the screen loads.
func TestExperimentReportDecidesOnCost(t *testing.T) {
	st, spec, end := experimentStory(t, 600, 2, 200, 0.005)
	now := end.Add(time.Hour)
	svc := newService(t, st, &now, noCache)
	r, err := svc.ExperimentReport(context.Background(), spec.ID, now)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != ExperimentComplete || r.Report.Decision != analysis.DecisionDontShip || r.Report.Reason != analysis.ReasonGuardrailFailed {
		t.Fatalf("status %s decision %s %s: %s", r.Status, r.Report.Decision, r.Report.Reason, r.Report.Summary)
	}
	cpu := expMetric(r, analysis.ExpCPUPerRequest)
	if cpu.Verdict != analysis.VerdictFailed || cpu.TreatmentValue/cpu.Control < 1.9 || cpu.TreatmentValue/cpu.Control > 2.1 {
		t.Errorf("cpu %+v", cpu)
	}
	if got := cpu.Control; got < 4.9 || got > 5.1 { // 5 ms per request = 5 CPU seconds per 1000
		t.Errorf("control CPU per 1000 requests %.2f, want 5", got)
	}
	load := expMetric(r, analysis.ExpLoadP75)
	if load.Verdict != analysis.VerdictBetter || load.Delta > -150 || load.Delta < -250 {
		t.Errorf("load p75 %+v", load)
	}
	if conv := expMetric(r, analysis.ExpConversionRate); conv.Verdict != analysis.VerdictNoDifference {
		t.Errorf("conversion %+v", conv)
	}
	if !strings.Contains(r.Report.Summary, "CPU per request") || !strings.Contains(r.Report.Summary, "guardrail cost failed") {
		t.Errorf("summary %q", r.Report.Summary)
	}
	if r.Report.SRM == nil || r.Report.SRM.Mismatch {
		t.Errorf("srm %+v", r.Report.SRM)
	}
	// The plan read the week before: REST alone.
	if r.Plan.UnitsPerDay < 550 || r.Plan.UnitsPerDay > 650 || !r.Plan.Primary.OK {
		t.Errorf("plan %+v", r.Plan)
	}
}

// A/A: the same in both variants is no SHIP and no DONT_SHIP.
func TestExperimentReportAA(t *testing.T) {
	st, spec, end := experimentStory(t, 600, 1, 0, 0.005)
	now := end.Add(time.Hour)
	r, err := newService(t, st, &now, noCache).ExperimentReport(context.Background(), spec.ID, now)
	if err != nil {
		t.Fatal(err)
	}
	if r.Report.Decision != analysis.DecisionInconclusive {
		t.Fatalf("A/A decided %s (%s): %s", r.Report.Decision, r.Report.Reason, r.Report.Summary)
	}
}

// Crashes rising from 0.5 % to 1 % of sessions (21 000 sessions a variant
// over the week) fail the crash-rate guardrail.
func TestExperimentReportCrashRate(t *testing.T) {
	st, spec, end := experimentStory(t, 6000, 1, 0, 0.01)
	now := end.Add(time.Hour)
	r, err := newService(t, st, &now, noCache).ExperimentReport(context.Background(), spec.ID, now)
	if err != nil {
		t.Fatal(err)
	}
	crash := expMetric(r, analysis.ExpCrashRate)
	if crash.Verdict != analysis.VerdictFailed || r.Report.Decision != analysis.DecisionDontShip {
		t.Fatalf("crash %+v, decision %s", crash, r.Report.Decision)
	}
}

// A plan of a started experiment naming a variant that never served is an
// invalid argument naming it; the story's own definition plans.
func TestPlanExperimentVariantNeverServed(t *testing.T) {
	st, spec, end := experimentStory(t, 600, 2, 200, 0.005)
	now := end.Add(time.Hour)
	svc := newService(t, st, &now, noCache)
	if _, err := svc.PlanExperiment(context.Background(), spec, now); err != nil {
		t.Fatalf("the story's definition: %v", err)
	}
	spec.Variants[1].Name = "grapql"
	spec.Backend.Variants = map[string]string{"rest": "2.9.0", "grapql": "3.0.1"}
	_, err := svc.PlanExperiment(context.Background(), spec, now)
	var ia *report.InvalidArgumentError
	if !errors.As(err, &ia) || !strings.HasPrefix(ia.Reason, "experiment.variants[1]") {
		t.Fatalf("a variant that never served: %v", err)
	}
}
