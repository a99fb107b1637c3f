package changelensprocessor

import (
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

type flagEval struct{ key, variant string }

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

// maxFlagDepth bounds how many ancestors a flag evaluation is credited to.
const maxFlagDepth = 64

// recordable reports whether flag key is recorded (flag_keys).
func (c *cohorts) recordable(key string) bool { return c.flagKeys == nil || c.flagKeys[key] }

// emitOrphans turns the orphaned evaluations of the batch into flag
// evaluation events of their unit, within the cohort bounds (a flag
// evaluated twice by one span counts once, the first). units are the
// batch's resources' in visit order.
func (p *changelensProcessor) emitOrphans(x *spanIndex, units []resourceUnit, b *batchState, maxTime int64) {
	c := p.cohorts
	for _, o := range x.orphans {
		ru := units[o.rs]
		if !ru.hasService {
			continue // no service: no unit to credit
		}
		u := ru.unit
		evals := x.oevals[o.start:o.end]
		for i, f := range evals {
			t := x.otimes[o.start+i]
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
