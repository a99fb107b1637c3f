package changelensprocessor

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/metric"

	"github.com/changelens/changelens/internal/eventspan"
)

// logDropReason indexes why a log record was dropped; its name is the value
// of the log_records_dropped metric's "reason" attribute.
type logDropReason int

const (
	logNotFlagEvaluation  logDropReason = iota // not a feature_flag.evaluation event: changelens is no log store
	logInvalidEvaluation                       // an evaluation event without a flag key or a variant
	logMissingServiceName                      // no service.name on the resource
	logMissingTrace                            // no trace and span context: no request to credit
	logInvalidTimestamps                       // before 2000 (or none at all)
	logFutureTimestamp                         // beyond max_clock_skew
	logNotRecorded                             // a flag not in flag_keys, or beyond max_keys_per_unit
	numLogDropReasons
)

var logDropReasonNames = [numLogDropReasons]string{
	"not_flag_evaluation", "invalid_evaluation", "missing_service_name", "missing_trace_context",
	"invalid_timestamps", "future_timestamp", "not_recorded",
}

func (r logDropReason) String() string { return logDropReasonNames[r] }

// logAttrs are the precomputed metric attributes of the logs path.
type logAttrs struct {
	dropped [numLogDropReasons][]metric.AddOption
}

func newLogAttrs() logAttrs {
	var a logAttrs
	for r, name := range logDropReasonNames {
		a.dropped[r] = addOptions("reason", name)
	}
	return a
}

// logBatch counts one call's log records.
type logBatch struct {
	received int64
	emitted  int64
	dropped  [numLogDropReasons]int64
	folds    [numFoldReasons]int64
	// dims remembers the cohort bounds' answers for the current
	// resource's unit (admitCache).
	dims admitCache
}

// processLogs keeps the log-based feature-flag evaluations of ld as flag
// evaluation events (internal/eventspan), in place: each record bounded as
// a span event's evaluation would be (flag_keys, max_keys_per_unit,
// max_values_per_key, max_units; the recorded variant written as
// feature_flag.result.variant, the time as the record's timestamp), its
// resource's environment resolved, its scope marked. Every other record is
// dropped (counted): changelens is not a log store.
func (p *changelensProcessor) processLogs(ctx context.Context, ld plog.Logs) (plog.Logs, error) {
	var b logBatch
	var outs []eventspan.Outcome
	maxTime := time.Now().UnixNano() + p.maxSkew
	ld.ResourceLogs().RemoveIf(func(rl plog.ResourceLogs) bool {
		res := rl.Resource().Attributes()
		unit, hasService := p.unitOf(res)
		b.dims.reset()
		rl.ScopeLogs().RemoveIf(func(sl plog.ScopeLogs) bool {
			sl.LogRecords().RemoveIf(func(lr plog.LogRecord) bool {
				b.received++
				r, ok := p.flagRecord(lr, unit, hasService, maxTime, &b)
				if !ok && r == logNotFlagEvaluation && p.outcomes.takeLog(lr, res, maxTime, &outs) {
					return true // re-emitted below as outcome events
				}
				if !ok {
					b.dropped[r]++
				}
				return !ok
			})
			if sl.LogRecords().Len() == 0 {
				return true
			}
			eventspan.MarkScope(sl.Scope(), eventspan.EventFlagEvaluation)
			return false
		})
		if rl.ScopeLogs().Len() == 0 {
			return true
		}
		// Every reader of the events finds the unit under the current names.
		res.PutStr(eventspan.AttrServiceName, unit.service)
		res.PutStr(eventspan.AttrDeploymentEnvironment, unit.environment)
		return false
	})
	if len(outs) > 0 {
		eventspan.AppendOutcomeLogs(ld, outs...)
		p.telemetry.ProcessorChangelensOutcomeEvents.Add(ctx, int64(len(outs)))
	}

	p.telemetry.ProcessorChangelensLogRecordsReceived.Add(ctx, b.received)
	if b.emitted > 0 {
		p.telemetry.ProcessorChangelensFlagEvaluations.Add(ctx, b.emitted, p.sourceAttrs[sourceLog]...)
	}
	for r, n := range b.dropped {
		if n > 0 {
			p.telemetry.ProcessorChangelensLogRecordsDropped.Add(ctx, n, p.logAttrs.dropped[r]...)
		}
	}
	for r, n := range b.folds {
		if n > 0 {
			p.telemetry.ProcessorChangelensCohortFolds.Add(ctx, n, p.foldAttrs[r]...)
		}
	}
	return ld, nil
}

// flagRecord makes lr a flag evaluation event and reports true, or says why
// it cannot be one.
func (p *changelensProcessor) flagRecord(lr plog.LogRecord, unit unitKey, hasService bool, maxTime int64, b *logBatch) (logDropReason, bool) {
	name := lr.EventName()
	if name == "" {
		name = strAttr(lr.Attributes(), eventspan.AttrEventName)
	}
	c := p.cohorts
	if !isFlagEventName(name) || c == nil || !c.flags {
		return logNotFlagEvaluation, false
	}
	key, variant, ok := readFlag(lr.Attributes())
	switch {
	case !ok:
		return logInvalidEvaluation, false
	case !hasService:
		return logMissingServiceName, false
	case lr.TraceID().IsEmpty() || lr.SpanID().IsEmpty():
		return logMissingTrace, false
	}
	t := int64(lr.Timestamp())
	if t == 0 {
		t = int64(lr.ObservedTimestamp())
	}
	switch {
	case t < minValidStart:
		return logInvalidTimestamps, false
	case t > maxTime:
		return logFutureTimestamp, false
	case !c.recordable(key):
		return logNotRecorded, false
	}
	_, v, ok := c.admitCached(&b.dims, unit, dimKey{true, key}, variant, &b.folds)
	if !ok {
		return logNotRecorded, false
	}
	a := lr.Attributes()
	if current, ok := a.Get(eventspan.AttrFlagVariant); !ok || current.Type() != pcommon.ValueTypeStr || current.Str() != v {
		a.PutStr(eventspan.AttrFlagVariant, v)
	}
	if lr.Timestamp() == 0 {
		lr.SetTimestamp(pcommon.Timestamp(t))
	}
	b.emitted++
	return 0, true
}
