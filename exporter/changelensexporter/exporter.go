package changelensexporter

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/changelens/changelens/exporter/changelensexporter/internal/metadata"
	"github.com/changelens/changelens/internal/eventspan"
	"github.com/changelens/changelens/internal/schema"
)

// chExporter writes changelens events to ClickHouse.
type chExporter struct {
	cfg    *Config
	logger *zap.Logger
	tel    *metadata.TelemetryBuilder
	schema schema.Options
	now    func() time.Time

	latencyInsert, deploymentInsert, callInsert, incidentInsert, commitInsert, flagInsert, usageInsert, outcomeInsert string
	// Look-ups of stored spans per table; "" when deduplicate is off.
	storedSpans, storedCalls string

	// mu guards conn, ready and serverVersion. init runs under it.
	mu            sync.Mutex
	conn          driver.Conn
	ready         bool
	serverVersion string

	// encoders is a free list of warm encoders. Not a sync.Pool: that is
	// emptied by every GC, and the driver's per-insert buffers make GC
	// frequent, so a pooled encoder would be rebuilt (and its columns regrown)
	// on nearly every push.
	encoders chan *encoderState

	retention retentionLoop

	// precomputed metric attributes
	attrLatency, attrDeployment, attrCall, attrIncident, attrCommit, attrFlag, attrUsage, attrOutcome metric.AddOption
	attrReasons                                                                                       [numReasons]metric.AddOption
	attrFailure                                                                                       map[string]metric.AddOption
}

// encoderState is one pooled encoder plus its reusable FixedString row views.
type encoderState struct {
	enc                                                                encoder
	latIDs, depIDs, callIDs, incIDs, comIDs, flagIDs, usageIDs, outIDs idViews
}

func newExporter(cfg *Config, set exporter.Settings) (*chExporter, error) {
	tel, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	so := schema.Options{
		Database:        cfg.Database,
		Cluster:         cfg.ClusterName,
		RetentionDays:   cfg.RetentionDays,
		Replicated:      cfg.Replicated,
		ReplicationPath: cfg.ReplicationPath,
	}
	e := &chExporter{
		cfg:              cfg,
		logger:           set.Logger,
		tel:              tel,
		schema:           so,
		now:              time.Now,
		latencyInsert:    insertSQL(so.InsertTable(schema.TableLatencyEvents), latencyColumnNames),
		deploymentInsert: insertSQL(so.InsertTable(schema.TableDeployments), deploymentColumnNames),
		callInsert:       insertSQL(so.InsertTable(schema.TableCallEvents), callColumnNames),
		incidentInsert:   insertSQL(so.InsertTable(schema.TableIncidents), incidentColumnNames),
		commitInsert:     insertSQL(so.InsertTable(schema.TableCommits), commitColumnNames),
		flagInsert:       insertSQL(so.InsertTable(schema.TableFlagEvaluations), flagColumnNames),
		usageInsert:      insertSQL(so.InsertTable(schema.TableResourceUsage), usageColumnNames),
		outcomeInsert:    insertSQL(so.InsertTable(schema.TableOutcomes), outcomeColumnNames),
		attrLatency:      metric.WithAttributeSet(attribute.NewSet(attribute.String(eventspan.AttrEventType, eventspan.EventLatency))),
		attrDeployment:   metric.WithAttributeSet(attribute.NewSet(attribute.String(eventspan.AttrEventType, eventspan.EventDeployment))),
		attrCall:         metric.WithAttributeSet(attribute.NewSet(attribute.String(eventspan.AttrEventType, eventspan.EventCall))),
		attrIncident:     metric.WithAttributeSet(attribute.NewSet(attribute.String(eventspan.AttrEventType, eventspan.EventIncident))),
		attrCommit:       metric.WithAttributeSet(attribute.NewSet(attribute.String(eventspan.AttrEventType, eventspan.EventCommit))),
		attrFlag:         metric.WithAttributeSet(attribute.NewSet(attribute.String(eventspan.AttrEventType, eventspan.EventFlagEvaluation))),
		attrUsage:        metric.WithAttributeSet(attribute.NewSet(attribute.String(eventspan.AttrEventType, eventspan.EventResourceUsage))),
		attrOutcome:      metric.WithAttributeSet(attribute.NewSet(attribute.String(eventspan.AttrEventType, eventspan.EventOutcome))),
		attrFailure:      map[string]metric.AddOption{},
	}
	for i, r := range reasonNames {
		e.attrReasons[i] = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", r)))
	}
	for _, t := range insertTables {
		for _, k := range []string{"transient", "permanent"} {
			e.attrFailure[t+"/"+k] = metric.WithAttributeSet(attribute.NewSet(attribute.String("table", t), attribute.String("kind", k)))
		}
	}
	if cfg.Deduplicate {
		e.storedSpans = storedSpansSQL(so.InsertTable(schema.TableLatencyEvents))
		e.storedCalls = storedSpansSQL(so.InsertTable(schema.TableCallEvents))
	}
	e.encoders = make(chan *encoderState, maxIdleEncoders)
	return e, nil
}

// insertTables are the tables the exporter writes to.
var insertTables = []string{schema.TableLatencyEvents, schema.TableDeployments, schema.TableCallEvents, schema.TableIncidents,
	schema.TableCommits, schema.TableFlagEvaluations, schema.TableResourceUsage, schema.TableOutcomes}

func (e *chExporter) clickhouseOptions(ctx context.Context) (*clickhouse.Options, error) {
	tlsCfg, err := e.cfg.TLS.LoadTLSConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	method := clickhouse.CompressionLZ4
	switch e.cfg.Compression {
	case "zstd":
		method = clickhouse.CompressionZSTD
	case "none":
		method = clickhouse.CompressionNone
	}
	opts := &clickhouse.Options{
		Addr: e.cfg.Endpoints,
		Auth: clickhouse.Auth{
			// No default database: ours may not exist yet; every statement
			// uses qualified names.
			Username: e.cfg.Username,
			Password: string(e.cfg.Password),
		},
		TLS:              tlsCfg,
		Compression:      &clickhouse.Compression{Method: method},
		DialTimeout:      e.cfg.DialTimeout,
		MaxOpenConns:     e.cfg.MaxOpenConns,
		ConnOpenStrategy: clickhouse.ConnOpenRoundRobin,
		ClientInfo: clickhouse.ClientInfo{Products: []struct{ Name, Version string }{
			{Name: "changelens-exporter", Version: eventspan.SchemaVersion},
		}},
	}
	if opts.MaxOpenConns > 0 && opts.MaxIdleConns == 0 {
		opts.MaxIdleConns = opts.MaxOpenConns
	}
	if e.cfg.ClusterName != "" && e.cfg.CreateSchema {
		// Pushes carry exporterhelper's deadline; this bounds what has
		// none, the schema's ON CLUSTER statements at start.
		opts.ReadTimeout = schema.DDLReadTimeout
	}
	return opts, nil
}

// start connects, detects the server version and applies the schema. When
// ClickHouse is unreachable it only logs: push retries the initialisation, so
// the collector can start before ClickHouse does. Other failures (bad
// credentials, a schema the server rejects) fail the start.
func (e *chExporter) start(ctx context.Context, _ component.Host) error {
	opts, err := e.clickhouseOptions(ctx)
	if err != nil {
		return err
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return fmt.Errorf("clickhouse: %w", err)
	}
	e.mu.Lock()
	e.conn = conn
	err = e.initLocked(ctx)
	e.mu.Unlock()
	if err != nil {
		if isUnreachable(err) {
			e.logger.Warn("ClickHouse is not reachable yet; the schema will be applied when it is",
				zap.Strings("endpoints", e.cfg.Endpoints), zap.Error(err))
		} else {
			return err
		}
	}
	if e.cfg.RetentionDays > 0 {
		e.retention.start(e, time.Hour)
	}
	return nil
}

// initLocked detects the server version and applies the schema (once).
func (e *chExporter) initLocked(ctx context.Context) error {
	if e.ready {
		return nil
	}
	var version string
	if err := e.conn.QueryRow(ctx, "SELECT version()").Scan(&version); err != nil {
		return fmt.Errorf("clickhouse: reading server version: %w", err)
	}
	so := e.schema
	so.Features = schema.FeaturesFor(version)
	if e.cfg.CreateSchema {
		logged := so
		logged.Applied = func(v uint32, name string) {
			e.logger.Info("ClickHouse schema migration applied", zap.String("database", so.Database),
				zap.Uint32("version", v), zap.String("name", name))
		}
		res, err := schema.Apply(ctx, e.conn, logged, version)
		if err != nil {
			return err
		}
		e.logger.Info("ClickHouse schema ready",
			zap.String("server_version", version), zap.String("database", so.Database),
			zap.Uint32("schema_version", res.Current), zap.Any("applied", res.Applied),
			zap.Any("features", so.Features))
	}
	if !e.cfg.CreateSchema {
		// The operator manages the schema: fail early and clearly if the
		// tables the exporter writes to are missing.
		for _, t := range insertTables {
			var exists uint8
			if err := e.conn.QueryRow(ctx, "EXISTS TABLE "+so.InsertTable(t)).Scan(&exists); err != nil {
				return fmt.Errorf("clickhouse: checking table %s: %w", so.InsertTable(t), err)
			}
			if exists != 1 {
				return fmt.Errorf("create_schema is false but table %s does not exist: create it (see README) or enable create_schema", so.InsertTable(t))
			}
		}
	}
	e.schema, e.serverVersion, e.ready = so, version, true
	return nil
}

// ensureReady runs the initialisation if start could not.
func (e *chExporter) ensureReady(ctx context.Context) (driver.Conn, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.conn == nil {
		return nil, errors.New("exporter not started")
	}
	if !e.ready {
		if err := e.initLocked(ctx); err != nil {
			return nil, err // transient: exporterhelper retries
		}
	}
	return e.conn, nil
}

func (e *chExporter) shutdown(context.Context) error {
	e.retention.stop()
	e.mu.Lock()
	defer e.mu.Unlock()
	var err error
	if e.conn != nil {
		err = e.conn.Close()
		e.conn = nil
	}
	e.tel.Shutdown()
	return err
}

const (
	// maxIdleEncoders bounds the free list (pushes run concurrently up to
	// sending_queue.num_consumers).
	maxIdleEncoders = 16
	// maxKeptRows: an encoder grown beyond this by an unusually large request
	// is not kept.
	maxKeptRows = 1 << 18
)

func (e *chExporter) getEncoder() *encoderState {
	select {
	case st := <-e.encoders:
		return st
	default:
		return new(encoderState)
	}
}

func (e *chExporter) putEncoder(st *encoderState) {
	st.enc.release()
	if cap(st.enc.lat.service) > maxKeptRows || cap(st.enc.dep.id) > maxKeptRows || cap(st.enc.call.service) > maxKeptRows ||
		cap(st.enc.inc.id) > maxKeptRows || cap(st.enc.com.sha) > maxKeptRows || cap(st.enc.flag.service) > maxKeptRows ||
		cap(st.enc.out.service) > maxKeptRows {
		return
	}
	select {
	case e.encoders <- st:
	default:
	}
}

// pushTraces is the exporterhelper push function.
func (e *chExporter) pushTraces(ctx context.Context, td ptrace.Traces) error {
	conn, err := e.ensureReady(ctx)
	if err != nil {
		return err
	}
	if e.schema.Cluster != "" {
		// Acknowledge a batch only when a replica of every shard it touches
		// holds its rows, rather than when the receiving node queued them for
		// sending: the loss of that node then loses nothing acknowledged, and
		// a retry of the batch forms the same per-shard blocks, which the
		// replicated tables' block deduplication drops.
		ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"insert_distributed_sync": 1}))
	}
	st := e.getEncoder()
	defer e.putEncoder(st)
	enc := &st.enc
	enc.reset(e.now(), e.cfg.RetentionDays)
	enc.encode(td)

	// Deployments, incidents, commits and flag evaluations first: they
	// collapse on re-insert, so if a later insert fails and the whole
	// request is retried, nothing is duplicated. A permanent failure of one
	// table does not stop the others.
	var depErr, incErr, comErr error
	if enc.dep.rows() > 0 {
		depErr = e.insert(ctx, schema.TableDeployments, func() error {
			return insertDeployments(ctx, conn, e.deploymentInsert, &enc.dep, &st.depIDs)
		})
		if depErr != nil && !consumererror.IsPermanent(depErr) {
			return depErr
		}
		if depErr == nil {
			e.tel.ChangelensExporterEventsWritten.Add(ctx, int64(enc.dep.rows()), e.attrDeployment)
		}
	}
	if enc.inc.rows() > 0 {
		incErr = e.insert(ctx, schema.TableIncidents, func() error {
			return insertIncidents(ctx, conn, e.incidentInsert, &enc.inc, &st.incIDs)
		})
		if incErr != nil && !consumererror.IsPermanent(incErr) {
			return incErr
		}
		if incErr == nil {
			e.tel.ChangelensExporterEventsWritten.Add(ctx, int64(enc.inc.rows()), e.attrIncident)
		}
	}
	if enc.com.rows() > 0 {
		comErr = e.insert(ctx, schema.TableCommits, func() error {
			return insertCommits(e.commitContext(ctx), conn, e.commitInsert, &enc.com, &st.comIDs)
		})
		if comErr != nil && !consumererror.IsPermanent(comErr) {
			return comErr
		}
		if comErr == nil {
			e.tel.ChangelensExporterEventsWritten.Add(ctx, int64(enc.com.rows()), e.attrCommit)
		}
	}
	flagErr, err := e.storeFlagEvaluations(ctx, conn, st)
	if err != nil {
		return err
	}
	outErr, err := e.storeOutcomes(ctx, conn, st)
	if err != nil {
		return err
	}
	// Then latency and call events: with deduplicate, the retry of a request
	// whose call insert failed drops the latency rows it already stored.
	latErr, err := e.storeSpans(ctx, conn, schema.TableLatencyEvents, e.storedSpans, &enc.lat, e.attrLatency, func() error {
		return insertLatency(ctx, conn, e.latencyInsert, &enc.lat, &st.latIDs)
	})
	if err != nil {
		return err
	}
	callErr, err := e.storeSpans(ctx, conn, schema.TableCallEvents, e.storedCalls, &enc.call, e.attrCall, func() error {
		return insertCalls(ctx, conn, e.callInsert, &enc.call, &st.callIDs)
	})
	if err != nil {
		return err
	}
	// Done with this request: success or permanent failure.
	e.recordDrops(ctx, enc)
	// Each is nil or permanent here; errors.Join keeps them detectable as permanent.
	return errors.Join(depErr, incErr, comErr, flagErr, outErr, latErr, callErr)
}

// commitContext is ctx for the insert into commit_events. Commits are
// partitioned by day of their own time, which a batch of pushes spreads
// over many days (a branch's old commits, retention_days 0): the insert may
// touch more partitions than max_partitions_per_insert_block (100), which
// the servers that have the limit (not 18.16) would refuse on every retry.
func (e *chExporter) commitContext(ctx context.Context) context.Context {
	if !e.schema.Features.PartitionLimit {
		return ctx
	}
	settings := clickhouse.Settings{"max_partitions_per_insert_block": 0}
	if e.schema.Cluster != "" {
		settings["insert_distributed_sync"] = 1 // WithSettings replaces ctx's settings
	}
	return clickhouse.Context(ctx, clickhouse.WithSettings(settings))
}

// storeSpans inserts one kind of span event, first dropping (with
// deduplicate: storedQuery != "") the rows whose span is stored already. A
// transient error is returned as err, for the whole request to be retried;
// a permanent insert failure as failed. Rows are counted (written,
// deduplicated; attr: their event type) once their insert is over, so a
// retried attempt counts them once.
func (e *chExporter) storeSpans(ctx context.Context, conn driver.Conn, table, storedQuery string, rows spanRows,
	attr metric.AddOption, insert func() error,
) (failed, err error) {
	if rows.rows() == 0 {
		return nil, nil
	}
	dedup := 0
	if storedQuery != "" {
		// A retry repeats this, so a first attempt that was stored after all
		// is not stored twice.
		n, err := dropStored(ctx, conn, storedQuery, rows)
		if err = classify(err); err != nil {
			if !consumererror.IsPermanent(err) {
				return nil, fmt.Errorf("looking up stored spans of %s: %w", table, err)
			}
			e.logger.Warn("looking up stored spans failed; inserting without deduplication", zap.String("table", table), zap.Error(err))
		}
		dedup = n
	}
	if rows.rows() > 0 {
		failed = e.insert(ctx, table, insert)
		if failed != nil && !consumererror.IsPermanent(failed) {
			return nil, failed
		}
		if failed == nil {
			e.tel.ChangelensExporterEventsWritten.Add(ctx, int64(rows.rows()), attr)
		}
	}
	if dedup > 0 {
		e.tel.ChangelensExporterEventsDeduplicated.Add(ctx, int64(dedup), attr)
	}
	return failed, nil
}

func (e *chExporter) insert(ctx context.Context, table string, do func() error) error {
	err := classify(do())
	if err == nil {
		return nil
	}
	kind := "transient"
	if consumererror.IsPermanent(err) {
		kind = "permanent"
	}
	e.tel.ChangelensExporterInsertFailures.Add(ctx, 1, e.attrFailure[table+"/"+kind])
	return fmt.Errorf("insert into %s: %w", table, err)
}

// recordDrops counts ignored spans and invalid events once per request (not
// per retry attempt).
func (e *chExporter) recordDrops(ctx context.Context, enc *encoder) {
	if enc.ignored > 0 {
		e.tel.ChangelensExporterSpansIgnored.Add(ctx, enc.ignored)
	}
	if enc.ignoredLogs > 0 {
		e.tel.ChangelensExporterLogRecordsIgnored.Add(ctx, enc.ignoredLogs)
	}
	for i, n := range enc.invalid {
		if n > 0 {
			e.tel.ChangelensExporterEventsInvalid.Add(ctx, n, e.attrReasons[i])
		}
	}
}

// isUnreachable reports errors that mean "ClickHouse is not there (yet)".
func isUnreachable(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, clickhouse.ErrAcquireConnTimeout)
}
