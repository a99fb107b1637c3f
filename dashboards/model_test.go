package dashboards

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// This file is the test's model of what Grafana and the Infinity plugin do
// with the files: the dashboard JSON schema subset the dashboards use, the
// gjson path subset of root selectors and column selectors, Grafana's variable
// interpolation, and the Infinity backend's URL construction.

const infinityType = "yesoreyeram-infinity-datasource"

// ---------- dashboard JSON ----------

type dsRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type gridPos struct {
	X int `json:"x"`
	Y int `json:"y"`
	W int `json:"w"`
	H int `json:"h"`
}

type kv struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type column struct {
	Selector string `json:"selector"`
	Text     string `json:"text"`
	Type     string `json:"type"`
}

// target is an Infinity query (panel target, variable query, annotation target).
type target struct {
	RefID      string `json:"refId"`
	Datasource *dsRef `json:"datasource"`
	Type       string `json:"type"`
	Source     string `json:"source"`
	Parser     string `json:"parser"`
	Format     string `json:"format"`
	URL        string `json:"url"`
	URLOptions struct {
		Method string `json:"method"`
		Params []kv   `json:"params"`
	} `json:"url_options"`
	RootSelector string   `json:"root_selector"`
	Columns      []column `json:"columns"`
}

type link struct {
	Title       string `json:"title"`
	URL         string `json:"url"`
	TargetBlank bool   `json:"targetBlank"`
}

type property struct {
	ID    string          `json:"id"`
	Value json.RawMessage `json:"value"`
}

type override struct {
	Matcher struct {
		ID      string `json:"id"`
		Options string `json:"options"`
	} `json:"matcher"`
	Properties []property `json:"properties"`
}

type mapping struct {
	Type    string          `json:"type"`
	Options json.RawMessage `json:"options"`
}

type panel struct {
	ID          int      `json:"id"`
	Type        string   `json:"type"`
	Title       string   `json:"title"`
	Repeat      string   `json:"repeat"`
	Collapsed   bool     `json:"collapsed"`
	Datasource  *dsRef   `json:"datasource"`
	GridPos     gridPos  `json:"gridPos"`
	Targets     []target `json:"targets"`
	Panels      []panel  `json:"panels"`
	FieldConfig struct {
		Defaults struct {
			Links    []link    `json:"links"`
			Mappings []mapping `json:"mappings"`
			// NoValue is what Grafana shows for a query without rows.
			NoValue string `json:"noValue"`
		} `json:"defaults"`
		Overrides []override `json:"overrides"`
	} `json:"fieldConfig"`
	Links []link `json:"links"`
}

type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Datasource *dsRef          `json:"datasource"`
	Query      json.RawMessage `json:"query"`
	Refresh    int             `json:"refresh"`
	Sort       int             `json:"sort"`
	Multi      bool            `json:"multi"`
	IncludeAll bool            `json:"includeAll"`
	Current    struct {
		Text  json.RawMessage `json:"text"`
		Value json.RawMessage `json:"value"`
	} `json:"current"`
}

// infinityQuery returns the Infinity query of a query variable.
func (v *variable) infinityQuery() (*target, error) {
	var q struct {
		QueryType     string  `json:"queryType"`
		InfinityQuery *target `json:"infinityQuery"`
	}
	if err := json.Unmarshal(v.Query, &q); err != nil {
		return nil, fmt.Errorf("variable %s: query is not an Infinity variable query: %v", v.Name, err)
	}
	if q.QueryType != "infinity" || q.InfinityQuery == nil {
		return nil, fmt.Errorf("variable %s: queryType %q, want \"infinity\" with an infinityQuery", v.Name, q.QueryType)
	}
	return q.InfinityQuery, nil
}

// queryString returns the query of a custom or textbox variable.
func (v *variable) queryString() (string, error) {
	var s string
	if err := json.Unmarshal(v.Query, &s); err != nil {
		return "", fmt.Errorf("variable %s: query is not a string", v.Name)
	}
	return s, nil
}

// currentValues is current.value as a list ("$__all" for All).
func (v *variable) currentValues() []string {
	var one string
	if json.Unmarshal(v.Current.Value, &one) == nil {
		if one == "" {
			return nil
		}
		return []string{one}
	}
	var many []string
	_ = json.Unmarshal(v.Current.Value, &many)
	return many
}

type annoMapping struct {
	Source string `json:"source"`
	Value  string `json:"value"`
}

type annotation struct {
	Name       string                 `json:"name"`
	BuiltIn    int                    `json:"builtIn"`
	Enable     bool                   `json:"enable"`
	Datasource *dsRef                 `json:"datasource"`
	Target     *target                `json:"target"`
	Mappings   map[string]annoMapping `json:"mappings"`
}

type dashboard struct {
	UID           string `json:"uid"`
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Time          struct {
		From string `json:"from"`
		To   string `json:"to"`
	} `json:"time"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []variable `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []annotation `json:"list"`
	} `json:"annotations"`

	file string
	raw  map[string]any // the same document, untyped, for exhaustive scans
}

func (d *dashboard) variable(name string) *variable {
	for i := range d.Templating.List {
		if d.Templating.List[i].Name == name {
			return &d.Templating.List[i]
		}
	}
	return nil
}

// flatPanels lists every panel, nested ones (collapsed rows) included, with
// the repeat variable that applies to it: its own, else its row's.
type scopedPanel struct {
	*panel
	repeat string
	row    *panel
}

func (d *dashboard) flatPanels() []scopedPanel {
	top := make([]*panel, len(d.Panels))
	for i := range d.Panels {
		top[i] = &d.Panels[i]
	}
	sort.SliceStable(top, func(i, j int) bool {
		a, b := top[i].GridPos, top[j].GridPos
		if a.Y != b.Y {
			return a.Y < b.Y
		}
		return a.X < b.X
	})
	var out []scopedPanel
	var row *panel
	for _, p := range top {
		if p.Type == "row" {
			row = p
			out = append(out, scopedPanel{panel: p, repeat: p.Repeat})
			for i := range p.Panels {
				n := &p.Panels[i]
				out = append(out, scopedPanel{panel: n, repeat: firstNonEmpty(n.Repeat, p.Repeat), row: p})
			}
			continue
		}
		r := p.Repeat
		if r == "" && row != nil {
			r = row.Repeat
		}
		out = append(out, scopedPanel{panel: p, repeat: r, row: row})
	}
	return out
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// loadDashboards reads json/*.json from fsys.
func loadDashboards(t testing.TB, fsys fs.FS) []*dashboard {
	t.Helper()
	names, err := fs.Glob(fsys, "json/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatal("no dashboards in json/")
	}
	var out []*dashboard
	for _, name := range names {
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			t.Fatal(err)
		}
		d, err := parseDashboard(name, b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out = append(out, d)
	}
	return out
}

func parseDashboard(name string, b []byte) (*dashboard, error) {
	d := &dashboard{file: name}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&d.raw); err != nil {
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data after the JSON document")
	}
	if err := json.Unmarshal(b, d); err != nil {
		return nil, fmt.Errorf("unexpected structure: %v", err)
	}
	return d, nil
}

// ---------- provisioning ----------

type provisionedDatasource struct {
	Name           string         `yaml:"name"`
	UID            string         `yaml:"uid"`
	Type           string         `yaml:"type"`
	Access         string         `yaml:"access"`
	IsDefault      bool           `yaml:"isDefault"`
	Editable       bool           `yaml:"editable"`
	URL            string         `yaml:"url"`
	JSONData       map[string]any `yaml:"jsonData"`
	SecureJSONData map[string]any `yaml:"secureJsonData"`
}

type datasourceFile struct {
	APIVersion  int                     `yaml:"apiVersion"`
	Datasources []provisionedDatasource `yaml:"datasources"`
}

type providerFile struct {
	APIVersion int `yaml:"apiVersion"`
	Providers  []struct {
		Name                  string `yaml:"name"`
		OrgID                 int    `yaml:"orgId"`
		Folder                string `yaml:"folder"`
		FolderUID             string `yaml:"folderUid"`
		Type                  string `yaml:"type"`
		DisableDeletion       bool   `yaml:"disableDeletion"`
		AllowUIUpdates        bool   `yaml:"allowUiUpdates"`
		UpdateIntervalSeconds int    `yaml:"updateIntervalSeconds"`
		Options               struct {
			Path                      string `yaml:"path"`
			FoldersFromFilesStructure bool   `yaml:"foldersFromFilesStructure"`
		} `yaml:"options"`
	} `yaml:"providers"`
}

func readYAML(t testing.TB, fsys fs.FS, name string, v any) {
	t.Helper()
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// expandEnv is Grafana's provisioning interpolation: os.ExpandEnv on every
// string value, "$$" for a literal "$" (pkg/services/provisioning/values).
func expandEnv(s string, env map[string]string) string {
	parts := strings.Split(s, "$$")
	for i, p := range parts {
		parts[i] = expandVars(p, env)
	}
	return strings.Join(parts, "$")
}

func expandVars(s string, env map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		j := i + 1
		var name string
		if s[j] == '{' {
			k := strings.IndexByte(s[j:], '}')
			if k < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name, i = s[j+1:j+k], j+k
		} else {
			k := j
			for k < len(s) && (s[k] == '_' || s[k] >= '0' && s[k] <= '9' || s[k] >= 'a' && s[k] <= 'z' || s[k] >= 'A' && s[k] <= 'Z') {
				k++
			}
			if k == j {
				b.WriteByte('$')
				continue
			}
			name, i = s[j:k], k-1
		}
		b.WriteString(env[name])
	}
	return b.String()
}

// ---------- JSON paths (the gjson subset the dashboards use) ----------

// A selector is a dotted gjson path, optionally piped into @tostr (the JSON
// text of the value as a string: how an array becomes a table cell). Its
// steps are keys, array indexes and gjson queries on the elements of an
// array: #(field=="literal") is the first element whose string field
// equals the literal, #(field!="literal")# every element whose field
// differs (a query ending in # yields an array and ends the path: gjson
// would apply further steps to each match). A literal may hold
// variable references: Infinity interpolates the root selector (not the
// column selectors) before the backend evaluates it.
type pathStep struct {
	key   string     // a key or an index; "" for a query
	query *pathQuery // nil for a key
}

type pathQuery struct {
	field   string // a plain dotted path inside the element
	not     bool   // != instead of ==
	literal string
	all     bool // trailing #: every match, as an array
}

var (
	keyRE   = regexp.MustCompile(`^[A-Za-z0-9_]+$`)
	queryRE = regexp.MustCompile(`^#\(([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)(==|!=)"([^"\\]*)"\)(#?)$`)
)

// splitPath splits a path (without @tostr) at the dots between its steps:
// dots inside a query's parentheses or quotes do not separate steps.
func splitPath(p string) []string {
	var parts []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == '.' && depth == 0:
			parts = append(parts, p[start:i])
			start = i + 1
		}
	}
	return append(parts, p[start:])
}

// parsePath splits a selector into its steps.
func parsePath(p string) (steps []pathStep, tostr bool, err error) {
	p, tostr = strings.CutSuffix(p, "|@tostr")
	if p == "" {
		return nil, false, fmt.Errorf("empty path")
	}
	parts := splitPath(p)
	for i, part := range parts {
		if m := queryRE.FindStringSubmatch(part); m != nil {
			if m[4] == "#" && i < len(parts)-1 {
				return nil, false, fmt.Errorf("path %q: a query for every match (#) must be the last step", p)
			}
			steps = append(steps, pathStep{query: &pathQuery{field: m[1], not: m[2] == "!=", literal: m[3], all: m[4] == "#"}})
			continue
		}
		if !keyRE.MatchString(part) || i == 0 && part[0] >= '0' && part[0] <= '9' {
			return nil, false, fmt.Errorf("path %q: step %q is neither a key, an index nor a #(field==\"literal\") query", p, part)
		}
		steps = append(steps, pathStep{key: part})
	}
	return steps, tostr, nil
}

// getRaw evaluates a path on raw JSON, keeping the raw text of the result
// as gjson does (so @tostr sees what Infinity sees). An empty path is the
// whole document.
func getRaw(doc json.RawMessage, p string) (json.RawMessage, bool, error) {
	if p == "" {
		return doc, true, nil
	}
	steps, tostr, err := parsePath(p)
	if err != nil {
		return nil, false, err
	}
	cur := bytes.TrimSpace(doc)
	for _, st := range steps {
		switch {
		case st.query != nil:
			var a []json.RawMessage
			if len(cur) == 0 || cur[0] != '[' {
				return nil, false, nil
			}
			if err := json.Unmarshal(cur, &a); err != nil {
				return nil, false, err
			}
			var matches []string
			for _, e := range a {
				// Only string fields are compared (the linter requires the
				// field to be a string); an element without the field
				// matches neither == nor !=, as in gjson.
				raw, ok, err := getRaw(e, st.query.field)
				if err != nil {
					return nil, false, err
				}
				var s string
				if !ok || json.Unmarshal(raw, &s) != nil || (s == st.query.literal) == st.query.not {
					continue
				}
				matches = append(matches, string(bytes.TrimSpace(e)))
				if !st.query.all {
					break
				}
			}
			switch {
			case st.query.all:
				cur = json.RawMessage("[" + strings.Join(matches, ",") + "]")
			case len(matches) == 0:
				return nil, false, nil
			default:
				cur = json.RawMessage(matches[0])
			}
		case len(cur) > 0 && cur[0] == '{':
			var m map[string]json.RawMessage
			if err := json.Unmarshal(cur, &m); err != nil {
				return nil, false, err
			}
			v, ok := m[st.key]
			if !ok {
				return nil, false, nil
			}
			cur = bytes.TrimSpace(v)
		case len(cur) > 0 && cur[0] == '[':
			var a []json.RawMessage
			if err := json.Unmarshal(cur, &a); err != nil {
				return nil, false, err
			}
			i, err := strconv.Atoi(st.key)
			if err != nil || i < 0 || i >= len(a) {
				return nil, false, nil
			}
			cur = bytes.TrimSpace(a[i])
		default:
			return nil, false, nil
		}
	}
	if tostr {
		s, _ := json.Marshal(string(cur))
		return s, true, nil
	}
	return cur, true, nil
}

// nullOnPath says whether the path (without @tostr) runs into a JSON null
// before its end: gjson then finds nothing, and a declared column's cell is
// null.
func nullOnPath(doc json.RawMessage, p string) bool {
	parts := splitPath(p)
	for i := 1; i < len(parts); i++ {
		if v, ok, err := getRaw(doc, strings.Join(parts[:i], ".")); err == nil && ok && bytes.Equal(v, []byte("null")) {
			return true
		}
	}
	return false
}

// rowsAt applies a root selector as the Infinity backend parser does: an
// array gives its elements, an object one row, null none.
func rowsAt(doc json.RawMessage, root string) ([]json.RawMessage, error) {
	v, ok, err := getRaw(doc, root)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("root selector %q matches nothing", root)
	}
	switch {
	case bytes.Equal(v, []byte("null")):
		return nil, nil
	case v[0] == '[':
		var a []json.RawMessage
		if err := json.Unmarshal(v, &a); err != nil {
			return nil, err
		}
		return a, nil
	case v[0] == '{':
		return []json.RawMessage{v}, nil
	}
	return nil, fmt.Errorf("root selector %q is neither an array nor an object: %.40s", root, v)
}

// cell is one column value of one row, decoded according to the declared type.
type cell struct {
	raw  json.RawMessage
	null bool
	str  string
	num  float64
	b    bool
	t    time.Time
}

// text is the value as Grafana interpolates it in links and variable options.
func (c cell) text(typ string) string {
	switch {
	case c.null:
		return ""
	case typ == "number":
		return strconv.FormatFloat(c.num, 'f', -1, 64)
	case typ == "boolean":
		return strconv.FormatBool(c.b)
	case typ == "timestamp":
		return c.t.UTC().Format(time.RFC3339Nano)
	}
	return c.str
}

// rawValue is ${__value.raw}: epoch milliseconds for time fields.
func (c cell) rawValue(typ string) string {
	if typ == "timestamp" && !c.null {
		return strconv.FormatInt(c.t.UnixMilli(), 10)
	}
	return c.text(typ)
}

// decodeCell checks the JSON type of a column value against the declared
// Infinity column type: number → JSON number, string → JSON string,
// boolean → JSON boolean, timestamp → RFC 3339 string (a timestamp or a
// number may be null: the API documents null for unknown times and for
// open-ended intervals, changes from 0 and undetectable effects, which
// Grafana shows as the panel's noValue).
func decodeCell(raw json.RawMessage, typ string) (cell, error) {
	c := cell{raw: raw}
	if bytes.Equal(raw, []byte("null")) {
		if typ == "timestamp" || typ == "number" {
			c.null = true
			return c, nil
		}
		return c, fmt.Errorf("null where a %s is declared", typ)
	}
	switch typ {
	case "number":
		if raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
			return c, fmt.Errorf("%.40s is not a JSON number", raw)
		}
		return c, json.Unmarshal(raw, &c.num)
	case "string":
		if raw[0] != '"' {
			return c, fmt.Errorf("%.40s is not a JSON string", raw)
		}
		return c, json.Unmarshal(raw, &c.str)
	case "boolean":
		if err := json.Unmarshal(raw, &c.b); err != nil {
			return c, fmt.Errorf("%.40s is not a JSON boolean", raw)
		}
		return c, nil
	case "timestamp":
		if raw[0] != '"' {
			return c, fmt.Errorf("%.40s is not an RFC 3339 string", raw)
		}
		if err := json.Unmarshal(raw, &c.str); err != nil {
			return c, err
		}
		t, err := time.Parse(time.RFC3339Nano, c.str)
		if err != nil {
			return c, fmt.Errorf("%q is not RFC 3339: %v", c.str, err)
		}
		c.t = t
		return c, nil
	}
	return c, fmt.Errorf("unknown column type %q", typ)
}

// ---------- Grafana variable interpolation ----------

// varRefRE finds variable references: ${name...}, $name, [[name]].
var varRefRE = regexp.MustCompile(`\$\{([^}]+)\}|\$([A-Za-z_][A-Za-z0-9_]*)|\[\[([A-Za-z0-9_]+)(?::[A-Za-z0-9_]+)?\]\]`)

// exprRE splits the inside of ${...}: name, field path, format.
var exprRE = regexp.MustCompile(`^([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_]+|\["[^"]*"\])*)(?::(.+))?$`)

// varRef is one reference in a string.
type varRef struct {
	whole, name, path, format string
}

func varRefs(s string) []varRef {
	var out []varRef
	for _, m := range varRefRE.FindAllStringSubmatch(s, -1) {
		switch {
		case m[1] != "":
			e := exprRE.FindStringSubmatch(m[1])
			if e == nil {
				out = append(out, varRef{whole: m[0], name: m[1]}) // reported as undefined
				continue
			}
			out = append(out, varRef{whole: m[0], name: e[1], path: e[2], format: e[3]})
		case m[2] != "":
			out = append(out, varRef{whole: m[0], name: m[2]})
		default:
			out = append(out, varRef{whole: m[0], name: m[3]})
		}
	}
	return out
}

// builtins are Grafana's global and data-link variables.
var builtins = map[string]bool{
	"__from": true, "__to": true, "__interval": true, "__interval_ms": true, "__range": true, "__range_s": true,
	"__range_ms": true, "__rate_interval": true, "__dashboard": true, "__org": true, "__user": true,
	"__timezone": true, "__url_time_range": true, "__all_variables": true, "__name": true,
	// data links
	"__value": true, "__field": true, "__series": true, "__data": true,
}

// formats are the variable formats the interpolation below implements.
var formats = map[string]bool{"": true, "raw": true, "text": true, "percentencode": true}

// varValue is a resolved template variable.
type varValue struct {
	values, texts []string
}

// linkCtx is the data-link context: the clicked row and field.
type linkCtx struct {
	fields  map[string]string // field name → text
	clicked string            // ${__value.raw}
	time    string            // ${__value.time}: epoch ms
	labels  map[string]string // ${__field.labels.*}
}

// scope is everything interpolation needs.
type scope struct {
	vars     map[string]varValue
	from, to time.Time
	repeat   map[string]string // repeat variable → the value of this clone
	link     *linkCtx
}

// percentEncode is encodeURIComponent with !'()* encoded too (Grafana's percentencode).
func percentEncode(s string) string {
	e := url.QueryEscape(s)
	e = strings.ReplaceAll(e, "+", "%20")
	for _, c := range []string{"!", "'", "(", ")", "*"} {
		e = strings.ReplaceAll(e, c, fmt.Sprintf("%%%02X", c[0]))
	}
	return e
}

func grafanaISO(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// interpolate replaces every variable reference in s the way Grafana does
// before the query reaches the Infinity backend (or a link is opened).
func (sc *scope) interpolate(s string) (string, error) {
	var firstErr error
	out := varRefRE.ReplaceAllStringFunc(s, func(m string) string {
		refs := varRefs(m)
		if len(refs) != 1 {
			firstErr = fmt.Errorf("cannot parse %q", m)
			return m
		}
		v, err := sc.value(refs[0])
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("%s: %v", m, err)
		}
		return v
	})
	return out, firstErr
}

func (sc *scope) value(r varRef) (string, error) {
	if !formats[r.format] && !strings.HasPrefix(r.format, "date") {
		return "", fmt.Errorf("format %q not supported", r.format)
	}
	field := strings.TrimPrefix(r.path, ".")
	if strings.HasPrefix(field, "fields[\"") {
		field = "fields." + strings.TrimSuffix(strings.TrimPrefix(field, "fields[\""), "\"]")
	}
	var v string
	switch r.name {
	case "__from", "__to":
		t := sc.from
		if r.name == "__to" {
			t = sc.to
		}
		switch r.format {
		case "", "raw":
			v = strconv.FormatInt(t.UnixMilli(), 10)
		case "date", "date:iso":
			v = grafanaISO(t)
		case "date:seconds":
			v = strconv.FormatInt(t.Unix(), 10)
		default:
			return "", fmt.Errorf("time format %q not supported", r.format)
		}
		return v, nil
	case "__url_time_range":
		return fmt.Sprintf("from=%d&to=%d", sc.from.UnixMilli(), sc.to.UnixMilli()), nil
	case "__value", "__data", "__field":
		if sc.link == nil {
			return "", fmt.Errorf("data-link variable outside a data link")
		}
		var ok bool
		switch {
		case r.name == "__value" && field == "raw":
			v, ok = sc.link.clicked, true
		case r.name == "__value" && field == "time":
			v, ok = sc.link.time, sc.link.time != ""
		case r.name == "__data" && strings.HasPrefix(field, "fields."):
			v, ok = sc.link.fields[strings.TrimPrefix(field, "fields.")]
		case r.name == "__field" && strings.HasPrefix(field, "labels."):
			v, ok = sc.link.labels[strings.TrimPrefix(field, "labels.")]
		}
		if !ok {
			return "", fmt.Errorf("%s.%s: no such value in this data link", r.name, field)
		}
	default:
		if builtins[r.name] {
			return "", fmt.Errorf("built-in %s not supported by this test", r.name)
		}
		if rv, ok := sc.repeat[r.name]; ok {
			v = rv
			break
		}
		vv, ok := sc.vars[r.name]
		if !ok {
			return "", fmt.Errorf("variable %s is not defined (or not resolved yet)", r.name)
		}
		if len(vv.values) != 1 {
			return "", fmt.Errorf("variable %s has %d values here; the API takes one (repeat the panel by it)", r.name, len(vv.values))
		}
		v = vv.values[0]
		if r.format == "text" {
			v = vv.texts[0]
		}
	}
	if r.format == "percentencode" {
		v = percentEncode(v)
	}
	return v, nil
}

// ---------- Infinity URL ----------

// infinityURL builds the request URL as the Infinity backend does
// (pkg/infinity/request.go GetQueryURL): the datasource URL is prefixed to a
// query URL that does not start with it; url_options.params are added to
// the URL's own query string and the whole is re-encoded.
func infinityURL(base string, tg *target, sc *scope) (string, error) {
	u, err := sc.interpolate(tg.URL)
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(u, base) {
		u = base + u
	}
	parsed, err := url.Parse(u)
	if err != nil {
		return "", err
	}
	q := parsed.Query()
	for _, p := range tg.URLOptions.Params {
		v, err := sc.interpolate(p.Value)
		if err != nil {
			return "", fmt.Errorf("param %s: %v", p.Key, err)
		}
		q.Add(p.Key, v)
	}
	parsed.RawQuery = q.Encode()
	return parsed.String(), nil
}

// ---------- time ranges ----------

var relRE = regexp.MustCompile(`^now(?:-(\d+)([smhdw]))?$`)

// resolveTime evaluates the relative times the dashboards use.
func resolveTime(s string, now time.Time) (time.Time, error) {
	m := relRE.FindStringSubmatch(s)
	if m == nil {
		return time.Time{}, fmt.Errorf("time %q: only now and now-<n><s|m|h|d|w> are supported", s)
	}
	if m[1] == "" {
		return now, nil
	}
	n, _ := strconv.Atoi(m[1])
	unit := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour, "w": 7 * 24 * time.Hour}[m[2]]
	return now.Add(-time.Duration(n) * unit), nil
}

// dashboardUIDInURL returns the uid of a /d/<uid>/... link, or "".
func dashboardUIDInURL(u string) string {
	p, _, _ := strings.Cut(u, "?")
	if !strings.HasPrefix(p, "/d/") {
		return ""
	}
	parts := strings.Split(strings.TrimPrefix(p, "/d/"), "/")
	return path.Clean(parts[0])
}

// timeZero is an arbitrary "now" for checks that only parse times.
var timeZero = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
