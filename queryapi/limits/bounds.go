package limits

import "time"

// The bounds of a request's values, in one table: the server checks every
// request against them (naming the parameter, 400), and the OpenAPI
// document states them; the use cases behind it trust their input.
var (
	// MinTime and MaxTime bound every timestamp of a request, [MinTime,
	// MaxTime). ClickHouse's DateTime ends in 2106; stopping at 2100 leaves
	// room for the windows the analysis reads past a range's end.
	MinTime = time.Unix(0, 0).UTC()
	MaxTime = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
)

const (
	// MaxNameLen bounds a service, environment, version or flag name, in
	// characters (as the OpenAPI document's maxLength counts them).
	MaxNameLen = 256
	// MaxOperationLen bounds an operation ("GET /a/long/{route}").
	MaxOperationLen = 1024
	// MaxPageTokenLen bounds a page token (printable ASCII, so bytes =
	// characters).
	MaxPageTokenLen = 1024
	// DeploymentIDLen is a deployment id's length: 32 lowercase hex digits
	// (a hash of the unit, version and time), checked as such.
	DeploymentIDLen = 32
)
