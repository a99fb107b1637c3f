package changelensprocessor

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/changelens/changelens/processor/changelensprocessor/internal/metadatatest"
)

func itoa(i int) string { return strconv.Itoa(i) }

func unsafeData(s string) *byte { return unsafe.StringData(s) }

// droppedCount reads the spans_dropped counter for reason from the processor's own telemetry.
func droppedCount(t *testing.T, h *harness, reason dropReason) int64 {
	t.Helper()
	return counterValue(t, h, "otelcol_processor_changelens_spans_dropped", attribute.String("reason", reason.String()))
}

func counterValue(t *testing.T, h *harness, name string, kv ...attribute.KeyValue) int64 {
	t.Helper()
	m, err := h.tel.GetMetric(name)
	if err != nil {
		return 0
	}
	sum, ok := m.Data.(metricdata.Sum[int64])
	require.True(t, ok, "%s is not an int sum", name)
	want := attribute.NewSet(kv...)
	var total int64
	for _, dp := range sum.DataPoints {
		if dp.Attributes.Equals(&want) {
			total += dp.Value
		}
	}
	return total
}

func sourceAttr(s string) attribute.KeyValue { return attribute.String("source", s) }

// metadata.yaml documents the spans_dropped reasons the code counts, all of them.
func TestMetadataListsDropReasons(t *testing.T) {
	b, err := os.ReadFile("metadata.yaml")
	require.NoError(t, err)
	m := regexp.MustCompile(`Spans dropped, by reason \(([^)]*)\)`).FindSubmatch(b)
	require.NotNil(t, m, "spans_dropped description without its reasons")
	require.Equal(t, dropReasonNames[:], strings.Split(string(m[1]), ", "))
}

// The call_events counter adds up the call events of every batch, under the
// name, unit and description metadata.yaml gives it.
func TestCallEventsMetric(t *testing.T) {
	h := newHarness(t, nil)
	h.send(checkoutRequest()) // three calls
	h.send(buildTraces(
		outgoing("svc", ptrace.SpanKindClient, "GET", 1, nil),
		outgoing("svc", ptrace.SpanKindInternal, "render", 2, nil),
		outgoing("", ptrace.SpanKindProducer, "orphan publish", 3, nil),
	))
	h.stop()
	metadatatest.AssertEqualProcessorChangelensCallEvents(t, h.tel,
		[]metricdata.DataPoint[int64]{{Value: 4}}, metricdatatest.IgnoreTimestamp())
}
