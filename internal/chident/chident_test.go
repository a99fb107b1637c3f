package chident

import (
	"strings"
	"testing"
)

func TestValid(t *testing.T) {
	for s, want := range map[string]bool{
		"changelens": true, "_x1": true, "Obs_2024": true, strings.Repeat("a", 64): true,
		"": false, "1db": false, "a-b": false, "db; DROP TABLE x": false, "a.b": false,
		"`x`": false, strings.Repeat("a", 65): false, "é": false,
	} {
		if got := Valid(s); got != want {
			t.Errorf("Valid(%q) = %v, want %v", s, got, want)
		}
	}
}
