package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/changelens/changelens/testkit/chtest"
)

func TestMain(m *testing.M) { os.Exit(chtest.Main(m)) }

// EnvAPIBin names another changelens-api binary to measure instead of
// bin/changelens-api, e.g. an older build.
const EnvAPIBin = "CHANGELENS_LOAD_API_BIN"

const (
	// clientTimeout is well past the API's 30 s query deadline: a request
	// the client gives up on is an API that did not answer at all.
	clientTimeout = 60 * time.Second
	probeInterval = 100 * time.Millisecond
	probeTimeout  = 10 * time.Second
	// settle lets queries of the previous cell that ClickHouse still runs
	// finish before the next cell starts.
	settle = time.Second
)

// endpoint is one heavy request and what a sane answer to it holds.
type endpoint struct {
	name string
	path string
	// query is the request with its time range moved back by back (whole
	// minutes, at most maxShift), so that concurrent requests can differ.
	query func(back time.Duration) url.Values
	check func(answer) error
}

// maxShift bounds how far back a distinct request's range moves: far below
// the ranges, so that every request reads about as much.
const maxShift = 10 * time.Hour

// answer holds the fields of the four answers the checks look at.
type answer struct {
	Points []struct {
		Group string `json:"group"`
	} `json:"points"`
	Summary *struct {
		DeploymentCount int `json:"deployment_count"`
	} `json:"summary"`
	Deployments    []json.RawMessage `json:"deployments"`
	OverlapMinutes int               `json:"overlap_minutes"`
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// endpoints are the API's most expensive requests on d, each at the
// largest size the API's default limits allow or the data offers.
func endpoints(d *dataset) []endpoint {
	lat := d.mostVersions()
	const step = 300 * time.Second
	const buckets = 2000 // --max-points' default
	canary := d.service(canaryService)
	stable := canary.releases[canary.releaseAt(canary.canary.at)].version
	window := func(back, length time.Duration) (string, string) {
		end := d.end.Add(-back)
		return rfc3339(end.Add(-length)), rfc3339(end)
	}
	return []endpoint{
		{"latency", "/v1/latency", func(back time.Duration) url.Values {
			from, to := window(back, buckets*step)
			return url.Values{"service": {lat.name}, "environment": {environment}, "start_time": {from}, "end_time": {to},
				"step_seconds": {strconv.Itoa(int(step / time.Second))}, "group_by": {"version"}}
		}, func(a answer) error {
			groups := map[string]bool{}
			for _, p := range a.Points {
				groups[p.Group] = true
			}
			if filled := min(buckets, int(d.end.Sub(d.start)/step)); len(a.Points) < filled || len(groups) < 10 {
				return fmt.Errorf("%d points of %d versions: want %d buckets of many versions", len(a.Points), len(groups), filled)
			}
			return nil
		}},
		{"dora", "/v1/dora", func(back time.Duration) url.Values {
			from, to := window(back, 30*24*time.Hour)
			return url.Values{"environment": {environment}, "interval": {"day"}, "start_time": {from}, "end_time": {to}}
		}, func(a answer) error {
			if a.Summary == nil || a.Summary.DeploymentCount < d.deployments()/2 {
				return fmt.Errorf("summary %+v: want about the %d deployments generated", a.Summary, d.deployments())
			}
			return nil
		}},
		{"deployments", "/v1/deployments", func(back time.Duration) url.Values {
			from, to := window(back, d.end.Sub(d.start))
			return url.Values{"environment": {environment}, "page_size": {"500"}, "start_time": {from}, "end_time": {to}}
		}, func(a answer) error {
			if len(a.Deployments) < d.deployments()/2 {
				return fmt.Errorf("%d deployments: want about the %d generated", len(a.Deployments), d.deployments())
			}
			return nil
		}},
		{"compare", "/v1/compare", func(back time.Duration) url.Values {
			from, to := window(back, 24*time.Hour)
			return url.Values{"service": {canary.name}, "environment": {environment}, "start_time": {from}, "end_time": {to},
				"control": {stable}, "treatment": {canary.canary.version}}
		}, func(a answer) error {
			if a.OverlapMinutes < 1000 {
				return fmt.Errorf("overlap of %d minutes: want the canary's whole day", a.OverlapMinutes)
			}
			return nil
		}},
	}
}

// Request modes. With "same" every client sends the identical request, as
// viewers of one dashboard do; a server that answers identical requests in
// flight from one query does one query for all of them. With "distinct"
// every request's range is moved back by a further minute, so no two
// requests in flight are identical and each costs its own query.
const (
	modeDistinct = "distinct"
	modeSame     = "same"
)

// urls returns the URL of each next request of e in mode.
func urls(base string, e endpoint, mode string) func() string {
	if mode == modeSame {
		u := base + e.path + "?" + e.query(0).Encode()
		return func() string { return u }
	}
	var k atomic.Int64
	return func() string {
		back := time.Duration(k.Add(1)) * time.Minute % maxShift
		return base + e.path + "?" + e.query(back).Encode()
	}
}

// loadData loads the dataset once per test binary.
func loadData(b *testing.B, srv *chtest.Server, days, perMinute int) *dataset {
	if loaded.d == nil {
		now := time.Now().UTC()
		end := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
		d := newDataset(end, days, perMinute)
		t0 := time.Now()
		db, n := d.load(b, srv)
		loaded.d, loaded.db, loaded.events, loaded.took = d, db, n, time.Since(t0)
	}
	return loaded.d
}

// api is a running changelens-api subprocess.
type api struct {
	cmd    *exec.Cmd
	base   string // http://127.0.0.1:port
	health string // /livez, or /healthz for builds that have no /livez
	log    string // path of its output
	exited chan struct{}
}

// stop ends the API (SIGTERM, then SIGKILL after 10 s) and waits for it.
func (a *api) stop() {
	select {
	case <-a.exited:
		return
	default:
	}
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.exited:
	case <-time.After(10 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.exited
	}
}

func (a *api) logTail() string {
	b, _ := os.ReadFile(a.log)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

func freePort(tb testing.TB) int {
	tb.Helper()
	port, err := chtest.FreePort()
	if err != nil {
		tb.Fatal(err)
	}
	return port
}

// apiBinary is CHANGELENS_LOAD_API_BIN or the repository's bin/changelens-api.
func apiBinary(tb testing.TB) string {
	tb.Helper()
	bin := os.Getenv(EnvAPIBin)
	if bin == "" {
		bin = filepath.Join("..", "bin", "changelens-api")
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		tb.Fatal(err)
	}
	if fi, err := os.Stat(abs); err != nil || fi.IsDir() {
		tb.Fatalf("the API binary %s is missing: run `make build` (make bench does) or set %s", abs, EnvAPIBin)
	}
	return abs
}

// startAPI runs bin with the read-only DSN on free ports until the
// benchmark ends, and waits for it to answer its liveness probe.
func startAPI(tb testing.TB, bin, dsn string, extra ...string) *api {
	tb.Helper()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(tb))
	grpcAddr := fmt.Sprintf("127.0.0.1:%d", freePort(tb))
	a := &api{base: "http://" + httpAddr, log: filepath.Join(tb.TempDir(), "api.log"), exited: make(chan struct{})}
	out, err := os.Create(a.log)
	if err != nil {
		tb.Fatal(err)
	}
	a.cmd = exec.Command(bin, append([]string{"--clickhouse-dsn", dsn, "--http-addr", httpAddr, "--grpc-addr", grpcAddr, "--log-level", "warn"}, extra...)...)
	// Every flag has a CHANGELENS_ environment fallback: the caller's
	// environment must not configure the API under test.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CHANGELENS_") {
			a.cmd.Env = append(a.cmd.Env, kv)
		}
	}
	a.cmd.Stdout, a.cmd.Stderr = out, out
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := a.cmd.Start(); err != nil {
		out.Close()
		tb.Fatalf("start %s: %v", bin, err)
	}
	go func() { _ = a.cmd.Wait(); out.Close(); close(a.exited) }()
	tb.Cleanup(a.stop)

	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-a.exited:
			tb.Fatalf("%s exited during startup:\n%s", bin, a.logTail())
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s did not answer /livez or /healthz within 60 s:\n%s", bin, a.logTail())
		}
		for _, path := range []string{"/livez", "/healthz"} {
			resp, err := hc.Get(a.base + path)
			if err != nil {
				break // not listening yet
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				a.health = path
				return a
			}
			if resp.StatusCode != http.StatusNotFound {
				break // e.g. /healthz 503 while ClickHouse is not yet pinged
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// verify asks once, without load, and checks the answer: a wrong parameter
// or empty data would make every figure of the table meaningless. It also
// warms the API's and ClickHouse's caches as a running API has them.
func verify(tb testing.TB, a *api, e endpoint) {
	tb.Helper()
	hc := &http.Client{Timeout: clientTimeout}
	u := a.base + e.path + "?" + e.query(0).Encode()
	resp, err := hc.Get(u)
	if err != nil {
		tb.Fatalf("%s: %v\n%s", u, err, a.logTail())
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s: %v", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("%s: %s: %.500s\n%s", u, resp.Status, body, a.logTail())
	}
	var ans answer
	if err := json.Unmarshal(body, &ans); err != nil {
		tb.Fatalf("%s: %v: %.300s", u, err, body)
	}
	if err := e.check(ans); err != nil {
		tb.Fatalf("%s: %v", e.name, err)
	}
}

// cpuSeconds is the user+system CPU time a process has used (Linux's
// USER_HZ is 100 on every architecture Go supports).
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which may contain spaces: state is
	// field 3, utime and stime fields 14 and 15.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (u + st) / 100
}

// measure runs one cell: the closed-loop clients, the liveness prober
// beside them and the API's memory and CPU (and ClickHouse's CPU) over it.
func measure(a *api, chPID int, e endpoint, mode string, clients int, d time.Duration) *cell {
	pid := a.cmd.Process.Pid
	rss := watchRSS(pid)
	apiCPU, chCPU := cpuSeconds(pid), cpuSeconds(chPID)
	ctx, cancel := context.WithCancel(context.Background())
	type probed struct {
		lat   []time.Duration
		fails int
	}
	pr := make(chan probed, 1)
	go func() {
		lat, fails := probe(ctx, a.base+a.health, probeInterval, probeTimeout)
		pr <- probed{lat, fails}
	}()
	c := closedLoop(urls(a.base, e, mode), clients, d, clientTimeout)
	cancel()
	p := <-pr
	c.endpoint, c.mode, c.livez, c.livezFail = e.name, mode, p.lat, p.fails
	c.peakRSS, c.rssSampled = rss.peak(), rss.sampled()
	secs := c.elapsed.Seconds()
	c.apiCPU = 100 * (cpuSeconds(pid) - apiCPU) / secs
	c.chCPU = 100 * (cpuSeconds(chPID) - chCPU) / secs
	return c
}

func envDuration(tb testing.TB, name string, def time.Duration) time.Duration {
	tb.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		tb.Fatalf("%s=%q: want a positive duration", name, v)
	}
	return d
}

func envInts(tb testing.TB, name string, def []int) []int {
	tb.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			tb.Fatalf("%s=%q: want positive integers separated by commas", name, v)
		}
		out = append(out, n)
	}
	return out
}

// loaded is the data set, loaded once per test binary.
var loaded struct {
	d      *dataset
	db     string
	events int
	took   time.Duration
	// verdictsStored: changelens-worker stored the verdicts (BenchmarkUIPages).
	verdictsStored bool
}

// BenchmarkAPILoad prints the table of the package comment to stdout. Run it with
// -benchtime 1x: one iteration is the whole table.
func BenchmarkAPILoad(b *testing.B) {
	bin := apiBinary(b)
	dur := envDuration(b, "CHANGELENS_LOAD_DURATION", 10*time.Second)
	clientCounts := envInts(b, "CHANGELENS_LOAD_CLIENTS", []int{1, 10, 50, 200})
	days := envInts(b, "CHANGELENS_LOAD_DAYS", []int{7})[0]
	perMinute := envInts(b, "CHANGELENS_LOAD_PER_MINUTE", []int{120})[0]
	modes := []string{modeDistinct, modeSame}
	if v := os.Getenv("CHANGELENS_LOAD_MODES"); v != "" {
		modes = strings.Split(v, ",")
		for _, m := range modes {
			if m != modeDistinct && m != modeSame {
				b.Fatalf("CHANGELENS_LOAD_MODES=%q: want %s and/or %s", v, modeDistinct, modeSame)
			}
		}
	}
	if days < 2 {
		b.Fatal("CHANGELENS_LOAD_DAYS must be at least 2 (the canary runs the last 36 hours)")
	}
	srv := chtest.Shared(b)
	d := loadData(b, srv, days, perMinute)
	eps := endpoints(d)
	if v := os.Getenv("CHANGELENS_LOAD_ENDPOINTS"); v != "" {
		var keep []endpoint
		for _, e := range eps {
			if slices.Contains(strings.Split(v, ","), e.name) {
				keep = append(keep, e)
			}
		}
		if len(keep) == 0 {
			b.Fatalf("CHANGELENS_LOAD_ENDPOINTS=%q names none of latency, dora, deployments, compare", v)
		}
		eps = keep
	}

	a := startAPI(b, bin, srv.DSN(chtest.ReadOnlyUser, chtest.ReadOnlyPassword, loaded.db))
	for _, e := range eps {
		verify(b, a, e)
	}
	loadBefore, _ := os.ReadFile("/proc/loadavg")

	var rows []*cell
	for _, e := range eps {
		for _, mode := range modes {
			for _, n := range clientCounts {
				if mode == modeSame && n == 1 {
					continue // one client: the same as distinct
				}
				c := measure(a, srv.PID(), e, mode, n, dur)
				select {
				case <-a.exited:
					b.Fatalf("the API exited during %s (%s) with %d clients:\n%s", e.name, mode, n, a.logTail())
				default:
				}
				rows = append(rows, c)
				time.Sleep(settle)
			}
		}
	}
	loadAfter, _ := os.ReadFile("/proc/loadavg")

	var out strings.Builder
	fmt.Fprintf(&out, "\nchangelens-api %s (health probe %s), ClickHouse %s, %d CPUs\n", bin, a.health, srv.Version(), runtime.NumCPU())
	fmt.Fprintf(&out, "data: %d days, %d services at %d requests/min: %d requests, loaded in %s\n",
		days, len(d.services), perMinute, loaded.events, loaded.took.Round(time.Second))
	fmt.Fprintf(&out, "each cell %s of closed-loop clients (gzip asked, %s timeout); load average before %s, after %s\n",
		dur, clientTimeout, loadavg(loadBefore), loadavg(loadAfter))
	rssHow := "VmHWM"
	if slices.ContainsFunc(rows, func(c *cell) bool { return c.rssSampled }) {
		rssHow = "VmRSS sampled every 50 ms"
	}
	fmt.Fprintf(&out, "mode: distinct = every request's range a minute further back (none identical), same = one identical request\n")
	fmt.Fprintf(&out, "peak RSS: %s; KB/200: mean body bytes on the wire; cpu%%: of one core\n\n", rssHow)
	tw := tabwriter.NewWriter(&out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "endpoint\tmode\tclients\trequests\t200\t503\t504\tother\tconn-err\tp50 ms\tp95 ms\treq/s (200)\tKB/200\tlivez p99 ms\tlivez fail\tpeak RSS MB\tapi cpu%\tch cpu%\t")
	var maxRSS int64
	var maxLivez time.Duration
	var shed, hardErrors int
	for _, c := range rows {
		ok, busy := c.codes[http.StatusOK], c.codes[http.StatusServiceUnavailable]
		kb := 0.0
		if ok > 0 {
			kb = float64(c.okBytes) / float64(ok) / 1024
		}
		p99 := quantile(c.livez, 0.99)
		maxRSS, maxLivez = max(maxRSS, c.peakRSS), max(maxLivez, p99)
		shed += busy
		hardErrors += c.requests() - ok - busy
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%d\t%.0f\t%.0f\t%.2f\t%.1f\t%.1f\t%d\t%.0f\t%.0f\t%.0f\t\n",
			c.endpoint, c.mode, c.clients, c.requests(), ok, busy, c.codes[http.StatusGatewayTimeout],
			c.otherCodes(), c.connErrs, ms(quantile(c.lat, 0.5)), ms(quantile(c.lat, 0.95)),
			float64(ok)/c.elapsed.Seconds(), kb, ms(p99), c.livezFail, float64(c.peakRSS)/(1<<20), c.apiCPU, c.chCPU)
		if c.clients == clientCounts[0] && c.mode == modes[0] {
			b.ReportMetric(ms(quantile(c.lat, 0.5)), c.endpoint+"-c"+strconv.Itoa(c.clients)+"-p50-ms")
		}
	}
	tw.Flush()
	// One line per status and per connection error: the first answer seen.
	said := map[string]bool{}
	for _, c := range rows {
		if c.firstErr != "" && !said["conn"] {
			said["conn"] = true
			fmt.Fprintf(&out, "first connection error (%s, %s, %d clients): %s\n", c.endpoint, c.mode, c.clients, c.firstErr)
		}
		codes := slices.Sorted(maps.Keys(c.errBodies))
		for _, code := range codes {
			if k := strconv.Itoa(code); !said[k] {
				said[k] = true
				fmt.Fprintf(&out, "first %d (%s, %s, %d clients): %s\n", code, c.endpoint, c.mode, c.clients,
					strings.Join(strings.Fields(c.errBodies[code]), " "))
			}
		}
	}
	// Benchmark logs are cut to ten lines: the table goes to stdout, where
	// it appears above the benchmark's result line.
	fmt.Print(out.String())
	b.ReportMetric(float64(maxRSS)/(1<<20), "peak-rss-MB")
	b.ReportMetric(ms(maxLivez), "max-livez-p99-ms")
	b.ReportMetric(float64(shed), "503s")
	b.ReportMetric(float64(hardErrors), "errors-not-503")
}

// loadavg is the 1, 5 and 15 minute load averages of /proc/loadavg.
func loadavg(b []byte) string {
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
