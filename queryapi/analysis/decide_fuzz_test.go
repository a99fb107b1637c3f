package analysis

import (
	"testing"

	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/testkit/statstest"
)

func FuzzDecide(f *testing.F) {
	f.Add([]byte{10, 11, 12, 13}, []byte{30, 31, 32}, 100.0, 1.0, 100.0, 9.0, 12.0, 32.0, uint8(0))
	f.Add([]byte{}, []byte{}, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, uint8(1))
	f.Fuzz(func(t *testing.T, bb, ba []byte, rb, eb, ra, ea, pb, pa float64, mode uint8) {
		before := Side{LatenciesMs: statstest.FloatsFrom(bb, mode, 80), P95Ms: pb, Requests: rb, Errors: eb}
		after := Side{LatenciesMs: statstest.FloatsFrom(ba, mode, 80), P95Ms: pa, Requests: ra, Errors: ea}
		d, err := decide(before, after, DefaultConfig())
		if err != nil {
			return
		}
		switch d.Verdict {
		case report.VerdictDegraded, report.VerdictImproved, report.VerdictNoChange, report.VerdictInsufficientData:
		default:
			t.Fatalf("verdict %v", d.Verdict)
		}
		for _, p := range []float64{d.Latency.PIncrease, d.Latency.PDecrease, d.ErrorRate.PIncrease, d.ErrorRate.PDecrease} {
			if !(p >= 0 && p <= 1) {
				t.Fatalf("p = %v in %+v", p, d)
			}
		}
		if (d.Verdict == report.VerdictDegraded) != (len(d.FailureReasons()) > 0) {
			t.Fatalf("verdict %v with reasons %v", d.Verdict, d.Rules)
		}
	})
}
