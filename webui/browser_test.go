package webui_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/changelens/changelens/queryapi/server"
	"github.com/changelens/changelens/queryapi/teams"
	"github.com/changelens/changelens/testkit/apitest"
	"github.com/changelens/changelens/testkit/browser"
	"github.com/changelens/changelens/testkit/chtest"
	"github.com/changelens/changelens/testkit/demoscenario"
	"github.com/changelens/changelens/webui"
)

func TestMain(m *testing.M) { os.Exit(chtest.Main(m)) }

// traceUI is the trace links' target in the test: a Jaeger-style URL.
const traceUI = "http://jaeger.test:16686/trace/{trace_id}"

// testTeams groups the demo's services in two teams, with targets and a
// focus for the quarter the test runs in.
func testTeams(t *testing.T, now time.Time) *teams.Mapping {
	q := fmt.Sprintf("%d-Q%d", now.Year(), (int(now.Month())-1)/3+1)
	m, err := teams.Parse([]byte(`teams:
  - name: payments
    services: [checkout, payments, orders]
    targets: {deployment_frequency_per_day: 2, lead_time_hours: 24, change_failure_rate: 0.15, recovery_time_hours: 1, rework_rate: 0.1}
    focus: {` + q + `: change_failure_rate}
  - name: storefront
    services: [storefront, catalog, web, inventory]
    targets: {deployment_frequency_per_day: 1}
`))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

type stack struct {
	base   string
	client *http.Client
}

// serve starts the real API with the UI on the store, as changelens-api
// does, with the given tokens (none: auth off).
func serve(t *testing.T, dsn string, tm *teams.Mapping, tokens []string) *stack {
	t.Helper()
	ui, err := webui.Handler(webui.Config{TraceURL: traceUI, Auth: len(tokens) > 0, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	base := apitest.Start(t, dsn, server.Config{AuthTokens: tokens, Teams: tm, UI: ui})
	return &stack{base: base, client: &http.Client{Timeout: time.Minute}}
}

// get asks the API what the page asked it, for the test's own answer.
func (s *stack) get(t *testing.T, path string, q url.Values, out any) {
	t.Helper()
	u := s.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	resp, err := s.client.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

// artifacts is where screenshots go: .build/screenshots/<engine>/ at the
// repository's root (CI keeps .build/ as an artifact); with
// CHANGELENS_UPDATE_SCREENSHOTS=1 they are also copied to docs/images/,
// where the README takes them from.
func artifacts(t *testing.T, ch *chtest.Server) string {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	v := ch.Version()
	if i := strings.IndexByte(v, '.'); i > 0 {
		if j := strings.IndexByte(v[i+1:], '.'); j > 0 {
			v = v[:i+1+j]
		}
	}
	return filepath.Join(root, ".build", "screenshots", "clickhouse-"+v)
}

func show(v *float64) string {
	if v == nil {
		return "null"
	}
	return strconv.FormatFloat(*v, 'g', -1, 64)
}

func rfc(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// number parses a data-value the page wrote from the API's JSON number.
func number(t *testing.T, what, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("%s: data-value %q is not a number", what, s)
	}
	return v
}

type deployment struct {
	ID             string `json:"id"`
	Service        string `json:"service"`
	Version        string `json:"version"`
	Verdict        string `json:"verdict"`
	Failed         bool   `json:"failed"`
	ChangeFailure  bool   `json:"change_failure"`
	DeployTime     string `json:"deploy_time"`
	Explanation    string `json:"explanation"`
	FailureReasons []string
}

type doraFigures struct {
	StartTime                  string  `json:"start_time"`
	DeploymentCount            int     `json:"deployment_count"`
	DeploymentFrequencyPerDay  float64 `json:"deployment_frequency_per_day"`
	ChangeCount                int     `json:"change_count"`
	ChangeFailureRate          float64 `json:"change_failure_rate"`
	LeadTimeMedianSeconds      float64 `json:"lead_time_median_seconds"`
	LeadTimeSampleCount        int     `json:"lead_time_sample_count"`
	TimeToRestoreMedianSeconds float64 `json:"time_to_restore_median_seconds"`
	RestoreSampleCount         int     `json:"restore_sample_count"`
	ReworkRate                 float64 `json:"rework_rate"`
}

// doraValues are the five figures as the pages show them: absent where
// there is no sample.
func (f doraFigures) values() map[string]*float64 {
	p := func(ok bool, v float64) *float64 {
		if !ok {
			return nil
		}
		return &v
	}
	return map[string]*float64{
		"deployment_frequency":            p(true, f.DeploymentFrequencyPerDay),
		"lead_time":                       p(f.LeadTimeSampleCount > 0, f.LeadTimeMedianSeconds),
		"change_failure_rate":             p(f.ChangeCount > 0, f.ChangeFailureRate),
		"failed_deployment_recovery_time": p(f.RestoreSampleCount > 0, f.TimeToRestoreMedianSeconds),
		"rework_rate":                     p(f.DeploymentCount > 0, f.ReworkRate),
	}
}

// tilesRange is q with the range the page's DORA tiles were asked for.
func tilesRange(t *testing.T, p *browser.Page, q url.Values) url.Values {
	t.Helper()
	for _, a := range []string{"start", "end"} {
		v := p.Attr(t, ".tiles", "data-"+a)
		ts, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			t.Fatalf("tiles' data-%s %q: %v", a, v, err)
		}
		q.Set(a+"_time", rfc(ts))
	}
	return q
}

// checkTiles compares the five DORA tiles with the API's figures.
func checkTiles(t *testing.T, p *browser.Page, f doraFigures, where string) {
	t.Helper()
	for key, want := range f.values() {
		got := p.Attr(t, fmt.Sprintf(`[data-dora=%q] [data-value]`, key), "data-value")
		switch {
		case want == nil && got != "":
			t.Errorf("%s: tile %s shows %s, the API has no sample", where, key, got)
		case want != nil && (got == "" || number(t, key, got) != *want):
			t.Errorf("%s: tile %s = %q, the API's %v", where, key, got, *want)
		}
	}
}

func TestPagesInBrowser(t *testing.T) {
	ch := chtest.Shared(t)
	db := ch.NewDatabase(t)
	end := time.Now().UTC().Truncate(time.Minute).Add(-2 * time.Minute)
	sc := demoscenario.Write(t, ch, db, end, demoscenario.Length, demoscenario.PerMinute)
	t.Logf("demo scenario: %d requests over %s", sc.Requests, demoscenario.Length)
	tm := testTeams(t, time.Now().UTC())
	dsn := ch.DSN(chtest.ReadOnlyUser, chtest.ReadOnlyPassword, db)
	s := serve(t, dsn, tm, nil)
	b := browser.New(t)
	shots := artifacts(t, ch)

	// Every page: ready with no console error, failed request or uncaught
	// exception, no WCAG 2.1 A/AA violation, a screenshot.
	open := func(t *testing.T, name, path string) *browser.Page {
		t.Helper()
		p := b.Open(t, s.base+path)
		if errs := p.ConsoleErrors(); len(errs) > 0 {
			t.Errorf("%s: console:\n%s", path, strings.Join(errs, "\n"))
		}
		for _, v := range p.Axe(t) {
			t.Errorf("%s: accessibility: %s", path, v)
		}
		p.Screenshot(t, filepath.Join(shots, name+".png"))
		return p
	}
	now := func() time.Time { return time.Now().UTC() }

	t.Run("overview", func(t *testing.T) {
		p := open(t, "overview", "/ui/?environment=production")
		n := now()
		var d struct{ Summary doraFigures }
		s.get(t, "/v1/dora", tilesRange(t, p, url.Values{"environment": {"production"}}), &d)
		checkTiles(t, p, d.Summary, "overview")
		var deps struct{ Deployments []deployment }
		s.get(t, "/v1/deployments", url.Values{"environment": {"production"}, "start_time": {rfc(n.Add(-7 * 24 * time.Hour))}, "end_time": {rfc(n)}, "page_size": {"500"}}, &deps)
		var want []string
		for _, d := range deps.Deployments {
			want = append(want, d.ID)
		}
		var got []string
		p.Eval(t, `Array.from(document.querySelectorAll("tr[data-deployment]")).map(e => e.dataset.deployment)`, &got)
		if len(want) == 0 || !slices.Equal(got, want) {
			t.Errorf("overview lists deployments %v, the API %v", got, want)
		}
	})

	// The demo's degraded deployment in production, and its unit.
	var deps struct{ Deployments []deployment }
	n := now()
	s.get(t, "/v1/deployments", url.Values{"environment": {"production"}, "start_time": {rfc(n.Add(-30 * 24 * time.Hour))}, "end_time": {rfc(n)}, "page_size": {"500"}}, &deps)
	var degraded deployment
	for _, d := range deps.Deployments {
		if d.Verdict == "VERDICT_DEGRADED" {
			degraded = d
			break
		}
	}
	if degraded.ID == "" {
		t.Fatalf("the demo has no degraded deployment in production: %+v", deps.Deployments)
	}

	t.Run("unit", func(t *testing.T) {
		p := open(t, "unit", "/ui/units/"+url.PathEscape(degraded.Service)+"?environment=production")
		var unit struct{ Deployments []deployment }
		n := now()
		s.get(t, "/v1/deployments", url.Values{"service": {degraded.Service}, "environment": {"production"}, "start_time": {rfc(n.Add(-30 * 24 * time.Hour))}, "end_time": {rfc(n)}, "page_size": {"500"}}, &unit)
		for _, d := range unit.Deployments {
			got := p.Attr(t, fmt.Sprintf(`tr[data-deployment=%q] [data-status]`, d.ID), "data-status")
			if want := strings.TrimPrefix(d.Verdict, "VERDICT_"); got != want {
				t.Errorf("deployment %s: the page says %s, the API %s", d.ID, got, want)
			}
		}
		if rows := len(p.Texts(t, "tr[data-deployment]")); rows != len(unit.Deployments) {
			t.Errorf("%d rows, the API lists %d", rows, len(unit.Deployments))
		}
	})

	t.Run("deployment", func(t *testing.T) {
		p := open(t, "deployment", "/ui/deployments/"+url.PathEscape(degraded.ID))
		var imp struct {
			Before, After map[string]any
			Metrics       []struct {
				Metric         string   `json:"metric"`
				RelativeChange *float64 `json:"relative_change"`
			}
			Verdict string
		}
		s.get(t, "/v1/deployments/"+url.PathEscape(degraded.ID)+"/impact", nil, &imp)
		if got := p.Attr(t, "h1 [data-status]", "data-status"); got != "DEGRADED" {
			t.Errorf("verdict badge %q", got)
		}
		for _, w := range []struct {
			name string
			win  map[string]any
		}{{"before", imp.Before}, {"after", imp.After}} {
			var got []string
			p.Eval(t, fmt.Sprintf(`Array.from(document.querySelectorAll('tr[data-window=%q] [data-value]')).map(e => e.dataset.value)`, w.name), &got)
			want := []float64{w.win["requests"].(float64), w.win["error_rate"].(float64), w.win["p50_ms"].(float64), w.win["p95_ms"].(float64), w.win["p99_ms"].(float64)}
			if len(got) != len(want) {
				t.Fatalf("%s window: %v, want %v", w.name, got, want)
			}
			for i := range want {
				if number(t, w.name, got[i]) != want[i] {
					t.Errorf("%s window figure %d: page %s, API %v", w.name, i, got[i], want[i])
				}
			}
		}
		for _, m := range imp.Metrics {
			if m.RelativeChange == nil {
				continue
			}
			got := p.Attr(t, fmt.Sprintf(`tr[data-metric=%q] td:nth-child(4) [data-value]`, m.Metric), "data-value")
			if number(t, m.Metric, got) != *m.RelativeChange {
				t.Errorf("%s change: page %s, API %v", m.Metric, got, *m.RelativeChange)
			}
		}
		// Trace links go to the configured trace UI.
		var hrefs []string
		p.Eval(t, `Array.from(document.querySelectorAll('a.trace')).map(a => a.href)`, &hrefs)
		if len(hrefs) == 0 {
			t.Error("no trace link on the impact page of a degraded deployment")
		}
		for _, h := range hrefs {
			if !strings.HasPrefix(h, "http://jaeger.test:16686/trace/") || len(h) <= len("http://jaeger.test:16686/trace/") {
				t.Errorf("trace link %q", h)
			}
		}
	})

	t.Run("dora-team", func(t *testing.T) {
		p := open(t, "dora", "/ui/dora?environment=production&team=payments")
		n := now()
		from := time.Date(n.Year(), n.Month(), n.Day(), 0, 0, 0, 0, time.UTC).Add(-25 * 7 * 24 * time.Hour)
		from = from.AddDate(0, 0, -((int(from.Weekday()) + 6) % 7))
		var d struct {
			Summary   doraFigures
			Intervals []doraFigures
		}
		q := tilesRange(t, p, url.Values{"environment": {"production"}, "team": {"payments"}, "interval": {"INTERVAL_WEEK"}})
		if q.Get("start_time") != rfc(from) {
			t.Errorf("the weekly figures start %s, want the Monday 25 weeks back, %s", q.Get("start_time"), rfc(from))
		}
		s.get(t, "/v1/dora", q, &d)
		checkTiles(t, p, d.Summary, "dora")
		// One weekly point per API bucket; the last holds the demo.
		rows := p.Texts(t, `[data-trend="change_failure_rate"] details tbody tr`)
		if len(rows) != len(d.Intervals) || len(rows) < 26 {
			t.Errorf("%d weekly rows, the API %d buckets", len(rows), len(d.Intervals))
		}
		if got := p.Text(t, "h1"); !strings.Contains(got, "team payments") {
			t.Errorf("h1 %q", got)
		}
		var all struct{ Summary doraFigures }
		s.get(t, "/v1/dora", url.Values{"environment": {"production"}, "start_time": {q.Get("start_time")}, "end_time": {q.Get("end_time")}}, &all)
		if d.Summary.DeploymentCount == 0 || d.Summary.DeploymentCount >= all.Summary.DeploymentCount {
			t.Errorf("team payments: %d deployments of the environment's %d", d.Summary.DeploymentCount, all.Summary.DeploymentCount)
		}
	})

	t.Run("teams", func(t *testing.T) {
		p := open(t, "teams", "/ui/teams")
		var got []string
		p.Eval(t, `Array.from(document.querySelectorAll("tr[data-team]")).map(e => e.dataset.team)`, &got)
		if !slices.Equal(got, []string{"payments", "storefront"}) {
			t.Errorf("teams %v", got)
		}
	})

	t.Run("retrospective", func(t *testing.T) {
		n := now()
		q := fmt.Sprintf("%d-Q%d", n.Year(), (int(n.Month())-1)/3+1)
		type retro struct {
			EndTime     string `json:"end_time"`
			Link        string `json:"link"`
			FocusMetric string `json:"focus_metric"`
			Metrics     []struct {
				Metric  string   `json:"metric"`
				Current *float64 `json:"current"`
				Trend   string   `json:"trend"`
			}
			FailedDeployments []struct {
				DeploymentID string `json:"deployment_id"`
			} `json:"failed_deployments"`
		}
		// The period runs to the last whole minute: asked before and after
		// the page in the same minute, the API's answer is the page's.
		var p *browser.Page
		var r retro
		for try := 0; ; try++ {
			var before retro
			s.get(t, "/v1/teams/payments/retrospectives/"+q, url.Values{"environment": {"production"}}, &before)
			p = open(t, "retrospective", "/ui/retro/payments/"+q+"?environment=production")
			s.get(t, "/v1/teams/payments/retrospectives/"+q, url.Values{"environment": {"production"}}, &r)
			if before.EndTime == r.EndTime {
				break
			}
			if try == 2 {
				t.Fatalf("the retrospective's end moved on every try (%s → %s)", before.EndTime, r.EndTime)
			}
		}
		if r.FocusMetric != "change_failure_rate" || len(r.Metrics) != 5 {
			t.Fatalf("retrospective: focus %q, %d metrics", r.FocusMetric, len(r.Metrics))
		}
		for _, m := range r.Metrics {
			got := p.Attr(t, fmt.Sprintf(`tr[data-metric=%q] td:nth-child(2) span`, m.Metric), "data-value")
			if (m.Current == nil) != (got == "") || (m.Current != nil && number(t, m.Metric, got) != *m.Current) {
				t.Errorf("%s: page %q, API %s", m.Metric, got, show(m.Current))
			}
			if trend := p.Attr(t, fmt.Sprintf(`tr[data-metric=%q] [data-trend]`, m.Metric), "data-trend"); trend != m.Trend {
				t.Errorf("%s trend: page %q, API %q", m.Metric, trend, m.Trend)
			}
		}
		var failed []string
		p.Eval(t, `Array.from(document.querySelectorAll("tr[data-deployment]")).map(e => e.dataset.deployment)`, &failed)
		var want []string
		for _, d := range r.FailedDeployments {
			want = append(want, d.DeploymentID)
		}
		if len(want) == 0 || !slices.Equal(failed, want) {
			t.Errorf("failed deployments: page %v, API %v", failed, want)
		}
		if href := p.Attr(t, `a[href="`+r.Link+`"]`, "href"); href != r.Link {
			t.Errorf("stable link %q", href)
		}
	})

	t.Run("compare", func(t *testing.T) {
		path := "/ui/compare?environment=production&service=" + demoscenario.OrdersService + "&hours=24&dimension=version&control=" +
			demoscenario.OrdersStable + "&treatment=" + demoscenario.OrdersCanary
		p := open(t, "compare", path)
		n := now()
		var c struct {
			Control, Treatment struct {
				Requests float64 `json:"requests"`
			}
			Verdict string
		}
		s.get(t, "/v1/compare", url.Values{"environment": {"production"}, "service": {demoscenario.OrdersService}, "dimension": {"version"},
			"control": {demoscenario.OrdersStable}, "treatment": {demoscenario.OrdersCanary}, "start_time": {rfc(n.Add(-24 * time.Hour))}, "end_time": {rfc(n)}}, &c)
		for side, want := range map[string]float64{"control": c.Control.Requests, "treatment": c.Treatment.Requests} {
			got := number(t, side, p.Attr(t, fmt.Sprintf(`[data-cohort=%q]`, side), "data-value"))
			if got != want || want == 0 {
				t.Errorf("%s requests: page %v, API %v", side, got, want)
			}
		}
		if got := p.Attr(t, `p [data-status]`, "data-status"); got != strings.TrimPrefix(c.Verdict, "COMPARE_VERDICT_") {
			t.Errorf("verdict: page %s, API %s", got, c.Verdict)
		}
	})

	t.Run("experiment", func(t *testing.T) {
		open(t, "experiments", "/ui/experiments")
		p := open(t, "experiment", "/ui/experiments/"+sc.ExperimentID)
		var r struct {
			Decision   string
			Treatments []struct {
				Metrics []struct {
					Metric       string   `json:"metric"`
					ControlValue *float64 `json:"control_value"`
				}
			}
		}
		s.get(t, "/v1/experiments/"+sc.ExperimentID+"/report", nil, &r)
		if got := p.Attr(t, "h1 [data-status]", "data-status"); got != strings.TrimPrefix(r.Decision, "EXPERIMENT_DECISION_") {
			t.Errorf("decision: page %s, API %s", got, r.Decision)
		}
		checked := 0
		for _, tr := range r.Treatments {
			for _, m := range tr.Metrics {
				if m.ControlValue == nil {
					continue
				}
				got := p.Attr(t, fmt.Sprintf(`tr[data-metric=%q] td:nth-child(3) span`, m.Metric), "data-value")
				if number(t, m.Metric, got) != *m.ControlValue {
					t.Errorf("%s control: page %s, API %v", m.Metric, got, *m.ControlValue)
				}
				checked++
			}
		}
		if checked == 0 {
			t.Error("the experiment report has no metric with a value")
		}
	})

	t.Run("gate", func(t *testing.T) {
		p := open(t, "gate", "/ui/gate?environment=production")
		var services []string
		p.Eval(t, `Array.from(document.querySelectorAll("tr[data-service]")).map(e => e.dataset.service)`, &services)
		if len(services) == 0 {
			t.Fatal("the gate page lists no rollout")
		}
		sort.Strings(services)
		for _, svc := range services {
			version := p.Text(t, fmt.Sprintf(`tr[data-service=%q] td:nth-child(2)`, svc))
			var g struct{ Result string }
			s.get(t, "/v1/gate", url.Values{"service": {svc}, "environment": {"production"}, "version": {version}}, &g)
			if got := p.Attr(t, fmt.Sprintf(`tr[data-service=%q] [data-gate]`, svc), "data-gate"); got != g.Result {
				t.Errorf("%s %s: page %s, API %s", svc, version, got, g.Result)
			}
		}
	})

	// The team filter narrows the views to the team's services.
	t.Run("gate-team", func(t *testing.T) {
		p := open(t, "gate-team", "/ui/gate?environment=production&team=payments")
		var services []string
		p.Eval(t, `Array.from(document.querySelectorAll("tr[data-service]")).map(e => e.dataset.service)`, &services)
		if len(services) == 0 {
			t.Fatal("no rollout of team payments")
		}
		for _, svc := range services {
			if !slices.Contains([]string{"checkout", "payments", "orders"}, svc) {
				t.Errorf("team payments' gate page lists %s", svc)
			}
		}
	})

	t.Run("keyboard", func(t *testing.T) {
		p := b.Open(t, s.base+"/ui/")
		fs := p.Tab(t, 4)
		wantText := []string{"Skip to content", "changelens", "Overview", "DORA"}
		for i, f := range fs {
			if f.Text != wantText[i] || !f.Indicator {
				t.Errorf("Tab %d: %+v, want %q with a visible focus indicator", i+1, f, wantText[i])
			}
		}
		p.PressEnter(t)
		if u := p.URL(t); !strings.HasSuffix(u, "/ui/dora") {
			t.Errorf("Enter on DORA went to %s", u)
		}
		if h := p.Text(t, "h1"); !strings.HasPrefix(h, "DORA") {
			t.Errorf("after Enter: h1 %q", h)
		}
		// The deployment rows' links are reachable by keyboard too: Tab
		// until the first "impact" link and follow it.
		p = b.Open(t, s.base+"/ui/units/"+url.PathEscape(degraded.Service)+"?environment=production")
		for i := 0; ; i++ {
			if i > 40 {
				t.Fatal("no impact link within 40 Tab presses")
			}
			f := p.Tab(t, 1)[0]
			if f.Text == "impact" {
				break
			}
		}
		p.PressEnter(t)
		if u := p.URL(t); !strings.Contains(u, "/ui/deployments/") {
			t.Errorf("Enter on impact went to %s", u)
		}
		if errs := p.ConsoleErrors(); len(errs) > 0 {
			t.Errorf("console: %v", errs)
		}
	})

	if os.Getenv("CHANGELENS_UPDATE_SCREENSHOTS") == "1" {
		dst := filepath.Join("..", "docs", "images")
		for _, name := range []string{"overview", "deployment", "dora", "retrospective", "compare", "experiment"} {
			b, err := os.ReadFile(filepath.Join(shots, name+".png"))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(dst, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dst, "ui-"+name+".png"), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// With bearer-token auth on, the pages ask for the token before they ask
// the API anything (no 401 reaches the console), then show the data.
func TestSignIn(t *testing.T) {
	ch := chtest.Shared(t)
	db := ch.NewDatabase(t)
	end := time.Now().UTC().Truncate(time.Minute).Add(-2 * time.Minute)
	demoscenario.Write(t, ch, db, end, 2*time.Hour, 20)
	s := serve(t, ch.DSN(chtest.ReadOnlyUser, chtest.ReadOnlyPassword, db), nil, []string{"ui-test-token"})
	b := browser.New(t)
	p := b.Open(t, s.base+"/ui/")
	if h := p.Text(t, "h1"); h != "Sign in" {
		t.Fatalf("h1 %q, want the sign-in form", h)
	}
	p.Eval(t, `(document.getElementById("token").value = "ui-test-token", document.getElementById("token").focus(), true)`, new(bool))
	p.PressEnter(t)
	if h := p.Text(t, "h1"); !strings.HasPrefix(h, "Overview") {
		t.Errorf("after signing in: h1 %q", h)
	}
	if n := len(p.Texts(t, "tr[data-deployment]")); n == 0 {
		t.Error("signed in, but no deployment is listed")
	}
	if errs := p.ConsoleErrors(); len(errs) > 0 {
		t.Errorf("console: %v", errs)
	}
}
