package server

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"strings"

	"golang.org/x/sync/singleflight"
	"google.golang.org/grpc/status"
)

// share gives identical REST GETs that arrive while one is being answered
// that one answer, byte for byte: the query is coalesced below (coalesce)
// for gRPC and REST alike, but every REST caller would still marshal and
// compress its own copy — a latency series at the maximum points is ~1 MB
// of JSON, and a dashboard watched by a hundred people asks it a hundred
// times at once. Requests are identical when their path, query string and
// the headers the answer depends on (Authorization, Accept-Encoding,
// Grpc-Timeout) are. The answer is produced detached from the first
// caller, which may leave without failing the others; each caller waits
// only while its own connection lasts.
func (s *Server) share(next http.Handler) http.Handler {
	var group singleflight.Group
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !strings.HasPrefix(r.URL.Path, "/v1/") {
			next.ServeHTTP(w, r)
			return
		}
		key := strings.Join([]string{r.URL.Path, r.URL.RawQuery, r.Header.Get("Authorization"),
			r.Header.Get("Accept-Encoding"), r.Header.Get("Grpc-Timeout")}, "\x00")
		ch := group.DoChan(key, func() (v any, err error) {
			rec := &recorder{header: http.Header{}, status: http.StatusOK}
			// Not the connection's goroutine: net/http's panic recovery
			// does not reach here.
			defer func() {
				if p := recover(); p != nil {
					st, _ := status.FromError(internalError(s.log, r.URL.Path, p))
					rec = &recorder{header: http.Header{}}
					s.writeStatus(rec, http.StatusInternalServerError, st)
				}
				v = rec
			}()
			next.ServeHTTP(rec, r.WithContext(context.WithoutCancel(r.Context())))
			return rec, nil
		})
		select {
		case res := <-ch:
			res.Val.(*recorder).replay(w)
		case <-r.Context().Done():
			// The client left; the answer goes to those still waiting.
		}
	})
}

// recorder is an http.ResponseWriter that keeps the response.
type recorder struct {
	header      http.Header
	status      int
	wroteHeader bool
	body        bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = code, true
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	r.wroteHeader = true
	return r.body.Write(p)
}

// replay writes the kept response to w (the shared bytes are only read).
func (r *recorder) replay(w http.ResponseWriter) {
	h := w.Header()
	for k, vs := range r.header {
		h[k] = slices.Clone(vs)
	}
	w.WriteHeader(r.status)
	_, _ = w.Write(r.body.Bytes())
}
