package changelensprocessor

import (
	"encoding/binary"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/changelens/changelens/internal/eventspan"
)

// spanIndex is what crediting feature-flag evaluations and exceptions to
// entry spans needs of a batch, gathered while the processor's one pass
// over the spans reads them anyway (visit): a decoded batch is larger than
// the CPU's near caches, so every extra pass over its spans pays for
// loading them again — formerly one pass per index, before the processing
// pass. Each span visited leaves a small record (its IDs, parent and
// entry-ness); the evaluations and exceptions found are listed. After the
// pass, credit walks parent links over the records alone (an
// open-addressing table of trace and span ID, no per-batch maps) and the
// entry spans' cohort dimensions and error kinds are written then
// (processTraces). Its slices are the pooled batch scratch's, reused.
type spanIndex struct {
	links []spanLink // by visit order (ordinal)
	// found are the spans with an exception event, in batch order.
	found []excSpan
	// credit holds the exceptions credited to entry spans; creditAt maps a
	// link (the last visited of its trace and span ID) to credit[i-1].
	credit   []excCredit
	creditAt []int32

	// Flag evaluations (only when cohorts.feature_flags).
	flagged []flaggedSpan
	evals   []flagEval
	times   []int64
	// chunks are the evaluations credited to a link, in crediting order:
	// a list per link from flagHead (chunks[i-1]).
	chunks   []flagChunk
	flagHead []int32
	flagTail []int32
	orphans  []orphan
	oevals   []flagEval // of the orphans
	otimes   []int64

	// slots is the table of links by trace and span ID: link ordinal + 1.
	slots []int32
	mask  uint64
	built bool
}

// spanLink is a visited span's place in its trace.
type spanLink struct {
	ref    spanRef
	parent pcommon.SpanID
	entry  bool // entry.is: an entry span, for exceptions
	// flagEntry is entry for flag evaluations: an evaluation span is none,
	// whatever its kind (nor, like the maps before, a span sharing its IDs).
	flagEntry bool
}

// flaggedSpan is a span with evaluations: evals[start:end].
type flaggedSpan struct {
	ord        int32
	rs         int32 // its ResourceSpans, by visit order
	start, end int32
	evalSpan   bool
}

type flagChunk struct{ start, end, next int32 }

// spanRef is a span of a trace: spans of other traces may share an ID.
type spanRef struct {
	trace pcommon.TraceID
	span  pcommon.SpanID
}

// excSpan is a span with an exception event: its first one's type.
type excSpan struct {
	ref    spanRef
	parent pcommon.SpanID
	typ    string
	time   int64
	entry  bool
}

type excCredit struct {
	typ  string
	time int64
	own  bool // on the entry span itself: wins over its descendants'
}

// orphan is a span's evaluations that no entry span of the batch is
// credited with: they become flag evaluation events.
type orphan struct {
	rs      int // the span's ResourceSpans, by visit order
	trace   pcommon.TraceID
	context pcommon.SpanID // the span active during the evaluations
	source  flagSource
	start   int // the evaluations: oevals[start:end], otimes[start:end]
	end     int
}

// maxRetainedIndex bounds the entries a pooled index keeps room for, so
// one huge batch does not hold its scratch forever.
const maxRetainedIndex = 1 << 16

func (x *spanIndex) reset() {
	if cap(x.links) > maxRetainedIndex {
		*x = spanIndex{}
		return
	}
	x.links = x.links[:0]
	clear(x.found)
	x.found = x.found[:0]
	clear(x.credit)
	x.credit = x.credit[:0]
	x.creditAt = x.creditAt[:0]
	x.flagged = x.flagged[:0]
	clear(x.evals)
	x.evals = x.evals[:0]
	x.times = x.times[:0]
	x.chunks = x.chunks[:0]
	x.flagHead = x.flagHead[:0]
	x.flagTail = x.flagTail[:0]
	x.orphans = x.orphans[:0]
	clear(x.oevals)
	x.oevals = x.oevals[:0]
	x.otimes = x.otimes[:0]
	x.built = false
}

// visit records span s of ResourceSpans rs (visit order); flags and exc say
// which evaluations and exceptions are read. It returns whether s is an
// evaluation span.
func (x *spanIndex) visit(s ptrace.Span, rs int, entry *entryRule, flags, exc bool) bool {
	ref := spanRef{s.TraceID(), s.SpanID()}
	isEntry := entry.is(s)
	ord := int32(len(x.links))
	x.links = append(x.links, spanLink{ref: ref, parent: s.ParentSpanID(), entry: isEntry, flagEntry: isEntry})
	events := s.Events()
	hasEvents := events.Len() > 0
	evalSpan := false
	if flags {
		// Most spans have neither events nor a name starting with "f":
		// two cheap checks rule them out.
		name := s.Name()
		if len(name) >= len(flagNamePrefix) && name[0] == 'f' && strings.HasPrefix(name, flagNamePrefix) {
			evalSpan = true
		}
		if hasEvents || evalSpan {
			start := len(x.evals)
			if evalSpan {
				if key, variant, ok := readFlag(s.Attributes()); ok {
					x.evals = append(x.evals, flagEval{key, variant})
					x.times = append(x.times, int64(s.StartTimestamp()))
				} else {
					evalSpan = false
				}
			}
			if hasEvents {
				for _, e := range events.All() {
					if !isFlagEventName(e.Name()) {
						continue
					}
					if key, variant, ok := readFlag(e.Attributes()); ok {
						x.evals = append(x.evals, flagEval{key, variant})
						t := int64(e.Timestamp())
						if t == 0 {
							t = int64(s.StartTimestamp())
						}
						x.times = append(x.times, t)
					}
				}
			}
			if len(x.evals) > start {
				x.flagged = append(x.flagged, flaggedSpan{ord: ord, rs: int32(rs), start: int32(start), end: int32(len(x.evals)), evalSpan: evalSpan})
			}
		}
	}
	if exc && hasEvents {
		if typ, t, ok := firstException(s); ok {
			x.found = append(x.found, excSpan{ref: ref, parent: s.ParentSpanID(), typ: typ, time: t, entry: isEntry})
		}
	}
	return evalSpan
}

// firstException is the type and time of s's first exception event with
// an exception.type; ok false when it has none.
func firstException(s ptrace.Span) (typ string, t int64, ok bool) {
	for _, e := range s.Events().All() {
		if e.Name() != eventspan.ExceptionEvent {
			continue
		}
		if v, has := e.Attributes().Get(eventspan.AttrExceptionType); has && v.Type() == pcommon.ValueTypeStr && v.Str() != "" {
			t := int64(e.Timestamp())
			if t == 0 {
				t = int64(s.StartTimestamp())
			}
			return v.Str(), t, true
		}
	}
	return "", 0, false
}

func refHash(r spanRef) uint64 {
	h := binary.LittleEndian.Uint64(r.span[:]) ^ binary.LittleEndian.Uint64(r.trace[8:])*0x9E3779B97F4A7C15 ^ binary.LittleEndian.Uint64(r.trace[:8])
	h ^= h >> 31
	h *= 0xBF58476D1CE4E5B9
	h ^= h >> 29
	return h
}

// build makes the table of links; a trace and span ID visited twice finds
// its last visit, as a map assigned in visit order would.
func (x *spanIndex) build() {
	if x.built {
		return
	}
	x.built = true
	size := 16
	for size < 2*len(x.links) {
		size <<= 1
	}
	if cap(x.slots) >= size {
		x.slots = x.slots[:size]
		clear(x.slots)
	} else {
		x.slots = make([]int32, size)
	}
	x.mask = uint64(size - 1)
	for i := range x.links {
		l := &x.links[i]
		for j := refHash(l.ref) & x.mask; ; j = (j + 1) & x.mask {
			o := x.slots[j]
			if o == 0 {
				x.slots[j] = int32(i) + 1
				break
			}
			if x.links[o-1].ref == l.ref {
				x.slots[j] = int32(i) + 1
				break
			}
		}
	}
}

// find is the link of ref, -1 when ref was not visited.
func (x *spanIndex) find(ref spanRef) int32 {
	if !x.built {
		return -1
	}
	for j := refHash(ref) & x.mask; ; j = (j + 1) & x.mask {
		o := x.slots[j]
		if o == 0 {
			return -1
		}
		if x.links[o-1].ref == ref {
			return o - 1
		}
	}
}

// creditFlags credits each span's evaluations to it and its ancestors in
// the batch, and lists as orphans those no entry span is credited with
// whose chain of ancestors leaves the batch.
func (x *spanIndex) creditFlags() {
	if len(x.flagged) == 0 {
		return
	}
	x.build()
	// Evaluation spans are no entry spans, nor is a span visited under the
	// same IDs (the maps before were keyed by them).
	for _, f := range x.flagged {
		if f.evalSpan {
			if o := x.find(x.links[f.ord].ref); o >= 0 {
				x.links[o].flagEntry = false
			}
		}
	}
	n := len(x.links)
	x.flagHead = growInt32(x.flagHead, n)
	x.flagTail = growInt32(x.flagTail, n)
	var path [maxFlagDepth]pcommon.SpanID
	for _, f := range x.flagged {
		self := x.links[f.ord]
		trace := self.ref.trace
		cur := self.ref.span
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
			o := x.find(spanRef{trace, cur})
			if o < 0 {
				break
			}
			x.chunks = append(x.chunks, flagChunk{f.start, f.end, 0})
			c := int32(len(x.chunks))
			if x.flagHead[o] == 0 {
				x.flagHead[o] = c
			} else {
				x.chunks[x.flagTail[o]-1].next = c
			}
			x.flagTail[o] = c
			in := x.links[o]
			credited = credited || in.flagEntry
			if in.parent.IsEmpty() {
				break
			}
			if x.find(spanRef{trace, in.parent}) < 0 {
				parentElsewhere = true
				break
			}
			cur = in.parent
		}
		if !credited && parentElsewhere {
			o := orphan{rs: int(f.rs), trace: trace, context: self.ref.span, source: sourceSpanEvent, start: len(x.oevals)}
			if f.evalSpan {
				// The evaluation span's own evaluation happened in its
				// parent; its events (if any) are its own.
				o.context, o.source = self.parent, sourceSpan
			}
			x.oevals = append(x.oevals, x.evals[f.start:f.end]...)
			x.otimes = append(x.otimes, x.times[f.start:f.end]...)
			o.end = len(x.oevals)
			x.orphans = append(x.orphans, o)
		}
	}
}

func growInt32(s []int32, n int) []int32 {
	if cap(s) >= n {
		s = s[:n]
		clear(s)
		return s
	}
	return make([]int32, n)
}

// flagsOf appends to dst the evaluations credited to ref, in crediting
// order.
func (x *spanIndex) flagsOf(dst []flagEval, ref spanRef) []flagEval {
	if len(x.chunks) == 0 {
		return dst
	}
	o := x.find(ref)
	if o < 0 {
		return dst
	}
	for c := x.flagHead[o]; c != 0; c = x.chunks[c-1].next {
		ch := x.chunks[c-1]
		dst = append(dst, x.evals[ch.start:ch.end]...)
	}
	return dst
}

// creditExceptions credits the exceptions found to entry spans: an entry
// span's own, else the earliest of its descendants' whose chain of parents
// in the batch reaches it before any other entry span.
func (x *spanIndex) creditExceptions() {
	if len(x.found) == 0 {
		return
	}
	x.build()
	x.creditAt = growInt32(x.creditAt, len(x.links))
	below := false
	for _, e := range x.found {
		if e.entry {
			x.give(e.ref, excCredit{typ: e.typ, time: e.time, own: true})
		} else {
			below = true
		}
	}
	if !below {
		return
	}
	var path [maxFlagDepth]pcommon.SpanID
	for _, e := range x.found {
		if e.entry {
			continue
		}
		cur := e.parent
	walk:
		for depth := 0; depth < maxFlagDepth && !cur.IsEmpty(); depth++ {
			// Bad data may link spans in a cycle: each span once.
			for _, seen := range path[:depth] {
				if seen == cur {
					break walk
				}
			}
			path[depth] = cur
			ref := spanRef{e.ref.trace, cur}
			o := x.find(ref)
			if o < 0 {
				break // the chain leaves the batch: no entry span here to credit
			}
			if l := x.links[o]; l.entry {
				x.give(ref, excCredit{typ: e.typ, time: e.time})
				break
			}
			cur = x.links[o].parent
		}
	}
}

// give credits c to entry span ref unless it has a better one: its own, or
// an earlier one.
func (x *spanIndex) give(ref spanRef, c excCredit) {
	o := x.find(ref)
	if o < 0 {
		// An entry span with its own exception is always visited; a
		// credit to one that was not has no event to reach.
		return
	}
	i := x.creditAt[o]
	if i == 0 {
		x.credit = append(x.credit, c)
		x.creditAt[o] = int32(len(x.credit))
		return
	}
	have := x.credit[i-1]
	switch {
	case have.own && !c.own:
		return
	case have.own == c.own && have.time <= c.time:
		return
	}
	x.credit[i-1] = c
}

// excOf is the exception type credited to entry span ref; "" when none.
func (x *spanIndex) excOf(ref spanRef) string {
	if len(x.credit) == 0 {
		return ""
	}
	o := x.find(ref)
	if o < 0 {
		return ""
	}
	if i := x.creditAt[o]; i > 0 {
		return x.credit[i-1].typ
	}
	return ""
}
