// Package webui is changelens's own web UI: a few pages a person reads at a
// glance — a unit's deployment timeline, a deployment's impact, DORA for an
// environment, team or service, comparisons, experiment reports, the
// gate's answers and a team's retrospective — served by changelens-api
// under /ui/.
//
// The pages are plain HTML, CSS and JavaScript modules embedded in the
// binary: nothing to build, install or bundle, at run time or at
// development time. They read only the public REST API (/v1/...), the same
// answers Grafana's dashboards and scripts get, so a figure on a page is the
// API's figure; with bearer-token auth on they ask for a token once per
// browser tab. Only the static assets and /ui/config.json are served
// without a token: they hold no data.
package webui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// Config of the UI.
type Config struct {
	// TraceURL turns a trace ID into a link to the team's trace UI:
	// "{trace_id}" is replaced, e.g. "http://localhost:16686/trace/{trace_id}"
	// (Jaeger) or "https://grafana.example/explore?...{trace_id}..." (Tempo).
	// Empty: trace IDs are shown, not linked.
	TraceURL string
	// Auth tells the pages that the API wants a bearer token.
	Auth bool
	// Version of changelens, shown in the footer.
	Version string
}

// Validate checks TraceURL: an absolute http(s) URL holding {trace_id}.
func (c Config) Validate() error {
	if c.TraceURL == "" {
		return nil
	}
	if !strings.Contains(c.TraceURL, "{trace_id}") {
		return fmt.Errorf("trace URL %q has no {trace_id}", c.TraceURL)
	}
	u, err := url.Parse(strings.ReplaceAll(c.TraceURL, "{trace_id}", "0"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("trace URL %q is not an absolute http(s) URL", c.TraceURL)
	}
	return nil
}

// Prefix is where the UI is served.
const Prefix = "/ui/"

// Handler serves the UI under Prefix: the assets under /ui/assets/, the
// pages' settings at /ui/config.json, and index.html for every other path,
// so that each page has a stable address the pages route in the browser.
func Handler(cfg Config) (http.Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	assets, err := fs.Sub(static, "static")
	if err != nil {
		return nil, err
	}
	index, err := fs.ReadFile(assets, "index.html")
	if err != nil {
		return nil, err
	}
	settings, err := json.Marshal(struct {
		TraceURL string `json:"trace_url"`
		Auth     bool   `json:"auth"`
		Version  string `json:"version"`
	}{cfg.TraceURL, cfg.Auth, cfg.Version})
	if err != nil {
		return nil, err
	}
	// Embedded files carry no modification time: the build is the version,
	// so browsers revalidate (ETag) rather than keep a stale script.
	built := time.Now()
	files := http.StripPrefix(Prefix+"assets/", http.FileServerFS(mustSub(assets, "assets")))
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+Prefix+"config.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(settings)
	})
	etags, err := contentTags(mustSub(assets, "assets"))
	if err != nil {
		return nil, err
	}
	mux.Handle("GET "+Prefix+"assets/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Revalidated on every load, answered 304 by content: a new
		// binary's pages are never stale, an unchanged one costs no bytes.
		if tag, ok := etags[strings.TrimPrefix(r.URL.Path, Prefix+"assets/")]; ok {
			w.Header().Set("ETag", tag)
		}
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	}))
	mux.HandleFunc("GET "+Prefix, func(w http.ResponseWriter, r *http.Request) {
		if path.Ext(r.URL.Path) != "" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Security-Policy", csp)
		http.ServeContent(w, r, "index.html", built, bytes.NewReader(index))
	})
	return mux, nil
}

// csp allows the page's own scripts and styles and the API (same origin)
// only: the pages render API strings as text, and nothing else may run.
const csp = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// contentTags are the assets' ETags: a hash of each file's bytes.
func contentTags(assets fs.FS) (map[string]string, error) {
	tags := map[string]string{}
	err := fs.WalkDir(assets, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(assets, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		tags[p] = `"` + hex.EncodeToString(sum[:12]) + `"`
		return nil
	})
	return tags, err
}

func mustSub(f fs.FS, dir string) fs.FS {
	s, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return s
}
