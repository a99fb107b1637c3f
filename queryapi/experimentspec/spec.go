// Package experimentspec is the format an experiment is defined in — the
// YAML files teams keep in git, which changelens-worker applies, and the
// JSON the worker stores and the API reads back (docs/experiments.md). The
// rules that judge an experiment are queryapi/analysis's; this package only
// says what a definition is and whether it is well formed, so that the
// writer and the readers cannot disagree about it.
package experimentspec

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/changelens/changelens/internal/schema"
	"github.com/changelens/changelens/queryapi/analysis"
)

// Randomization units.
const (
	UnitRequest = "request"
	UnitSession = "session"
	UnitUser    = "user"
)

// Spec is one experiment definition. Field names are the API's
// (changelens.v1.Experiment) and the YAML file's.
type Spec struct {
	ID                string                       `json:"id"`
	Description       string                       `json:"description,omitempty"`
	Unit              analysis.ExperimentUnit      `json:"unit"`
	Dimension         string                       `json:"dimension"`
	Variants          []analysis.ExperimentVariant `json:"variants"`
	PrimaryMetric     *analysis.PrimaryMetric      `json:"primary_metric"`
	Guardrails        []analysis.Guardrail         `json:"guardrails,omitempty"`
	SecondaryMetrics  []string                     `json:"secondary_metrics,omitempty"`
	StartTime         time.Time                    `json:"start_time"`
	PlannedDuration   string                       `json:"planned_duration"`
	Alpha             float64                      `json:"alpha,omitempty"`
	Power             float64                      `json:"power,omitempty"`
	RandomizationUnit string                       `json:"randomization_unit,omitempty"`
	LoadOperations    []string                     `json:"load_operations,omitempty"`
	ConversionOutcome string                       `json:"conversion_outcome,omitempty"`
	Backend           *Backend                     `json:"backend,omitempty"`
}

// Backend is where the server's side of a client experiment is measured:
// the app's variants call a backend unit, whose requests give latency,
// errors, payload and cost. Variants maps each variant to the backend's
// cohort value along Dimension (default: the experiment's, the same
// names) — a GraphQL variant served by its own backend version is how
// CPU per request can be told apart.
type Backend struct {
	Unit      analysis.ExperimentUnit `json:"unit"`
	Dimension string                  `json:"dimension,omitempty"`
	Variants  map[string]string       `json:"variants,omitempty"`
}

// CohortDimension is the cohort reads' name of an experiment's dimension:
// flag:<key> is feature_flag.<key>; the others are the same.
func CohortDimension(d string) string {
	if key, ok := strings.CutPrefix(d, "flag:"); ok {
		return schema.DimensionFeatureFlag + key
	}
	return d
}

// ServerSide is where the server metrics of s are read: the unit, the
// cohort dimension ("version", "feature_flag.<key>", "attribute.<name>")
// and each variant's value there.
func (s Spec) ServerSide() (unit analysis.ExperimentUnit, dimension string, value func(variant string) string) {
	unit, dimension = s.Unit, s.Dimension
	var m map[string]string
	if b := s.Backend; b != nil {
		unit, m = b.Unit, b.Variants
		if b.Dimension != "" {
			dimension = b.Dimension
		}
	}
	return unit, CohortDimension(dimension), func(v string) string {
		if x, ok := m[v]; ok {
			return x
		}
		return v
	}
}

// Parse reads a definition written as YAML or JSON (JSON is YAML). An
// unknown field is an error naming it: a misspelt guardrail must not be
// silently dropped. The result is not validated: call Validate.
func Parse(data []byte) (Spec, error) {
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return Spec{}, err
	}
	if doc == nil {
		return Spec{}, errors.New("empty definition")
	}
	js, err := json.Marshal(normalize(doc))
	if err != nil {
		return Spec{}, err
	}
	return decodeJSON(js)
}

func decodeJSON(js []byte) (Spec, error) {
	var s Spec
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return Spec{}, &analysis.FieldError{Field: te.Field, Problem: "a " + te.Value + " where a " + te.Type.String() + " belongs"}
		}
		if field, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return Spec{}, &analysis.FieldError{Field: strings.Trim(field, `"`), Problem: "unknown field"}
		}
		return Spec{}, err
	}
	return s, nil
}

// Decode reads the stored JSON form.
func Decode(js string) (Spec, error) { return decodeJSON([]byte(js)) }

// normalize turns YAML's decoded values into what encoding/json takes:
// map keys as strings, timestamps as RFC 3339.
func normalize(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			t[k] = normalize(e)
		}
		return t
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[fmt.Sprint(k)] = normalize(e)
		}
		return m
	case []any:
		for i, e := range t {
			t[i] = normalize(e)
		}
		return t
	case time.Time:
		return t.UTC().Format(time.RFC3339Nano)
	}
	return v
}

var (
	idRe       = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)
	durationRe = regexp.MustCompile(`^([1-9][0-9]{0,3})([dh])$`)
)

// The times an experiment may start in (the API's ranges), and how many
// arms it may have: each treatment's primary test runs at α/k.
var (
	minStart = time.Unix(0, 0).UTC()
	maxStart = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
)

const maxVariants = 10

// maxDuration is the longest planned duration: an experiment longer than a
// quarter is a rollout, and its data outlive the raw tables' retention.
const maxDuration = 90 * 24 * time.Hour

// ParseDuration reads a planned duration: whole days ("14d") or hours
// ("36h"), 1h to 90d — the API document's pattern, exactly.
func ParseDuration(s string) (time.Duration, error) {
	m := durationRe.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not whole days (14d) or hours (36h)", s)
	}
	n, _ := strconv.Atoi(m[1])
	d := time.Duration(n) * time.Hour
	if m[2] == "d" {
		d *= 24
	}
	if d > maxDuration {
		return 0, fmt.Errorf("at most 90d (2160h), got %s", s)
	}
	return d, nil
}

// Definition is the definition the analysis judges, with defaults applied.
func (s Spec) Definition() analysis.ExperimentDefinition {
	d, _ := ParseDuration(s.PlannedDuration)
	return analysis.ExperimentDefinition{ID: s.ID, Unit: s.Unit, Dimension: s.Dimension, Variants: s.Variants,
		Primary: s.PrimaryMetric, Guardrails: s.Guardrails, PlannedDuration: d, Alpha: s.Alpha, Power: s.Power}.WithDefaults()
}

// End is when the experiment is planned to end.
func (s Spec) End() time.Time {
	d, _ := ParseDuration(s.PlannedDuration)
	return s.StartTime.Add(d)
}

// Randomization is the randomization unit, defaulted.
func (s Spec) Randomization() string {
	if s.RandomizationUnit == "" {
		return UnitRequest
	}
	return s.RandomizationUnit
}

// Validate returns analysis.ValidationErrors naming every bad field, or nil.
func (s Spec) Validate() error {
	var errs analysis.ValidationErrors
	add := func(field, format string, a ...any) {
		errs = append(errs, &analysis.FieldError{Field: field, Problem: fmt.Sprintf(format, a...)})
	}
	if s.ID != "" && !idRe.MatchString(s.ID) {
		add("id", "must match [A-Za-z0-9._-]{1,128}")
	}
	_, err := ParseDuration(s.PlannedDuration)
	switch {
	case s.PlannedDuration == "":
		add("planned_duration", "required (14d, 36h)")
	case err != nil:
		add("planned_duration", "%v", err)
	}
	switch {
	case s.StartTime.IsZero():
		add("start_time", "required (RFC 3339)")
	case s.StartTime.Before(minStart) || !s.StartTime.Before(maxStart):
		add("start_time", "must lie in [1970-01-01, 2100-01-01)")
	}
	if len(s.Variants) > maxVariants {
		add("variants", "at most %d variants, got %d", maxVariants, len(s.Variants))
	}
	switch s.RandomizationUnit {
	case "", UnitRequest, UnitSession, UnitUser:
	default:
		add("randomization_unit", "%q is not request, session or user", s.RandomizationUnit)
	}
	for i, m := range s.SecondaryMetrics {
		if _, ok := analysis.LookupExperimentMetric(m); !ok {
			add(fmt.Sprintf("secondary_metrics[%d]", i), "unknown metric %q", m)
		}
	}
	uses := func(m string) bool {
		if s.PrimaryMetric != nil && s.PrimaryMetric.Metric == m {
			return true
		}
		for _, g := range s.Guardrails {
			if g.Metric == m {
				return true
			}
		}
		for _, x := range s.SecondaryMetrics {
			if x == m {
				return true
			}
		}
		return false
	}
	if (uses(analysis.ExpLoadP50) || uses(analysis.ExpLoadP75) || uses(analysis.ExpLoadP95)) && len(s.LoadOperations) == 0 {
		add("load_operations", "required with load_p50/p75/p95: the span names of the screen or page loads")
	}
	for i, op := range s.LoadOperations {
		if op == "" {
			add(fmt.Sprintf("load_operations[%d]", i), "empty")
		}
	}
	if uses(analysis.ExpConversionRate) && s.ConversionOutcome == "" {
		add("conversion_outcome", "required with conversion_rate: the outcome (processor outcomes[].name) it counts")
	}
	if b := s.Backend; b != nil {
		if b.Unit.Service == "" {
			add("backend.unit.service", "required")
		}
		if b.Unit.Environment == "" {
			add("backend.unit.environment", "required")
		}
		if b.Dimension != "" && !analysis.ValidExperimentDimension(b.Dimension) {
			add("backend.dimension", "%q is not version, flag:<key>, feature_flag.<key> or attribute.<name>", b.Dimension)
		}
		names := map[string]bool{}
		for _, v := range s.Variants {
			names[v.Name] = true
		}
		seen := map[string]string{}
		for _, k := range slices.Sorted(maps.Keys(b.Variants)) {
			v := b.Variants[k]
			switch {
			case !names[k]:
				add("backend.variants."+k, "no variant is named %q", k)
			case v == "":
				add("backend.variants."+k, "empty")
			case seen[v] != "":
				add("backend.variants."+k, "%q is also %s's", v, seen[v])
			}
			seen[v] = k
		}
	}
	if err := s.Definition().Validate(); err != nil {
		var ve analysis.ValidationErrors
		if errors.As(err, &ve) {
			for _, fe := range ve {
				if fe.Field == "planned_duration" && s.PlannedDuration == "" {
					continue // said above
				}
				errs = append(errs, fe)
			}
		} else {
			return err
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// Canonical is the JSON the worker stores and its SHA-256: the same
// definition, however its file is laid out, hashes the same, so applying
// an unchanged file again writes nothing.
func (s Spec) Canonical() (js, hash string) {
	b, _ := json.Marshal(s)
	sum := sha256.Sum256(b)
	return string(b), hex.EncodeToString(sum[:])
}
