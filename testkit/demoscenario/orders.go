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

// The orders service (production only): OrdersPerMinute requests a minute
// over the last OrdersLength of the scenario. For the last
// OrdersCanaryLength a canary serves OrdersCanaryShare of them,
// OrdersCanarySlowdown times slower (a WORSE p95 in the minutes both
// versions serve, and an inferred deployment). Every request evaluates the
// flag new-checkout (a feature_flag.evaluation span event, 50/50): "on"
// fails more often (a WORSE error rate) and answers larger bodies. Its own
// random stream, so the plan's traffic is the same with or without it.
const (
	OrdersService        = "orders"
	OrdersStable         = "6.4.0"
	OrdersCanary         = "6.5.0"
	OrdersFlag           = "new-checkout"
	OrdersLength         = 75 * time.Minute
	OrdersCanaryLength   = 60 * time.Minute
	OrdersPerMinute      = 300
	OrdersCanaryShare    = 0.05
	OrdersCanarySlowdown = 1.5
	OrdersErrorRate      = 0.005 // "off", and the canary
	OrdersFlagErrorRate  = 0.03  // "on"
)

// Route is one operation of the orders service.
type Route struct {
	Method, Route string
	// Share is its share of the requests, MedianMS its median latency.
	Share, MedianMS float64
}

// OrdersRoutes are the orders service's operations.
var OrdersRoutes = []Route{
	{"GET", "/orders/{id}", 0.6, 35},
	{"POST", "/orders", 0.4, 90},
}

type ordersWriter struct {
	start, canaryStart time.Time
	rng                *rand.Rand
	seq                uint64
}

func newOrdersWriter(end time.Time) *ordersWriter {
	return &ordersWriter{start: end.Add(-OrdersLength), canaryStart: end.Add(-OrdersCanaryLength),
		rng: rand.New(rand.NewPCG(Seed, 0x0de5))}
}

// minute appends the orders service's requests of minute m to td and
// returns how many.
func (w *ordersWriter) minute(td ptrace.Traces, m time.Time) int {
	if m.Before(w.start) {
		return 0
	}
	spans := map[string]ptrace.SpanSlice{}
	for i := 0; i < OrdersPerMinute; i++ {
		at := m.Add(time.Duration((float64(i) + w.rng.Float64()) / OrdersPerMinute * float64(time.Minute)))
		version, slow := OrdersStable, 1.0
		if !at.Before(w.canaryStart) && w.rng.Float64() < OrdersCanaryShare {
			version, slow = OrdersCanary, OrdersCanarySlowdown
		}
		variant, errRate, size := "off", OrdersErrorRate, 2000.0
		if w.rng.Float64() < 0.5 {
			variant, errRate, size = "on", OrdersFlagErrorRate, 2600
		}
		route := OrdersRoutes[0]
		if w.rng.Float64() >= route.Share {
			route = OrdersRoutes[1]
		}
		ss, ok := spans[version]
		if !ok {
			rs := td.ResourceSpans().AppendEmpty()
			a := rs.Resource().Attributes()
			a.PutStr("service.name", OrdersService)
			a.PutStr("service.namespace", "shop")
			a.PutStr("service.version", version)
			a.PutStr("deployment.environment.name", plan.Production)
			sc := rs.ScopeSpans().AppendEmpty()
			sc.Scope().SetName("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp")
			ss = sc.Spans()
			spans[version] = ss
		}
		s := ss.AppendEmpty()
		w.seq++
		var tid pcommon.TraceID
		binary.BigEndian.PutUint64(tid[:8], 0x0de5<<48|w.rng.Uint64()>>16)
		binary.BigEndian.PutUint64(tid[8:], w.seq)
		var sid pcommon.SpanID
		binary.BigEndian.PutUint64(sid[:], w.rng.Uint64()|1)
		s.SetTraceID(tid)
		s.SetSpanID(sid)
		s.SetKind(ptrace.SpanKindServer)
		s.SetName(route.Method + " " + route.Route)
		ms := route.MedianMS * slow * math.Exp(0.45*w.rng.NormFloat64())
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(at))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(time.Duration(ms * float64(time.Millisecond)))))
		a := s.Attributes()
		a.PutStr("http.request.method", route.Method)
		a.PutStr("http.route", route.Route)
		status := int64(200)
		if w.rng.Float64() < errRate {
			status = 500
			s.Status().SetCode(ptrace.StatusCodeError)
		}
		a.PutInt("http.response.status_code", status)
		a.PutInt("http.response.body.size", int64(size*math.Exp(0.3*w.rng.NormFloat64())))
		if route.Method == "POST" {
			a.PutInt("http.request.body.size", int64(600*math.Exp(0.3*w.rng.NormFloat64())))
		}
		e := s.Events().AppendEmpty()
		e.SetName("feature_flag.evaluation")
		e.SetTimestamp(s.StartTimestamp())
		e.Attributes().PutStr("feature_flag.key", OrdersFlag)
		e.Attributes().PutStr("feature_flag.result.variant", variant)
	}
	return OrdersPerMinute
}
