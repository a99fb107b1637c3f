package server

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/changelens/changelens/queryapi/gen/changelens/v1"
	"github.com/changelens/changelens/queryapi/report"
)

// Gate is GET /v1/gate.
func (s *service) Gate(ctx context.Context, req *pb.GateRequest) (*pb.GateResponse, error) {
	return s.gate(ctx, "Gate", req.GetService(), req.GetEnvironment(), req.GetVersion(), req.GetBaselineVersion(), req.GetFailStatus(), "")
}

// GateWebhook is POST /v1/gate with Flagger's webhook payload.
func (s *service) GateWebhook(ctx context.Context, req *pb.GateWebhookRequest) (*pb.GateResponse, error) {
	md := req.GetWebhook().GetMetadata()
	return s.gate(ctx, "GateWebhook", md["service"], md["environment"], md["version"], md["baseline_version"], req.GetFailStatus(), "webhook.metadata.")
}

func (s *service) gate(ctx context.Context, method, service, environment, version, baseline string, failStatus bool, prefix string) (*pb.GateResponse, error) {
	if err := errors.Join(
		checkName(prefix+"service", service, true, maxNameLen),
		checkName(prefix+"environment", environment, true, maxNameLen),
		checkName(prefix+"version", version, true, maxNameLen),
		checkName(prefix+"baseline_version", baseline, false, maxNameLen),
	); err != nil {
		return nil, s.toStatus(ctx, method, firstErr(err))
	}
	if baseline == version {
		return nil, s.toStatus(ctx, method, badField(prefix+"baseline_version", "must differ from version"))
	}
	qctx, cancel, err := s.query(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	a, err := s.src.Gate(qctx, report.GateQuery{Service: service, Environment: environment, Version: version, BaselineVersion: baseline})
	if err != nil {
		return nil, s.toStatus(qctx, method, err)
	}
	if failStatus && a.Result == report.GateFail {
		// The REST gateway turns this header into the response status
		// (httpStatusFromHeader); gRPC clients see it as metadata.
		_ = grpc.SetHeader(ctx, metadata.Pairs(httpCodeHeader, strconv.Itoa(http.StatusPreconditionFailed)))
	}
	return gateToPB(a), nil
}

func gateToPB(a report.GateAnswer) *pb.GateResponse {
	out := &pb.GateResponse{
		Reasons:        make([]string, len(a.Reasons)),
		Metrics:        metricsToPB(a.Metrics),
		DeploymentId:   a.DeploymentID,
		EvaluatedAt:    timestamppb.New(a.EvaluatedAt),
		Explanation:    a.Explanation,
		Control:        cohortToPB(a.Control),
		Treatment:      cohortToPB(a.Treatment),
		OverlapMinutes: int32(a.OverlapMinutes),
		Regressions:    regressionsToPB(a.Regressions),
	}
	for i, r := range a.Reasons {
		out.Reasons[i] = string(r)
	}
	out.Result, out.Mode = gateResults.toPB(a.Result), gateModes.toPB(a.Mode)
	if out.Result == 0 {
		out.Result = pb.GateResult_INCONCLUSIVE
	}
	return out
}

// httpCodeHeader carries an answer's HTTP status from a gRPC method to the
// REST gateway.
const httpCodeHeader = "x-changelens-http-code"

// httpStatusFromHeader is the gateway's forward-response hook: a method that
// set httpCodeHeader answers with that status (outgoingHeader keeps the
// header itself from the client).
func httpStatusFromHeader(ctx context.Context, w http.ResponseWriter, _ proto.Message) error {
	md, ok := runtime.ServerMetadataFromContext(ctx)
	if !ok {
		return nil
	}
	vals := md.HeaderMD.Get(httpCodeHeader)
	if len(vals) == 0 {
		return nil
	}
	if code, err := strconv.Atoi(vals[0]); err == nil {
		w.WriteHeader(code)
	}
	return nil
}
