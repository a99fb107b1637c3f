package loadtest

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// cell is what one endpoint at one client count measured.
type cell struct {
	endpoint string
	mode     string
	clients  int
	codes    map[int]int // HTTP status → responses
	connErrs int         // no response at all (refused, reset, client timeout)
	firstErr string      // the first connection error, to say why
	// errBodies holds the first answer of each status other than 200, to
	// say why (e.g. a ClickHouse error behind a 500).
	errBodies map[int]string
	lat       []time.Duration
	okBytes   int64 // bytes on the wire of the 200 bodies (compressed when the server compresses)
	elapsed   time.Duration

	livez      []time.Duration
	livezFail  int
	peakRSS    int64 // bytes; 0: unknown
	rssSampled bool
	// apiCPU and chCPU are the API's and ClickHouse's CPU use, in % of one core.
	apiCPU, chCPU float64
}

func (c *cell) requests() int { return len(c.lat) }

// otherCodes lists the statuses other than 200, 503 and 504, e.g. "500×12".
func (c *cell) otherCodes() string {
	var codes []int
	for code := range c.codes {
		if code != 200 && code != 503 && code != 504 {
			codes = append(codes, code)
		}
	}
	if len(codes) == 0 {
		return "0"
	}
	slices.Sort(codes)
	var parts []string
	for _, code := range codes {
		parts = append(parts, fmt.Sprintf("%d×%d", code, c.codes[code]))
	}
	return strings.Join(parts, " ")
}

// quantile is the nearest-rank quantile of ds (sorted in place); 0 when empty.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(q*float64(len(ds))+0.5) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

// closedLoop runs clients that each send GET next(), read the whole answer
// and send the next, until d has passed; requests in flight then are awaited
// (up to timeout), so every request counts. The client asks for gzip itself
// so the transport does not decompress: okBytes is what crossed the wire.
func closedLoop(next func() string, clients int, d, timeout time.Duration) *cell {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: clients,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: timeout}
	c := &cell{clients: clients, codes: map[int]int{}, errBodies: map[int]string{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	stop := start.Add(d)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			codes := map[int]int{}
			bodies := map[int]string{}
			var connErrs int
			var okBytes int64
			var firstErr error
			for time.Now().Before(stop) {
				t0 := time.Now()
				code, n, body, err := get(hc, next())
				lat = append(lat, time.Since(t0))
				if err != nil {
					connErrs++
					if firstErr == nil {
						firstErr = err
					}
					continue
				}
				codes[code]++
				if code == http.StatusOK {
					okBytes += n
				} else if _, seen := bodies[code]; !seen {
					bodies[code] = body
				}
			}
			mu.Lock()
			defer mu.Unlock()
			c.lat = append(c.lat, lat...)
			for k, v := range codes {
				c.codes[k] += v
			}
			for k, v := range bodies {
				if _, seen := c.errBodies[k]; !seen {
					c.errBodies[k] = v
				}
			}
			c.connErrs += connErrs
			c.okBytes += okBytes
			if firstErr != nil && c.firstErr == "" {
				c.firstErr = firstErr.Error()
			}
		}()
	}
	wg.Wait()
	c.elapsed = time.Since(start)
	return c
}

// get sends one GET with Accept-Encoding: gzip and drains the body; it
// returns the status, the body's bytes on the wire and, for a status other
// than 200, the start of the (decompressed) body.
func get(hc *http.Client, url string) (int, int64, string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, 0, "", err
	}
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, 0, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		n, err := io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, n, "", err
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, int64(len(raw)), "", err
	}
	body := raw
	if resp.Header.Get("Content-Encoding") == "gzip" {
		if zr, err := gzip.NewReader(bytes.NewReader(raw)); err == nil {
			body, _ = io.ReadAll(zr)
		}
	}
	return resp.StatusCode, int64(len(raw)), string(body[:min(len(body), 200)]), nil
}

// probe GETs url every interval until ctx ends, one probe at a time as a
// kubelet does, and returns the probes' latencies and how many failed (no
// answer within timeout, or not 200).
func probe(ctx context.Context, url string, interval, timeout time.Duration) ([]time.Duration, int) {
	hc := &http.Client{Transport: &http.Transport{}, Timeout: timeout}
	defer hc.CloseIdleConnections()
	var lat []time.Duration
	fails := 0
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return lat, fails
		case <-tick.C:
		}
		t0 := time.Now()
		resp, err := hc.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		lat = append(lat, time.Since(t0))
		if err != nil || resp.StatusCode != http.StatusOK {
			fails++
		}
	}
}

// rssWatch measures a process's peak resident memory over a span of time:
// the kernel's high-water mark reset through clear_refs when the kernel
// lets us, else VmRSS sampled every 50 ms.
type rssWatch struct {
	pid    int
	cancel context.CancelFunc
	done   chan int64
}

func watchRSS(pid int) *rssWatch {
	w := &rssWatch{pid: pid}
	if os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) == nil {
		return w
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel, w.done = cancel, make(chan int64, 1)
	go func() {
		var peak int64
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			if v, err := procStatus(pid, "VmRSS"); err == nil {
				peak = max(peak, v)
			}
			select {
			case <-ctx.Done():
				w.done <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

// sampled says whether the peak is sampled rather than the kernel's.
func (w *rssWatch) sampled() bool { return w.cancel != nil }

// peak ends the watch and returns the peak in bytes (0 when unreadable).
func (w *rssWatch) peak() int64 {
	if w.sampled() {
		w.cancel()
		return <-w.done
	}
	v, _ := procStatus(w.pid, "VmHWM")
	return v
}

// procStatus reads a "kB" field of /proc/<pid>/status, in bytes.
func procStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no " + field + " in /proc/" + strconv.Itoa(pid) + "/status")
}
