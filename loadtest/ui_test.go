package loadtest

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/changelens/changelens/testkit/chtest"
)

// BenchmarkUIPages times each web UI page's data as the page asks for it
// (webui/static/assets): its requests in the page's order, the requests of
// one step at once, from the first request to the last answer. The data is
// the API load test's, with the verdicts bin/changelens-worker stores (one
// --once cycle: how changelens runs). Two ways, each page once per round in
// an order rotated every round so that no page always finds what another
// warmed:
//
//   - "fresh process": every round starts a new bin/changelens-api, whose
//     caches (settled windows, version episodes) are empty — the first
//     visitor after a restart;
//   - "running": one API for all rounds after a first one that is not
//     counted — every page's ranges end at the moment it is asked, so no
//     answer repeats, but what has settled is cached as in a running API.
//
// ClickHouse's own caches stay as they are in both: that is a running
// server. Run it with -benchtime 1x; the rounds are CHANGELENS_UI_ROUNDS
// (default 20). It prints p50, p95 and max per page and asserts no timing.
func BenchmarkUIPages(b *testing.B) {
	bin := apiBinary(b)
	rounds := envInts(b, "CHANGELENS_UI_ROUNDS", []int{20})[0]
	days := envInts(b, "CHANGELENS_LOAD_DAYS", []int{7})[0]
	perMinute := envInts(b, "CHANGELENS_LOAD_PER_MINUTE", []int{120})[0]
	srv := chtest.Shared(b)
	d := loadData(b, srv, days, perMinute)
	teamsFile := filepath.Join(b.TempDir(), "teams.yaml")
	if err := os.WriteFile(teamsFile, []byte(`teams:
  - name: shop
    services: [checkout, storefront, payments, search]
    targets: {deployment_frequency_per_day: 4, lead_time_hours: 24, change_failure_rate: 0.15}
    focus: {`+quarter(time.Now().UTC())+`: lead_time}
  - name: fulfilment
    services: [inventory, accounts, shipping, notifications]
`), 0o644); err != nil {
		b.Fatal(err)
	}
	dsn := srv.DSN(chtest.ReadOnlyUser, chtest.ReadOnlyPassword, loaded.db)
	if !loaded.verdictsStored {
		// A worker that has run all along has stored every settled verdict;
		// one cycle reaching back over the whole data stores them at once.
		worker := exec.Command(filepath.Join(filepath.Dir(bin), "changelens-worker"), "--once", "--log-level", "warn",
			"--lookback", fmt.Sprintf("%dh", (days+1)*24), "--query-timeout", "30m",
			"--clickhouse-dsn", srv.DSN(chtest.WriterUser, chtest.WriterPassword, loaded.db))
		if out, err := worker.CombinedOutput(); err != nil {
			b.Fatalf("changelens-worker --once: %v\n%s", err, out)
		}
		loaded.verdictsStored = true
	}

	// A deployment to open: the latest degraded one of checkout.
	a := startAPI(b, bin, dsn, "--teams-file", teamsFile)
	var deps struct {
		Deployments []struct {
			ID      string `json:"id"`
			Verdict string `json:"verdict"`
		} `json:"deployments"`
	}
	now := time.Now().UTC()
	uiGet(b, a.base, "/v1/deployments", url.Values{"service": {latencyService}, "environment": {environment},
		"start_time": {rfc3339(now.Add(-30 * 24 * time.Hour))}, "end_time": {rfc3339(now)}, "page_size": {"500"}}, &deps)
	depID := ""
	for _, x := range deps.Deployments {
		if depID == "" || x.Verdict == "VERDICT_DEGRADED" {
			depID = x.ID
		}
		if x.Verdict == "VERDICT_DEGRADED" {
			break
		}
	}
	a.stop()
	if depID == "" {
		b.Fatal("no deployment of checkout to open")
	}
	canary := d.service(canaryService)
	stable := canary.releases[canary.releaseAt(canary.canary.at)].version
	pages := uiPages(depID, stable, canary.canary.version, d.end)

	fresh, running := map[string][]time.Duration{}, map[string][]time.Duration{}
	round := func(a *api, r int, into map[string][]time.Duration) {
		for i := range pages { // a rotation per round: every page is first some time
			p := pages[(i+r)%len(pages)]
			t0 := time.Now()
			if err := p.load(a.base); err != nil {
				b.Fatalf("%s: %v\n%s", p.name, err, a.logTail())
			}
			if into != nil {
				into[p.name] = append(into[p.name], time.Since(t0))
			}
		}
	}
	b.ResetTimer()
	for r := range rounds {
		a := startAPI(b, bin, dsn, "--teams-file", teamsFile)
		round(a, r, fresh)
		a.stop()
	}
	a = startAPI(b, bin, dsn, "--teams-file", teamsFile)
	round(a, 0, nil)
	for r := range rounds {
		round(a, r, running)
	}
	a.stop()
	b.StopTimer()
	var out strings.Builder
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Fprintf(&out, "\nweb UI pages' data, %d rounds each way; ClickHouse %s, %d CPUs, load average %s\n", rounds, srv.Version(), runtime.NumCPU(), loadavg(load))
	fmt.Fprintf(&out, "data: %d days, %d services at %d requests/min: %d requests; verdicts stored by changelens-worker --once\n\n", days, len(d.services), perMinute, loaded.events)
	tw := tabwriter.NewWriter(&out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "page\trequests\tfresh p50 ms\tfresh p95 ms\tfresh max ms\trunning p50 ms\trunning p95 ms\trunning max ms\t")
	for _, p := range pages {
		f, r := fresh[p.name], running[p.name]
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t\n", p.name, p.requests(),
			ms(quantile(f, 0.5)), ms(quantile(f, 0.95)), ms(slices.Max(f)), ms(quantile(r, 0.5)), ms(quantile(r, 0.95)), ms(slices.Max(r)))
		b.ReportMetric(ms(quantile(f, 0.95)), p.name+"-fresh-p95-ms")
		b.ReportMetric(ms(quantile(r, 0.95)), p.name+"-running-p95-ms")
	}
	tw.Flush()
	fmt.Print(out.String())
}

func quarter(t time.Time) string { return fmt.Sprintf("%d-Q%d", t.Year(), (int(t.Month())-1)/3+1) }

// uiPage is what one page asks: steps in order, each a set of requests sent
// at once; a step may depend on the previous answers (the gate page asks
// for each service's latest deployment).
type uiPage struct {
	name  string
	steps []func(base string, prev []json.RawMessage) []string
	// parallel bounds the requests of a step in flight (0: all at once);
	// the gate page asks for its answers two at a time.
	parallel int
}

func (p uiPage) requests() int {
	n := 0
	var prev []json.RawMessage
	for _, s := range p.steps {
		n += len(s("", prev))
	}
	return n
}

func (p uiPage) load(base string) error {
	var prev []json.RawMessage
	for _, step := range p.steps {
		urls := step(base, prev)
		answers := make([]json.RawMessage, len(urls))
		errs := make([]error, len(urls))
		slots := make(chan struct{}, cmp.Or(p.parallel, max(len(urls), 1)))
		var wg sync.WaitGroup
		for i, u := range urls {
			wg.Add(1)
			slots <- struct{}{}
			go func() {
				defer func() { <-slots; wg.Done() }()
				answers[i], errs[i] = fetchJSON(u)
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
		prev = answers
	}
	return nil
}

var uiClient = &http.Client{Timeout: clientTimeout}

func fetchJSON(u string) (json.RawMessage, error) {
	resp, err := uiClient.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %d %.300s", u, resp.StatusCode, b)
	}
	return b, nil
}

func uiGet(b *testing.B, base, path string, q url.Values, out any) {
	raw, err := fetchJSON(base + path + "?" + q.Encode())
	if err != nil {
		b.Fatal(err)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		b.Fatal(err)
	}
}

// uiPages mirror the pages' requests (webui/static/assets/*.js). The
// comparison's 24 hours end where the data ends (dataEnd), so that every
// run, whatever its hour, compares a whole day of the canary; each ends a
// second earlier than the one before, so that no range repeats.
func uiPages(depID, stable, canaryVersion string, dataEnd time.Time) []uiPage {
	u := func(base, path string, q url.Values) string {
		if len(q) == 0 {
			return base + path
		}
		return base + path + "?" + q.Encode()
	}
	ago := func(d time.Duration) string { return rfc3339(time.Now().Add(-d)) }
	nowS := func() string { return rfc3339(time.Now()) }
	day := 24 * time.Hour
	var compared atomic.Int64
	compareRange := func() (string, string) {
		end := dataEnd.Add(-time.Duration(compared.Add(1)) * time.Second)
		return rfc3339(end.Add(-day)), rfc3339(end)
	}
	one := func(path string, q func() url.Values) func(string, []json.RawMessage) []string {
		return func(base string, _ []json.RawMessage) []string { return []string{u(base, path, q())} }
	}
	servicesAndTeams := func(base string, _ []json.RawMessage) []string {
		return []string{u(base, "/v1/services", nil), u(base, "/v1/teams", nil)}
	}
	doraPage := func(name, team string) uiPage {
		return uiPage{name: name, steps: []func(string, []json.RawMessage) []string{servicesAndTeams, func(base string, _ []json.RawMessage) []string {
			n := time.Now().UTC()
			monday := time.Date(n.Year(), n.Month(), n.Day(), 0, 0, 0, 0, time.UTC).Add(-25 * 7 * day)
			monday = monday.AddDate(0, 0, -((int(monday.Weekday()) + 6) % 7))
			q0 := time.Date(n.Year(), time.Month((int(n.Month())-1)/3*3+1), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -9, 0)
			q := url.Values{"environment": {environment}, "edition": {"2025"}}
			if team != "" {
				q.Set("team", team)
			}
			week, quarter := cloneWith(q, "start_time", rfc3339(monday)), cloneWith(q, "start_time", rfc3339(q0))
			week.Set("end_time", rfc3339(n))
			week.Set("interval", "INTERVAL_WEEK")
			quarter.Set("end_time", rfc3339(n))
			quarter.Set("interval", "INTERVAL_QUARTER")
			return []string{u(base, "/v1/dora", week), u(base, "/v1/dora", quarter)}
		}}}
	}
	// The gate page shows its rows (with the stored verdicts) first and
	// fills in each gate answer as it arrives, two at a time.
	gateList := uiPage{name: "gate", steps: []func(string, []json.RawMessage) []string{
		one("/v1/services", func() url.Values { return nil }),
		one("/v1/deployments", func() url.Values {
			return url.Values{"environment": {environment}, "start_time": {ago(7 * day)}, "end_time": {nowS()}, "page_size": {"500"}}
		}),
	}}
	return []uiPage{
		{name: "overview", steps: []func(string, []json.RawMessage) []string{servicesAndTeams, func(base string, _ []json.RawMessage) []string {
			return []string{
				u(base, "/v1/deployments", url.Values{"environment": {environment}, "start_time": {ago(7 * day)}, "end_time": {nowS()}, "page_size": {"500"}}),
				u(base, "/v1/dora", url.Values{"environment": {environment}, "start_time": {ago(30 * day)}, "end_time": {nowS()}}),
			}
		}}},
		{name: "unit", steps: []func(string, []json.RawMessage) []string{func(base string, _ []json.RawMessage) []string {
			q := url.Values{"service": {latencyService}, "environment": {environment}, "start_time": {ago(30 * day)}, "end_time": {nowS()}}
			return []string{u(base, "/v1/deployments", cloneWith(q, "page_size", "500")), u(base, "/v1/incidents", q)}
		}}},
		{name: "deployment", steps: []func(string, []json.RawMessage) []string{one("/v1/deployments/"+url.PathEscape(depID)+"/impact", func() url.Values { return nil })}},
		doraPage("dora", ""),
		doraPage("dora-team", "shop"),
		{name: "teams", steps: []func(string, []json.RawMessage) []string{one("/v1/teams", func() url.Values { return nil }), one("/v1/services", func() url.Values { return nil })}},
		{name: "retrospective", steps: []func(string, []json.RawMessage) []string{one("/v1/teams/shop/retrospectives/"+quarter(time.Now().UTC()), func() url.Values {
			return url.Values{"environment": {environment}}
		})}},
		{name: "compare", steps: []func(string, []json.RawMessage) []string{func(base string, _ []json.RawMessage) []string {
			from, to := compareRange()
			return []string{u(base, "/v1/services", nil), u(base, "/v1/compare", url.Values{"service": {canaryService}, "environment": {environment},
				"dimension": {"version"}, "control": {stable}, "treatment": {canaryVersion}, "start_time": {from}, "end_time": {to}})}
		}}},
		gateList,
		{name: "gate-answers", steps: append(slices.Clone(gateList.steps), func(base string, prev []json.RawMessage) []string {
			if len(prev) == 0 { // counting requests: one per service at most
				return make([]string, 8)
			}
			var deps struct {
				Deployments []struct {
					Service, Version string
					Failed           bool
				} `json:"deployments"`
			}
			_ = json.Unmarshal(prev[0], &deps)
			seen := map[string]bool{}
			var out []string
			for _, x := range deps.Deployments {
				if x.Failed || seen[x.Service] || len(out) == 12 {
					continue
				}
				seen[x.Service] = true
				out = append(out, u(base, "/v1/gate", url.Values{"service": {x.Service}, "environment": {environment}, "version": {x.Version}}))
			}
			return out
		}), parallel: 2},
	}
}

func cloneWith(q url.Values, k, v string) url.Values {
	c := url.Values{}
	for key, vs := range q {
		c[key] = slices.Clone(vs)
	}
	c.Set(k, v)
	return c
}
