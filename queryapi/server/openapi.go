package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/changelens/changelens/internal/orderedjson"
	"github.com/changelens/changelens/queryapi/gen/openapiv2"
)

// The OpenAPI document states security exactly when the server enforces it.
//
// The generated document (openapiv2.QueryServiceJSON, from the proto's
// openapiv2_swagger option and queryapi/proto/openapifix) is the secured
// form: securityDefinitions.bearer (an apiKey in the Authorization header,
// OpenAPI 2's way of saying "Bearer <token>"), a global security requirement
// and a 401 answer on every operation. It stays that way, and the server
// derives the document it serves from it once per form (not per request):
//
//   - auth on (Config.AuthTokens holds a token): the generated document, the
//     bearer scheme described as required rather than optional;
//   - auth off: the same without securityDefinitions, any security
//     requirement, any Authorization header parameter, the 401 answers and the
//     401 clause of the API's description — nothing a client would send
//     credentials for, or a fuzzer expect a refusal from.
//
// Why not the other way round (an open generated document, the security added
// here): the security is declared in the proto, next to the rest of the
// document's annotations, where `make proto` and the committed document show
// it; removing declared parts is exact, whereas adding them here would keep a
// second copy of the definition to drift from the proto's.

// openAPIDocs holds the two forms, each made on first use.
var openAPIDocs = struct {
	secured, open func() ([]byte, error)
}{
	secured: sync.OnceValues(func() ([]byte, error) { return openAPIDocument(true) }),
	open:    sync.OnceValues(func() ([]byte, error) { return openAPIDocument(false) }),
}

// securedSchemeDescription replaces the proto's description of the bearer
// scheme ("optional … required only when the server is started with tokens")
// in the document of a server that requires it.
const securedSchemeDescription = "Bearer-token auth: 'Authorization: Bearer <token>'. Every operation requires it; a request without a valid token gets 401 with a WWW-Authenticate challenge."

// unauthorizedClause matches the 401 entry of the API description's list of
// error statuses ("401 missing or invalid bearer token (…), ").
var unauthorizedClause = regexp.MustCompile(`\b401 [^,]*, `)

// openAPIDocument derives the served document from the generated one.
func openAPIDocument(secured bool) ([]byte, error) {
	v, err := orderedjson.Decode(openapiv2.QueryServiceJSON)
	if err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	root, ok := v.(*orderedjson.Object)
	if !ok {
		return nil, fmt.Errorf("openapi: the document is not a JSON object")
	}
	bearer, _ := orderedjson.Lookup(root, "securityDefinitions", "bearer").(*orderedjson.Object)
	if bearer == nil || bearer.Get("in") != "header" || !strings.EqualFold(fmt.Sprint(bearer.Get("name")), "Authorization") {
		return nil, fmt.Errorf("openapi: the generated document declares no bearer scheme (securityDefinitions.bearer, header Authorization)")
	}
	if _, ok := root.Get("security").([]any); !ok {
		return nil, fmt.Errorf("openapi: the generated document requires no security")
	}
	paths, _ := root.Get("paths").(*orderedjson.Object)
	if paths == nil {
		return nil, fmt.Errorf("openapi: the document has no paths")
	}
	if secured {
		bearer.Set("description", securedSchemeDescription)
	} else {
		root.Del("securityDefinitions")
		root.Del("security")
		if info, ok := root.Get("info").(*orderedjson.Object); ok {
			if d, ok := info.Get("description").(string); ok {
				info.Set("description", unauthorizedClause.ReplaceAllString(d, ""))
			}
		}
		for _, p := range paths.Keys() {
			ops, _ := paths.Get(p).(*orderedjson.Object)
			if ops == nil {
				continue
			}
			if params, ok := ops.Get("parameters").([]any); ok { // path-level parameters
				ops.Set("parameters", withoutAuthorization(params))
			}
			for _, method := range ops.Keys() {
				op, ok := ops.Get(method).(*orderedjson.Object)
				if !ok {
					continue
				}
				op.Del("security")
				if params, ok := op.Get("parameters").([]any); ok {
					op.Set("parameters", withoutAuthorization(params))
				}
				if resp, ok := op.Get("responses").(*orderedjson.Object); ok {
					resp.Del("401")
				}
			}
		}
	}
	out, err := json.MarshalIndent(root, "", "  ")
	return append(out, '\n'), err
}

// withoutAuthorization drops a header parameter named Authorization.
func withoutAuthorization(params []any) []any {
	return slices.DeleteFunc(slices.Clone(params), func(v any) bool {
		p, ok := v.(*orderedjson.Object)
		return ok && p.Get("in") == "header" && strings.EqualFold(fmt.Sprint(p.Get("name")), "Authorization")
	})
}

// openAPIHandler serves the document of this server's auth setting, made
// once.
func (s *Server) openAPIHandler() (http.HandlerFunc, error) {
	form := openAPIDocs.open
	if s.tokens.enabled() {
		form = openAPIDocs.secured
	}
	doc, err := form()
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	}, nil
}
