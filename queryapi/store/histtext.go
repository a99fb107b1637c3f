package store

import (
	"fmt"
	"strconv"
	"strings"
)

// parseHistogram reads a histogram sent as text by a query
// (cohort_minutes.sql: arrayStringConcat of toString of each element):
// keys "3,17,40" and weights "12,1.5,7". Empty text is an empty (not nil)
// histogram, as the driver scans an empty array. Weights are whole numbers
// almost always and are read without strconv then; any other text is read
// by strconv.ParseFloat, which gives back the Float64 the server printed
// (toString prints the shortest decimal that reads back exactly).
func parseHistogram(keysText, weightsText string) ([]uint16, []float64, error) {
	n := 0
	if keysText != "" {
		n = strings.Count(keysText, ",") + 1
	}
	keys, weights := make([]uint16, 0, n), make([]float64, 0, n)
	for k := range strings.SplitSeq(keysText, ",") {
		if keysText == "" {
			break
		}
		v, ok := wholeNumber(k)
		if !ok || v > 65535 {
			return nil, nil, fmt.Errorf("histogram key %q is not a UInt16", k)
		}
		keys = append(keys, uint16(v))
	}
	for w := range strings.SplitSeq(weightsText, ",") {
		if weightsText == "" {
			break
		}
		if v, ok := wholeNumber(w); ok {
			weights = append(weights, float64(v))
			continue
		}
		v, err := strconv.ParseFloat(w, 64)
		if err != nil {
			return nil, nil, fmt.Errorf("histogram weight: %w", err)
		}
		weights = append(weights, v)
	}
	if len(keys) != len(weights) {
		return nil, nil, fmt.Errorf("histogram of %d keys and %d weights", len(keys), len(weights))
	}
	return keys, weights, nil
}

// wholeNumber reads s as a decimal of at most 15 digits (exact as a
// Float64) and nothing else.
func wholeNumber(s string) (uint64, bool) {
	if s == "" || len(s) > 15 {
		return 0, false
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		d := s[i] - '0'
		if d > 9 {
			return 0, false
		}
		v = v*10 + uint64(d)
	}
	return v, true
}
