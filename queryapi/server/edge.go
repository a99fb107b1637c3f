package server

import (
	"encoding/json"
	"net/http"
	"path"
	"strings"

	"google.golang.org/grpc/codes"
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
			writeStatus(w, http.StatusRequestHeaderFieldsTooLarge, codes.InvalidArgument, "request headers exceed 64 KiB")
			return
		}
		p := r.URL.Path
		if p == "" || p[0] != '/' || (p != "/" && path.Clean(p) != strings.TrimSuffix(p, "/")) || strings.Contains(p, "//") {
			writeStatus(w, http.StatusNotFound, codes.NotFound, "no such path")
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
			writeStatus(w, http.StatusMethodNotAllowed, codes.Unimplemented, "method not allowed")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// writeStatus writes a google.rpc.Status JSON body, as the gateway does for
// its own errors.
func writeStatus(w http.ResponseWriter, httpCode int, code codes.Code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(httpCode)
	b, _ := json.Marshal(map[string]any{"code": int(code), "message": msg, "details": []any{}})
	_, _ = w.Write(b)
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
