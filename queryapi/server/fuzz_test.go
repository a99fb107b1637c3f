package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/changelens/changelens/queryapi/limits"
)

// FuzzRESTQuery throws arbitrary query strings (and deployment ids) at every
// REST endpoint. Whatever the input: no panic, no 5xx, a JSON body. The fake
// Source errors (→ 500) on any query that breaks the server's promises
// (validated names, bounded ranges and steps, page sizes), so a validation
// gap fails the fuzzer too. `go test` runs the seed corpus; explore with
//
//	go test ./queryapi/server -run '^$' -fuzz FuzzRESTQuery -fuzztime 60s
func FuzzRESTQuery(f *testing.F) {
	seeds := []struct {
		endpoint uint8
		id       string
		query    string
	}{
		{0, "", ""},
		{0, "", "environment=production"},
		{1, "", "service=a&environment=b"},
		{1, "", "service=a&environment=b&step_seconds=60&start_time=2026-03-01T00:00:00Z&end_time=2026-03-02T00:00:00Z"},
		{1, "", "service=a&environment=b&step_seconds=2147483647"},
		{1, "", "service=a&environment=b&step_seconds=-2147483648"},
		{1, "", "service=a&environment=b&group_by=version&groupBy=operation"},
		{1, "", "service=a&environment=b&start_time.seconds=-99999999999999&start_time.nanos=-1"},
		{1, "", "service=a&environment=b&end_time.seconds=253402300800"},
		{1, "", "service=a&environment=b&start_time=0001-01-01T00:00:00Z"},
		{1, "", "service=a&environment=b&start_time=9999-12-31T23:59:59.999999999Z"},
		{1, "", "service='%3B%20DROP%20TABLE%20latency_events%3B--&environment=b"},
		{1, "", "service=%F0%9F%98%80&environment=%E2%80%8B"},
		{1, "", "service[x]=1&environment=b"},
		{1, "", "service=a&environment=b&operation=%00"},
		{1, "", "%zz=1"},
		{1, "", "service=a;environment=b"},
		{2, "", "service=a&environment=b&group_by=99"},
		{2, "", "service=a&environment=b&start_time=2026-03-10T11:00:00%2B25:00"},
		{3, "", "page_size=500&page_token=abc"},
		{3, "", "page_size=0&page_token=%FF"},
		{3, "", "page_size=99999999999"},
		{3, "", "start_time=1970-01-01T00:00:00Z&end_time=1970-01-02T00:00:00Z"},
		{4, depID, ""},
		{4, missingID, ""},
		{4, "../../x", ""},
		{4, "%2F", ""},
		{4, "", ""},
		{4, "0123456789abcdef0123456789abcdeF", "id=" + depID},
		{5, "", "interval=day&environment=staging"},
		{5, "", "interval=-1"},
		{5, "", "interval=INTERVAL_UNSPECIFIED&environment="},
		{5, "", "start_time=2026-03-10T12:00:00Z&end_time=2026-03-10T12:00:00.000000001Z"},
	}
	for _, s := range seeds {
		f.Add(s.endpoint, s.id, s.query)
	}
	srv, err := New(Config{
		Source: &fakeSource{},
		Now:    func() time.Time { return now },
		Logger: discardLogger(),
		Limits: limits.Limits{QueryTimeout: 10 * time.Second},
	})
	if err != nil {
		f.Fatal(err)
	}
	h := srv.Handler()
	f.Fuzz(func(t *testing.T, endpoint uint8, id, query string) {
		paths := [...]string{"/v1/services", "/v1/latency", "/v1/latency:summary", "/v1/deployments",
			"/v1/deployments/" + id + "/impact", "/v1/dora"}
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.URL.Path = paths[int(endpoint)%len(paths)]
		req.URL.RawQuery = query
		req.RequestURI = req.URL.RequestURI()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("GET %s?%s: %d %s", req.URL.Path, query, rec.Code, rec.Body)
		}
		if rec.Code >= 300 && rec.Code < 400 { // net/http's path cleaning redirect
			return
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("GET %s?%s: %d, body not JSON: %q", req.URL.Path, query, rec.Code, rec.Body)
		}
	})
}
