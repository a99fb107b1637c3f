package browser

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// AxeTags are the rule sets Axe runs: WCAG 2.0 and 2.1, levels A and AA.
var AxeTags = []string{"wcag2a", "wcag2aa", "wcag21a", "wcag21aa"}

// Violation is one axe-core rule a page breaks.
type Violation struct {
	ID      string          `json:"id"`     // the rule, e.g. "color-contrast"
	Impact  string          `json:"impact"` // minor, moderate, serious or critical
	Help    string          `json:"help"`   // what the rule asks for
	HelpURL string          `json:"helpUrl"`
	Nodes   []ViolationNode `json:"nodes"`
}

// ViolationNode is one element that breaks the rule.
type ViolationNode struct {
	// Target are the CSS selectors that find it (one per shadow-DOM
	// level, joined by " >>> " inside one entry).
	Target         []string `json:"target"`
	HTML           string   `json:"html"`
	FailureSummary string   `json:"failureSummary"`
}

// String is the violation on a few lines, for test failures.
func (v Violation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s): %s", v.ID, v.Impact, v.Help)
	for _, n := range v.Nodes {
		fmt.Fprintf(&b, "\n  %s: %s", strings.Join(n.Target, ", "), strings.ReplaceAll(n.FailureSummary, "\n", " "))
	}
	return b.String()
}

// AxePath is axe.min.js: CHANGELENS_AXE if set, else the copy `make deps`
// installs under the repository root, .build/npm/node_modules/axe-core/.
func AxePath() (string, error) {
	if p := os.Getenv("CHANGELENS_AXE"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("CHANGELENS_AXE=%s: %w", p, err)
		}
		return p, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	p := filepath.Join(root, ".build", "npm", "node_modules", "axe-core", "axe.min.js")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("no axe-core at %s (run `make deps`, which installs the version pinned in testkit/browser/package-lock.json, or set CHANGELENS_AXE)", p)
	}
	return p, nil
}

// repoRoot is the nearest directory above the working directory (a test's
// is its package's) holding go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// axeRunJS runs axe on the document with AxeTags and keeps what Violation
// holds.
const axeRunJS = `axe.run(document, {runOnly: {type: "tag", values: %s}}).then(r => r.violations.map(v => ({
	id: v.id, impact: v.impact || "", help: v.help, helpUrl: v.helpUrl,
	nodes: v.nodes.map(n => ({
		target: n.target.map(s => Array.isArray(s) ? s.join(" >>> ") : String(s)),
		html: n.html, failureSummary: n.failureSummary || "",
	})),
})))`

// Axe runs axe-core's WCAG 2.0/2.1 A and AA rules (AxeTags) on the page as
// it is now and returns the violations. It injects axe.min.js (AxePath)
// into the document first; it fails the test when there is none.
func (p *Page) Axe(t testing.TB) []Violation {
	t.Helper()
	path, err := AxePath()
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The script's own completion value is some object; true is what comes
	// back instead, so nothing large is serialised.
	if err := p.eval(p.ctx, actionTimeout, string(src)+"\n;true", nil); err != nil {
		t.Fatalf("browser: injecting %s: %v", path, err)
	}
	tags := `["` + strings.Join(AxeTags, `","`) + `"]`
	var vs []Violation
	// axe visits every element: a big page takes seconds.
	if err := p.eval(p.ctx, time.Minute, fmt.Sprintf(axeRunJS, tags), &vs); err != nil {
		t.Fatalf("browser: axe.run: %v", err)
	}
	return vs
}
