// Package chident holds the rule for the ClickHouse names changelens puts
// into SQL text (database and cluster names from configuration, never from
// requests): [A-Za-z_][A-Za-z0-9_]{0,63}, so they are safe even unquoted.
package chident

// Valid reports whether s is such a name.
func Valid(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
