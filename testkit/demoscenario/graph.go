package demoscenario

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/changelens/changelens/cmd/changelens-demo/plan"
)

// The service graph of the scenario (production only, the last GraphLength
// of it): "web" serves GraphPerMinute requests a minute and calls
// "inventory" once per request (a CLIENT span whose child is inventory's
// SERVER span). web deploys GraphWebOld → GraphWebNew (no change of its
// own) GraphWebDeploy before the end, inventory deploys a GraphSlowdown×
// slower version that fails GraphBadErrors of its requests one minute
// later: web's latency and errors rise because it waits on its callee and
// fails when it fails, so web's deployment is CAUSED_BY_DEPENDENCY naming
// inventory's, which is DEGRADED — its failures also throw an exception
// type the old version never did (GraphNewError, an exception event on its
// SERVER span): a new error kind. Its own random stream, so the plan's
// traffic is the same with or without it.
const (
	GraphCaller     = "web"
	GraphCallee     = "inventory"
	GraphWebOld     = "8.1.0"
	GraphWebNew     = "8.2.0"
	GraphInvOld     = "3.0.0"
	GraphInvNew     = "3.1.0"
	GraphLength     = 120 * time.Minute
	GraphWebDeploy  = 60 * time.Minute
	GraphPerMinute  = 300
	GraphSlowdown   = 1.6
	GraphSelfMS     = 40
	GraphCalleeMS   = 90
	GraphErrorShare = 0.002 // web's own, and inventory's before
	GraphBadErrors  = 0.03  // inventory's new version
	GraphNewError   = "inventory.StockLookupException"
)

type graphWriter struct {
	start, webDeploy, invDeploy time.Time
	rng                         *rand.Rand
	seq                         uint64
}

func newGraphWriter(end time.Time) *graphWriter {
	web := end.Add(-GraphWebDeploy)
	return &graphWriter{start: end.Add(-GraphLength), webDeploy: web, invDeploy: web.Add(time.Minute),
		rng: rand.New(rand.NewPCG(Seed, 0x9a9f))}
}

func (w *graphWriter) id() (pcommon.TraceID, pcommon.SpanID) {
	w.seq++
	var tid pcommon.TraceID
	binary.BigEndian.PutUint64(tid[:8], 0x9a9f<<48|w.rng.Uint64()>>16)
	binary.BigEndian.PutUint64(tid[8:], w.seq)
	var sid pcommon.SpanID
	binary.BigEndian.PutUint64(sid[:], w.rng.Uint64()|1)
	return tid, sid
}

// minute appends web's and inventory's spans of minute m to td and returns
// how many requests (entry spans) they are.
func (w *graphWriter) minute(td ptrace.Traces, m time.Time) int {
	if m.Before(w.start) {
		return 0
	}
	spans := map[[2]string]ptrace.SpanSlice{}
	slice := func(service, version string) ptrace.SpanSlice {
		k := [2]string{service, version}
		if ss, ok := spans[k]; ok {
			return ss
		}
		rs := td.ResourceSpans().AppendEmpty()
		a := rs.Resource().Attributes()
		a.PutStr("service.name", service)
		a.PutStr("service.namespace", "shop")
		a.PutStr("service.version", version)
		a.PutStr("deployment.environment.name", plan.Production)
		sc := rs.ScopeSpans().AppendEmpty()
		sc.Scope().SetName("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp")
		spans[k] = sc.Spans()
		return spans[k]
	}
	span := func(ss ptrace.SpanSlice, tid pcommon.TraceID, sid, parent pcommon.SpanID, kind ptrace.SpanKind, name string, at time.Time, ms float64) ptrace.Span {
		s := ss.AppendEmpty()
		s.SetTraceID(tid)
		s.SetSpanID(sid)
		s.SetParentSpanID(parent)
		s.SetKind(kind)
		s.SetName(name)
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(at))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(time.Duration(ms * float64(time.Millisecond)))))
		return s
	}
	server := func(s ptrace.Span, route string, failed bool) {
		a := s.Attributes()
		a.PutStr("http.request.method", "GET")
		a.PutStr("http.route", route)
		status := int64(200)
		if failed {
			status = 500
			s.Status().SetCode(ptrace.StatusCodeError)
		}
		a.PutInt("http.response.status_code", status)
	}
	webVersion, invVersion, slow, invErrors := GraphWebOld, GraphInvOld, 1.0, GraphErrorShare
	if !m.Before(w.webDeploy) {
		webVersion = GraphWebNew
	}
	if !m.Before(w.invDeploy) {
		invVersion, slow, invErrors = GraphInvNew, GraphSlowdown, GraphBadErrors
	}
	for i := 0; i < GraphPerMinute; i++ {
		at := m.Add(time.Duration((float64(i) + w.rng.Float64()) / GraphPerMinute * float64(time.Minute)))
		tid, root := w.id()
		_, call := w.id()
		_, callee := w.id()
		self := GraphSelfMS * math.Exp(0.3*w.rng.NormFloat64())
		invMS := GraphCalleeMS * slow * math.Exp(0.3*w.rng.NormFloat64())
		invFailed := w.rng.Float64() < invErrors
		failed := invFailed || w.rng.Float64() < GraphErrorShare
		callAt := at.Add(time.Duration(self / 2 * float64(time.Millisecond)))
		server(span(slice(GraphCaller, webVersion), tid, root, pcommon.SpanID{}, ptrace.SpanKindServer, "GET /product/{id}", at, self+invMS+2), "/product/{id}", failed)
		c := span(slice(GraphCaller, webVersion), tid, call, root, ptrace.SpanKindClient, "GET", callAt, invMS+2)
		c.Attributes().PutStr("peer.service", GraphCallee)
		c.Attributes().PutStr("http.request.method", "GET")
		if invFailed {
			c.Attributes().PutInt("http.response.status_code", 500)
			c.Status().SetCode(ptrace.StatusCodeError)
		} else {
			c.Attributes().PutInt("http.response.status_code", 200)
		}
		inv := span(slice(GraphCallee, invVersion), tid, callee, call, ptrace.SpanKindServer, "GET /stock/{sku}", callAt.Add(time.Millisecond), invMS)
		server(inv, "/stock/{sku}", invFailed)
		if invFailed && invVersion == GraphInvNew {
			e := inv.Events().AppendEmpty()
			e.SetName("exception")
			e.SetTimestamp(inv.EndTimestamp())
			e.Attributes().PutStr("exception.type", GraphNewError)
			e.Attributes().PutStr("exception.message", "stock service unavailable")
		}
	}
	return 2 * GraphPerMinute
}
