package dashboards

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/changelens/changelens/queryapi/gen/openapiv2"
)

// ---------- the API's OpenAPI spec (what the Infinity queries may ask) ----------

type schema struct {
	Ref        string             `json:"$ref"`
	Type       string             `json:"type"`
	Format     string             `json:"format"`
	Enum       []string           `json:"enum"`
	Properties map[string]*schema `json:"properties"`
	Items      *schema            `json:"items"`
	// Nullable is the gateway's x-nullable: the API may send null (a
	// message field such as Deployment.cause, a wrapped number).
	Nullable bool `json:"x-nullable"`
}

type specParam struct {
	Name string   `json:"name"`
	In   string   `json:"in"`
	Type string   `json:"type"`
	Enum []string `json:"enum"`
}

type specOp struct {
	Parameters []specParam `json:"parameters"`
	Responses  map[string]struct {
		Schema *schema `json:"schema"`
	} `json:"responses"`
}

type apiSpec struct {
	Paths       map[string]map[string]specOp `json:"paths"`
	Definitions map[string]*schema           `json:"definitions"`
}

func loadSpec(t testing.TB) *apiSpec {
	t.Helper()
	var s apiSpec
	if err := json.Unmarshal(openapiv2.QueryServiceJSON, &s); err != nil {
		t.Fatalf("OpenAPI spec: %v", err)
	}
	if len(s.Paths) == 0 {
		t.Fatal("OpenAPI spec has no paths")
	}
	return &s
}

func (s *apiSpec) resolve(sc *schema) *schema {
	for sc != nil && sc.Ref != "" {
		sc = s.Definitions[strings.TrimPrefix(sc.Ref, "#/definitions/")]
	}
	return sc
}

// op finds the GET operation whose path template matches p ("{id}" matches
// one segment; a variable reference in p stands for any segment).
func (s *apiSpec) op(p string) (string, *specOp) {
	segs := strings.Split(p, "/")
	for tmpl, ops := range s.Paths {
		ts := strings.Split(tmpl, "/")
		if len(ts) != len(segs) {
			continue
		}
		ok := true
		for i := range ts {
			if strings.HasPrefix(ts[i], "{") {
				ok = ok && segs[i] != ""
			} else {
				ok = ok && ts[i] == segs[i]
			}
		}
		if op, has := ops["get"]; ok && has {
			return tmpl, &op
		}
	}
	return "", nil
}

// at walks a selector (parsePath, without @tostr) through a schema; nil
// when a step is not in it. A query must filter an array on a string field
// of its elements.
func (s *apiSpec) at(sc *schema, p string) *schema {
	sc, _ = s.atNullable(sc, p)
	return sc
}

// atNullable is at, and whether the last step is documented as nullable
// (x-nullable on the property, which resolving its $ref would lose).
func (s *apiSpec) atNullable(sc *schema, p string) (*schema, bool) {
	sc = s.resolve(sc)
	if p == "" {
		return sc, false
	}
	steps, _, err := parsePath(p)
	if err != nil {
		return nil, false
	}
	nullable := false
	for _, st := range steps {
		if sc == nil {
			return nil, false
		}
		nullable = false
		isArray := sc.Type == "array" || sc.Items != nil
		switch {
		case st.query != nil:
			if !isArray {
				return nil, false
			}
			item := s.resolve(sc.Items)
			if f := s.at(item, st.query.field); f == nil || f.Type != "string" {
				return nil, false
			}
			sc = item
			if st.query.all {
				sc = &schema{Type: "array", Items: item}
			}
		case isArray:
			if _, err := strconv.Atoi(st.key); err != nil {
				return nil, false
			}
			sc = s.resolve(sc.Items)
		case sc.Properties != nil:
			prop := sc.Properties[st.key]
			nullable = prop != nil && prop.Nullable
			sc = s.resolve(prop)
		default:
			return nil, false
		}
	}
	return sc, nullable
}

// nullableParent says whether a column selector passes through a value the
// API documents as nullable before its last step (Deployment.cause.kind):
// where that value is null the path does not exist, and gjson, hence the
// Infinity backend, gives the column a null cell.
func (s *apiSpec) nullableParent(row *schema, selector string) bool {
	parts := splitPath(strings.TrimSuffix(selector, "|@tostr"))
	for i := 1; i < len(parts); i++ {
		if _, n := s.atNullable(row, strings.Join(parts[:i], ".")); n {
			return true
		}
	}
	return false
}

// rowSchema is the schema of the rows an Infinity query yields (nil when
// the query does not lint).
func (s *apiSpec) rowSchema(tg *target) *schema {
	_, op := s.op(varRefRE.ReplaceAllString(tg.URL, "X"))
	if op == nil || op.Responses["200"].Schema == nil {
		return nil
	}
	root := s.at(op.Responses["200"].Schema, tg.RootSelector)
	if root != nil && (root.Type == "array" || root.Items != nil) {
		root = s.resolve(root.Items)
	}
	return root
}

// compatible says whether a declared Infinity column type can hold values
// of the schema.
func compatible(declared string, sc *schema) bool {
	switch declared {
	case "number":
		return sc.Type == "number" || sc.Type == "integer"
	case "timestamp":
		return sc.Type == "string" && sc.Format == "date-time"
	case "string":
		return sc.Type == "string" && sc.Format != "date-time"
	case "boolean":
		return sc.Type == "boolean"
	}
	return false
}

// ---------- provisioning facts the linter needs ----------

type provisioned struct {
	datasources map[string]string // uid → type
	dashboards  map[string]*dashboard
}

// ---------- the linter ----------

type linter struct {
	spec *apiSpec
	prov provisioned
}

var (
	uidRE     = regexp.MustCompile(`^[A-Za-z0-9_-]{1,40}$`)
	varNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

type problems []string

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// lint returns every problem found in d.
func (l *linter) lint(d *dashboard) problems {
	var ps problems
	if d.SchemaVersion != 41 {
		ps.add("schemaVersion %d, want 41", d.SchemaVersion)
	}
	if !uidRE.MatchString(d.UID) {
		ps.add("uid %q: want 1-40 letters, digits, - or _", d.UID)
	}
	if d.Title == "" {
		ps.add("no title")
	}
	if _, err := resolveTime(d.Time.From, timeZero); err != nil {
		ps.add("time.from: %v", err)
	}
	if _, err := resolveTime(d.Time.To, timeZero); err != nil {
		ps.add("time.to: %v", err)
	}
	vars := l.lintVariables(d, &ps)
	l.lintPanels(d, vars, &ps)
	l.lintAnnotations(d, vars, &ps)
	l.lintVariableRefs(d, vars, &ps)
	return ps
}

func (l *linter) lintDatasource(where string, ds *dsRef, ps *problems) {
	if ds == nil {
		ps.add("%s: no datasource", where)
		return
	}
	typ, ok := l.prov.datasources[ds.UID]
	if !ok {
		ps.add("%s: datasource uid %q is not provisioned (provisioning/datasources)", where, ds.UID)
		return
	}
	if ds.Type != "" && ds.Type != typ {
		ps.add("%s: datasource %q has type %q, provisioned as %q", where, ds.UID, ds.Type, typ)
	}
}

// lintVariables checks the templating list and returns the variables by name.
func (l *linter) lintVariables(d *dashboard, ps *problems) map[string]*variable {
	vars := map[string]*variable{}
	for i := range d.Templating.List {
		v := &d.Templating.List[i]
		where := "variable " + v.Name
		if !varNameRE.MatchString(v.Name) || builtins[v.Name] || strings.HasPrefix(v.Name, "__") {
			ps.add("%s: invalid name", where)
		}
		if vars[v.Name] != nil {
			ps.add("%s: defined twice", where)
		}
		// References in a variable's query must be to variables defined before it.
		raw, _ := json.Marshal(v.Query)
		for _, r := range varRefs(string(raw)) {
			if builtins[r.name] {
				continue
			}
			w := vars[r.name]
			switch {
			case w == nil:
				ps.add("%s: refers to %s, which is not defined before it", where, r.whole)
			case w.Multi || w.IncludeAll:
				ps.add("%s: refers to multi-valued variable %s; the API takes one value", where, r.whole)
			}
		}
		vars[v.Name] = v
		switch v.Type {
		case "query":
			l.lintDatasource(where, v.Datasource, ps)
			tg, err := v.infinityQuery()
			if err != nil {
				ps.add("%v", err)
				continue
			}
			l.lintTarget(where, tg, v.Datasource, true, ps)
			if len(tg.Columns) > 1 {
				var names []string
				for _, c := range tg.Columns {
					names = append(names, c.Text)
				}
				sort.Strings(names)
				if strings.Join(names, ",") != "__text,__value" {
					ps.add("%s: with more than one column they must be __text and __value, got %v", where, names)
				}
			}
			usesTime := strings.Contains(string(raw), "__from") || strings.Contains(string(raw), "__to")
			if usesTime && v.Refresh != 2 {
				ps.add("%s: uses the time range but refresh is %d, want 2 (on time range change)", where, v.Refresh)
			}
			if v.Sort < 0 || v.Sort > 2 {
				ps.add("%s: sort %d not supported here (0, 1, 2)", where, v.Sort)
			}
		case "custom":
			q, err := v.queryString()
			if err != nil {
				ps.add("%v", err)
				continue
			}
			opts := customOptions(q)
			if len(opts) == 0 {
				ps.add("%s: no options", where)
			}
			cur := v.currentValues()
			if len(cur) != 1 || !containsValue(opts, cur[0]) {
				ps.add("%s: current %v is not one of the options", where, cur)
			}
		case "textbox", "constant":
			if _, err := v.queryString(); err != nil {
				ps.add("%v", err)
			}
		default:
			ps.add("%s: type %q not supported by the dashboards test", where, v.Type)
		}
	}
	return vars
}

// option is one variable option.
type option struct{ text, value string }

// customOptions parses a custom variable's query as Grafana does: options
// separated by commas (\, escapes one), "text : value" pairs.
func customOptions(q string) []option {
	var out []option
	for _, part := range regexp.MustCompile(`(?:\\,|[^,])+`).FindAllString(q, -1) {
		part = strings.TrimSpace(strings.ReplaceAll(part, `\,`, ","))
		if part == "" {
			continue
		}
		text, value, ok := strings.Cut(part, " : ")
		if !ok {
			text, value = part, part
		}
		out = append(out, option{strings.TrimSpace(text), strings.TrimSpace(value)})
	}
	return out
}

func containsValue(opts []option, v string) bool {
	for _, o := range opts {
		if o.value == v {
			return true
		}
	}
	return false
}

// paramValueIsFixed: a value without variable references is checked as is.
func paramValueIsFixed(v string) bool { return !strings.Contains(v, "$") }

// lintTarget checks an Infinity query: shape, the API path and parameters
// against the OpenAPI spec, the root and column selectors against the
// response schema (including the declared column types), and returns the
// row schema.
//
// In a variable query every column ends up as option text, so a string
// column may hold a date-time there.
func (l *linter) lintTarget(where string, tg *target, parentDS *dsRef, variableQuery bool, ps *problems) *schema {
	where = fmt.Sprintf("%s query %s", where, tg.RefID)
	ds := tg.Datasource
	if ds == nil {
		ds = parentDS
	}
	l.lintDatasource(where, ds, ps)
	if ds != nil && l.prov.datasources[ds.UID] != infinityType {
		ps.add("%s: datasource is not the Infinity datasource", where)
	}
	if tg.RefID == "" {
		ps.add("%s: no refId", where)
	}
	if tg.Type != "json" || tg.Source != "url" || tg.Parser != "backend" {
		ps.add("%s: want type json, source url, parser backend; got %q, %q, %q", where, tg.Type, tg.Source, tg.Parser)
	}
	if m := strings.ToUpper(tg.URLOptions.Method); m != "GET" {
		ps.add("%s: method %q, want GET", where, tg.URLOptions.Method)
	}
	switch tg.Format {
	case "table", "timeseries":
	default:
		ps.add("%s: format %q, want table or timeseries", where, tg.Format)
	}
	if !strings.HasPrefix(tg.URL, "/v1/") || strings.Contains(tg.URL, "?") {
		ps.add("%s: url %q: want a path relative to the datasource URL (/v1/...), parameters in url_options.params", where, tg.URL)
	}
	// A variable reference stands for one path segment.
	path := varRefRE.ReplaceAllString(tg.URL, "X")
	tmpl, op := l.spec.op(path)
	if op == nil {
		ps.add("%s: %s is not a GET operation of the API", where, tg.URL)
		return nil
	}
	params := map[string]specParam{}
	for _, p := range op.Parameters {
		if p.In == "query" {
			params[p.Name] = p
		}
	}
	seen := map[string]bool{}
	for _, p := range tg.URLOptions.Params {
		sp, ok := params[p.Key]
		if !ok {
			ps.add("%s: %q is not a parameter of %s (the API would ignore it)", where, p.Key, tmpl)
			continue
		}
		if seen[p.Key] {
			ps.add("%s: parameter %q given twice", where, p.Key)
		}
		seen[p.Key] = true
		if !paramValueIsFixed(p.Value) {
			continue
		}
		switch {
		case len(sp.Enum) > 0 && !enumAccepts(sp.Enum, p.Value):
			ps.add("%s: %s=%q is not one of %v", where, p.Key, p.Value, sp.Enum)
		case sp.Type == "integer":
			if _, err := strconv.Atoi(p.Value); err != nil {
				ps.add("%s: %s=%q is not an integer", where, p.Key, p.Value)
			}
		}
	}
	resp := op.Responses["200"].Schema
	if resp == nil {
		ps.add("%s: %s has no 200 response schema", where, tmpl)
		return nil
	}
	if _, _, err := parsePath(tg.RootSelector); tg.RootSelector != "" && err != nil || strings.Contains(tg.RootSelector, "@") {
		ps.add("%s: root_selector %q is not a gjson path of keys, indexes and #(field==\"literal\") queries", where, tg.RootSelector)
	}
	root := l.spec.at(resp, tg.RootSelector)
	if root == nil {
		ps.add("%s: root_selector %q is not in the response schema of %s", where, tg.RootSelector, tmpl)
		return nil
	}
	row := root
	if root.Type == "array" || root.Items != nil {
		row = l.spec.resolve(root.Items)
	}
	if row == nil || row.Properties == nil {
		ps.add("%s: root_selector %q does not select objects", where, tg.RootSelector)
		return nil
	}
	if len(tg.Columns) == 0 {
		ps.add("%s: no columns (declare every column with its type)", where)
	}
	texts := map[string]bool{}
	nTime, nNum := 0, 0
	for _, c := range tg.Columns {
		cw := fmt.Sprintf("%s column %q", where, c.Text)
		if c.Text == "" {
			ps.add("%s: column %q has no text", where, c.Selector)
		}
		if texts[c.Text] {
			ps.add("%s: duplicate column text", cw)
		}
		texts[c.Text] = true
		if _, _, err := parsePath(c.Selector); err != nil {
			ps.add("%s: selector %q is not a gjson path of keys, indexes and #(field==\"literal\") queries", cw, c.Selector)
			continue
		}
		if strings.Contains(c.Selector, "$") {
			// Infinity interpolates the root selector, not the columns'.
			ps.add("%s: selector %q refers to a variable; column selectors are not interpolated", cw, c.Selector)
		}
		switch c.Type {
		case "timestamp":
			nTime++
		case "number":
			nNum++
		case "string", "boolean":
		default:
			ps.add("%s: type %q, want string, number, timestamp or boolean", cw, c.Type)
			continue
		}
		sel, tostr := strings.CutSuffix(c.Selector, "|@tostr")
		sc := l.spec.at(row, sel)
		switch {
		case sc == nil:
			ps.add("%s: selector %q is not in the response schema", cw, c.Selector)
		case tostr:
			if c.Type != "string" {
				ps.add("%s: @tostr gives a string, declared %s", cw, c.Type)
			}
		case variableQuery && c.Type == "string" && sc.Type == "string":
		case !compatible(c.Type, sc):
			ps.add("%s: declared %s but the API returns %s%s", cw, c.Type, sc.Type, map[bool]string{true: " (" + sc.Format + ")"}[sc.Format != ""])
		}
	}
	if tg.Format == "timeseries" && (nTime != 1 || nNum == 0) {
		ps.add("%s: format timeseries needs one timestamp column and numbers (%d timestamps, %d numbers)", where, nTime, nNum)
	}
	return row
}

// enumAccepts mirrors the server's enum query parser: the full name, or the
// name without its prefix, in any case.
func enumAccepts(values []string, v string) bool {
	up := strings.ToUpper(v)
	for _, e := range values {
		if e == up || strings.HasSuffix(e, "_"+up) {
			return true
		}
	}
	return false
}

type panelInfo struct {
	columns map[string]column  // column text → column (all targets)
	schemas map[string]*schema // column text → schema of its values
}

func (l *linter) lintPanels(d *dashboard, vars map[string]*variable, ps *problems) {
	ids := map[int]bool{}
	flat := d.flatPanels()
	for _, sp := range flat {
		p := sp.panel
		where := fmt.Sprintf("panel %d %q", p.ID, p.Title)
		if p.ID <= 0 {
			ps.add("%s: id must be positive", where)
		}
		if ids[p.ID] {
			ps.add("%s: duplicate panel id %d", where, p.ID)
		}
		ids[p.ID] = true
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
			ps.add("%s: gridPos %+v outside the 24 columns (x+w <= 24, w and h > 0)", where, g)
		}
		if p.Type == "row" {
			if g.W != 24 || g.H != 1 || g.X != 0 {
				ps.add("%s: a row spans x 0, w 24, h 1", where)
			}
			if len(p.Targets) > 0 {
				ps.add("%s: a row has no queries", where)
			}
		}
		if sp.repeat != "" {
			v := vars[sp.repeat]
			switch {
			case v == nil:
				ps.add("%s: repeats by undefined variable %q", where, sp.repeat)
			case !v.Multi && !v.IncludeAll:
				ps.add("%s: repeats by %q, which is neither multi-value nor has All", where, sp.repeat)
			}
		}
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			ps.add("%s: no queries", where)
		}
		l.lintDatasource(where, p.Datasource, ps)
		info := panelInfo{columns: map[string]column{}, schemas: map[string]*schema{}}
		for i := range p.Targets {
			tg := &p.Targets[i]
			row := l.lintTarget(where, tg, p.Datasource, false, ps)
			for _, c := range tg.Columns {
				info.columns[c.Text] = c
				if row != nil {
					info.schemas[c.Text] = l.spec.at(row, strings.TrimSuffix(c.Selector, "|@tostr"))
				}
			}
		}
		for _, o := range p.FieldConfig.Overrides {
			if o.Matcher.ID != "byName" {
				ps.add("%s: override matcher %q: only byName is used here", where, o.Matcher.ID)
				continue
			}
			c, ok := info.columns[o.Matcher.Options]
			if !ok {
				ps.add("%s: override for field %q, which no query of the panel returns", where, o.Matcher.Options)
				continue
			}
			for _, prop := range o.Properties {
				switch prop.ID {
				case "links":
					var links []link
					if err := json.Unmarshal(prop.Value, &links); err != nil {
						ps.add("%s: override links: %v", where, err)
					}
					for _, lk := range links {
						l.lintLink(where, lk, info, ps)
					}
				case "mappings":
					var ms []mapping
					if err := json.Unmarshal(prop.Value, &ms); err != nil {
						ps.add("%s: override mappings: %v", where, err)
					}
					l.lintMappings(fmt.Sprintf("%s field %q", where, c.Text), ms, c, info.schemas[c.Text], ps)
				}
			}
		}
		for _, lk := range append(append([]link{}, p.FieldConfig.Defaults.Links...), p.Links...) {
			l.lintLink(where, lk, info, ps)
		}
		// An enum column without value mappings would show the raw proto
		// names (VERDICT_CAUSED_BY_DEPENDENCY).
		mapped := map[string]bool{}
		for _, o := range p.FieldConfig.Overrides {
			for _, prop := range o.Properties {
				mapped[o.Matcher.Options] = mapped[o.Matcher.Options] || prop.ID == "mappings"
			}
		}
		for _, text := range sortedKeys(info.columns) {
			if sc := info.schemas[text]; sc != nil && len(sc.Enum) > 0 && !mapped[text] && len(p.FieldConfig.Defaults.Mappings) == 0 {
				ps.add("%s field %q: enum values %v without value mappings", where, text, sc.Enum)
			}
		}
	}
	// No two panels share a cell (rows included; nested panels of a
	// collapsed row only among themselves).
	groups := [][]*panel{nil}
	for i := range d.Panels {
		p := &d.Panels[i]
		groups[0] = append(groups[0], p)
		if p.Type == "row" && p.Collapsed {
			var g []*panel
			for j := range p.Panels {
				g = append(g, &p.Panels[j])
			}
			groups = append(groups, g)
		}
	}
	for _, g := range groups {
		for i := 0; i < len(g); i++ {
			for j := i + 1; j < len(g); j++ {
				a, b := g[i].GridPos, g[j].GridPos
				if a.X < b.X+b.W && b.X < a.X+a.W && a.Y < b.Y+b.H && b.Y < a.Y+a.H {
					ps.add("panels %d %q and %d %q overlap (%+v, %+v)", g[i].ID, g[i].Title, g[j].ID, g[j].Title, a, b)
				}
			}
		}
	}
}

// lintMappings: value mappings of an enum column must cover exactly the
// enum's values (a typo would show the raw proto name); regex patterns
// must compile; special mappings name a value Grafana knows.
func (l *linter) lintMappings(where string, ms []mapping, c column, sc *schema, ps *problems) {
	for _, m := range ms {
		switch m.Type {
		case "value":
			var opts map[string]json.RawMessage
			if err := json.Unmarshal(m.Options, &opts); err != nil {
				ps.add("%s: value mapping: %v", where, err)
				continue
			}
			if sc == nil || len(sc.Enum) == 0 {
				continue
			}
			var keys []string
			for k := range opts {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			want := append([]string(nil), sc.Enum...)
			sort.Strings(want)
			if strings.Join(keys, ",") != strings.Join(want, ",") {
				ps.add("%s: value mappings %v do not match the API's enum values %v", where, keys, want)
			}
		case "regex":
			var o struct {
				Pattern string `json:"pattern"`
			}
			if err := json.Unmarshal(m.Options, &o); err != nil {
				ps.add("%s: regex mapping: %v", where, err)
				continue
			}
			if _, err := regexp.Compile(o.Pattern); err != nil {
				ps.add("%s: regex mapping %q: %v", where, o.Pattern, err)
			}
		case "special":
			// Grafana's special values: how an empty string, null or NaN
			// cell reads (an unknown match would silently map nothing).
			var o struct {
				Match string `json:"match"`
			}
			if err := json.Unmarshal(m.Options, &o); err != nil {
				ps.add("%s: special mapping: %v", where, err)
				continue
			}
			switch o.Match {
			case "empty", "null", "nan", "null+nan", "true", "false":
			default:
				ps.add("%s: special mapping matches %q, not a Grafana special value", where, o.Match)
			}
		default:
			ps.add("%s: mapping type %q not used here", where, m.Type)
		}
	}
}

// lintLink checks a data link: an internal link must point to an existing
// dashboard and set only variables it defines; ${__data.fields.X} must name
// a field of the panel; an external link starts with http(s) or a variable.
func (l *linter) lintLink(where string, lk link, info panelInfo, ps *problems) {
	where = fmt.Sprintf("%s link %q", where, lk.Title)
	if lk.Title == "" || lk.URL == "" {
		ps.add("%s: needs a title and a url", where)
	}
	for _, r := range varRefs(lk.URL) {
		if r.name == "__data" {
			f := strings.TrimPrefix(r.path, ".fields.")
			if strings.HasPrefix(r.path, `.fields["`) {
				f = strings.TrimSuffix(strings.TrimPrefix(r.path, `.fields["`), `"]`)
			}
			if _, ok := info.columns[f]; !ok {
				ps.add("%s: %s names no field of the panel", where, r.whole)
			}
		}
		if r.name == "__field" && strings.HasPrefix(r.path, ".labels.") {
			lab := strings.TrimPrefix(r.path, ".labels.")
			if c, ok := info.columns[lab]; !ok || c.Type != "string" {
				ps.add("%s: %s: labels come from string columns of a timeseries query; there is no string column %q", where, r.whole, lab)
			}
		}
	}
	uid := dashboardUIDInURL(lk.URL)
	if uid == "" {
		if !strings.HasPrefix(lk.URL, "http://") && !strings.HasPrefix(lk.URL, "https://") && !strings.HasPrefix(lk.URL, "$") {
			ps.add("%s: %q is neither /d/<uid>/... nor an absolute URL", where, lk.URL)
		}
		return
	}
	target := l.prov.dashboards[uid]
	if target == nil {
		ps.add("%s: there is no dashboard with uid %q", where, uid)
		return
	}
	_, query, _ := strings.Cut(lk.URL, "?")
	for _, part := range strings.Split(query, "&") {
		k, _, _ := strings.Cut(part, "=")
		if name, ok := strings.CutPrefix(k, "var-"); ok && target.variable(name) == nil {
			ps.add("%s: sets var-%s, which dashboard %s does not define", where, name, uid)
		}
	}
}

func (l *linter) lintAnnotations(d *dashboard, vars map[string]*variable, ps *problems) {
	for _, a := range d.Annotations.List {
		where := "annotation " + a.Name
		if a.BuiltIn == 1 {
			if a.Datasource == nil || a.Datasource.Type != "grafana" {
				ps.add("%s: the built-in annotation uses the grafana datasource", where)
			}
			continue
		}
		l.lintDatasource(where, a.Datasource, ps)
		if a.Target == nil {
			ps.add("%s: no target", where)
			continue
		}
		l.lintTarget(where, a.Target, a.Datasource, false, ps)
		cols := map[string]column{}
		for _, c := range a.Target.Columns {
			cols[c.Text] = c
		}
		if m, ok := a.Mappings["time"]; !ok || m.Source != "field" || cols[m.Value].Type != "timestamp" {
			ps.add("%s: mappings.time must name a timestamp column", where)
		}
		for k, m := range a.Mappings {
			switch m.Source {
			case "field":
				if _, ok := cols[m.Value]; !ok {
					ps.add("%s: mapping %s names field %q, which the query does not return", where, k, m.Value)
				}
				if k == "timeEnd" && cols[m.Value].Type != "timestamp" {
					ps.add("%s: mappings.timeEnd must name a timestamp column", where)
				}
			case "text", "skip":
			default:
				ps.add("%s: mapping %s: source %q", where, k, m.Source)
			}
		}
	}
}

// lintVariableRefs scans every string of the dashboard (queries, titles,
// links, descriptions) for $var / ${var} / [[var]]: each must be a defined
// variable or a Grafana built-in, with a supported format; a multi-valued
// variable may appear only inside panels repeated by it.
func (l *linter) lintVariableRefs(d *dashboard, vars map[string]*variable, ps *problems) {
	check := func(where, s, repeat string) {
		for _, r := range varRefs(s) {
			switch {
			case builtins[r.name]:
				if (r.name == "__from" || r.name == "__to") && r.format != "" && !strings.HasPrefix(r.format, "date") {
					ps.add("%s: %s: format not supported", where, r.whole)
				}
				continue
			case vars[r.name] == nil:
				ps.add("%s: %s is not defined (variables: %v)", where, r.whole, sortedKeys(vars))
				continue
			}
			if !formats[r.format] {
				ps.add("%s: %s: format %q not supported (%v)", where, r.whole, r.format, sortedKeys(formats))
			}
			if v := vars[r.name]; (v.Multi || v.IncludeAll) && r.name != repeat {
				ps.add("%s: %s is multi-valued; use it only in panels repeated by it", where, r.whole)
			}
		}
	}
	for _, sp := range d.flatPanels() {
		where := fmt.Sprintf("panel %d %q", sp.ID, sp.Title)
		raw, ok := findPanelRaw(d.raw, sp.ID)
		if !ok {
			ps.add("%s: not found in the raw document", where)
			continue
		}
		delete(raw, "panels") // a row's nested panels are scanned on their own
		walkStrings(raw, func(s string) { check(where, s, sp.repeat) })
	}
	rawAnn, _ := d.raw["annotations"].(map[string]any)
	walkStrings(rawAnn, func(s string) { check("annotations", s, "") })
	for _, k := range []string{"title", "description", "links"} {
		walkStrings(d.raw[k], func(s string) { check("dashboard "+k, s, "") })
	}
}

func sortedKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// findPanelRaw returns a shallow copy of the raw panel with this id.
func findPanelRaw(root map[string]any, id int) (map[string]any, bool) {
	var found map[string]any
	var walk func(ps []any)
	walk = func(ps []any) {
		for _, x := range ps {
			p, _ := x.(map[string]any)
			if p == nil {
				continue
			}
			if n, _ := p["id"].(float64); int(n) == id && found == nil {
				found = map[string]any{}
				for k, v := range p {
					found[k] = v
				}
			}
			if nested, ok := p["panels"].([]any); ok {
				walk(nested)
			}
		}
	}
	ps, _ := root["panels"].([]any)
	walk(ps)
	return found, found != nil
}

// walkStrings calls f on every string in v, except variable state
// (current/options hold values such as "$__all", not references).
func walkStrings(v any, f func(string)) {
	switch x := v.(type) {
	case string:
		f(x)
	case []any:
		for _, e := range x {
			walkStrings(e, f)
		}
	case map[string]any:
		for k, e := range x {
			if k == "current" || k == "options" {
				continue
			}
			walkStrings(e, f)
		}
	}
}

// ---------- provisioning ----------

// lintProvisioning checks the datasource and dashboard provider files and
// returns what dashboards may refer to.
func lintProvisioning(t *testing.T, dashboards []*dashboard) provisioned {
	t.Helper()
	var dsf datasourceFile
	readYAML(t, Files, "provisioning/datasources/changelens.yaml", &dsf)
	if dsf.APIVersion != 1 {
		t.Errorf("datasources: apiVersion %d, want 1", dsf.APIVersion)
	}
	prov := provisioned{datasources: map[string]string{}, dashboards: map[string]*dashboard{}}
	for _, ds := range dsf.Datasources {
		if ds.Name == "" || !uidRE.MatchString(ds.UID) || ds.Type == "" {
			t.Errorf("datasource %+v: name, uid and type are required", ds)
		}
		if _, dup := prov.datasources[ds.UID]; dup {
			t.Errorf("datasource uid %q twice", ds.UID)
		}
		prov.datasources[ds.UID] = ds.Type
	}
	var pf providerFile
	readYAML(t, Files, "provisioning/dashboards/changelens.yaml", &pf)
	if pf.APIVersion != 1 || len(pf.Providers) != 1 {
		t.Fatalf("dashboard providers: apiVersion %d, %d providers; want 1, 1", pf.APIVersion, len(pf.Providers))
	}
	p := pf.Providers[0]
	if p.Type != "file" || p.Folder != "changelens" || p.Options.Path == "" || p.OrgID != 1 {
		t.Errorf("dashboard provider %+v: want type file, folder changelens, orgId 1 and a path", p)
	}
	titles := map[string]string{}
	for _, d := range dashboards {
		if prev := prov.dashboards[d.UID]; prev != nil {
			t.Errorf("dashboard uid %q in both %s and %s", d.UID, prev.file, d.file)
		}
		prov.dashboards[d.UID] = d
		if f, dup := titles[d.Title]; dup {
			t.Errorf("dashboard title %q in both %s and %s (Grafana refuses duplicates in a folder)", d.Title, f, d.file)
		}
		titles[d.Title] = d.file
	}
	return prov
}

// infinitySettings is the provisioned Infinity datasource as the plugin
// sees it once Grafana has expanded the environment.
type infinitySettings struct {
	url          string
	allowedHosts []string
	headers      map[string]string
}

func infinityFromProvisioning(t testing.TB, env map[string]string) infinitySettings {
	t.Helper()
	var dsf datasourceFile
	readYAML(t, Files, "provisioning/datasources/changelens.yaml", &dsf)
	var ds *provisionedDatasource
	for i := range dsf.Datasources {
		if dsf.Datasources[i].Type == infinityType {
			if ds != nil {
				t.Fatal("more than one Infinity datasource")
			}
			ds = &dsf.Datasources[i]
		}
	}
	if ds == nil {
		t.Fatal("no Infinity datasource provisioned")
	}
	s := infinitySettings{url: expandEnv(ds.URL, env), headers: map[string]string{}}
	if hosts, ok := ds.JSONData["allowedHosts"].([]any); ok {
		for _, h := range hosts {
			hs, _ := h.(string)
			s.allowedHosts = append(s.allowedHosts, expandEnv(hs, env))
		}
	}
	for i := 1; ; i++ {
		name, ok := ds.JSONData[fmt.Sprintf("httpHeaderName%d", i)].(string)
		if !ok {
			break
		}
		value, _ := ds.SecureJSONData[fmt.Sprintf("httpHeaderValue%d", i)].(string)
		s.headers[name] = expandEnv(value, env)
	}
	return s
}

// allowed mirrors the plugin's allowed-hosts check: the request URL must
// start with one of them (none configured: anything goes).
func (s infinitySettings) allowed(u string) bool {
	if len(s.allowedHosts) == 0 {
		return true
	}
	for _, h := range s.allowedHosts {
		if h != "" && strings.HasPrefix(strings.ToLower(u), strings.ToLower(h)) {
			return true
		}
	}
	return false
}

// ---------- tests ----------

func TestProvisioning(t *testing.T) {
	ds := lintProvisioning(t, loadDashboards(t, Files)).datasources
	if ds["changelens-api"] != infinityType {
		t.Fatalf("datasources %v: want uid changelens-api of type %s", ds, infinityType)
	}
	env := map[string]string{"CHANGELENS_API_URL": "http://api.example:8080", "CHANGELENS_API_TOKEN": "s3cret"}
	s := infinityFromProvisioning(t, env)
	if s.url != "http://api.example:8080" {
		t.Errorf("url %q: want CHANGELENS_API_URL", s.url)
	}
	if len(s.allowedHosts) != 1 || s.allowedHosts[0] != s.url {
		t.Errorf("allowedHosts %v: want exactly the API URL", s.allowedHosts)
	}
	if s.headers["Authorization"] != "Bearer s3cret" {
		t.Errorf("headers %v: want Authorization: Bearer $CHANGELENS_API_TOKEN", s.headers)
	}
	if !s.allowed("http://api.example:8080/v1/dora") || s.allowed("http://elsewhere:8080/v1/dora") {
		t.Error("allowedHosts must admit the API and nothing else")
	}
	// Unset: no URL, and the empty allowed host makes the plugin reject the
	// datasource instead of sending the token anywhere.
	s = infinityFromProvisioning(t, nil)
	if s.url != "" || s.headers["Authorization"] != "Bearer " || s.allowed("http://elsewhere/v1/dora") {
		t.Errorf("with the environment unset: %+v", s)
	}
	var pf providerFile
	readYAML(t, Files, "provisioning/dashboards/changelens.yaml", &pf)
	if got := expandEnv(pf.Providers[0].Options.Path, map[string]string{"CHANGELENS_DASHBOARDS_DIR": "/x/json"}); got != "/x/json" {
		t.Errorf("provider path %q expands to %q, want CHANGELENS_DASHBOARDS_DIR", pf.Providers[0].Options.Path, got)
	}
}

func newLinter(t *testing.T) (*linter, []*dashboard) {
	ds := loadDashboards(t, Files)
	return &linter{spec: loadSpec(t), prov: lintProvisioning(t, ds)}, ds
}

func TestLintDashboards(t *testing.T) {
	l, ds := newLinter(t)
	if len(ds) < 5 {
		t.Fatalf("%d dashboards, want DORA overview, service latency, deployment impact, compare and experiment", len(ds))
	}
	for _, d := range ds {
		t.Run(d.UID, func(t *testing.T) {
			for _, p := range l.lint(d) {
				t.Error(p)
			}
			// Every panel that is not a row queries something.
			n := 0
			for _, sp := range d.flatPanels() {
				if sp.Type != "row" {
					n++
				}
			}
			if n == 0 {
				t.Error("no panels")
			}
		})
	}
}

// TestLintDashboardsContent pins what issue 5 asks of each dashboard, so
// that a later edit cannot silently drop it.
func TestLintDashboardsContent(t *testing.T) {
	_, ds := newLinter(t)
	byUID := map[string]*dashboard{}
	for _, d := range ds {
		byUID[d.UID] = d
	}
	must := func(uid string) *dashboard {
		d := byUID[uid]
		if d == nil {
			t.Fatalf("no dashboard %s", uid)
		}
		return d
	}
	// queries lists "panelType path root column..." of every panel query.
	queries := func(d *dashboard) []string {
		var out []string
		for _, sp := range d.flatPanels() {
			for _, tg := range sp.Targets {
				var cols []string
				for _, c := range tg.Columns {
					cols = append(cols, c.Selector)
				}
				out = append(out, fmt.Sprintf("%s %s %s %s", sp.Type, tg.URL, tg.RootSelector, strings.Join(cols, " ")))
			}
		}
		return out
	}
	has := func(d *dashboard, what ...string) {
		t.Helper()
	next:
		for _, w := range what {
			re := regexp.MustCompile(w)
			for _, q := range queries(d) {
				if re.MatchString(q) {
					continue next
				}
			}
			t.Errorf("%s: no panel query matches %q", d.UID, w)
		}
	}
	dora := must("changelens-dora")
	has(dora,
		`^stat /v1/dora summary deployment_frequency_per_day tiers.deployment_frequency deployment_count$`,
		`^stat /v1/dora summary lead_time_median_seconds tiers.lead_time lead_time_sample_count$`,
		`^stat /v1/dora summary change_failure_rate tiers.change_failure_rate failed_change_count change_count$`,
		`^stat /v1/dora summary time_to_restore_median_seconds tiers.time_to_restore restore_sample_count$`,
		`^timeseries /v1/dora intervals start_time `,
		`^table /v1/deployments deployments id .*service version previous_version source verdict change_failure failure_reasons\|@tostr cause.kind cause.service cause.version cause.flag rework_reason explanation .*lead_time_seconds time_to_restore_seconds`,
		// DORA 2024 onwards: the rework rate, and every metric against the
		// 2025 distributions.
		`^stat /v1/dora summary rework_rate rework_count deployment_count$`,
		`^table /v1/dora summary.benchmarks metric score industry_mean industry_std percentile$`,
	)
	lat := must("changelens-service-latency")
	has(lat,
		`^timeseries /v1/latency points time group p50_ms$`, `^timeseries /v1/latency points time group p95_ms$`,
		`^timeseries /v1/latency points time group p99_ms$`, `^timeseries /v1/latency points time group error_rate$`,
		`^timeseries /v1/latency points time group count$`, `^table /v1/latency:summary rows group`,
	)
	imp := must("changelens-deployment-impact")
	has(imp,
		`/v1/deployments/\$\{deployment_id\}/impact  verdict reasons\|@tostr`,
		`/v1/deployments/\$\{deployment_id\}/impact  before.p95_ms after.p95_ms`,
		`/v1/deployments/\$\{deployment_id\}/impact  before.error_rate after.error_rate`,
		`/v1/deployments/\$\{deployment_id\}/impact  before.requests after.requests`,
		`^table /v1/deployments/\$\{deployment_id\}/impact metrics metric before after relative_change ci_low ci_high min_detectable_change adjusted_p_value verdict$`,
		`^table /v1/deployments/\$\{deployment_id\}/impact operations rank operation other_operations .*verdict .*metrics.0.relative_change`,
		`^table /v1/deployments/\$\{deployment_id\}/impact  explanation$`,
		`^timeseries /v1/latency points time group p95_ms$`,
		// Cause, not coincidence: what the verdict blamed, the ranked
		// changes per metric, and the graph neighbours.
		`^stat /v1/deployments/\$\{deployment_id\}/impact deployment.cause kind service version flag variant$`,
		`^table /v1/deployments/\$\{deployment_id\}/impact attribution.causes.#\(metric=="latency_mean_ms"\)# .*explained share z significant$`,
		`^table /v1/deployments/\$\{deployment_id\}/impact attribution.causes.#\(metric=="error_rate"\)# .*explained share z significant$`,
		`^table /v1/deployments/\$\{deployment_id\}/impact attribution.neighbours service environment callee `,
		// The new error kinds with their rates, verdicts and first traces.
		`^table /v1/deployments/\$\{deployment_id\}/impact error_kinds.new kind verdict after after_rate rate_low rate_high minutes adjusted_p_value first_trace_id first_seen$`,
	)
	has(lat, `^table /v1/graph edges caller_service callee_service callee_environment calls errors mean_ms$`)
	for _, d := range []*dashboard{lat, imp} {
		for _, v := range []string{"service", "environment"} {
			if d.variable(v) == nil {
				t.Errorf("%s: no variable %s", d.UID, v)
			}
		}
		found := false
		for _, a := range d.Annotations.List {
			found = found || (a.Target != nil && a.Target.URL == "/v1/deployments")
		}
		if !found {
			t.Errorf("%s: no deployment annotations", d.UID)
		}
	}
	if lat.variable("operation") == nil || imp.variable("deployment_id") == nil || dora.variable("environment") == nil {
		t.Error("missing the operation, deployment_id or environment variable")
	}
	// The four DORA stats are coloured by the API's tier through value mappings.
	tiers := 0
	for _, sp := range dora.flatPanels() {
		for _, o := range sp.FieldConfig.Overrides {
			for _, p := range o.Properties {
				if p.ID == "mappings" && strings.Contains(string(p.Value), "TIER_ELITE") && strings.Contains(string(p.Value), `"green"`) {
					tiers++
				}
			}
		}
	}
	if tiers < 4 {
		t.Errorf("%d DORA panels colour the tier, want at least 4", tiers)
	}

	// Issue 25: an experiment's decision, plan, split and every metric per
	// treatment with its interval, verdict and note.
	exp := must("changelens-experiment")
	report := `/v1/experiments/\$\{experiment\}/report`
	has(exp,
		`^stat `+report+`  decision$`,
		`^stat `+report+`  summary reason$`,
		`^stat `+report+` plan message `,
		`^stat `+report+` sample_ratio p_value mismatch$`,
		`^table `+report+` sample_ratio.counts variant units expected_share observed_share$`,
		`^table `+report+` treatments.#\(treatment=="\$\{treatment\}"\).metrics label role unit control_value treatment_value relative_effect relative_low relative_high verdict note$`,
		`^table `+report+` treatments treatment decision reason summary$`,
	)
	for _, v := range []string{"experiment", "treatment"} {
		if exp.variable(v) == nil {
			t.Errorf("%s: no variable %s", exp.UID, v)
		}
	}
	// Every query reads the same look at the report: the time picker's end.
	for _, sp := range exp.flatPanels() {
		for _, tg := range sp.Targets {
			if len(tg.URLOptions.Params) != 1 || tg.URLOptions.Params[0].Key != "as_of" || tg.URLOptions.Params[0].Value != "${__to:date:iso}" {
				t.Errorf("%s: panel %q does not read the report as of the range's end", exp.UID, sp.Title)
			}
		}
	}

	cmp := must("changelens-compare")
	has(cmp,
		`^stat /v1/compare  verdict$`,
		`^stat /v1/compare  overlap_minutes$`,
		`^stat /v1/compare  control.requests treatment.requests treatment.share$`,
		`^stat /v1/compare srm expected_share observed_share p_value mismatch$`,
		`^table /v1/compare metrics metric control treatment relative_change ci_low ci_high p_value test verdict$`,
		`^table /v1/compare operations operation verdict overlap_minutes .*latency_p95_ms.*\.control .*latency_p95_ms.*\.treatment .*latency_p95_ms.*\.relative_change`,
		`^table /v1/compare control value requests slowest_trace_id failed_trace_id$`,
		`^table /v1/compare treatment value requests slowest_trace_id failed_trace_id$`,
	)
	for _, v := range []string{"environment", "service", "dimension", "control", "treatment", "expected_treatment_share", "operation", "trace_ui_url"} {
		if cmp.variable(v) == nil {
			t.Errorf("%s: no variable %s", cmp.UID, v)
		}
	}
	// Every panel compares the same two cohorts the same way: a query
	// without one of these parameters would silently compare something else.
	for _, sp := range cmp.flatPanels() {
		for _, tg := range sp.Targets {
			got := map[string]string{}
			for _, p := range tg.URLOptions.Params {
				got[p.Key] = p.Value
			}
			for _, k := range []string{"service", "environment", "dimension", "control", "treatment", "operation", "expected_treatment_share"} {
				if got[k] != "$"+k {
					t.Errorf("%s panel %q: %s=%q, want $%s", cmp.UID, sp.Title, k, got[k], k)
				}
			}
		}
	}
	// The treatment's options leave out the control (the API refuses to
	// compare a cohort with itself).
	if v := cmp.variable("treatment"); v != nil {
		if tg, err := v.infinityQuery(); err != nil || !strings.Contains(tg.RootSelector, `.#(value!="${control}")#`) {
			t.Errorf("%s: the treatment's options do not leave out the control", cmp.UID)
		}
	}
	// Verdicts look alike everywhere: worse like degraded, better like
	// improved, and so on.
	colours := func(d *dashboard, prefix string) map[string]string {
		out := map[string]string{}
		for _, sp := range d.flatPanels() {
			for _, o := range sp.FieldConfig.Overrides {
				for _, p := range o.Properties {
					var ms []mapping
					if p.ID != "mappings" || json.Unmarshal(p.Value, &ms) != nil {
						continue
					}
					for _, m := range ms {
						var opts map[string]struct{ Color string }
						_ = json.Unmarshal(m.Options, &opts)
						for k, v := range opts {
							if strings.HasPrefix(k, prefix) {
								out[strings.TrimPrefix(k, prefix)] = v.Color
							}
						}
					}
				}
			}
		}
		return out
	}
	impact, compare := colours(imp, "VERDICT_"), colours(cmp, "COMPARE_VERDICT_")
	for c, i := range map[string]string{"WORSE": "DEGRADED", "BETTER": "IMPROVED", "NO_DIFFERENCE": "NO_CHANGE", "INSUFFICIENT_DATA": "INSUFFICIENT_DATA"} {
		if compare[c] == "" || compare[c] != impact[i] {
			t.Errorf("%s: verdict %s coloured %q, the impact dashboard colours %s %q", cmp.UID, c, compare[c], i, impact[i])
		}
	}
	// Links between compare and the dashboards it belongs with.
	for from, to := range map[*dashboard]string{imp: "/d/changelens-compare/", lat: "/d/changelens-compare/", cmp: "/d/changelens-service-latency/"} {
		raw, _ := json.Marshal(from.raw["panels"])
		if !strings.Contains(string(raw), to) {
			t.Errorf("%s: no link to %s", from.UID, to)
		}
	}
}

// TestLinterCatches breaks the real dashboards in one way each and checks
// that the linter says so: a linter that finds nothing proves nothing.
func TestLinterCatches(t *testing.T) {
	l, ds := newLinter(t)
	byUID := map[string]*dashboard{}
	for _, d := range ds {
		byUID[d.UID] = d
	}
	// firstPanel returns the raw panel with a query of this type.
	firstPanel := func(m map[string]any, typ string) map[string]any {
		for _, x := range m["panels"].([]any) {
			p := x.(map[string]any)
			if p["type"] == typ {
				return p
			}
		}
		t.Fatalf("no %s panel", typ)
		return nil
	}
	firstTarget := func(m map[string]any, typ string) map[string]any {
		return firstPanel(m, typ)["targets"].([]any)[0].(map[string]any)
	}
	cases := []struct {
		name, uid, want string
		mutate          func(m map[string]any)
	}{
		{"schema version", "changelens-dora", "schemaVersion 40", func(m map[string]any) { m["schemaVersion"] = 40.0 }},
		{"grid width", "changelens-dora", "outside the 24 columns", func(m map[string]any) {
			firstPanel(m, "stat")["gridPos"].(map[string]any)["x"] = 20.0
		}},
		{"overlap", "changelens-dora", "overlap", func(m map[string]any) {
			ps := m["panels"].([]any)
			ps[2].(map[string]any)["gridPos"] = ps[1].(map[string]any)["gridPos"]
		}},
		{"duplicate id", "changelens-dora", "duplicate panel id", func(m map[string]any) {
			ps := m["panels"].([]any)
			ps[2].(map[string]any)["id"] = ps[1].(map[string]any)["id"]
		}},
		{"datasource", "changelens-service-latency", "is not provisioned", func(m map[string]any) {
			firstTarget(m, "timeseries")["datasource"] = map[string]any{"type": infinityType, "uid": "nope"}
		}},
		{"undefined variable", "changelens-service-latency", "$servce is not defined", func(m map[string]any) {
			firstTarget(m, "timeseries")["url_options"].(map[string]any)["params"].([]any)[0].(map[string]any)["value"] = "$servce"
		}},
		{"unknown parameter", "changelens-service-latency", `"stat_time" is not a parameter`, func(m map[string]any) {
			firstTarget(m, "timeseries")["url_options"].(map[string]any)["params"].([]any)[0].(map[string]any)["key"] = "stat_time"
		}},
		{"bad enum", "changelens-service-latency", `group_by="versions" is not one of`, func(m map[string]any) {
			for _, p := range firstTarget(m, "timeseries")["url_options"].(map[string]any)["params"].([]any) {
				if p.(map[string]any)["key"] == "group_by" {
					p.(map[string]any)["value"] = "versions"
				}
			}
		}},
		{"selector not in schema", "changelens-service-latency", `selector "p96_ms" is not in the response schema`, func(m map[string]any) {
			firstTarget(m, "timeseries")["columns"].([]any)[2].(map[string]any)["selector"] = "p96_ms"
		}},
		{"declared type", "changelens-dora", "declared number but the API returns string (date-time)", func(m map[string]any) {
			firstTarget(m, "table")["columns"].([]any)[2].(map[string]any)["type"] = "number"
		}},
		{"root selector", "changelens-dora", `root_selector "sumary" is not in the response schema`, func(m map[string]any) {
			firstTarget(m, "stat")["root_selector"] = "sumary"
		}},
		{"link target", "changelens-dora", `no dashboard with uid "changelens-impact"`, func(m map[string]any) {
			b, _ := json.Marshal(m["panels"])
			var ps []any
			_ = json.Unmarshal([]byte(strings.ReplaceAll(string(b), "/d/changelens-deployment-impact/", "/d/changelens-impact/")), &ps)
			m["panels"] = ps
		}},
		{"link field", "changelens-dora", `${__data.fields.Id} names no field`, func(m map[string]any) {
			b, _ := json.Marshal(m["panels"])
			var ps []any
			_ = json.Unmarshal([]byte(strings.ReplaceAll(string(b), "${__data.fields.ID}", "${__data.fields.Id}")), &ps)
			m["panels"] = ps
		}},
		{"override of a missing field", "changelens-dora", `override for field "Verdikt"`, func(m map[string]any) {
			b, _ := json.Marshal(m["panels"])
			var ps []any
			_ = json.Unmarshal([]byte(strings.Replace(string(b), `"options":"Verdict"`, `"options":"Verdikt"`, 1)), &ps)
			m["panels"] = ps
		}},
		{"enum mapping typo", "changelens-dora", "do not match the API's enum values", func(m map[string]any) {
			b, _ := json.Marshal(m["panels"])
			var ps []any
			_ = json.Unmarshal([]byte(strings.Replace(string(b), `"TIER_ELITE"`, `"TIER_ELIT"`, 1)), &ps)
			m["panels"] = ps
		}},
		{"multi-valued outside its repeat", "changelens-service-latency", "$operation is multi-valued", func(m map[string]any) {
			firstTarget(m, "timeseries")["url_options"].(map[string]any)["params"] = append(
				firstTarget(m, "timeseries")["url_options"].(map[string]any)["params"].([]any),
				map[string]any{"key": "operation", "value": "$operation"})
		}},
		{"variable refresh", "changelens-deployment-impact", "refresh is 1, want 2", func(m map[string]any) {
			for _, v := range m["templating"].(map[string]any)["list"].([]any) {
				if v.(map[string]any)["name"] == "deployment_id" {
					v.(map[string]any)["refresh"] = 1.0
				}
			}
		}},
		{"variable order", "changelens-deployment-impact", "not defined before it", func(m map[string]any) {
			l := m["templating"].(map[string]any)["list"].([]any)
			l[0], l[2] = l[2], l[0]
		}},
		{"annotation mapping", "changelens-service-latency", `names field "Deploy tme"`, func(m map[string]any) {
			for _, a := range m["annotations"].(map[string]any)["list"].([]any) {
				if mp, ok := a.(map[string]any)["mappings"].(map[string]any); ok {
					mp["title"] = map[string]any{"source": "field", "value": "Deploy tme"}
				}
			}
		}},
		{"query field", "changelens-compare", `root_selector "dimensions.#(dimenson==`, func(m map[string]any) {
			replaceIn(m, "templating", `#(dimension==`, `#(dimenson==`)
		}},
		{"variable in a column selector", "changelens-compare", "column selectors are not interpolated", func(m map[string]any) {
			replaceIn(m, "panels", `#(metric==\"error_rate\")`, `#(metric==\"$dimension\")`)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			orig := byUID[c.uid]
			if orig == nil {
				t.Fatalf("no dashboard %s", c.uid)
			}
			b, _ := json.Marshal(orig.raw)
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			c.mutate(m)
			b, _ = json.Marshal(m)
			d, err := parseDashboard(orig.file, b)
			if err != nil {
				t.Fatal(err)
			}
			ps := l.lint(d)
			for _, p := range ps {
				if strings.Contains(p, c.want) {
					return
				}
			}
			t.Errorf("want a problem containing %q, got %d:\n%s", c.want, len(ps), strings.Join(ps, "\n"))
		})
	}
}

// replaceIn replaces old by new in the JSON text of m[key].
func replaceIn(m map[string]any, key, old, new string) {
	b, _ := json.Marshal(m[key])
	var v any
	_ = json.Unmarshal([]byte(strings.ReplaceAll(string(b), old, new)), &v)
	m[key] = v
}

// TestInterpolation pins the variable syntax the dashboards rely on.
func TestInterpolation(t *testing.T) {
	from := mustTime(t, "2025-03-04T05:06:07.089Z")
	to := mustTime(t, "2025-03-05T05:06:07Z")
	sc := &scope{
		vars: map[string]varValue{
			"service": {values: []string{"check out"}, texts: []string{"check out"}},
			"id":      {values: []string{"abc"}, texts: []string{"2025-03-04T12:00:00Z"}},
			"ops":     {values: []string{"a", "b"}, texts: []string{"a", "b"}},
		},
		from: from, to: to,
		link: &linkCtx{fields: map[string]string{"Deploy time": "x", "ID": "abc"}, clicked: "1741090000000",
			labels: map[string]string{"version": "1.2.3"}},
	}
	for in, want := range map[string]string{
		"${__from:date:iso}..${__to:date:iso}":          "2025-03-04T05:06:07.089Z..2025-03-05T05:06:07.000Z",
		"$__from-${__to}":                               "1741064767089-1741151167000",
		"${__from:date:seconds}":                        "1741064767",
		"/v1/deployments/${id}/impact":                  "/v1/deployments/abc/impact",
		"$service/${service:percentencode}/[[service]]": "check out/check%20out/check out",
		"${id:text}":                                    "2025-03-04T12:00:00Z",
		"${__data.fields.ID}|${__data.fields[\"Deploy time\"]}|${__value.raw}|${__field.labels.version}": "abc|x|1741090000000|1.2.3",
		"${__url_time_range}": "from=1741064767089&to=1741151167000",
	} {
		got, err := sc.interpolate(in)
		if err != nil || got != want {
			t.Errorf("interpolate(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"$nope", "${ops}", "${__interval_ms}", "${service:csv}"} {
		if got, err := sc.interpolate(bad); err == nil {
			t.Errorf("interpolate(%q) = %q, want an error", bad, got)
		}
	}
	sc.repeat = map[string]string{"ops": "b"}
	if got, err := sc.interpolate("${ops}"); err != nil || got != "b" {
		t.Errorf("repeated: %q, %v", got, err)
	}
	// Infinity's URL: base + path, params added and encoded.
	tg := &target{URL: "/v1/latency"}
	tg.URLOptions.Params = []kv{{"service", "$service"}, {"start_time", "${__from:date:iso}"}}
	u, err := infinityURL("http://h:1", tg, sc)
	if want := "http://h:1/v1/latency?service=check+out&start_time=2025-03-04T05%3A06%3A07.089Z"; err != nil || u != want {
		t.Errorf("infinityURL = %q, %v; want %q", u, err, want)
	}
}

func TestJSONPaths(t *testing.T) {
	doc := json.RawMessage(`{"a": {"b": [1, {"c": "x"}]}, "r": ["X", "Y"], "n": null}`)
	for p, want := range map[string]string{
		"":         string(doc),
		"a.b.0":    "1",
		"a.b.1.c":  `"x"`,
		"r|@tostr": `"[\"X\", \"Y\"]"`,
		"n":        "null",
	} {
		got, ok, err := getRaw(doc, p)
		if err != nil || !ok || string(got) != want {
			t.Errorf("getRaw(%q) = %s, %v, %v; want %s", p, got, ok, err, want)
		}
	}
	for _, p := range []string{"a.x", "a.b.2", "r.0.z"} {
		if _, ok, err := getRaw(doc, p); ok || err != nil {
			t.Errorf("getRaw(%q) exists", p)
		}
	}
	if _, _, err := getRaw(doc, "a.#(c==x)"); err == nil {
		t.Error("a query's literal is quoted")
	}
	// gjson queries: the first match, or every match (#); an element without
	// the field matches neither == nor !=.
	q := json.RawMessage(`{"d": [{"k": "a", "v": [{"x": "1"}, {"x": "2"}]}, {"k": "b.c", "v": []}, {"n": 1}]}`)
	for p, want := range map[string]string{
		`d.#(k=="b.c").v`:          `[]`,
		`d.#(k=="a").v.#(x!="1")#`: `[{"x": "2"}]`,
		`d.#(k!="a")#`:             `[{"k": "b.c", "v": []}]`,
		`d.#(k=="z").v.#(x!="1")#`: ``,
	} {
		got, ok, err := getRaw(q, p)
		if err != nil || ok != (want != "") || string(got) != want {
			t.Errorf("getRaw(%q) = %s, %v, %v; want %s", p, got, ok, err, want)
		}
	}
	if _, _, err := getRaw(q, `d.#(k!="a")#.v`); err == nil {
		t.Error("steps after a query for every match are outside the subset")
	}
	rows, err := rowsAt(doc, "r")
	if err != nil || len(rows) != 2 {
		t.Errorf("rowsAt(r) = %v, %v", rows, err)
	}
	if rows, err := rowsAt(doc, "n"); err != nil || len(rows) != 0 {
		t.Errorf("rowsAt(n) = %v, %v", rows, err)
	}
	if _, err := rowsAt(doc, "missing"); err == nil {
		t.Error("rowsAt(missing) should fail")
	}
	for raw, typ := range map[string]string{`1.5`: "number", `"s"`: "string", `true`: "boolean", `"2025-01-02T03:04:05.6Z"`: "timestamp", `null`: "timestamp", `0`: "number"} {
		if _, err := decodeCell(json.RawMessage(raw), typ); err != nil {
			t.Errorf("decodeCell(%s, %s): %v", raw, typ, err)
		}
	}
	if c, err := decodeCell(json.RawMessage(`null`), "number"); err != nil || !c.null {
		t.Errorf("decodeCell(null, number) = %+v, %v: a documented null number", c, err)
	}
	for raw, typ := range map[string]string{`"1"`: "number", `1`: "string", `"true"`: "boolean", `"yesterday"`: "timestamp", `null`: "string"} {
		if _, err := decodeCell(json.RawMessage(raw), typ); err == nil {
			t.Errorf("decodeCell(%s, %s) accepted", raw, typ)
		}
	}
}

func TestCustomOptions(t *testing.T) {
	got := customOptions(`auto : 0,1m : 60, WEEK ,a\,b`)
	want := []option{{"auto", "0"}, {"1m", "60"}, {"WEEK", "WEEK"}, {"a,b", "a,b"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("customOptions = %v, want %v", got, want)
	}
	if u := dashboardUIDInURL("/d/abc/x?var-a=1"); u != "abc" {
		t.Errorf("uid %q", u)
	}
	if _, err := url.Parse("/d/abc"); err != nil {
		t.Fatal(err)
	}
}

// TestReasonMappings: the regex mappings that turn a failure-reason list
// (its JSON text, via @tostr) into "ROLLED_BACK, LATENCY_REGRESSION" must
// match every list the API can send, with or without a space after the
// commas (protojson randomizes that whitespace per build).
func TestReasonMappings(t *testing.T) {
	_, ds := newLinter(t)
	spec := loadSpec(t)
	var reasons []string
	for _, r := range spec.Definitions["v1FailureReason"].Enum {
		if r != "FAILURE_REASON_UNSPECIFIED" {
			reasons = append(reasons, r)
		}
	}
	if len(reasons) != 5 {
		t.Fatalf("failure reasons %v: the mappings cover lists of up to 5", reasons)
	}
	var lists [][]string
	var perm func(prefix []string)
	perm = func(prefix []string) {
		lists = append(lists, prefix)
		for _, r := range reasons {
			if !strings.Contains(strings.Join(prefix, " "), r) {
				perm(append(append([]string(nil), prefix...), r))
			}
		}
	}
	perm(nil)
	checked := 0
	for _, d := range ds {
		for _, sp := range d.flatPanels() {
			cols := map[string]string{}
			for _, tg := range sp.Targets {
				for _, c := range tg.Columns {
					cols[c.Text] = c.Selector
				}
			}
			for _, o := range sp.FieldConfig.Overrides {
				if !strings.HasSuffix(cols[o.Matcher.Options], "reasons|@tostr") {
					continue
				}
				var patterns []*regexp.Regexp
				for _, p := range o.Properties {
					var ms []mapping
					if p.ID == "mappings" && json.Unmarshal(p.Value, &ms) == nil {
						for _, m := range ms {
							var x struct {
								Pattern string `json:"pattern"`
							}
							if m.Type == "regex" && json.Unmarshal(m.Options, &x) == nil {
								patterns = append(patterns, regexp.MustCompile(x.Pattern))
							}
						}
					}
				}
				for _, l := range lists {
					for _, sep := range []string{",", ", "} {
						b, _ := json.Marshal(l)
						if l == nil {
							b = []byte("[]")
						}
						s := strings.ReplaceAll(string(b), `","`, `"`+sep+`"`)
						ok := false
						for _, re := range patterns {
							ok = ok || re.MatchString(s)
						}
						if !ok {
							t.Errorf("%s panel %d field %q: no mapping matches %s", d.UID, sp.ID, o.Matcher.Options, s)
						}
						checked++
					}
				}
			}
		}
	}
	if checked == 0 {
		t.Error("no failure-reason column with mappings found")
	}
}
