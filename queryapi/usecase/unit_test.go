package usecase

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/limits"
	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/store"
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
	c := Config{}.withDefaults()
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	if c.Limits != limits.Default() || c.Analysis != analysis.DefaultConfig() || c.Now == nil {
		t.Errorf("defaults %+v", c)
	}
	for name, mut := range map[string]func(*Config){
		"page":     func(c *Config) { c.Limits.DefaultPageSize = c.Limits.MaxPageSize + 1 },
		"timeout":  func(c *Config) { c.Limits.QueryTimeout = -1 },
		"analysis": func(c *Config) { c.Analysis.Alpha = 2 },
		"lookback": func(c *Config) { c.UnitsLookback = -time.Hour },
		"settle":   func(c *Config) { c.EpisodesSettle = -time.Hour },
	} {
		c := Config{}.withDefaults()
		mut(&c)
		if c.validate() == nil {
			t.Errorf("%s: invalid config accepted", name)
		}
	}
}

func TestLRU(t *testing.T) {
	c := newLRU[string, cached](2)
	c.put("a", cached{stats: store.WindowPair{{Requests: 1}}})
	c.put("b", cached{stats: store.WindowPair{{Requests: 2}}})
	if _, ok := c.get("a"); !ok { // a is now the most recent
		t.Fatal("a missing")
	}
	c.put("c", cached{stats: store.WindowPair{{Requests: 3}}}) // evicts b
	if _, ok := c.get("b"); ok {
		t.Error("b not evicted")
	}
	if p, ok := c.get("c"); !ok || p.stats[0].Requests != 3 || c.len() != 2 {
		t.Error("c missing")
	}
	c.put("c", cached{stats: store.WindowPair{{Requests: 4}}})
	if p, _ := c.get("c"); p.stats[0].Requests != 4 || c.len() != 2 {
		t.Error("update")
	}
}

func TestJoinEpisodes(t *testing.T) {
	u := unitFilter{Service: "cart", Environment: "prod"}
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
		{Service: "new", Environment: "prod"}: {"a": {{Version: "a", First: 1, Last: 2}}},
	}
	got := joinEpisodes(old, recent, re)
	want := map[unitFilter]unitEpisodes{
		u: {
			"1": {{Version: "1", First: 0, Last: 1000}, {Version: "1", First: 5000, Last: 9900}, {Version: "1", First: 20000, Last: 21000}},
			"2": {{Version: "2", First: 100, Last: 200}, {Version: "2", First: 800, Last: 900}},
			"3": {{Version: "3", First: 9000, Last: 9100}},
		},
		{Service: "new", Environment: "prod"}: {"a": {{Version: "a", First: 1, Last: 2}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("joined = %+v\nwant %+v", got, want)
	}
	if old[u]["1"][1].Last != 9000 {
		t.Error("joinEpisodes modified its input")
	}
}
