package changelensprocessor

import (
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"

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

// admitCached is admit of kind made valid (bound) through the batch's
// cache of the unit's answers, which is keyed by the kind as read: a hit
// validates nothing again.
func (k *errorKinds) admitCached(cache *admitCache, u unitKey, kind string, folds *[numKindFoldReasons]int64) string {
	if e := cache.get(false, "", kind); e != nil {
		if e.fold >= 0 {
			folds[e.fold]++
		}
		return e.v
	}
	before := *folds
	v := k.admit(u, k.bound(kind), folds)
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

// kindFallback is the error kind of a failed entry span (f its
// attributes read in processSpan) that has neither error.type nor an
// exception credited: its status class, else _OTHER.
func kindFallback(f *spanFields) string {
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

// skipScope: incident, commit and flag evaluation events pass through the
// processor as they are; they are no requests.
func skipScope(sc pcommon.InstrumentationScope) bool {
	k := eventspan.ScopeKind(sc)
	return k == eventspan.KindIncident || k == eventspan.KindCommit || k == eventspan.KindFlagEvaluation
}
