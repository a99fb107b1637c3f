package experimentspec

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/changelens/changelens/queryapi/analysis"
)

const storyYAML = `
id: graphql-screen
description: GraphQL against REST for the order screen
unit: {service: shop-app, environment: production}
dimension: flag:order-screen-api
variants:
  - {name: rest, control: true, share: 0.5}
  - {name: graphql, share: 0.5}
primary_metric: {metric: load_p75, min_effect: 0.05}
guardrails:
  - {metric: cpu_per_request, max_degradation: 0.10}
  - {metric: crash_rate, max_degradation: 0}
secondary_metrics: [payload_size, conversion_rate]
conversion_outcome: checkout
load_operations: [screen order]
start_time: 2026-11-20T00:00:00Z
planned_duration: 14d
randomization_unit: user
`

func TestParseTheStory(t *testing.T) {
	s, err := Parse([]byte(storyYAML))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	d := s.Definition()
	if d.PlannedDuration != 14*24*time.Hour || d.Alpha != 0.05 || d.Power != 0.8 || d.Primary.Direction != analysis.LowerIsBetter {
		t.Errorf("definition %+v", d)
	}
	if !s.StartTime.Equal(time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)) || !s.End().Equal(time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("start %v end %v", s.StartTime, s.End())
	}
	if s.Randomization() != UnitUser || len(s.Guardrails) != 2 || s.Variants[1].Name != "graphql" {
		t.Errorf("spec %+v", s)
	}
	// The stored form reads back as the same definition, and a different
	// layout of the same definition hashes the same.
	js, hash := s.Canonical()
	back, err := Decode(js)
	if err != nil {
		t.Fatal(err)
	}
	if _, h := back.Canonical(); h != hash {
		t.Errorf("hash changed through the stored form: %s vs %s", h, hash)
	}
	flow := strings.ReplaceAll(storyYAML, "planned_duration: 14d\n", "") + "planned_duration: 14d\n"
	s2, err := Parse([]byte(flow))
	if err != nil {
		t.Fatal(err)
	}
	if _, h := s2.Canonical(); h != hash {
		t.Error("reordering the file changed the hash")
	}
	s2.Guardrails[0].MaxDegradation = 0.2
	if _, h := s2.Canonical(); h == hash {
		t.Error("a changed tolerance kept the hash")
	}
}

// fields returns the fields a validation error names.
func fields(err error) []string {
	var ve analysis.ValidationErrors
	if errors.As(err, &ve) {
		var out []string
		for _, fe := range ve {
			out = append(out, fe.Field)
		}
		return out
	}
	var fe *analysis.FieldError
	if errors.As(err, &fe) {
		return []string{fe.Field}
	}
	return nil
}

func TestBadDefinitionsNameTheField(t *testing.T) {
	for _, tc := range []struct {
		name, from, to, field string
	}{
		{"no primary metric", "primary_metric: {metric: load_p75, min_effect: 0.05}\n", "", "primary_metric"},
		{"unknown metric", "metric: cpu_per_request", "metric: cpu_per_requests", "guardrails[0].metric"},
		{"unknown secondary", "[payload_size, conversion_rate]", "[payload_size, conversions]", "secondary_metrics[1]"},
		{"misspelt field", "guardrails:", "guardrail:", "guardrail"},
		{"wrong type", "share: 0.5}\nprimary", "share: half}\nprimary", "variants.share"},
		{"bad duration", "planned_duration: 14d", "planned_duration: two weeks", "planned_duration"},
		{"too long", "planned_duration: 14d", "planned_duration: 120d", "planned_duration"},
		{"no start", "start_time: 2026-11-20T00:00:00Z\n", "", "start_time"},
		{"bad unit", "randomization_unit: user", "randomization_unit: device", "randomization_unit"},
		{"conversion without outcome", "conversion_outcome: checkout\n", "", "conversion_outcome"},
		{"load without operations", "load_operations: [screen order]\n", "", "load_operations"},
		{"bad id", "id: graphql-screen", "id: graphql screen", "id"},
		{"no service", "service: shop-app, ", "", "unit.service"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(storyYAML, tc.from, tc.to, 1)
			if src == storyYAML {
				t.Fatalf("the case changed nothing")
			}
			s, err := Parse([]byte(src))
			if err == nil {
				err = s.Validate()
			}
			if err == nil {
				t.Fatal("accepted")
			}
			got := fields(err)
			for _, f := range got {
				if f == tc.field {
					return
				}
			}
			t.Errorf("error %q names %v, not %s", err, got, tc.field)
		})
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"14d": 14 * 24 * time.Hour, "36h": 36 * time.Hour, "90d": 90 * 24 * time.Hour, "2160h": 2160 * time.Hour, "1h": time.Hour} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("%s: %v %v", in, got, err)
		}
	}
	for _, in := range []string{"", "2w", "1.5d", "-3d", "90m", "014d", "91d", "2161h", "0h", "1h30m"} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("%s accepted", in)
		}
	}
}
