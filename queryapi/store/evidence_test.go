package store

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/changelens/changelens/queryapi/report"
)

// The stored evidence reads back as it was computed: every float exactly
// (NaN and infinities too), enumerations by name, nil and empty slices
// apart, times to the nanosecond.
func TestEvidenceCodec(t *testing.T) {
	rollout := time.Date(2026, 3, 2, 11, 58, 0, 0, time.UTC)
	first := time.Date(2026, 3, 2, 12, 3, 4, 5, time.UTC)
	p95 := report.CompareMetric{Metric: "latency_p95_ms", Control: 70.25, Treatment: 140.5, RelativeChange: 1, CILow: 0.8,
		CIHigh: math.Inf(1), PValue: 1e-12, Test: "bootstrap", Verdict: report.CompareWorse}
	rate := report.CompareMetric{Metric: "error_rate", RelativeChange: math.NaN(), CILow: math.NaN(), CIHigh: math.NaN(),
		PValue: 1, Test: "not-tested", Verdict: report.CompareInsufficientData}
	canary := &report.Comparison{
		Control:        report.Cohort{Value: "1.0", Requests: 1800, Share: 0.8, SlowestTraceID: "4bf92f3577b34da6a3ce929d0e0e4736"},
		Treatment:      report.Cohort{Value: "1.1", Requests: 450, Share: 0.2, FailedTraceID: "00f067aa0ba902b7a3ce929d0e0e4736"},
		OverlapMinutes: 36, Metrics: []report.CompareMetric{p95, rate}, Verdict: report.CompareWorse,
		SRM: &report.SampleRatio{ExpectedShare: 0.2, ObservedShare: 0.2, PValue: math.NaN()},
		Operations: []report.OperationComparison{
			{Operation: "GET /cart", Control: report.Cohort{Value: "1.0", Requests: 900}, Treatment: report.Cohort{Value: "1.1", Requests: 220},
				OverlapMinutes: 35, Metrics: []report.CompareMetric{p95}, Verdict: report.CompareWorse},
			{Operation: "POST /orders", Metrics: []report.CompareMetric{}, Verdict: report.CompareInsufficientData},
		},
		ErrorKinds: &report.ErrorKinds{Tested: true, NewErrorKind: true, BeforeRequests: 1800, AfterRequests: 450, Family: 1,
			MDE: math.Inf(1), Explanation: "NEW_ERROR_KIND: NPE",
			New: []report.ErrorKind{{Kind: "NPE", New: true, Verdict: report.CompareWorse, After: 4, AfterRate: 0.009,
				RateRatio: math.Inf(1), RatioHigh: math.Inf(1), BeforeRate: math.NaN(), Minutes: 3, PValue: 1e-4, AdjustedPValue: 1e-4,
				Test: "error-kind", FirstTraceID: "4bf92f3577b34da6a3ce929d0e0e4736", FirstSeen: first}},
			Rose: []report.ErrorKind{}},
	}
	e := Evidence{Version: "1.1", PreviousVersion: "1.0", RolloutStart: rollout, Canary: canary, WithNeighbours: true,
		Neighbours: []report.Neighbour{
			{Service: "payments", Environment: "production", Callee: true, CallsPerMinuteBefore: 600, CallsPerMinuteAfter: 610,
				MeanMsBefore: 40, MeanMsAfter: 120, ErrorRateAfter: math.NaN(), Deployments: []string{"0123456789abcdef0123456789abcdef"}},
			{Service: "redis", Callee: true, Deployments: []string{}},
		}}
	enc := EncodeEvidence(e)
	got, err := DecodeEvidence(enc)
	if err != nil {
		t.Fatal(err)
	}
	if EncodeEvidence(got) != enc {
		t.Error("decode then encode changed the bytes")
	}
	c := got.Canary
	if got.Version != "1.1" || got.PreviousVersion != "1.0" || !got.RolloutStart.Equal(rollout) || !got.WithNeighbours || c == nil ||
		c.Control != canary.Control || c.Treatment != canary.Treatment || c.OverlapMinutes != 36 || c.Verdict != report.CompareWorse ||
		len(c.Metrics) != 2 || c.Metrics[0] != p95 || !math.IsNaN(c.Metrics[1].RelativeChange) || c.Metrics[1].Verdict != report.CompareInsufficientData ||
		c.SRM == nil || c.SRM.ExpectedShare != 0.2 || !math.IsNaN(c.SRM.PValue) || c.SRM.Mismatch {
		t.Errorf("round trip: %+v canary %+v", got, c)
	}
	if len(c.Operations) != 2 || c.Operations[0].Operation != "GET /cart" || c.Operations[0].Treatment.Requests != 220 ||
		c.Operations[0].OverlapMinutes != 35 || c.Operations[0].Metrics[0] != p95 ||
		c.Operations[1].Metrics == nil || len(c.Operations[1].Metrics) != 0 || c.Operations[1].Verdict != report.CompareInsufficientData {
		t.Errorf("operations round trip: %+v", c.Operations)
	}
	if k := c.ErrorKinds; k == nil || !k.Tested || !k.NewErrorKind || k.Family != 1 || !math.IsInf(k.MDE, 1) || k.Explanation != "NEW_ERROR_KIND: NPE" ||
		len(k.New) != 1 || k.New[0].Kind != "NPE" || !k.New[0].FirstSeen.Equal(first) || !math.IsNaN(k.New[0].BeforeRate) ||
		!math.IsInf(k.New[0].RateRatio, 1) || k.New[0].Minutes != 3 || k.Rose == nil || len(k.Rose) != 0 {
		t.Errorf("error kinds round trip: %+v", c.ErrorKinds)
	}
	if len(got.Neighbours) != 2 || !slices.Equal(got.Neighbours[0].Deployments, e.Neighbours[0].Deployments) ||
		got.Neighbours[0].MeanMsAfter != 120 || !math.IsNaN(got.Neighbours[0].ErrorRateAfter) ||
		got.Neighbours[1].Deployments == nil || len(got.Neighbours[1].Deployments) != 0 {
		t.Errorf("neighbours round trip: %+v", got.Neighbours)
	}

	// Without a canary, neighbours or a rollout start: nil and zero again.
	bare, err := DecodeEvidence(EncodeEvidence(Evidence{Version: "2"}))
	if err != nil || bare.Canary != nil || bare.Neighbours != nil || bare.WithNeighbours || !bare.RolloutStart.IsZero() || bare.Version != "2" {
		t.Errorf("bare round trip: %+v %v", bare, err)
	}
	for _, bad := range []string{"", "\x02", enc[:len(enc)-1], enc + "x"} {
		if _, err := DecodeEvidence(bad); err == nil {
			t.Errorf("%q decoded", bad)
		}
	}
}
