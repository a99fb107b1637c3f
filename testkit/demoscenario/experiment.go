package demoscenario

import (
	"context"
	"strings"
	"testing"
	"time"

	chschema "github.com/changelens/changelens/internal/schema"
	"github.com/changelens/changelens/queryapi/experimentspec"
	"github.com/changelens/changelens/testkit/chtest"
	"github.com/changelens/changelens/worker/writer"
)

// ExperimentID is the ID of the experiment Write stores.
const ExperimentID = "orders-new-checkout"

// scenarioExperiment is the orders service's flag defined up front, as
// changelens-worker would have stored it from a team's YAML: the experiment
// dashboard has something to show in every column. cpu_per_request has no
// source on a server without the metrics pipeline, which is what fills the
// Note column.
const scenarioExperiment = `
id: orders-new-checkout
description: the new checkout flow on orders
unit: {service: orders, environment: production}
dimension: flag:new-checkout
variants:
  - {name: "off", control: true, share: 0.5}
  - {name: "on", share: 0.5}
primary_metric: {metric: latency_p95, min_effect: 0.05}
guardrails:
  - {metric: error_rate, max_degradation: 0.5}
  - {metric: cpu_per_request, max_degradation: 0.1}
secondary_metrics: [payload_size]
start_time: %START%
planned_duration: 1d
`

// storeExperiment stores the definition with the worker's writer, started
// when the scenario's orders traffic starts.
func storeExperiment(t testing.TB, ch *chtest.Server, db string, end time.Time) {
	t.Helper()
	start := end.Add(-OrdersLength).Truncate(time.Minute)
	s, err := experimentspec.Parse([]byte(strings.ReplaceAll(scenarioExperiment, "%START%", start.Format(time.RFC3339))))
	if err == nil {
		err = s.Validate()
	}
	if err != nil {
		t.Fatal(err)
	}
	if s.ID != ExperimentID {
		t.Fatalf("demoscenario: the experiment's ID is %q, ExperimentID says %q", s.ID, ExperimentID)
	}
	js, hash := s.Canonical()
	w := writer.New(ch.Conn(t, db), chschema.Options{Database: db, Features: chschema.FeaturesFor(ch.Version())})
	if err := w.StoreExperiments(context.Background(), []writer.Experiment{{ID: s.ID, Service: s.Unit.Service,
		Environment: s.Unit.Environment, Definition: js, Hash: hash, Source: "experiments/orders-new-checkout.yaml"}}, time.Now()); err != nil {
		t.Fatal(err)
	}
}
