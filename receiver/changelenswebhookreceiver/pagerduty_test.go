package changelenswebhookreceiver

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/changelens/changelens/internal/eventspan"
)

// PagerDuty's documented v3 example (incident.priority_updated), as the
// triggered and the resolved event of its incident.
func TestPagerDutyTriggeredThenResolved(t *testing.T) {
	h := newHarness(t, testConfig(), nil)
	body := readFixture(t, "pagerduty/incident_triggered.json")
	assert.Equal(t, []string{"pagerduty:PGR0VU2"}, accepted(t, h.post("/pagerduty", body, pagerDutyHeaders(body)...)))
	body = readFixture(t, "pagerduty/incident_resolved.json")
	assert.Equal(t, []string{"pagerduty:PGR0VU2"}, accepted(t, h.post("/pagerduty", body, pagerDutyHeaders(body)...)))

	got := h.incidents()
	require.Len(t, got, 2)
	opened := mustTime(t, "2020-04-09T15:16:27Z").UnixNano()
	open := got[0]
	assert.Equal(t, eventspan.Incident{
		ID:       "pagerduty:PGR0VU2",
		Resource: eventspan.Resource{Service: "API Service", Environment: "production"},
		Source:   "pagerduty",
		Severity: "P1",
		Title:    "A little bump in the road",
		Opened:   opened,
		TraceID:  open.TraceID,
		SpanID:   open.SpanID,
	}, open)
	res := got[1]
	assert.True(t, res.Resolved)
	assert.Equal(t, mustTime(t, "2020-04-09T15:58:40.113Z").UnixNano(), res.ResolvedAt, "resolved when the event occurred")
	assert.Equal(t, opened, res.Opened, "the opening stays the incident's created_at")
	assert.Equal(t, open.ID, res.ID)
	assert.NotEqual(t, open.SpanID, res.SpanID, "the opening and the resolution are two spans")
	assert.Equal(t, int64(1), h.incidentCount(sourcePagerDuty, eventspan.IncidentOpen))
	assert.Equal(t, int64(1), h.incidentCount(sourcePagerDuty, eventspan.IncidentResolved))

	// A reopened incident is open again, under the same ID.
	body = editJSON(t, readFixture(t, "pagerduty/incident_triggered.json"), func(m map[string]any) {
		sub(m, "event")["event_type"] = "incident.reopened"
	})
	assert.Equal(t, []string{"pagerduty:PGR0VU2"}, accepted(t, h.post("/pagerduty", body, pagerDutyHeaders(body)...)))
	again := h.incidents()[2]
	assert.False(t, again.Resolved)
	assert.Equal(t, open.SpanID, again.SpanID, "an opening of the incident, as the first")
}

// The configured mappings name the service and environment, by the
// PagerDuty service's ID or its name; urgency is the severity of an
// incident without a priority.
func TestPagerDutyMappings(t *testing.T) {
	body := editJSON(t, readFixture(t, "pagerduty/incident_triggered.json"), func(m map[string]any) {
		delete(sub(sub(m, "event"), "data"), "priority")
	})
	for _, c := range []struct {
		name                   string
		services, environments map[string]string
		service, environment   string
	}{
		{"unmapped", nil, nil, "API Service", "production"},
		{"by ID", map[string]string{"PF9KMXH": "api", "API Service": "not this"}, map[string]string{"PF9KMXH": "staging"}, "api", "staging"},
		{"by name", map[string]string{"API Service": "api-gateway"}, map[string]string{"API Service": "eu"}, "api-gateway", "eu"},
		{"another service", map[string]string{"PXXXXXX": "x"}, map[string]string{"Other": "y"}, "API Service", "production"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig()
			pd := cfg.PagerDuty.Get()
			pd.Services, pd.Environments = c.services, c.environments
			h := newHarness(t, cfg, nil)
			accepted(t, h.post("/pagerduty", body, pagerDutyHeaders(body)...))
			in := h.incidents()[0]
			assert.Equal(t, c.service, in.Service)
			assert.Equal(t, c.environment, in.Environment)
			assert.Equal(t, "high", in.Severity)
		})
	}
	cfg := testConfig()
	cfg.PagerDuty.Get().Environment = "prod"
	h := newHarness(t, cfg, nil)
	accepted(t, h.post("/pagerduty", body, pagerDutyHeaders(body)...))
	assert.Equal(t, "prod", h.incidents()[0].Environment)
}

func TestPagerDutySignature(t *testing.T) {
	body := readFixture(t, "pagerduty/incident_triggered.json")
	good := signPagerDuty(testPagerDutySecret, body)
	other := signPagerDuty("the previous secret", body)
	for _, c := range []struct {
		name, signature string
		status          int
		reason          string
	}{
		{"good", good, http.StatusOK, ""},
		// During a rotation PagerDuty signs with every secret of the
		// subscription; any one matching is enough, in any position.
		{"rotated, ours second", other + "," + good, http.StatusOK, ""},
		{"rotated, ours first", good + ", " + other, http.StatusOK, ""},
		{"missing", "", http.StatusUnauthorized, reasonMissingSignature},
		{"another secret", other, http.StatusUnauthorized, reasonBadSignature},
		{"two others", other + "," + signPagerDuty("x", body), http.StatusUnauthorized, reasonBadSignature},
		{"another body", signPagerDuty(testPagerDutySecret, append([]byte(" "), body...)), http.StatusUnauthorized, reasonBadSignature},
		{"another version", "v0=" + strings.TrimPrefix(good, "v1="), http.StatusUnauthorized, reasonBadSignature},
		{"bare hex", strings.TrimPrefix(good, "v1="), http.StatusUnauthorized, reasonBadSignature},
		{"not hex", "v1=zz", http.StatusUnauthorized, reasonBadSignature},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, testConfig(), nil)
			headers := []string{"Content-Type", "application/json"}
			if c.signature != "" {
				headers = append(headers, headerPagerDutySignature, c.signature)
			}
			w := h.post("/pagerduty", body, headers...)
			assert.Equal(t, c.status, w.Code, w.Body.String())
			if c.status == http.StatusOK {
				assert.Len(t, h.incidents(), 1)
				return
			}
			assert.Contains(t, errorOf(t, w), headerPagerDutySignature)
			assert.Empty(t, h.spans(), "nothing passed on")
			assert.Equal(t, int64(1), h.rejected(sourcePagerDuty, c.reason))
		})
	}
	// Even a ping must be signed.
	h := newHarness(t, testConfig(), nil)
	w := h.post("/pagerduty", readFixture(t, "pagerduty/ping.json"), "Content-Type", "application/json")
	assert.Equal(t, http.StatusUnauthorized, w.Code)
}

// pagey.ping and the events that change no status are answered 200 (any
// other answer is a failed delivery to PagerDuty) and counted as ignored.
func TestPagerDutyIgnored(t *testing.T) {
	h := newHarness(t, testConfig(), nil)
	verbatim := readFixture(t, "pagerduty/incident_priority_updated.json")
	ack := editJSON(t, verbatim, func(m map[string]any) { sub(m, "event")["event_type"] = "incident.acknowledged" })
	service := editJSON(t, verbatim, func(m map[string]any) {
		e := sub(m, "event")
		e["event_type"], e["resource_type"], e["data"] = "service.updated", "service", map[string]any{"id": "PF9KMXH", "type": "service"}
	})
	for _, body := range [][]byte{readFixture(t, "pagerduty/ping.json"), verbatim, ack, service} {
		w := h.post("/pagerduty", body, pagerDutyHeaders(body)...)
		assert.Equal(t, http.StatusOK, w.Code, w.Body.String())
		assert.Contains(t, w.Body.String(), `"status":"ignored"`)
	}
	assert.Empty(t, h.spans())
	assert.Equal(t, int64(4), h.ignored(sourcePagerDuty))
}

func TestPagerDutyMalformed(t *testing.T) {
	triggered := readFixture(t, "pagerduty/incident_triggered.json")
	resolved := readFixture(t, "pagerduty/incident_resolved.json")
	edit := func(body []byte, f func(e, d map[string]any)) []byte {
		return editJSON(t, body, func(m map[string]any) {
			e := sub(m, "event")
			f(e, sub(e, "data"))
		})
	}
	for _, c := range []struct {
		name string
		body []byte
		want string
	}{
		{"not JSON", []byte("event=1"), "body: not a JSON PagerDuty v3 webhook"},
		{"no event", []byte(`{"messages":[]}`), "event: required"},
		{"no event type", edit(triggered, func(e, _ map[string]any) { delete(e, "event_type") }), "event.event_type: required"},
		{"no data", edit(triggered, func(e, _ map[string]any) { delete(e, "data") }), "event.data: required"},
		{"not an incident", edit(triggered, func(_, d map[string]any) { d["type"] = "incident_note" }), "event.data.type: not incident"},
		{"no id", edit(triggered, func(_, d map[string]any) { delete(d, "id") }), "event.data.id: required"},
		{"no created_at", edit(triggered, func(_, d map[string]any) { delete(d, "created_at") }), "event.data.created_at: required, an RFC 3339 time"},
		{"bad created_at", edit(triggered, func(_, d map[string]any) { d["created_at"] = "yesterday" }), "event.data.created_at"},
		{"no service", edit(triggered, func(_, d map[string]any) { delete(d, "service") }), "event.data.service: required"},
		{"unnamed service", edit(triggered, func(_, d map[string]any) { d["service"] = map[string]any{"id": "PF9KMXH"} }), "event.data.service.summary: required"},
		{"resolved, no occurred_at", edit(resolved, func(e, _ map[string]any) { delete(e, "occurred_at") }), "event.occurred_at: required"},
		{"a number for a string", edit(triggered, func(_, d map[string]any) { d["id"] = 12 }), "event.data.id: a JSON number where a string belongs"},
		{"a string for an object", edit(triggered, func(_, d map[string]any) { d["service"] = "API Service" }), "event.data.service: a JSON string where an object belongs"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, testConfig(), nil)
			w := h.post("/pagerduty", c.body, pagerDutyHeaders(c.body)...)
			assert.Equal(t, http.StatusBadRequest, w.Code)
			assert.True(t, strings.HasPrefix(errorOf(t, w), c.want), "%q, want %q", errorOf(t, w), c.want)
			assert.Empty(t, h.spans())
			assert.Equal(t, int64(1), h.rejected(sourcePagerDuty, reasonMalformed))
		})
	}
}
