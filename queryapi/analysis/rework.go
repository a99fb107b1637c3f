package analysis

import (
	"cmp"
	"slices"
	"time"

	"github.com/changelens/changelens/queryapi/report"
)

// MarkRework sets every deployment's ReworkReason (DORA's deployment rework
// rate: deployments not planned but made to fix a user-facing problem), in
// this order of precedence:
//
//   - ROLLBACK: it deploys a version the unit ran before (Rollback);
//   - HOTFIX, REVERT: its source marked it so (ReworkMark);
//   - FIX_FORWARD: the unit's previous successful deployment was a change
//     failure (regressed, rolled back, or caused an incident) and this one
//     followed it within fixForward — the fix that went forward instead
//     of back.
//
// deps may hold several units in any order; failed deploy attempts are
// never rework and are not "previous deployments" (they changed nothing a
// user saw). The first deployment of a unit in deps has no previous one:
// pass the deployments before the range too when its first may be a
// fix-forward.
func MarkRework(deps []report.Deployment, fixForward time.Duration) {
	idx := make([]int, 0, len(deps))
	for i := range deps {
		deps[i].ReworkReason = 0
		if !deps[i].Failed {
			idx = append(idx, i)
		}
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		da, db := &deps[a], &deps[b]
		return cmp.Or(cmp.Compare(da.Service, db.Service), cmp.Compare(da.Environment, db.Environment),
			da.DeployTime.Compare(db.DeployTime), cmp.Compare(da.ID, db.ID))
	})
	for k, i := range idx {
		d := &deps[i]
		var prev *report.Deployment
		if k > 0 {
			if p := &deps[idx[k-1]]; p.Service == d.Service && p.Environment == d.Environment {
				prev = p
			}
		}
		switch {
		case d.Rollback:
			d.ReworkReason = report.ReworkRollback
		case d.ReworkMark == report.ReworkMarkHotfix:
			d.ReworkReason = report.ReworkHotfix
		case d.ReworkMark == report.ReworkMarkRevert:
			d.ReworkReason = report.ReworkRevert
		case prev != nil && prev.ChangeFailure && d.DeployTime.Sub(prev.DeployTime) <= fixForward:
			d.ReworkReason = report.ReworkFixForward
		}
	}
}
