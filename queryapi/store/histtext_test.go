package store

import (
	"context"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/changelens/changelens/testkit/chtest"
)

func TestParseHistogram(t *testing.T) {
	keys, weights, err := parseHistogram("3,17,65535", "12,1.5,0.30000000000000004")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 3 || keys[0] != 3 || keys[1] != 17 || keys[2] != 65535 {
		t.Fatalf("keys %v", keys)
	}
	tenth, fifth := 0.1, 0.2 // variables: a constant expression would be exact
	if weights[0] != 12 || weights[1] != 1.5 || weights[2] != tenth+fifth {
		t.Fatalf("weights %v", weights)
	}
	keys, weights, err = parseHistogram("", "")
	if err != nil || keys == nil || weights == nil || len(keys)+len(weights) != 0 {
		t.Fatalf("empty: %v %v %v (want empty, not nil, as the driver scans an empty array)", keys, weights, err)
	}
	for _, bad := range [][2]string{{"1,2", "1"}, {"65536", "1"}, {"-1", "1"}, {"1", "x"}, {"1,", "1,1"}, {"1.5", "1"}} {
		if _, _, err := parseHistogram(bad[0], bad[1]); err == nil {
			t.Errorf("parseHistogram(%q, %q) accepted", bad[0], bad[1])
		}
	}
	// The whole-number path reads what strconv reads, up to 15 digits.
	for _, s := range []string{"0", "7", "999999999999999", "1000000000000000", "123456789012345678"} {
		_, w, err := parseHistogram("1", s)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := strconv.ParseFloat(s, 64)
		if w[0] != want {
			t.Errorf("%s read as %v, want %v", s, w[0], want)
		}
	}
}

// TestHistogramTextReadsBackExactly: the server's text of a histogram
// (cohort_minutes.sql's histogram_text) parses back to exactly the arrays
// the driver scans, for weights whole, fractional, tiny and huge, on the
// server under test.
func TestHistogramTextReadsBackExactly(t *testing.T) {
	srv := chtest.Shared(t)
	conn := srv.Conn(t, "default")
	// Literals as text (18.16's parser refuses a subnormal literal), and
	// computed values.
	const weights = "arrayConcat(arrayMap(x -> toFloat64(x), ['0', '1', '12', '1.5', '0.1', '1e-300', '1e20', '123456789012345678'," +
		" '9007199254740993', '1.7976931348623157e308', '6.02214076e23']), [1/3, 2/3, pow(2, -1074), 0.1 + 0.2])"
	var keysText, weightsText string
	var wantKeys []uint16
	var wantWeights []float64
	q := "SELECT arrayStringConcat(arrayMap(x -> toString(x), k), ','), arrayStringConcat(arrayMap(x -> toString(x), w), ','), k, w" +
		" FROM (SELECT arrayMap(i -> toUInt16(i * 4681), range(15)) AS k, " + weights + " AS w)"
	if err := conn.QueryRow(context.Background(), q).Scan(&keysText, &weightsText, &wantKeys, &wantWeights); err != nil {
		t.Fatal(err)
	}
	keys, ws, err := parseHistogram(keysText, weightsText)
	if err != nil {
		t.Fatalf("%v (text %q / %q)", err, keysText, weightsText)
	}
	if len(keys) != len(wantKeys) || len(ws) != len(wantWeights) {
		t.Fatalf("read %d/%d, want %d/%d", len(keys), len(ws), len(wantKeys), len(wantWeights))
	}
	for i := range keys {
		if keys[i] != wantKeys[i] {
			t.Errorf("key %d: %d, want %d", i, keys[i], wantKeys[i])
		}
		if math.Float64bits(ws[i]) != math.Float64bits(wantWeights[i]) {
			t.Errorf("weight %d: %v from %q, want %v", i, ws[i], strings.Split(weightsText, ",")[i], wantWeights[i])
		}
	}
}
