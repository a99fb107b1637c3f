package server

import (
	"context"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// admission bounds the requests that query the Source at once. Each holds a
// slot while its queries run; a request finding none free waits up to wait
// and is then refused (UNAVAILABLE, HTTP 503 with Retry-After) — so the
// memory of results in flight, and the load put on ClickHouse, stay bounded
// whatever the number of clients, and a busy server answers quickly instead
// of queueing requests past their deadlines.
type admission struct {
	slots      chan struct{}
	wait       time.Duration
	retryAfter time.Duration
}

func newAdmission(maxRunning int, wait time.Duration) *admission {
	return &admission{slots: make(chan struct{}, maxRunning), wait: wait, retryAfter: max(time.Second, wait)}
}

// acquire takes a slot for the request ctx, or returns the status to answer.
func (a *admission) acquire(ctx context.Context) (release func(), err error) {
	select {
	case a.slots <- struct{}{}:
		return func() { <-a.slots }, nil
	default:
	}
	t := time.NewTimer(a.wait)
	defer t.Stop()
	select {
	case a.slots <- struct{}{}:
		return func() { <-a.slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
	}
	a.retryHeader(ctx)
	return nil, status.Errorf(codes.Unavailable, "server busy: %d queries running and none finished within %s; retry after %s",
		cap(a.slots), a.wait, a.retryAfter.Round(time.Second))
}

// retryHeader sets the Retry-After of a refused request: the REST gateway
// forwards it as the Retry-After header (outgoingHeader); gRPC clients see
// it as metadata.
func (a *admission) retryHeader(ctx context.Context) {
	_ = grpc.SetHeader(ctx, metadata.Pairs("retry-after", strconv.Itoa(int(a.retryAfter.Round(time.Second)/time.Second))))
}

// budgetKey carries the time a request's queries were given.
type budgetKey struct{}

// budget is how long the request's queries were allowed: the per-query
// timeout, or less when the client's own deadline was nearer.
func budget(ctx context.Context) (time.Duration, bool) {
	d, ok := ctx.Value(budgetKey{}).(time.Duration)
	return d, ok
}
