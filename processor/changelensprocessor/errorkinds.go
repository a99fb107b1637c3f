package changelensprocessor

import (
	"encoding/binary"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/changelens/changelens/internal/eventspan"
)

// A failed request's error kind is what its latency event carries in
// eventspan.AttrErrorKind, for the query side's new-error-kind rule
// (docs/analysis.md, "New error kinds"). Only events with status ERROR
// (the processor's is_error: the span's status, or a SERVER span's status
// code ≥ 500) get one, in this order:
//
//  1. the entry span's error.type attribute, as the instrumentation set it;
//  2. the exception.type of an exception event on the entry span itself,
//     else the earliest one on its descendants in the batch (the span
//     whose chain of parents in the batch reaches the entry span before
//     any other entry span) — the exception a request died of is often
//     recorded where it was thrown, not on the entry span;
//  3. the status class: 5xx or 4xx of the HTTP status code, else the name
//     of the gRPC status code (rpc.grpc.status_code: UNAVAILABLE, …);
//  4. else _OTHER (semantic conventions' error.type of an error without
//     a kind).
//
// Kinds are the application's strings: each is made valid UTF-8 and cut to
// max_kind_length bytes, and each unit holds at most max_kinds_per_unit
// distinct kinds (max_units units): further ones fold into "__other__",
// counted by the error_kind_folds metric, as cohort values do.

// kindFoldReason indexes the error_kind_folds metric's "reason" attribute.
type kindFoldReason int

const (
	kindFoldKinds kindFoldReason = iota // the unit had max_kinds_per_unit kinds
	kindFoldUnits                       // max_units units were tracked
	numKindFoldReasons
)

var kindFoldReasonNames = [numKindFoldReasons]string{"kinds", "units"}

// errorKinds bounds the error kinds of each unit; only the bounds keep
// state: the kinds each unit has used.
type errorKinds struct {
	maxKinds, maxUnits, maxLen int

	mu    sync.Mutex
	units map[unitKey]map[string]struct{}
}

func newErrorKinds(cfg ErrorKindsConfig) *errorKinds {
	if !cfg.Enabled {
		return nil
	}
	return &errorKinds{maxKinds: cfg.MaxKindsPerUnit, maxUnits: cfg.MaxUnits, maxLen: cfg.MaxKindLength,
		units: map[unitKey]map[string]struct{}{}}
}

// admit returns the kind to record for kind of unit u: kind itself, or
// ErrorKindFolded beyond the bounds (counted in folds).
func (k *errorKinds) admit(u unitKey, kind string, folds *[numKindFoldReasons]int64) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	kinds, ok := k.units[u]
	if !ok {
		if len(k.units) >= k.maxUnits {
			folds[kindFoldUnits]++
			return eventspan.ErrorKindFolded
		}
		kinds = map[string]struct{}{}
		k.units[unitKey{strings.Clone(u.service), strings.Clone(u.environment)}] = kinds
	}
	if _, ok := kinds[kind]; ok {
		return kind
	}
	if len(kinds) >= k.maxKinds {
		folds[kindFoldKinds]++
		return eventspan.ErrorKindFolded
	}
	kinds[strings.Clone(kind)] = struct{}{}
	return kind
}

// admitCached is admit through the batch's cache of the unit's answers.
func (k *errorKinds) admitCached(cache *admitCache, u unitKey, kind string, folds *[numKindFoldReasons]int64) string {
	if e := cache.get(false, "", kind); e != nil {
		if e.fold >= 0 {
			folds[e.fold]++
		}
		return e.v
	}
	before := *folds
	v := k.admit(u, kind, folds)
	cache.put(admitEntry{value: kind, v: v, ok: true, fold: foldOf(before[:], folds[:])})
	return v
}

// bound makes kind valid UTF-8 of at most maxLen bytes.
func (k *errorKinds) bound(kind string) string {
	if !utf8.ValidString(kind) {
		kind = strings.ToValidUTF8(kind, "\uFFFD")
	}
	if len(kind) > k.maxLen {
		cut := k.maxLen
		for cut > 0 && !utf8.RuneStart(kind[cut]) {
			cut--
		}
		kind = kind[:cut]
	}
	return kind
}

// kindOf is the error kind of failed entry span s (f its attributes read
// in processSpan), before the bounds.
func (k *errorKinds) kindOf(s ptrace.Span, f *spanFields, exc *excIndex) string {
	if f.errorType != "" {
		return f.errorType
	}
	if t := exc.of(s); t != "" {
		return t
	}
	if f.hasStatus {
		switch c := statusCode(f.status); {
		case c >= 500 && c < 600:
			return "5xx"
		case c >= 400 && c < 500:
			return "4xx"
		}
	}
	if f.hasGRPC {
		if name := grpcStatusName(f.grpcStatus); name != "" {
			return name
		}
	}
	return eventspan.ErrorTypeOther
}

// grpcCodes are the gRPC status codes' names, by number.
var grpcCodes = [...]string{"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
	"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
	"UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"}

// grpcStatusName is the name of a gRPC status code (an int, or its digits
// as a string); "" for OK and anything else.
func grpcStatusName(v pcommon.Value) string {
	var n int64 = -1
	switch v.Type() {
	case pcommon.ValueTypeInt:
		n = v.Int()
	case pcommon.ValueTypeStr:
		if x, err := strconv.ParseInt(v.Str(), 10, 64); err == nil {
			n = x
		}
	}
	if n <= 0 || n >= int64(len(grpcCodes)) {
		return ""
	}
	return grpcCodes[n]
}

// excIndex is a batch's exception events credited to entry spans: per
// entry span, the exception.type of its own exception event, else of the
// earliest one on its descendants in the batch. Its maps and slices are
// the batch scratch's, cleared and reused (batchState.reset): a batch
// without exception events costs a look at each span's event count.
type excIndex struct {
	found []excSpan
	// credit maps an entry span (trace and span ID) to its exception.
	credit map[spanRef]excCredit
	// links are the parent and entry-ness of the spans of the traces that
	// have an exception below their entry span (traces: by the low half of
	// the trace ID; a collision only adds entries).
	links  map[spanRef]spanLink
	traces map[uint64]struct{}
}

// spanRef is a span of a trace: spans of other traces may share an ID.
type spanRef struct {
	trace pcommon.TraceID
	span  pcommon.SpanID
}

type spanLink struct {
	parent pcommon.SpanID
	entry  bool
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

// maxRetainedExc bounds the entries a pooled index keeps room for, so one
// huge batch does not hold its maps forever.
const maxRetainedExc = 4096

func (x *excIndex) reset() {
	clear(x.found)
	x.found = x.found[:0]
	if len(x.credit) > maxRetainedExc {
		x.credit = nil
	} else {
		clear(x.credit)
	}
	if len(x.links) > maxRetainedExc {
		x.links = nil
	} else {
		clear(x.links)
	}
	if len(x.traces) > maxRetainedExc {
		x.traces = nil
	} else {
		clear(x.traces)
	}
}

// of is the exception type credited to entry span s; "" when none.
func (x *excIndex) of(s ptrace.Span) string {
	if len(x.credit) == 0 {
		return ""
	}
	return x.credit[spanRef{s.TraceID(), s.SpanID()}].typ
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

// index credits the exception events of td to entry spans (before the
// processor removes the spans that are not: their exceptions belong to
// their request).
func (x *excIndex) index(td ptrace.Traces, entry *entryRule) {
	below := false // an exception on a span that is no entry span
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			if skipScope(ss.Scope()) {
				continue
			}
			for _, s := range ss.Spans().All() {
				if s.Events().Len() == 0 {
					continue
				}
				typ, t, ok := firstException(s)
				if !ok {
					continue
				}
				e := excSpan{ref: spanRef{s.TraceID(), s.SpanID()}, parent: s.ParentSpanID(), typ: typ, time: t, entry: entry.is(s)}
				x.found = append(x.found, e)
				below = below || !e.entry
			}
		}
	}
	if len(x.found) == 0 {
		return
	}
	if x.credit == nil {
		x.credit = make(map[spanRef]excCredit, len(x.found))
	}
	for _, e := range x.found {
		if e.entry {
			x.give(e.ref, excCredit{typ: e.typ, time: e.time, own: true})
		}
	}
	if !below {
		return
	}
	if x.traces == nil {
		x.traces = map[uint64]struct{}{}
		x.links = map[spanRef]spanLink{}
	}
	for _, e := range x.found {
		if !e.entry {
			x.traces[binary.LittleEndian.Uint64(e.ref.trace[8:])] = struct{}{}
		}
	}
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			if skipScope(ss.Scope()) {
				continue
			}
			for _, s := range ss.Spans().All() {
				tid := s.TraceID()
				if _, ok := x.traces[binary.LittleEndian.Uint64(tid[8:])]; ok {
					x.links[spanRef{tid, s.SpanID()}] = spanLink{s.ParentSpanID(), entry.is(s)}
				}
			}
		}
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
			l, ok := x.links[ref]
			if !ok {
				break // the chain leaves the batch: no entry span here to credit
			}
			if l.entry {
				x.give(ref, excCredit{typ: e.typ, time: e.time})
				break
			}
			cur = l.parent
		}
	}
}

// skipScope: incident, commit and flag evaluation events pass through the
// processor as they are; they are no requests.
func skipScope(sc pcommon.InstrumentationScope) bool {
	k := eventspan.ScopeKind(sc)
	return k == eventspan.KindIncident || k == eventspan.KindCommit || k == eventspan.KindFlagEvaluation
}

// give credits c to entry span ref unless it has a better one: its own, or
// an earlier one.
func (x *excIndex) give(ref spanRef, c excCredit) {
	have, ok := x.credit[ref]
	switch {
	case !ok:
	case have.own && !c.own:
		return
	case have.own == c.own && have.time <= c.time:
		return
	}
	x.credit[ref] = c
}
