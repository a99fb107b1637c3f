package server

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/changelens/changelens/queryapi/gen/changelens/v1"
	"github.com/changelens/changelens/queryapi/limits"
	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/teams"
)

// service implements pb.QueryServiceServer on a report.Source. It is called
// both by the gRPC server and, in-process, by the REST gateway, so everything
// that must hold on both paths lives here: input validation and defaults, the
// per-query timeout, and the mapping of errors to status codes. (Auth is the
// gRPC interceptor on one path and the HTTP middleware on the other.)
type service struct {
	pb.UnimplementedQueryServiceServer

	src     report.Source
	limits  limits.Limits
	timeout time.Duration
	now     func() time.Time
	log     *slog.Logger
	admit   *admission
	flight  flightGroup
	teams   *teams.Mapping
}

var _ pb.QueryServiceServer = (*service)(nil)

// query admits a request to the Source (admission) and bounds its context
// by the per-query timeout or the client's nearer deadline; the error, a
// status, is the answer when it is not admitted. cancel releases the slot.
func (s *service) query(ctx context.Context) (context.Context, context.CancelFunc, error) {
	release := func() {}
	if s.admit != nil {
		r, err := s.admit.acquire(ctx)
		if err != nil {
			if status.Code(err) == codes.Unavailable {
				return nil, nil, err
			}
			return nil, nil, s.toStatus(ctx, "admission", err)
		}
		release = r
	}
	qctx, cancel := s.bounded(ctx)
	return qctx, func() { cancel(); release() }, nil
}

// bounded bounds ctx by the per-query timeout (the client's deadline, when
// nearer, still applies) and records the budget that applied, which a
// timeout's message names (toStatus).
func (s *service) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	b := s.timeout
	if d, ok := ctx.Deadline(); ok {
		b = min(b, time.Until(d))
	}
	return context.WithTimeout(context.WithValue(ctx, budgetKey{}, b), s.timeout)
}

func (s *service) ListServices(ctx context.Context, req *pb.ListServicesRequest) (*pb.ListServicesResponse, error) {
	if err := checkName("environment", req.GetEnvironment(), false, maxNameLen); err != nil {
		return nil, s.toStatus(ctx, "ListServices", err)
	}
	services, err := s.teamServices(req.GetTeam(), "")
	if err != nil {
		return nil, s.toStatus(ctx, "ListServices", err)
	}
	ctx, cancel, err := s.query(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	units, err := s.src.Units(ctx, req.GetEnvironment())
	if err != nil {
		return nil, s.toStatus(ctx, "ListServices", err)
	}
	out := &pb.ListServicesResponse{Services: make([]*pb.Unit, 0, len(units))}
	for _, u := range units {
		if services == nil || slices.Contains(services, u.Service) {
			out.Services = append(out.Services, unitToPB(u))
		}
	}
	return out, nil
}

// latencyFilters validates what GetLatency and GetLatencySummary share.
func (s *service) latencyFilters(service, environment, operation, version string,
	start, end *timestamppb.Timestamp, groupBy pb.GroupBy) (report.LatencyQuery, error) {
	var q report.LatencyQuery
	if err := errors.Join(
		checkName("service", service, true, maxNameLen),
		checkName("environment", environment, true, maxNameLen),
		checkName("operation", operation, false, maxOperationLen),
		checkName("version", version, false, maxNameLen),
	); err != nil {
		return q, firstErr(err)
	}
	g, err := groupByFromPB(groupBy)
	if err != nil {
		return q, err
	}
	from, to, err := timeRange(start, end, s.now(), defaultLatencyRange, s.limits.MaxLatencyRange)
	if err != nil {
		return q, err
	}
	return report.LatencyQuery{
		Service: service, Environment: environment, Operation: operation, Version: version,
		Start: from, End: to, GroupBy: g,
	}, nil
}

func (s *service) GetLatency(ctx context.Context, req *pb.GetLatencyRequest) (*pb.GetLatencyResponse, error) {
	q, err := s.latencyFilters(req.GetService(), req.GetEnvironment(), req.GetOperation(), req.GetVersion(),
		req.GetStartTime(), req.GetEndTime(), req.GetGroupBy())
	if err != nil {
		return nil, s.toStatus(ctx, "GetLatency", err)
	}
	if q.Step, err = latencyStep(req.GetStepSeconds(), q.Start, q.End, s.limits.MaxSeriesBuckets); err != nil {
		return nil, s.toStatus(ctx, "GetLatency", err)
	}
	points, err := coalesce(s, ctx, "GetLatency", req, func(ctx context.Context) ([]report.LatencyPoint, error) { return s.src.Latency(ctx, q) })
	if err != nil {
		return nil, err
	}
	return &pb.GetLatencyResponse{
		Points:      pointsToPB(points),
		StartTime:   timestamppb.New(q.Start),
		EndTime:     timestamppb.New(q.End),
		StepSeconds: int32(q.Step / time.Second),
	}, nil
}

func (s *service) GetLatencySummary(ctx context.Context, req *pb.GetLatencySummaryRequest) (*pb.GetLatencySummaryResponse, error) {
	q, err := s.latencyFilters(req.GetService(), req.GetEnvironment(), req.GetOperation(), req.GetVersion(),
		req.GetStartTime(), req.GetEndTime(), req.GetGroupBy())
	if err != nil {
		return nil, s.toStatus(ctx, "GetLatencySummary", err)
	}
	q.Step = q.End.Sub(q.Start)
	rows, err := coalesce(s, ctx, "GetLatencySummary", req, func(ctx context.Context) ([]report.LatencyPoint, error) { return s.src.LatencySummary(ctx, q) })
	if err != nil {
		return nil, err
	}
	return &pb.GetLatencySummaryResponse{
		Rows:      pointsToPB(rows),
		StartTime: timestamppb.New(q.Start),
		EndTime:   timestamppb.New(q.End),
	}, nil
}

func (s *service) ListDeployments(ctx context.Context, req *pb.ListDeploymentsRequest) (*pb.ListDeploymentsResponse, error) {
	q, err := s.deploymentQuery(req)
	if err != nil {
		return nil, s.toStatus(ctx, "ListDeployments", err)
	}
	type page struct {
		deps []report.Deployment
		next string
	}
	pg, err := coalesce(s, ctx, "ListDeployments", req, func(ctx context.Context) (page, error) {
		deps, next, err := s.src.Deployments(ctx, q)
		return page{deps, next}, err
	})
	if err != nil {
		return nil, err
	}
	deps, next := pg.deps, pg.next
	out := &pb.ListDeploymentsResponse{Deployments: make([]*pb.Deployment, len(deps)), NextPageToken: next}
	for i, d := range deps {
		out.Deployments[i] = deploymentToPB(d)
	}
	return out, nil
}

func (s *service) deploymentQuery(req *pb.ListDeploymentsRequest) (report.DeploymentQuery, error) {
	var q report.DeploymentQuery
	if err := errors.Join(
		checkName("service", req.GetService(), false, maxNameLen),
		checkName("environment", req.GetEnvironment(), false, maxNameLen),
		checkPageToken(req.GetPageToken()),
		checkName("caused_by", req.GetCausedBy(), false, maxNameLen),
	); err != nil {
		return q, firstErr(err)
	}
	services, err := s.teamServices(req.GetTeam(), req.GetService())
	if err != nil {
		return q, err
	}
	kind, err := causeKindFromPB(req.GetCauseKind())
	if err != nil {
		return q, err
	}
	size := int(req.GetPageSize())
	switch {
	case size == 0:
		size = s.limits.DefaultPageSize
	case size < 0 || size > s.limits.MaxPageSize:
		return q, badField("page_size", "must be between 1 and %d", s.limits.MaxPageSize)
	}
	start, end, err := timeRange(req.GetStartTime(), req.GetEndTime(), s.now(), defaultReportRange, s.limits.MaxReportRange)
	if err != nil {
		return q, err
	}
	return report.DeploymentQuery{
		Service: req.GetService(), Services: services, Environment: req.GetEnvironment(),
		Start: start, End: end, PageSize: size, PageToken: req.GetPageToken(),
		CauseKind: kind, CausedBy: req.GetCausedBy(),
	}, nil
}

func (s *service) GetDeploymentImpact(ctx context.Context, req *pb.GetDeploymentImpactRequest) (*pb.GetDeploymentImpactResponse, error) {
	if err := checkID(req.GetId()); err != nil {
		return nil, s.toStatus(ctx, "GetDeploymentImpact", err)
	}
	ctx, cancel, err := s.query(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	im, err := s.src.Impact(ctx, req.GetId())
	if errors.Is(err, report.ErrNotFound) {
		return nil, status.Errorf(codes.NotFound, "deployment %s not found", req.GetId())
	}
	if err != nil {
		return nil, s.toStatus(ctx, "GetDeploymentImpact", err)
	}
	return impactToPB(im), nil
}

func (s *service) GetServiceGraph(ctx context.Context, req *pb.GetServiceGraphRequest) (*pb.GetServiceGraphResponse, error) {
	if err := errors.Join(
		checkName("environment", req.GetEnvironment(), true, maxNameLen),
		checkName("service", req.GetService(), false, maxNameLen),
	); err != nil {
		return nil, s.toStatus(ctx, "GetServiceGraph", firstErr(err))
	}
	start, end, err := timeRange(req.GetStartTime(), req.GetEndTime(), s.now(), defaultCompareRange, s.limits.CompareRange())
	if err != nil {
		return nil, s.toStatus(ctx, "GetServiceGraph", err)
	}
	edges, err := coalesce(s, ctx, "GetServiceGraph", req, func(ctx context.Context) ([]report.GraphEdge, error) {
		return s.src.Graph(ctx, report.GraphQuery{Environment: req.GetEnvironment(), Service: req.GetService(), Start: start, End: end})
	})
	if err != nil {
		return nil, err
	}
	out := &pb.GetServiceGraphResponse{Edges: make([]*pb.GraphEdge, len(edges))}
	for i, e := range edges {
		out.Edges[i] = &pb.GraphEdge{CallerService: e.CallerService, CalleeService: e.CalleeService,
			CalleeEnvironment: e.CalleeEnvironment, Calls: num(e.Calls), Errors: num(e.Errors),
			MeanMs: nullable(ratioOrNaN(e.DurationMs, e.Calls))}
	}
	return out, nil
}

func (s *service) ListIncidents(ctx context.Context, req *pb.ListIncidentsRequest) (*pb.ListIncidentsResponse, error) {
	env := req.GetEnvironment()
	if env == "" {
		env = defaultEnvironment
	}
	if err := errors.Join(
		checkName("service", req.GetService(), false, maxNameLen),
		checkName("environment", env, true, maxNameLen),
	); err != nil {
		return nil, s.toStatus(ctx, "ListIncidents", firstErr(err))
	}
	services, err := s.teamServices(req.GetTeam(), req.GetService())
	if err != nil {
		return nil, s.toStatus(ctx, "ListIncidents", err)
	}
	start, end, err := timeRange(req.GetStartTime(), req.GetEndTime(), s.now(), defaultReportRange, s.limits.MaxReportRange)
	if err != nil {
		return nil, s.toStatus(ctx, "ListIncidents", err)
	}
	incidents, err := coalesce(s, ctx, "ListIncidents", req, func(ctx context.Context) ([]report.Incident, error) {
		return s.src.Incidents(ctx, report.IncidentQuery{Service: req.GetService(), Services: services, Environment: env, Start: start, End: end})
	})
	if err != nil {
		return nil, err
	}
	out := &pb.ListIncidentsResponse{Incidents: make([]*pb.Incident, len(incidents))}
	for i, in := range incidents {
		out.Incidents[i] = &pb.Incident{Id: in.ID, Source: in.Source, Status: in.Status, Severity: in.Severity, Title: in.Title,
			Service: in.Service, Environment: in.Environment, OpenedTime: ts(in.Opened), ResolvedTime: ts(in.Resolved),
			DeploymentId: in.DeploymentID, LinkedDeploymentId: in.LinkedDeploymentID}
	}
	return out, nil
}

// ratioOrNaN is a ÷ b, NaN (null) when b is 0.
func ratioOrNaN(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}

func (s *service) GetDORA(ctx context.Context, req *pb.GetDORARequest) (*pb.GetDORAResponse, error) {
	env := req.GetEnvironment()
	if env == "" {
		env = defaultEnvironment
	}
	if err := errors.Join(
		checkName("service", req.GetService(), false, maxNameLen),
		checkName("environment", env, true, maxNameLen),
	); err != nil {
		return nil, s.toStatus(ctx, "GetDORA", firstErr(err))
	}
	services, err := s.teamServices(req.GetTeam(), req.GetService())
	if err != nil {
		return nil, s.toStatus(ctx, "GetDORA", err)
	}
	interval, err := intervalFromPB(req.GetInterval())
	if err != nil {
		return nil, s.toStatus(ctx, "GetDORA", err)
	}
	start, end, err := timeRange(req.GetStartTime(), req.GetEndTime(), s.now(), defaultReportRange, s.limits.MaxReportRange)
	if err != nil {
		return nil, s.toStatus(ctx, "GetDORA", err)
	}
	edition := req.GetEdition()
	if edition == "" {
		edition = report.DefaultEdition
	}
	if !slices.Contains(report.Editions, edition) {
		return nil, s.toStatus(ctx, "GetDORA", badField("edition", "%q is not an edition: one of %s", edition, strings.Join(report.Editions, ", ")))
	}
	rep, err := coalesce(s, ctx, "GetDORA", req, func(ctx context.Context) (report.DORAReport, error) {
		return s.src.DORA(ctx, report.DORAQuery{Service: req.GetService(), Services: services, Environment: env, Start: start, End: end, Interval: interval, Edition: edition})
	})
	if err != nil {
		return nil, err
	}
	out := &pb.GetDORAResponse{
		Summary:   doraFiguresToPB(rep.Summary),
		Intervals: make([]*pb.DORAFigures, 0, max(len(rep.Intervals), 1)),
	}
	for _, f := range rep.Intervals {
		out.Intervals = append(out.Intervals, doraFiguresToPB(f))
	}
	if interval == report.IntervalAll && len(out.Intervals) == 0 {
		// One bucket: the whole range (documented in the proto).
		out.Intervals = append(out.Intervals, doraFiguresToPB(rep.Summary))
	}
	return out, nil
}

// firstErr unwraps errors.Join to its first error, so a 400 names one field.
func firstErr(err error) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		if errs := j.Unwrap(); len(errs) > 0 {
			return errs[0]
		}
	}
	return err
}
