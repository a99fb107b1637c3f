package changelensprocessor

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/changelens/changelens/internal/eventspan"
	"github.com/changelens/changelens/processor/changelensprocessor/internal/metadata"
)

// dropReason indexes why a span was dropped; its name is the value of the
// spans_dropped metric's "reason" attribute.
type dropReason int

const (
	reasonNotEntry dropReason = iota
	reasonMissingServiceName
	reasonInvalidTimestamps
	reasonFutureTimestamp
	reasonInvalidIDs
	reasonDeployMissingService
	reasonDeploySkipped
	reasonFlagEvaluation // an evaluation span: read as an evaluation, not kept
	numDropReasons
)

var dropReasonNames = [numDropReasons]string{
	"not_entry", "missing_service_name", "invalid_timestamps", "future_timestamp",
	"invalid_ids", "deploy_missing_service", "deploy_skipped", "flag_evaluation",
}

func (r dropReason) String() string { return dropReasonNames[r] }

// minValidStart rejects zero and nonsense start times (before 2000-01-01).
const minValidStart = int64(946684800) * int64(time.Second)

type changelensProcessor struct {
	logger    *zap.Logger
	telemetry *metadata.TelemetryBuilder
	next      consumer.Traces

	entryKind    [8]bool // indexed by ptrace.SpanKind
	includeRoot  bool
	keepNonEntry bool
	serviceGraph bool
	defaultEnv   string
	maxOp        int
	maxSkew      int64
	explicit     bool
	matcher      *deploySpanMatcher
	commitAttrs  []string
	cohorts      *cohorts // nil: no cohort dimensions
	// releaseCohorts gives back the cohort bounds shared with the other
	// signal's processor of the same configuration (acquireCohorts).
	releaseCohorts func()
	entry          entryRule
	errKinds       *errorKinds // nil: error kinds off
	outcomes       *outcomes

	ops opCache

	batches sync.Pool // *batchState

	// The metric attributes as option slices: a variadic call with one
	// option would allocate its slice on every batch.
	dropAttrs     [numDropReasons][]metric.AddOption
	foldAttrs     [numFoldReasons][]metric.AddOption
	kindFoldAttrs [numKindFoldReasons][]metric.AddOption
	sourceAttrs   [numFlagSources][]metric.AddOption
	logAttrs      logAttrs
	explicitAttrs []metric.AddOption
}

func addOptions(key, value string) []metric.AddOption {
	return []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.String(key, value)))}
}

func newProcessor(set component.TelemetrySettings, cfg *Config, next consumer.Traces) (*changelensProcessor, error) {
	tb, err := metadata.NewTelemetryBuilder(set)
	if err != nil {
		return nil, err
	}
	p := &changelensProcessor{
		logger:       set.Logger,
		telemetry:    tb,
		next:         next,
		includeRoot:  cfg.EntrySpans.IncludeRoot,
		keepNonEntry: cfg.KeepNonEntrySpans,
		serviceGraph: cfg.ServiceGraph.Enabled,
		defaultEnv:   cfg.DefaultEnvironment,
		maxOp:        cfg.MaxOperationLength,
		maxSkew:      int64(cfg.MaxClockSkew),
		explicit:     cfg.Deployments.Explicit.Enabled,
		matcher:      newDeploySpanMatcher(cfg.Deployments.Explicit),
		commitAttrs:  cfg.Deployments.Explicit.CommitTimeAttributes,
	}
	p.cohorts, p.releaseCohorts = acquireCohorts(cfg)
	p.errKinds = newErrorKinds(cfg.ErrorKinds)
	p.outcomes = newOutcomes(cfg)
	for r, name := range kindFoldReasonNames {
		p.kindFoldAttrs[r] = addOptions("reason", name)
	}
	p.ops.m = make(map[string]string)
	for _, k := range cfg.EntrySpans.Kinds {
		switch strings.ToLower(k) {
		case "server":
			p.entryKind[ptrace.SpanKindServer] = true
		case "consumer":
			p.entryKind[ptrace.SpanKindConsumer] = true
		case "client":
			p.entryKind[ptrace.SpanKindClient] = true
		case "producer":
			p.entryKind[ptrace.SpanKindProducer] = true
		case "internal":
			p.entryKind[ptrace.SpanKindInternal] = true
		}
	}
	for r, name := range dropReasonNames {
		p.dropAttrs[r] = addOptions("reason", name)
	}
	p.explicitAttrs = addOptions("source", eventspan.SourceExplicit)
	for r, name := range foldReasonNames {
		p.foldAttrs[r] = addOptions("reason", name)
	}
	for src, name := range flagSourceNames {
		p.sourceAttrs[src] = addOptions("source", name)
	}
	p.logAttrs = newLogAttrs()
	p.entry = entryRule{kinds: p.entryKind, root: p.includeRoot}
	p.batches.New = func() any { return &batchState{bank: newValueBank()} }
	return p, nil
}

func (p *changelensProcessor) start(context.Context, component.Host) error { return nil }

func (p *changelensProcessor) shutdown(context.Context) error {
	p.telemetry.Shutdown()
	p.releaseCohorts()
	return nil
}

// batchState is the per-call scratch space, pooled so steady state allocates nothing.
type batchState struct {
	explicit []*deployment
	// idx credits feature-flag evaluations and exceptions to entry spans;
	// pending are the entry spans whose cohort dimensions and error kind
	// are written once it has (finishEntries); units are the batch's
	// resources' units by visit order (orphans').
	idx     spanIndex
	pending []pendingEntry
	units   []resourceUnit
	rs      int // the resource being processed: units[rs]
	evalBuf []flagEval
	// emitted are the flag evaluation events of the evaluations no entry
	// span of the batch is credited with.
	emitted   []eventspan.FlagEvaluation
	emittedBy [numFlagSources]int64
	folds     [numFoldReasons]int64
	// kindFolds counts the error kinds folded.
	kindFolds [numKindFoldReasons]int64
	received  int64
	latency   int64
	calls     int64
	dropped   [numDropReasons]int64
	bank      valueBank
	// dims and kinds remember the bounds' answers for the current
	// resource's unit (admitCache).
	dims  admitCache
	kinds admitCache
}

func (b *batchState) reset() {
	clear(b.explicit)
	b.explicit = b.explicit[:0]
	b.idx.reset()
	clear(b.pending)
	b.pending = b.pending[:0]
	clear(b.units)
	b.units = b.units[:0]
	clear(b.evalBuf)
	b.evalBuf = b.evalBuf[:0]
	clear(b.emitted)
	b.emitted = b.emitted[:0]
	b.emittedBy = [numFlagSources]int64{}
	b.folds = [numFoldReasons]int64{}
	b.kindFolds = [numKindFoldReasons]int64{}
	b.received, b.latency, b.calls = 0, 0, 0
	b.dropped = [numDropReasons]int64{}
	b.dims.reset()
	b.kinds.reset()
}

func (b *batchState) drop(reason dropReason) { b.dropped[reason]++ }

func (p *changelensProcessor) processTraces(ctx context.Context, td ptrace.Traces) (ptrace.Traces, error) {
	b := p.batches.Get().(*batchState)
	defer func() { b.reset(); p.batches.Put(b) }()
	maxStart := time.Now().UnixNano() + p.maxSkew
	p.outcomes.scanTraces(ctx, p.telemetry, td, &p.entry, maxStart)

	td.ResourceSpans().RemoveIf(func(rs ptrace.ResourceSpans) bool {
		return p.processResource(rs, b, maxStart)
	})
	if p.flags() {
		b.idx.creditFlags()
		if len(b.idx.orphans) > 0 {
			p.emitOrphans(&b.idx, b.units, b, maxStart)
		}
	}
	if p.errKinds != nil {
		b.idx.creditExceptions()
	}
	p.finishEntries(b)

	for _, d := range b.explicit {
		appendDeploymentEvent(td, d)
	}
	if n := len(b.explicit); n > 0 {
		p.telemetry.ProcessorChangelensDeploymentEvents.Add(ctx, int64(n), p.explicitAttrs...)
	}
	if len(b.emitted) > 0 {
		eventspan.AppendFlagEvaluations(td, b.emitted...)
		for src, n := range b.emittedBy {
			if n > 0 {
				p.telemetry.ProcessorChangelensFlagEvaluations.Add(ctx, n, p.sourceAttrs[src]...)
			}
		}
	}

	p.telemetry.ProcessorChangelensSpansReceived.Add(ctx, b.received)
	if b.latency > 0 {
		p.telemetry.ProcessorChangelensLatencyEvents.Add(ctx, b.latency)
	}
	if b.calls > 0 {
		p.telemetry.ProcessorChangelensCallEvents.Add(ctx, b.calls)
	}
	for r, n := range b.dropped {
		if n > 0 {
			p.telemetry.ProcessorChangelensSpansDropped.Add(ctx, n, p.dropAttrs[r]...)
		}
	}
	for r, n := range b.folds {
		if n > 0 {
			p.telemetry.ProcessorChangelensCohortFolds.Add(ctx, n, p.foldAttrs[r]...)
		}
	}
	for r, n := range b.kindFolds {
		if n > 0 {
			p.telemetry.ProcessorChangelensErrorKindFolds.Add(ctx, n, p.kindFoldAttrs[r]...)
		}
	}
	return td, nil
}

func (p *changelensProcessor) processResource(rs ptrace.ResourceSpans, b *batchState, maxStart int64) bool {
	res := rs.Resource().Attributes()
	b.rs = len(b.units)
	service := strAttr(res, eventspan.AttrServiceName)
	hasService := service != ""
	env := strAttr(res, eventspan.AttrDeploymentEnvironment)
	if env == "" && hasService {
		env = strAttr(res, eventspan.AttrDeploymentEnvironmentOld)
		if env == "" {
			env = p.defaultEnv
		}
		// Written back so every reader of the event stream finds one name.
		res.PutStr(eventspan.AttrDeploymentEnvironment, env)
	}
	version := strAttr(res, eventspan.AttrServiceVersion)
	if hasService && (!utf8.ValidString(service) || !utf8.ValidString(env) || !utf8.ValidString(version)) {
		service, env, version = strings.ToValidUTF8(service, "\uFFFD"), strings.ToValidUTF8(env, "\uFFFD"), strings.ToValidUTF8(version, "\uFFFD")
		res.PutStr(eventspan.AttrServiceName, service)
		res.PutStr(eventspan.AttrDeploymentEnvironment, env)
		res.PutStr(eventspan.AttrServiceVersion, version)
	}
	unit := unitKey{service, env}
	b.units = append(b.units, resourceUnit{unit, hasService})
	rs.ScopeSpans().RemoveIf(func(ss ptrace.ScopeSpans) bool {
		// Incident and commit events come already encoded
		// (eventspan.AppendIncident, AppendCommit, by a webhook receiver
		// ahead of the processor): they are not traffic, so none of the
		// filtering below applies to them.
		if k := eventspan.ScopeKind(ss.Scope()); k == eventspan.KindIncident || k == eventspan.KindCommit || k == eventspan.KindFlagEvaluation || k == eventspan.KindOutcome {
			return ss.Spans().Len() == 0
		}
		spans := ss.Spans()
		b.received += int64(spans.Len())
		spans.RemoveIf(func(s ptrace.Span) bool {
			return !p.processSpan(s, b, hasService, unit, res, maxStart)
		})
		if spans.Len() == 0 {
			return true
		}
		// The scope's CLIENT and PRODUCER spans are call events unless marked
		// latency events themselves (eventspan.EventKind), even in a scope
		// of calls only.
		if !p.keepNonEntry {
			sc := ss.Scope()
			if sc.Name() != eventspan.ScopeName {
				sc.SetName(eventspan.ScopeName)
				sc.SetVersion(eventspan.SchemaVersion)
			}
			if !b.bank.markScope(sc, eventspan.AttrEventType, eventspan.EventLatency) {
				eventspan.MarkScope(sc, eventspan.EventLatency)
			}
		}
		return false
	})
	return rs.ScopeSpans().Len() == 0
}

func strAttr(m pcommon.Map, k string) string {
	if v, ok := m.Get(k); ok && v.Type() == pcommon.ValueTypeStr {
		return v.Str()
	}
	return ""
}

// spanFields are the attributes an entry span is read for, in one pass.
type spanFields struct {
	method, route         string
	rpcService, rpcMethod string
	status                pcommon.Value
	hasStatus             bool
	taskType              string
	errorType             string // error.type (error kinds)
	grpcStatus            pcommon.Value
	hasGRPC               bool
}

// processSpan reports whether s stays in the output.
func (p *changelensProcessor) processSpan(s ptrace.Span, b *batchState, hasService bool, unit unitKey, res pcommon.Map, maxStart int64) bool {
	flags, exc := p.flags(), p.errKinds != nil
	evalSpan := false
	if flags || exc {
		evalSpan = b.idx.visit(s, b.rs, &p.entry, flags, exc)
	}
	if evalSpan {
		// Its evaluation is credited to its request's entry span (annotate)
		// or emitted as a flag evaluation event (spanIndex.creditFlags).
		b.drop(reasonFlagEvaluation)
		if !p.keepNonEntry {
			b.bank.harvest(s)
		}
		return p.keepNonEntry
	}
	kind := s.Kind()
	entry := p.entryKind[kind&7] || (p.includeRoot && s.ParentSpanID().IsEmpty())
	if !entry {
		// A CLIENT or PRODUCER span is a call, never a CI/CD task: not
		// reading its attributes spares the scan of half a typical batch
		// (CICD conventions: pipeline runs are SERVER spans, tasks their
		// INTERNAL children).
		if p.explicit && !isCallKind(kind) && (isDeployTask(s.Attributes()) || p.matcher.matchName(s.Name())) {
			p.handleDeploySpan(s, b)
			return p.keepNonEntry
		}
		if p.serviceGraph && (kind == ptrace.SpanKindClient || kind == ptrace.SpanKindProducer) {
			return p.processCall(s, b, hasService, maxStart)
		}
		b.drop(reasonNotEntry)
		if !p.keepNonEntry {
			b.bank.harvest(s)
		}
		return p.keepNonEntry
	}

	var f spanFields
	for k, v := range s.Attributes().All() {
		switch k {
		case "http.request.method", "http.method":
			if f.method == "" {
				f.method = v.Str()
			}
		case "http.route":
			f.route = v.Str()
		case "rpc.service":
			f.rpcService = v.Str()
		case "rpc.method":
			f.rpcMethod = v.Str()
		case eventspan.AttrHTTPStatusCode, eventspan.AttrHTTPStatusCodeOld:
			if !f.hasStatus {
				f.status, f.hasStatus = v, true
			}
		case eventspan.AttrTaskType:
			f.taskType = v.Str()
		case eventspan.AttrErrorType:
			if v.Type() == pcommon.ValueTypeStr {
				f.errorType = v.Str()
			}
		case eventspan.AttrRPCGRPCStatusCode:
			f.grpcStatus, f.hasGRPC = v, true
		}
	}
	if p.explicit && (f.taskType == eventspan.TaskTypeDeploy || p.matcher.matchName(s.Name())) {
		p.handleDeploySpan(s, b)
		return p.keepNonEntry
	}

	if !hasService {
		b.drop(reasonMissingServiceName)
		return false
	}
	if reason, bad := malformed(s, maxStart); bad {
		b.drop(reason)
		return false
	}

	name := s.Name()
	op := name
	if f.method != "" && f.route != "" {
		op = p.ops.join(name, f.method, ' ', f.route)
	} else if f.rpcService != "" && f.rpcMethod != "" {
		op = p.ops.join(name, f.rpcService, '/', f.rpcMethod)
	}
	if op = p.boundOperation(op); op != name {
		s.SetName(op)
	}

	if kind == ptrace.SpanKindServer && f.hasStatus && statusCode(f.status) >= 500 {
		s.Status().SetCode(ptrace.StatusCodeError)
	}
	setSamplingWeight(s)
	// In a latency scope an unmarked CLIENT or PRODUCER span reads as a
	// call event: a client entry span says it is not one.
	if p.keepNonEntry || kind == ptrace.SpanKindClient || kind == ptrace.SpanKindProducer {
		eventspan.MarkLatencySpan(s)
	}
	failed := p.errKinds != nil && s.Status().Code() == ptrace.StatusCodeError
	if p.cohorts != nil || failed {
		e := pendingEntry{s: s, res: res, unit: unit, rs: b.rs, failed: failed}
		if failed {
			e.errorType = f.errorType
			e.fallback = kindFallback(&f)
		}
		b.pending = append(b.pending, e)
	}
	b.latency++
	return true
}

// processCall keeps a CLIENT or PRODUCER span that is not an entry span as a
// call event, and reports whether s stays in the output. A span that cannot
// be one is counted like a malformed entry span but otherwise treated as
// before call events existed: dropped, or passed through unmarked with
// keep_non_entry_spans.
func (p *changelensProcessor) processCall(s ptrace.Span, b *batchState, hasService bool, maxStart int64) bool {
	if !hasService {
		// Rather than not_entry: the span would be a call event but has no
		// caller to attribute it to, a misconfigured SDK to report as such.
		b.drop(reasonMissingServiceName)
		return p.keepNonEntry
	}
	if reason, bad := malformed(s, maxStart); bad {
		b.drop(reason)
		return p.keepNonEntry
	}
	name := s.Name()
	if op := p.boundOperation(name); op != name {
		s.SetName(op)
	}
	setSamplingWeight(s)
	// In the latency scope processResource marks, the span's kind makes it
	// a call (eventspan.EventKind) at no cost; unmarked scopes need the
	// span's own mark.
	if p.keepNonEntry {
		eventspan.MarkCallSpan(s)
	}
	b.calls++
	return true
}

// malformed says why s cannot be an event, if it cannot: readers rely on a
// plausible time and on the IDs that make it an exemplar and a graph edge.
func malformed(s ptrace.Span, maxStart int64) (dropReason, bool) {
	start, end := int64(s.StartTimestamp()), int64(s.EndTimestamp())
	switch {
	case start < minValidStart || end < start:
		return reasonInvalidTimestamps, true
	case start > maxStart:
		return reasonFutureTimestamp, true
	case s.TraceID().IsEmpty() || s.SpanID().IsEmpty():
		return reasonInvalidIDs, true
	}
	return 0, false
}

// boundOperation makes op a valid UTF-8 string of at most max_operation_length
// bytes, so that one hostile span can create neither an unbounded key nor one
// a reader cannot decode. Repairing first keeps the bound: a replacement
// character is longer than the byte it replaces.
func (p *changelensProcessor) boundOperation(op string) string {
	if !utf8.ValidString(op) {
		op = strings.ToValidUTF8(op, "\uFFFD")
	}
	if len(op) > p.maxOp {
		cut := p.maxOp
		for cut > 0 && !utf8.RuneStart(op[cut]) {
			cut--
		}
		op = op[:cut]
	}
	return op
}

// setSamplingWeight records the adjusted count an upstream sampler wrote in
// the tracestate, so each kept span counts for the spans it stands for.
func setSamplingWeight(s ptrace.Span) {
	if ts := s.TraceState().AsRaw(); ts != "" {
		if w := samplingWeight(ts); w != 1 {
			eventspan.SetWeight(s, w)
		}
	}
}

func isCallKind(k ptrace.SpanKind) bool {
	return k == ptrace.SpanKindClient || k == ptrace.SpanKindProducer
}

func isDeployTask(attrs pcommon.Map) bool {
	v, ok := attrs.Get(eventspan.AttrTaskType)
	return ok && v.Type() == pcommon.ValueTypeStr && v.Str() == eventspan.TaskTypeDeploy
}

func (p *changelensProcessor) handleDeploySpan(s ptrace.Span, b *batchState) {
	d, reason, ok := parseDeploySpan(s, p.defaultEnv, p.commitAttrs)
	if !ok {
		b.drop(reason)
		return
	}
	b.explicit = append(b.explicit, d)
}

func statusCode(v pcommon.Value) int64 {
	switch v.Type() {
	case pcommon.ValueTypeInt:
		return v.Int()
	case pcommon.ValueTypeStr:
		n, _ := strconv.ParseInt(v.Str(), 10, 64)
		return n
	case pcommon.ValueTypeDouble:
		return int64(v.Double())
	}
	return 0
}

// opCache interns joined operation names ("GET /users/{id}") so spans whose
// name differs from their operation do not allocate a new string each time.
type opCache struct {
	mu sync.RWMutex
	m  map[string]string
}

const maxOpCacheEntries = 1 << 14

func (c *opCache) join(name, a string, sep byte, b string) string {
	if len(name) == len(a)+1+len(b) && name[len(a)] == sep && name[:len(a)] == a && name[len(a)+1:] == b {
		return name
	}
	var buf [128]byte
	k := append(append(append(buf[:0], a...), sep), b...)
	c.mu.RLock()
	s, ok := c.m[string(k)]
	c.mu.RUnlock()
	if ok {
		return s
	}
	s = string(k)
	c.mu.Lock()
	if len(c.m) < maxOpCacheEntries {
		c.m[s] = s
	}
	c.mu.Unlock()
	return s
}

// flags says whether feature-flag evaluations are read.
func (p *changelensProcessor) flags() bool { return p.cohorts != nil && p.cohorts.flags }

// pendingEntry is a latency event whose cohort dimensions and error kind
// wait for the batch's evaluations and exceptions to be credited: they may
// be on spans after it in the batch.
type pendingEntry struct {
	s         ptrace.Span
	res       pcommon.Map
	unit      unitKey
	rs        int
	failed    bool
	errorType string // the span's error.type
	fallback  string // its kind without error.type or exception (kindFallback)
}

// finishEntries writes the pending latency events' cohort dimensions and
// error kinds, in batch order: the bounds admit in the order they did when
// each span was finished on the spot.
func (p *changelensProcessor) finishEntries(b *batchState) {
	rs := -1
	for i := range b.pending {
		e := &b.pending[i]
		if e.rs != rs {
			rs = e.rs
			b.dims.reset()
			b.kinds.reset()
		}
		ref := spanRef{e.s.TraceID(), e.s.SpanID()}
		if p.cohorts != nil {
			b.evalBuf = b.idx.flagsOf(b.evalBuf[:0], ref)
			p.cohorts.annotate(e.s, e.unit, e.res, b.evalBuf, b)
		}
		if e.failed {
			kind := e.errorType
			if kind == "" {
				kind = b.idx.excOf(ref)
			}
			if kind == "" {
				kind = e.fallback
			}
			k := p.errKinds
			b.bank.putStr(e.s.Attributes(), eventspan.AttrErrorKind, k.admitCached(&b.kinds, e.unit, kind, &b.kindFolds))
		}
	}
}

// resourceUnit is a resource's unit as processResource resolved it (a
// removed resource's attributes are gone by the time orphans are emitted).
type resourceUnit struct {
	unit       unitKey
	hasService bool
}
