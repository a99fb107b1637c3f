package usecase

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/store"
	"github.com/changelens/changelens/testkit/fakestore"
)

// gatedVerdicts holds the first StoredVerdicts call until release closes
// (entered closes when it arrives), then answers it with err if set.
type gatedVerdicts struct {
	*fakestore.Store
	entered, release chan struct{}
	err              error
	mu               sync.Mutex
	calls            int
}

func (g *gatedVerdicts) StoredVerdicts(ctx context.Context, hash string, ids []string) (map[string]store.StoredVerdict, error) {
	g.mu.Lock()
	g.calls++
	first := g.calls == 1
	g.mu.Unlock()
	if first {
		close(g.entered)
		<-g.release
		if g.err != nil {
			return nil, g.err
		}
	}
	return g.Store.StoredVerdicts(ctx, hash, ids)
}

// Two requests needing the same stored verdict at once read it once: the
// second waits for the first's read and takes the verdict from the cache.
// If that read fails, the second gets the verdict itself.
func TestConcurrentRequestsReadAStoredVerdictOnce(t *testing.T) {
	for _, tc := range []struct {
		name      string
		firstErr  error
		wantCalls int
		want      report.Verdict // the second request's
	}{
		{name: "shared", wantCalls: 1, want: report.VerdictImproved},
		// The first read failed: nothing cached, so the second judges
		// dep-v2 from its windows (the marker verdict is not what they give).
		{name: "the first read fails", firstErr: errors.New("connection reset"), wantCalls: 1, want: report.VerdictNoChange},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			st := &gatedVerdicts{Store: cartScenario(), entered: make(chan struct{}), release: make(chan struct{}), err: tc.firstErr}
			now := at(4 * time.Hour)
			svc := newService(t, st, &now)
			st.PutVerdict(ConfigHash(analysis.DefaultConfig()), "dep-v2", markedVerdict(svc, v2Before, v2After))

			type answer struct {
				im  report.Impact
				err error
			}
			first, second := make(chan answer, 1), make(chan answer, 1)
			go func() { im, err := svc.Impact(ctx, "dep-v2"); first <- answer{im, err} }()
			<-st.entered // the first request is reading
			go func() { im, err := svc.Impact(ctx, "dep-v2"); second <- answer{im, err} }()
			select {
			case a := <-second:
				t.Fatalf("the second request answered (%v, %v) while the first still read: it did not wait for that read", a.im.Verdict, a.err)
			case <-time.After(300 * time.Millisecond):
			}
			close(st.release)
			a1, a2 := <-first, <-second
			if tc.firstErr == nil && (a1.err != nil || a1.im.Verdict != report.VerdictImproved) {
				t.Errorf("first request: %v, %v; want the stored IMPROVED", a1.im.Verdict, a1.err)
			}
			if tc.firstErr != nil && !errors.Is(a1.err, tc.firstErr) {
				t.Errorf("first request: error %v, want %v", a1.err, tc.firstErr)
			}
			if a2.err != nil || a2.im.Verdict != tc.want {
				t.Errorf("second request: %v, %v; want %v", a2.im.Verdict, a2.err, tc.want)
			}
			if st.calls != tc.wantCalls {
				t.Errorf("%d stored-verdict reads, want %d", st.calls, tc.wantCalls)
			}
		})
	}
}
