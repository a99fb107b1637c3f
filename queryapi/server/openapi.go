package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"

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
	v, err := decodeOrdered(openapiv2.QueryServiceJSON)
	if err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	root, ok := v.(*jsonObject)
	if !ok {
		return nil, fmt.Errorf("openapi: the document is not a JSON object")
	}
	bearer, _ := jsonLookup(root, "securityDefinitions", "bearer").(*jsonObject)
	if bearer == nil || bearer.get("in") != "header" || !strings.EqualFold(fmt.Sprint(bearer.get("name")), "Authorization") {
		return nil, fmt.Errorf("openapi: the generated document declares no bearer scheme (securityDefinitions.bearer, header Authorization)")
	}
	if _, ok := root.get("security").([]any); !ok {
		return nil, fmt.Errorf("openapi: the generated document requires no security")
	}
	paths, _ := root.get("paths").(*jsonObject)
	if paths == nil {
		return nil, fmt.Errorf("openapi: the document has no paths")
	}
	if secured {
		bearer.set("description", securedSchemeDescription)
	} else {
		root.del("securityDefinitions")
		root.del("security")
		if info, ok := root.get("info").(*jsonObject); ok {
			if d, ok := info.get("description").(string); ok {
				info.set("description", unauthorizedClause.ReplaceAllString(d, ""))
			}
		}
		for _, p := range paths.keys {
			ops, _ := paths.get(p).(*jsonObject)
			if ops == nil {
				continue
			}
			if params, ok := ops.get("parameters").([]any); ok { // path-level parameters
				ops.set("parameters", withoutAuthorization(params))
			}
			for _, method := range ops.keys {
				op, ok := ops.get(method).(*jsonObject)
				if !ok {
					continue
				}
				op.del("security")
				if params, ok := op.get("parameters").([]any); ok {
					op.set("parameters", withoutAuthorization(params))
				}
				if resp, ok := op.get("responses").(*jsonObject); ok {
					resp.del("401")
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
		p, ok := v.(*jsonObject)
		return ok && p.get("in") == "header" && strings.EqualFold(fmt.Sprint(p.get("name")), "Authorization")
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

// jsonObject is a JSON object that keeps the order of its keys, so the
// served document reads as the generated one does.
type jsonObject struct {
	keys []string
	vals map[string]any
}

func (o *jsonObject) get(k string) any { return o.vals[k] }

func (o *jsonObject) set(k string, v any) {
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
}

func (o *jsonObject) del(k string) {
	if _, ok := o.vals[k]; ok {
		delete(o.vals, k)
		o.keys = slices.DeleteFunc(o.keys, func(s string) bool { return s == k })
	}
}

func (o *jsonObject) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		vb, err := json.Marshal(o.vals[k])
		if err != nil {
			return nil, err
		}
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func jsonLookup(v any, keys ...string) any {
	for _, k := range keys {
		o, ok := v.(*jsonObject)
		if !ok {
			return nil
		}
		v = o.get(k)
	}
	return v
}

// decodeOrdered decodes JSON with objects as *jsonObject and numbers as
// json.Number (written back as they were).
func decodeOrdered(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	v, err := decodeOrderedValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err == nil {
		return nil, fmt.Errorf("trailing data after the document")
	}
	return v, nil
}

func decodeOrderedValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		o := &jsonObject{vals: map[string]any{}}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			v, err := decodeOrderedValue(dec)
			if err != nil {
				return nil, err
			}
			o.set(kt.(string), v)
		}
		_, err := dec.Token()
		return o, err
	case json.Delim('['):
		a := []any{}
		for dec.More() {
			v, err := decodeOrderedValue(dec)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		_, err := dec.Token()
		return a, err
	}
	return tok, nil
}
