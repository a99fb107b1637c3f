package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/changelens/changelens/queryapi/report"
)

// memLog is a delivery log in memory.
type memLog struct {
	mu   sync.Mutex
	done map[string]Delivery
}

func (l *memLog) Delivered(_ context.Context, keys []string) (map[string]bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]bool{}
	for _, k := range keys {
		if _, ok := l.done[k]; ok {
			out[k] = true
		}
	}
	return out, nil
}

func (l *memLog) Record(_ context.Context, d Delivery) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done == nil {
		l.done = map[string]Delivery{}
	}
	l.done[d.Key] = d
	return nil
}

// receiver is a local HTTP server that records what it is sent and answers
// the statuses queued for it (200 once the queue is empty).
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	statuses []int
	got      []received
}

type received struct {
	path, key, auth string
	body            map[string]any
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	r := &receiver{statuses: statuses}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		var body map[string]any
		_ = json.Unmarshal(b, &body)
		r.mu.Lock()
		code := 200
		if len(r.statuses) > 0 {
			code, r.statuses = r.statuses[0], r.statuses[1:]
		}
		if code == 200 {
			r.got = append(r.got, received{req.URL.Path, req.Header.Get("Idempotency-Key"), req.Header.Get("Authorization"), body})
		}
		r.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) received() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

var degraded = Event{
	Kind: KindDegraded,
	Deployment: report.Deployment{ID: "d1", Service: "checkout", Environment: "production", Version: "2.0", PreviousVersion: "1.9",
		DeployTime: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC), Verdict: report.VerdictDegraded, ChangeFailure: true},
	Before:      report.Window{Start: time.Date(2026, 11, 25, 9, 30, 0, 0, time.UTC), Requests: 1800, ErrorRate: 0.005, P95Ms: 70},
	After:       report.Window{Start: time.Date(2026, 11, 25, 10, 2, 0, 0, time.UTC), Requests: 1790, ErrorRate: 0.004, P95Ms: 210},
	Explanation: "DEGRADED: checkout 1.9 → 2.0 in production — latency regressed (p95 ×3.00)",
}

// Every target type gets its payload, with the idempotency key in the body
// and in a header, and a Grafana token as a bearer; a second delivery
// sends nothing.
func TestPayloads(t *testing.T) {
	hook, slack, grafana := newReceiver(t), newReceiver(t), newReceiver(t)
	log := &memLog{}
	n, err := New(Config{Targets: []Target{
		{Name: "hook", Type: TypeWebhook, URL: hook.URL + "/changelens", Headers: map[string]string{"X-Team": "shop"}},
		{Name: "slack", Type: TypeSlack, URL: slack.URL + "/services/T000/B000/secret"},
		{Name: "grafana", Type: TypeGrafana, URL: grafana.URL + "/", Token: "glsa_secret"},
	}, APIURL: "http://api:8080", DashboardURL: "http://grafana:3000"}, log, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	sent, err := n.Deliver(context.Background(), []Event{degraded})
	require.NoError(t, err)
	assert.Equal(t, 3, sent)

	h := hook.received()
	require.Len(t, h, 1)
	assert.Equal(t, Key("d1", KindDegraded, "hook"), h[0].key)
	assert.Equal(t, h[0].key, h[0].body["idempotency_key"])
	assert.Equal(t, "deployment.degraded", h[0].body["event"])
	d := h[0].body["deployment"].(map[string]any)
	assert.Equal(t, "DEGRADED", d["verdict"])
	assert.Equal(t, "1.9", d["previous_version"])
	assert.Equal(t, 210.0, h[0].body["after"].(map[string]any)["p95_ms"])
	links := h[0].body["links"].(map[string]any)
	assert.Equal(t, "http://api:8080/v1/deployments/d1/impact", links["impact"])
	assert.Equal(t, "http://grafana:3000/d/changelens-deployment-impact?var-deployment=d1", links["dashboard"])

	s := slack.received()
	require.Len(t, s, 1)
	assert.Equal(t, "/services/T000/B000/secret", s[0].path)
	assert.Contains(t, s[0].body["text"], degraded.Explanation)
	assert.Contains(t, mustJSON(t, s[0].body["blocks"]), Key("d1", KindDegraded, "slack"))

	g := grafana.received()
	require.Len(t, g, 1)
	assert.Equal(t, "/api/annotations", g[0].path)
	assert.Equal(t, "Bearer glsa_secret", g[0].auth)
	assert.Equal(t, float64(degraded.Deployment.DeployTime.UnixMilli()), g[0].body["time"])
	assert.ElementsMatch(t, []any{"changelens", "service:checkout", "environment:production", "version:2.0", "verdict:DEGRADED",
		"event:degraded", "idempotency-key:" + Key("d1", KindDegraded, "grafana")}, g[0].body["tags"])

	sent, err = n.Deliver(context.Background(), []Event{degraded})
	require.NoError(t, err)
	assert.Equal(t, 0, sent, "delivered notifications are not sent again")
	assert.Len(t, hook.received(), 1)
}

// A failing target is retried with backoff until it answers; one answering
// 4xx is not retried; neither holds up another target; the URL (with its
// secret) never reaches the log.
func TestRetriesAndSecrets(t *testing.T) {
	flaky := newReceiver(t, 503, 502, 429)
	wrong := newReceiver(t, 404)
	var logs bytes.Buffer
	log := &memLog{}
	n, err := New(Config{Targets: []Target{
		{Name: "flaky", Type: TypeSlack, URL: flaky.URL + "/hooks/TOKEN123"},
		{Name: "wrong", Type: TypeWebhook, URL: wrong.URL + "/?token=TOKEN456"},
	}, MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}, log, slog.New(slog.NewTextHandler(&logs, nil)))
	require.NoError(t, err)
	sent, err := n.Deliver(context.Background(), []Event{degraded})
	assert.Equal(t, 1, sent)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "target wrong: HTTP 404")
	assert.Len(t, flaky.received(), 1)
	assert.Equal(t, 4, log.done[Key("d1", KindDegraded, "flaky")].Attempts)

	// The unreachable: connection refused, retried until the deadline.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL + "/hook?secret=TOKEN789"
	dead.Close()
	n, err = New(Config{Targets: []Target{{Name: "dead", Type: TypeWebhook, URL: deadURL}},
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}, log, slog.New(slog.NewTextHandler(&logs, nil)))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = n.Deliver(ctx, []Event{degraded})
	require.Error(t, err)
	for _, secret := range []string{"TOKEN123", "TOKEN456", "TOKEN789", "secret="} {
		assert.NotContains(t, logs.String()+err.Error(), secret)
	}
	assert.Contains(t, logs.String(), "dead")
}

func TestConfigErrorsNameTheField(t *testing.T) {
	for _, c := range []struct {
		t    Target
		want string
	}{
		{Target{Type: TypeWebhook, URL: "http://x"}, "name is required"},
		{Target{Name: "a", Type: "email", URL: "http://x"}, "target a: type"},
		{Target{Name: "b", Type: TypeSlack, URL: "hooks.slack.com/TOKEN"}, "target b: url"},
	} {
		_, err := New(Config{Targets: []Target{c.t}}, &memLog{}, slog.New(slog.DiscardHandler))
		require.Error(t, err)
		assert.Contains(t, err.Error(), c.want)
		assert.NotContains(t, err.Error(), "TOKEN")
	}
}

func TestEvents(t *testing.T) {
	rolled := report.Impact{Deployment: report.Deployment{ID: "d2", Service: "cart", Environment: "production", Version: "3",
		PreviousVersion: "2", Verdict: report.VerdictNoChange, ChangeFailure: true, FailureReasons: []report.FailureReason{report.ReasonRolledBack}}}
	fine := report.Impact{Deployment: report.Deployment{ID: "d3", Verdict: report.VerdictNoChange}}
	pending := report.Impact{Deployment: report.Deployment{ID: "d4", Verdict: report.VerdictPending}}
	bad := report.Impact{Deployment: degraded.Deployment, Reasons: []report.FailureReason{report.ReasonLatencyRegression}, LatencyRatio: 3,
		Explanation: "DEGRADED: p95 of GET /cart 100 → 300 ms (+200 %, [+180 %, +221 %], 1 800 vs 1 750 requests); other 3 operations within ±2 % on p95."}
	kinds := func(es []Event) (out []string) {
		for _, e := range es {
			out = append(out, e.Deployment.ID+":"+string(e.Kind))
		}
		return out
	}
	assert.Equal(t, []string{"d2:rolled_back", "d1:degraded"}, kinds(EventsOf([]report.Impact{rolled, fine, pending, bad}, false)))
	assert.Equal(t, []string{"d2:rolled_back", "d3:deployed", "d1:degraded"}, kinds(EventsOf([]report.Impact{rolled, fine, pending, bad}, true)))
	e := EventsOf([]report.Impact{bad}, false)[0]
	assert.Equal(t, "DEGRADED: checkout 1.9 → 2.0 in production — p95 of GET /cart 100 → 300 ms (+200 %, [+180 %, +221 %], 1 800 vs 1 750 requests); other 3 operations within ±2 % on p95. Roll back or fix forward.", e.Explanation)
	f := EventOfFailure(report.Deployment{ID: "d5", Service: "cart", Environment: "staging", Version: "4", PreviousVersion: "3", Failed: true})
	assert.Equal(t, KindFailed, f.Kind)
	assert.Contains(t, f.Explanation, "FAILED: the deploy of cart 4 to staging failed")
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// A regression another deployment caused is told to that deployment's
// targets, naming who it slowed; a target routed to other services does not
// hear of it. One cause slowing two callers is two notifications.
func TestCausedRegressionGoesToTheCause(t *testing.T) {
	at := time.Date(2026, 3, 2, 12, 1, 0, 0, time.UTC)
	cause := report.Cause{Kind: report.CauseCalleeDeployment, DeploymentID: "c1", Service: "checkout", Environment: "production",
		Version: "1.1", Start: at, End: at, Metric: "latency_mean_ms", Explained: 54.8, Share: 1.2, Z: 40, Significant: true, Rank: 1}
	affected := func(id, svc string) report.Impact {
		return report.Impact{
			Deployment: report.Deployment{ID: id, Service: svc, Environment: "production", Version: "2.0", PreviousVersion: "1.0",
				DeployTime: at.Add(-time.Minute), Verdict: report.VerdictCausedByDependency, Cause: &cause,
				Regressions: []report.Regression{{Metric: "latency_p95_ms", Before: 206, After: 294, RelativeChange: 0.39}}},
			Before: report.Window{P95Ms: 206}, After: report.Window{P95Ms: 294},
		}
	}
	events := EventsOf([]report.Impact{affected("f1", "frontend"), affected("m1", "mobile-bff")}, false)
	require.Len(t, events, 2)
	e := events[0]
	assert.Equal(t, KindCausedRegression, e.Kind)
	assert.Equal(t, "checkout", e.Deployment.Service, "the event is the cause's")
	assert.Equal(t, "CAUSED REGRESSION: checkout 1.1 in production (deployed 2026-03-02 12:01 UTC) explains the regression of frontend 1.0 → 2.0 in production (+54.8 ms per request, 100 % of the rise; p95 206 → 294 ms, errors 0.00% → 0.00%); frontend's deployment is not to blame.", e.Explanation)

	checkoutTeam, frontendTeam := newReceiver(t), newReceiver(t)
	log := &memLog{}
	n, err := New(Config{Targets: []Target{
		{Name: "checkout-team", Type: TypeWebhook, URL: checkoutTeam.URL, Services: []string{"checkout", "payments"}},
		{Name: "frontend-team", Type: TypeWebhook, URL: frontendTeam.URL, Services: []string{"frontend"}},
	}}, log, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	sent, err := n.Deliver(context.Background(), events)
	require.NoError(t, err)
	assert.Equal(t, 2, sent)
	require.Len(t, checkoutTeam.got, 2)
	assert.Empty(t, frontendTeam.got, "the frontend's team is not paged for the callee's release")
	body := checkoutTeam.got[0].body
	assert.Equal(t, "deployment.caused_regression", body["event"])
	assert.Equal(t, "c1", body["deployment"].(map[string]any)["id"])
	assert.Equal(t, "f1", body["affected"].(map[string]any)["id"])
	assert.Equal(t, "CALLEE_DEPLOYMENT", body["cause"].(map[string]any)["kind"])
	assert.Equal(t, "m1", checkoutTeam.got[1].body["affected"].(map[string]any)["id"])
	assert.NotEqual(t, checkoutTeam.got[0].key, checkoutTeam.got[1].key, "one notification per affected deployment")

	// Delivered once: a second pass sends nothing.
	sent, err = n.Deliver(context.Background(), events)
	require.NoError(t, err)
	assert.Zero(t, sent)

	_, err = New(Config{Targets: []Target{{Name: "x", Type: TypeWebhook, URL: "http://x", Services: []string{""}}}}, &memLog{}, slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "target x: services")
}

// A deployment DEGRADED for a new error kind: the webhook carries the
// reason and the kind's regression entry with its first trace, Slack's text
// and Grafana's annotation the explanation naming it, Grafana a reason tag.
func TestNewErrorKindPayloads(t *testing.T) {
	im := report.Impact{
		Deployment: report.Deployment{ID: "d2", Service: "pay", Environment: "production", Version: "2", PreviousVersion: "1",
			DeployTime: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC), Verdict: report.VerdictDegraded, ChangeFailure: true,
			FailureReasons: []report.FailureReason{report.ReasonNewErrorKind},
			Regressions: []report.Regression{{Metric: "new_error_kind", ErrorKind: "java.lang.NullPointerException",
				FirstTraceID: "4bf92f3577b34da6a3ce929d0e0e4736", Before: 0, After: 0.003, RelativeChange: math.Inf(1),
				CILow: 0.002, CIHigh: 0.004, BeforeRequests: 18000, AfterRequests: 18000}}},
		Verdict: report.VerdictDegraded,
		Explanation: "DEGRADED: NEW_ERROR_KIND: java.lang.NullPointerException at 0.30 % of requests after (0 in 18 000 before; " +
			"first trace 4bf92f3577b34da6a3ce929d0e0e4736); nothing larger than an error rate of 0.86 % (18 000 vs 18 000 requests).",
	}
	events := EventsOf([]report.Impact{im}, false)
	require.Len(t, events, 1)
	assert.Contains(t, events[0].Explanation, "java.lang.NullPointerException at 0.30 % of requests after")
	assert.Contains(t, events[0].Explanation, "first trace 4bf92f3577b34da6a3ce929d0e0e4736")

	hook, slack, grafana := newReceiver(t), newReceiver(t), newReceiver(t)
	n, err := New(Config{Targets: []Target{
		{Name: "hook", Type: TypeWebhook, URL: hook.URL},
		{Name: "slack", Type: TypeSlack, URL: slack.URL},
		{Name: "grafana", Type: TypeGrafana, URL: grafana.URL},
	}}, &memLog{}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	sent, err := n.Deliver(context.Background(), events)
	require.NoError(t, err)
	assert.Equal(t, 3, sent)
	body := hook.received()[0].body
	assert.Equal(t, []any{"NEW_ERROR_KIND"}, body["deployment"].(map[string]any)["failure_reasons"])
	reg := body["regressions"].([]any)[0].(map[string]any)
	assert.Equal(t, "new_error_kind", reg["metric"])
	assert.Equal(t, "java.lang.NullPointerException", reg["error_kind"])
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", reg["first_trace_id"])
	assert.Nil(t, reg["relative_change"], "+Inf: absent before")
	assert.Contains(t, slack.received()[0].body["text"], "NEW_ERROR_KIND: java.lang.NullPointerException at 0.30 %")
	g := grafana.received()[0].body
	assert.Contains(t, g["tags"], "reason:NEW_ERROR_KIND")
	assert.Contains(t, g["text"], "first trace 4bf92f3577b34da6a3ce929d0e0e4736")
}
