package server

import (
	"math"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	pb "github.com/changelens/changelens/queryapi/gen/changelens/v1"
	"github.com/changelens/changelens/queryapi/report"
)

// ts converts a time; the zero time (unknown) becomes null in JSON.
func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// num keeps JSON encodable: protojson renders NaN and ±Inf as the strings
// "NaN"/"Infinity", which breaks clients that expect numbers; a Source should
// never produce them, and if one does the API reports 0.
func num(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}

// nullable is a number that JSON renders as null when it is unknown or
// unbounded (NaN, ±Inf): an interval's open end, a change from 0.
func nullable(f float64) *wrapperspb.DoubleValue {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	return wrapperspb.Double(f)
}

func count32(n int) int32 {
	switch {
	case n > math.MaxInt32:
		return math.MaxInt32
	case n < math.MinInt32:
		return math.MinInt32
	}
	return int32(n)
}

func groupByFromPB(g pb.GroupBy) (report.GroupBy, error) {
	return groupBys.fromPBField("group_by", g, report.GroupByNone, pb.GroupBy_name)
}

func intervalFromPB(i pb.Interval) (report.Interval, error) {
	return intervals.fromPBField("interval", i, report.IntervalAll, pb.Interval_name)
}

func sourceToPB(s report.DeploySource) pb.Source { return sources.toPB(s) }

func verdictToPB(v report.Verdict) pb.Verdict { return verdicts.toPB(v) }

func reasonsToPB(rs []report.FailureReason) []pb.FailureReason {
	out := make([]pb.FailureReason, 0, len(rs))
	for _, r := range rs {
		if p := failureReasons.toPB(r); p != 0 {
			out = append(out, p)
		}
	}
	return out
}

func tierToPB(t report.Tier) pb.Tier { return tiers.toPB(t) }

func unitToPB(u report.Unit) *pb.Unit {
	versions := u.Versions
	if versions == nil {
		versions = []string{}
	}
	return &pb.Unit{
		Service:     u.Service,
		Environment: u.Environment,
		Versions:    versions,
		FirstSeen:   ts(u.FirstSeen),
		LastSeen:    ts(u.LastSeen),
	}
}

func pointToPB(p report.LatencyPoint) *pb.LatencyPoint {
	return &pb.LatencyPoint{
		Time:       ts(p.Time),
		Group:      p.Group,
		Count:      num(p.Count),
		ErrorCount: num(p.ErrorCount),
		ErrorRate:  num(p.ErrorRate),
		P50Ms:      num(p.P50Ms),
		P90Ms:      num(p.P90Ms),
		P95Ms:      num(p.P95Ms),
		P99Ms:      num(p.P99Ms),
	}
}

func pointsToPB(ps []report.LatencyPoint) []*pb.LatencyPoint {
	out := make([]*pb.LatencyPoint, len(ps))
	for i, p := range ps {
		out[i] = pointToPB(p)
	}
	return out
}

func deploymentToPB(d report.Deployment) *pb.Deployment {
	out := &pb.Deployment{
		Id:              d.ID,
		Service:         d.Service,
		Environment:     d.Environment,
		Version:         d.Version,
		PreviousVersion: d.PreviousVersion,
		DeployTime:      ts(d.DeployTime),
		Source:          sourceToPB(d.Source),
		CommitSha:       d.CommitSHA,
		CommitTime:      ts(d.CommitTime),
		Rollback:        d.Rollback,
		ChangeFailure:   d.ChangeFailure,
		FailureReasons:  reasonsToPB(d.FailureReasons),
		RestoreTime:     ts(d.RestoreTime),
		Verdict:         verdictToPB(d.Verdict),
		RolloutStart:    ts(d.RolloutStart),
		Failed:          d.Failed,
		ReworkReason:    reworkReasons.toPB(d.ReworkReason),
	}
	if d.HasLeadTime && d.LeadTime > 0 {
		out.LeadTimeSeconds = d.LeadTime.Seconds()
	}
	if !d.RestoreTime.IsZero() && d.TimeToRestore > 0 {
		out.TimeToRestoreSeconds = d.TimeToRestore.Seconds()
	}
	if out.RolloutStart == nil {
		out.RolloutStart = out.DeployTime
	}
	out.Regressions = regressionsToPB(d.Regressions)
	out.Explanation = d.Explanation
	if d.Cause != nil {
		out.Cause = causeToPB(*d.Cause)
	}
	return out
}

func causeKindToPB(k report.CauseKind) pb.CauseKind { return causeKinds.toPB(k) }

// causeKindFromPB: UNSPECIFIED is no filter (0).
func causeKindFromPB(k pb.CauseKind) (report.CauseKind, error) {
	return causeKinds.fromPBField("cause_kind", k, 0, pb.CauseKind_name)
}

func causeToPB(c report.Cause) *pb.Cause {
	return &pb.Cause{Kind: causeKindToPB(c.Kind), DeploymentId: c.DeploymentID, Service: c.Service,
		Environment: c.Environment, Version: c.Version, Flag: c.Flag, Variant: c.Variant,
		Start: ts(c.Start), End: ts(c.End), Metric: c.Metric, Before: num(c.Before), After: num(c.After),
		Explained: num(c.Explained), Share: nullable(c.Share), Z: nullable(c.Z), Significant: c.Significant,
		Rank: count32(c.Rank)}
}

func attributionToPB(a report.Attribution) *pb.Attribution {
	out := &pb.Attribution{Causes: make([]*pb.Cause, len(a.Causes)), Neighbours: make([]*pb.Neighbour, len(a.Neighbours))}
	for i, c := range a.Causes {
		out.Causes[i] = causeToPB(c)
	}
	for i, n := range a.Neighbours {
		out.Neighbours[i] = &pb.Neighbour{Service: n.Service, Environment: n.Environment, Callee: n.Callee,
			CallsPerMinuteBefore: num(n.CallsPerMinuteBefore), CallsPerMinuteAfter: num(n.CallsPerMinuteAfter),
			MeanMsBefore: nullable(n.MeanMsBefore), MeanMsAfter: nullable(n.MeanMsAfter),
			ErrorRateBefore: nullable(n.ErrorRateBefore), ErrorRateAfter: nullable(n.ErrorRateAfter),
			DeploymentIds: n.Deployments}
		if n.Deployments == nil {
			out.Neighbours[i].DeploymentIds = []string{}
		}
	}
	return out
}

func regressionsToPB(rs []report.Regression) []*pb.Regression {
	out := make([]*pb.Regression, len(rs))
	for i, r := range rs {
		out[i] = &pb.Regression{Operation: r.Operation, OtherOperations: r.Remainder, Metric: r.Metric,
			Before: num(r.Before), After: num(r.After), RelativeChange: nullable(r.RelativeChange),
			CiLow: nullable(r.CILow), CiHigh: nullable(r.CIHigh),
			BeforeRequests: num(r.BeforeRequests), AfterRequests: num(r.AfterRequests),
			ErrorKind: r.ErrorKind, FirstTraceId: r.FirstTraceID}
	}
	return out
}

// errorKindsToPB converts the new-error-kind rule's answer; nil for nil.
func errorKindsToPB(ek *report.ErrorKinds) *pb.ErrorKinds {
	if ek == nil {
		return nil
	}
	kinds := func(ks []report.ErrorKind) []*pb.ErrorKind {
		out := make([]*pb.ErrorKind, len(ks))
		for i, k := range ks {
			out[i] = &pb.ErrorKind{Kind: k.Kind, Folded: k.Folded, New: k.New, Verdict: compareVerdictToPB(k.Verdict),
				Before: num(k.Before), After: num(k.After), BeforeRate: nullable(k.BeforeRate), AfterRate: nullable(k.AfterRate),
				RateLow: nullable(k.RateLow), RateHigh: nullable(k.RateHigh), RateRatio: nullable(k.RateRatio),
				RatioLow: nullable(k.RatioLow), RatioHigh: nullable(k.RatioHigh), Phi: num(k.Phi), Minutes: count32(k.Minutes),
				PValue: num(k.PValue), AdjustedPValue: num(k.AdjustedPValue), Test: k.Test,
				FirstTraceId: k.FirstTraceID, FirstSeen: ts(k.FirstSeen)}
		}
		return out
	}
	return &pb.ErrorKinds{Tested: ek.Tested, NewErrorKind: ek.NewErrorKind, BeforeRequests: num(ek.BeforeRequests),
		AfterRequests: num(ek.AfterRequests), HistoryRequests: num(ek.HistoryRequests), Family: count32(ek.Family),
		Mde: nullable(ek.MDE), New: kinds(ek.New), Rose: kinds(ek.Rose), Explanation: ek.Explanation}
}

func impactMetricsToPB(ms []report.ImpactMetric) []*pb.ImpactMetric {
	out := make([]*pb.ImpactMetric, len(ms))
	for i, m := range ms {
		out[i] = &pb.ImpactMetric{Metric: m.Metric, Before: num(m.Before), After: num(m.After),
			RelativeChange: nullable(m.RelativeChange), CiLow: nullable(m.CILow), CiHigh: nullable(m.CIHigh),
			MinDetectableChange: nullable(m.MDE), MinDetectableValue: nullable(m.MDEValue),
			PValue: num(m.PValue), AdjustedPValue: num(m.AdjustedPValue), Z: num(m.Z), Test: m.Test,
			Verdict: compareVerdictToPB(m.Verdict), RawChange: nullable(m.RawChange), ControlChange: nullable(m.ControlChange)}
	}
	return out
}

func operationImpactsToPB(ops []report.OperationImpact) []*pb.OperationImpact {
	out := make([]*pb.OperationImpact, len(ops))
	for i, o := range ops {
		out[i] = &pb.OperationImpact{Operation: o.Operation, OtherOperations: o.Remainder, OperationCount: count32(o.Operations),
			BeforeRequests: num(o.BeforeRequests), AfterRequests: num(o.AfterRequests), Judged: o.Judged,
			Metrics: impactMetricsToPB(o.Metrics), Verdict: compareVerdictToPB(o.Verdict), Rank: count32(o.Rank)}
	}
	return out
}

func windowToPB(w report.Window) *pb.ImpactWindow {
	return &pb.ImpactWindow{
		Start:     ts(w.Start),
		End:       ts(w.End),
		Requests:  num(w.Requests),
		Errors:    num(w.Errors),
		ErrorRate: num(w.ErrorRate),
		P50Ms:     num(w.P50Ms),
		P95Ms:     num(w.P95Ms),
		P99Ms:     num(w.P99Ms),
	}
}

func testToPB(t report.Test) *pb.StatTest {
	return &pb.StatTest{
		Name:        t.Name,
		Statistic:   num(t.Statistic),
		PValue:      num(t.PValue),
		Significant: t.Significant,
		Direction:   t.Direction,
	}
}

func impactToPB(im report.Impact) *pb.GetDeploymentImpactResponse {
	var canary *pb.CompareResponse
	if im.Canary != nil {
		canary = comparisonToPB(*im.Canary)
	}
	return &pb.GetDeploymentImpactResponse{
		Canary:          canary,
		Deployment:      deploymentToPB(im.Deployment),
		Before:          windowToPB(im.Before),
		After:           windowToPB(im.After),
		LatencyRatio:    num(im.LatencyRatio),
		ErrorRateDelta:  num(im.ErrorRateDelta),
		LatencyTest:     testToPB(im.LatencyTest),
		ErrorRateTest:   testToPB(im.ErrorRateTest),
		Verdict:         verdictToPB(im.Verdict),
		Reasons:         reasonsToPB(im.Reasons),
		WindowsComplete: im.WindowsComplete,
		Metrics:         impactMetricsToPB(im.Metrics),
		Operations:      operationImpactsToPB(im.Operations),
		RequestsNeeded:  num(im.RequestsNeeded),
		Explanation:     im.Explanation,
		Control:         controlToPB(im.Control),
		Attribution:     attributionToPB(im.Attribution),
		ErrorKinds:      errorKindsToPB(im.ErrorKinds),
	}
}

func controlToPB(c report.Control) *pb.Control {
	out := &pb.Control{Kind: c.Kind, Series: c.Series, Shifts: make([]*pb.ControlShift, len(c.Shifts))}
	if out.Kind == "" {
		out.Kind = "none"
	}
	if out.Series == nil {
		out.Series = []string{}
	}
	for i, s := range c.Shifts {
		out.Shifts[i] = &pb.ControlShift{Metric: s.Metric, Change: num(s.Change), CiLow: num(s.CILow), CiHigh: num(s.CIHigh)}
	}
	return out
}

func doraFiguresToPB(f report.DORAFigures) *pb.DORAFigures {
	return &pb.DORAFigures{
		StartTime:                  ts(f.Start),
		EndTime:                    ts(f.End),
		DeploymentCount:            count32(f.DeploymentCount),
		DeploymentFrequencyPerDay:  num(f.DeploymentFrequencyPerDay),
		ChangeCount:                count32(f.ChangeCount),
		FailedChangeCount:          count32(f.FailedChangeCount),
		ChangeFailureRate:          num(f.ChangeFailureRate),
		LeadTimeMedianSeconds:      num(f.LeadTimeMedianSeconds),
		LeadTimeSampleCount:        count32(f.LeadTimeSampleCount),
		TimeToRestoreMedianSeconds: num(f.TimeToRestoreMedianSeconds),
		RestoreSampleCount:         count32(f.RestoreSampleCount),
		Tiers: &pb.DORATiers{
			DeploymentFrequency: tierToPB(f.FrequencyTier),
			LeadTime:            tierToPB(f.LeadTimeTier),
			ChangeFailureRate:   tierToPB(f.ChangeFailureRateTier),
			TimeToRestore:       tierToPB(f.TimeToRestoreTier),
		},
		ReworkCount: count32(f.ReworkCount),
		ReworkRate:  num(f.ReworkRate),
		Benchmarks:  benchmarksToPB(f.Benchmarks),
	}
}

func benchmarksToPB(bs []report.MetricBenchmark) []*pb.MetricBenchmark {
	out := make([]*pb.MetricBenchmark, 0, len(bs))
	for _, b := range bs {
		pbb := &pb.MetricBenchmark{Metric: b.Metric, Edition: b.Edition, Tier: tierToPB(b.Tier)}
		if b.Scored {
			pbb.Score, pbb.Percentile = nullable(b.Score), nullable(b.Percentile)
		}
		if b.Edition == report.Edition2025 {
			pbb.IndustryMean, pbb.IndustryStd = nullable(b.IndustryMean), nullable(b.IndustryStd)
		}
		out = append(out, pbb)
	}
	return out
}
