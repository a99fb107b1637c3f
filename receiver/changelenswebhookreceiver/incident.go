package changelenswebhookreceiver

import (
	"crypto/sha256"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/changelens/changelens/internal/eventspan"
)

// defaultIncidentEnvironment is the environment of an incident whose source
// names none (PagerDuty never does; an alert may not).
const defaultIncidentEnvironment = "production"

// incidentSpanIDs derives an incident event's span IDs from its ID and
// status alone: every delivery of one report — retried, redelivered, sent by
// two Alertmanagers of a cluster, through any collector — is the identical
// span, while the opening and the resolution of one incident are two spans.
func incidentSpanIDs(in *eventspan.Incident) (pcommon.TraceID, pcommon.SpanID) {
	sum := sha256.Sum256([]byte("changelens_webhook\x00incident\x00" + in.ID + "\x00" + in.Status()))
	var tid pcommon.TraceID
	var sid pcommon.SpanID
	copy(tid[:], sum[:16])
	copy(sid[:], sum[16:24])
	return tid, sid
}

// unixNano is t in unix nanoseconds, the encoding of eventspan's times.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// bearer checks an Authorization header against a token:
// "Bearer <token>" (the scheme compared case-insensitively, the token in
// constant time).
func bearer(v, token string) error {
	if v == "" {
		return reject(http.StatusUnauthorized, reasonMissingToken, "Authorization: required (Bearer <token>)")
	}
	scheme, got, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || !equalSecret(strings.TrimSpace(got), token) {
		return reject(http.StatusUnauthorized, reasonBadToken, "Authorization: wrong token")
	}
	return nil
}
