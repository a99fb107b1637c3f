package server

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/changelens/changelens/queryapi/gen/changelens/v1"
	"github.com/changelens/changelens/queryapi/limits"
)

// /livez answers from the process; /readyz and /healthz from the last
// probe — neither waits for a ClickHouse that does not answer.
func TestProbesNeverBlock(t *testing.T) {
	src := &slowPingSource{release: make(chan struct{})}
	ts := startServer(t, Config{Source: src, HealthInterval: 50 * time.Millisecond})
	for _, c := range []struct {
		path string
		code int
	}{{"/livez", 200}, {"/readyz", 503}, {"/healthz", 503}} {
		t0 := time.Now()
		code, body := ts.getJSON(t, c.path)
		if code != c.code || time.Since(t0) > time.Second {
			t.Errorf("%s with ClickHouse hanging: %d %v after %s, want %d at once", c.path, code, body, time.Since(t0), c.code)
		}
	}
	hc := healthpb.NewHealthClient(ts.conn)
	if r, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{Service: LivenessService}); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("gRPC liveness: %v %v", r, err)
	}
	close(src.release)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if code, _ := ts.get(t, "/readyz"); code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("readyz did not turn 200 after ClickHouse answered")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Past MaxRunning requests in flight, the next waits QueueWait and gets 503
// with Retry-After and a JSON status (gRPC: UNAVAILABLE); the running ones
// are unaffected.
func TestAdmission(t *testing.T) {
	src := &fakeSource{block: true}
	ts := startServer(t, Config{Source: src, MaxRunning: 2, QueueWait: 100 * time.Millisecond,
		Limits: limitsWithTimeout(2 * time.Second)})
	var wg sync.WaitGroup
	codes504 := make(chan int, 2)
	// Distinct requests: identical ones would share one answer.
	for _, env := range []string{"a", "b"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, _ := ts.get(t, "/v1/services?environment="+env)
			codes504 <- code
		}()
	}
	time.Sleep(300 * time.Millisecond) // both running (blocked)
	resp, err := httpClient.Get(ts.base + "/v1/services?environment=c")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" || !strings.Contains(string(body), `"code":14`) ||
		!strings.Contains(string(body), "server busy") {
		t.Errorf("third request: %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	_, err = pb.NewQueryServiceClient(ts.conn).ListServices(context.Background(), &pb.ListServicesRequest{})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("gRPC while busy: %v, want UNAVAILABLE", err)
	}
	wg.Wait()
	close(codes504)
	for c := range codes504 {
		if c != 504 {
			t.Errorf("a running request ended with %d, want 504 (its deadline)", c)
		}
	}
	if code, _ := ts.get(t, "/livez"); code != 200 {
		t.Errorf("livez while busy: %d", code)
	}
}

// A deadline is a 504 whose message says which deadline: the client's when
// it is nearer than the server's.
func TestDeadlineMessages(t *testing.T) {
	ts := startServer(t, Config{Source: &fakeSource{block: true}, Limits: limitsWithTimeout(300 * time.Millisecond)})
	code, body := ts.getJSON(t, "/v1/services")
	if msg, _ := body["message"].(string); code != 504 || !strings.Contains(msg, "within 300ms") {
		t.Errorf("server deadline: %d %v", code, body)
	}
	code, body = ts.getJSON(t, "/v1/services", "Grpc-Timeout", "1n")
	if msg, _ := body["message"].(string); code != 504 || strings.Contains(msg, "300ms") || !strings.Contains(msg, "deadline") {
		t.Errorf("client deadline 1ns: %d %v", code, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := pb.NewQueryServiceClient(ts.conn).ListServices(metadata.NewOutgoingContext(ctx, nil), &pb.ListServicesRequest{})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("gRPC client deadline: %v", err)
	}
}

// Every error is a google.rpc.Status JSON body: oversized headers, unclean
// paths (no HTML redirect), wrong methods; HEAD is GET without a body.
func TestEdgeErrorsAreJSON(t *testing.T) {
	ts := startServer(t, Config{Source: &fakeSource{}})
	noRedirect := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, path string, header ...string) (int, http.Header, string) {
		t.Helper()
		req, err := http.NewRequest(method, ts.base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	for _, c := range []struct {
		method, path string
		header       []string
		code         int
	}{
		{"GET", "/v1/services", []string{"X-Big", strings.Repeat("a", 70<<10)}, 431},
		{"GET", "/v1//services", nil, 404},
		{"GET", "/v1/../openapi.json", nil, 404},
		{"GET", "/v1/services/", nil, 404},
		{"GET", "/nope", nil, 404},
		{"POST", "/v1/services", nil, 405},
		{"POST", "/livez", nil, 405},
		{"DELETE", "/openapi.json", nil, 405},
	} {
		code, hdr, body := do(c.method, c.path, c.header...)
		if code != c.code || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") ||
			!strings.Contains(body, `"code":`) || !strings.Contains(body, `"message":`) {
			t.Errorf("%s %s: %d %s %q, want %d with a JSON status", c.method, c.path, code, hdr.Get("Content-Type"), body, c.code)
		}
	}
	if code, _, body := do("HEAD", "/v1/services"); code != 200 || body != "" {
		t.Errorf("HEAD /v1/services: %d %q, want 200 without a body", code, body)
	}
	if code, _, _ := do("HEAD", "/livez"); code != 200 {
		t.Errorf("HEAD /livez: %d", code)
	}
}

// Answers are gzip-compressed for clients that accept it.
func TestGzip(t *testing.T) {
	ts := startServer(t, Config{Source: &fakeSource{}})
	req, _ := http.NewRequest("GET", ts.base+"/openapi.json", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q, want gzip", resp.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil || !strings.Contains(string(b), `"swagger"`) {
		t.Errorf("decompressed body: %v %.80s", err, b)
	}
	if code, body := ts.get(t, "/openapi.json"); code != 200 || !strings.Contains(string(body), `"swagger"`) {
		t.Errorf("without Accept-Encoding: %d", code)
	}
}

func limitsWithTimeout(d time.Duration) limits.Limits {
	l := limits.Default()
	l.QueryTimeout = d
	return l
}

// Identical heavy requests arriving together run one query; different ones
// do not share.
func TestCoalescing(t *testing.T) {
	src := &fakeSource{delay: 300 * time.Millisecond}
	ts := startServer(t, Config{Source: src})
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			path := "/v1/latency?service=a&environment=b"
			if i == 9 {
				path = "/v1/latency?service=other&environment=b"
			}
			if code, body := ts.get(t, path); code != 200 {
				t.Errorf("%s: %d %s", path, code, body)
			}
		}()
	}
	wg.Wait()
	if n := src.Calls(); n != 2 {
		t.Errorf("the source ran %d queries for 9 identical requests and 1 other, want 2", n)
	}
}

// Identical REST GETs in flight share one answer, but never across what
// makes answers differ: a wrong token among valid ones is refused, gzip
// is never sent to a client that did not ask for it, and the client whose
// request started the answer may leave without failing the others.
func TestSharedResponses(t *testing.T) {
	src := &fakeSource{delay: 300 * time.Millisecond}
	ts := startServer(t, Config{Source: src, AuthTokens: []string{"good"}})
	const path = "/v1/latency?service=a&environment=b"

	// The first caller gives up after 100 ms.
	leaderDone := make(chan struct{})
	go func() {
		defer close(leaderDone)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.base+path, nil)
		req.Header.Set("Authorization", "Bearer good")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			t.Errorf("the leaving client got an answer: %s", resp.Status)
		}
	}()
	time.Sleep(20 * time.Millisecond)

	type result struct {
		code     int
		encoding string
		body     []byte
	}
	results := make([]result, 9)
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodGet, ts.base+path, nil)
			req.Header.Set("Authorization", "Bearer good")
			switch {
			case i == 0:
				req.Header.Set("Authorization", "Bearer bad")
			case i%2 == 0:
				req.Header.Set("Accept-Encoding", "gzip")
			}
			tr := &http.Transport{DisableCompression: true}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			var r io.Reader = resp.Body
			if resp.Header.Get("Content-Encoding") == "gzip" {
				zr, err := gzip.NewReader(resp.Body)
				if err != nil {
					t.Error(err)
					return
				}
				r = zr
			}
			body, err := io.ReadAll(r)
			if err != nil {
				t.Error(err)
			}
			results[i] = result{resp.StatusCode, resp.Header.Get("Content-Encoding"), body}
		}()
	}
	wg.Wait()
	<-leaderDone
	if results[0].code != http.StatusUnauthorized {
		t.Errorf("a wrong token among identical requests: %d %s", results[0].code, results[0].body)
	}
	for i := 1; i < len(results); i++ {
		r := results[i]
		// gzip is for those who asked (and bodies over 1 KB: this one is
		// small); a client that did not ask never receives it.
		if r.code != http.StatusOK || (i%2 == 1 && r.encoding != "") || !bytes.Equal(r.body, results[1].body) {
			t.Errorf("request %d: %d encoding %q body %.100s", i, r.code, r.encoding, r.body)
		}
	}
	if n := src.Calls(); n != 1 {
		t.Errorf("the source ran %d queries, want 1", n)
	}
}
