package changelensexporter

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/changelens/changelens/internal/chident"
	"github.com/changelens/changelens/internal/schema"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/config/configtls"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
)

// Config is the changelens exporter's configuration.
type Config struct {
	exporterhelper.TimeoutConfig `mapstructure:",squash"`
	// BackOffConfig is retry_on_failure: transient ClickHouse errors are retried.
	BackOffConfig configretry.BackOffConfig `mapstructure:"retry_on_failure"`
	// QueueConfig is sending_queue, with optional batch and storage (persistent queue).
	QueueConfig configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`

	// Endpoints are ClickHouse native-protocol addresses, host:port (9000, or 9440 with TLS).
	Endpoints []string `mapstructure:"endpoints"`
	// Database holds the exporter's tables. Created when create_schema is true.
	Database string `mapstructure:"database"`
	// Username and Password authenticate to ClickHouse (empty username: "default").
	Username string              `mapstructure:"username"`
	Password configopaque.String `mapstructure:"password"`
	// TLS for the native protocol. Plaintext unless insecure is false or a CA is set.
	TLS configtls.ClientConfig `mapstructure:"tls"`
	// Compression of the native protocol's data blocks: lz4 (default), zstd or none.
	Compression string `mapstructure:"compression"`

	// CreateSchema applies the exporter's versioned schema at start (idempotent).
	CreateSchema bool `mapstructure:"create_schema"`
	// RetentionDays is how long latency and call events and rollups are kept; 0 keeps them forever.
	RetentionDays int `mapstructure:"retention_days"`
	// ClusterName, when set, creates every table ON CLUSTER as <table>_local and
	// a Distributed table <table> over it; the exporter inserts into the
	// Distributed tables.
	ClusterName string `mapstructure:"cluster_name"`
	// Replicated (with cluster_name; default true) gives every table its
	// Replicated* engine (ReplicatedMergeTree, ReplicatedAggregatingMergeTree,
	// ReplicatedReplacingMergeTree), so each shard's replicas hold the same
	// data through ZooKeeper/Keeper; false creates plain engines (a sharded
	// cluster without replicas or Keeper).
	Replicated bool `mapstructure:"replicated"`
	// ReplicationPath is the ZooKeeper path prefix of the replicated tables;
	// a table's path is <replication_path>/<database>/<table>_local and its
	// replica name the {replica} macro. It normally holds the {shard} macro.
	// Default "/clickhouse/tables/{shard}".
	ReplicationPath string `mapstructure:"replication_path"`

	// Deduplicate skips latency and call events whose span (trace_id,
	// span_id) is already stored in their table: before each insert one query
	// looks the batch's spans up within the batch's time range. A replay of the same traffic, a retry
	// whose first attempt was stored, or a span sent through two collectors
	// one after the other is then stored once, and every answer stays the
	// same. Two inserts of the same span racing each other can both pass.
	Deduplicate bool `mapstructure:"deduplicate"`

	// DialTimeout bounds connecting to ClickHouse.
	DialTimeout time.Duration `mapstructure:"dial_timeout"`
	// MaxOpenConns bounds the connection pool (one insert in flight uses one connection).
	MaxOpenConns int `mapstructure:"max_open_conns"`

	// prevent unkeyed literal initialization
	_ struct{}
}

var _ component.Config = (*Config)(nil)

const maxRetentionDays = 100 * 365

// Validate checks the configuration; errors name the offending field.
// (exporterhelper's sections validate themselves.)
func (cfg *Config) Validate() error {
	var errs []error
	if len(cfg.Endpoints) == 0 {
		errs = append(errs, errors.New("endpoints: at least one ClickHouse native endpoint (host:port) is required"))
	}
	for i, ep := range cfg.Endpoints {
		if err := validateEndpoint(ep); err != nil {
			errs = append(errs, fmt.Errorf("endpoints[%d]: %w", i, err))
		}
	}
	if cfg.Database == "" {
		errs = append(errs, errors.New("database: must not be empty"))
	} else if !chident.Valid(cfg.Database) {
		errs = append(errs, fmt.Errorf("database: %q is not a valid name (letters, digits and _, not starting with a digit, at most 64 characters)", cfg.Database))
	}
	if cfg.ClusterName != "" && !chident.Valid(cfg.ClusterName) {
		errs = append(errs, fmt.Errorf("cluster_name: %q is not a valid name (letters, digits and _, not starting with a digit, at most 64 characters)", cfg.ClusterName))
	}
	if cfg.ClusterName != "" && cfg.Replicated {
		if err := schema.CheckReplicationPath(cfg.ReplicationPath); err != nil {
			errs = append(errs, fmt.Errorf("replication_path: %w", err))
		}
	}
	if cfg.RetentionDays < 0 || cfg.RetentionDays > maxRetentionDays {
		errs = append(errs, fmt.Errorf("retention_days: %d is out of range [0, %d] (0 keeps data forever)", cfg.RetentionDays, maxRetentionDays))
	}
	switch cfg.Compression {
	case "lz4", "zstd", "none":
	default:
		errs = append(errs, fmt.Errorf("compression: %q is not supported (use lz4, zstd or none)", cfg.Compression))
	}
	if cfg.Password != "" && cfg.Username == "" {
		errs = append(errs, errors.New("username: must be set when password is set"))
	}
	if cfg.DialTimeout < 0 {
		errs = append(errs, fmt.Errorf("dial_timeout: %s must not be negative", cfg.DialTimeout))
	}
	if cfg.MaxOpenConns < 0 {
		errs = append(errs, fmt.Errorf("max_open_conns: %d must not be negative (0 uses the default)", cfg.MaxOpenConns))
	}
	if cfg.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout: %s must not be negative", cfg.Timeout))
	}
	return errors.Join(errs...)
}

func validateEndpoint(ep string) error {
	host, port, err := net.SplitHostPort(ep)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", ep, err)
	}
	if host == "" {
		return fmt.Errorf("%q has an empty host", ep)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%q has an invalid port %q", ep, port)
	}
	return nil
}
