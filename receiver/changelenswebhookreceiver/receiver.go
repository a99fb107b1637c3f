package changelenswebhookreceiver

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/changelens/changelens/internal/eventspan"
	"github.com/changelens/changelens/receiver/changelenswebhookreceiver/internal/metadata"
)

// Source names: the metrics' source attribute, the span's
// changelens.webhook.source and the prefix of its deployment.id.
const (
	sourceGitHub       = "github"
	sourceArgoCD       = "argocd"
	sourceCDEvents     = "cdevents"
	sourcePagerDuty    = eventspan.IncidentSourcePagerDuty
	sourceAlertmanager = eventspan.IncidentSourceAlertmanager
)

// Reasons of the rejected metric; metadata.yaml lists them all (tested).
const (
	reasonMissingSignature = "missing_signature"
	reasonBadSignature     = "bad_signature"
	reasonMissingToken     = "missing_token"
	reasonBadToken         = "bad_token"
	reasonMethod           = "method"
	reasonMediaType        = "media_type"
	reasonMalformed        = "malformed"
	reasonConsumer         = "consumer"
)

var rejectReasons = []string{
	reasonMissingSignature, reasonBadSignature, reasonMissingToken, reasonBadToken,
	reasonMethod, reasonMediaType, reasonMalformed, reasonConsumer,
}

// rejection is a delivery refused: nothing of it is passed on.
type rejection struct {
	status int
	reason string // the rejected metric's reason
	msg    string // the answer's error, naming the field when it is one
}

func (r *rejection) Error() string { return r.msg }

func reject(status int, reason, format string, args ...any) *rejection {
	return &rejection{status: status, reason: reason, msg: fmt.Sprintf(format, args...)}
}

// malformed is a 400 naming the field ("deployment.environment: required").
func malformed(field, problem string) *rejection {
	return &rejection{status: http.StatusBadRequest, reason: reasonMalformed, msg: field + ": " + problem}
}

// delivery is an authenticated, well-formed request: a deployment to pass
// on, or incidents to pass on, or (neither) one answered with status and
// passed on to nobody.
type delivery struct {
	deployment *deployment
	incidents  []eventspan.Incident
	commits    []eventspan.Commit // a GitHub push's
	// skipped counts the parts of a delivery that are no incident (an
	// Alertmanager delivery's alerts not matching match_labels or naming
	// no service): each is counted as ignored.
	skipped int
	status  int
	note    string
}

func ignore(status int, note string) delivery { return delivery{status: status, note: note} }

// ignored is how many the ignored counter counts for a delivery passed on
// to nobody: its skipped parts (alerts), else the delivery.
func (d *delivery) ignored() int64 { return int64(max(d.skipped, 1)) }

// source authenticates and decodes one source's deliveries. parse returns a
// *rejection as its error.
type source struct {
	name  string
	path  string
	parse func(req *http.Request, body []byte) (delivery, error)
}

type webhookReceiver struct {
	cfg     *Config
	set     receiver.Settings
	next    consumer.Traces
	obsrecv *receiverhelper.ObsReport
	tel     *metadata.TelemetryBuilder
	handler http.Handler
	sources map[string]*source // by path
	attrs   map[string]attrSets

	server *http.Server
	addr   string // the listener's address, known once started
	wg     sync.WaitGroup
}

// attrSets are one source's metric attribute sets, built once so that
// counting a delivery allocates nothing.
type attrSets struct {
	ignored   metric.MeasurementOption
	results   map[string]metric.MeasurementOption
	incidents map[string]metric.MeasurementOption // by status
	rejected  map[string]metric.MeasurementOption
}

func newReceiver(set receiver.Settings, cfg *Config, next consumer.Traces) (*webhookReceiver, error) {
	obsrecv, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID: set.ID, Transport: "http", ReceiverCreateSettings: set,
	})
	if err != nil {
		return nil, err
	}
	tel, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	r := &webhookReceiver{cfg: cfg, set: set, next: next, obsrecv: obsrecv, tel: tel,
		sources: map[string]*source{}, attrs: map[string]attrSets{}}
	if g := cfg.GitHub.Get(); g != nil {
		r.addSource(&source{name: sourceGitHub, path: g.Path, parse: newGitHub(g).parse})
	}
	if a := cfg.ArgoCD.Get(); a != nil {
		r.addSource(&source{name: sourceArgoCD, path: a.Path, parse: newArgoCD(a).parse})
	}
	if e := cfg.CDEvents.Get(); e != nil {
		r.addSource(&source{name: sourceCDEvents, path: e.Path, parse: newCDEvents(e).parse})
	}
	if p := cfg.PagerDuty.Get(); p != nil {
		r.addSource(&source{name: sourcePagerDuty, path: p.Path, parse: newPagerDuty(p).parse})
	}
	if a := cfg.Alertmanager.Get(); a != nil {
		r.addSource(&source{name: sourceAlertmanager, path: a.Path, parse: newAlertmanager(a).parse})
	}
	mux := http.NewServeMux()
	for p, s := range r.sources {
		mux.Handle(p, r.serve(s))
	}
	r.handler = mux
	return r, nil
}

func (r *webhookReceiver) addSource(s *source) {
	r.sources[s.path] = s
	with := func(kv ...attribute.KeyValue) metric.MeasurementOption {
		return metric.WithAttributeSet(attribute.NewSet(append(kv, attribute.String("source", s.name))...))
	}
	a := attrSets{ignored: with(), results: map[string]metric.MeasurementOption{},
		incidents: map[string]metric.MeasurementOption{}, rejected: map[string]metric.MeasurementOption{}}
	for _, res := range []string{resultSuccess, resultFailure} {
		a.results[res] = with(attribute.String("result", res))
	}
	for _, st := range []string{eventspan.IncidentOpen, eventspan.IncidentResolved} {
		a.incidents[st] = with(attribute.String("status", st))
	}
	for _, reason := range rejectReasons {
		a.rejected[reason] = with(attribute.String("reason", reason))
	}
	r.attrs[s.name] = a
}

func (r *webhookReceiver) Start(ctx context.Context, host component.Host) error {
	ln, err := r.cfg.ToListener(ctx)
	if err != nil {
		return fmt.Errorf("changelens_webhook: listen on %s: %w", r.cfg.NetAddr.Endpoint, err)
	}
	r.server, err = r.cfg.ToServer(ctx, host.GetExtensions(), r.set.TelemetrySettings, r.handler,
		confighttp.WithErrorHandler(r.serverError))
	if err != nil {
		_ = ln.Close()
		return err
	}
	r.addr = ln.Addr().String()
	r.set.Logger.Info("changelens_webhook: listening", zap.String("endpoint", r.addr), zap.Strings("paths", r.paths()))
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if err := r.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(err))
		}
	}()
	return nil
}

func (r *webhookReceiver) Shutdown(ctx context.Context) error {
	var err error
	if r.server != nil {
		err = r.server.Shutdown(ctx)
	}
	r.wg.Wait()
	r.tel.Shutdown()
	return err
}

func (r *webhookReceiver) paths() []string {
	var ps []string
	for p := range r.sources {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

// serverError answers confighttp's own refusals (a body past
// max_request_body_size, an unknown Content-Encoding) as ours are answered,
// and counts them against the source.
func (r *webhookReceiver) serverError(w http.ResponseWriter, req *http.Request, msg string, status int) {
	rej := reject(status, reasonMalformed, "%s", msg)
	if s := r.sources[req.URL.Path]; s != nil {
		r.refuse(req, w, s, rej)
		return
	}
	writeJSON(w, status, map[string]string{"error": msg})
}

func (r *webhookReceiver) serve(s *source) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		ctx := req.Context()
		if req.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			r.refuse(req, w, s, reject(http.StatusMethodNotAllowed, reasonMethod, "method %s: only POST", req.Method))
			return
		}
		body, err := readBody(req)
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				r.refuse(req, w, s, reject(http.StatusRequestEntityTooLarge, reasonMalformed, "body: larger than %d bytes", tooLarge.Limit))
				return
			}
			r.refuse(req, w, s, reject(http.StatusBadRequest, reasonMalformed, "body: %v", err))
			return
		}
		del, err := s.parse(req, body)
		if err != nil {
			var rej *rejection
			if !errors.As(err, &rej) {
				rej = reject(http.StatusBadRequest, reasonMalformed, "%v", err)
			}
			r.refuse(req, w, s, rej)
			return
		}
		switch {
		case del.deployment != nil:
			r.passDeployment(w, req, s, del.deployment)
		case len(del.incidents) > 0:
			r.passIncidents(w, req, s, &del)
		case len(del.commits) > 0:
			r.passCommits(w, req, s, &del)
		default:
			r.tel.ReceiverChangelensWebhookIgnored.Add(ctx, del.ignored(), r.attrs[s.name].ignored)
			writeJSON(w, del.status, map[string]string{"status": "ignored", "reason": del.note})
		}
	}
}

func (r *webhookReceiver) passDeployment(w http.ResponseWriter, req *http.Request, s *source, d *deployment) {
	ctx := req.Context()
	td := ptrace.NewTraces()
	d.appendTo(td)
	opCtx := r.obsrecv.StartTracesOp(ctx)
	err := r.next.ConsumeTraces(opCtx, td)
	r.obsrecv.EndTracesOp(opCtx, s.name, 1, err)
	if err != nil {
		// 503 whatever the error: every source retries (or lets a
		// person redeliver) on 5xx, and the span is made again from
		// the same delivery, so a retry cannot duplicate anything.
		r.set.Logger.Warn("changelens_webhook: the pipeline refused a deployment", zap.String("source", s.name),
			zap.String("delivery", deliveryID(req)), zap.String("deployment.id", d.externalID), zap.Error(err))
		w.Header().Set("Retry-After", "5")
		r.refuse(req, w, s, reject(http.StatusServiceUnavailable, reasonConsumer, "the collector could not take the deployment now; retry"))
		return
	}
	r.tel.ReceiverChangelensWebhookDeployments.Add(ctx, 1, r.attrs[s.name].results[d.result()])
	writeJSON(w, http.StatusOK, map[string]string{
		"status": "accepted", "deployment_id": d.externalID, "service": d.service,
		"environment": d.environment, "version": d.version, "result": d.result(),
	})
}

// incidentAnswer is the answer to a delivery that passed incidents on.
type incidentAnswer struct {
	Status    string   `json:"status"`
	Incidents []string `json:"incidents"`
	// Ignored counts the alerts of an Alertmanager delivery that are no
	// incident.
	Ignored int `json:"ignored,omitempty"`
}

func (r *webhookReceiver) passIncidents(w http.ResponseWriter, req *http.Request, s *source, del *delivery) {
	ctx := req.Context()
	td := ptrace.NewTraces()
	ids := make([]string, len(del.incidents))
	for i := range del.incidents {
		in := &del.incidents[i]
		in.TraceID, in.SpanID = incidentSpanIDs(in)
		eventspan.AppendIncident(td, *in)
		ids[i] = in.ID
	}
	opCtx := r.obsrecv.StartTracesOp(ctx)
	err := r.next.ConsumeTraces(opCtx, td)
	r.obsrecv.EndTracesOp(opCtx, s.name, len(del.incidents), err)
	if err != nil {
		r.set.Logger.Warn("changelens_webhook: the pipeline refused incidents", zap.String("source", s.name),
			zap.String("delivery", deliveryID(req)), zap.Strings("incident.ids", ids), zap.Error(err))
		w.Header().Set("Retry-After", "5")
		r.refuse(req, w, s, reject(http.StatusServiceUnavailable, reasonConsumer, "the collector could not take the incidents now; retry"))
		return
	}
	for i := range del.incidents {
		r.tel.ReceiverChangelensWebhookIncidents.Add(ctx, 1, r.attrs[s.name].incidents[del.incidents[i].Status()])
	}
	if del.skipped > 0 {
		r.tel.ReceiverChangelensWebhookIgnored.Add(ctx, int64(del.skipped), r.attrs[s.name].ignored)
	}
	writeJSON(w, http.StatusOK, incidentAnswer{Status: "accepted", Incidents: ids, Ignored: del.skipped})
}

// readBody reads a body of declared length (senders declare it) in one
// allocation instead of io.ReadAll's doubling. The server stops the body at
// its declared length, and max_request_body_size still applies.
func readBody(req *http.Request) ([]byte, error) {
	if n := req.ContentLength; n > 0 && n <= 1<<20 {
		buf := make([]byte, n)
		_, err := io.ReadFull(req.Body, buf)
		return buf, err
	}
	return io.ReadAll(req.Body)
}

// refuse answers a rejection and counts it; what a delivery carried is never
// logged (it may hold a secret the sender misplaced), only why it was refused.
func (r *webhookReceiver) refuse(req *http.Request, w http.ResponseWriter, s *source, rej *rejection) {
	r.tel.ReceiverChangelensWebhookRejected.Add(req.Context(), 1, r.attrs[s.name].rejected[rej.reason])
	if rej.reason != reasonConsumer {
		r.set.Logger.Debug("changelens_webhook: delivery refused", zap.String("source", s.name), zap.String("delivery", deliveryID(req)),
			zap.String("reason", rej.reason), zap.Int("status", rej.status), zap.String("error", rej.msg))
	}
	writeJSON(w, rej.status, map[string]string{"error": rej.msg})
}

// deliveryID is the sender's name for a delivery, the one its delivery log
// shows (GitHub's X-GitHub-Delivery, a CloudEvent's ce-id, PagerDuty's
// X-Webhook-Id), so a refusal
// logged here can be found there.
func deliveryID(req *http.Request) string {
	for _, h := range []string{"X-GitHub-Delivery", "Ce-Id", "X-Webhook-Id"} {
		if id := req.Header.Get(h); id != "" {
			return id
		}
	}
	return ""
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// equalSecret compares in constant time, so a guesser learns nothing from
// how long a wrong guess took.
func equalSecret(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
