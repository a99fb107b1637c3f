// Package apitest runs the real query API (queryapi/server over
// queryapi/usecase) on a ClickHouse database for a test, as changelens-api
// does, on a free local port: the dashboards' and the web UI's tests read
// it as Grafana and browsers would.
package apitest

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/changelens/changelens/queryapi/server"
	"github.com/changelens/changelens/queryapi/usecase"
)

// Start opens the store at dsn (a read-only user's, as the API's) and serves
// cfg over it (cfg.Source is set here; a nil Logger discards) on HTTP until
// the test ends; it returns the base URL once /readyz answers 200.
func Start(t testing.TB, dsn string, cfg server.Config) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := usecase.Open(ctx, dsn, usecase.Config{})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	cfg.Source = st
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	srv, err := server.New(cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, nil, lis) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("the API did not stop")
		}
		_ = st.Close()
	})
	base := "http://" + lis.Addr().String()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the API is not ready after 30 s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
