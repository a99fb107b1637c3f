package server

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/changelens/changelens/queryapi/gen/changelens/v1"
	"github.com/changelens/changelens/queryapi/limits"
)

func TestGRPCQueries(t *testing.T) {
	src := &fakeSource{}
	ts := startServer(t, Config{Source: src})
	c := pb.NewQueryServiceClient(ts.conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	units, err := c.ListServices(ctx, &pb.ListServicesRequest{})
	if err != nil || len(units.GetServices()) != 2 || units.GetServices()[0].GetLastSeen().AsTime() != now.Add(-time.Minute) {
		t.Errorf("ListServices: %v %v", units, err)
	}
	lat, err := c.GetLatency(ctx, &pb.GetLatencyRequest{Service: "a", Environment: "b", GroupBy: pb.GroupBy_GROUP_BY_VERSION,
		StartTime: timestamppb.New(now.Add(-time.Hour)), StepSeconds: 120})
	if err != nil || len(lat.GetPoints()) != 2 || lat.GetStepSeconds() != 120 || src.latency.Step != 2*time.Minute {
		t.Errorf("GetLatency: %v %v", lat, err)
	}
	sum, err := c.GetLatencySummary(ctx, &pb.GetLatencySummaryRequest{Service: "a", Environment: "b"})
	if err != nil || len(sum.GetRows()) != 1 {
		t.Errorf("GetLatencySummary: %v %v", sum, err)
	}
	deps, err := c.ListDeployments(ctx, &pb.ListDeploymentsRequest{PageSize: 2})
	if err != nil || len(deps.GetDeployments()) != 2 || deps.GetNextPageToken() != "next-page" {
		t.Errorf("ListDeployments: %v %v", deps, err)
	}
	d := deps.GetDeployments()[1]
	if d.GetSource() != pb.Source_SOURCE_EXPLICIT || d.GetVerdict() != pb.Verdict_VERDICT_DEGRADED ||
		!slices.Equal(d.GetFailureReasons(), []pb.FailureReason{pb.FailureReason_FAILURE_REASON_ROLLED_BACK, pb.FailureReason_FAILURE_REASON_LATENCY_REGRESSION}) ||
		d.GetLeadTimeSeconds() != 3*3600 || d.GetTimeToRestoreSeconds() != 3600 {
		t.Errorf("deployment %v", d)
	}
	im, err := c.GetDeploymentImpact(ctx, &pb.GetDeploymentImpactRequest{Id: depID})
	if err != nil || im.GetVerdict() != pb.Verdict_VERDICT_DEGRADED || im.GetLatencyTest().GetPValue() != 0.0001 {
		t.Errorf("GetDeploymentImpact: %v %v", im, err)
	}
	dora, err := c.GetDORA(ctx, &pb.GetDORARequest{Interval: pb.Interval_INTERVAL_WEEK})
	if err != nil || dora.GetSummary().GetTiers().GetLeadTime() != pb.Tier_TIER_ELITE || len(dora.GetIntervals()) != 2 ||
		src.dora.Environment != "production" {
		t.Errorf("GetDORA: %v %v", dora, err)
	}

	// The same validation as REST, with the field in the details.
	_, err = c.GetLatency(ctx, &pb.GetLatencyRequest{Service: "a", Environment: "b", StepSeconds: 45})
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument {
		t.Fatalf("step 45: %v", err)
	}
	var field string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok && len(br.GetFieldViolations()) == 1 {
			field = br.GetFieldViolations()[0].GetField()
		}
	}
	if field != "step_seconds" {
		t.Errorf("field violation %q in %v", field, st.Details())
	}
	if _, err = c.GetLatency(ctx, &pb.GetLatencyRequest{Service: "a", Environment: "b", GroupBy: 42}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("group_by 42: %v", err)
	}
	if _, err = c.GetDORA(ctx, &pb.GetDORARequest{StartTime: &timestamppb.Timestamp{Seconds: 1, Nanos: -5}}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("invalid timestamp: %v", err)
	}
	if _, err = c.GetDeploymentImpact(ctx, &pb.GetDeploymentImpactRequest{Id: missingID}); status.Code(err) != codes.NotFound {
		t.Errorf("missing deployment: %v", err)
	}
	if _, err = c.ListDeployments(ctx, &pb.ListDeploymentsRequest{PageToken: "bogus"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("bogus page token: %v", err)
	}
}

func TestGRPCErrors(t *testing.T) {
	src := &fakeSource{}
	ts := startServer(t, Config{Source: src, Limits: limits.Limits{QueryTimeout: 50 * time.Millisecond}})
	c := pb.NewQueryServiceClient(ts.conn)
	ctx := context.Background()

	src.block = true
	if _, err := c.GetDORA(ctx, &pb.GetDORARequest{}); status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("timeout: %v", err)
	}
	src.block = false
	src.panics = true
	if _, err := c.GetDORA(ctx, &pb.GetDORARequest{}); status.Code(err) != codes.Internal || status.Convert(err).Message() != "internal error" {
		t.Errorf("panic: %v", err)
	}
	src.panics = false
	src.fail = errors.New(secretText)
	if _, err := c.ListServices(ctx, &pb.ListServicesRequest{}); status.Code(err) != codes.Internal || status.Convert(err).Message() != "internal error" {
		t.Errorf("internal: %v", err)
	}
}

func TestAuth(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tokens")
	if err := os.WriteFile(file, []byte("# API tokens\n\ns3cret-one\n  s3cret-two  \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokens, err := LoadTokens(file)
	if err != nil || !slices.Equal(tokens, []string{"s3cret-one", "s3cret-two"}) {
		t.Fatalf("LoadTokens: %v %v", tokens, err)
	}
	ts := startServer(t, Config{Source: &fakeSource{}, AuthTokens: tokens})

	for _, c := range []struct {
		name   string
		header []string
		want   int
	}{
		{"no token", nil, 401},
		{"wrong token", []string{"Authorization", "Bearer nope"}, 401},
		{"prefix of a token", []string{"Authorization", "Bearer s3cret"}, 401},
		{"empty bearer", []string{"Authorization", "Bearer "}, 401},
		{"basic auth", []string{"Authorization", "Basic czNjcmV0LW9uZTo="}, 401},
		{"bare token", []string{"Authorization", "s3cret-one"}, 401},
		{"token one", []string{"Authorization", "Bearer s3cret-one"}, 200},
		{"token two, lowercase scheme", []string{"Authorization", "bearer s3cret-two"}, 200},
	} {
		for _, path := range []string{"/v1/dora", "/v1/deployments/" + depID + "/impact", "/v1/nope"} {
			want := c.want
			if path == "/v1/nope" && want == 200 {
				want = 404
			}
			code, body := ts.getJSON(t, path, c.header...)
			if code != want {
				t.Errorf("%s %s: %d, want %d (%v)", c.name, path, code, want, body)
			}
			if want == 401 {
				wantNumber(t, body, "code", 16) // UNAUTHENTICATED
			}
		}
	}
	// The 401 says how to authenticate.
	req, _ := http.NewRequest(http.MethodGet, ts.base+"/v1/dora", nil)
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("WWW-Authenticate"); got != `Bearer realm="changelens"` {
		t.Errorf("WWW-Authenticate %q", got)
	}
	// Open endpoints.
	for _, path := range []string{"/healthz", "/openapi.json"} {
		if code, _ := ts.get(t, path); code != 200 {
			t.Errorf("%s without token: %d", path, code)
		}
	}

	// gRPC.
	c := pb.NewQueryServiceClient(ts.conn)
	ctx := context.Background()
	if _, err := c.GetDORA(ctx, &pb.GetDORARequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("gRPC without token: %v", err)
	}
	bad := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer nope")
	if _, err := c.GetDORA(bad, &pb.GetDORARequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("gRPC with a wrong token: %v", err)
	}
	good := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer s3cret-two")
	if _, err := c.GetDORA(good, &pb.GetDORARequest{}); err != nil {
		t.Errorf("gRPC with a token: %v", err)
	}
	hc := healthpb.NewHealthClient(ts.conn)
	if r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health without token: %v %v", r, err)
	}
}

func TestLoadTokensErrors(t *testing.T) {
	if _, err := LoadTokens(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing file: no error")
	}
	f := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(f, []byte("two tokens\n"), 0o600)
	if _, err := LoadTokens(f); err == nil {
		t.Error("token with whitespace: no error")
	}
	if got := ParseTokenList(" a, ,b ,"); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("ParseTokenList: %q", got)
	}
}

func TestHealth(t *testing.T) {
	src := &pingSource{}
	ts := startServer(t, Config{Source: src, HealthInterval: 20 * time.Millisecond})
	hc := healthpb.NewHealthClient(ts.conn)
	ctx := context.Background()

	waitFor := func(want healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			ok := true
			for _, svc := range []string{"", HealthService} {
				r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
				if err != nil || r.GetStatus() != want {
					ok = false
				}
			}
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("health never became %v", want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor(healthpb.HealthCheckResponse_SERVING)
	code, body := ts.getJSON(t, "/healthz")
	if code != 200 || body["status"] != "SERVING" {
		t.Errorf("healthz: %d %v", code, body)
	}

	src.setPing(errors.New("clickhouse: connection refused"))
	waitFor(healthpb.HealthCheckResponse_NOT_SERVING)
	code, body = ts.getJSON(t, "/healthz")
	if code != 503 || body["status"] != "NOT_SERVING" {
		t.Errorf("healthz with the source down: %d %v", code, body)
	}

	src.setPing(nil)
	waitFor(healthpb.HealthCheckResponse_SERVING)
	if code, _ := ts.get(t, "/healthz"); code != 200 {
		t.Errorf("healthz after recovery: %d", code)
	}
	if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "nope"}); status.Code(err) != codes.NotFound {
		t.Errorf("unknown health service: %v", err)
	}
}

func TestServeShutdown(t *testing.T) {
	// Serve returns nil once its context ends; an in-flight query finishes first.
	src := &fakeSource{}
	srv, err := New(Config{Source: src, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := startServerWith(t, srv, ctx)
	if code, _ := ts.get(t, "/v1/dora"); code != 200 {
		t.Fatalf("dora: %d", code)
	}
	cancel()
	select {
	case err := <-ts.done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	if _, err := httpClient.Get(ts.base + "/healthz"); err == nil {
		t.Error("HTTP still listening after shutdown")
	}

	if _, err := New(Config{}); err == nil {
		t.Error("New without Source: no error")
	}
}
