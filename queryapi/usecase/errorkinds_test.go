package usecase

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/store"
	"github.com/changelens/changelens/testkit/fakestore"
)

// kindLoad is a load whose failed requests carry error kinds: each minute
// perMinute requests, each failing with kind k with probability rates[k]
// (seeded by the minute), the first of each minute's kind with a trace
// named after the kind and the minute.
type kindLoad struct {
	service, version string
	from, to         time.Time
	perMinute        int
	rates            map[string]float64
	cohorts          map[string]string
	seed             uint64
}

func (l kindLoad) add(st *fakestore.Store) {
	kinds := make([]string, 0, len(l.rates))
	for k := range l.rates {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for m := l.from; m.Before(l.to); m = m.Add(time.Minute) {
		rng := rand.New(rand.NewPCG(l.seed, uint64(m.Unix())))
		x := fakestore.Minute{Service: l.service, Environment: "prod", Version: l.version, Operation: "GET /pay", Minute: m, Cohorts: l.cohorts}
		counts := map[string]float64{}
		for range l.perMinute {
			failed := ""
			for _, k := range kinds {
				if rng.Float64() < l.rates[k] {
					failed = k
					break
				}
			}
			x.Observe(30*time.Millisecond, failed != "")
			if failed != "" {
				counts[failed]++
			}
		}
		for _, k := range kinds {
			if counts[k] > 0 {
				x.ErrorKinds = append(x.ErrorKinds, fakestore.ErrorKind{Kind: k, Count: counts[k], First: m.Add(7 * time.Second),
					FirstTraceID: fmt.Sprintf("%s-%d", k, m.Unix())})
			}
		}
		st.AddTraffic(x)
	}
}

// payScenario: pay/prod serves v1 until 60m, then v2 (a CI deployment),
// 600 requests a minute. v1 fails 0.5 % with 5xx; v2 fails as often in
// total, 0.2 % 5xx and 0.3 % with a new exception type. Yesterday v0 threw
// java.io.IOException, which v2 throws too (known, not new).
func payScenario() *fakestore.Store {
	st := fakestore.New()
	for _, l := range []kindLoad{
		{version: "v0", from: at(-24 * time.Hour), to: at(-23 * time.Hour), rates: map[string]float64{"java.io.IOException": 0.01}, seed: 1},
		{version: "v1", from: at(0), to: at(60 * time.Minute), rates: map[string]float64{"5xx": 0.005}, seed: 2},
		{version: "v2", from: at(60 * time.Minute), to: at(120 * time.Minute),
			rates: map[string]float64{"5xx": 0.0019, "java.lang.NullPointerException": 0.003, "java.io.IOException": 0.0001}, seed: 3},
	} {
		l.service, l.perMinute = "pay", 600
		l.add(st)
	}
	st.AddDeployment(analysis.Row{ID: "dep-v2", Service: "pay", Environment: "prod", Version: "v2", DeployTime: at(60 * time.Minute)})
	return st
}

// A version that introduces a new exception type at 0.3 % of requests
// while the total error rate stays within noise is DEGRADED with
// NEW_ERROR_KIND, named with its rate and first trace, in the listing, the
// impact, the gate and the stored verdict the worker writes.
func TestInMemoryNewErrorKind(t *testing.T) {
	st := payScenario()
	now := at(4 * time.Hour)
	svc := newService(t, st, &now, noCache)
	ctx := context.Background()
	deps := listAll(t, svc, report.DeploymentQuery{Service: "pay", Environment: "prod", Start: at(0), End: at(3 * time.Hour)})
	var d report.Deployment
	for _, x := range deps {
		if x.ID == "dep-v2" {
			d = x
		}
	}
	if d.Verdict != report.VerdictDegraded || !slices.Equal(d.FailureReasons, []report.FailureReason{report.ReasonNewErrorKind}) || !d.ChangeFailure {
		t.Fatalf("dep-v2: %s %v (%s)", d.Verdict, d.FailureReasons, d.Explanation)
	}
	if len(d.Regressions) != 1 || d.Regressions[0].Metric != analysis.MetricNewErrorKind || d.Regressions[0].ErrorKind != "java.lang.NullPointerException" ||
		d.Regressions[0].FirstTraceID != fmt.Sprintf("java.lang.NullPointerException-%d", at(62*time.Minute).Unix()) {
		t.Errorf("regressions: %+v", d.Regressions)
	}
	for _, want := range []string{"DEGRADED: NEW_ERROR_KIND: java.lang.NullPointerException at 0.", "% of requests after (0 in 18 000 before and ",
		"first trace java.lang.NullPointerException-"} {
		if !strings.Contains(d.Explanation, want) {
			t.Errorf("explanation %q lacks %q", d.Explanation, want)
		}
	}

	im, err := svc.Impact(ctx, "dep-v2")
	if err != nil {
		t.Fatal(err)
	}
	ek := im.ErrorKinds
	if ek == nil || !ek.NewErrorKind || len(ek.New) != 1 || ek.New[0].Kind != "java.lang.NullPointerException" || len(ek.Rose) != 0 {
		t.Fatalf("impact's error kinds: %+v", ek)
	}
	if n := ek.New[0]; n.Verdict != report.CompareWorse || n.AfterRate < 0.002 || n.AfterRate > 0.004 || n.Before != 0 || !(n.AdjustedPValue < 0.005) ||
		!n.FirstSeen.Equal(at(62*time.Minute).Add(7*time.Second)) {
		t.Errorf("the new kind: %+v", n)
	}
	if !(ek.HistoryRequests > 0) {
		t.Errorf("no history read: %+v", ek)
	}
	// The error rate itself: within noise, no ERROR_RATE_REGRESSION.
	for _, m := range im.Metrics {
		if m.Metric == analysis.MetricErrorRate && m.Verdict == report.CompareWorse {
			t.Errorf("error rate regressed: %+v", m)
		}
	}

	a, err := svc.Gate(ctx, report.GateQuery{Service: "pay", Environment: "prod", Version: "v2"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Result != report.GateFail || !slices.Equal(a.Reasons, []report.GateReason{report.GateReasonNewErrorKind}) ||
		!strings.Contains(a.Explanation, "new error kind java.lang.NullPointerException") {
		t.Errorf("gate: %v %v %s", a.Result, a.Reasons, a.Explanation)
	}

	// The worker's verdict stores the error kinds; the API reads them back.
	worker := newService(t, st, &now, noCache, func(c *Config) { c.IgnoreStoredVerdicts = true })
	judged, err := worker.Judge(ctx, at(0), at(3*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range judged.Settled {
		enc := store.EncodeVerdict(s.Stats, s.Judgement)
		stats, j, err := store.DecodeVerdict(enc)
		if err != nil {
			t.Fatal(err)
		}
		st.PutVerdict(worker.ConfigHash(), s.Impact.Deployment.ID, store.StoredVerdict{Before: s.Before, After: s.After, Stats: stats, Judgement: j})
	}
	st.ResetReads()
	api := newService(t, st, &now, noCache)
	stored, err := api.Impact(ctx, "dep-v2")
	if err != nil {
		t.Fatal(err)
	}
	if st.Reads("ErrorKinds") != 0 || stored.Explanation != im.Explanation || !slices.Equal(stored.Reasons, im.Reasons) ||
		stored.ErrorKinds == nil || stored.ErrorKinds.New[0].FirstTraceID != ek.New[0].FirstTraceID {
		t.Errorf("from the stored verdict (%d error-kind reads): %s %v", st.Reads("ErrorKinds"), stored.Explanation, stored.Reasons)
	}

	// The previous deployment's v1 (no deployment row): nothing new.
	// Without the history, v0's java.io.IOException would be new too — but
	// at 0.01 % it is not significant either way; it stays off the lists
	// of new kinds that are WORSE.
	for _, k := range ek.New {
		if k.Kind == "java.io.IOException" {
			t.Errorf("a kind of yesterday's version listed new: %+v", k)
		}
	}
}

// The comparison of two cohorts judges the treatment's kinds against the
// control's in the minutes both served: the canary's new exception type.
func TestInMemoryCompareErrorKinds(t *testing.T) {
	st := fakestore.New()
	for _, l := range []kindLoad{
		{version: "v1", perMinute: 600, rates: map[string]float64{"5xx": 0.005}, seed: 4},
		{version: "v2", perMinute: 600, rates: map[string]float64{"5xx": 0.002, "java.lang.NullPointerException": 0.003}, seed: 5},
	} {
		l.service, l.from, l.to = "pay", at(0), at(60*time.Minute)
		l.add(st)
	}
	now := at(2 * time.Hour)
	svc := newService(t, st, &now, noCache)
	c, err := svc.Compare(context.Background(), report.CompareQuery{Service: "pay", Environment: "prod", Start: at(0), End: at(60 * time.Minute),
		Dimension: "version", Control: "v1", Treatment: "v2"})
	if err != nil {
		t.Fatal(err)
	}
	ek := c.ErrorKinds
	if ek == nil || !ek.NewErrorKind || len(ek.New) != 1 || ek.New[0].Kind != "java.lang.NullPointerException" ||
		ek.BeforeRequests != 36000 || ek.AfterRequests != 36000 || ek.HistoryRequests != 0 {
		t.Fatalf("comparison's error kinds: %+v", ek)
	}
	if !strings.HasPrefix(ek.Explanation, "NEW_ERROR_KIND: java.lang.NullPointerException at 0.") {
		t.Errorf("explanation %q", ek.Explanation)
	}
	// A storage without error kinds: none read, the comparison as before.
	none := newService(t, &noKinds{st}, &now, noCache)
	c, err = none.Compare(context.Background(), report.CompareQuery{Service: "pay", Environment: "prod", Start: at(0), End: at(60 * time.Minute),
		Dimension: "version", Control: "v1", Treatment: "v2"})
	if err != nil || c.ErrorKinds != nil {
		t.Errorf("without error kinds: %+v, %v", c.ErrorKinds, err)
	}
}

// noKinds is a storage of a schema before v13.
type noKinds struct{ *fakestore.Store }

func (noKinds) ErrorKinds(context.Context, []*analysis.Item, []int, time.Duration) ([]store.ErrorKindWindows, error) {
	return nil, nil
}

func (noKinds) CohortErrorKinds(context.Context, report.CompareQuery, int) ([]store.CohortKindMinute, bool, error) {
	return nil, false, nil
}

// Without error kinds in the storage the verdicts are the before/after
// rule's alone.
func TestInMemoryNoErrorKinds(t *testing.T) {
	st := payScenario()
	now := at(4 * time.Hour)
	svc := newService(t, &noKinds{st}, &now, noCache)
	im, err := svc.Impact(context.Background(), "dep-v2")
	if err != nil {
		t.Fatal(err)
	}
	if im.ErrorKinds != nil || im.Verdict == report.VerdictDegraded {
		t.Errorf("without error kinds: %s %+v", im.Verdict, im.ErrorKinds)
	}
}
