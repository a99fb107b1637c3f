// Command changelens-demo is a traffic generator for changelens: a small shop
// of four services (storefront, checkout, catalog, payments) in production
// and staging, instrumented with the OpenTelemetry Go SDK, that releases new
// versions several times a week (some with a CI/CD deploy span, some only
// visible as a service.version change), with rolling updates, one bad
// release rolled back 40 minutes later, an error-rate regression fixed
// forward, a latency improvement, a failed deploy, a 5 % canary of a slower
// version that is withdrawn, and a 50/50 feature-flag experiment; beside
// it, a mobile app's order screen tested GraphQL against REST, with the
// backend's CPU metrics (story.go).
//
// It backfills a past period as fast as the collector takes it (span
// timestamps in the past), then goes on live in real time:
//
//	changelens-demo --otlp-endpoint localhost:4317 --backfill 14d
//
// The scenario is a pure function of --seed and the period (package plan);
// at the end it prints every deployment it emitted, to compare with the
// dashboards.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/changelens/changelens/cmd/changelens-demo/plan"
)

type config struct {
	endpoint     string
	seed         uint64
	backfill     time.Duration
	backfillOnly bool
	duration     time.Duration
	end          time.Time
	rps          float64
	backfillKids float64
	weight       float64
	staging      bool
	progress     time.Duration
	planOnly     bool
	queueSize    int
	batchSize    int
	exportRetry  time.Duration
	// webhookEndpoint is the changelens_webhook receiver (host:port) the
	// scenario's incidents are reported to; "" reports none.
	webhookEndpoint string
	// story adds the order-screen experiment (shop-app, orders and their
	// CPU metrics) at appRPS screen loads per second.
	story  bool
	appRPS float64
	// now is the clock (tests may replace it).
	now func() time.Time
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	cfg := config{now: time.Now}
	fs := flag.NewFlagSet("changelens-demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: changelens-demo [flags]\n\n"+
			"Emits traces of a demo shop (storefront, checkout, catalog, payments) and CI/CD deploy\n"+
			"spans over OTLP/gRPC: a backfilled past period, then live traffic. Ctrl-C stops it.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.endpoint, "otlp-endpoint", "localhost:4317", "OTLP/gRPC endpoint, host:port (insecure), or an http:// URL")
	var seed int64
	fs.Int64Var(&seed, "seed", 1, "scenario seed: the same seed and period give the same releases and spans")
	backfill := durationValue(14 * 24 * time.Hour)
	fs.Var(&backfill, "backfill", "past period to emit as fast as possible before going live (e.g. 14d, 36h, 0)")
	fs.BoolVar(&cfg.backfillOnly, "backfill-only", false, "stop after the backfill instead of going on live")
	duration := durationValue(0)
	fs.Var(&duration, "duration", "stop the live mode after this long (0: run until Ctrl-C)")
	var end string
	fs.StringVar(&end, "end", "", "end the backfill at this RFC 3339 time instead of now (implies --backfill-only); for reproducible runs")
	fs.Float64Var(&cfg.rps, "rps", 2, "mean requests per second per production service (staging gets a fifth)")
	fs.Float64Var(&cfg.backfillKids, "backfill-child-spans", 0.2, "fraction of backfilled requests sent with their CLIENT/INTERNAL child spans (live requests always are); "+
		"changelens reads only the entry spans and the flag evaluations (always sent), so a lower fraction makes a long backfill faster")
	fs.Float64Var(&cfg.weight, "weight", 1, "each trace stands for this many requests (W3C tracestate ot=th threshold): dashboards show rps×weight")
	fs.BoolVar(&cfg.staging, "staging", true, "also run a staging environment, where each release lands before production")
	fs.DurationVar(&cfg.progress, "progress", 5*time.Second, "interval of the progress line on stderr (0: none)")
	fs.BoolVar(&cfg.planOnly, "plan", false, "print the scenario (all deployments) and exit without sending anything")
	fs.IntVar(&cfg.queueSize, "queue-size", 8192, "span queue of the SDK batcher; a full queue blocks the generator (backpressure)")
	fs.IntVar(&cfg.batchSize, "batch-size", 2048, "spans per OTLP export request at most")
	fs.DurationVar(&cfg.exportRetry, "export-retry", 3*time.Minute, "how long a failing export is retried (the generator waits meanwhile) before its spans are counted as lost")
	fs.StringVar(&cfg.webhookEndpoint, "webhook-endpoint", "", "the changelens_webhook receiver (host:port): once the backfill is done, report the bad release's incidents to it "+
		"as Prometheus Alertmanager and PagerDuty would (secrets from $"+envAlertmanagerToken+" and $"+envPagerDutySecret+"); empty: none")
	fs.BoolVar(&cfg.story, "story", true, "also run the order-screen experiment: the shop-app mobile app (GraphQL or REST by the flag "+storyFlag+"), "+
		"the orders backend's two versions and their process.cpu.time/process.memory.usage metrics")
	fs.Float64Var(&cfg.appRPS, "app-rps", 1, "mean order-screen loads per second of the shop-app story")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	cfg.seed = uint64(seed)
	cfg.backfill, cfg.duration = time.Duration(backfill), time.Duration(duration)
	if end != "" {
		t, err := time.Parse(time.RFC3339, end)
		if err != nil {
			return cfg, fmt.Errorf("--end: %w", err)
		}
		cfg.end, cfg.backfillOnly = t.UTC(), true
	}
	switch {
	case cfg.backfill < 0:
		return cfg, errors.New("--backfill must not be negative")
	case cfg.duration < 0:
		return cfg, errors.New("--duration must not be negative")
	case !(cfg.rps > 0) || cfg.rps > 10000:
		return cfg, fmt.Errorf("--rps must be in (0, 10000], got %v", cfg.rps)
	case !(cfg.backfillKids >= 0 && cfg.backfillKids <= 1):
		return cfg, fmt.Errorf("--backfill-child-spans must be in [0, 1], got %v", cfg.backfillKids)
	case cfg.story && (!(cfg.appRPS > 0) || cfg.appRPS > 10000):
		return cfg, fmt.Errorf("--app-rps must be in (0, 10000], got %v", cfg.appRPS)
	case cfg.exportRetry < 0:
		return cfg, errors.New("--export-retry must not be negative")
	case cfg.queueSize < 1 || cfg.batchSize < 1:
		return cfg, errors.New("--queue-size and --batch-size must be positive")
	case cfg.backfillOnly && cfg.backfill == 0 && !cfg.planOnly:
		return cfg, errors.New("--backfill-only with --backfill 0 has nothing to emit")
	}
	if _, err := weightTraceState(cfg.weight); err != nil {
		return cfg, fmt.Errorf("--weight: %w", err)
	}
	return cfg, nil
}

// durationValue is a time.Duration flag that also takes days: 14d, 1d12h.
type durationValue time.Duration

func (d *durationValue) String() string { return formatDuration(time.Duration(*d)) }

func (d *durationValue) Set(s string) error {
	v, err := parseDuration(s)
	if err == nil {
		*d = durationValue(v)
	}
	return err
}

func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, nil
	}
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		n, err := strconv.ParseFloat(s[:i], 64)
		if err != nil || n < 0 || n > 3650 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		days = time.Duration(n * float64(24*time.Hour))
		s = s[i+1:]
		if s == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (use e.g. 14d, 36h, 90m)", s)
	}
	return days + d, nil
}

// formatDuration prints 14d, 2d03h, 45m, 30s.
func formatDuration(d time.Duration) string {
	neg := d < 0
	if neg {
		d = -d
	}
	var s string
	switch days, rest := d/(24*time.Hour), d%(24*time.Hour); {
	case d == 0:
		s = "0"
	case days > 0 && rest == 0:
		s = fmt.Sprintf("%dd", days)
	case days > 0:
		s = fmt.Sprintf("%dd%02dh", days, rest/time.Hour)
	case d >= time.Hour:
		s = fmt.Sprintf("%dh%02dm", d/time.Hour, (d%time.Hour)/time.Minute)
	case d >= time.Minute:
		s = fmt.Sprintf("%dm", d/time.Minute)
	default:
		s = fmt.Sprintf("%ds", d/time.Second)
	}
	if neg {
		return "-" + s
	}
	return s
}

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "changelens-demo:", err)
		os.Exit(2)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		fmt.Fprintln(os.Stderr, "\nchangelens-demo: stopping, sending what was generated (Ctrl-C again to quit at once)")
		cancel()
		<-sigs
		os.Exit(130)
	}()
	if os.Getenv("GOGC") == "" {
		// Spans are short-lived garbage; the live heap is the bounded queue.
		// Collecting less often saves about a third of the CPU.
		debug.SetGCPercent(400)
		debug.SetMemoryLimit(1 << 30)
	}
	res, err := run(ctx, cfg, os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "changelens-demo:", err)
		os.Exit(1)
	}
	if res != nil && res.failed > 0 {
		os.Exit(1)
	}
}

// result is what a run emitted.
type result struct {
	plan          *plan.Plan
	from, to      time.Time // simulated time covered
	requests      int64
	spans         int64
	exported      int64
	failed        int64
	deployments   []plan.Deployment
	incidents     []demoIncident // reported to the webhook receiver
	incidentIDs   []string       // as the receiver accepted them
	backfillTook  time.Duration
	interrupted   bool
	firstExportEr string
	story         *orderStory // nil: not run
}

func run(ctx context.Context, cfg config, stdout, stderr io.Writer) (*result, error) {
	end := cfg.end
	if end.IsZero() {
		end = cfg.now().UTC().Truncate(time.Second)
	}
	var horizon time.Duration
	if !cfg.backfillOnly {
		horizon = 7 * 24 * time.Hour
		if cfg.duration > 0 {
			horizon = cfg.duration + time.Hour
		}
	}
	p, err := plan.New(plan.Config{Seed: cfg.seed, Start: end.Add(-cfg.backfill), End: end, Horizon: horizon, Staging: cfg.staging})
	if err != nil {
		return nil, err
	}
	if cfg.planOnly {
		printPlan(stdout, p, p.Deployments)
		return nil, nil
	}

	st := &stats{}
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		st.warn(stderr, "otel: %v", err)
	}))
	opts := []otlptracegrpc.Option{
		otlptracegrpc.WithTimeout(20 * time.Second),
		// A collector that is away for a while holds the generator back
		// (the batcher blocks) instead of losing spans.
		otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: cfg.exportRetry > 0, InitialInterval: 500 * time.Millisecond, MaxInterval: 10 * time.Second, MaxElapsedTime: cfg.exportRetry}),
	}
	if strings.Contains(cfg.endpoint, "://") {
		opts = append(opts, otlptracegrpc.WithEndpointURL(cfg.endpoint))
		if strings.HasPrefix(cfg.endpoint, "http://") {
			opts = append(opts, otlptracegrpc.WithInsecure())
		}
	} else {
		opts = append(opts, otlptracegrpc.WithEndpoint(cfg.endpoint), otlptracegrpc.WithInsecure())
	}
	exp, err := otlptracegrpc.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("OTLP exporter: %w", err)
	}
	counted := &countingExporter{SpanExporter: exp, st: st, stderr: stderr}
	bsp := sdktrace.NewBatchSpanProcessor(counted,
		sdktrace.WithBlocking(),
		sdktrace.WithMaxQueueSize(cfg.queueSize),
		sdktrace.WithMaxExportBatchSize(min(cfg.batchSize, cfg.queueSize)),
		sdktrace.WithBatchTimeout(time.Second),
		sdktrace.WithExportTimeout(cfg.exportRetry+time.Minute),
	)
	em, err := newEmitter(p, cfg.rps, cfg.weight, bsp, st)
	if err != nil {
		_ = bsp.Shutdown(context.Background())
		return nil, err
	}
	em.childFrac = cfg.backfillKids
	var metricExp *otlpmetricgrpc.Exporter
	if cfg.story {
		metricExp, err = newMetricExporter(ctx, cfg)
		if err != nil {
			_ = bsp.Shutdown(context.Background())
			return nil, err
		}
		em.story = newOrderStory(cfg.seed, p.Start, cfg.appRPS, defaultStory, bsp, metricExp.Export, st)
		em.story.warnf = func(format string, args ...any) { st.warn(stderr, format, args...) }
	}

	fmt.Fprintf(stderr, "changelens-demo: %d services × %d environments → %s; backfill %s (%s … %s) at %.3g req/s per service, %d deployments planned in it\n",
		len(p.Services), len(p.Units)/len(p.Services), cfg.endpoint, formatDuration(cfg.backfill),
		p.Start.Format(time.RFC3339), p.End.Format(time.RFC3339), cfg.rps, countBefore(p.Deployments, p.Start, p.End))

	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		if cfg.progress <= 0 {
			<-stopProgress
			return
		}
		tick := time.NewTicker(cfg.progress)
		defer tick.Stop()
		began, last, lastT := time.Now(), int64(0), time.Now()
		for {
			select {
			case <-stopProgress:
				return
			case now := <-tick.C:
				x := st.exported.Load()
				rate := float64(x-last) / now.Sub(lastT).Seconds()
				last, lastT = x, now
				sim := time.Unix(0, st.simTime.Load()).UTC()
				phase := "live"
				if !st.live.Load() {
					frac := 0.0
					if span := p.End.Sub(p.Start); span > 0 {
						frac = float64(sim.Sub(p.Start)) / float64(span)
					}
					phase = fmt.Sprintf("backfill %4.1f%%", 100*max(frac, 0))
				}
				fmt.Fprintf(stderr, "[%s] sim %s  requests %s  spans %s exported (%s/s)  deployments %d  elapsed %s\n",
					phase, sim.Format("2006-01-02 15:04Z"), human(st.requests.Load()), human(x), human(int64(rate)),
					st.deployments.Load(), time.Since(began).Truncate(time.Second))
			}
		}
	}()

	res := &result{plan: p, from: p.Start}
	began := time.Now()
	runErr := em.loop(ctx, cfg, p.End, func() {
		res.backfillTook = time.Since(began)
		if cfg.webhookEndpoint == "" {
			return
		}
		// The incidents of the backfilled past, as their sources report them.
		res.incidents = planIncidents(p, p.Start, p.End)
		ids, err := newWebhookPoster(cfg.webhookEndpoint).report(ctx, res.incidents)
		res.incidentIDs = ids
		if err != nil {
			st.warn(stderr, "reporting incidents to %s: %v", cfg.webhookEndpoint, err)
			return
		}
		fmt.Fprintf(stderr, "changelens-demo: reported %d incidents to %s: %s\n", len(ids), cfg.webhookEndpoint, strings.Join(ids, ", "))
	})
	res.interrupted = ctx.Err() != nil

	// Flush what was generated, whatever stopped us.
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	em.shutdownTracers(sctx)
	if err := bsp.Shutdown(sctx); err != nil && runErr == nil {
		runErr = fmt.Errorf("flushing spans: %w", err)
	}
	if metricExp != nil {
		_ = metricExp.Shutdown(sctx)
		res.story = em.story
	}
	close(stopProgress)
	<-progressDone

	res.to = time.Unix(0, st.simTime.Load()).UTC()
	res.requests, res.spans = st.requests.Load(), st.spans.Load()
	res.exported, res.failed = st.exported.Load(), st.failed.Load()
	if e, ok := st.firstErr.Load().(string); ok {
		res.firstExportEr = e
	}
	for _, d := range p.Deployments {
		if !d.Time().Before(p.Start) && d.Time().Before(res.to) {
			res.deployments = append(res.deployments, d)
		}
	}
	if res.backfillTook == 0 {
		res.backfillTook = time.Since(began)
	}
	printSummary(stdout, res)
	if errors.Is(runErr, context.Canceled) {
		runErr = nil
	}
	return res, runErr
}

// newMetricExporter sends the story's metrics where the spans go.
func newMetricExporter(ctx context.Context, cfg config) (*otlpmetricgrpc.Exporter, error) {
	opts := []otlpmetricgrpc.Option{
		otlpmetricgrpc.WithTimeout(20 * time.Second),
		otlpmetricgrpc.WithRetry(otlpmetricgrpc.RetryConfig{Enabled: cfg.exportRetry > 0, InitialInterval: 500 * time.Millisecond, MaxInterval: 10 * time.Second, MaxElapsedTime: cfg.exportRetry}),
	}
	if strings.Contains(cfg.endpoint, "://") {
		opts = append(opts, otlpmetricgrpc.WithEndpointURL(cfg.endpoint))
		if strings.HasPrefix(cfg.endpoint, "http://") {
			opts = append(opts, otlpmetricgrpc.WithInsecure())
		}
	} else {
		opts = append(opts, otlpmetricgrpc.WithEndpoint(cfg.endpoint), otlpmetricgrpc.WithInsecure())
	}
	exp, err := otlpmetricgrpc.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("OTLP metric exporter: %w", err)
	}
	return exp, nil
}

// loop emits chunk after chunk: the backfill as fast as the exporter takes
// it, then (unless backfill-only) live, paced by the wall clock.
func (e *emitter) loop(ctx context.Context, cfg config, backfillEnd time.Time, backfillDone func()) error {
	t := e.plan.Start
	e.st.simTime.Store(t.UnixNano())
	live := false
	var stopAt time.Time
	for ctx.Err() == nil {
		if !live && !t.Before(backfillEnd) {
			backfillDone()
			if cfg.backfillOnly {
				return nil
			}
			live = true
			e.childFrac = 1
			e.st.live.Store(true)
			if cfg.duration > 0 {
				stopAt = cfg.now().Add(cfg.duration)
			}
		}
		var next time.Time
		if !live {
			next = t.Add(backfillChunk)
			if next.After(backfillEnd) {
				next = backfillEnd
			}
		} else {
			if !stopAt.IsZero() && !t.Before(stopAt) {
				return nil
			}
			now := cfg.now()
			if now.Sub(t) >= backfillChunk {
				next = t.Add(backfillChunk) // catching up
			} else {
				next = t.Add(liveChunk)
				if wait := next.Sub(now); wait > 0 {
					select {
					case <-ctx.Done():
						return ctx.Err()
					case <-time.After(wait):
					}
				}
			}
			if !stopAt.IsZero() && next.After(stopAt) {
				next = stopAt
			}
		}
		if err := e.chunk(ctx, t, next, live); err != nil {
			return err
		}
		t = next
	}
	return ctx.Err()
}

// countingExporter counts exported and failed spans: nothing is lost silently.
type countingExporter struct {
	sdktrace.SpanExporter
	st     *stats
	stderr io.Writer
}

func (c *countingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := c.SpanExporter.ExportSpans(ctx, spans)
	if err != nil {
		lost := c.st.failed.Add(int64(len(spans)))
		c.st.warn(c.stderr, "export failed, %d spans lost so far: %v", lost, err)
		return err
	}
	c.st.exported.Add(int64(len(spans)))
	return nil
}

func countBefore(ds []plan.Deployment, from, to time.Time) int {
	n := 0
	for _, d := range ds {
		if !d.Time().Before(from) && d.Time().Before(to) {
			n++
		}
	}
	return n
}

func human(n int64) string {
	switch {
	case n >= 10_000_000:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 1_000_000:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	case n >= 10_000:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	}
	return strconv.FormatInt(n, 10)
}
