package teams

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const good = `
teams:
  - name: shop
    services: [storefront, catalog]
  - name: payments
    services: [checkout, payments]
    targets:
      deployment_frequency_per_day: 2
      lead_time_hours: 24
      change_failure_rate: 0.15
      recovery_time_hours: 1
      rework_rate: 0.10
    focus:
      2026-Q4: lead_time
      2026-Q3: change_failure_rate
`

func TestParse(t *testing.T) {
	m, err := Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	ts := m.Teams()
	if len(ts) != 2 || ts[0].Name != "payments" || ts[1].Name != "shop" {
		t.Fatalf("teams not sorted by name: %+v", ts)
	}
	p := ts[0]
	if strings.Join(p.Services, ",") != "checkout,payments" || !p.Has("checkout") || p.Has("catalog") {
		t.Errorf("services = %v", p.Services)
	}
	if *p.Targets.LeadTimeHours != 24 || *p.Targets.ChangeFailureRate != 0.15 || ts[1].Targets.LeadTimeHours != nil {
		t.Errorf("targets = %+v / %+v", p.Targets, ts[1].Targets)
	}
	if p.Targets.Target("lead_time") != 86400 || p.Targets.Target("failed_deployment_recovery_time") != 3600 ||
		p.Targets.Target("deployment_frequency") != 2 || !math.IsNaN(ts[1].Targets.Target("rework_rate")) {
		t.Error("Target: hours not converted to seconds or missing target not NaN")
	}
	if len(p.Focus) != 2 || p.Focus[0].Period != "2026-Q3" || p.FocusFor("2026-Q4") != "lead_time" || p.FocusFor("2025-Q1") != "" {
		t.Errorf("focus = %+v", p.Focus)
	}
	if _, ok := m.Team("shop"); !ok {
		t.Error("Team(shop) not found")
	}
	if _, ok := m.Team("nope"); ok {
		t.Error("Team(nope) found")
	}
	var nilMap *Mapping
	if len(nilMap.Teams()) != 0 {
		t.Error("nil mapping has teams")
	}
}

func TestParseErrorsNameTeamAndField(t *testing.T) {
	for _, c := range []struct{ doc, want string }{
		{"teams:\n  - name: Bad_Name\n    services: [a]\n", `team "Bad_Name": name:`},
		{"teams:\n  - services: [a]\n", `teams[0]: name:`},
		{"teams:\n  - name: a\n    services: [x]\n  - name: a\n    services: [y]\n", `team "a": name: defined twice`},
		{"teams:\n  - name: a\n", `team "a": services: at least one`},
		{"teams:\n  - name: a\n    services: [x]\n  - name: b\n    services: [x]\n", `team "b": services: "x" already belongs to team "a"`},
		{"teams:\n  - name: a\n    services: [x]\n    targets:\n      change_failure_rate: 1.5\n", `team "a": targets.change_failure_rate: must be between 0 and 1`},
		{"teams:\n  - name: a\n    services: [x]\n    targets:\n      lead_time_hours: -1\n", `team "a": targets.lead_time_hours: must be positive`},
		{"teams:\n  - name: a\n    services: [x]\n    targets:\n      lead_time: 3\n", `field lead_time not found`},
		{"teams:\n  - name: a\n    services: [x]\n    focus:\n      2026-Q5: lead_time\n", `team "a": focus: "2026-Q5" is not a quarter`},
		{"teams:\n  - name: a\n    services: [x]\n    focus:\n      2026-Q1: speed\n", `team "a": focus.2026-Q1: "speed" is not a metric`},
	} {
		_, err := Parse([]byte(c.doc))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", c.doc, err, c.want)
		}
	}
}

func TestLoadNamesFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "teams.yaml")
	if err := os.WriteFile(p, []byte("teams:\n  - name: a\n    services: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(p)
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), `team "a": services`) {
		t.Fatalf("Load = %v, want the file, team and field named", err)
	}
	m, err := Load(filepath.Join("..", "..", "deploy", "local", "teams.yaml"))
	if err != nil || len(m.Teams()) < 2 {
		t.Fatalf("the demo teams file: %v (%d teams)", err, len(m.Teams()))
	}
}

func TestParsePeriod(t *testing.T) {
	day := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
	for _, c := range []struct {
		in, prev, quarter string
		start, end        time.Time
	}{
		{"2026-Q4", "2026-Q3", "2026-Q4", day(2026, 10, 1), day(2027, 1, 1)},
		{"2026-Q1", "2025-Q4", "2026-Q1", day(2026, 1, 1), day(2026, 4, 1)},
		{"2026-02", "2026-01", "2026-Q1", day(2026, 2, 1), day(2026, 3, 1)},
		{"2026-01", "2025-12", "2026-Q1", day(2026, 1, 1), day(2026, 2, 1)},
		{"2026-12", "2026-11", "2026-Q4", day(2026, 12, 1), day(2027, 1, 1)},
	} {
		p, err := ParsePeriod(c.in)
		if err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		if !p.Start.Equal(c.start) || !p.End.Equal(c.end) || p.Previous().Name != c.prev || p.Quarter() != c.quarter || p.Name != c.in {
			t.Errorf("%s: [%v, %v) prev %s quarter %s", c.in, p.Start, p.End, p.Previous().Name, p.Quarter())
		}
		if pp := p.Previous(); !pp.End.Equal(p.Start) {
			t.Errorf("%s: previous ends %v, not at the start", c.in, pp.End)
		}
	}
	for _, bad := range []string{"", "2026", "2026-Q0", "2026-Q5", "2026-13", "2026-00", "2026-1", "26-Q1", "2026-q1", "2026-Q1x"} {
		if _, err := ParsePeriod(bad); err == nil {
			t.Errorf("ParsePeriod(%q) accepted", bad)
		}
	}
}

func TestTrend(t *testing.T) {
	nan := math.NaN()
	for _, c := range []struct {
		metric            string
		current, previous float64
		want              string
		change            float64 // NaN: null
	}{
		{"lead_time", 3600, 7200, TrendImproved, -0.5},
		{"lead_time", 7200, 3600, TrendWorsened, 1},
		{"deployment_frequency", 2, 1, TrendImproved, 1},
		{"deployment_frequency", 1, 2, TrendWorsened, -0.5},
		{"change_failure_rate", 0.2, 0.1, TrendWorsened, 1},
		{"rework_rate", 0.05, 0.1, TrendImproved, -0.5},
		{"failed_deployment_recovery_time", 104, 100, TrendUnchanged, 0.04},
		{"deployment_frequency", 0.96, 1, TrendUnchanged, -0.04},
		{"change_failure_rate", 0.1, 0, TrendWorsened, nan},
		{"deployment_frequency", 1, 0, TrendImproved, nan},
		{"change_failure_rate", 0, 0, TrendUnchanged, nan},
		{"lead_time", nan, 3600, TrendNoData, nan},
		{"lead_time", 3600, nan, TrendNoData, nan},
	} {
		change, trend := Trend(c.metric, c.current, c.previous)
		if trend != c.want || (math.IsNaN(c.change) != math.IsNaN(change)) || (!math.IsNaN(c.change) && math.Abs(change-c.change) > 1e-9) {
			t.Errorf("Trend(%s, %v, %v) = %v, %s; want %v, %s", c.metric, c.current, c.previous, change, trend, c.change, c.want)
		}
	}
}

func TestTargetMet(t *testing.T) {
	for _, c := range []struct {
		metric        string
		value, target float64
		met, ok       bool
	}{
		{"deployment_frequency", 2.5, 2, true, true},
		{"deployment_frequency", 1.5, 2, false, true},
		{"lead_time", 3600, 86400, true, true},
		{"lead_time", 90000, 86400, false, true},
		{"change_failure_rate", 0.15, 0.15, true, true},
		{"rework_rate", 0.2, 0.1, false, true},
		{"lead_time", math.NaN(), 86400, false, false},
		{"lead_time", 3600, math.NaN(), false, false},
	} {
		met, ok := TargetMet(c.metric, c.value, c.target)
		if met != c.met || ok != c.ok {
			t.Errorf("TargetMet(%s, %v, %v) = %v, %v", c.metric, c.value, c.target, met, ok)
		}
	}
}
