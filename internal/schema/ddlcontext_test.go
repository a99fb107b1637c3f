package schema_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/changelens/changelens/internal/schema"
	"github.com/changelens/changelens/testkit/chtest"
)

// The server must see the DDL timeout Apply means: on 18.16 the driver's
// integer setting arrived halved (600 as 300), and ON CLUSTER statements
// of a loaded cluster gave up at 300 s.
func TestDDLContextReachesTheServerWhole(t *testing.T) {
	srv := chtest.Shared(t)
	opts, err := clickhouse.ParseDSN(srv.DSN("default", "", "default"))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := context.Background()
	var version, got string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&version); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(schema.DDLContext(ctx, version),
		"SELECT value FROM system.settings WHERE name = 'distributed_ddl_task_timeout'").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if want := strconv.Itoa(schema.DDLTaskTimeoutSeconds); got != want {
		t.Errorf("ClickHouse %s sees distributed_ddl_task_timeout = %s, want %s", version, got, want)
	}
}
