package usecase

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/changelens/changelens/testkit/chtest"
)

// BenchmarkWorkerCycle times the judging part of a changelens-worker cycle
// (worker/settle): judge every deployment of the last 30 days
// (Service.Judge) and read the stored verdicts they are compared with, over
// the benchmark data (two operations per service):
//
//	first   nothing stored yet: every deployment judged from its windows
//	steady  every settled verdict stored and nothing changed: the cycle the
//	        worker runs once a minute
//
// It uses only what both this tree and the commit before per-operation
// verdicts have, so that make bench runs the same file in both, side by
// side (docs/performance.md).
func BenchmarkWorkerCycle(b *testing.B) {
	srv := chtest.Shared(b)
	for _, vol := range benchVolumes(b) {
		d := loadBench(b, srv, vol)
		storeVerdicts(b, srv, d)
		name := fmt.Sprintf("events=%.1fM", float64(d.events)/1e6)
		for _, c := range []struct {
			name  string
			empty bool
		}{{"first", true}, {"steady", false}} {
			b.Run(name+"/"+c.name, func(b *testing.B) {
				svc := benchStore(b, srv, d, false)
				svc.cfg.IgnoreStoredVerdicts = true
				if c.empty {
					svc.configHash = "bench-nothing-stored"
				}
				ctx := context.Background()
				judged := 0
				timed(b, func() error {
					j, err := svc.Judge(ctx, d.end.Add(-30*24*time.Hour), d.end.Add(time.Minute))
					if err != nil {
						return err
					}
					ids := make([]string, len(j.Settled))
					for i, v := range j.Settled {
						ids[i] = v.Impact.Deployment.ID
					}
					judged = len(j.Settled) + len(j.Open)
					_, err = svc.st.StoredVerdicts(ctx, svc.ConfigHash(), ids)
					return err
				})
				b.ReportMetric(float64(judged), "deployments")
			})
		}
	}
}
