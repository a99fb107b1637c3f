package server

import (
	"strings"

	pb "github.com/changelens/changelens/queryapi/gen/changelens/v1"
	"github.com/changelens/changelens/queryapi/report"
)

// enumTable pairs every value of a report enum with its proto value. The
// tables are the one mapping between the two, in both directions;
// TestEnumTables checks that each covers both enums one to one, so a value
// added on either side without the other fails a test instead of reaching
// a client as UNSPECIFIED.
type enumTable[R comparable, P ~int32] []struct {
	r R
	p P
}

// toPB is r's proto value; UNSPECIFIED (0) for a value not in the table.
func (t enumTable[R, P]) toPB(r R) P {
	for _, e := range t {
		if e.r == r {
			return e.p
		}
	}
	return 0
}

// fromPB is p's report value, and whether the table has it.
func (t enumTable[R, P]) fromPB(p P) (R, bool) {
	for _, e := range t {
		if e.p == p {
			return e.r, true
		}
	}
	var zero R
	return zero, false
}

// fromPBField is fromPB for a request field: UNSPECIFIED means
// unspecifiedMeans, any other value outside the table is a 400 naming the
// field and the values it takes (names is the proto enum's name map).
func (t enumTable[R, P]) fromPBField(field string, p P, unspecifiedMeans R, names map[int32]string) (R, error) {
	if p == 0 {
		return unspecifiedMeans, nil
	}
	if r, ok := t.fromPB(p); ok {
		return r, nil
	}
	var valid []string
	for _, e := range t {
		valid = append(valid, names[int32(e.p)])
	}
	return unspecifiedMeans, badField(field, "unknown value %d: one of %s", int32(p), strings.Join(valid, ", "))
}

var (
	groupBys = enumTable[report.GroupBy, pb.GroupBy]{
		{report.GroupByNone, pb.GroupBy_GROUP_BY_NONE},
		{report.GroupByVersion, pb.GroupBy_GROUP_BY_VERSION},
		{report.GroupByOperation, pb.GroupBy_GROUP_BY_OPERATION},
	}
	intervals = enumTable[report.Interval, pb.Interval]{
		{report.IntervalAll, pb.Interval_INTERVAL_ALL},
		{report.IntervalDay, pb.Interval_INTERVAL_DAY},
		{report.IntervalWeek, pb.Interval_INTERVAL_WEEK},
		{report.IntervalMonth, pb.Interval_INTERVAL_MONTH},
		{report.IntervalQuarter, pb.Interval_INTERVAL_QUARTER},
	}
	sources = enumTable[report.DeploySource, pb.Source]{
		{report.SourceExplicit, pb.Source_SOURCE_EXPLICIT},
		{report.SourceInferred, pb.Source_SOURCE_INFERRED},
	}
	verdicts = enumTable[report.Verdict, pb.Verdict]{
		{report.VerdictPending, pb.Verdict_VERDICT_PENDING},
		{report.VerdictInsufficientData, pb.Verdict_VERDICT_INSUFFICIENT_DATA},
		{report.VerdictNoChange, pb.Verdict_VERDICT_NO_CHANGE},
		{report.VerdictImproved, pb.Verdict_VERDICT_IMPROVED},
		{report.VerdictDegraded, pb.Verdict_VERDICT_DEGRADED},
		{report.VerdictCausedByDependency, pb.Verdict_VERDICT_CAUSED_BY_DEPENDENCY},
	}
	failureReasons = enumTable[report.FailureReason, pb.FailureReason]{
		{report.ReasonRolledBack, pb.FailureReason_FAILURE_REASON_ROLLED_BACK},
		{report.ReasonLatencyRegression, pb.FailureReason_FAILURE_REASON_LATENCY_REGRESSION},
		{report.ReasonErrorRateRegression, pb.FailureReason_FAILURE_REASON_ERROR_RATE_REGRESSION},
		{report.ReasonIncident, pb.FailureReason_FAILURE_REASON_INCIDENT},
		{report.ReasonNewErrorKind, pb.FailureReason_FAILURE_REASON_NEW_ERROR_KIND},
	}
	tiers = enumTable[report.Tier, pb.Tier]{
		{report.TierUnknown, pb.Tier_TIER_UNKNOWN},
		{report.TierLow, pb.Tier_TIER_LOW},
		{report.TierMedium, pb.Tier_TIER_MEDIUM},
		{report.TierHigh, pb.Tier_TIER_HIGH},
		{report.TierElite, pb.Tier_TIER_ELITE},
	}
	causeKinds = enumTable[report.CauseKind, pb.CauseKind]{
		{report.CauseOwnDeployment, pb.CauseKind_CAUSE_KIND_OWN_DEPLOYMENT},
		{report.CauseCalleeDeployment, pb.CauseKind_CAUSE_KIND_CALLEE_DEPLOYMENT},
		{report.CauseCallerDeployment, pb.CauseKind_CAUSE_KIND_CALLER_DEPLOYMENT},
		{report.CauseFeatureFlag, pb.CauseKind_CAUSE_KIND_FEATURE_FLAG},
	}
	compareVerdicts = enumTable[report.CompareVerdict, pb.CompareVerdict]{
		{report.CompareInsufficientData, pb.CompareVerdict_COMPARE_VERDICT_INSUFFICIENT_DATA},
		{report.CompareNoDifference, pb.CompareVerdict_COMPARE_VERDICT_NO_DIFFERENCE},
		{report.CompareBetter, pb.CompareVerdict_COMPARE_VERDICT_BETTER},
		{report.CompareWorse, pb.CompareVerdict_COMPARE_VERDICT_WORSE},
	}
	gateResults = enumTable[report.GateResult, pb.GateResult]{
		{report.GatePass, pb.GateResult_PASS},
		{report.GateFail, pb.GateResult_FAIL},
		{report.GateInconclusive, pb.GateResult_INCONCLUSIVE},
	}
	reworkReasons = enumTable[report.ReworkReason, pb.ReworkReason]{
		{report.ReworkRollback, pb.ReworkReason_REWORK_REASON_ROLLBACK},
		{report.ReworkFixForward, pb.ReworkReason_REWORK_REASON_FIX_FORWARD},
		{report.ReworkHotfix, pb.ReworkReason_REWORK_REASON_HOTFIX},
		{report.ReworkRevert, pb.ReworkReason_REWORK_REASON_REVERT},
	}
	gateModes = enumTable[report.GateMode, pb.GateMode]{
		{report.GateCanary, pb.GateMode_CANARY},
		{report.GateBeforeAfter, pb.GateMode_BEFORE_AFTER},
	}
)
