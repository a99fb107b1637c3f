package server

import (
	"context"

	"golang.org/x/sync/singleflight"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// coalesce runs fn once for identical requests (same method, same request
// message) that arrive while it runs, and gives each caller the answer:
// dashboards viewed by many people, and clients retrying, ask the same
// heavy question at once, and one query answers them all. The leader's
// query runs detached from its own client — a caller that gives up must
// not fail the others — under the server's per-query timeout, and takes one
// admission slot for all of them; every caller still waits only as long as
// its own context allows.
func coalesce[T any](s *service, ctx context.Context, method string, req proto.Message, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	if err != nil {
		return zero, err
	}
	// The caller waits under its own deadline or the server's, whichever is
	// nearer, and a timeout names the one that applied.
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	key := method + "\x00" + string(b)
	ch := s.flight.DoChan(key, func() (v any, err error) {
		// The query runs in singleflight's goroutine, beyond the reach of
		// the servers' panic recovery: a panic is an internal error here.
		defer func() {
			if p := recover(); p != nil {
				v, err = nil, internalError(s.log, method, p)
			}
		}()
		qctx, cancel, err := s.query(context.WithoutCancel(ctx))
		if err != nil {
			return nil, err
		}
		defer cancel()
		answer, err := fn(qctx)
		if err != nil {
			return nil, s.toStatus(qctx, method, err)
		}
		return answer, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			if status.Code(r.Err) == codes.Unavailable && s.admit != nil {
				s.admit.retryHeader(ctx) // each caller's response carries it
			}
			return zero, r.Err
		}
		return r.Val.(T), nil
	case <-ctx.Done():
		// The flight this caller gave up on is not joined any more: it is
		// about to time out too, and a request arriving now starts afresh.
		s.flight.Forget(key)
		return zero, s.toStatus(ctx, method, ctx.Err())
	}
}

// flightGroup is the singleflight group of a service.
type flightGroup = singleflight.Group
