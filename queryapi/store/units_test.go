package store

import (
	"context"
	"fmt"
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/testkit/chtest"
	"github.com/changelens/changelens/testkit/pipelinetest"
)

// The units listed from the daily summary (schema v18) are those listed
// from every minute: three days of cart/production serving "1", then "2",
// then "1" again across midnights, a version-less unit and a staging unit,
// every ten minutes.
func TestIntegrationUnitsFromDailySummary(t *testing.T) {
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	p := pipelinetest.New(t, srv.Addr(), db, 1, nil) // the schema, as the exporter applies it
	p.Close(t)
	start := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -3).Add(7 * time.Hour)
	const n = 3 * 144
	srv.Exec(t, fmt.Sprintf(`INSERT INTO %s.latency_events (service, environment, version, operation, time, start_time_ns, duration_ns, is_error, http_status, weight, trace_id, span_id)
		SELECT
		    if(number %% 3 = 2, 'search', 'cart'),
		    if(number %% 3 = 1, 'staging', 'production'),
		    multiIf(number %% 3 = 2, '', number < 200, '1', number < 300, '2', '1'),
		    'GET /', toDateTime(%d + number * 600), toUInt64(%d + number * 600) * 1000000000 + 7,
		    1000000, 0, 200, 1, toFixedString(toString(number), 16), toFixedString(toString(number), 8)
		FROM system.numbers LIMIT %d`, db, start.Unix(), start.Unix(), n))
	ctx := context.Background()
	// The view wrote a row a unit, version and day (merged or not yet).
	var rows, days uint64
	if err := srv.Conn(t, db).QueryRow(ctx, "SELECT count(), uniqExact(service, environment, version, day_start) FROM unit_versions_1d").Scan(&rows, &days); err != nil ||
		days < 9 || days > 20 || rows > 3*days {
		t.Fatalf("unit_versions_1d: %d rows, %d unit versions and days, %v", rows, days, err)
	}
	st, err := Open(ctx, Config{DSN: fmt.Sprintf("clickhouse://%s:%s@%s/%s", chtest.ReadOnlyUser, url.QueryEscape(chtest.ReadOnlyPassword), srv.Addr(), db)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, env := range []string{"production", ""} {
		summary, err := st.UnitRows(ctx, env, time.Unix(0, 0), 100)
		if err != nil {
			t.Fatal(err)
		}
		minutes, err := st.UnitRows(ctx, env, time.Unix(1, 0), 100) // a bounded history: every minute
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(summary, minutes) {
			t.Errorf("environment %q: from the daily summary %+v, from every minute %+v", env, summary, minutes)
		}
	}
	prod, err := st.UnitRows(ctx, "production", time.Time{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	at := func(i int) time.Time { return start.Add(time.Duration(i) * 10 * time.Minute) }
	want := []report.Unit{
		// "1" served last (from the 300th ten minutes on), "2" before it.
		{Service: "cart", Environment: "production", Versions: []string{"1", "2"}, FirstSeen: at(0), LastSeen: at(n - 3)},
		{Service: "search", Environment: "production", Versions: []string{""}, FirstSeen: at(2), LastSeen: at(n - 1)},
	}
	if !reflect.DeepEqual(prod, want) {
		t.Errorf("production units %+v, want %+v", prod, want)
	}
}
