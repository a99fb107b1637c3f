package webui

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, path string) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Result()
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Every page address answers the same document (the pages route in the
// browser), so a copied link to any page works; files that do not exist
// are 404, not the document.
func TestPagesAndAssets(t *testing.T) {
	h, err := Handler(Config{TraceURL: "http://jaeger.example:16686/trace/{trace_id}", Auth: true, Version: "1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	index := ""
	for _, p := range []string{"/ui/", "/ui/deployments/abc", "/ui/retro/payments/2026-Q4", "/ui/dora"} {
		r := get(t, h, p)
		if r.StatusCode != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("%s: %d %s", p, r.StatusCode, r.Header.Get("Content-Type"))
		}
		if !strings.Contains(r.Header.Get("Content-Security-Policy"), "script-src 'self'") {
			t.Errorf("%s: CSP %q", p, r.Header.Get("Content-Security-Policy"))
		}
		b := body(t, r)
		if index == "" {
			index = b
		} else if b != index {
			t.Errorf("%s answers a different document", p)
		}
	}
	if !strings.Contains(index, `<html lang="en">`) || !strings.Contains(index, `src="/ui/assets/app.js"`) {
		t.Errorf("index.html: %.200s", index)
	}
	for path, ctype := range map[string]string{
		"/ui/assets/app.js":    "text/javascript",
		"/ui/assets/style.css": "text/css",
		"/ui/assets/charts.js": "text/javascript",
	} {
		r := get(t, h, path)
		if r.StatusCode != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), ctype) {
			t.Errorf("%s: %d %q, want 200 %s", path, r.StatusCode, r.Header.Get("Content-Type"), ctype)
		}
	}
	// Assets revalidate by content.
	first := get(t, h, "/ui/assets/app.js")
	tag := first.Header.Get("ETag")
	if tag == "" {
		t.Fatal("/ui/assets/app.js has no ETag")
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/ui/assets/app.js", nil)
	req.Header.Set("If-None-Match", tag)
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified {
		t.Errorf("If-None-Match %s: %d, want 304", tag, rec.Code)
	}
	for _, p := range []string{"/ui/assets/missing.js", "/ui/favicon.ico"} {
		if r := get(t, h, p); r.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, r.StatusCode)
		}
	}
	r := get(t, h, "/ui/config.json")
	var cfg struct {
		TraceURL string `json:"trace_url"`
		Auth     bool   `json:"auth"`
		Version  string `json:"version"`
	}
	if err := json.Unmarshal([]byte(body(t, r)), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.TraceURL != "http://jaeger.example:16686/trace/{trace_id}" || !cfg.Auth || cfg.Version != "1.2.3" {
		t.Errorf("config.json: %+v", cfg)
	}
}

// Every module the pages import is embedded: a missing one would leave a
// blank page only a browser would notice.
func TestImportsResolve(t *testing.T) {
	h, err := Handler(Config{})
	if err != nil {
		t.Fatal(err)
	}
	entries, err := static.ReadDir("static/assets")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".js") {
			continue
		}
		src, _ := static.ReadFile("static/assets/" + e.Name())
		for _, line := range strings.Split(string(src), "\n") {
			_, from, ok := strings.Cut(line, ` from "./`)
			if !ok || !strings.HasPrefix(line, "import") {
				continue
			}
			mod := strings.TrimSuffix(strings.TrimSuffix(from, `;`), `"`)
			if r := get(t, h, "/ui/assets/"+mod); r.StatusCode != http.StatusOK {
				t.Errorf("%s imports %s: %d", e.Name(), mod, r.StatusCode)
			}
		}
	}
}

func TestTraceURLValidated(t *testing.T) {
	for _, bad := range []string{"http://jaeger/trace/", "jaeger/trace/{trace_id}", "ftp://x/{trace_id}", "http:///{trace_id}"} {
		if _, err := Handler(Config{TraceURL: bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for _, good := range []string{"", "http://localhost:16686/trace/{trace_id}", "https://grafana.example/explore?left={%22queries%22:[{%22query%22:%22{trace_id}%22}]}"} {
		if _, err := Handler(Config{TraceURL: good}); err != nil {
			t.Errorf("%q: %v", good, err)
		}
	}
}
