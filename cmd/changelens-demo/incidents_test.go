package main

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/changelens/changelens/cmd/changelens-demo/plan"
	"github.com/changelens/changelens/internal/eventspan"
	"github.com/changelens/changelens/receiver/changelenswebhookreceiver"
)

const (
	testPagerDutySecret = "demo-pagerduty-secret"
	testAMToken         = "demo-alertmanager-token"
)

// startWebhookReceiver runs the changelens_webhook receiver with the
// PagerDuty and Alertmanager sources, as make run's collector serves them,
// into a sink.
func startWebhookReceiver(t *testing.T) (string, *consumertest.TracesSink) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	f := changelenswebhookreceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*changelenswebhookreceiver.Config)
	cfg.NetAddr.Endpoint = addr
	cfg.PagerDuty = configoptional.Some(changelenswebhookreceiver.PagerDutyConfig{Path: "/pagerduty",
		Secret: configopaque.String(testPagerDutySecret), Environment: "production"})
	cfg.Alertmanager = configoptional.Some(changelenswebhookreceiver.AlertmanagerConfig{Path: "/alertmanager",
		Token: configopaque.String(testAMToken), ServiceLabels: []string{"service"}, Environment: "production",
		MatchLabels: map[string]string{"changelens": "incident"}})
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	sink := new(consumertest.TracesSink)
	r, err := f.CreateTraces(context.Background(), receivertest.NewNopSettings(f.Type()), cfg, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Shutdown(context.Background()) })
	return addr, sink
}

// The bad checkout release in production gets an Alertmanager alert and a
// PagerDuty incident, each opened after it and resolved after its rollback,
// reported through the real receiver with its secrets.
func TestIncidentsReported(t *testing.T) {
	t.Setenv(envPagerDutySecret, testPagerDutySecret)
	t.Setenv(envAlertmanagerToken, testAMToken)
	hook, incidents := startWebhookReceiver(t)
	addr, _ := startSink(t)
	cfg := testConfig(addr)
	cfg.webhookEndpoint = hook
	res, out := runDemo(t, cfg)

	var bad, rollback plan.Deployment
	for _, d := range res.plan.Deployments {
		if d.Environment == plan.Production && d.Service == "checkout" {
			switch d.Kind {
			case plan.BadRelease:
				bad = d
			case plan.Rollback:
				rollback = d
			}
		}
	}
	if bad.Version == "" || rollback.Version == "" {
		t.Fatal("the scenario has no bad checkout release rolled back in production")
	}
	var got []eventspan.Incident
	for _, td := range incidents.AllTraces() {
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				if eventspan.ScopeKind(ss.Scope()) != eventspan.KindIncident {
					continue
				}
				for _, s := range ss.Spans().All() {
					got = append(got, eventspan.DecodeIncident(eventspan.ReadResource(rs.Resource().Attributes()), s))
				}
			}
		}
	}
	if len(got) != 4 {
		t.Fatalf("%d incident events, want 2 incidents opened and resolved: %+v", len(got), got)
	}
	sources := map[string]int{}
	for i, in := range got {
		sources[in.Source]++
		opened, resolvedAt := time.Unix(0, in.Opened), time.Unix(0, in.ResolvedAt)
		if in.Service != "checkout" || in.Environment != "production" || in.Title == "" || in.Severity == "" {
			t.Errorf("incident %+v", in)
		}
		if !opened.After(bad.Time()) || !opened.Before(rollback.Time()) {
			t.Errorf("%s opened %s, not between the bad release (%s) and its rollback (%s)", in.ID, opened, bad.Time(), rollback.Time())
		}
		if resolved := i%2 == 1; in.Resolved != resolved {
			t.Errorf("event %d of %s: resolved %v, want the opening, then the resolution", i, in.ID, in.Resolved)
		} else if resolved && (!resolvedAt.After(rollback.Time()) || in.ID != got[i-1].ID) {
			t.Errorf("%s resolved %s, rollback %s; opened as %s", in.ID, resolvedAt, rollback.Time(), got[i-1].ID)
		}
	}
	if sources[eventspan.IncidentSourceAlertmanager] != 2 || sources[eventspan.IncidentSourcePagerDuty] != 2 {
		t.Errorf("sources %v", sources)
	}
	if len(res.incidentIDs) != 2 || !strings.HasPrefix(res.incidentIDs[0], "alertmanager:") || !strings.HasPrefix(res.incidentIDs[1], "pagerduty:") {
		t.Errorf("accepted IDs %v", res.incidentIDs)
	}
	if !strings.Contains(out, "Incidents reported to the webhook receiver (2 accepted") {
		t.Errorf("summary without the incidents:\n%s", out)
	}

	// The same scenario reports the same incidents: a rerun replays them.
	again, _ := runDemo(t, cfg)
	if strings.Join(again.incidentIDs, " ") != strings.Join(res.incidentIDs, " ") {
		t.Errorf("rerun reported %v, first run %v", again.incidentIDs, res.incidentIDs)
	}
}

// A refused report (a wrong secret) is a warning: the traffic goes on.
func TestIncidentsRefusedIsAWarning(t *testing.T) {
	t.Setenv(envPagerDutySecret, "not the secret")
	t.Setenv(envAlertmanagerToken, testAMToken)
	hook, incidents := startWebhookReceiver(t)
	addr, _ := startSink(t)
	cfg := testConfig(addr)
	cfg.webhookEndpoint = hook
	res, _ := runDemo(t, cfg)
	if res.failed != 0 || res.exported == 0 {
		t.Errorf("traffic: %d exported, %d failed", res.exported, res.failed)
	}
	if n := incidents.SpanCount(); n != 2 {
		t.Errorf("%d incident events: want the alert's two, PagerDuty's refused", n)
	}
}

func TestAlertFingerprint(t *testing.T) {
	// Prometheus' fingerprint of the receiver's fixture alert
	// (receiver/changelenswebhookreceiver/testdata/alertmanager/firing.json).
	got := alertFingerprint(map[string]string{"alertname": "HighErrorRate", "environment": "production", "job": "checkout",
		"namespace": "shop", "service": "checkout", "severity": "critical"})
	if got != "ac89ccd809b194e5" {
		t.Errorf("fingerprint %s", got)
	}
}
