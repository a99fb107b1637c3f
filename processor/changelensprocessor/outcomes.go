package changelensprocessor

import (
	"context"
	"fmt"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/changelens/changelens/internal/eventspan"
	"github.com/changelens/changelens/processor/changelensprocessor/internal/metadata"
)

// OutcomeConfig is one outcome: what a team counts as a session or user
// reaching a goal (a purchase, a sign-up). Exactly one of SpanName,
// SpanEvent and LogEvent says what is matched.
type OutcomeConfig struct {
	// Name is the outcome's name, as stored and asked for by the API.
	Name string `mapstructure:"name"`
	// SpanName matches spans of that name.
	SpanName string `mapstructure:"span_name"`
	// SpanEvent matches span events of that name.
	SpanEvent string `mapstructure:"span_event"`
	// LogEvent matches log records of that event name (the record's
	// EventName, else its event.name attribute), in a logs pipeline.
	LogEvent string `mapstructure:"log_event"`
	// Attributes must all be present with these values on the matched
	// span, span event or log record, else on the span of the event or the
	// resource. Values are compared as text, as pdata writes an attribute
	// (a YAML true matches a boolean true or the string "true").
	Attributes map[string]any `mapstructure:"attributes"`
}

func validateOutcomes(outs []OutcomeConfig) []error {
	var errs []error
	seen := map[string]int{}
	for i, o := range outs {
		field := fmt.Sprintf("outcomes[%d]", i)
		name := strings.TrimSpace(o.Name)
		switch {
		case name == "":
			errs = append(errs, fmt.Errorf("%s.name: must not be empty", field))
		case name == eventspan.OutcomeCrash:
			errs = append(errs, fmt.Errorf("%s.name: %q is reserved for crashes", field, name))
		default:
			if j, dup := seen[name]; dup {
				errs = append(errs, fmt.Errorf("%s.name: %q is also outcomes[%d]'s", field, name, j))
			}
			seen[name] = i
		}
		n := 0
		for _, s := range []string{o.SpanName, o.SpanEvent, o.LogEvent} {
			if strings.TrimSpace(s) != "" {
				n++
			}
		}
		if n != 1 {
			errs = append(errs, fmt.Errorf("%s: set exactly one of span_name, span_event and log_event (%d set)", field, n))
		}
		for k, v := range o.Attributes {
			if strings.TrimSpace(k) == "" {
				errs = append(errs, fmt.Errorf("%s.attributes: empty attribute name", field))
			}
			if _, ok := attrText(v); !ok {
				errs = append(errs, fmt.Errorf("%s.attributes.%s: want a string, number or boolean, got %T", field, k, v))
			}
		}
	}
	return errs
}

// outcomes turns matching spans, span events and log records into outcome
// events (eventspan.Outcome), and the crashes of client units into outcome
// events named eventspan.OutcomeCrash: a crash span event on a span of a
// client unit that is no latency event (a latency event's own crash is
// read in-row by the exporter), and every crash log record.
type outcomes struct {
	spanName, spanEvent, logEvent map[string][]outcomeRule
	defaultEnv                    string
}

type outcomeRule struct {
	name  string
	attrs map[string]string
}

func newOutcomes(cfg *Config) *outcomes {
	o := &outcomes{defaultEnv: cfg.DefaultEnvironment}
	add := func(m *map[string][]outcomeRule, key string, r outcomeRule) {
		if *m == nil {
			*m = map[string][]outcomeRule{}
		}
		(*m)[key] = append((*m)[key], r)
	}
	for _, c := range cfg.Outcomes {
		r := outcomeRule{name: c.Name, attrs: map[string]string{}}
		for k, v := range c.Attributes {
			r.attrs[k], _ = attrText(v)
		}
		switch {
		case c.SpanName != "":
			add(&o.spanName, c.SpanName, r)
		case c.SpanEvent != "":
			add(&o.spanEvent, c.SpanEvent, r)
		case c.LogEvent != "":
			add(&o.logEvent, c.LogEvent, r)
		}
	}
	return o
}

// attrText is a configured attribute value as pdata's AsString writes the
// attribute, so a match does not depend on how the SDK typed it; false for
// values that are no scalar.
func attrText(v any) (string, bool) {
	switch v.(type) {
	case string, bool, int, int64, int32, uint, uint64, uint32, float64, float32:
	default:
		return "", false
	}
	pv := pcommon.NewValueEmpty()
	if err := pv.FromRaw(v); err != nil {
		return "", false
	}
	return pv.AsString(), true
}

// matches reports whether every wanted attribute is in one of maps, the
// first holding it deciding.
func (r *outcomeRule) matches(maps ...pcommon.Map) bool {
	for k, want := range r.attrs {
		found := false
		for _, m := range maps {
			if v, ok := m.Get(k); ok {
				if v.AsString() != want {
					return false
				}
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// unit resolves a resource's unit as processResource does; false without a
// service.
func (o *outcomes) unit(res pcommon.Map) (eventspan.Resource, bool) {
	r := eventspan.ReadResource(res)
	if r.Service == "" {
		return r, false
	}
	if r.Environment == "" {
		r.Environment = o.defaultEnv
	}
	r.Service, r.Environment, r.Version = strings.ToValidUTF8(r.Service, "\uFFFD"), strings.ToValidUTF8(r.Environment, "\uFFFD"), ""
	return r, true
}

// scanTraces appends to td the outcome events of its spans, in their own
// scopes (which processResource passes through). Resources of servers are
// skipped whole when no span outcome is configured.
func (o *outcomes) scanTraces(ctx context.Context, tel *metadata.TelemetryBuilder, td ptrace.Traces, entry *entryRule, maxTime int64) {
	var outs []eventspan.Outcome
	hasRules := o.spanName != nil || o.spanEvent != nil
	for _, rs := range td.ResourceSpans().All() {
		res := rs.Resource().Attributes()
		client := eventspan.IsClientResource(res)
		if !client && !hasRules {
			continue
		}
		unit, ok := o.unit(res)
		if !ok {
			continue
		}
		for _, ss := range rs.ScopeSpans().All() {
			if eventspan.ScopeKind(ss.Scope()) != eventspan.KindNone {
				continue
			}
			for _, s := range ss.Spans().All() {
				outs = o.spanOutcomes(outs, s, unit, res, client && !entry.is(s), maxTime)
			}
		}
	}
	if len(outs) > 0 {
		eventspan.AppendOutcomes(td, outs...)
		tel.ProcessorChangelensOutcomeEvents.Add(ctx, int64(len(outs)))
	}
}

func (o *outcomes) spanOutcomes(outs []eventspan.Outcome, s ptrace.Span, unit eventspan.Resource, res pcommon.Map, crashes bool, maxTime int64) []eventspan.Outcome {
	add := func(name string, attrs pcommon.Map, t pcommon.Timestamp) {
		if int64(t) < minValidStart || int64(t) > maxTime {
			return
		}
		session, user := eventspan.SessionUser(attrs, res)
		if session == "" {
			session, _ = eventspan.SessionUser(s.Attributes(), res)
		}
		if user == "" {
			_, user = eventspan.SessionUser(s.Attributes(), res)
		}
		outs = append(outs, eventspan.Outcome{Resource: unit, Name: name, Time: int64(t),
			SessionID: session, UserID: user, TraceID: s.TraceID(), SpanID: s.SpanID()})
	}
	for _, r := range o.spanName[s.Name()] {
		if r.matches(s.Attributes(), res) {
			add(r.name, s.Attributes(), s.StartTimestamp())
		}
	}
	if o.spanEvent == nil && !crashes {
		return outs
	}
	for _, ev := range s.Events().All() {
		for _, r := range o.spanEvent[ev.Name()] {
			if r.matches(ev.Attributes(), s.Attributes(), res) {
				add(r.name, ev.Attributes(), ev.Timestamp())
			}
		}
		if crashes && eventspan.EventCrashed(ev) {
			add(eventspan.OutcomeCrash, ev.Attributes(), ev.Timestamp())
		}
	}
	return outs
}

// takeLog collects the outcome events of log record lr of resource res
// into outs and reports whether it made any: a crash record, or a record
// matching a log_event outcome.
func (o *outcomes) takeLog(lr plog.LogRecord, res pcommon.Map, maxTime int64, outs *[]eventspan.Outcome) bool {
	name := lr.EventName()
	if name == "" {
		name = strAttr(lr.Attributes(), eventspan.AttrEventName)
	}
	rules := o.logEvent[name]
	crash := eventspan.IsCrashEventName(name)
	if len(rules) == 0 && !crash {
		return false
	}
	unit, ok := o.unit(res)
	if !ok {
		return false
	}
	t := lr.Timestamp()
	if t == 0 {
		t = lr.ObservedTimestamp()
	}
	if int64(t) < minValidStart || int64(t) > maxTime {
		return false
	}
	session, user := eventspan.SessionUser(lr.Attributes(), res)
	n := len(*outs)
	add := func(name string) {
		*outs = append(*outs, eventspan.Outcome{Resource: unit, Name: name, Time: int64(t),
			SessionID: session, UserID: user, TraceID: lr.TraceID(), SpanID: lr.SpanID()})
	}
	if crash {
		add(eventspan.OutcomeCrash)
	}
	for _, r := range rules {
		if r.matches(lr.Attributes(), res) {
			add(r.name)
		}
	}
	return len(*outs) > n
}
