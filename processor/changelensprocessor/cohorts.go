package changelensprocessor

import (
	"encoding/binary"
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
	units map[unitKey]map[dimKey]*dimState
}

// dimKey names a dimension without building its string: a flag key or an
// attribute name.
type dimKey struct {
	flag bool
	name string
}

// dimState is one dimension of one unit: the attribute it is written to
// (built once) and the values seen.
type dimState struct {
	attr   string
	values map[string]struct{}
}

func newCohorts(cfg CohortsConfig) *cohorts {
	if !cfg.FeatureFlags && len(cfg.Attributes) == 0 {
		return nil
	}
	c := &cohorts{flags: cfg.FeatureFlags, attrs: cfg.Attributes, maxKeys: cfg.MaxKeysPerUnit,
		maxValues: cfg.MaxValuesPerKey, maxUnits: cfg.MaxUnits, units: map[unitKey]map[dimKey]*dimState{}}
	if len(cfg.FlagKeys) > 0 {
		c.flagKeys = map[string]bool{}
		for _, k := range cfg.FlagKeys {
			c.flagKeys[k] = true
		}
	}
	return c
}

func (k dimKey) attr() string {
	if k.flag {
		return eventspan.AttrCohortPrefix + eventspan.DimensionFeatureFlag + k.name
	}
	return eventspan.AttrCohortPrefix + eventspan.DimensionAttribute + k.name
}

// admit returns the attribute and value to record for dimension k of unit
// u, or ok false when the dimension is not recorded.
func (c *cohorts) admit(u unitKey, k dimKey, value string, folds *[numFoldReasons]int64) (attr, v string, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	dims, ok := c.units[u]
	if !ok {
		if len(c.units) >= c.maxUnits {
			folds[foldUnits]++
			return k.attr(), otherValue, true
		}
		dims = map[dimKey]*dimState{}
		c.units[unitKey{strings.Clone(u.service), strings.Clone(u.environment)}] = dims
	}
	d, ok := dims[k]
	if !ok {
		if len(dims) >= c.maxKeys {
			folds[foldKeys]++
			return "", "", false
		}
		d = &dimState{attr: k.attr(), values: map[string]struct{}{}}
		dims[dimKey{k.flag, strings.Clone(k.name)}] = d
	}
	if _, ok := d.values[value]; ok {
		return d.attr, value, true
	}
	if len(d.values) >= c.maxValues {
		folds[foldValues]++
		return d.attr, otherValue, true
	}
	d.values[strings.Clone(value)] = struct{}{}
	return d.attr, value, true
}

type flagEval struct{ key, variant string }

// flagEntry is the evaluations recorded on a span or its descendants.
type flagEntry struct {
	trace pcommon.TraceID
	evals []flagEval
}

// flagMap maps span IDs to the feature-flag evaluations recorded on the
// span or on its descendants in the batch (a flag evaluated deep in a
// request belongs to the request's entry span). Keyed by the span ID alone,
// a cheap 8-byte key; the trace ID in the entry rules out another trace's
// span with the same ID.
type flagMap map[uint64]flagEntry

func spanKey(id pcommon.SpanID) uint64 { return binary.LittleEndian.Uint64(id[:]) }

func (m flagMap) of(s ptrace.Span) []flagEval {
	if e, ok := m[spanKey(s.SpanID())]; ok && e.trace == s.TraceID() {
		return e.evals
	}
	return nil
}

// flagIndex builds the flagMap of td; nil when td has no evaluations.
func flagIndex(td ptrace.Traces) flagMap {
	// One backing array of evaluations; each flagged span holds a range.
	type flagged struct {
		trace        pcommon.TraceID
		span, parent pcommon.SpanID
		start, end   int
	}
	var (
		all        []flagEval
		spans      []flagged
		withParent bool
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
					f := flagged{s.TraceID(), s.SpanID(), s.ParentSpanID(), start, len(all)}
					spans = append(spans, f)
					withParent = withParent || !f.parent.IsEmpty()
				}
			}
		}
	}
	if len(spans) == 0 {
		return nil
	}
	out := make(flagMap, 2*len(spans))
	add := func(trace pcommon.TraceID, span pcommon.SpanID, fs []flagEval) {
		k := spanKey(span)
		switch have, ok := out[k]; {
		case !ok:
			out[k] = flagEntry{trace, fs}
		case have.trace == trace:
			out[k] = flagEntry{trace, append(have.evals, fs...)}
		}
	}
	if !withParent { // the evaluations are all on root spans
		for _, f := range spans {
			add(f.trace, f.span, all[f.start:f.end:f.end])
		}
		return out
	}
	// Parents of the spans of the traces that have evaluations only (by the
	// low half of the trace ID: a collision only adds entries).
	traces := make(map[uint64]struct{}, len(spans))
	for _, f := range spans {
		traces[binary.LittleEndian.Uint64(f.trace[8:])] = struct{}{}
	}
	type parentOf struct {
		trace  pcommon.TraceID
		parent pcommon.SpanID
	}
	parents := make(map[uint64]parentOf, 2*len(spans))
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, s := range ss.Spans().All() {
				tid := s.TraceID()
				if _, ok := traces[binary.LittleEndian.Uint64(tid[8:])]; ok {
					parents[spanKey(s.SpanID())] = parentOf{tid, s.ParentSpanID()}
				}
			}
		}
	}
	var path [maxFlagDepth]pcommon.SpanID
	for _, f := range spans {
		fs := all[f.start:f.end:f.end] // an append in add copies
		cur := f.span
	walk:
		for depth := 0; depth < maxFlagDepth; depth++ {
			// Bad data may link spans in a cycle: each span once.
			for _, seen := range path[:depth] {
				if seen == cur {
					break walk
				}
			}
			path[depth] = cur
			add(f.trace, cur, fs)
			p, ok := parents[spanKey(cur)]
			if !ok || p.trace != f.trace || p.parent.IsEmpty() {
				break
			}
			cur = p.parent
			if _, ok := parents[spanKey(cur)]; !ok {
				break
			}
		}
	}
	return out
}

// maxFlagDepth bounds how many ancestors a flag evaluation is credited to.
const maxFlagDepth = 64

// annotate writes the cohort dimensions of latency event s of unit u.
func (c *cohorts) annotate(s ptrace.Span, u unitKey, res pcommon.Map, flags flagMap, folds *[numFoldReasons]int64) {
	if c.flags && flags != nil {
		evals := flags.of(s)
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
			if attr, v, ok := c.admit(u, dimKey{true, f.key}, f.variant, folds); ok {
				s.Attributes().PutStr(attr, v)
			}
		}
	}
	for _, name := range c.attrs {
		v, ok := s.Attributes().Get(name)
		if !ok {
			v, ok = res.Get(name)
		}
		if !ok {
			continue
		}
		val := v.AsString()
		if val == "" {
			continue
		}
		if attr, val, ok := c.admit(u, dimKey{false, name}, val, folds); ok {
			s.Attributes().PutStr(attr, val)
		}
	}
}
