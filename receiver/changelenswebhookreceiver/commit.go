package changelenswebhookreceiver

import (
	"crypto/sha256"
	"net/http"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"

	"github.com/changelens/changelens/internal/eventspan"
)

// commitSpanIDs derives a commit event's span IDs from its repository and
// ID alone: every delivery of a push — retried, redelivered, through any
// collector — and every push carrying the same commit (a branch, then
// main) give the same span.
func commitSpanIDs(c *eventspan.Commit) (pcommon.TraceID, pcommon.SpanID) {
	sum := sha256.Sum256([]byte("changelens_webhook\x00commit\x00" + c.Repository + "\x00" + c.SHA))
	var tid pcommon.TraceID
	var sid pcommon.SpanID
	copy(tid[:], sum[:16])
	copy(sid[:], sum[16:24])
	return tid, sid
}

// commitAnswer is the answer to a delivery that passed commits on.
type commitAnswer struct {
	Status  string   `json:"status"`
	Service string   `json:"service"`
	Commits []string `json:"commits"`
	// Ignored counts the commits without an ID or a readable timestamp.
	Ignored int `json:"ignored,omitempty"`
}

func (r *webhookReceiver) passCommits(w http.ResponseWriter, req *http.Request, s *source, del *delivery) {
	ctx := req.Context()
	td := ptrace.NewTraces()
	ids := make([]string, len(del.commits))
	for i := range del.commits {
		c := &del.commits[i]
		c.TraceID, c.SpanID = commitSpanIDs(c)
		eventspan.AppendCommit(td, *c)
		ids[i] = c.SHA
	}
	opCtx := r.obsrecv.StartTracesOp(ctx)
	err := r.next.ConsumeTraces(opCtx, td)
	r.obsrecv.EndTracesOp(opCtx, s.name, len(del.commits), err)
	if err != nil {
		r.set.Logger.Warn("changelens_webhook: the pipeline refused commits", zap.String("source", s.name),
			zap.String("delivery", deliveryID(req)), zap.Int("commits", len(ids)), zap.Error(err))
		w.Header().Set("Retry-After", "5")
		r.refuse(req, w, s, reject(http.StatusServiceUnavailable, reasonConsumer, "the collector could not take the commits now; retry"))
		return
	}
	// The source alone is the commits' attribute set, as it is the
	// ignored deliveries'.
	r.tel.ReceiverChangelensWebhookCommits.Add(ctx, int64(len(del.commits)), r.attrs[s.name].ignored)
	if del.skipped > 0 {
		r.tel.ReceiverChangelensWebhookIgnored.Add(ctx, int64(del.skipped), r.attrs[s.name].ignored)
	}
	writeJSON(w, http.StatusOK, commitAnswer{Status: "accepted", Service: del.commits[0].Service, Commits: ids, Ignored: del.skipped})
}
