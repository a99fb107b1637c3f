package e2e

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/changelens/changelens/queryapi/server"
	"github.com/changelens/changelens/queryapi/usecase"
	"github.com/changelens/changelens/testkit/chtest"
)

// gateUnit is one service's traffic: at each request, the version serving
// it and its latency factor and error probability.
type gateUnit struct {
	service   string
	perMinute int
	serve     func(r *rand.Rand, minute int) (version string, slow, errRate float64)
}

// gateBatches is an hour of traffic of the units, one batch per minute.
func gateBatches(start time.Time, units []gateUnit) (batches []ptrace.Traces, requests int) {
	r := rand.New(rand.NewPCG(12, 12))
	var seq uint64
	for m := range 60 {
		td := ptrace.NewTraces()
		spans := map[string]ptrace.SpanSlice{}
		for _, u := range units {
			for i := range u.perMinute {
				version, slow, errRate := u.serve(r, m)
				ss, ok := spans[u.service+"/"+version]
				if !ok {
					rs := td.ResourceSpans().AppendEmpty()
					a := rs.Resource().Attributes()
					a.PutStr("service.name", u.service)
					a.PutStr("service.version", version)
					a.PutStr("deployment.environment.name", "production")
					ss = rs.ScopeSpans().AppendEmpty().Spans()
					spans[u.service+"/"+version] = ss
				}
				seq++
				s := ss.AppendEmpty()
				var tid pcommon.TraceID
				binary.BigEndian.PutUint64(tid[8:], seq)
				s.SetTraceID(tid)
				var sid pcommon.SpanID
				binary.BigEndian.PutUint64(sid[:], seq)
				s.SetSpanID(sid)
				s.SetKind(ptrace.SpanKindServer)
				s.SetName("GET /items")
				at := start.Add(time.Duration(m)*time.Minute + time.Duration(i)*time.Minute/time.Duration(u.perMinute))
				s.SetStartTimestamp(pcommon.NewTimestampFromTime(at))
				s.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(time.Duration(40e6 * slow * math.Exp(0.35*r.NormFloat64())))))
				status := int64(200)
				if r.Float64() < errRate {
					status = 500
				}
				s.Attributes().PutStr("http.request.method", "GET")
				s.Attributes().PutStr("http.route", "/items")
				s.Attributes().PutInt("http.response.status_code", status)
				requests++
			}
		}
		batches = append(batches, td)
	}
	return batches, requests
}

type gateAnswer struct {
	Result       string   `json:"result"`
	Mode         string   `json:"mode"`
	Reasons      []string `json:"reasons"`
	DeploymentID string   `json:"deployment_id"`
	Explanation  string   `json:"explanation"`
	Metrics      []struct {
		Metric  string  `json:"metric"`
		PValue  float64 `json:"p_value"`
		Test    string  `json:"test"`
		Verdict string  `json:"verdict"`
	} `json:"metrics"`
}

// TestGateThroughCollector: an hour of traffic through the built collector,
// then the gate over REST, as a rollout controller asks it at the hour's
// end:
//
//	checkout  1.0, a 5 % canary 1.1 that is 1.5× slower since minute 20  → FAIL (CANARY)
//	search    1.0, a 20 % canary 1.1 like it                             → PASS (CANARY)
//	cart      2.0 until minute 30, then 2.1 with 6 % errors              → FAIL (BEFORE_AFTER)
//	ledger    1.0, a canary 1.1 on 1 request a minute                    → INCONCLUSIVE
//	payments  1.0, a 5 % canary 1.1 1.5× slower, withdrawn at minute 40  → FAIL (CANARY: its 30 minutes side by side)
//	and a version that never served                                      → INCONCLUSIVE
func TestGateThroughCollector(t *testing.T) {
	ch := chtest.Shared(t)
	start := time.Now().Add(-2 * time.Hour).Truncate(time.Minute)
	end := start.Add(time.Hour)
	canary := func(share, slow float64, from int) func(*rand.Rand, int) (string, float64, float64) {
		return func(r *rand.Rand, m int) (string, float64, float64) {
			if m >= from && r.Float64() < share {
				return "1.1", slow, 0.01
			}
			return "1.0", 1, 0.01
		}
	}
	units := []gateUnit{
		{"checkout", 600, canary(0.05, 1.5, 20)},
		{"search", 300, canary(0.2, 1, 20)},
		{"cart", 300, func(r *rand.Rand, m int) (string, float64, float64) {
			if m >= 30 {
				return "2.1", 1, 0.06
			}
			return "2.0", 1, 0.005
		}},
		{"payments", 600, func(r *rand.Rand, m int) (string, float64, float64) {
			if m >= 10 && m < 40 && r.Float64() < 0.05 {
				return "1.1", 1.5, 0.01
			}
			return "1.0", 1, 0.01
		}},
		{"ledger", 20, func(r *rand.Rand, m int) (string, float64, float64) {
			if m >= 20 && r.Float64() < 0.05 {
				return "1.1", 3, 0.01
			}
			return "1.0", 1, 0.01
		}},
	}
	batches, requests := gateBatches(start, units)
	db := ch.NewDatabase(t)
	c := startCollector(t, clickhouseConfig(""), chEnv(ch, db)...)
	deliver(t, batches, []*otlpClient{dialCollector(t, c)}, 0)
	waitStored(t, ch, db, requests)

	clock := func() time.Time { return end }
	svc, err := usecase.Open(context.Background(), ch.DSN(chtest.ReadOnlyUser, chtest.ReadOnlyPassword, db), usecase.Config{CacheSize: -1, Now: clock})
	require.NoError(t, err)
	defer svc.Close()
	srv, err := server.New(server.Config{Source: svc, Now: clock})
	require.NoError(t, err)
	api := httptest.NewServer(srv.Handler())
	defer api.Close()
	gate := func(query string) (int, gateAnswer) {
		t.Helper()
		resp, err := http.Get(api.URL + "/v1/gate?environment=production&" + query)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		var a gateAnswer
		require.NoError(t, json.Unmarshal(body, &a), "%s", body)
		t.Logf("%s → %d %s %s %v: %s", query, resp.StatusCode, a.Result, a.Mode, a.Reasons, a.Explanation)
		return resp.StatusCode, a
	}

	code, a := gate("service=checkout&version=1.1")
	assert.Equal(t, 200, code)
	assert.Equal(t, "FAIL", a.Result)
	assert.Equal(t, "CANARY", a.Mode)
	assert.Equal(t, []string{"LATENCY_REGRESSION"}, a.Reasons)
	assert.NotEmpty(t, a.DeploymentID)
	for _, want := range []string{"p95 latency", "1.1", "1.0", "minutes both served", "requests"} {
		assert.Contains(t, a.Explanation, want, "the explanation names the metric, the effect and the sample")
	}
	for _, m := range a.Metrics {
		if m.Metric == "latency_p95_ms" {
			assert.Equal(t, "msprt-always-valid", m.Test)
			assert.Equal(t, "COMPARE_VERDICT_WORSE", m.Verdict)
			assert.LessOrEqual(t, m.PValue, 0.01)
		}
	}
	code, a = gate("service=checkout&version=1.1&fail_status=true")
	assert.Equal(t, http.StatusPreconditionFailed, code)
	assert.Equal(t, "FAIL", a.Result)

	code, a = gate("service=search&version=1.1&fail_status=true")
	assert.Equal(t, 200, code)
	assert.Equal(t, "PASS", a.Result)
	assert.Equal(t, "CANARY", a.Mode)
	assert.Empty(t, a.Reasons)

	_, a = gate("service=cart&version=2.1")
	assert.Equal(t, "FAIL", a.Result)
	assert.Equal(t, "BEFORE_AFTER", a.Mode)
	assert.Equal(t, []string{"ERROR_RATE_REGRESSION"}, a.Reasons)
	assert.Contains(t, a.Explanation, "error rate")

	_, a = gate("service=payments&version=1.1")
	assert.Equal(t, "FAIL", a.Result, "a withdrawn canary is judged on its minutes beside the baseline")
	assert.Equal(t, "CANARY", a.Mode)

	code, a = gate("service=ledger&version=1.1&fail_status=true")
	assert.Equal(t, 200, code)
	assert.Equal(t, "INCONCLUSIVE", a.Result)
	assert.Equal(t, []string{"INSUFFICIENT_DATA"}, a.Reasons)

	_, a = gate("service=checkout&version=9.9")
	assert.Equal(t, "INCONCLUSIVE", a.Result)
	assert.Equal(t, []string{"NO_DEPLOYMENT"}, a.Reasons)
	assert.True(t, strings.HasPrefix(a.Explanation, "INCONCLUSIVE: no deployment of 9.9"), a.Explanation)

	// The controllers' examples in deploy/ on these answers.
	args := func(service, version string) map[string]string {
		return map[string]string{"service": service, "version": version}
	}
	assert.Equal(t, "Failed", argoPhase(t, api.URL, args("checkout", "1.1")))
	assert.Equal(t, "Successful", argoPhase(t, api.URL, args("search", "1.1")))
	assert.Equal(t, "Inconclusive", argoPhase(t, api.URL, args("ledger", "1.1")))
	assert.False(t, flaggerPasses(t, api.URL, "1.1"), "Flagger: the slow checkout canary fails the check")
	assert.True(t, flaggerPasses(t, api.URL, "9.9"), "Flagger: no data is not a failed check")
}
