package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/testkit/chtest"
	"github.com/changelens/changelens/testkit/pipelinetest"
)

// BenchmarkGraph: the cost of building the service graph from stored spans
// (docs/performance.md). One hour of an environment of 10 services, each
// calling the next (a call event and the callee's latency event per call:
// two spans), at 0.5M and 2.5M calls (1M and 5M spans), written by SQL on
// a schema the exporter created; then timed over b.N runs:
//
//	environment   the whole environment's graph over the hour (/v1/graph)
//	caller        one unit's calls per callee and minute (the attribution's
//	              callee series: a semi-join keeps its callees' events only)
//	callers       one unit's requests per caller and minute (its callers)
//	sampled       the environment's edges from one trace in 16 (the
//	              controls' neighbour exclusion)
//
// reporting ms p50/p95 and ms per million spans stored. Run with a fixed
// count: go test -run '^$' -bench Graph -benchtime 10x ./queryapi/store/
func BenchmarkGraph(b *testing.B) {
	srv := chtest.Shared(b)
	for _, calls := range []int{500_000, 2_500_000} {
		db := srv.NewDatabase(b)
		pipelinetest.New(b, srv.Addr(), db, 1, nil).Close(b) // the schema
		end := time.Now().UTC().Truncate(time.Hour)
		start := end.Add(-time.Hour)
		s0 := start.Unix()
		// Call n: trace n+1, caller svc(n%10) → callee svc((n+1)%10), its
		// span n+1; the callee's entry span n+1+2^40, parent n+1.
		srv.Exec(b, fmt.Sprintf(`INSERT INTO %s.call_events (service, environment, version, operation, peer, time, start_time_ns, duration_ns, is_error, weight, trace_id, span_id)
			SELECT concat('svc', toString(number %% 10)), 'bench', 'v1', 'GET', concat('svc', toString((number + 1) %% 10)),
				toDateTime(%d + intDiv(number * 3600, %d)), toUInt64(%d + intDiv(number * 3600, %d)) * 1000000000, 20000000, 0, 1,
				toFixedString(reinterpretAsString(number + 1), 16), toFixedString(reinterpretAsString(number + 1), 8)
			FROM numbers(%d)`, db, s0, calls, s0, calls, calls))
		srv.Exec(b, fmt.Sprintf(`INSERT INTO %s.latency_events (service, environment, version, operation, time, start_time_ns, duration_ns, is_error, http_status, weight, trace_id, span_id, parent_span_id)
			SELECT concat('svc', toString((number + 1) %% 10)), 'bench', 'v1', 'GET /x',
				toDateTime(%d + intDiv(number * 3600, %d)), toUInt64(%d + intDiv(number * 3600, %d)) * 1000000000, 18000000, 0, 200, 1,
				toFixedString(reinterpretAsString(number + 1), 16), toFixedString(reinterpretAsString(number + 1 + 1099511627776), 8),
				toFixedString(reinterpretAsString(number + 1), 8)
			FROM numbers(%d)`, db, s0, calls, s0, calls, calls))
		st, err := Open(context.Background(), Config{DSN: srv.DSN(chtest.ReadOnlyUser, chtest.ReadOnlyPassword, db)})
		if err != nil {
			b.Fatal(err)
		}
		spans := float64(2 * calls)
		ctx := context.Background()
		for _, c := range []struct {
			name string
			run  func() (int, error)
			want int
		}{
			{"environment", func() (int, error) {
				e, err := st.Calls(ctx, "bench", "", start, end, false, 1)
				return len(e), err
			}, 10},
			{"caller", func() (int, error) {
				e, err := st.Calls(ctx, "bench", "svc3", start, end, true, 1)
				return len(e), err
			}, 60},
			{"callers", func() (int, error) {
				m, err := st.Callers(ctx, analysis.UnitKey{Service: "svc4", Environment: "bench"}, start, end)
				return len(m), err
			}, 60},
			{"sampled", func() (int, error) {
				e, err := st.Calls(ctx, "bench", "", start, end, false, 16)
				return len(e), err
			}, 10},
		} {
			b.Run(fmt.Sprintf("%s/spans=%d", c.name, 2*calls), func(b *testing.B) {
				var took []time.Duration
				for range b.N {
					t0 := time.Now()
					n, err := c.run()
					took = append(took, time.Since(t0))
					if err != nil {
						b.Fatal(err)
					}
					if n != c.want {
						b.Fatalf("%d rows, want %d", n, c.want)
					}
				}
				p50, p95 := percentileMs(took, 0.5), percentileMs(took, 0.95)
				b.ReportMetric(p50, "p50-ms")
				b.ReportMetric(p95, "p95-ms")
				b.ReportMetric(p50/(spans/1e6), "ms/Mspans")
			})
		}
		st.Close()
	}
}

func percentileMs(d []time.Duration, q float64) float64 {
	s := append([]time.Duration(nil), d...)
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	i := int(q * float64(len(s)-1))
	return float64(s[i]) / float64(time.Millisecond)
}
