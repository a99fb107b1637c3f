package store

import (
	"errors"
	"fmt"
	"time"

	"github.com/changelens/changelens/internal/chident"
)

// Config configures a Store. DSN is required.
type Config struct {
	// DSN is a clickhouse-go DSN, e.g.
	// clickhouse://user:password@host:9000/changelens?dial_timeout=5s
	// (native protocol; parsed with clickhouse.ParseDSN). Its database is the
	// one holding the exporter's tables unless Database is set. The API
	// should connect as a read-only user: every query is a SELECT.
	DSN string
	// Database overrides the DSN's database. Default: the DSN's, else
	// "changelens". Letters, digits and _ only (it is written into SQL as a
	// quoted identifier; it never comes from a request).
	Database string
	// QueryTimeout bounds every query (on top of the caller's deadline);
	// the API passes its limits' QueryTimeout. Default 30s.
	QueryTimeout time.Duration
}

func (c Config) withDefaults() Config {
	if c.QueryTimeout == 0 {
		c.QueryTimeout = 30 * time.Second
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.DSN == "" {
		errs = append(errs, errors.New("store: DSN is required"))
	}
	if c.Database != "" && !chident.Valid(c.Database) {
		errs = append(errs, fmt.Errorf("store: database %q is not a valid name (letters, digits and _, not starting with a digit)", c.Database))
	}
	if c.QueryTimeout <= 0 {
		errs = append(errs, fmt.Errorf("store: QueryTimeout must be positive, got %s", c.QueryTimeout))
	}
	return errors.Join(errs...)
}
