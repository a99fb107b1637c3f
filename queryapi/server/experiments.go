package server

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"regexp"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/experimentspec"
	pb "github.com/changelens/changelens/queryapi/gen/changelens/v1"
	"github.com/changelens/changelens/queryapi/usecase"
)

// ExperimentSource is implemented by a Source that serves experiments
// (usecase.Service); without it the experiment endpoints answer
// Unimplemented.
type ExperimentSource interface {
	Experiments(ctx context.Context, now time.Time) ([]usecase.ExperimentResult, error)
	ExperimentReport(ctx context.Context, id string, asOf time.Time) (usecase.ExperimentResult, error)
	PlanExperiment(ctx context.Context, spec experimentspec.Spec, now time.Time) (usecase.ExperimentPlan, error)
}

func (s *service) experiments() (ExperimentSource, error) {
	if es, ok := s.src.(ExperimentSource); ok {
		return es, nil
	}
	return nil, status.Error(codes.Unimplemented, "this source serves no experiments")
}

var experimentIDRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// ListExperiments is GET /v1/experiments.
func (s *service) ListExperiments(ctx context.Context, req *pb.ListExperimentsRequest) (*pb.ListExperimentsResponse, error) {
	es, err := s.experiments()
	if err != nil {
		return nil, err
	}
	now := s.now()
	rs, err := coalesce(s, ctx, "ListExperiments", req, func(ctx context.Context) ([]usecase.ExperimentResult, error) {
		return es.Experiments(ctx, now)
	})
	if err != nil {
		return nil, err
	}
	out := &pb.ListExperimentsResponse{Experiments: make([]*pb.ExperimentSummary, 0, len(rs))}
	for _, r := range rs {
		out.Experiments = append(out.Experiments, &pb.ExperimentSummary{
			Experiment: specToPB(r.Spec), Status: experimentStatusToPB(r.Status),
			Decision: decisionToPB(r.Report.Decision, r.Status), Summary: r.Report.Summary,
			Source: r.Source, AppliedAt: timestamppb.New(r.AppliedAt),
		})
	}
	return out, nil
}

// GetExperimentReport is GET /v1/experiments/{id}/report.
func (s *service) GetExperimentReport(ctx context.Context, req *pb.GetExperimentReportRequest) (*pb.ExperimentReport, error) {
	if !experimentIDRe.MatchString(req.GetId()) {
		return nil, s.toStatus(ctx, "GetExperimentReport", badField("id", "must match [A-Za-z0-9._-]{1,128}"))
	}
	asOf := s.now()
	if t := req.GetAsOf(); t != nil {
		if err := t.CheckValid(); err != nil {
			return nil, s.toStatus(ctx, "GetExperimentReport", badField("as_of", "not a valid time"))
		}
		if t.AsTime().Before(asOf) { // the future reads as now: no data is there yet
			asOf = t.AsTime()
		}
	}
	es, err := s.experiments()
	if err != nil {
		return nil, err
	}
	r, err := coalesce(s, ctx, "GetExperimentReport", req, func(ctx context.Context) (usecase.ExperimentResult, error) {
		return es.ExperimentReport(ctx, req.GetId(), asOf)
	})
	if err != nil {
		return nil, err
	}
	return experimentReportToPB(r), nil
}

// PlanExperiment is POST /v1/experiments:plan.
func (s *service) PlanExperiment(ctx context.Context, req *pb.PlanExperimentRequest) (*pb.ExperimentPlan, error) {
	if req.GetExperiment() == nil {
		return nil, s.toStatus(ctx, "PlanExperiment", badField("experiment", "required: the definition, as the body"))
	}
	if t := req.GetExperiment().GetStartTime(); t != nil && t.CheckValid() != nil {
		return nil, s.toStatus(ctx, "PlanExperiment", badField("experiment.start_time", "not a valid time"))
	}
	spec, err := specFromPB(req.GetExperiment())
	if err == nil {
		err = spec.Validate()
	}
	if err != nil {
		var fe *analysis.FieldError
		if errors.As(err, &fe) {
			return nil, s.toStatus(ctx, "PlanExperiment", badField("experiment."+fe.Field, "%s", fe.Problem))
		}
		return nil, s.toStatus(ctx, "PlanExperiment", badField("experiment", "%v", err))
	}
	es, err := s.experiments()
	if err != nil {
		return nil, err
	}
	now := s.now()
	p, err := coalesce(s, ctx, "PlanExperiment", req, func(ctx context.Context) (usecase.ExperimentPlan, error) {
		return es.PlanExperiment(ctx, spec, now)
	})
	if err != nil {
		return nil, err
	}
	return planToPB(p), nil
}

// specFromPB reads a definition from the API's message: the field names
// are the same, so the JSON of one is the JSON of the other.
func specFromPB(e *pb.Experiment) (experimentspec.Spec, error) {
	js, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(e)
	if err != nil {
		return experimentspec.Spec{}, err
	}
	return experimentspec.Decode(string(js))
}

func specToPB(s experimentspec.Spec) *pb.Experiment {
	js, _ := json.Marshal(s)
	var e pb.Experiment
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(js, &e); err != nil {
		return &pb.Experiment{Id: s.ID}
	}
	if s.StartTime.IsZero() {
		e.StartTime = nil
	}
	return &e
}

func experimentStatusToPB(s string) pb.ExperimentStatus {
	switch s {
	case usecase.ExperimentNotStarted:
		return pb.ExperimentStatus_EXPERIMENT_STATUS_NOT_STARTED
	case usecase.ExperimentRunning:
		return pb.ExperimentStatus_EXPERIMENT_STATUS_RUNNING
	case usecase.ExperimentComplete:
		return pb.ExperimentStatus_EXPERIMENT_STATUS_COMPLETE
	}
	return pb.ExperimentStatus_EXPERIMENT_STATUS_UNSPECIFIED
}

func decisionToPB(d analysis.ExperimentDecision, status string) pb.ExperimentDecision {
	switch d {
	case analysis.DecisionShip:
		return pb.ExperimentDecision_EXPERIMENT_DECISION_SHIP
	case analysis.DecisionDontShip:
		return pb.ExperimentDecision_EXPERIMENT_DECISION_DONT_SHIP
	case analysis.DecisionInconclusive:
		return pb.ExperimentDecision_EXPERIMENT_DECISION_INCONCLUSIVE
	}
	if status == usecase.ExperimentNotStarted {
		return pb.ExperimentDecision_EXPERIMENT_DECISION_INCONCLUSIVE
	}
	return pb.ExperimentDecision_EXPERIMENT_DECISION_UNSPECIFIED
}

// optNum is a number that may be unknown (NaN, ±Inf: null).
func optNum(f float64) *wrapperspb.DoubleValue {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	return wrapperspb.Double(f)
}

func metricPlanToPB(m analysis.MetricPlan) *pb.ExperimentMetricPlan {
	out := &pb.ExperimentMetricPlan{Metric: m.Metric, Effect: num(m.Effect), CupedFactor: num(m.CUPEDFactor), Problem: m.Problem}
	if m.OK {
		out.DaysNeeded, out.MdeAtPlanned = optNum(m.DaysNeeded), optNum(m.MDEAtPlanned)
	}
	return out
}

func planToPB(p usecase.ExperimentPlan) *pb.ExperimentPlan {
	out := &pb.ExperimentPlan{Primary: metricPlanToPB(p.Primary), UnitsPerDay: num(p.UnitsPerDay),
		Sufficient: p.Sufficient, Message: p.Message}
	for _, g := range p.Guardrails {
		out.Guardrails = append(out.Guardrails, metricPlanToPB(g))
	}
	return out
}

// metricUnits is the unit of each metric's values.
func metricUnit(m analysis.ExperimentMetric) string {
	switch {
	case m.Kind == analysis.KindPercentile || m.Name == analysis.ExpSelfTime:
		return "ms"
	case m.Name == analysis.ExpPayloadSize:
		return "bytes"
	case m.Name == analysis.ExpCPUPerRequest:
		return "cpu_seconds_per_1000_requests"
	case m.Name == analysis.ExpMemoryPerRequest:
		return "byte_seconds_per_1000_requests"
	}
	return "share"
}

func experimentReportToPB(r usecase.ExperimentResult) *pb.ExperimentReport {
	out := &pb.ExperimentReport{
		Experiment:  specToPB(r.Spec),
		Status:      experimentStatusToPB(r.Status),
		AsOf:        timestamppb.New(r.AsOf),
		ElapsedDays: num(r.Report.Elapsed.Hours() / 24),
		Plan:        planToPB(r.Plan),
		Decision:    decisionToPB(r.Report.Decision, r.Status),
		Reason:      string(r.Report.Reason),
		Summary:     r.Report.Summary,
	}
	if r.Status == usecase.ExperimentNotStarted {
		out.Reason, out.Summary = "NOT_STARTED", "not started: assignment begins "+r.Spec.StartTime.Format(time.RFC3339)
	}
	if srm := r.Report.SRM; srm != nil {
		sr := &pb.ExperimentSampleRatio{ChiSquare: num(srm.ChiSquare), PValue: num(srm.PValue), Mismatch: srm.Mismatch}
		total := 0.0
		for _, o := range srm.Observed {
			total += o
		}
		for i, v := range srm.Variants {
			c := &pb.ExperimentVariantCount{Variant: v, Units: num(srm.Observed[i]), ExpectedShare: num(srm.ExpectedShares[i])}
			if total > 0 {
				c.ObservedShare = srm.Observed[i] / total
			}
			sr.Counts = append(sr.Counts, c)
		}
		out.SampleRatio = sr
	}
	for _, td := range r.Report.Treatments {
		t := &pb.ExperimentTreatment{Treatment: td.Treatment, Decision: decisionToPB(td.Decision, r.Status),
			Reason: string(td.Reason), Summary: td.Summary}
		for _, m := range td.Metrics {
			vm, _ := analysis.LookupExperimentMetric(m.Metric)
			mr := &pb.ExperimentMetricResult{
				Metric: m.Metric, Label: m.Label, Role: m.Role, Unit: metricUnit(vm),
				ControlValue: optNum(m.Control), TreatmentValue: optNum(m.TreatmentValue),
				Verdict: m.Verdict, Estimator: m.Estimator, Note: r.Notes[m.Metric],
				Cuped: m.CUPED, Tolerance: num(m.Tolerance), Sequential: m.Sequential,
			}
			if m.CUPED {
				mr.VarianceFactor = num(m.VarianceFactor)
			}
			if m.Verdict != analysis.VerdictInsufficient {
				mr.Delta, mr.DeltaLow, mr.DeltaHigh = optNum(m.Delta), optNum(m.DeltaLow), optNum(m.DeltaHigh)
				mr.RelativeEffect, mr.RelativeLow, mr.RelativeHigh = optNum(m.Relative), optNum(m.RelLow), optNum(m.RelHigh)
				mr.PValue, mr.AlwaysValidP = optNum(m.PValue), optNum(m.AlwaysValidP)
				mr.SequentialLow, mr.SequentialHigh, mr.Mde = optNum(m.SeqRelLow), optNum(m.SeqRelHigh), optNum(m.MDE)
			}
			t.Metrics = append(t.Metrics, mr)
		}
		out.Treatments = append(out.Treatments, t)
	}
	return out
}
