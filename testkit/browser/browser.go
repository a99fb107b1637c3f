// Package browser drives a headless Chromium (Debian's chromium package)
// through the DevTools protocol (github.com/chromedp/chromedp) for tests of
// web pages: it opens a page, waits until the page says its data has
// rendered, and collects what a person at the browser would notice — console
// errors and warnings, uncaught exceptions, failed requests — and offers the
// keyboard (Tab, Enter), screenshots and accessibility checks with axe-core.
//
// A page tells the kit it is ready by setting data-ready="true" on <body>
// once its data has rendered, or data-error="<message>" when it failed; the
// kit fails the test with that message.
//
// What the kit needs beyond Go comes from `make deps`: Debian's chromium
// (CHANGELENS_CHROMIUM names another binary) and axe-core, pinned in
// package-lock.json next to this file and installed with npm ci into
// .build/npm (CHANGELENS_AXE names another axe.min.js). A missing one fails
// the test with a message naming `make deps`: a browser test that skipped
// would pass without testing anything.
package browser

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// Window is the browser's window (and every page's viewport) size: a small
// laptop screen, so layouts are tested below the widths designers use.
const (
	WindowWidth  = 1280
	WindowHeight = 900
)

// ReadyTimeout is how long Open and PressEnter wait for the page's data-ready.
const ReadyTimeout = 30 * time.Second

// actionTimeout bounds every other action on a page (a query, a click, a
// key press): they act on a page that is ready, so a long wait means a
// missing element or a hung page, and the test should say so, not hang.
const actionTimeout = 15 * time.Second

// Browser is one headless Chromium process; each Open is a tab in it.
type Browser struct {
	ctx context.Context // the browser's chromedp context
}

// ChromiumPath is the browser binary the kit starts: CHANGELENS_CHROMIUM if
// set, else chromium or chromium-browser on PATH.
func ChromiumPath() (string, error) {
	if p := os.Getenv("CHANGELENS_CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("CHANGELENS_CHROMIUM=%s: %w", p, err)
		}
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no chromium or chromium-browser on PATH (run `make deps`, which installs Debian's chromium, or set CHANGELENS_CHROMIUM)")
}

// New starts a headless Chromium for the test, closed at its cleanup. It
// fails the test when there is no Chromium.
func New(t testing.TB) *Browser {
	t.Helper()
	path, err := ChromiumPath()
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.WindowSize(WindowWidth, WindowHeight),
	)
	// Chromium refuses to start its sandbox as root (containers, CI
	// runners); there it needs --no-sandbox. Anyone else keeps the sandbox:
	// the pages are our own, but nothing is gained by turning it off.
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first Do starts the browser and binds its life to the context it
	// is given, so it gets ctx itself, not one with a timeout; a browser
	// that does not start within a minute fails the test instead.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("browser: starting %s: %v", path, err)
		}
	case <-time.After(time.Minute):
		t.Fatalf("browser: %s did not start within a minute", path)
	}
	return &Browser{ctx: ctx}
}

// Page is one tab of the browser, navigated by Open.
type Page struct {
	ctx context.Context // the tab's chromedp context

	mu       sync.Mutex
	problems []string
	requests map[network.RequestID]string // "METHOD url" of the requests seen
}

// Open opens url in a new tab (closed at the test's cleanup) and waits, at
// most ReadyTimeout, until the page sets data-ready="true" on <body>; it
// fails the test if the page sets data-error instead, does not load, or
// does not get ready. From the navigation on the page records console
// errors and warnings, uncaught exceptions and failed requests
// (ConsoleErrors).
func (b *Browser) Open(t testing.TB, url string) *Page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	t.Cleanup(cancel)
	p := &Page{ctx: ctx, requests: map[network.RequestID]string{}}
	// Listen, unlike chromedp's iterators, sees each event before the
	// command that follows it returns: what happened before the page said
	// it was ready is in ConsoleErrors when Open returns.
	if err := chromedp.Listen(ctx, p.record); err != nil {
		t.Fatalf("browser: opening a tab: %v", err)
	}
	// A new tab opens in a window of its own whose size is the browser's
	// default, not the --window-size of the first one: the viewport is set
	// on every tab.
	p.run(t, "setting the viewport", chromedp.EmulateViewport(WindowWidth, WindowHeight))
	p.run(t, "opening "+url, chromedp.Navigate(url))
	p.waitReady(t, url)
	return p
}

// record is the tab's event listener. It runs on the loop that reads the
// browser's messages, so it only appends under the lock.
func (p *Page) record(ev any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch e := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		switch e.Type {
		case runtime.ConsoleAPICalledTypeError, runtime.ConsoleAPICalledTypeWarning, runtime.ConsoleAPICalledTypeAssert:
			p.problems = append(p.problems, fmt.Sprintf("console.%s: %s", e.Type, argsText(e.Args)))
		}
	case *runtime.EventExceptionThrown:
		d := e.ExceptionDetails
		text := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			text += " " + d.Exception.Description
		}
		p.problems = append(p.problems, fmt.Sprintf("exception: %s (%s:%d)", text, d.URL, d.LineNumber+1))
	case *log.EventEntryAdded:
		// The browser's own console entries: a blocked resource, a CSP or
		// mixed-content violation, a deprecation warning.
		if l := e.Entry.Level; l == log.EntryLevelError || l == log.EntryLevelWarning {
			p.problems = append(p.problems, fmt.Sprintf("%s (%s): %s %s", l, e.Entry.Source, e.Entry.Text, e.Entry.URL))
		}
	case *network.EventRequestWillBeSent:
		p.requests[e.RequestID] = e.Request.Method + " " + e.Request.URL
	case *network.EventResponseReceived:
		if e.Response.Status >= 400 {
			p.problems = append(p.problems, fmt.Sprintf("HTTP %d %s: %s", e.Response.Status, e.Response.StatusText, p.request(e.RequestID, e.Response.URL)))
		}
	case *network.EventLoadingFailed:
		// A request the page cancelled itself (an AbortController, a
		// navigation away) did not fail.
		if !e.Canceled {
			p.problems = append(p.problems, fmt.Sprintf("request failed: %s: %s", p.request(e.RequestID, ""), e.ErrorText))
		}
	}
}

func (p *Page) request(id network.RequestID, url string) string {
	if r, ok := p.requests[id]; ok {
		return r
	}
	return url
}

// argsText is a console call's arguments as the console shows them, roughly:
// strings as they are, other values as JSON or their description.
func argsText(args []*runtime.RemoteObject) string {
	var parts []string
	for _, a := range args {
		var s string
		switch {
		case a.Type == runtime.RemoteObjectTypeString && len(a.Value) > 0:
			if json.Unmarshal([]byte(a.Value), &s) != nil {
				s = string(a.Value)
			}
		case len(a.Value) > 0:
			s = string(a.Value)
		case a.Description != "":
			s = a.Description
		case a.UnserializableValue != "":
			s = string(a.UnserializableValue)
		default:
			s = string(a.Type)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

// ConsoleErrors are the problems recorded since Open, in order: console
// errors, warnings and failed assertions, uncaught exceptions, the
// browser's own error and warning entries, HTTP answers of 400 and more,
// and requests that failed (not those the page cancelled). Chromium asks
// for /favicon.ico when the page links no icon, so a page without one sees
// that 404 here, as it would in a browser's developer tools.
func (p *Page) ConsoleErrors() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.problems...)
}

// run runs one action on the tab, at most actionTimeout.
func (p *Page) run(t testing.TB, what string, a chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, actionTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, a); err != nil {
		t.Fatalf("browser: %s: %v%s", what, err, p.problemsSuffix())
	}
}

// eval evaluates js (awaiting a promise) and decodes its JSON value into out
// (nil: ignored), at most timeout.
func (p *Page) eval(ctx context.Context, timeout time.Duration, js string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// []byte is chromedp's way to get the value's JSON as it is; encoding/json
	// then decodes it with the usual (case-insensitive) field matching.
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](js, chromedp.EvalAwaitPromise))
	if err != nil || out == nil {
		return err
	}
	if len(raw) == 0 {
		return errors.New("the expression's value is undefined")
	}
	return json.Unmarshal(raw, out)
}

func (p *Page) problemsSuffix() string {
	if ps := p.ConsoleErrors(); len(ps) > 0 {
		return "\nconsole:\n  " + strings.Join(ps, "\n  ")
	}
	return ""
}

// readyState is <body>'s readiness as the page sets it.
type readyState struct {
	Ready    bool   `json:"ready"`
	HasError bool   `json:"hasError"`
	Error    string `json:"error"`
	URL      string `json:"url"`
	// Marked is PressEnter's mark on the document it started from.
	Marked bool `json:"marked"`
}

const readyJS = `(() => {
	const b = document.body;
	const s = {ready: false, hasError: false, error: "", url: location.href, marked: window.__changelensBrowserMark === true};
	if (b) {
		s.ready = b.dataset.ready === "true";
		s.hasError = "error" in b.dataset;
		s.error = b.dataset.error || "";
	}
	return s;
})()`

// poll evaluates readyJS every 50 ms until done says so or ReadyTimeout
// passes; evaluation errors in between (the document being replaced) are
// retried. It returns the last state and whether done said so.
func (p *Page) poll(done func(readyState) bool) (readyState, bool, error) {
	deadline := time.Now().Add(ReadyTimeout)
	var s readyState
	var lastErr error
	for {
		var cur readyState
		err := p.eval(p.ctx, 5*time.Second, readyJS, &cur)
		if err == nil {
			s, lastErr = cur, nil
			if done(s) {
				return s, true, nil
			}
		} else {
			lastErr = err
		}
		if time.Now().After(deadline) {
			return s, false, lastErr
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitReady waits for data-ready="true" (or fails on data-error).
func (p *Page) waitReady(t testing.TB, what string) {
	t.Helper()
	s, ok, err := p.poll(func(s readyState) bool { return s.Ready || s.HasError })
	switch {
	case !ok:
		t.Fatalf("browser: %s: no data-ready=\"true\" on <body> within %s (last URL %q, error %v)%s", what, ReadyTimeout, s.URL, err, p.problemsSuffix())
	case s.HasError:
		t.Fatalf("browser: %s: the page set data-error: %q%s", what, s.Error, p.problemsSuffix())
	}
}

// Eval evaluates js in the page (awaiting it if it is a promise) and
// decodes its value, as JSON, into out (a pointer; nil ignores the value).
func (p *Page) Eval(t testing.TB, js string, out any) {
	t.Helper()
	if err := p.eval(p.ctx, actionTimeout, js, out); err != nil {
		t.Fatalf("browser: evaluating %s: %v%s", abbrev(js), err, p.problemsSuffix())
	}
}

func abbrev(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}

// query evaluates fn(elements matching selector) in the page; fn is a JS
// function expression. The selector goes in as a JSON string, so any CSS
// selector is safe to pass.
func (p *Page) query(t testing.TB, selector, fn string, out any) {
	t.Helper()
	sel, _ := json.Marshal(selector)
	p.Eval(t, fmt.Sprintf("(%s)(Array.from(document.querySelectorAll(%s)))", fn, sel), out)
}

// Text is the innerText of the first element matching the CSS selector; it
// fails the test when none does.
func (p *Page) Text(t testing.TB, selector string) string {
	t.Helper()
	var r struct {
		Found bool
		Text  string
	}
	p.query(t, selector, `es => es.length ? {found: true, text: es[0].innerText} : {found: false, text: ""}`, &r)
	if !r.Found {
		t.Fatalf("browser: no element matches %q", selector)
	}
	return r.Text
}

// Texts are the innerTexts of every element matching the CSS selector (none:
// empty).
func (p *Page) Texts(t testing.TB, selector string) []string {
	t.Helper()
	var r []string
	p.query(t, selector, `es => es.map(e => e.innerText)`, &r)
	return r
}

// Attr is the value of attribute name of the first element matching the CSS
// selector ("" when the element lacks it); it fails the test when no element
// matches.
func (p *Page) Attr(t testing.TB, selector, name string) string {
	t.Helper()
	n, _ := json.Marshal(name)
	var r struct {
		Found bool
		Value string
	}
	p.query(t, selector, fmt.Sprintf(`es => es.length ? {found: true, value: es[0].getAttribute(%s) ?? ""} : {found: false, value: ""}`, n), &r)
	if !r.Found {
		t.Fatalf("browser: no element matches %q", selector)
	}
	return r.Value
}

// Click clicks the first visible element matching the CSS selector with
// real mouse events. It does not wait for what the click causes.
func (p *Page) Click(t testing.TB, selector string) {
	t.Helper()
	p.run(t, "clicking "+selector, chromedp.Click(chromedp.CSS(selector)))
}

// Screenshot writes a PNG of the whole page (beyond the viewport) to path,
// creating its directory.
func (p *Page) Screenshot(t testing.TB, path string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, actionTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		t.Fatalf("browser: screenshot: %v", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// FocusInfo is the focused element after a key press.
type FocusInfo struct {
	// Tag is the lower-case tag name ("body" when nothing is focused).
	Tag string `json:"tag"`
	ID  string `json:"id"`
	// Text is its innerText (a form field's value, else its aria-label),
	// trimmed.
	Text string `json:"text"`
	// Href is its href attribute as written ("" if none).
	Href string `json:"href"`
	// The computed focus styles: outline and box-shadow.
	OutlineStyle string `json:"outlineStyle"`
	OutlineWidth string `json:"outlineWidth"`
	OutlineColor string `json:"outlineColor"`
	BoxShadow    string `json:"boxShadow"`
	// Indicator says the element shows a focus indicator: an outline that
	// is drawn (style not none, width above 0, colour not transparent) or a
	// box-shadow. Chromium's default focus ring counts (outline-style auto).
	// A focus style made only of other properties (a background, an
	// underline) is not detected.
	Indicator bool `json:"indicator"`
}

const focusJS = `(() => {
	const e = document.activeElement;
	if (!e || e === document.body || e === document.documentElement) {
		return {tag: "body", id: "", text: "", href: "", outlineStyle: "", outlineWidth: "", outlineColor: "", boxShadow: "", indicator: false};
	}
	const cs = getComputedStyle(e);
	const alpha = c => {
		if (c === "transparent") return 0;
		const m = /rgba?\(([^)]*)\)/.exec(c);
		if (!m) return 1;
		const parts = m[1].split(/[\s,\/]+/).filter(Boolean);
		return parts.length > 3 ? parseFloat(parts[3]) : 1;
	};
	const outline = cs.outlineStyle !== "none" && parseFloat(cs.outlineWidth) > 0 && alpha(cs.outlineColor) > 0;
	const shadow = cs.boxShadow !== "" && cs.boxShadow !== "none";
	return {
		tag: e.tagName.toLowerCase(), id: e.id || "",
		text: ((e.innerText || e.value || e.getAttribute("aria-label") || "") + "").trim(),
		href: e.getAttribute("href") || "",
		outlineStyle: cs.outlineStyle, outlineWidth: cs.outlineWidth, outlineColor: cs.outlineColor,
		boxShadow: cs.boxShadow, indicator: outline || shadow,
	};
})()`

// Tab presses Tab n times (real key events) and returns the focused element
// after each press.
func (p *Page) Tab(t testing.TB, n int) []FocusInfo {
	t.Helper()
	var fs []FocusInfo
	for range n {
		p.run(t, "pressing Tab", chromedp.KeyEvent(kb.Tab))
		var f FocusInfo
		p.Eval(t, focusJS, &f)
		fs = append(fs, f)
	}
	return fs
}

// Focused is the focused element now.
func (p *Page) Focused(t testing.TB) FocusInfo {
	t.Helper()
	var f FocusInfo
	p.Eval(t, focusJS, &f)
	return f
}

// PressEnter presses Enter on the focused element (a link, a button that
// navigates) and waits for the navigation it causes — a new document, or
// the same one with a new URL — and then for data-ready="true" as Open
// does. A page that changes its URL without a new document (history API)
// must clear data-ready until the new view has rendered, or the wait ends
// at once. It fails the test if Enter navigates nowhere within
// ReadyTimeout.
func (p *Page) PressEnter(t testing.TB) {
	t.Helper()
	var before string
	p.Eval(t, `(window.__changelensBrowserMark = true, location.href)`, &before)
	p.run(t, "pressing Enter", chromedp.KeyEvent(kb.Enter))
	s, ok, err := p.poll(func(s readyState) bool { return !s.Marked || s.URL != before })
	if !ok {
		t.Fatalf("browser: Enter on %s navigated nowhere within %s (last URL %q, error %v)%s", before, ReadyTimeout, s.URL, err, p.problemsSuffix())
	}
	p.waitReady(t, "after Enter on "+before)
}

// URL is the page's location now.
func (p *Page) URL(t testing.TB) string {
	t.Helper()
	var u string
	p.Eval(t, `location.href`, &u)
	return u
}
