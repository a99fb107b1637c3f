package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/store"
	"github.com/changelens/changelens/queryapi/usecase"
	"github.com/changelens/changelens/testkit/chtest"
	"github.com/changelens/changelens/worker/notify"
)

// worker is a running changelens-worker process.
type worker struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	log    bytes.Buffer
	exited chan struct{}
}

func (w *worker) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.log.Write(p)
}

func (w *worker) output() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.log.String()
}

// startWorker runs bin/changelens-worker (built by `make build`; missing is
// a failure) with args until the test ends.
func startWorker(t *testing.T, env []string, args ...string) *worker {
	t.Helper()
	bin := filepath.Join(repoRoot(t), "bin", "changelens-worker")
	_, err := os.Stat(bin)
	require.NoError(t, err, "the worker binary is missing: run `make build` (make test does)")
	w := &worker{cmd: exec.Command(bin, args...), exited: make(chan struct{})}
	w.cmd.Env = append(os.Environ(), env...)
	w.cmd.Stdout, w.cmd.Stderr = w, w
	require.NoError(t, w.cmd.Start())
	go func() { _ = w.cmd.Wait(); close(w.exited) }()
	t.Cleanup(func() {
		_ = w.cmd.Process.Kill()
		<-w.exited
		if t.Failed() {
			t.Logf("worker output:\n%s", tail(w.output(), 40))
		}
	})
	return w
}

func (w *worker) kill() {
	_ = w.cmd.Process.Kill()
	<-w.exited
}

func receiverOutage() time.Duration {
	if v := os.Getenv("CHANGELENS_E2E_RECEIVER_OUTAGE"); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
	}
	return 2 * time.Minute
}

// notificationReceiver is a local HTTP server standing in for a webhook
// target: down (503) until downUntil, then slow (each request takes
// 300 ms), counting what it received by idempotency key.
type notificationReceiver struct {
	downUntil time.Time
	mu        sync.Mutex
	attempts  int
	got       map[string]int // "path key" → deliveries
	inFlight  chan struct{}  // signalled when a delivery is being handled
}

func (r *notificationReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	_, _ = io.Copy(io.Discard, req.Body)
	r.mu.Lock()
	r.attempts++
	down := time.Now().Before(r.downUntil)
	r.mu.Unlock()
	if down {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	select {
	case r.inFlight <- struct{}{}:
	default:
	}
	time.Sleep(300 * time.Millisecond)
	r.mu.Lock()
	r.got[req.URL.Path+" "+req.Header.Get("Idempotency-Key")]++
	r.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (r *notificationReceiver) snapshot() (attempts int, got map[string]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	got = map[string]int{}
	for k, v := range r.got {
		got[k] = v
	}
	return r.attempts, got
}

// TestWorkerNotifications: deployments that went wrong, through the built
// collector, and the worker binary notifying two targets on one local
// receiver. The receiver is down for two minutes (the worker retries with
// backoff), then slow; the worker is SIGKILLed while a delivery is in
// flight and restarted. Afterwards every due notification has reached
// every target — exactly once after deduplication by idempotency key (at
// most the one in flight per target arrived twice) — and
// the delivery log holds them all; the settled verdicts are stored.
func TestWorkerNotifications(t *testing.T) {
	t.Parallel()
	ch := chtest.Shared(t)
	start := time.Now().Add(-2 * time.Hour).Truncate(time.Minute)
	change := func(from, to string, at int, slow, errRate float64) func(*rand.Rand, int) (string, float64, float64) {
		return func(_ *rand.Rand, m int) (string, float64, float64) {
			if m >= at {
				return to, slow, errRate
			}
			return from, 1, 0.005
		}
	}
	batches, requests := gateBatches(start, []gateUnit{
		{"checkout", 60, change("1.0", "1.1", 10, 3, 0.005)}, // 3× slower: DEGRADED
		{"cart", 60, change("2.0", "2.1", 12, 1, 0.08)},      // 8 % errors: DEGRADED
		{"search", 60, change("3.0", "3.1", 14, 1, 0.005)},   // unchanged: nothing to say
	})
	db := ch.NewDatabase(t)
	c := startCollector(t, clickhouseConfig(""), chEnv(ch, db)...)
	deliver(t, batches, []*otlpClient{dialCollector(t, c)}, 0)
	waitStored(t, ch, db, requests)

	// The notifications due: what the worker's own rules say about the data
	// (and they include the two regressions).
	st, err := store.Open(context.Background(), store.Config{DSN: ch.DSN("default", "", db)})
	require.NoError(t, err)
	defer st.Close()
	svc, err := usecase.New(st, usecase.Config{IgnoreStoredVerdicts: true, CacheSize: -1})
	require.NoError(t, err)
	j, err := svc.Judge(context.Background(), start.Add(-time.Hour), time.Now())
	require.NoError(t, err)
	var impacts []report.Impact
	for _, s := range j.Settled {
		impacts = append(impacts, s.Impact)
	}
	var want []string
	var degraded []string
	for _, e := range notify.EventsOf(append(impacts, j.Open...), false) {
		for _, target := range []string{"hook", "grafana"} {
			path := "/hook"
			if target == "grafana" {
				path = "/api/annotations"
			}
			want = append(want, path+" "+notify.Key(e.Deployment.ID, e.Kind, target))
		}
		if e.Kind == notify.KindDegraded {
			degraded = append(degraded, e.Deployment.Service)
		}
	}
	slices.Sort(degraded)
	require.Equal(t, []string{"cart", "checkout"}, degraded, "the scenario's regressions")
	slices.Sort(want)

	outage := receiverOutage()
	rcv := &notificationReceiver{downUntil: time.Now().Add(outage), got: map[string]int{}, inFlight: make(chan struct{}, 1)}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	cfgPath := filepath.Join(t.TempDir(), "notify.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(fmt.Sprintf(`targets:
  - name: hook
    type: webhook
    url: %s/hook
  - name: grafana
    type: grafana
    url: %s
    token: ${GRAFANA_TOKEN}
`, srv.URL, srv.URL)), 0o600))
	args := []string{"--clickhouse-dsn", ch.DSN("default", "", db), "--interval", "2s", "--notify-config", cfgPath,
		"--notify-timeout", "20s", "--notify-max-backoff", "5s"}
	env := []string{"GRAFANA_TOKEN=glsa_e2e_secret"}
	w := startWorker(t, env, args...)

	// Down: attempts fail and are retried.
	time.Sleep(outage / 2)
	if attempts, got := rcv.snapshot(); attempts == 0 || len(got) != 0 {
		t.Fatalf("during the outage: %d attempts, %d delivered; want attempts and nothing delivered", attempts, len(got))
	}
	// Up: kill the worker while a delivery is in flight, then restart it.
	select {
	case <-rcv.inFlight:
	case <-time.After(outage + 90*time.Second):
		t.Fatal("no delivery after the outage")
	}
	w.kill()
	w = startWorker(t, env, args...)
	require.Eventually(t, func() bool {
		_, got := rcv.snapshot()
		return len(got) >= len(want)
	}, 2*time.Minute, 200*time.Millisecond, "not every notification arrived")
	time.Sleep(3 * time.Second) // a cycle more: nothing else may arrive
	_, got := rcv.snapshot()
	keys := make([]string, 0, len(got))
	dups := 0
	for k, n := range got {
		keys = append(keys, k)
		dups += n - 1
	}
	slices.Sort(keys)
	assert.Equal(t, want, keys, "each notification reached each target (deduplicated by idempotency key)")
	// Each target delivers in its own goroutine: at the kill, at most one
	// delivery per target was in flight and may arrive twice.
	assert.LessOrEqual(t, dups, 2, "only deliveries in flight when the worker was killed may arrive twice")
	t.Logf("%d notifications delivered to 2 targets after a %s outage and a kill; %d duplicate(s) removed by the key", len(want)/2, outage, dups)

	logged := countRows(t, ch, db, "SELECT uniqExact(idempotency_key) FROM notification_log")
	assert.Equal(t, uint64(len(want)), logged)
	assert.Equal(t, uint64(len(j.Settled)), countRows(t, ch, db, "SELECT uniqExact(deployment_id) FROM deployment_verdicts"))
	assert.NotContains(t, w.output(), "glsa_e2e_secret")
	assert.True(t, strings.Contains(w.output(), "notification delivered"))
}
