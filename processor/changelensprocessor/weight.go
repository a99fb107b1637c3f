package changelensprocessor

import (
	"strings"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
)

// samplingWeight is a span's adjusted count from the OpenTelemetry tracestate
// threshold (ot=th:…): 1/probability, so th:8 (probability 1/2) weighs 2.
// Without a threshold, or with one that cannot be parsed, the weight is 1.
func samplingWeight(traceState string) float64 {
	// Most tracestates carry no "ot=" entry: skip the parser for them.
	if !strings.Contains(traceState, "ot=") {
		return 1
	}
	w3c, err := sampling.NewW3CTraceState(traceState)
	if err != nil {
		return 1
	}
	ot := w3c.OTelValue()
	if _, ok := ot.TValueThreshold(); !ok {
		return 1
	}
	if c := ot.AdjustedCount(); c > 0 {
		return c
	}
	return 1
}
