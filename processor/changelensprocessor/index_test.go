package changelensprocessor

import (
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// The index on its own, for tests of its walks: the processor builds it
// during its pass over the spans (spanIndex.visit).

// flagMap is the evaluations the batch's index credited to its spans.
type flagMap struct{ x *spanIndex }

// of is the evaluations credited to s, nil when none.
func (m flagMap) of(s ptrace.Span) []flagEval {
	return m.x.flagsOf(nil, spanRef{s.TraceID(), s.SpanID()})
}

// flagBatch is what flagIndex found in a batch.
type flagBatch struct {
	m flagMap
}

// flagIndex indexes the evaluations of td on their own, as the
// processor's pass does on its way through the spans.
func flagIndex(td ptrace.Traces, entry *entryRule) flagBatch {
	x := &spanIndex{}
	for ri, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			if skipScope(ss.Scope()) {
				continue
			}
			for _, s := range ss.Spans().All() {
				x.visit(s, ri, entry, true, false)
			}
		}
	}
	x.creditFlags()
	return flagBatch{m: flagMap{x}}
}

// excIndex is the batch's index as the exception credits see it.
type excIndex = spanIndex

// index credits the exception events of td to entry spans on their own,
// as the processor's pass does on its way through the spans.
func (x *spanIndex) index(td ptrace.Traces, entry *entryRule) {
	for ri, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			if skipScope(ss.Scope()) {
				continue
			}
			for _, s := range ss.Spans().All() {
				x.visit(s, ri, entry, false, true)
			}
		}
	}
	x.creditExceptions()
}
