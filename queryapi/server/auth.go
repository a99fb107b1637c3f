package server

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// tokenSet holds SHA-256 digests of the accepted bearer tokens, compared in
// constant time. The tokens themselves are never kept or logged.
type tokenSet struct {
	digests [][sha256.Size]byte
}

func newTokenSet(tokens []string) *tokenSet {
	ts := &tokenSet{}
	for _, t := range tokens {
		if t = strings.TrimSpace(t); t != "" {
			ts.digests = append(ts.digests, sha256.Sum256([]byte(t)))
		}
	}
	return ts
}

func (ts *tokenSet) enabled() bool { return ts != nil && len(ts.digests) > 0 }

// check validates an Authorization header value ("Bearer <token>").
func (ts *tokenSet) check(authorization string) error {
	if authorization == "" {
		return status.Error(codes.Unauthenticated, "missing bearer token (Authorization: Bearer <token>)")
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(authorization), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return status.Error(codes.Unauthenticated, "authorization is not a bearer token")
	}
	d := sha256.Sum256([]byte(strings.TrimSpace(token)))
	match := 0
	for i := range ts.digests {
		match |= subtle.ConstantTimeCompare(d[:], ts.digests[i][:])
	}
	if match != 1 {
		return status.Error(codes.Unauthenticated, "invalid bearer token")
	}
	return nil
}

// unauthenticatedMethods are open on the gRPC port: health and reflection.
func grpcMethodIsOpen(fullMethod string) bool {
	return strings.HasPrefix(fullMethod, "/grpc.health.v1.Health/") ||
		strings.HasPrefix(fullMethod, "/grpc.reflection.")
}

func (ts *tokenSet) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if ts.enabled() && !grpcMethodIsOpen(info.FullMethod) {
		if err := ts.check(firstMD(ctx, "authorization")); err != nil {
			return nil, err
		}
	}
	return handler(ctx, req)
}

func (ts *tokenSet) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if ts.enabled() && !grpcMethodIsOpen(info.FullMethod) {
		if err := ts.check(firstMD(ss.Context(), "authorization")); err != nil {
			return err
		}
	}
	return handler(srv, ss)
}

func firstMD(ctx context.Context, key string) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

// LoadTokens reads bearer tokens from a file: one token per line; blank lines
// and lines starting with '#' are ignored.
func LoadTokens(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var tokens []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.ContainsAny(line, " \t") {
			return nil, fmt.Errorf("%s: a token line contains whitespace", path)
		}
		tokens = append(tokens, line)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return tokens, nil
}

// ParseTokenList splits a comma-separated token list (CHANGELENS_AUTH_TOKENS).
func ParseTokenList(s string) []string {
	var out []string
	for _, t := range strings.Split(s, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// httpAuth guards the REST API (the gateway calls the service in-process, so
// the gRPC interceptor does not see these requests).
func (s *Server) httpAuth(next http.Handler) http.Handler {
	if !s.tokens.enabled() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.tokens.check(r.Header.Get("Authorization")); err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="changelens"`)
			s.writeStatus(w, http.StatusUnauthorized, status.Convert(err))
			return
		}
		next.ServeHTTP(w, r)
	})
}
