package server

import (
	"cmp"
	"context"
	"errors"
	"math"
	"time"

	"github.com/changelens/changelens/internal/schema"

	pb "github.com/changelens/changelens/queryapi/gen/changelens/v1"
	"github.com/changelens/changelens/queryapi/report"
)

// defaultCompareRange is the range of a comparison without start_time: a
// canary is judged on its recent minutes.
const defaultCompareRange = time.Hour

// Compare is GET /v1/compare.
func (s *service) Compare(ctx context.Context, req *pb.CompareRequest) (*pb.CompareResponse, error) {
	if err := errors.Join(
		checkName("service", req.GetService(), true, maxNameLen),
		checkName("environment", req.GetEnvironment(), true, maxNameLen),
		checkName("control", req.GetControl(), true, maxNameLen),
		checkName("treatment", req.GetTreatment(), true, maxNameLen),
		checkName("operation", req.GetOperation(), false, maxOperationLen),
		checkName("dimension", req.GetDimension(), false, maxNameLen),
	); err != nil {
		return nil, s.toStatus(ctx, "Compare", firstErr(err))
	}
	switch dim := req.GetDimension(); {
	case !schema.KnownDimension(dim):
		return nil, s.toStatus(ctx, "Compare", badField("dimension", "%q is not known (supported: version, feature_flag.<key>, attribute.<name>)", dim))
	case req.GetControl() == req.GetTreatment():
		return nil, s.toStatus(ctx, "Compare", badField("treatment", "must differ from control"))
	}
	share := req.GetExpectedTreatmentShare()
	if math.IsNaN(share) || share < 0 || share >= 1 {
		return nil, s.toStatus(ctx, "Compare", badField("expected_treatment_share", "must lie in (0, 1) (or be absent)"))
	}
	start, end, err := timeRange(req.GetStartTime(), req.GetEndTime(), s.now(), defaultCompareRange, s.limits.CompareRange())
	if err != nil {
		return nil, s.toStatus(ctx, "Compare", err)
	}
	c, err := coalesce(s, ctx, "Compare", req, func(ctx context.Context) (report.Comparison, error) {
		return s.src.Compare(ctx, report.CompareQuery{
			Service: req.GetService(), Environment: req.GetEnvironment(), Start: start, End: end,
			Dimension: cmp.Or(req.GetDimension(), schema.DimensionVersion), Control: req.GetControl(), Treatment: req.GetTreatment(),
			Operation: req.GetOperation(), ExpectedShare: share,
		})
	})
	if err != nil {
		return nil, err
	}
	return comparisonToPB(c), nil
}

// comparisonToPB converts a comparison (GET /v1/compare, and the canary of
// an impact).
func comparisonToPB(c report.Comparison) *pb.CompareResponse {
	out := &pb.CompareResponse{
		Control:        cohortToPB(c.Control),
		Treatment:      cohortToPB(c.Treatment),
		OverlapMinutes: int32(c.OverlapMinutes),
		Verdict:        compareVerdictToPB(c.Verdict),
		ErrorKinds:     errorKindsToPB(c.ErrorKinds),
	}
	out.Metrics = metricsToPB(c.Metrics)
	if c.SRM != nil {
		out.Srm = &pb.SampleRatio{ExpectedShare: num(c.SRM.ExpectedShare), ObservedShare: num(c.SRM.ObservedShare),
			PValue: num(c.SRM.PValue), Mismatch: c.SRM.Mismatch}
	}
	out.Operations = make([]*pb.OperationComparison, 0, len(c.Operations))
	for _, o := range c.Operations {
		out.Operations = append(out.Operations, &pb.OperationComparison{
			Operation:      o.Operation,
			Control:        cohortToPB(o.Control),
			Treatment:      cohortToPB(o.Treatment),
			OverlapMinutes: int32(o.OverlapMinutes),
			Metrics:        metricsToPB(o.Metrics),
			Verdict:        compareVerdictToPB(o.Verdict),
		})
	}
	return out
}

func cohortToPB(c report.Cohort) *pb.Cohort {
	return &pb.Cohort{Value: c.Value, Requests: num(c.Requests), Share: num(c.Share),
		SlowestTraceId: c.SlowestTraceID, FailedTraceId: c.FailedTraceID}
}

func metricsToPB(ms []report.CompareMetric) []*pb.CompareMetric {
	out := make([]*pb.CompareMetric, 0, len(ms))
	for _, m := range ms {
		out = append(out, &pb.CompareMetric{
			Metric: m.Metric, Control: num(m.Control), Treatment: num(m.Treatment),
			RelativeChange: num(m.RelativeChange), CiLow: num(m.CILow), CiHigh: num(m.CIHigh),
			PValue: num(m.PValue), Test: m.Test, Verdict: compareVerdictToPB(m.Verdict),
		})
	}
	return out
}

func compareVerdictToPB(v report.CompareVerdict) pb.CompareVerdict { return compareVerdicts.toPB(v) }

// defaultCohortsRange is the range of ListCohorts without start_time.
const defaultCohortsRange = 24 * time.Hour

// ListCohorts is GET /v1/cohorts.
func (s *service) ListCohorts(ctx context.Context, req *pb.ListCohortsRequest) (*pb.ListCohortsResponse, error) {
	if err := errors.Join(
		checkName("service", req.GetService(), true, maxNameLen),
		checkName("environment", req.GetEnvironment(), true, maxNameLen),
	); err != nil {
		return nil, s.toStatus(ctx, "ListCohorts", firstErr(err))
	}
	start, end, err := timeRange(req.GetStartTime(), req.GetEndTime(), s.now(), defaultCohortsRange, s.limits.MaxLatencyRange)
	if err != nil {
		return nil, s.toStatus(ctx, "ListCohorts", err)
	}
	ctx, cancel, err := s.query(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	dims, err := s.src.Cohorts(ctx, report.CohortQuery{Service: req.GetService(), Environment: req.GetEnvironment(), Start: start, End: end})
	if err != nil {
		return nil, s.toStatus(ctx, "ListCohorts", err)
	}
	out := &pb.ListCohortsResponse{Dimensions: make([]*pb.CohortDimension, 0, len(dims))}
	for _, d := range dims {
		pd := &pb.CohortDimension{Dimension: d.Dimension, Values: make([]*pb.CohortValue, 0, len(d.Values))}
		for _, v := range d.Values {
			pd.Values = append(pd.Values, &pb.CohortValue{Value: v.Value, Requests: num(v.Requests)})
		}
		out.Dimensions = append(out.Dimensions, pd)
	}
	return out, nil
}
