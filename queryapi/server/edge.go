package server

import (
	"net/http"
	"path"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// maxHeaderBytes bounds a request's headers (names and values).
const maxHeaderBytes = 64 << 10

// edge answers, before any routing, what would otherwise get a response
// that is not JSON: oversized headers (431), paths that are not clean
// (http.ServeMux would redirect them with an HTML body: 404 here), wrong
// methods on the plain endpoints (405 with Allow); and serves HEAD as GET
// without a body.
func (s *Server) edge(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := 0
		for k, vs := range r.Header {
			for _, v := range vs {
				n += len(k) + len(v) + 4
			}
		}
		if n > maxHeaderBytes {
			s.writeStatus(w, http.StatusRequestHeaderFieldsTooLarge, status.New(codes.InvalidArgument, "request headers exceed 64 KiB"))
			return
		}
		p := r.URL.Path
		if p == "" || p[0] != '/' || (p != "/" && path.Clean(p) != strings.TrimSuffix(p, "/")) || strings.Contains(p, "//") {
			s.writeStatus(w, http.StatusNotFound, status.New(codes.NotFound, "no such path"))
			return
		}
		if r.Method == http.MethodHead {
			// The server sends no body for a HEAD request whatever the
			// handler writes; the handler sees a GET.
			r = r.Clone(r.Context())
			r.Method = http.MethodGet
		}
		if (probePaths[p] || p == "/openapi.json") && r.Method != http.MethodGet {
			w.Header().Set("Allow", "GET, HEAD")
			s.writeStatus(w, http.StatusMethodNotAllowed, status.New(codes.Unimplemented, "method not allowed: use GET, HEAD"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// outgoingHeader maps gRPC header metadata to HTTP response headers:
// Retry-After as itself, the internal status header not at all, the rest
// as grpc-gateway does (Grpc-Metadata-<key>).
func outgoingHeader(key string) (string, bool) {
	switch strings.ToLower(key) {
	case "retry-after":
		return "Retry-After", true
	case httpCodeHeader:
		return "", false
	}
	return "Grpc-Metadata-" + key, true
}
