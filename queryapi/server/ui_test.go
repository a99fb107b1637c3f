package server

import (
	"net/http"
	"testing"
)

// The UI's pages hold no data: they are served without a token when auth is
// on, while the API they read still wants one; / leads to them. Without a
// UI, / stays the API's JSON 404.
func TestUIMount(t *testing.T) {
	ui := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ui:" + r.URL.Path)) })
	ts := startServer(t, Config{Source: &fakeSource{}, AuthTokens: []string{"s3cret"}, UI: ui})
	if code, body := ts.get(t, "/ui/deployments/x"); code != http.StatusOK || string(body) != "ui:/ui/deployments/x" {
		t.Errorf("/ui/deployments/x: %d %q", code, body)
	}
	if code, _ := ts.get(t, "/v1/services"); code != http.StatusUnauthorized {
		t.Errorf("/v1/services without a token: %d, want 401", code)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, p := range []string{"/", "/ui"} {
		resp, err := noRedirect.Get(ts.base + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/ui/" {
			t.Errorf("GET %s: %d to %q, want 302 to /ui/", p, resp.StatusCode, resp.Header.Get("Location"))
		}
	}

	bare := startServer(t, Config{Source: &fakeSource{}})
	if code, body := bare.get(t, "/"); code != http.StatusNotFound || len(body) == 0 || body[0] != '{' {
		t.Errorf("/ without a UI: %d %q, want a JSON 404", code, body)
	}
}
