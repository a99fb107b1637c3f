package store

import (
	"context"
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/limits"
	"github.com/changelens/changelens/queryapi/report"
)

func TestPageToken(t *testing.T) {
	c := cursor{at: time.Date(2026, 3, 2, 1, 2, 3, 456, time.UTC), id: "0123456789abcdef0123456789abcdef"}
	tok := encodeToken(c)
	if tok != encodeToken(c) {
		t.Fatal("token not stable")
	}
	got, err := decodeToken(tok)
	if err != nil || !got.at.Equal(c.at) || got.id != c.id {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	// Newest first: earlier times, and lower IDs at the same time, follow.
	if !c.before(c.at.Add(-1), "z") || !c.before(c.at, "0") || c.before(c.at, c.id) || c.before(c.at.Add(1), "0") {
		t.Error("cursor order")
	}
	for _, bad := range []string{"", "!!", "djI6MTox", "djE6eDp5", "djE6LTE6eA", strings.Repeat("A", 5000)} {
		var ia *report.InvalidArgumentError
		if _, err := decodeToken(bad); !errors.As(err, &ia) {
			t.Errorf("decodeToken(%q) = %v", bad, err)
		}
	}
}

func TestConfig(t *testing.T) {
	c := Config{DSN: "clickhouse://localhost:9000/changelens"}.withDefaults()
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	if c.Limits != limits.Default() || c.Analysis != analysis.DefaultConfig() || c.Now == nil {
		t.Errorf("defaults %+v", c)
	}
	for name, mut := range map[string]func(*Config){
		"dsn":      func(c *Config) { c.DSN = "" },
		"database": func(c *Config) { c.Database = "x; DROP TABLE y" },
		"page":     func(c *Config) { c.Limits.DefaultPageSize = c.Limits.MaxPageSize + 1 },
		"timeout":  func(c *Config) { c.Limits.QueryTimeout = -1 },
		"analysis": func(c *Config) { c.Analysis.Alpha = 2 },
		"lookback": func(c *Config) { c.UnitsLookback = -time.Hour },
	} {
		c := Config{DSN: "clickhouse://localhost:9000/x"}.withDefaults()
		mut(&c)
		if c.validate() == nil {
			t.Errorf("%s: invalid config accepted", name)
		}
	}
	if _, err := Open(context.Background(), Config{DSN: "clickhouse://localhost:9000/bad-name"}); err == nil {
		t.Error("invalid database name from the DSN accepted")
	}
	if _, err := Open(context.Background(), Config{DSN: "::not a dsn"}); err == nil {
		t.Error("bad DSN accepted")
	}
}

func TestLRU(t *testing.T) {
	c := newLRU(2)
	c.put("a", cached{stats: windowPair{{Requests: 1}}})
	c.put("b", cached{stats: windowPair{{Requests: 2}}})
	if _, ok := c.get("a"); !ok { // a is now the most recent
		t.Fatal("a missing")
	}
	c.put("c", cached{stats: windowPair{{Requests: 3}}}) // evicts b
	if _, ok := c.get("b"); ok {
		t.Error("b not evicted")
	}
	if p, ok := c.get("c"); !ok || p.stats[0].Requests != 3 || c.len() != 2 {
		t.Error("c missing")
	}
	c.put("c", cached{stats: windowPair{{Requests: 4}}})
	if p, _ := c.get("c"); p.stats[0].Requests != 4 || c.len() != 2 {
		t.Error("update")
	}
}

// TestSQLTemplates renders every query variant: no template residue, every
// @parameter is one the code binds, and nothing but the configured database
// is spliced in.
func TestHourSpan(t *testing.T) {
	for _, c := range []struct {
		from, to, hfrom, hto int64
		ok                   bool
	}{
		{0, 7200, 0, 7200, true},
		{1, 7200, 3600, 7200, true},
		{60, 7199, 3600, 3600, false},
		{3600, 7199, 3600, 3600, false},
		{3599, 10801, 3600, 10800, true},
		{600, 3000, 3600, 0, false},
	} {
		hfrom, hto, ok := hourSpan(c.from, c.to)
		if hfrom != c.hfrom || hto != c.hto || ok != c.ok {
			t.Errorf("hourSpan(%d, %d) = %d, %d, %v; want %d, %d, %v", c.from, c.to, hfrom, hto, ok, c.hfrom, c.hto, c.ok)
		}
	}
	s := &Store{}
	base := time.Unix(1_800_000_000, 0).UTC().Truncate(time.Hour)
	for _, c := range []struct {
		start, end time.Time
		step       time.Duration
		series     bool
		hourly     bool
		head, tail bool
	}{
		{base, base.Add(24 * time.Hour), time.Hour, true, true, false, false},
		{base, base.Add(24 * time.Hour), 3 * time.Hour, true, true, false, false},
		{base.Add(17 * time.Minute), base.Add(5 * time.Hour), time.Hour, true, true, true, false},
		{base, base.Add(24 * time.Hour), 30 * time.Minute, true, false, false, false},
		{base, base.Add(24 * time.Hour), 90 * time.Minute, true, false, false, false},
		{base.Add(10 * time.Minute), base.Add(50 * time.Minute), time.Hour, true, false, false, false},
		{base.Add(10 * time.Minute), base.Add(3*time.Hour + time.Second), 0, false, true, true, true},
		{base, base.Add(3*time.Hour + 30*time.Minute), 0, false, true, false, true},
		{base.Add(10 * time.Minute), base.Add(70 * time.Minute), 0, false, false, false, false},
	} {
		s.cfg = Config{}.withDefaults()
		v, err := s.checkLatency(report.LatencyQuery{Service: "s", Environment: "e", Start: c.start, End: c.end, Step: c.step}, c.series)
		if err != nil {
			t.Fatal(err)
		}
		if v.Hourly != c.hourly || v.Head != c.head || v.Tail != c.tail {
			t.Errorf("%s–%s step %s series %v: hourly/head/tail %v %v %v, want %v %v %v", c.start, c.end, c.step, c.series,
				v.Hourly, v.Head, v.Tail, c.hourly, c.head, c.tail)
		}
	}
}

// templateParams are the parameters each query may bind.
var templateParams = map[string][]string{
	"deployments": {"range_scan_from", "range_scan_to", "before_scan_from", "before_scan_to", "after_scan_from", "after_scan_to",
		"from_ns", "to_ns", "before_horizon_ns", "after_horizon_ns", "limit", "service", "environment", "status_failed", "source_inferred"},
	"deployment_by_id": {"id", "source_inferred"},
	"windows":          {"units", "services", "environments", "from", "to"},
	"latency":          {"service", "environment", "operation", "version", "from", "to", "hfrom", "hto", "step", "limit"},
	"units":            {"since", "environment", "limit", "status_failed"},
	"episodes":         {"reappear_ns", "service", "environment", "before", "since"},
	"inferred_units":   nil,
}

// templateVariants are every variant of every query the store renders.
func templateVariants() map[string][]any {
	variants := map[string][]any{
		"deployment_by_id": {nil},
		"windows":          {nil},
		"units":            {struct{ Environment bool }{false}, struct{ Environment bool }{true}},
		"inferred_units":   {nil},
	}
	for _, svc := range []bool{false, true} {
		for _, env := range []bool{false, true} {
			variants["deployments"] = append(variants["deployments"],
				deploymentsVariant{Parts: []string{"range", "before", "after"}, Service: svc, Environment: env},
				deploymentsVariant{Parts: []string{"range"}, Service: svc, Environment: env})
			for _, before := range []bool{false, true} {
				for _, since := range []bool{false, true} {
					variants["episodes"] = append(variants["episodes"], episodesVariant{Service: svc, Environment: env, Before: before, Since: since})
				}
			}
		}
	}
	for _, g := range []report.GroupBy{report.GroupByNone, report.GroupByVersion, report.GroupByOperation} {
		expr, _ := groupExpr(g)
		for _, series := range []bool{false, true} {
			for _, hv := range []latencyVariant{{}, {Hourly: true}, {Hourly: true, Head: true}, {Hourly: true, Tail: true}, {Hourly: true, Head: true, Tail: true}} {
				hv.Series, hv.Group = series, expr
				variants["latency"] = append(variants["latency"], hv)
				hv.Operation, hv.Version = true, true
				variants["latency"] = append(variants["latency"], hv)
			}
		}
	}
	return variants
}

func TestSQLTemplates(t *testing.T) {
	tmpl, err := loadTemplates("changelens")
	if err != nil {
		t.Fatal(err)
	}
	s := &Store{tmpl: tmpl}
	bound := templateParams
	variants := templateVariants()
	if len(variants) != len(sqlNames(t)) {
		t.Errorf("variants of %d queries, sql/ has %d", len(variants), len(sqlNames(t)))
	}
	param := regexp.MustCompile(`@([a-z_]+)`)
	for name, vs := range variants {
		for _, v := range vs {
			q, err := s.sql(name, v)
			if err != nil {
				t.Fatalf("%s %+v: %v", name, v, err)
			}
			if strings.Contains(q, "{{") || strings.Contains(q, "{db}") || strings.Contains(q, "--") {
				t.Errorf("%s: residue in\n%s", name, q)
			}
			if !strings.Contains(q, "`changelens`.") {
				t.Errorf("%s: database not qualified", name)
			}
			for _, m := range param.FindAllStringSubmatch(q, -1) {
				ok := false
				for _, b := range bound[name] {
					ok = ok || b == m[1]
				}
				if !ok {
					t.Errorf("%s: @%s is not bound", name, m[1])
				}
			}
		}
	}
	if _, ok := groupExpr(report.GroupBy(7)); ok {
		t.Error("unknown GroupBy accepted")
	}
}

func TestJoinEpisodes(t *testing.T) {
	u := unitFilter{"cart", "prod"}
	const re = 600
	old := map[unitFilter]unitEpisodes{u: {
		"1": {{Version: "1", First: 0, Last: 1000}, {Version: "1", First: 5000, Last: 9000}},
		"2": {{Version: "2", First: 100, Last: 200}},
	}}
	recent := map[unitFilter]unitEpisodes{
		u: {
			"1": {{Version: "1", First: 9599, Last: 9900}, {Version: "1", First: 20000, Last: 21000}}, // joins (gap 599)
			"2": {{Version: "2", First: 800, Last: 900}},                                              // does not (gap 600)
			"3": {{Version: "3", First: 9000, Last: 9100}},
		},
		{"new", "prod"}: {"a": {{Version: "a", First: 1, Last: 2}}},
	}
	got := joinEpisodes(old, recent, re)
	want := map[unitFilter]unitEpisodes{
		u: {
			"1": {{Version: "1", First: 0, Last: 1000}, {Version: "1", First: 5000, Last: 9900}, {Version: "1", First: 20000, Last: 21000}},
			"2": {{Version: "2", First: 100, Last: 200}, {Version: "2", First: 800, Last: 900}},
			"3": {{Version: "3", First: 9000, Last: 9100}},
		},
		{"new", "prod"}: {"a": {{Version: "a", First: 1, Last: 2}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("joined = %+v\nwant %+v", got, want)
	}
	if old[u]["1"][1].Last != 9000 {
		t.Error("joinEpisodes modified its input")
	}
}

// sqlNames are the queries in sql/.
func sqlNames(t *testing.T) []string {
	t.Helper()
	entries, err := sqlFiles.ReadDir("sql")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".sql"))
	}
	return names
}
