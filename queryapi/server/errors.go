package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/changelens/changelens/queryapi/report"
)

// fieldError is a rejected input field. It becomes codes.InvalidArgument
// (HTTP 400) whose message names the field ("step_seconds: must be ≥ 60") and
// whose details carry a google.rpc.BadRequest field violation.
type fieldError struct {
	Field  string
	Reason string
}

func (e *fieldError) Error() string { return e.Field + ": " + e.Reason }

func badField(field, format string, args ...any) error {
	return &fieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

func (e *fieldError) status() *status.Status {
	st := status.New(codes.InvalidArgument, e.Error())
	if withDetails, err := st.WithDetails(&errdetails.BadRequest{
		FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: e.Field, Description: e.Reason}},
	}); err == nil {
		return withDetails
	}
	return st
}

// toStatus turns an error of validation or of the Source into a gRPC status
// error, the only kind of error the service returns (the gateway maps the code
// to the HTTP status). Internal errors are logged with the trace id and
// reported as a bare "internal error": no SQL, addresses or driver messages
// reach the client.
func (s *service) toStatus(ctx context.Context, method string, err error) error {
	var fe *fieldError
	var iae *report.InvalidArgumentError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &fe):
		return fe.status().Err()
	case errors.Is(err, report.ErrNotFound):
		return status.Error(codes.NotFound, "not found")
	case errors.As(err, &iae):
		return status.Error(codes.InvalidArgument, iae.Reason)
	case timedOut(ctx, err):
		b, ok := budget(ctx)
		switch {
		case !ok:
			b = s.timeout
		case b <= 0:
			return status.Error(codes.DeadlineExceeded, "the request's deadline had passed before its query started")
		}
		return status.Errorf(codes.DeadlineExceeded, "query did not finish within %s", b.Round(time.Microsecond))
	case errors.Is(ctx.Err(), context.Canceled), errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "request canceled")
	}
	attrs := []any{"method", method, "error", err}
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		attrs = append(attrs, "trace_id", sc.TraceID().String())
	}
	s.log.ErrorContext(ctx, "query failed", attrs...)
	return status.Error(codes.Internal, "internal error")
}

// timedOut reports whether err (of a query under ctx) is a deadline: the
// request's, or the driver's network timeout, which clickhouse-go returns
// as an i/o error of its own.
func timedOut(ctx context.Context, err error) bool {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, os.ErrDeadlineExceeded) || status.Code(err) == codes.DeadlineExceeded {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// internalError is what a recovered panic becomes.
func internalError(log *slog.Logger, where string, p any) error {
	log.Error("panic recovered", "where", where, "panic", fmt.Sprint(p))
	return status.Error(codes.Internal, "internal error")
}
