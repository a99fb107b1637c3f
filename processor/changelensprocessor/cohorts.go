package changelensprocessor

import (
	"strings"
	"sync"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/changelens/changelens/internal/eventspan"
)

// Semantic-convention names of feature-flag evaluations (span events).
const (
	flagEventName     = "feature_flag.evaluation"
	flagKeyAttr       = "feature_flag.key"
	flagVariantAttr   = "feature_flag.result.variant"
	flagVariantAttrV0 = "feature_flag.variant" // before semconv 1.32
)

// otherValue is what values beyond a key's bound fold into.
const otherValue = "__other__"

// foldReason indexes the cohort_folds metric's "reason" attribute.
type foldReason int

const (
	foldValues foldReason = iota // a key had max_values_per_key values: the value became __other__
	foldKeys                     // a unit had max_keys_per_unit keys: the dimension was not recorded
	foldUnits                    // max_units units were tracked: the value became __other__
	numFoldReasons
)

var foldReasonNames = [numFoldReasons]string{"values", "keys", "units"}

// cohorts records the cohort dimensions of latency events (feature-flag
// variants and listed attributes) within bounds. Only the bounds keep
// state: the keys and values each unit has used.
type cohorts struct {
	flags     bool
	flagKeys  map[string]bool // nil: any flag, up to maxKeys per unit
	attrs     []string
	maxKeys   int
	maxValues int
	maxUnits  int

	mu    sync.Mutex
	units map[unitKey]map[string]map[string]struct{} // unit → dimension → values
}

func newCohorts(cfg CohortsConfig) *cohorts {
	if !cfg.FeatureFlags && len(cfg.Attributes) == 0 {
		return nil
	}
	c := &cohorts{flags: cfg.FeatureFlags, attrs: cfg.Attributes, maxKeys: cfg.MaxKeysPerUnit,
		maxValues: cfg.MaxValuesPerKey, maxUnits: cfg.MaxUnits, units: map[unitKey]map[string]map[string]struct{}{}}
	if len(cfg.FlagKeys) > 0 {
		c.flagKeys = map[string]bool{}
		for _, k := range cfg.FlagKeys {
			c.flagKeys[k] = true
		}
	}
	return c
}

// admit returns the value to record for dimension dim of unit u, or ok
// false when the dimension is not recorded.
func (c *cohorts) admit(u unitKey, dim, value string, folds *[numFoldReasons]int64) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	dims, ok := c.units[u]
	if !ok {
		if len(c.units) >= c.maxUnits {
			folds[foldUnits]++
			return otherValue, true
		}
		dims = map[string]map[string]struct{}{}
		c.units[unitKey{strings.Clone(u.service), strings.Clone(u.environment)}] = dims
	}
	values, ok := dims[dim]
	if !ok {
		if len(dims) >= c.maxKeys {
			folds[foldKeys]++
			return "", false
		}
		values = map[string]struct{}{}
		dims[strings.Clone(dim)] = values
	}
	if _, ok := values[value]; ok {
		return value, true
	}
	if len(values) >= c.maxValues {
		folds[foldValues]++
		return otherValue, true
	}
	values[strings.Clone(value)] = struct{}{}
	return value, true
}

type spanRef struct {
	trace pcommon.TraceID
	span  pcommon.SpanID
}

type flagEval struct{ key, variant string }

// flagIndex maps every span of td to the feature-flag evaluations recorded
// on it or on its descendants in td (a flag evaluated deep in a request
// belongs to the request's entry span). nil when td has none.
func flagIndex(td ptrace.Traces) map[spanRef][]flagEval {
	// One backing array of evaluations; each flagged span holds a range.
	type flagged struct {
		ref        spanRef
		start, end int
	}
	var (
		all   []flagEval
		spans []flagged
	)
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, s := range ss.Spans().All() {
				if s.Events().Len() == 0 {
					continue
				}
				start := len(all)
				for _, e := range s.Events().All() {
					if e.Name() != flagEventName {
						continue
					}
					a := e.Attributes()
					key := strAttr(a, flagKeyAttr)
					variant := strAttr(a, flagVariantAttr)
					if variant == "" {
						variant = strAttr(a, flagVariantAttrV0)
					}
					if key != "" && variant != "" {
						all = append(all, flagEval{key, variant})
					}
				}
				if len(all) > start {
					spans = append(spans, flagged{spanRef{s.TraceID(), s.SpanID()}, start, len(all)})
				}
			}
		}
	}
	if len(spans) == 0 {
		return nil
	}
	// Parents of the spans of the traces that have evaluations only.
	traces := make(map[pcommon.TraceID]struct{}, len(spans))
	for _, f := range spans {
		traces[f.ref.trace] = struct{}{}
	}
	parents := make(map[spanRef]pcommon.SpanID, 2*len(spans))
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, s := range ss.Spans().All() {
				if _, ok := traces[s.TraceID()]; ok {
					parents[spanRef{s.TraceID(), s.SpanID()}] = s.ParentSpanID()
				}
			}
		}
	}
	out := make(map[spanRef][]flagEval, 2*len(spans))
	for _, f := range spans {
		fs := all[f.start:f.end:f.end] // an append below copies
		cur := f.ref
		for depth := 0; depth < 64; depth++ { // a cycle in bad data ends here
			if have := out[cur]; have == nil {
				out[cur] = fs
			} else {
				out[cur] = append(have, fs...)
			}
			p, ok := parents[cur]
			if !ok || p.IsEmpty() {
				break
			}
			cur = spanRef{f.ref.trace, p}
			if _, ok := parents[cur]; !ok {
				break
			}
		}
	}
	return out
}

// annotate writes the cohort dimensions of latency event s of unit u.
func (c *cohorts) annotate(s ptrace.Span, u unitKey, res pcommon.Map, flags map[spanRef][]flagEval, folds *[numFoldReasons]int64) {
	if c.flags && flags != nil {
		evals := flags[spanRef{s.TraceID(), s.SpanID()}]
		for i, f := range evals {
			if c.flagKeys != nil && !c.flagKeys[f.key] {
				continue
			}
			dup := false
			for _, g := range evals[:i] {
				dup = dup || g.key == f.key
			}
			if dup { // evaluated twice in one request: the first counts
				continue
			}
			dim := eventspan.DimensionFeatureFlag + f.key
			if v, ok := c.admit(u, dim, f.variant, folds); ok {
				s.Attributes().PutStr(eventspan.AttrCohortPrefix+dim, v)
			}
		}
	}
	for _, name := range c.attrs {
		v, ok := s.Attributes().Get(name)
		if !ok {
			v, ok = res.Get(name)
		}
		if !ok || v.AsString() == "" {
			continue
		}
		dim := eventspan.DimensionAttribute + name
		if val, ok := c.admit(u, dim, v.AsString(), folds); ok {
			s.Attributes().PutStr(eventspan.AttrCohortPrefix+dim, val)
		}
	}
}
