package server

import (
	"context"
	"math"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	pb "github.com/changelens/changelens/queryapi/gen/changelens/v1"
	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/teams"
	"github.com/changelens/changelens/queryapi/usecase"
)

// RetrospectiveSource is implemented by a Source that computes team
// retrospectives (usecase.Service); without it GetRetrospective answers
// Unimplemented.
type RetrospectiveSource interface {
	Retrospective(ctx context.Context, q usecase.RetrospectiveQuery) (usecase.Retrospective, error)
}

// The API's ClickHouse source serves retrospectives.
var _ RetrospectiveSource = (*usecase.Service)(nil)

// GetRetrospective is GET /v1/teams/{team}/retrospectives/{period}. The
// checks go from the request's form (400) to the team (404) to the period
// against the clock (400), so a malformed request is 400 whatever the
// teams file holds.
func (s *service) GetRetrospective(ctx context.Context, req *pb.GetRetrospectiveRequest) (*pb.Retrospective, error) {
	const method = "GetRetrospective"
	env := req.GetEnvironment()
	if env == "" {
		env = defaultEnvironment
	}
	name := req.GetTeam()
	if !teams.ValidName(name) {
		return nil, s.toStatus(ctx, method, badField("team", "%s", teams.NameRule))
	}
	period, err := teams.ParsePeriod(req.GetPeriod())
	if err != nil {
		return nil, s.toStatus(ctx, method, badField("period", "%v", err))
	}
	// The years the document states (1970–2099): a period's end may be
	// maxTime itself, an exclusive bound.
	if period.Start.Before(minTime) || period.End.After(maxTime) {
		return nil, s.toStatus(ctx, method, badField("period", "must be in the years 1970 to 2099"))
	}
	if err := checkName("environment", env, true, maxNameLen); err != nil {
		return nil, s.toStatus(ctx, method, err)
	}
	edition := req.GetEdition()
	if edition == "" {
		edition = report.DefaultEdition
	}
	if !slices.Contains(report.Editions, edition) {
		return nil, s.toStatus(ctx, method, badField("edition", "%q is not an edition: one of %s", edition, strings.Join(report.Editions, ", ")))
	}
	team, ok := s.teams.Team(name)
	if !ok {
		return nil, status.Errorf(codes.NotFound, "team %s not found", name)
	}
	now := s.now()
	if !now.After(period.Start) {
		return nil, s.toStatus(ctx, method, badField("period", "%s has not started", period.Name))
	}
	rs, ok := s.src.(RetrospectiveSource)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "this source serves no retrospectives")
	}
	r, err := coalesce(s, ctx, method, req, func(ctx context.Context) (usecase.Retrospective, error) {
		// A running period is reported to the last whole minute: the same
		// answer (and link) for everyone who asks within it.
		return rs.Retrospective(ctx, usecase.RetrospectiveQuery{Team: team, Environment: env, Edition: edition, Period: period, Now: now.Truncate(time.Minute)})
	})
	if err != nil { // already a status (coalesce)
		return nil, err
	}
	return retrospectiveToPB(r), nil
}

func retrospectiveToPB(r usecase.Retrospective) *pb.Retrospective {
	out := &pb.Retrospective{
		Team: r.Team, Environment: r.Environment, Period: r.Period.Name,
		StartTime: timestamppb.New(r.Period.Start), EndTime: timestamppb.New(r.End),
		PreviousPeriod: r.Previous.Name, PreviousStartTime: timestamppb.New(r.Previous.Start), PreviousEndTime: timestamppb.New(r.Previous.End),
		Link:    r.Link,
		Current: doraFiguresToPB(r.Current), Previous: doraFiguresToPB(r.Prior),
		Metrics:           make([]*pb.RetrospectiveMetric, 0, len(r.Metrics)),
		FocusMetric:       r.FocusMetric,
		FailedDeployments: make([]*pb.RetrospectiveDeployment, 0, len(r.FailedDeployments)),
		Experiments:       make([]*pb.RetrospectiveExperiment, 0, len(r.Experiments)),
		Markdown:          r.Markdown,
	}
	for _, m := range r.Metrics {
		pm := &pb.RetrospectiveMetric{Metric: m.Metric, Unit: m.Unit, Current: optNum(m.Current), Previous: optNum(m.Previous),
			Change: optNum(m.Change), Trend: m.Trend, Target: optNum(m.Target), Focus: m.Focus}
		if m.HasTargetMet {
			pm.TargetMet = wrapperspb.Bool(m.TargetMet)
		}
		out.Metrics = append(out.Metrics, pm)
	}
	for _, d := range r.FailedDeployments {
		pd := deploymentToPB(d)
		fd := &pb.RetrospectiveDeployment{DeploymentId: d.ID, Service: d.Service, Environment: d.Environment,
			Version: d.Version, PreviousVersion: d.PreviousVersion, DeployTime: pd.DeployTime,
			FailureReasons: pd.FailureReasons, Explanation: d.Explanation, Cause: pd.Cause}
		if !d.RestoreTime.IsZero() {
			fd.RecoveredTime = timestamppb.New(d.RestoreTime)
			fd.RecoverySeconds = wrapperspb.Double(math.Max(0, d.TimeToRestore.Seconds()))
		}
		out.FailedDeployments = append(out.FailedDeployments, fd)
	}
	for _, e := range r.Experiments {
		out.Experiments = append(out.Experiments, &pb.RetrospectiveExperiment{Id: e.ID, Description: e.Description,
			Service: e.Service, PlannedEnd: ts(e.PlannedEnd), Decision: e.Decision, Summary: e.Summary})
	}
	return out
}
