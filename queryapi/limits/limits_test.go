package limits

import (
	"strings"
	"testing"
	"time"
)

func TestDefaults(t *testing.T) {
	if got := (Limits{}).WithDefaults(); got != Default() {
		t.Errorf("zero limits = %+v, want the defaults %+v", got, Default())
	}
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
	// A smaller maximum page pulls the default page down with it.
	if got := (Limits{MaxPageSize: 20}).WithDefaults(); got.DefaultPageSize != 20 {
		t.Errorf("default page %d with max 20", got.DefaultPageSize)
	}
}

func TestValidateNamesTheField(t *testing.T) {
	for field, mut := range map[string]func(*Limits){
		"QueryTimeout":     func(l *Limits) { l.QueryTimeout = -time.Second },
		"MaxReportRange":   func(l *Limits) { l.MaxReportRange = -1 },
		"MaxSeriesBuckets": func(l *Limits) { l.MaxSeriesBuckets = -5 },
		"DefaultPageSize":  func(l *Limits) { l.DefaultPageSize = l.MaxPageSize + 1 },
		"MaxSeriesPoints":  func(l *Limits) { l.MaxSeriesPoints = l.MaxSeriesBuckets - 1 },
	} {
		l := Default()
		mut(&l)
		if err := l.Validate(); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: %v", field, err)
		}
	}
}

func TestCompareRangeIsTheSmallerBound(t *testing.T) {
	if got := Default().CompareRange(); got != MaxCompareRange {
		t.Errorf("default CompareRange = %v, want the week cap %v", got, MaxCompareRange)
	}
	l := Default()
	l.MaxLatencyRange = 48 * time.Hour
	if got := l.CompareRange(); got != 48*time.Hour {
		t.Errorf("CompareRange with MaxLatencyRange 48h = %v, want 48h", got)
	}
}
