package changelensprocessor

import (
	"bytes"
	"cmp"
	"context"
	"slices"
	"sync"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processorhelper"

	"github.com/changelens/changelens/internal/eventspan"
)

// Self time is the proxy of a request's own CPU where the metrics cannot
// split it (feature-flag cohorts share their processes, docs/cost.md): the
// entry span's duration outside the union of its CLIENT children's
// intervals. Only the batch has the children (the processor drops or
// rewrites them), so it is measured here, around the traces processing:
// the children are indexed before, the latency events annotated after —
// the span path itself is untouched.

// selfRef is a span's identity: trace ID then span ID.
type selfRef [24]byte

func selfRefOf(trace [16]byte, span [8]byte) selfRef {
	var r selfRef
	copy(r[:16], trace[:])
	copy(r[16:], span[:])
	return r
}

// selfIndex holds the CLIENT spans' intervals sorted by parent, then
// start: one flat slice reused across batches, so the index allocates
// nothing in steady state.
type selfIndex struct {
	children []childCall
}

type childCall struct {
	parent selfRef
	iv     [2]int64
}

var selfIndexes = sync.Pool{New: func() any { return &selfIndex{} }}

// withSelfTime wraps the traces processing so that every latency event it
// emits carries its request's self time (eventspan.AttrSelfTime).
func withSelfTime(next processorhelper.ProcessTracesFunc) processorhelper.ProcessTracesFunc {
	return func(ctx context.Context, td ptrace.Traces) (ptrace.Traces, error) {
		idx := selfIndexes.Get().(*selfIndex)
		defer func() { idx.children = idx.children[:0]; selfIndexes.Put(idx) }()
		idx.index(td)
		out, err := next(ctx, td)
		if err == nil {
			idx.annotate(out)
		}
		return out, err
	}
}

func (x *selfIndex) index(td ptrace.Traces) {
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, s := range ss.Spans().All() {
				if s.Kind() != ptrace.SpanKindClient || s.ParentSpanID().IsEmpty() {
					continue
				}
				x.children = append(x.children, childCall{selfRefOf(s.TraceID(), s.ParentSpanID()),
					[2]int64{int64(s.StartTimestamp()), int64(s.EndTimestamp())}})
			}
		}
	}
	slices.SortFunc(x.children, func(a, b childCall) int {
		if c := bytes.Compare(a.parent[:], b.parent[:]); c != 0 {
			return c
		}
		return cmp.Compare(a.iv[0], b.iv[0])
	})
}

// of returns the calls of span ref, sorted by start.
func (x *selfIndex) of(ref selfRef) []childCall {
	i, _ := slices.BinarySearchFunc(x.children, ref, func(c childCall, r selfRef) int { return bytes.Compare(c.parent[:], r[:]) })
	j := i
	for j < len(x.children) && x.children[j].parent == ref {
		j++
	}
	return x.children[i:j]
}

func (x *selfIndex) annotate(td ptrace.Traces) {
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			scope := eventspan.ScopeKind(ss.Scope())
			for _, s := range ss.Spans().All() {
				if eventspan.EventKind(scope, s) != eventspan.KindLatency {
					continue
				}
				start, end := int64(s.StartTimestamp()), int64(s.EndTimestamp())
				self := end - start - covered(x.of(selfRefOf(s.TraceID(), s.SpanID())), start, end)
				// 0 means "not measured" downstream; children covering the
				// whole span leave at least a nanosecond of the entry's own.
				s.Attributes().PutInt(eventspan.AttrSelfTime, max(self, 1))
			}
		}
	}
}

// covered is the length of the union of calls (sorted by start) clipped
// to [start, end): concurrent calls overlap, and the request waited once
// for them.
func covered(calls []childCall, start, end int64) int64 {
	var total int64
	cur0, cur1 := int64(0), int64(0)
	open := false
	for _, c := range calls {
		lo, hi := max(c.iv[0], start), min(c.iv[1], end)
		if hi <= lo {
			continue
		}
		switch {
		case !open:
			cur0, cur1, open = lo, hi, true
		case lo <= cur1:
			cur1 = max(cur1, hi)
		default:
			total += cur1 - cur0
			cur0, cur1 = lo, hi
		}
	}
	if open {
		total += cur1 - cur0
	}
	return total
}
