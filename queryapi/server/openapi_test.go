package server

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// openAPIDoc is the part of /openapi.json the tests read.
type openAPIDoc struct {
	Paths map[string]map[string]struct {
		Parameters []map[string]any `json:"parameters"`
		Responses  map[string]any   `json:"responses"`
	} `json:"paths"`
	Definitions map[string]struct {
		Required   []string                  `json:"required"`
		Properties map[string]map[string]any `json:"properties"`
	} `json:"definitions"`
}

func loadOpenAPI(t *testing.T, ts *testServer) openAPIDoc {
	t.Helper()
	code, raw := ts.get(t, "/openapi.json")
	if code != 200 {
		t.Fatalf("/openapi.json: %d", code)
	}
	var doc openAPIDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

func (d openAPIDoc) param(t *testing.T, path, name string) map[string]any {
	t.Helper()
	for _, p := range d.Paths[path]["get"].Parameters {
		if p["name"] == name {
			return p
		}
	}
	t.Fatalf("GET %s has no parameter %s", path, name)
	return nil
}

// docPattern compiles a pattern of the document (ECMA-262 syntax) with Go's
// regexp, which spells \uXXXX as \x{XXXX}.
func docPattern(t *testing.T, p map[string]any) *regexp.Regexp {
	t.Helper()
	s, _ := p["pattern"].(string)
	if s == "" {
		t.Fatalf("parameter %v has no pattern", p["name"])
	}
	return regexp.MustCompile(regexp.MustCompile(`\\u([0-9A-Fa-f]{4})`).ReplaceAllString(s, `\x{$1}`))
}

// TestOpenAPIStatesRules: the document states the rules the server enforces
// (queryapi/proto/openapifix completes what protoc-gen-openapiv2 leaves out):
// for names and times its patterns accept exactly what the server accepts,
// and the server accepts every spelling an enum parameter lists, the other
// cases and number forms its description gives, and nothing else.
func TestOpenAPIStatesRules(t *testing.T) {
	ts := startServer(t, Config{Source: &fakeSource{}})
	doc := loadOpenAPI(t, ts)

	for _, c := range []struct {
		path, name string
		want       map[string]any
	}{
		{"/v1/latency", "service", map[string]any{"required": true, "minLength": 1.0, "maxLength": 256.0}},
		{"/v1/latency", "operation", map[string]any{"required": false, "maxLength": 1024.0}},
		{"/v1/latency", "step_seconds", map[string]any{"minimum": 0.0, "maximum": 2147483640.0, "multipleOf": 60.0}},
		{"/v1/deployments", "page_size", map[string]any{"minimum": 0.0, "maximum": 500.0, "default": 50.0}},
		{"/v1/deployments", "page_token", map[string]any{"maxLength": 1024.0, "pattern": "^[!-~]*$"}},
		{"/v1/deployments/{id}/impact", "id", map[string]any{"required": true, "pattern": "^[0-9a-f]{32}$"}},
		{"/v1/compare", "treatment", map[string]any{"required": true}},
		{"/v1/compare", "expected_treatment_share", map[string]any{"minimum": 0.0, "maximum": 1.0, "exclusiveMaximum": true}},
		{"/v1/gate", "version", map[string]any{"required": true}},
		{"/v1/dora", "environment", map[string]any{"default": "production"}},
	} {
		p := doc.param(t, c.path, c.name)
		for k, v := range c.want {
			if p[k] != v {
				t.Errorf("GET %s %s: %s = %v, want %v", c.path, c.name, k, p[k], v)
			}
		}
	}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			if _, ok := op.Responses["default"]; ok {
				t.Errorf("%s %s declares a default response: every status is listed", method, path)
			}
			// 401 is declared when auth is on (TestOpenAPISecurity).
			for _, code := range []string{"200", "400", "431", "500", "503", "504"} {
				if _, ok := op.Responses[code]; !ok {
					t.Errorf("%s %s does not declare %s", method, path, code)
				}
			}
		}
	}
	for _, op := range []string{"get", "post"} {
		if _, ok := doc.Paths["/v1/gate"][op].Responses["412"]; !ok {
			t.Errorf("%s /v1/gate does not declare 412", op)
		}
	}
	dep := doc.Definitions["v1Deployment"]
	for _, f := range []string{"commit_time", "restore_time"} {
		if dep.Properties[f]["x-nullable"] != true {
			t.Errorf("v1Deployment.%s is not x-nullable (it is null when unknown)", f)
		}
	}
	if len(dep.Required) != len(dep.Properties) {
		t.Errorf("v1Deployment requires %v: every field is always in the JSON", dep.Required)
	}
	if doc.Definitions["v1CompareResponse"].Properties["srm"]["x-nullable"] != true {
		t.Error("v1CompareResponse.srm is not x-nullable")
	}

	// The patterns against the server, value by value.
	agree := func(what, path, name string, values []string, query func(string) string) {
		t.Helper()
		re := docPattern(t, doc.param(t, path, name))
		for _, v := range values {
			code, body := ts.get(t, path+"?"+query(url.QueryEscape(v)))
			if documented, accepted := re.MatchString(v), code == 200; documented != accepted {
				t.Errorf("%s %q: the document says valid=%v, the server answers %d %s", what, v, documented, code, body)
			}
		}
	}
	enum := func(path, name string, described, rejected []string, query func(string) string) {
		t.Helper()
		p := doc.param(t, path, name)
		listed, _ := p["enum"].([]any)
		if len(listed) == 0 {
			t.Fatalf("GET %s %s lists no values", path, name)
		}
		for _, c := range []struct {
			values []any
			code   int
		}{{listed, 200}, {toAny(described), 200}, {toAny(rejected), 400}} {
			for _, v := range c.values {
				if code, body := ts.get(t, path+"?"+query(url.QueryEscape(v.(string)))); code != c.code {
					t.Errorf("%s=%q: %d %s, want %d", name, v, code, body, c.code)
				}
			}
		}
	}
	enum("/v1/latency", "group_by",
		[]string{"Version", "group_by_operation", "Group_By_None", "+2", "002", "-0", "+0003"},
		[]string{"4", "-2", "0x2", "2.0", "", " version", "version ", "verſion", "GROUP_BY_", "GROUP_BY_GROUP_BY_NONE", "hour"},
		func(v string) string { return "service=a&environment=b&group_by=" + v })
	enum("/v1/dora", "interval",
		[]string{"Day", "interval_week", "+4", "quarter", "5"},
		[]string{"6", "days", "\tDAY", "HOUR"},
		func(v string) string { return "interval=" + v })
	agree("service", "/v1/latency", "service", []string{
		"checkout", "a b", "ünïcødé", strings.Repeat("é", 256), "a\x7fb", "a\u0085b", "\x00", "tab\there",
	}, func(v string) string { return "environment=b&service=" + v })
	agree("end_time", "/v1/dora", "end_time", []string{
		"2026-03-10T09:00:00Z", "2026-03-10T09:00:00.123456789012+05:30", "1970-01-31T00:00:00Z", "2099-12-31T23:59:59Z",
		"2026-03-10t09:00:00z", "2100-01-01T00:00:00Z", "1969-12-31T00:00:00Z", "2026-03-10T24:00:00Z", "2026-03-10T09:00:60Z",
		"2026-03-10 09:00:00Z", "2026-03-10T09:00:00+0100", "2026-03-10",
	}, func(v string) string { return "end_time=" + v })
	// Lengths count characters, as maxLength does.
	for _, c := range []struct {
		v    string
		code int
	}{{strings.Repeat("é", 256), 200}, {strings.Repeat("é", 257), 400}, {strings.Repeat("x", 257), 400}} {
		if code, body := ts.get(t, "/v1/latency?environment=b&service="+url.QueryEscape(c.v)); code != c.code {
			t.Errorf("service of %d characters (%d bytes): %d %s, want %d", len([]rune(c.v)), len(c.v), code, body, c.code)
		}
	}
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// validRequests holds one valid request (target, JSON body) per operation of
// the document, for fakeSource: each answers 200.
var validRequests = map[string][2]string{
	"GET /v1/services":                {"/v1/services", ""},
	"GET /v1/latency":                 {"/v1/latency?service=a&environment=b", ""},
	"GET /v1/latency:summary":         {"/v1/latency:summary?service=a&environment=b", ""},
	"GET /v1/deployments":             {"/v1/deployments", ""},
	"GET /v1/deployments/{id}/impact": {"/v1/deployments/" + depID + "/impact", ""},
	"GET /v1/dora":                    {"/v1/dora", ""},
	"GET /v1/compare":                 {"/v1/compare?service=api&environment=production&control=1.0&treatment=1.1", ""},
	"GET /v1/gate":                    {"/v1/gate?service=api&environment=prod&version=good", ""},
	"POST /v1/gate":                   {"/v1/gate", `{"name":"podinfo","namespace":"test","phase":"Progressing","metadata":{"service":"api","environment":"prod","version":"good"}}`},
	"GET /v1/graph":                   {"/v1/graph?environment=production", ""},
	"GET /v1/incidents":               {"/v1/incidents?environment=production", ""},
	"GET /v1/cohorts":                 {"/v1/cohorts?service=api&environment=production", ""},
	"GET /v1/experiments":             {"/v1/experiments", ""},
	"GET /v1/teams":                   {"/v1/teams", ""},
	"GET /v1/teams/{team}/retrospectives/{period}": {"/v1/teams/payments/retrospectives/2026-Q1", ""},
	"GET /v1/experiments/{id}/report":              {"/v1/experiments/" + expID + "/report", ""},
	"POST /v1/experiments:plan": {"/v1/experiments:plan", `{"id":"x","unit":{"service":"app","environment":"production"},"dimension":"version",` +
		`"variants":[{"name":"1","control":true,"share":0.5},{"name":"2","share":0.5}],"primary_metric":{"metric":"latency_p95","min_effect":0.05},` +
		`"start_time":"2026-11-20T00:00:00Z","planned_duration":"14d"}`},
}

// TestOpenAPISecurity: /openapi.json declares the bearer security exactly
// when the server enforces it. With tokens: the scheme, the requirement and a
// 401 on every operation, and every operation refuses a request without the
// token. Without (blank tokens are none): no security, Authorization, bearer
// or 401 anywhere in the document, and every operation answers a request
// without any header.
func TestOpenAPISecurity(t *testing.T) {
	type operation struct {
		Security   json.RawMessage `json:"security"`
		Parameters []struct {
			Name string `json:"name"`
			In   string `json:"in"`
		} `json:"parameters"`
		Responses map[string]struct {
			Headers map[string]any `json:"headers"`
		} `json:"responses"`
	}
	type document struct {
		SecurityDefinitions map[string]map[string]any       `json:"securityDefinitions"`
		Security            []map[string][]string           `json:"security"`
		Paths               map[string]map[string]operation `json:"paths"`
	}
	load := func(t *testing.T, ts *testServer) (document, []byte) {
		t.Helper()
		code, raw := ts.get(t, "/openapi.json") // open in either case
		if code != 200 {
			t.Fatalf("/openapi.json: %d", code)
		}
		var doc document
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		var ops []string
		for path, m := range doc.Paths {
			for method := range m {
				ops = append(ops, strings.ToUpper(method)+" "+path)
			}
		}
		slices.Sort(ops)
		var want []string
		for op := range validRequests {
			want = append(want, op)
		}
		slices.Sort(want)
		if !slices.Equal(ops, want) {
			t.Fatalf("the document's operations %v, the test's %v: give validRequests one for each", ops, want)
		}
		return doc, raw
	}
	call := func(t *testing.T, ts *testServer, op string, header ...string) (int, http.Header, string) {
		t.Helper()
		method, _, _ := strings.Cut(op, " ")
		r := validRequests[op]
		var body io.Reader
		if r[1] != "" {
			body = strings.NewReader(r[1])
		}
		req, err := http.NewRequest(method, ts.base+r[0], body)
		if err != nil {
			t.Fatal(err)
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}

	t.Run("auth on", func(t *testing.T) {
		ts := startServer(t, Config{Source: &fakeSource{}, AuthTokens: []string{"s3cret"}})
		doc, _ := load(t, ts)
		bearer := doc.SecurityDefinitions["bearer"]
		if len(doc.SecurityDefinitions) != 1 || bearer["type"] != "apiKey" || bearer["in"] != "header" || bearer["name"] != "Authorization" {
			t.Errorf("securityDefinitions %v, want bearer: an apiKey in the Authorization header", doc.SecurityDefinitions)
		}
		if d, _ := bearer["description"].(string); strings.Contains(strings.ToLower(d), "optional") {
			t.Errorf("the bearer scheme is described as optional: %q", d)
		}
		if got := fmt.Sprint(doc.Security); got != "[map[bearer:[]]]" {
			t.Errorf("security %s, want [{bearer: []}] for every operation", got)
		}
		for op := range validRequests {
			method, path, _ := strings.Cut(op, " ")
			o := doc.Paths[path][strings.ToLower(method)]
			if o.Security != nil {
				t.Errorf("%s overrides the security requirement: %s", op, o.Security)
			}
			if r, ok := o.Responses["401"]; !ok || r.Headers["WWW-Authenticate"] == nil {
				t.Errorf("%s does not declare 401 with WWW-Authenticate", op)
			}
			if code, hdr, body := call(t, ts, op); code != 401 || hdr.Get("WWW-Authenticate") != `Bearer realm="changelens"` {
				t.Errorf("%s without a token: %d (WWW-Authenticate %q) %s, want 401", op, code, hdr.Get("WWW-Authenticate"), body)
			}
			if code, _, body := call(t, ts, op, "Authorization", "Bearer wrong"); code != 401 {
				t.Errorf("%s with a wrong token: %d %s, want 401", op, code, body)
			}
			if code, _, body := call(t, ts, op, "Authorization", "Bearer s3cret"); code != 200 {
				t.Errorf("%s with the token: %d %s, want 200", op, code, body)
			}
		}
	})

	for name, tokens := range map[string][]string{"auth off": nil, "blank tokens": {"", "  "}} {
		t.Run(name, func(t *testing.T) {
			ts := startServer(t, Config{Source: &fakeSource{}, AuthTokens: tokens})
			doc, raw := load(t, ts)
			if doc.SecurityDefinitions != nil || doc.Security != nil {
				t.Errorf("securityDefinitions %v, security %v: auth is off", doc.SecurityDefinitions, doc.Security)
			}
			for _, word := range []string{"security", "authoriz", "bearer", "www-authenticate", "credential"} {
				if i := strings.Index(strings.ToLower(string(raw)), word); i >= 0 {
					t.Errorf("the document mentions %q: …%s…", word, raw[max(0, i-80):min(len(raw), i+80)])
				}
			}
			for op := range validRequests {
				method, path, _ := strings.Cut(op, " ")
				o := doc.Paths[path][strings.ToLower(method)]
				if o.Security != nil {
					t.Errorf("%s declares security %s", op, o.Security)
				}
				if _, ok := o.Responses["401"]; ok {
					t.Errorf("%s declares 401", op)
				}
				for _, p := range o.Parameters {
					if p.In == "header" {
						t.Errorf("%s declares a header parameter %s", op, p.Name)
					}
				}
				if code, _, body := call(t, ts, op); code != 200 {
					t.Errorf("%s without any header: %d %s, want 200", op, code, body)
				}
			}
		})
	}
}
