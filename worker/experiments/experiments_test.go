package experiments

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/changelens/changelens/internal/schema"
	"github.com/changelens/changelens/queryapi/experimentspec"
	"github.com/changelens/changelens/queryapi/store"
	"github.com/changelens/changelens/testkit/chtest"
	"github.com/changelens/changelens/worker/writer"
)

func TestMain(m *testing.M) { os.Exit(chtest.Main(m)) }

const def = `id: %ID%
unit: {service: shop-app, environment: production}
dimension: version
variants: [{name: "1.4.0", control: true, share: 0.5}, {name: "1.5.0", share: 0.5}]
primary_metric: {metric: load_p75, min_effect: 0.05}
guardrails: [{metric: crash_rate, max_degradation: 0}]
start_time: 2026-11-20T00:00:00Z
planned_duration: 14d
load_operations: [screen order]
`

func write(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A directory applied to a real server: valid files are stored, a bad one
// is reported naming file and field without stopping the others, an
// unchanged directory writes nothing, an edited file is a new revision
// that readers see instead of the old.
func TestApplyStoresDefinitions(t *testing.T) {
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	ctx := context.Background()
	conn := srv.Conn(t, db)
	o := schema.Options{Database: db, Features: schema.FeaturesFor(srv.Version())}
	if _, err := schema.Apply(ctx, conn, o, srv.Version()); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, store.Config{DSN: srv.DSN("default", "", db)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	w := writer.New(conn, o)

	dir := t.TempDir()
	write(t, dir, "a.yaml", strings.ReplaceAll(def, "%ID%", "app-release"))
	write(t, dir, "b.yml", strings.ReplaceAll(def, "%ID%", "app-release-2"))
	write(t, dir, "c.yaml", strings.ReplaceAll(strings.ReplaceAll(def, "%ID%", "broken"), "load_p75", "load_p76"))
	write(t, dir, "d.yaml", strings.ReplaceAll(def, "%ID%", "app-release")) // the same id again
	write(t, dir, "notes.txt", "not a definition")

	t0 := time.Now().UTC().Truncate(time.Second)
	res, err := Apply(ctx, dir, st, w, t0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Applied != 2 || res.Unchanged != 0 || len(res.Invalid) != 2 {
		t.Fatalf("first application: %+v", res)
	}
	if msg := res.Invalid[0].Error(); !strings.HasPrefix(msg, "c.yaml: ") || !strings.Contains(msg, "primary_metric.metric") {
		t.Errorf("bad file reported as %q", msg)
	}
	if msg := res.Invalid[1].Error(); !strings.HasPrefix(msg, "d.yaml: id:") || !strings.Contains(msg, "a.yaml") {
		t.Errorf("duplicate id reported as %q", msg)
	}
	got, err := st.Experiments(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "app-release" || got[1].ID != "app-release-2" || got[0].Source != "a.yaml" ||
		got[0].Service != "shop-app" || got[0].Environment != "production" || !got[0].AppliedAt.Equal(t0) {
		t.Fatalf("stored %+v", got)
	}
	s, err := experimentspec.Decode(got[0].Definition)
	if err != nil || s.PrimaryMetric.Metric != "load_p75" || s.PlannedDuration != "14d" {
		t.Fatalf("stored definition %q: %v", got[0].Definition, err)
	}

	res, err = Apply(ctx, dir, st, w, t0.Add(time.Minute))
	if err != nil || res.Applied != 0 || res.Unchanged != 2 {
		t.Fatalf("unchanged directory: %+v %v", res, err)
	}

	write(t, dir, "a.yaml", strings.ReplaceAll(strings.ReplaceAll(def, "%ID%", "app-release"), "min_effect: 0.05", "min_effect: 0.10"))
	res, err = Apply(ctx, dir, st, w, t0.Add(2*time.Minute))
	if err != nil || res.Applied != 1 || res.Unchanged != 1 {
		t.Fatalf("edited file: %+v %v", res, err)
	}
	one, err := st.Experiments(ctx, "app-release")
	if err != nil || len(one) != 1 {
		t.Fatalf("one experiment: %+v %v", one, err)
	}
	s, err = experimentspec.Decode(one[0].Definition)
	if err != nil || s.PrimaryMetric.MinEffect != 0.10 || !one[0].AppliedAt.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("newest revision not read: %+v %v", one[0], err)
	}
	if none, err := st.Experiments(ctx, "nope"); err != nil || len(none) != 0 {
		t.Fatalf("unknown id: %+v %v", none, err)
	}
}
