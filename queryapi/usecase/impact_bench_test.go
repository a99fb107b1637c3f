package usecase

import (
	"context"
	"fmt"
	"testing"

	"github.com/changelens/changelens/testkit/chtest"
)

// BenchmarkImpact times a cold /v1/deployments/{id}/impact (caches off,
// stored verdicts ignored: every read of the judgement made) on the
// benchmarks' 30 days (bench_test.go) for a deployment that regressed
// (svc00's v7, 1.6× slower: judged, then judged again with its
// attribution evidence) and one that did not (svc00's v3: judged, then
// its neighbours read). make bench-attribution runs it here and on the
// commit before attribution, same data, side by side
// (docs/performance.md).
func BenchmarkImpact(b *testing.B) {
	srv := chtest.Shared(b)
	for _, vol := range benchVolumes(b) {
		d := loadBench(b, srv, vol)
		name := fmt.Sprintf("events=%.1fM", float64(d.events)/1e6)
		ctx := context.Background()
		st := benchStore(b, srv, d, false)
		st.cfg.IgnoreStoredVerdicts = true
		tl, err := st.timeline(ctx, unitFilter{Service: "svc00", Environment: benchDORAEnv}, d.start, d.end)
		if err != nil {
			b.Fatal(err)
		}
		ids := map[string]string{}
		for _, it := range tl.Items() {
			if v := it.Deployment.Version; v == "v3" || v == "v7" {
				ids[v] = it.Deployment.ID
			}
		}
		for _, c := range []struct{ name, version string }{{"regressed", "v7"}, {"steady", "v3"}} {
			id, ok := ids[c.version]
			if !ok {
				b.Fatalf("no deployment of svc00 %s", c.version)
			}
			b.Run(name+"/api-cold/"+c.name, func(b *testing.B) {
				var verdict string
				timed(b, func() error {
					im, err := st.Impact(ctx, id)
					verdict = im.Verdict.String()
					return err
				})
				b.Logf("%s: %s", c.version, verdict)
			})
		}
	}
}
