// Package teams maps services to the teams that own them, with the targets
// and the focus metric each team set for itself (docs/teams.md). Figures are
// only ever grouped by team or service, never by person: the file names no
// people and nothing here reads authors.
package teams

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"github.com/changelens/changelens/queryapi/limits"
)

// Metrics are the DORA metrics a team may focus on, in docs/dora.md order.
var Metrics = []string{"deployment_frequency", "lead_time", "change_failure_rate", "failed_deployment_recovery_time", "rework_rate"}

// Targets are what a team set for itself; nil = no target for that metric.
// Units are those of the YAML file (per day, hours, ratios).
type Targets struct {
	DeploymentFrequencyPerDay *float64 `yaml:"deployment_frequency_per_day"`
	LeadTimeHours             *float64 `yaml:"lead_time_hours"`
	ChangeFailureRate         *float64 `yaml:"change_failure_rate"`
	RecoveryTimeHours         *float64 `yaml:"recovery_time_hours"`
	ReworkRate                *float64 `yaml:"rework_rate"`
}

// Focus is the metric a team picked for one quarter.
type Focus struct {
	Period string // YYYY-Qn
	Metric string // one of Metrics
}

// Team is one team of the file.
type Team struct {
	Name     string
	Services []string
	Targets  Targets
	Focus    []Focus // sorted by period
}

// FocusFor returns the metric the team focused on in quarter ("YYYY-Qn"),
// "" when it set none.
func (t Team) FocusFor(quarter string) string {
	for _, f := range t.Focus {
		if f.Period == quarter {
			return f.Metric
		}
	}
	return ""
}

// Has reports whether the team owns service.
func (t Team) Has(service string) bool { return slices.Contains(t.Services, service) }

// Mapping is a loaded teams file. The zero value (and nil) has no teams.
type Mapping struct {
	teams []Team // sorted by name
}

// Teams returns the teams sorted by name.
func (m *Mapping) Teams() []Team {
	if m == nil {
		return nil
	}
	return m.teams
}

// Team returns the team called name.
func (m *Mapping) Team(name string) (Team, bool) {
	for _, t := range m.Teams() {
		if t.Name == name {
			return t, true
		}
	}
	return Team{}, false
}

// file is the YAML document.
type file struct {
	Teams []struct {
		Name     string            `yaml:"name"`
		Services []string          `yaml:"services"`
		Targets  Targets           `yaml:"targets"`
		Focus    map[string]string `yaml:"focus"`
	} `yaml:"teams"`
}

var nameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// maxNameLen bounds names as the API bounds its parameters.
const maxNameLen = limits.MaxNameLen

// NameRule says what ValidName accepts, for error messages.
var NameRule = fmt.Sprintf("must match [a-z0-9][a-z0-9-]* (at most %d characters)", maxNameLen)

// ValidName reports whether name may name a team: the teams file holds
// only such names, so the API refuses any other before looking it up.
func ValidName(name string) bool { return len(name) <= maxNameLen && nameRe.MatchString(name) }

// Load reads and validates the teams file at path; every error names the
// file and, where it applies, the team and the field.
func Load(path string) (*Mapping, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("teams file: %w", err)
	}
	m, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("teams file %s: %w", path, err)
	}
	return m, nil
}

// Parse validates a teams document. Unknown keys are errors: a misspelt
// target would otherwise be silently dropped.
func Parse(b []byte) (*Mapping, error) {
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	m := &Mapping{}
	owner := map[string]string{} // service → team
	seen := map[string]bool{}
	for i, ft := range f.Teams {
		where := fmt.Sprintf("teams[%d]", i)
		if ft.Name != "" {
			where = fmt.Sprintf("team %q", ft.Name)
		}
		if !ValidName(ft.Name) {
			return nil, fmt.Errorf("%s: name: %s", where, NameRule)
		}
		if seen[ft.Name] {
			return nil, fmt.Errorf("%s: name: defined twice", where)
		}
		seen[ft.Name] = true
		if len(ft.Services) == 0 {
			return nil, fmt.Errorf("%s: services: at least one service", where)
		}
		t := Team{Name: ft.Name, Targets: ft.Targets}
		for _, s := range ft.Services {
			if s == "" || len(s) > maxNameLen || strings.ContainsFunc(s, isControl) {
				return nil, fmt.Errorf("%s: services: %q is not a service name", where, s)
			}
			if o, ok := owner[s]; ok {
				if o == ft.Name {
					return nil, fmt.Errorf("%s: services: %q listed twice", where, s)
				}
				return nil, fmt.Errorf("%s: services: %q already belongs to team %q (a service belongs to at most one team)", where, s, o)
			}
			owner[s] = ft.Name
			t.Services = append(t.Services, s)
		}
		if err := checkTargets(ft.Targets); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		for period, metric := range ft.Focus {
			if p, err := ParsePeriod(period); err != nil || !p.IsQuarter() {
				return nil, fmt.Errorf("%s: focus: %q is not a quarter (YYYY-Qn)", where, period)
			}
			if !slices.Contains(Metrics, metric) {
				return nil, fmt.Errorf("%s: focus.%s: %q is not a metric: one of %s", where, period, metric, strings.Join(Metrics, ", "))
			}
			t.Focus = append(t.Focus, Focus{Period: period, Metric: metric})
		}
		slices.SortFunc(t.Focus, func(a, b Focus) int { return strings.Compare(a.Period, b.Period) })
		m.teams = append(m.teams, t)
	}
	slices.SortFunc(m.teams, func(a, b Team) int { return strings.Compare(a.Name, b.Name) })
	return m, nil
}

func isControl(r rune) bool { return r < 0x20 || (r >= 0x7f && r <= 0x9f) }

// checkTargets: every target is a finite non-negative number; rates are at
// most 1, and durations and frequencies positive (a zero target can never be
// met or is always met, which says nothing).
func checkTargets(t Targets) error {
	for _, c := range []struct {
		field   string
		v       *float64
		isRatio bool
	}{
		{"targets.deployment_frequency_per_day", t.DeploymentFrequencyPerDay, false},
		{"targets.lead_time_hours", t.LeadTimeHours, false},
		{"targets.change_failure_rate", t.ChangeFailureRate, true},
		{"targets.recovery_time_hours", t.RecoveryTimeHours, false},
		{"targets.rework_rate", t.ReworkRate, true},
	} {
		if c.v == nil {
			continue
		}
		v := *c.v
		switch {
		case v != v || v > 1e12:
			return fmt.Errorf("%s: must be a finite number", c.field)
		case c.isRatio && (v < 0 || v > 1):
			return fmt.Errorf("%s: must be between 0 and 1", c.field)
		case !c.isRatio && v <= 0:
			return fmt.Errorf("%s: must be positive", c.field)
		}
	}
	return nil
}
