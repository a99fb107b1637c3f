package store

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/changelens/changelens/internal/schema"
	"github.com/changelens/changelens/testkit/chtest"
	"github.com/changelens/changelens/testkit/pipelinetest"
)

func TestMain(m *testing.M) { os.Exit(chtest.Main(m)) }

// Every variant of every query the store renders runs on a database the
// exporter created, on this leg's server: each table and column any query
// reads exists in the DDL written for this server version (the store reads
// through the schema the exporter writes through).
func TestEveryQueryRunsOnTheSchema(t *testing.T) {
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	pipelinetest.New(t, srv.Addr(), db, 1, nil).Close(t) // the schema
	dsn := fmt.Sprintf("clickhouse://%s:%s@%s/%s", chtest.ReadOnlyUser, url.QueryEscape(chtest.ReadOnlyPassword), srv.Addr(), db)
	st, err := Open(context.Background(), Config{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now().Unix()
	values := map[string]any{
		"units": []string{"a\nb"}, "services": clickhouse.GroupSet{Value: []any{"a"}}, "environments": clickhouse.GroupSet{Value: []any{"b"}},
		"service": "a", "environment": "b", "operation": "op", "version": "1", "id": "x", "control": "1", "treatment": "2",
		"from": now - 3600, "to": now, "hfrom": now - 3600, "hto": now, "since": int64(0), "before": now, "step": 60,
		"limit": 10, "reappear_ns": int64(10 * time.Minute), "dimension": "feature_flag.x", "config_hash": "h", "ids": []string{"x", "y"},
		"status_failed": schema.StatusFailed, "source_inferred": schema.SourceInferred,
		"callee_from": now - 3720, "callee_to": now + 120, "caller_from": now - 3720, "caller_to": now + 120, "sample": uint64(16),
		"commit_services": clickhouse.GroupSet{Value: []any{"a"}}, "commit_prefixes": []string{"6113728"},
		"flag": "x", "eval_from": now - 3660, "eval_to": now + 3600, "rfrom": now - 7200,
		"operations": []string{"documentLoad"}, "outcome": "purchase", "outcome_service": "a", "days_ns": uint64(24 * time.Hour),
		"until_ns": uint64(now) * 1e9, "until": now, "pre_from": now - 7200,
	}
	for _, p := range append(templateParams["deployments"], templateParams["incidents"]...) {
		if _, ok := values[p]; !ok {
			values[p] = now // scan bounds and nanosecond bounds: any number
		}
	}
	n := 0
	for name, variants := range templateVariants() {
		var args []any
		for _, p := range templateParams[name] {
			args = append(args, clickhouse.Named(p, values[p]))
		}
		ctx := context.Background()
		if name == "windows" || name == "window_operations" || name == "window_minutes" || name == "window_error_kinds" {
			tbl, err := ext.NewTable("_cl_windows", ext.Column("k", "UInt64"), ext.Column("w", "UInt32"), ext.Column("o", "UInt32"))
			if err != nil {
				t.Fatal(err)
			}
			if err := tbl.Append(uint64(1)<<32|uint64(now/60*60), uint32(0), uint32(0)); err != nil {
				t.Fatal(err)
			}
			slow, err := ext.NewTable("_cl_slow", ext.Column("j", "UInt32"), ext.Column("op", "String"),
				ext.Column("t1", "UInt16"), ext.Column("t2", "UInt16"), ext.Column("t3", "UInt16"), ext.Column("t4", "UInt16"))
			if err != nil {
				t.Fatal(err)
			}
			if err := slow.Append(uint32(0), "op", uint16(200), uint16(250), uint16(210), uint16(260)); err != nil {
				t.Fatal(err)
			}
			ctx = clickhouse.Context(ctx, clickhouse.WithExternalTable(tbl, slow))
		}
		if name == "error_kind_history" {
			tbl, err := ext.NewTable("_cl_history", ext.Column("j", "UInt32"), ext.Column("u", "UInt64"), ext.Column("v", "String"),
				ext.Column("f", "UInt32"), ext.Column("t", "UInt32"))
			if err != nil {
				t.Fatal(err)
			}
			if err := tbl.Append(uint32(0), uint64(1), "2", uint32(now-3600), uint32(now)); err != nil {
				t.Fatal(err)
			}
			edges, err := ext.NewTable("_cl_history_edges", ext.Column("k", "UInt64"), ext.Column("j", "UInt32"), ext.Column("v", "String"))
			if err != nil {
				t.Fatal(err)
			}
			if err := edges.Append(uint64(1)<<32|uint64(now/60*60), uint32(0), "2"); err != nil {
				t.Fatal(err)
			}
			ctx = clickhouse.Context(ctx, clickhouse.WithExternalTable(tbl, edges))
		}
		for _, v := range variants {
			if err := st.query(ctx, name, v, func(driver.Rows) error { return nil }, args...); err != nil {
				t.Errorf("%s %+v: %v", name, v, err)
			}
			n++
		}
	}
	t.Logf("%d query variants ran on %s", n, srv.Version())
}
