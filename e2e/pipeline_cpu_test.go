package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/changelens/changelens/testkit/chtest"
)

// pipelineTelemetry is the service.telemetry section of the pipeline
// benchmark's configurations: metrics pulled from {{METRICS}}, which tell
// when every span has left the pipeline.
const pipelineTelemetry = `  telemetry:
    metrics:
      level: normal
      readers:
        - pull:
            exporter:
              prometheus:
                host: {{METRICS_HOST}}
                port: {{METRICS_PORT}}
`

const pipelineReceiver = `receivers:
  otlp:
    protocols:
      grpc:
        endpoint: {{OTLP}}
`

// pipelineConfigs are the three pipelines of BenchmarkPipelineCPU, run by
// the same binary: bare is the baseline (debug at verbosity basic logs one
// line per batch, a nop-like sink; its log goes to the benchmark's buffer).
var pipelineConfigs = []struct{ name, config string }{
	{"bare", pipelineReceiver + `processors:
  batch:
exporters:
  debug:
    verbosity: basic
service:
` + pipelineTelemetry + `  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [debug]
`},
	{"processor", pipelineReceiver + `processors:
  changelens:
exporters:
  debug:
    verbosity: basic
service:
` + pipelineTelemetry + `  pipelines:
    traces:
      receivers: [otlp]
      processors: [changelens]
      exporters: [debug]
`},
	// The exporter with its defaults (queue, batching, deduplicate).
	{"clickhouse", pipelineReceiver + `processors:
  changelens:
exporters:
  changelens:
    endpoints: ["${env:CLICKHOUSE_ENDPOINT}"]
    database: ${env:CLICKHOUSE_DATABASE}
service:
` + pipelineTelemetry + `  pipelines:
    traces:
      receivers: [otlp]
      processors: [changelens]
      exporters: [changelens]
`},
}

// telemetrygenBinary is $TELEMETRYGEN, or telemetrygen as `make bench`
// installs it (.build/tools/telemetrygen-<version>); the benchmark is
// skipped without it.
func telemetrygenBinary(b *testing.B) string {
	if p := os.Getenv("TELEMETRYGEN"); p != "" {
		return p
	}
	found, _ := filepath.Glob(filepath.Join(repoRoot(b), ".build", "tools", "telemetrygen-*"))
	if len(found) == 0 {
		b.Fatal("telemetrygen is not installed in .build/tools: run make bench, which installs it")
	}
	return found[len(found)-1]
}

// scrapeSum is the sum of the Prometheus samples of the counter name
// (with or without the _total suffix) at addr.
func scrapeSum(addr, name string) (float64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	var total float64
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok {
			continue
		}
		rest = strings.TrimPrefix(rest, "_total")
		if rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", line, err)
		}
		total += v
	}
	return total, sc.Err()
}

// BenchmarkPipelineCPU is the whole pipeline's price: the built collector
// fed by telemetrygen (a real OTLP/gRPC client; traces of two spans, the
// least it makes: a CLIENT root, an entry span by the processor's default
// include_root, and its SERVER child, so every span is an entry span) in
// three configurations of the same binary, interleaved round by round:
//
//   - bare:       otlp → batch → debug (verbosity basic),
//   - processor:  otlp → changelens → debug (verbosity basic),
//   - clickhouse: otlp → changelens → changelens exporter into a real
//     ClickHouse (testkit/chtest; the exporter's default queue and batching).
//
// Each run starts a fresh collector, sends CHANGELENS_BENCH_SPANS spans
// (default 500,000) and waits until the exporter has sent them all
// (otelcol_exporter_sent_spans); the collector's user+system CPU over that
// span (/proc/<pid>/stat) per million spans is reported per configuration
// (median of CHANGELENS_BENCH_ROUNDS rounds, default 5, with min and max),
// and each configuration's ratio to bare of the same round (median, min and
// max over the rounds). Every other round runs them in reverse order.
// CHANGELENS_BENCH_COLLECTOR runs another build instead of bin/; with
// CHANGELENS_BENCH_BEFORE=<binary> each round also runs the clickhouse
// configuration with that build (clickhouse_before), to compare a change
// with its base in the same conditions. Run it with -benchtime 1x.
func BenchmarkPipelineCPU(b *testing.B) {
	tg := telemetrygenBinary(b)
	// Five rounds of 500,000: on two shared cores one run's CPU per span
	// varies by ±20 % with the neighbours' load, so more, shorter paired
	// rounds give a steadier median ratio than few long ones.
	spans := envInt(b, "CHANGELENS_BENCH_SPANS", 500_000)
	rounds := envInt(b, "CHANGELENS_BENCH_ROUNDS", 5)
	// telemetrygen's rate is per worker, and its limiter reaches only
	// ~1,500 spans/s a worker here: 16 workers at 2,000 send ~23,000 spans/s,
	// which its SDK exporter (one batch of 512 at a time) keeps up with;
	// unthrottled, it drops most spans before sending them.
	const workers, rate = 16, 2000
	ch := chtest.Shared(b)
	bin := os.Getenv("CHANGELENS_BENCH_COLLECTOR")
	type run struct {
		name, config, bin string
	}
	runs := make([]run, 0, len(pipelineConfigs)+1)
	for _, pc := range pipelineConfigs {
		runs = append(runs, run{pc.name, pc.config, bin})
	}
	// CHANGELENS_BENCH_BEFORE: another build (from before a change) runs the
	// clickhouse configuration too, in the same rounds, so before and after
	// meet the same load.
	if before := os.Getenv("CHANGELENS_BENCH_BEFORE"); before != "" {
		last := pipelineConfigs[len(pipelineConfigs)-1]
		runs = append(runs, run{last.name + "_before", last.config, before})
	}
	cpu := make([][]float64, len(runs)) // CPU-seconds per million spans
	// ratios[i] are run i's CPU per span over bare's of the same round: the
	// machine's load drifts over minutes, so a ratio of neighbouring runs is
	// steadier than a ratio of medians over the whole benchmark.
	ratios := make([][]float64, len(runs))
	for range b.N {
		for r := range rounds {
			// Every other round runs the configurations in reverse, so a
			// drift in load during a round weighs on bare and the others alike.
			order := make([]int, len(runs))
			for i := range order {
				order[i] = i
			}
			if r%2 == 1 {
				slices.Reverse(order)
			}
			round := make([]float64, len(runs))
			for _, i := range order {
				rn := runs[i]
				var env []string
				if strings.HasPrefix(rn.name, "clickhouse") {
					env = chEnv(ch, ch.NewDatabase(b))
				}
				perM, elapsed := pipelineRun(b, rn.bin, tg, rn.config, env, spans, workers, rate)
				cpu[i] = append(cpu[i], perM)
				round[i] = perM
				b.Logf("round %d %-17s %.3f CPU-s per million spans (%.1f s, %.0f spans/s)",
					r+1, rn.name, perM, elapsed.Seconds(), float64(spans)/elapsed.Seconds())
			}
			msg := ""
			for i := 1; i < len(runs); i++ {
				ratios[i] = append(ratios[i], round[i]/round[0])
				msg += fmt.Sprintf(" %s/bare %.2f", runs[i].name, round[i]/round[0])
			}
			b.Logf("round %d ratios:%s", r+1, msg)
		}
	}
	for i, rn := range runs {
		b.ReportMetric(median(cpu[i]), rn.name+"_cpu-s/Mspans")
		b.ReportMetric(slices.Min(cpu[i]), rn.name+"_min")
		b.ReportMetric(slices.Max(cpu[i]), rn.name+"_max")
		if i > 0 {
			b.ReportMetric(median(ratios[i]), rn.name+"/bare")
			b.ReportMetric(slices.Min(ratios[i]), rn.name+"/bare_min")
			b.ReportMetric(slices.Max(ratios[i]), rn.name+"/bare_max")
		}
	}
	b.ReportMetric(0, "ns/op")
}

// pipelineRun starts the collector (bin, or the one make build built) with config, sends spans spans with
// telemetrygen and returns the collector's CPU-seconds per million spans
// from just before the first span until the last one received was exported.
func pipelineRun(b *testing.B, bin, tg, config string, env []string, spans, workers, rate int) (float64, time.Duration) {
	var col *collector
	if bin != "" {
		col = startCollectorBinary(b, bin, config, env...)
	} else {
		col = startCollector(b, config, env...)
	}
	defer col.stop(b)
	pid := col.cmd.Process.Pid
	const sent = "otelcol_exporter_sent_spans"
	// telemetrygen sends two spans a trace (it makes at least one child):
	// a CLIENT root, an entry span by include_root, and its SERVER child.
	traces := max(spans/2/workers, 1)
	cpu0 := procCPU(pid)
	start := time.Now()
	cmd := exec.Command(tg, "traces",
		"--otlp-endpoint", col.otlpAddr, "--otlp-insecure",
		"--workers", strconv.Itoa(workers), "--traces", strconv.Itoa(traces),
		"--child-spans", "1", "--rate", strconv.Itoa(rate), "--batch-size", "512",
		"--service", "checkout", "--otlp-attributes", `service.version="1.0.0"`,
		"--telemetry-attributes", `http.route="/api/items/{id}"`,
		"--telemetry-attributes", `http.request.method="GET"`,
		"--telemetry-attributes", `http.response.status_code=200`)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		b.Fatalf("telemetrygen: %v\n%s", err, tail(out.String(), 20))
	}
	// Per span received: the SDK drops spans its queue cannot hold, which
	// the rate is chosen to avoid but a starved machine (other processes on
	// both cores) still causes now and then. A few percent lost cost the
	// collector nothing, so the run counts; far fewer means telemetrygen
	// did not really send.
	sentByClient := float64(traces * 2 * workers)
	want, err := scrapeSum(col.metricsAddr, "otelcol_receiver_accepted_spans")
	if err != nil {
		b.Fatal(err)
	}
	if want < 0.9*sentByClient {
		b.Fatalf("the collector received %.0f of telemetrygen's %.0f spans", want, sentByClient)
	}
	if want < sentByClient {
		b.Logf("the collector received %.0f of telemetrygen's %.0f spans (the client dropped the rest)", want, sentByClient)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		n, err := scrapeSum(col.metricsAddr, sent)
		if err != nil {
			b.Fatal(err)
		}
		if n >= want {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%.0f of %.0f spans exported after 2 minutes:\n%s", n, want, tail(col.output(), 40))
		}
		time.Sleep(20 * time.Millisecond)
	}
	elapsed := time.Since(start)
	return (procCPU(pid) - cpu0).Seconds() / (want / 1e6), elapsed
}

func envInt(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

// startCollectorBinary is startCollector with another build of the
// collector (CHANGELENS_BENCH_COLLECTOR: e.g. one from before a change, to
// compare in the same run conditions).
func startCollectorBinary(b *testing.B, bin, config string, env ...string) *collector {
	c := &collector{
		otlpAddr:    fmt.Sprintf("127.0.0.1:%d", freePort(b)),
		metricsAddr: fmt.Sprintf("127.0.0.1:%d", freePort(b)),
		exited:      make(chan struct{}),
	}
	host, port, _ := net.SplitHostPort(c.metricsAddr)
	config = strings.NewReplacer("{{OTLP}}", c.otlpAddr, "{{METRICS_HOST}}", host, "{{METRICS_PORT}}", port).Replace(config)
	path := filepath.Join(b.TempDir(), "collector.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", path)
	cmd.Env = append(os.Environ(), env...)
	c.launch(b, cmd)
	return c
}
