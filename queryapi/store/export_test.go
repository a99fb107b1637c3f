package store

// SetVerdictIDsPerQuery sets the chunk size of StoredVerdicts for a test and
// returns the function that restores it.
func SetVerdictIDsPerQuery(n int) (restore func()) {
	old := verdictIDsPerQuery
	verdictIDsPerQuery = n
	return func() { verdictIDsPerQuery = old }
}
