package analysis

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// An experiment is defined before it starts (docs/experiments.md): what is
// compared, what decides, what must not get worse, for how long. Deciding
// the success metric and its smallest interesting effect up front is what
// makes the report's decision honest — a metric chosen after looking at the
// results is a metric chosen because it moved.

// Direction says which way a metric should move.
type Direction string

const (
	LowerIsBetter  Direction = "lower_is_better"
	HigherIsBetter Direction = "higher_is_better"
)

// MetricKind is the estimator family of a metric, fixed by its name.
type MetricKind int

const (
	// KindPercentile: a percentile of a histogram of observations (the
	// schema's ±2 % log buckets), in milliseconds.
	KindPercentile MetricKind = iota + 1
	// KindRatio: Σ numerator ÷ Σ denominator over buckets (minutes, hours
	// or randomization units), times the metric's scale.
	KindRatio
	// KindProportion: successes ÷ trials where each trial is an
	// independent unit (a session, a user).
	KindProportion
)

// Experiment metric names (the vocabulary of definitions and reports).
const (
	ExpLatencyP50       = "latency_p50"
	ExpLatencyP95       = "latency_p95"
	ExpLatencyP99       = "latency_p99"
	ExpErrorRate        = "error_rate"
	ExpPayloadSize      = "payload_size"
	ExpCPUPerRequest    = "cpu_per_request"
	ExpMemoryPerRequest = "memory_per_request"
	ExpSelfTime         = "self_time"
	ExpLoadP50          = "load_p50"
	ExpLoadP75          = "load_p75"
	ExpLoadP95          = "load_p95"
	ExpCrashRate        = "crash_rate"
	ExpConversionRate   = "conversion_rate"
	// Retention is retention_d<N>: RetentionMetric(N).
	expRetentionPrefix = "retention_d"
)

// RetentionMetric names the share of a cohort's users seen again N days
// after their first exposure.
func RetentionMetric(days int) string { return expRetentionPrefix + strconv.Itoa(days) }

// ExperimentMetric describes one metric of the vocabulary: how it is
// estimated (docs/experiments.md, "Metrics") and how it reads in a summary.
type ExperimentMetric struct {
	Name string
	Kind MetricKind
	// Quantile of a KindPercentile metric (0.95 for latency_p95).
	Quantile float64
	// Scale multiplies a KindRatio metric's Σnum/Σden (1000: "per 1000
	// requests").
	Scale float64
	// Natural direction: what a guardrail protects and the primary
	// metric's default.
	Direction Direction
	// Label is the summary's name ("load p75", "CPU per request").
	Label string
	// Time: a duration in milliseconds — the summary gives its absolute
	// change ("−200 ms load p75"). Cost: a resource per request — the
	// summary gives the ratio ("2.0 × CPU per request"). Others: the
	// relative change ("−40 % payload").
	Time, Cost bool
	// Category names the guardrail family in a summary ("guardrail cost
	// failed").
	Category string
	// Estimator is the one-line description the report and docs give.
	Estimator string
}

var retentionRe = regexp.MustCompile(`^retention_d([1-9][0-9]{0,2})$`)

// LookupExperimentMetric returns the vocabulary entry of a metric name;
// ok is false for an unknown name.
func LookupExperimentMetric(name string) (ExperimentMetric, bool) {
	pct := func(q float64, label, category string) ExperimentMetric {
		return ExperimentMetric{Name: name, Kind: KindPercentile, Quantile: q, Direction: LowerIsBetter, Label: label, Time: true, Category: category,
			Estimator: "percentile of the merged histograms (interpolated in the ±2 % bucket), Woodruff interval on the log scale, cluster-robust over time buckets"}
	}
	switch name {
	case ExpLatencyP50:
		return pct(0.50, "latency p50", "latency"), true
	case ExpLatencyP95:
		return pct(0.95, "latency p95", "latency"), true
	case ExpLatencyP99:
		return pct(0.99, "latency p99", "latency"), true
	case ExpLoadP50:
		return pct(0.50, "load p50", "load time"), true
	case ExpLoadP75:
		return pct(0.75, "load p75", "load time"), true
	case ExpLoadP95:
		return pct(0.95, "load p95", "load time"), true
	case ExpErrorRate:
		return ExperimentMetric{Name: name, Kind: KindRatio, Scale: 1, Direction: LowerIsBetter, Label: "error rate", Category: "errors",
			Estimator: "Σ errors ÷ Σ requests over time buckets, delta-method variance cluster-robust over buckets"}, true
	case ExpPayloadSize:
		return ExperimentMetric{Name: name, Kind: KindRatio, Scale: 1, Direction: LowerIsBetter, Label: "payload", Category: "payload",
			Estimator: "mean bytes: Σ response bytes ÷ Σ responses, delta-method variance cluster-robust over buckets"}, true
	case ExpCPUPerRequest:
		return ExperimentMetric{Name: name, Kind: KindRatio, Scale: 1000, Direction: LowerIsBetter, Label: "CPU per request", Cost: true, Category: "cost",
			Estimator: "CPU seconds per 1000 requests: Σ CPU seconds ÷ Σ requests × 1000 over the cohort's minutes, delta-method variance cluster-robust over buckets"}, true
	case ExpMemoryPerRequest:
		return ExperimentMetric{Name: name, Kind: KindRatio, Scale: 1000, Direction: LowerIsBetter, Label: "memory per request", Cost: true, Category: "cost",
			Estimator: "memory byte-seconds per 1000 requests: Σ (memory usage × bucket length) ÷ Σ requests × 1000, delta-method variance cluster-robust over buckets"}, true
	case ExpSelfTime:
		return ExperimentMetric{Name: name, Kind: KindRatio, Scale: 1000, Direction: LowerIsBetter, Label: "self time per request (CPU proxy)", Cost: true, Category: "cost",
			Estimator: "proxy for CPU when a process serves every variant: seconds spent in the request's own spans per 1000 requests, delta-method variance cluster-robust over buckets"}, true
	case ExpCrashRate:
		return ExperimentMetric{Name: name, Kind: KindProportion, Direction: LowerIsBetter, Label: "crash rate", Category: "crashes",
			Estimator: "crashed sessions ÷ sessions; Wilson interval per variant, log relative risk (Katz) between variants, Newcombe interval of the difference"}, true
	case ExpConversionRate:
		return ExperimentMetric{Name: name, Kind: KindProportion, Direction: HigherIsBetter, Label: "conversion", Category: "conversion",
			Estimator: "converted units ÷ units; Wilson / log relative risk / Newcombe, or the mean of per-unit values with CUPED when pre-period values exist"}, true
	}
	if m := retentionRe.FindStringSubmatch(name); m != nil {
		return ExperimentMetric{Name: name, Kind: KindProportion, Direction: HigherIsBetter, Label: "retention d" + m[1], Category: "retention",
			Estimator: "users seen again " + m[1] + " days after first exposure ÷ users exposed at least " + m[1] + " days ago; as conversion"}, true
	}
	return ExperimentMetric{}, false
}

// ExperimentMetricNames lists the fixed vocabulary (retention_d<N> as
// retention_d7).
func ExperimentMetricNames() []string {
	return []string{ExpLatencyP50, ExpLatencyP95, ExpLatencyP99, ExpErrorRate, ExpPayloadSize, ExpCPUPerRequest, ExpMemoryPerRequest,
		ExpSelfTime, ExpLoadP50, ExpLoadP75, ExpLoadP95, ExpCrashRate, ExpConversionRate, RetentionMetric(7)}
}

// ExperimentUnit is the deployed unit the experiment runs in.
type ExperimentUnit struct {
	Service     string `json:"service"`
	Environment string `json:"environment"`
}

// ExperimentVariant is one arm. Share is its expected share of the
// randomization units; exactly one variant is the control.
type ExperimentVariant struct {
	Name    string  `json:"name"`
	Control bool    `json:"control,omitempty"`
	Share   float64 `json:"share"`
}

// PrimaryMetric decides SHIP. MinEffect is the minimum effect of interest,
// a relative change signed in the good direction or not (−0.05 and 0.05
// both mean "5 % better"): the power calculation plans for it.
type PrimaryMetric struct {
	Metric    string    `json:"metric"`
	Direction Direction `json:"direction,omitempty"`
	MinEffect float64   `json:"min_effect"`
}

// Guardrail is a metric that must not get worse by more than MaxDegradation
// (relative, ≥ 0: 0.10 tolerates +10 % CPU per request, or −10 %
// conversion). Its bad direction is the metric's natural one.
type Guardrail struct {
	Metric         string  `json:"metric"`
	MaxDegradation float64 `json:"max_degradation"`
}

// ExperimentDefinition is an experiment as defined up front.
type ExperimentDefinition struct {
	ID   string         `json:"id"`
	Unit ExperimentUnit `json:"unit"`
	// Dimension is what the variants are values of: "version", or
	// "flag:<key>" (feature_flag.<key> and attribute.<name>, the cohort
	// dimensions of the same-window comparison, are accepted too).
	Dimension       string              `json:"dimension"`
	Variants        []ExperimentVariant `json:"variants"`
	Primary         *PrimaryMetric      `json:"primary_metric"`
	Guardrails      []Guardrail         `json:"guardrails,omitempty"`
	PlannedDuration time.Duration       `json:"planned_duration"`
	// Alpha (default 0.05) is the false-SHIP rate the decision keeps;
	// Power (default 0.8) the chance the planned duration detects the
	// minimum effect.
	Alpha float64 `json:"alpha,omitempty"`
	Power float64 `json:"power,omitempty"`
}

// FieldError is a problem with one field of a definition; Field is the
// path a client sent ("variants[1].share", "guardrails[0].metric").
type FieldError struct {
	Field, Problem string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

// ErrInvalidExperiment wraps every definition problem: errors.Is finds it,
// errors.As finds the *FieldError of each field.
var ErrInvalidExperiment = errors.New("analysis: invalid experiment definition")

// ValidationErrors is every problem of a definition, in field order.
type ValidationErrors []*FieldError

func (v ValidationErrors) Error() string {
	parts := make([]string, len(v))
	for i, e := range v {
		parts[i] = e.Error()
	}
	return "invalid experiment definition: " + strings.Join(parts, "; ")
}

// Unwrap lets errors.Is(err, ErrInvalidExperiment) and errors.As(err,
// **FieldError) see the problems.
func (v ValidationErrors) Unwrap() []error {
	out := []error{ErrInvalidExperiment}
	for _, e := range v {
		out = append(out, e)
	}
	return out
}

// WithDefaults returns d with Alpha 0.05, Power 0.8 and the primary
// metric's natural direction where they are unset.
func (d ExperimentDefinition) WithDefaults() ExperimentDefinition {
	if d.Alpha == 0 {
		d.Alpha = 0.05
	}
	if d.Power == 0 {
		d.Power = 0.8
	}
	if d.Primary != nil && d.Primary.Direction == "" {
		p := *d.Primary
		if m, ok := LookupExperimentMetric(p.Metric); ok {
			p.Direction = m.Direction
		}
		d.Primary = &p
	}
	return d
}

var dimensionRe = regexp.MustCompile(`^(version|flag:[A-Za-z0-9_.\-/:]+|feature_flag\.[A-Za-z0-9_.\-/]+|attribute\.[A-Za-z0-9_.\-]+)$`)

// ValidExperimentDimension reports whether d names what an experiment's
// variants may be values of: version, flag:<key>, feature_flag.<key> or
// attribute.<name>.
func ValidExperimentDimension(d string) bool { return dimensionRe.MatchString(d) }

// Validate checks a definition (after WithDefaults) and returns
// ValidationErrors naming every bad field, or nil.
func (d ExperimentDefinition) Validate() error {
	d = d.WithDefaults()
	var errs ValidationErrors
	add := func(field, format string, a ...any) {
		errs = append(errs, &FieldError{Field: field, Problem: fmt.Sprintf(format, a...)})
	}
	if strings.TrimSpace(d.ID) == "" {
		add("id", "required")
	}
	if d.Unit.Service == "" {
		add("unit.service", "required")
	}
	if d.Unit.Environment == "" {
		add("unit.environment", "required")
	}
	if !dimensionRe.MatchString(d.Dimension) {
		add("dimension", "%q is not version, flag:<key>, feature_flag.<key> or attribute.<name>", d.Dimension)
	}
	if len(d.Variants) < 2 {
		add("variants", "at least two variants (a control and a treatment), got %d", len(d.Variants))
	}
	controls, sum := 0, 0.0
	seen := map[string]bool{}
	for i, v := range d.Variants {
		f := fmt.Sprintf("variants[%d]", i)
		switch {
		case v.Name == "":
			add(f+".name", "required")
		case seen[v.Name]:
			add(f+".name", "duplicate variant %q", v.Name)
		}
		seen[v.Name] = true
		if !(v.Share > 0 && v.Share < 1) {
			add(f+".share", "must be in (0, 1), got %v", v.Share)
		}
		sum += v.Share
		if v.Control {
			controls++
		}
	}
	if len(d.Variants) >= 2 {
		if controls != 1 {
			add("variants", "exactly one control variant, got %d", controls)
		}
		if math.Abs(sum-1) > 1e-6 && !math.IsNaN(sum) {
			add("variants", "shares sum to %v, not 1", sum)
		}
	}
	if d.Primary == nil || d.Primary.Metric == "" {
		add("primary_metric", "required")
	} else {
		if _, ok := LookupExperimentMetric(d.Primary.Metric); !ok {
			add("primary_metric.metric", "unknown metric %q (known: %s, retention_d<N>)", d.Primary.Metric, strings.Join(ExperimentMetricNames()[:13], ", "))
		}
		if d.Primary.Direction != LowerIsBetter && d.Primary.Direction != HigherIsBetter {
			add("primary_metric.direction", "%q is not lower_is_better or higher_is_better", d.Primary.Direction)
		}
		if e := math.Abs(d.Primary.MinEffect); !(e > 0 && e < 1) {
			add("primary_metric.min_effect", "a relative change in (0, 1) is required (0.05 for 5 %%), got %v", d.Primary.MinEffect)
		}
	}
	gseen := map[string]bool{}
	for i, g := range d.Guardrails {
		f := fmt.Sprintf("guardrails[%d]", i)
		if _, ok := LookupExperimentMetric(g.Metric); !ok {
			add(f+".metric", "unknown metric %q", g.Metric)
		} else if gseen[g.Metric] {
			add(f+".metric", "duplicate guardrail %q", g.Metric)
		}
		gseen[g.Metric] = true
		if !(g.MaxDegradation >= 0 && g.MaxDegradation < 10) {
			add(f+".max_degradation", "a relative change in [0, 10) is required, got %v", g.MaxDegradation)
		}
	}
	if d.PlannedDuration < time.Hour {
		add("planned_duration", "at least 1h, got %v", d.PlannedDuration)
	}
	if !(d.Alpha > 0 && d.Alpha < 0.5) {
		add("alpha", "must be in (0, 0.5), got %v", d.Alpha)
	}
	if !(d.Power > 0.5 && d.Power < 1) {
		add("power", "must be in (0.5, 1), got %v", d.Power)
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// control returns the control variant's index.
func (d ExperimentDefinition) control() int {
	for i, v := range d.Variants {
		if v.Control {
			return i
		}
	}
	return 0
}

// metrics returns the primary metric then the guardrails, each once.
func (d ExperimentDefinition) metrics() []string {
	out := []string{d.Primary.Metric}
	for _, g := range d.Guardrails {
		if g.Metric != d.Primary.Metric {
			out = append(out, g.Metric)
		}
	}
	return out
}
