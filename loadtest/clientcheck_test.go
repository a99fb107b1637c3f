package loadtest

import (
	"compress/gzip"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestClosedLoop checks the measuring itself on a fake API: statuses are
// counted apart, bodies are counted as sent (gzip), and connection errors
// are not statuses.
func TestClosedLoop(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) % 3 {
		case 0:
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("busy"))
		case 1:
			// Compressed as the API compresses its errors.
			w.Header().Set("Content-Encoding", "gzip")
			w.WriteHeader(http.StatusGatewayTimeout)
			zw := gzip.NewWriter(w)
			_, _ = zw.Write([]byte("late"))
			_ = zw.Close()
		default:
			if r.Header.Get("Accept-Encoding") != "gzip" {
				t.Error("no Accept-Encoding: gzip")
			}
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			_, _ = zw.Write([]byte(strings.Repeat("a", 100000)))
			_ = zw.Close()
		}
	}))
	defer srv.Close()
	c := closedLoop(func() string { return srv.URL }, 4, 200*time.Millisecond, time.Second)
	if c.requests() < 10 || c.connErrs != 0 {
		t.Fatalf("%d requests, %d connection errors (%s)", c.requests(), c.connErrs, c.firstErr)
	}
	ok, busy, late := c.codes[200], c.codes[503], c.codes[504]
	if ok+busy+late != c.requests() || ok == 0 || busy == 0 || late == 0 || c.otherCodes() != "0" {
		t.Fatalf("codes %v of %d requests", c.codes, c.requests())
	}
	if per := c.okBytes / int64(ok); per <= 0 || per > 1000 {
		t.Errorf("%d bytes per 200: want the compressed size", per)
	}
	if c.errBodies[503] != "busy" || c.errBodies[504] != "late" {
		t.Errorf("error bodies %v", c.errBodies)
	}

	srv.Close()
	c = closedLoop(func() string { return srv.URL }, 2, 50*time.Millisecond, time.Second)
	if c.connErrs == 0 || c.connErrs != c.requests() || len(c.codes) != 0 || c.firstErr == "" {
		t.Errorf("closed server: %d connection errors of %d requests, codes %v", c.connErrs, c.requests(), c.codes)
	}
}

func TestProbeAndRSS(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 350*time.Millisecond)
	defer cancel()
	lat, fails := probe(ctx, srv.URL, 100*time.Millisecond, time.Second)
	if len(lat) < 2 || fails != 0 {
		t.Errorf("%d probes, %d failed", len(lat), fails)
	}
	w := watchRSS(os.Getpid())
	time.Sleep(60 * time.Millisecond)
	if p := w.peak(); p < 1<<20 {
		t.Errorf("peak RSS %d bytes (sampled: %v)", p, w.sampled())
	}
	if q := quantile([]time.Duration{5, 1, 4, 2, 3}, 0.5); q != 3 {
		t.Errorf("median %d", q)
	}
}
