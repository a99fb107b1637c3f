// Package settle keeps the stored verdicts of deployments up to date and
// turns verdicts into notifications: each cycle it asks queryapi/usecase.Judge
// for every deployment of the lookback — which reads every window's counts
// first and judges from its windows only a deployment that is new or whose
// counts changed since its verdict was stored — stores the verdicts of
// settled deployments that are new or changed (late or replayed data
// re-settles a window), and hands due events to the notifier.
package settle

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/store"
	"github.com/changelens/changelens/queryapi/usecase"
	"github.com/changelens/changelens/worker/notify"
	"github.com/changelens/changelens/worker/writer"
)

// Config configures a Settler.
type Config struct {
	// Lookback: deployments with deploy time in [now − Lookback, now) are
	// judged each cycle (and re-settled when their data changed). Default
	// 30 days.
	Lookback time.Duration
	// NotifyLookback: only deployments this recent are notified (a first
	// start does not announce history). Default 24h.
	NotifyLookback time.Duration
	// NotifyTimeout bounds a cycle's deliveries; what is left is sent by
	// the next cycle. Default 1m.
	NotifyTimeout time.Duration
}

// Settler runs cycles.
type Settler struct {
	cfg      Config
	svc      *usecase.Service
	st       *store.Store
	w        *writer.Writer
	notifier *notify.Notifier // nil: no notifications
	log      *slog.Logger
	verdicts metric.Int64Counter
	// episodesUpTo: the bound of the last episode snapshot stored.
	episodesUpTo time.Time
}

// New returns a Settler judging through svc (which must ignore stored
// verdicts), reading stored ones through st and writing through w.
func New(cfg Config, svc *usecase.Service, st *store.Store, w *writer.Writer, n *notify.Notifier, meter metric.Meter, log *slog.Logger) (*Settler, error) {
	if cfg.Lookback <= 0 {
		cfg.Lookback = 30 * 24 * time.Hour
	}
	if cfg.NotifyLookback <= 0 {
		cfg.NotifyLookback = 24 * time.Hour
	}
	if cfg.NotifyTimeout <= 0 {
		cfg.NotifyTimeout = time.Minute
	}
	c, err := meter.Int64Counter("changelens.deployment.verdicts",
		metric.WithDescription("Deployments whose verdict was settled, by service, environment and verdict (counted once per deployment when first stored)."),
		metric.WithUnit("{deployment}"))
	if err != nil {
		return nil, err
	}
	return &Settler{cfg: cfg, svc: svc, st: st, w: w, notifier: n, log: log, verdicts: c}, nil
}

// Result says what a cycle did.
type Result struct {
	Judged, Settled, Stored, Resettled, Notified int
	// Evidence: settled deployments whose impact evidence was (re)stored.
	Evidence int
	// EpisodeUnits: the units of the episode snapshot stored (0: none
	// this cycle, its settled part had not grown).
	EpisodeUnits int
}

// Cycle judges, stores and notifies once.
func (s *Settler) Cycle(ctx context.Context, now time.Time) (Result, error) {
	var r Result
	j, err := s.svc.Judge(ctx, now.Add(-s.cfg.Lookback), now.Add(time.Minute))
	if err != nil {
		return r, fmt.Errorf("settle: judging: %w", err)
	}
	r.Judged, r.Settled = len(j.Settled)+len(j.Open)+len(j.Failed), len(j.Settled)
	ids := make([]string, len(j.Settled))
	for i, v := range j.Settled {
		ids[i] = v.Impact.Deployment.ID
	}
	stored, err := s.st.StoredVerdicts(ctx, s.svc.ConfigHash(), ids)
	if err != nil {
		return r, fmt.Errorf("settle: reading stored verdicts: %w", err)
	}
	var write []writer.Verdict
	written := map[string]bool{}
	for _, v := range j.Settled {
		old, ok := stored[v.Impact.Deployment.ID]
		switch {
		case !ok:
			r.Stored++
			d := v.Impact.Deployment
			s.verdicts.Add(ctx, 1, metric.WithAttributes(attribute.String("service", d.Service),
				attribute.String("environment", d.Environment), attribute.String("verdict", d.Verdict.String())))
		case !sameVerdict(old, v):
			r.Resettled++
			s.log.Info("verdict re-settled: its windows changed", "deployment", v.Impact.Deployment.ID,
				"verdict", v.Impact.Deployment.Verdict.String())
		default:
			continue
		}
		write = append(write, VerdictOf(v))
		written[v.Impact.Deployment.ID] = true
	}
	if err := s.w.StoreVerdicts(ctx, s.svc.ConfigHash(), write, now); err != nil {
		return r, fmt.Errorf("settle: storing verdicts: %w", err)
	}
	// The evidence only spares the API reads (it computes what is missing
	// live): a failure to store it must not hold back the notifications.
	if r.Evidence, err = s.storeEvidence(ctx, j.Settled, ids, written, now); err != nil {
		s.log.Warn("impact evidence not stored; the API computes it live meanwhile", "error", err)
	}
	// Likewise the episode snapshot only spares the API a read.
	if r.EpisodeUnits, err = s.storeEpisodes(ctx, now); err != nil {
		s.log.Warn("episode snapshot not stored; the API reads the history meanwhile", "error", err)
	}
	if s.notifier == nil {
		return r, nil
	}
	var impacts []report.Impact
	for _, v := range j.Settled {
		impacts = append(impacts, v.Impact)
	}
	impacts = append(impacts, j.Open...)
	var events []notify.Event
	since := now.Add(-s.cfg.NotifyLookback)
	for _, e := range notify.EventsOf(impacts, s.notifier.All()) {
		if !e.Deployment.DeployTime.Before(since) && s.notifier.Due(e.Kind) {
			events = append(events, e)
		}
	}
	for _, d := range j.Failed {
		if !d.DeployTime.Before(since) {
			events = append(events, notify.EventOfFailure(d))
		}
	}
	nctx, cancel := context.WithTimeout(ctx, s.cfg.NotifyTimeout)
	defer cancel()
	r.Notified, err = s.notifier.Deliver(nctx, events)
	if err != nil {
		return r, fmt.Errorf("settle: %w", err)
	}
	return r, nil
}

// storeEpisodes stores a snapshot of every unit's settled version
// episodes (schema v19) when the settled part of the history has grown by
// a bucket since the last one, and returns its number of units. A fresh
// API process reads it instead of the whole history of version_presence.
func (s *Settler) storeEpisodes(ctx context.Context, now time.Time) (int, error) {
	upTo := s.svc.EpisodesBound(now)
	if !upTo.After(s.episodesUpTo) {
		return 0, nil
	}
	re, units, err := s.svc.SettledEpisodes(ctx, upTo)
	if err != nil {
		return 0, fmt.Errorf("reading the settled episodes: %w", err)
	}
	if err := s.w.StoreEpisodes(ctx, re, upTo, units, now); err != nil {
		return 0, err
	}
	s.episodesUpTo = upTo
	return len(units), nil
}

// storeEvidence stores the impact evidence of the settled deployments
// (ids: theirs) that have none that fits, or whose verdict was written
// this cycle (written: their data changed), and returns how many.
func (s *Settler) storeEvidence(ctx context.Context, settled []usecase.Settled, ids []string, written map[string]bool, now time.Time) (int, error) {
	stored, err := s.st.StoredEvidence(ctx, s.svc.ConfigHash(), ids)
	if err != nil {
		return 0, fmt.Errorf("reading stored evidence: %w", err)
	}
	var write []writer.Evidence
	n := 0
	flush := func() error {
		if err := s.w.StoreEvidence(ctx, s.svc.ConfigHash(), write, now); err != nil {
			return fmt.Errorf("storing evidence: %w", err)
		}
		n += len(write)
		write = write[:0]
		return nil
	}
	for _, v := range settled {
		d := v.Impact.Deployment
		if e, ok := stored[d.ID]; ok && !written[d.ID] && v.Fits(e) {
			continue
		}
		e, err := s.svc.Evidence(ctx, v)
		if err != nil {
			return n, fmt.Errorf("computing the evidence of %s: %w", d.ID, err)
		}
		write = append(write, writer.Evidence{ID: d.ID, Service: d.Service, Environment: d.Environment, Evidence: e})
		// A first cycle over a long lookback computes many: what is done
		// is kept even if a later one fails.
		if len(write) == evidenceBatch {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	return n, flush()
}

// evidenceBatch is the rows of evidence written at once.
const evidenceBatch = 100

// VerdictOf is the stored form of a settled deployment.
func VerdictOf(v usecase.Settled) writer.Verdict {
	d := v.Impact.Deployment
	return writer.Verdict{ID: d.ID, Service: d.Service, Environment: d.Environment, Version: d.Version, Verdict: d.Verdict,
		Before: v.Before, After: v.After, Stats: v.Stats, Judgement: v.Judgement}
}

// sameVerdict reports whether a stored verdict is still what the data say:
// the same windows counting the same events (requests, errors, stored
// events), and the same verdict and reasons. New, late or replayed data
// change the counts.
func sameVerdict(old store.StoredVerdict, v usecase.Settled) bool {
	return old.Before.Start.Equal(v.Before.Start) && old.Before.End.Equal(v.Before.End) &&
		old.After.Start.Equal(v.After.Start) && old.After.End.Equal(v.After.End) &&
		old.Judgement.Verdict == v.Judgement.Verdict && slices.Equal(old.Judgement.Regressions, v.Judgement.Regressions) &&
		old.Stats[0].SameData(v.Stats[0]) && old.Stats[1].SameData(v.Stats[1])
}
