package browser

import (
	"bytes"
	"fmt"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"testing"
)

// The kit's own pages: each sets data-ready itself, as the web UI does once
// its data has rendered (here after a tick, so the wait is exercised).
var pages = map[string]string{
	// bad: a console error, an uncaught exception, a request that 404s, and
	// light grey on white (contrast 1.6:1, WCAG AA asks 4.5:1).
	"/bad": `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Bad page</title>
<link rel="icon" href="data:,"></head>
<body><main><h1>Bad page</h1>
<p id="faint" style="color:#ddd;background:#fff">Hard to read text</p>
<img src="/missing.png" alt="missing image">
</main>
<script>
console.error("something broke", 42);
setTimeout(() => { document.body.dataset.ready = "true"; }, 50);
setTimeout(() => { throw new Error("uncaught on purpose"); }, 0);
</script></body></html>`,
	// clean: links in a nav to tab through, the second styled with a
	// box-shadow focus ring and no outline; no accessibility violation.
	"/clean": `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Clean page</title>
<link rel="icon" href="data:,">
<style>#second:focus { outline: none; box-shadow: 0 0 0 3px #1a4d8f; }</style></head>
<body><main><h1>Clean page</h1>
<nav aria-label="Pages"><a id="first" href="/next">Next page</a> <a id="second" href="/bad">Bad page</a></nav>
<p class="note" data-kind="plain">Readable text</p><p class="note">Second note</p>
<button type="button" id="btn" onclick="document.getElementById('out').textContent = 'clicked'">Press</button>
<output id="out"></output>
</main>
<script>setTimeout(() => { document.body.dataset.ready = "true"; }, 50);</script></body></html>`,
	// failed: the page reports that its data did not render.
	"/failed": `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Failed</title><link rel="icon" href="data:,"></head>
<body><main><h1>Failed</h1></main>
<script>setTimeout(() => { document.body.dataset.error = "no data: the API answered 503"; }, 50);</script></body></html>`,
	"/next": `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Next</title><link rel="icon" href="data:,"></head>
<body><main><h1 id="title">Next page</h1></main>
<script>setTimeout(() => { document.body.dataset.ready = "true"; }, 50);</script></body></html>`,
}

func server(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page, ok := pages[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(page))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestKit runs the kit against the pages above, one browser for all.
func TestKit(t *testing.T) {
	base := server(t)
	b := New(t)

	t.Run("bad page", func(t *testing.T) {
		p := b.Open(t, base+"/bad")
		errs := strings.Join(p.ConsoleErrors(), "\n")
		t.Logf("bad page:\n%s", errs)
		for _, want := range []string{"console.error: something broke 42", "uncaught on purpose", "HTTP 404", "/missing.png"} {
			if !strings.Contains(errs, want) {
				t.Errorf("ConsoleErrors lack %q; they are:\n%s", want, errs)
			}
		}
		var contrast *Violation
		vs := p.Axe(t)
		for i := range vs {
			if vs[i].ID == "color-contrast" {
				contrast = &vs[i]
			}
		}
		if contrast == nil {
			t.Fatalf("axe found no color-contrast violation; it found %v", vs)
		}
		if len(contrast.Nodes) != 1 || !slices.Equal(contrast.Nodes[0].Target, []string{"#faint"}) || contrast.Nodes[0].FailureSummary == "" {
			t.Errorf("color-contrast violation: %+v, want one node, #faint, with a failure summary", contrast.Nodes)
		}
	})

	t.Run("clean page", func(t *testing.T) {
		p := b.Open(t, base+"/clean")
		if errs := p.ConsoleErrors(); len(errs) != 0 {
			t.Errorf("ConsoleErrors on a clean page: %q", errs)
		}
		if vs := p.Axe(t); len(vs) != 0 {
			t.Errorf("axe violations on a clean page: %v", vs)
		}
		if got := p.Text(t, "h1"); got != "Clean page" {
			t.Errorf("Text(h1) = %q", got)
		}
		if got := p.Texts(t, ".note"); !slices.Equal(got, []string{"Readable text", "Second note"}) {
			t.Errorf("Texts(.note) = %q", got)
		}
		if got := p.Texts(t, ".absent"); len(got) != 0 {
			t.Errorf("Texts(.absent) = %q, want none", got)
		}
		if got := p.Attr(t, "p.note", "data-kind"); got != "plain" {
			t.Errorf("Attr(p.note, data-kind) = %q", got)
		}
		var width int
		p.Eval(t, `window.innerWidth`, &width)
		if width != WindowWidth {
			t.Errorf("viewport width %d, want %d", width, WindowWidth)
		}
		// Tab from the top of the fresh page (before any click, which would
		// move the point Tab starts from): the two links in order, then the
		// button.
		fs := p.Tab(t, 3)
		var got []string
		for _, f := range fs {
			got = append(got, f.Tag+" "+f.Href+" "+f.Text)
		}
		want := []string{"a /next Next page", "a /bad Bad page", "button  Press"}
		if !slices.Equal(got, want) {
			t.Fatalf("Tab focused %q, want %q", got, want)
		}
		// The default focus ring (an outline) and the page's box-shadow.
		if !fs[0].Indicator || fs[0].OutlineStyle == "none" {
			t.Errorf("first link: no focus indicator: %+v", fs[0])
		}
		if !fs[1].Indicator || fs[1].OutlineStyle != "none" || fs[1].BoxShadow == "none" {
			t.Errorf("second link: want a box-shadow indicator and no outline: %+v", fs[1])
		}

		p.Click(t, "#btn")
		if got := p.Text(t, "#out"); got != "clicked" {
			t.Errorf("after Click, #out = %q", got)
		}

		dir := t.TempDir()
		path := filepath.Join(dir, "shots", "clean.png")
		p.Screenshot(t, path)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("the screenshot is no PNG: %v", err)
		}
		if w := img.Bounds().Dx(); w != WindowWidth {
			t.Errorf("screenshot %d px wide, want %d", w, WindowWidth)
		}

		// Back to the first link; Enter follows it and waits for the next
		// page's data-ready.
		p.Eval(t, `document.getElementById("first").focus(), true`, nil)
		p.PressEnter(t)
		if u := p.URL(t); u != base+"/next" {
			t.Errorf("after Enter on the first link: %s, want %s/next", u, base)
		}
		if got := p.Text(t, "#title"); got != "Next page" {
			t.Errorf("after Enter: title %q", got)
		}
	})
}

// fatalTB records the first Fatal of a kit function instead of failing
// the test, so the kit's failures can be tested; it ends the goroutine as
// testing.T does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatal(args ...any) {
	f.msg = strings.TrimSuffix(fmt.Sprintln(args...), "\n")
	goruntime.Goexit()
}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	goruntime.Goexit()
}

// fatal runs fn with a fatalTB and returns what it failed with ("" if it
// did not).
func fatal(t *testing.T, fn func(tb testing.TB)) string {
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	return f.msg
}

// TestPageErrors: a page that sets data-error fails Open with its text, and
// a missing element fails Text.
func TestPageErrors(t *testing.T) {
	base := server(t)
	b := New(t)
	if msg := fatal(t, func(tb testing.TB) { b.Open(tb, base+"/failed") }); !strings.Contains(msg, "no data: the API answered 503") {
		t.Errorf("Open of a page with data-error: %q, want its text", msg)
	}
	p := b.Open(t, base+"/next")
	if msg := fatal(t, func(tb testing.TB) { p.Text(tb, "#absent") }); !strings.Contains(msg, "#absent") {
		t.Errorf("Text of a missing element: %q, want the selector named", msg)
	}
}

// TestMissingTools: a browser test cannot pass without its tools; the kit names
// what is missing and how to get it.
func TestMissingTools(t *testing.T) {
	t.Setenv("CHANGELENS_CHROMIUM", filepath.Join(t.TempDir(), "no-chromium"))
	if _, err := ChromiumPath(); err == nil || !strings.Contains(err.Error(), "no-chromium") {
		t.Errorf("ChromiumPath with a missing CHANGELENS_CHROMIUM: %v", err)
	}
	t.Setenv("CHANGELENS_CHROMIUM", "")
	t.Setenv("PATH", t.TempDir())
	if _, err := ChromiumPath(); err == nil || !strings.Contains(err.Error(), "make deps") {
		t.Errorf("ChromiumPath without chromium on PATH: %v, want a hint at make deps", err)
	}
	// A checkout where make deps has not run: go.mod, no .build/npm.
	t.Setenv("CHANGELENS_AXE", "")
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte("module x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "pkg"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(filepath.Join(root, "pkg"))
	if _, err := AxePath(); err == nil || !strings.Contains(err.Error(), "make deps") {
		t.Errorf("AxePath without .build/npm: %v, want a hint at make deps", err)
	}
}
