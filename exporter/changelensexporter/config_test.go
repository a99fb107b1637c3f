package changelensexporter

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/changelens/changelens/exporter/changelensexporter/internal/metadata"
	"github.com/changelens/changelens/internal/schema"
)

func loadConfig(t *testing.T, name string) (*Config, error) {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	id := component.NewID(metadata.Type)
	if name != "" {
		id = component.NewIDWithName(metadata.Type, name)
	}
	sub, err := cm.Sub(id.String())
	if err != nil {
		t.Fatal(err)
	}
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	if err := sub.Unmarshal(cfg); err != nil {
		t.Fatalf("unmarshal %s: %v", id, err)
	}
	return cfg, confmap.Validate(cfg)
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := loadConfig(t, "")
	if err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if got := cfg.Endpoints; len(got) != 1 || got[0] != "localhost:9000" {
		t.Errorf("endpoints = %v", got)
	}
	if cfg.Database != "changelens" || !cfg.CreateSchema || cfg.RetentionDays != 30 ||
		cfg.Compression != "lz4" || cfg.ClusterName != "" || !cfg.TLS.Insecure || !cfg.Deduplicate {
		t.Errorf("unexpected defaults: %+v", cfg)
	}
	if cfg.Timeout != 30*time.Second {
		t.Errorf("timeout = %s", cfg.Timeout)
	}
	if !cfg.BackOffConfig.Enabled || cfg.BackOffConfig.MaxElapsedTime != 0 {
		t.Errorf("retry_on_failure = %+v, want enabled and retrying until ClickHouse is back", cfg.BackOffConfig)
	}
	if !cfg.QueueConfig.HasValue() {
		t.Fatal("sending_queue is not enabled by default")
	}
	q := cfg.QueueConfig.Get()
	if q.Sizer != exporterhelper.RequestSizerTypeItems || q.QueueSize != 500_000 || !q.Batch.HasValue() {
		t.Errorf("sending_queue = %+v", q)
	}
	if b := q.Batch.Get(); b.MinSize != 10_000 || b.MaxSize != 50_000 || b.FlushTimeout != time.Second {
		t.Errorf("batch = %+v", b)
	}
}

func TestConfigFull(t *testing.T) {
	cfg, err := loadConfig(t, "full")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Endpoints) != 2 || cfg.Endpoints[1] != "10.0.0.2:9440" {
		t.Errorf("endpoints = %v", cfg.Endpoints)
	}
	if cfg.Database != "observability" || cfg.Username != "changelens_writer" ||
		cfg.Password != configopaque.String("s3cr3t") || cfg.Compression != "zstd" ||
		cfg.CreateSchema || cfg.RetentionDays != 7 || cfg.ClusterName != "prod_cluster" ||
		cfg.DialTimeout != 3*time.Second || cfg.MaxOpenConns != 8 || cfg.Timeout != 15*time.Second || cfg.Deduplicate {
		t.Errorf("unexpected config: %+v", cfg)
	}
	if cfg.TLS.Insecure || cfg.TLS.CAFile != "/etc/ssl/clickhouse-ca.pem" {
		t.Errorf("tls = %+v", cfg.TLS)
	}
	if cfg.BackOffConfig.MaxElapsedTime != 30*time.Minute {
		t.Errorf("retry = %+v", cfg.BackOffConfig)
	}
	q := cfg.QueueConfig.Get()
	if q.StorageID == nil || q.StorageID.String() != "file_storage/changelens" || q.NumConsumers != 2 || q.QueueSize != 200000 {
		t.Errorf("queue = %+v", q)
	}
	if b := q.Batch.Get(); b.MinSize != 5000 || b.MaxSize != 20000 || b.FlushTimeout != 2*time.Second {
		t.Errorf("batch = %+v", b)
	}
	// The password must not leak through formatting.
	if s := cfg.Password.String(); strings.Contains(s, "s3cr3t") {
		t.Errorf("password printed as %q", s)
	}
}

func TestConfigValidationNamesTheField(t *testing.T) {
	for name, wantField := range map[string]string{
		"no_endpoints":              "endpoints:",
		"bad_endpoint":              "endpoints[0]:",
		"bad_port":                  "endpoints[0]:",
		"empty_database":            "database:",
		"bad_database":              "database:",
		"bad_cluster":               "cluster_name:",
		"bad_replication_path":      "replication_path:",
		"negative_retention":        "retention_days:",
		"bad_compression":           "compression:",
		"password_without_username": "username:",
		"bad_queue":                 "sending_queue",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := loadConfig(t, name)
			if err == nil {
				t.Fatal("config validated, want an error")
			}
			if !strings.Contains(err.Error(), wantField) {
				t.Fatalf("error %q does not name %q", err, wantField)
			}
		})
	}
}

func TestConfigValidationCollectsAllErrors(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Endpoints = []string{"a:1", ":9000", "b:x"}
	cfg.RetentionDays = 1 << 30
	cfg.Compression = "brotli"
	err := cfg.Validate()
	if err == nil {
		t.Fatal("want error")
	}
	for _, want := range []string{"endpoints[1]:", "endpoints[2]:", "retention_days:", "compression:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "endpoints[0]") {
		t.Errorf("valid endpoint reported: %v", err)
	}
}

// An ON CLUSTER statement is answered when every host has run it, up to
// the DDL task timeout the exporter sets: the connection that applies the
// schema must outwait it, where clickhouse-go's default gives up at 300 s.
func TestOnClusterSchemaOutwaitsTheDDLTimeout(t *testing.T) {
	for _, tc := range []struct {
		cluster string
		create  bool
		want    time.Duration
	}{
		{cluster: "two_by_two", create: true, want: schema.DDLReadTimeout},
		{cluster: "two_by_two", create: false, want: 0}, // nothing ON CLUSTER: the driver's default
		{cluster: "", create: true, want: 0},
	} {
		cfg := NewFactory().CreateDefaultConfig().(*Config)
		cfg.ClusterName, cfg.CreateSchema = tc.cluster, tc.create
		e, err := newExporter(cfg, nopSettings())
		if err != nil {
			t.Fatal(err)
		}
		opts, err := e.clickhouseOptions(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if opts.ReadTimeout != tc.want {
			t.Errorf("cluster %q, create_schema %v: read timeout %s, want %s", tc.cluster, tc.create, opts.ReadTimeout, tc.want)
		}
	}
	if schema.DDLReadTimeout <= schema.DDLTaskTimeoutSeconds*time.Second {
		t.Errorf("DDLReadTimeout %s does not outwait the DDL task timeout (%d s)", schema.DDLReadTimeout, schema.DDLTaskTimeoutSeconds)
	}
}
