package changelensprocessor

import (
	"encoding/binary"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/changelens/changelens/internal/eventspan"
)

// Feature-flag evaluations reach the processor in three shapes, all read
// with readFlag:
//
//   - span events named feature_flag.evaluation (or the older
//     feature_flag) on the span active during the evaluation (OpenFeature's
//     Go, Java, .NET and JavaScript span-event hooks);
//   - evaluation spans: a span per evaluation whose name starts with
//     "feature_flag" (feature_flag.evaluation from OpenFeature's JavaScript
//     SpanHook; feature_flag_evaluation.<key> from vendors' hooks) carrying
//     the evaluation as attributes, a child of the span active during it;
//   - log records whose event name is feature_flag.evaluation (or the older
//     feature_flag; the event.name attribute before the log data model had
//     the field), with the active span's trace context (logs.go).
//
// An evaluation of the first two shapes counts for the span it is on and
// every ancestor in the batch: when one of them is an entry span (the usual
// case: SDKs export whole requests), the entry span's latency event carries
// the variant as a cohort dimension (annotate). Otherwise — the request's
// entry span went out in another batch, maybe to another collector — and
// for every log record, the evaluation becomes a flag evaluation event
// (internal/eventspan) that the exporter stores, and the query side credits
// it to the latency events of its unit and trace. Evaluations whose chain of
// ancestors ends at a root in the batch without an entry span belong to no
// request and are not kept.

// flagNamePrefix starts the name of every event and span the processor reads
// as an evaluation: one comparison rules out nearly every other span.
const flagNamePrefix = eventspan.FlagEvaluationEventOld

// maxValueVariant bounds the evaluated values used as variants (when an
// evaluation names no variant): longer values (JSON documents) are no
// cohort.
const maxValueVariant = 128

// isFlagEventName reports whether name is an evaluation event's name.
func isFlagEventName(name string) bool {
	return name == eventspan.FlagEvaluationEvent || name == eventspan.FlagEvaluationEventOld
}

// readFlag reads an evaluation from its attributes: feature_flag.key and
// the variant, which is feature_flag.result.variant, else the older
// feature_flag.variant, else the evaluated value feature_flag.result.value
// as text when it is a string, boolean or number of at most maxValueVariant
// bytes. ok is false without a key or a variant.
func readFlag(a pcommon.Map) (key, variant string, ok bool) {
	var old string
	var value pcommon.Value
	hasValue := false
	for k, v := range a.All() {
		switch k {
		case eventspan.AttrFlagKey:
			key = strValue(v)
		case eventspan.AttrFlagVariant:
			variant = strValue(v)
		case eventspan.AttrFlagVariantOld:
			old = strValue(v)
		case eventspan.AttrFlagValue:
			value, hasValue = v, true
		}
	}
	if variant == "" {
		variant = old
	}
	if variant == "" && hasValue {
		variant = valueVariant(value)
	}
	return key, variant, key != "" && variant != ""
}

func strValue(v pcommon.Value) string {
	if v.Type() == pcommon.ValueTypeStr {
		return v.Str()
	}
	return ""
}

// valueVariant is an evaluated value as a variant: "" when it is not a
// short scalar.
func valueVariant(v pcommon.Value) string {
	var s string
	switch v.Type() {
	case pcommon.ValueTypeStr:
		s = v.Str()
	case pcommon.ValueTypeBool:
		s = strconv.FormatBool(v.Bool())
	case pcommon.ValueTypeInt:
		s = strconv.FormatInt(v.Int(), 10)
	case pcommon.ValueTypeDouble:
		s = strconv.FormatFloat(v.Double(), 'g', -1, 64)
	}
	if len(s) > maxValueVariant {
		return ""
	}
	return s
}

// isEvalSpan reports whether s is an evaluation span.
func isEvalSpan(s ptrace.Span) bool {
	if !strings.HasPrefix(s.Name(), flagNamePrefix) {
		return false
	}
	_, _, ok := readFlag(s.Attributes())
	return ok
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

// flagSource indexes the sources of evaluations (flagSource*) of the
// flag_evaluations metric's "source" attribute.
type flagSource int

const (
	sourceSpanEvent flagSource = iota
	sourceSpan
	sourceLog
	numFlagSources
)

var flagSourceNames = [numFlagSources]string{"span_event", "span", "log"}

// entryRule says which spans are entry spans (the processor's
// entry_spans).
type entryRule struct {
	kinds [8]bool // indexed by ptrace.SpanKind
	root  bool
}

func (r *entryRule) is(s ptrace.Span) bool {
	return r.kinds[s.Kind()&7] || (r.root && s.ParentSpanID().IsEmpty())
}

// orphan is a span's evaluations that no entry span of the batch is
// credited with: they become flag evaluation events.
type orphan struct {
	rs      int // the span's ResourceSpans
	trace   pcommon.TraceID
	context pcommon.SpanID // the span active during the evaluations
	source  flagSource
	start   int // the evaluations: evals[start:end], times[start:end]
	end     int
}

// flagBatch is what flagIndex found in a batch.
type flagBatch struct {
	m flagMap // nil: no evaluation
	// evalSpans says the batch holds evaluation spans, which processSpan
	// then looks for.
	evalSpans bool
	orphans   []orphan
	evals     []flagEval // of the orphans
	times     []int64    // of the orphans' evaluations, unix ns
}

// flagIndex indexes the evaluations of td: which spans they are credited
// to, and which are credited to no entry span of the batch.
func flagIndex(td ptrace.Traces, entry *entryRule) flagBatch {
	// One backing array of evaluations; each flagged span holds a range.
	type flagged struct {
		trace        pcommon.TraceID
		span, parent pcommon.SpanID
		start, end   int
		rs           int
		evalSpan     bool
		entry        bool
	}
	var (
		all        []flagEval
		times      []int64
		spans      []flagged
		withParent bool
		fb         flagBatch
	)
	for ri, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			if k := eventspan.ScopeKind(ss.Scope()); k == eventspan.KindFlagEvaluation || k == eventspan.KindIncident || k == eventspan.KindCommit {
				continue // events already: passed through
			}
			for _, s := range ss.Spans().All() {
				// Most spans have neither events nor a name starting with
				// "f": two cheap checks rule them out.
				name := s.Name()
				hasEvents := s.Events().Len() > 0
				if !hasEvents && (len(name) < len(flagNamePrefix) || name[0] != 'f') {
					continue
				}
				evalSpan := strings.HasPrefix(name, flagNamePrefix)
				if !hasEvents && !evalSpan {
					continue
				}
				start := len(all)
				if evalSpan {
					if key, variant, ok := readFlag(s.Attributes()); ok {
						all = append(all, flagEval{key, variant})
						times = append(times, int64(s.StartTimestamp()))
					} else {
						evalSpan = false
					}
				}
				for _, e := range s.Events().All() {
					if !isFlagEventName(e.Name()) {
						continue
					}
					if key, variant, ok := readFlag(e.Attributes()); ok {
						all = append(all, flagEval{key, variant})
						t := int64(e.Timestamp())
						if t == 0 {
							t = int64(s.StartTimestamp())
						}
						times = append(times, t)
					}
				}
				if len(all) > start {
					f := flagged{s.TraceID(), s.SpanID(), s.ParentSpanID(), start, len(all), ri, evalSpan, !evalSpan && entry.is(s)}
					spans = append(spans, f)
					withParent = withParent || !f.parent.IsEmpty()
					fb.evalSpans = fb.evalSpans || evalSpan
				}
			}
		}
	}
	if len(spans) == 0 {
		return fb
	}
	out := make(flagMap, 2*len(spans))
	fb.m = out
	add := func(trace pcommon.TraceID, span pcommon.SpanID, fs []flagEval) {
		k := spanKey(span)
		switch have, ok := out[k]; {
		case !ok:
			out[k] = flagEntry{trace, fs}
		case have.trace == trace:
			out[k] = flagEntry{trace, append(have.evals, fs...)}
		}
	}
	orphaned := func(f *flagged) {
		o := orphan{rs: f.rs, trace: f.trace, context: f.span, source: sourceSpanEvent, start: len(fb.evals)}
		if f.evalSpan {
			// The evaluation span's own evaluation happened in its
			// parent; its events (if any) are its own.
			o.context, o.source = f.parent, sourceSpan
		}
		fb.evals = append(fb.evals, all[f.start:f.end]...)
		fb.times = append(fb.times, times[f.start:f.end]...)
		o.end = len(fb.evals)
		fb.orphans = append(fb.orphans, o)
	}
	if !withParent { // the evaluations are all on root spans: credited there, or to no request
		for _, f := range spans {
			add(f.trace, f.span, all[f.start:f.end:f.end])
		}
		return fb
	}
	// The spans of the traces that have evaluations only (by the low half
	// of the trace ID: a collision only adds entries): their parents, and
	// whether they are entry spans.
	traces := make(map[uint64]struct{}, len(spans))
	for _, f := range spans {
		traces[binary.LittleEndian.Uint64(f.trace[8:])] = struct{}{}
	}
	// Keyed by trace and span: spans of other traces may share an ID.
	type spanRef struct {
		trace pcommon.TraceID
		span  pcommon.SpanID
	}
	type spanInfo struct {
		parent pcommon.SpanID
		entry  bool
	}
	infos := make(map[spanRef]spanInfo, 2*len(spans))
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, s := range ss.Spans().All() {
				tid := s.TraceID()
				if _, ok := traces[binary.LittleEndian.Uint64(tid[8:])]; ok {
					infos[spanRef{tid, s.SpanID()}] = spanInfo{s.ParentSpanID(), entry.is(s)}
				}
			}
		}
	}
	for _, f := range spans {
		if f.evalSpan { // an evaluation span is no entry span, whatever its kind
			k := spanRef{f.trace, f.span}
			in := infos[k]
			in.entry = false
			infos[k] = in
		}
	}
	var path [maxFlagDepth]pcommon.SpanID
	for i := range spans {
		f := &spans[i]
		fs := all[f.start:f.end:f.end] // an append in add copies
		cur := f.span
		credited, parentElsewhere := false, false
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
			in, ok := infos[spanRef{f.trace, cur}]
			if !ok {
				break
			}
			credited = credited || in.entry
			if in.parent.IsEmpty() {
				break
			}
			if _, ok := infos[spanRef{f.trace, in.parent}]; !ok {
				parentElsewhere = true
				break
			}
			cur = in.parent
		}
		if !credited && parentElsewhere {
			orphaned(f)
		}
	}
	return fb
}

// maxFlagDepth bounds how many ancestors a flag evaluation is credited to.
const maxFlagDepth = 64

// recordable reports whether flag key is recorded (flag_keys).
func (c *cohorts) recordable(key string) bool { return c.flagKeys == nil || c.flagKeys[key] }

// emitOrphans turns the orphaned evaluations of td into flag evaluation
// events of their unit, within the cohort bounds (a flag evaluated twice by
// one span counts once, the first).
func (p *changelensProcessor) emitOrphans(td ptrace.Traces, fb *flagBatch, b *batchState, maxTime int64) {
	c := p.cohorts
	for _, o := range fb.orphans {
		u, ok := p.unitOf(td.ResourceSpans().At(o.rs).Resource().Attributes())
		if !ok {
			continue // no service: no unit to credit
		}
		evals := fb.evals[o.start:o.end]
		for i, f := range evals {
			t := fb.times[o.start+i]
			if !c.recordable(f.key) || t < minValidStart || t > maxTime {
				continue
			}
			dup := false
			for _, g := range evals[:i] {
				dup = dup || g.key == f.key
			}
			if dup {
				continue
			}
			_, v, ok := c.admit(u, dimKey{true, f.key}, f.variant, &b.folds)
			if !ok {
				continue
			}
			b.emitted = append(b.emitted, eventspan.FlagEvaluation{
				Resource: eventspan.Resource{Service: u.service, Environment: u.environment},
				Key:      f.key, Variant: v, Time: t, TraceID: o.trace, SpanID: o.context,
			})
			b.emittedBy[o.source]++
		}
	}
}

// unitOf is the unit of a resource as processResource resolves it (the
// environment's fallbacks, valid UTF-8), without changing the resource; ok
// is false without a service.
func (p *changelensProcessor) unitOf(res pcommon.Map) (unitKey, bool) {
	service := strAttr(res, eventspan.AttrServiceName)
	if service == "" {
		return unitKey{}, false
	}
	env := strAttr(res, eventspan.AttrDeploymentEnvironment)
	if env == "" {
		env = strAttr(res, eventspan.AttrDeploymentEnvironmentOld)
		if env == "" {
			env = p.defaultEnv
		}
	}
	return unitKey{strings.ToValidUTF8(service, "\uFFFD"), strings.ToValidUTF8(env, "\uFFFD")}, true
}
