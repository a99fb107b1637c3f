package server

import (
	"testing"

	pb "github.com/changelens/changelens/queryapi/gen/changelens/v1"
	"github.com/changelens/changelens/queryapi/report"
)

// checkTable: the table maps report values one to one onto every proto
// value but UNSPECIFIED (names is the proto enum's name map), and each
// report value's String (when it has one) is its proto name less the
// prefix — the names stored verdicts and notifications carry.
func checkTable[R comparable, P ~int32](t *testing.T, name string, tab enumTable[R, P], names map[int32]string, prefix string, reportValues []R) {
	t.Helper()
	seenR, seenP := map[R]bool{}, map[P]bool{}
	for _, e := range tab {
		if seenR[e.r] || seenP[e.p] {
			t.Errorf("%s: %v/%v mapped twice", name, e.r, e.p)
		}
		seenR[e.r], seenP[e.p] = true, true
		if e.p == 0 {
			t.Errorf("%s: %v maps to UNSPECIFIED", name, e.r)
		}
		if back, ok := tab.fromPB(e.p); !ok || back != e.r {
			t.Errorf("%s: %v → %v → %v", name, e.r, e.p, back)
		}
		if s, ok := any(e.r).(interface{ String() string }); ok && prefix+s.String() != names[int32(e.p)] {
			t.Errorf("%s: report name %q, proto name %q", name, prefix+s.String(), names[int32(e.p)])
		}
	}
	for v, n := range names {
		if v != 0 && !seenP[P(v)] {
			t.Errorf("%s: proto value %s has no report value", name, n)
		}
	}
	for _, r := range reportValues {
		if !seenR[r] {
			t.Errorf("%s: report value %v has no proto value", name, r)
		}
	}
}

func TestEnumTables(t *testing.T) {
	checkTable(t, "group_by", groupBys, pb.GroupBy_name, "", []report.GroupBy{report.GroupByNone, report.GroupByVersion, report.GroupByOperation})
	checkTable(t, "interval", intervals, pb.Interval_name, "", []report.Interval{report.IntervalAll, report.IntervalDay, report.IntervalWeek, report.IntervalMonth, report.IntervalQuarter})
	checkTable(t, "source", sources, pb.Source_name, "", []report.DeploySource{report.SourceExplicit, report.SourceInferred})
	checkTable(t, "verdict", verdicts, pb.Verdict_name, "VERDICT_", []report.Verdict{report.VerdictPending, report.VerdictInsufficientData,
		report.VerdictNoChange, report.VerdictImproved, report.VerdictDegraded, report.VerdictCausedByDependency})
	checkTable(t, "failure reason", failureReasons, pb.FailureReason_name, "FAILURE_REASON_", []report.FailureReason{report.ReasonRolledBack,
		report.ReasonLatencyRegression, report.ReasonErrorRateRegression, report.ReasonIncident})
	checkTable(t, "tier", tiers, pb.Tier_name, "", []report.Tier{report.TierUnknown, report.TierLow, report.TierMedium, report.TierHigh, report.TierElite})
	checkTable(t, "cause kind", causeKinds, pb.CauseKind_name, "CAUSE_KIND_", []report.CauseKind{report.CauseOwnDeployment,
		report.CauseCalleeDeployment, report.CauseCallerDeployment, report.CauseFeatureFlag})
	checkTable(t, "compare verdict", compareVerdicts, pb.CompareVerdict_name, "COMPARE_VERDICT_", []report.CompareVerdict{report.CompareInsufficientData,
		report.CompareNoDifference, report.CompareBetter, report.CompareWorse})
	checkTable(t, "gate result", gateResults, pb.GateResult_name, "", []report.GateResult{report.GatePass, report.GateFail, report.GateInconclusive})
	checkTable(t, "rework reason", reworkReasons, pb.ReworkReason_name, "REWORK_REASON_", []report.ReworkReason{report.ReworkRollback,
		report.ReworkFixForward, report.ReworkHotfix, report.ReworkRevert})
	checkTable(t, "gate mode", gateModes, pb.GateMode_name, "", []report.GateMode{report.GateCanary, report.GateBeforeAfter})

	// A request's unknown value names the field and what it takes.
	if _, err := groupBys.fromPBField("group_by", pb.GroupBy(9), report.GroupByNone, pb.GroupBy_name); err == nil ||
		err.Error() != badField("group_by", "unknown value 9: one of GROUP_BY_NONE, GROUP_BY_VERSION, GROUP_BY_OPERATION").Error() {
		t.Errorf("unknown group_by: %v", err)
	}
	if g, err := groupBys.fromPBField("group_by", pb.GroupBy_GROUP_BY_UNSPECIFIED, report.GroupByNone, pb.GroupBy_name); err != nil || g != report.GroupByNone {
		t.Errorf("unspecified group_by: %v %v", g, err)
	}
}
