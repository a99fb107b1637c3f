package store_test

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/changelens/changelens/internal/schema"
	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/store"
	"github.com/changelens/changelens/testkit/chtest"
	"github.com/changelens/changelens/worker/writer"
)

// Stored verdicts are read in chunks of IDs (a year's deployments overflow
// one query's text): every chunk's rows arrive, an unknown ID has none.
func TestStoredVerdictsInChunks(t *testing.T) {
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	ctx := context.Background()
	o := schema.Options{Database: db, Features: schema.FeaturesFor(srv.Version())}
	if _, err := schema.Apply(ctx, srv.Conn(t, db), o, srv.Version()); err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Truncate(time.Minute).Add(-24 * time.Hour)
	var vs []writer.Verdict
	var ids []string
	for i := range 7 {
		id := fmt.Sprintf("%032x", i+1)
		start := at.Add(time.Duration(i) * time.Hour)
		vs = append(vs, writer.Verdict{ID: id, Service: "checkout", Environment: "production", Version: fmt.Sprintf("1.%d.0", i),
			Verdict: report.VerdictNoChange, Before: analysis.Span{Start: start.Add(-30 * time.Minute), End: start},
			After: analysis.Span{Start: start, End: start.Add(30 * time.Minute)}, Judgement: analysis.Judgement{Verdict: report.VerdictNoChange}})
		ids = append(ids, id)
	}
	if err := writer.New(srv.Conn(t, db), o).StoreVerdicts(ctx, "hash", vs, time.Now()); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, store.Config{DSN: fmt.Sprintf("clickhouse://%s:%s@%s/%s",
		chtest.ReadOnlyUser, url.QueryEscape(chtest.ReadOnlyPassword), srv.Addr(), db)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	defer store.SetVerdictIDsPerQuery(3)()
	got, err := st.StoredVerdicts(ctx, "hash", append(ids, fmt.Sprintf("%032x", 99)))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(vs) {
		t.Fatalf("%d verdicts read back in chunks of 3, want %d", len(got), len(vs))
	}
	for _, v := range vs {
		if g, ok := got[v.ID]; !ok || !g.Before.Start.Equal(v.Before.Start) || !g.After.End.Equal(v.After.End) {
			t.Errorf("verdict %s: %+v (found %v), want windows %v and %v", v.ID, g, ok, v.Before, v.After)
		}
	}
}
