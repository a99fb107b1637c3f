package loadtest

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/changelens/changelens/exporter/changelensexporter"
	"github.com/changelens/changelens/testkit/chtest"
	"github.com/changelens/changelens/testkit/pipelinetest"
)

const (
	environment = "production"
	// latencyService deploys most often, so its latency series grouped by
	// version has the most groups.
	latencyService = "checkout"
	// canaryService runs a canary beside its stable version for the last
	// 36 hours: a day's /v1/compare, even moved back by up to maxShift,
	// then merges every minute of both cohorts, the expensive case.
	canaryService = "storefront"
	canaryShare   = 0.2
	// rollout is how long a rolling update serves the old and the new
	// version side by side.
	rollout = 5 * time.Minute
)

// release is a stretch of a service's life running one version.
type release struct {
	at      time.Duration // offset from the data's start
	version string
	latency float64 // multiplier of the base latency
	errRate float64
	// ciLead, when positive, makes a CI system report the deploy (an
	// explicit deployment) with a commit this much older.
	ciLead time.Duration
}

type service struct {
	name     string
	releases []release // sorted by at; the first at 0
	canary   *release  // serves canaryShare of the requests from its at on
}

type dataset struct {
	start, end time.Time
	perMinute  int
	services   []service
}

// newDataset builds days of traffic of eight services ending at end: every
// service deploys on its own cadence (checkout every 4 h … notifications
// every 2 days), every 6th release is slower, every 9th fails more often,
// every 10th of a CI-deployed service is rolled back after 45 minutes, and
// storefront runs a 20 % canary over the last 36 hours.
func newDataset(end time.Time, days, perMinute int) *dataset {
	d := &dataset{start: end.Add(-time.Duration(days) * 24 * time.Hour), end: end, perMinute: perMinute}
	length := d.end.Sub(d.start)
	names := []string{latencyService, canaryService, "payments", "search", "inventory", "accounts", "shipping", "notifications"}
	gaps := []time.Duration{4, 6, 8, 12, 12, 24, 24, 48}
	for i, name := range names {
		s := service{name: name}
		explicit := i%2 == 0
		s.releases = append(s.releases, release{at: 0, version: "1.0.0", latency: 1, errRate: 0.01})
		last := length - time.Hour
		if name == canaryService {
			last = length - 42*time.Hour // the stable version is constant under the canary
		}
		offset := time.Hour + time.Duration(i)*37*time.Minute
		for k := 1; ; k++ {
			at := offset + time.Duration(k)*gaps[i]*time.Hour
			if at >= last {
				break
			}
			r := release{at: at, version: fmt.Sprintf("1.%d.0", k), latency: 1, errRate: 0.01}
			if k%6 == 0 {
				r.latency = 1.7
			}
			if k%9 == 0 {
				r.errRate = 0.08
			}
			if explicit {
				r.ciLead = time.Duration(1+k%3) * time.Hour
			}
			s.releases = append(s.releases, r)
			if explicit && k%10 == 0 && at+45*time.Minute < last {
				prev := s.releases[len(s.releases)-2]
				s.releases[len(s.releases)-1].latency = 2
				back := prev
				// The rolled-back-to commit is the previous release's.
				back.at, back.ciLead = at+45*time.Minute, at+45*time.Minute-prev.at+prev.ciLead
				s.releases = append(s.releases, back)
			}
		}
		if name == canaryService {
			s.canary = &release{at: length - 36*time.Hour, version: "2.0.0-rc1", latency: 1.3, errRate: 0.015}
		}
		d.services = append(d.services, s)
	}
	return d
}

func (d *dataset) service(name string) *service {
	for i := range d.services {
		if d.services[i].name == name {
			return &d.services[i]
		}
	}
	panic("no service " + name)
}

// mostVersions is the service with the most releases.
func (d *dataset) mostVersions() *service {
	best := &d.services[0]
	for i := range d.services {
		if len(d.services[i].releases) > len(best.releases) {
			best = &d.services[i]
		}
	}
	return best
}

// deployments is how many deployments the data holds (rollbacks and the
// canary included).
func (d *dataset) deployments() int {
	n := 0
	for _, s := range d.services {
		n += len(s.releases) - 1
		if s.canary != nil {
			n++
		}
	}
	return n
}

// releaseAt is the index of the release running at off.
func (s *service) releaseAt(off time.Duration) int {
	i := sort.Search(len(s.releases), func(i int) bool { return s.releases[i].at > off })
	return max(i-1, 0)
}

// generator turns a dataset into spans, minute by minute, deterministically.
type generator struct {
	d   *dataset
	rng *rand.Rand
	seq uint64
}

var operations = []struct {
	name, method, route string
	share, latency      float64
}{
	{"GET /products", "GET", "/products", 0.55, 1},
	{"GET /products/{id}", "GET", "/products/{id}", 0.3, 0.6},
	{"POST /orders", "POST", "/orders", 0.15, 2.5},
}

// pick chooses the release serving a request at off: during a rolling
// update the new version's share grows linearly, and a canary takes its
// share once it runs.
func (g *generator) pick(s *service, off time.Duration) release {
	if c := s.canary; c != nil && off >= c.at && g.rng.Float64() < canaryShare {
		return *c
	}
	i := s.releaseAt(off)
	r := s.releases[i]
	if i > 0 && off-r.at < rollout && g.rng.Float64() >= float64(off-r.at)/float64(rollout) {
		return s.releases[i-1]
	}
	return r
}

func (g *generator) ids(sp ptrace.Span) {
	g.seq++
	var tid pcommon.TraceID
	binary.BigEndian.PutUint64(tid[:8], 0x10ad7e57)
	binary.BigEndian.PutUint64(tid[8:], g.seq)
	var sid pcommon.SpanID
	binary.BigEndian.PutUint64(sid[:], g.seq)
	sp.SetTraceID(tid)
	sp.SetSpanID(sid)
}

// minute returns the spans of minute m: every service's requests as SERVER
// root spans, one resource per (service, version) as SDKs send them, and
// the CI systems' deploy spans ending in that minute.
func (g *generator) minute(m int) (ptrace.Traces, int) {
	td := ptrace.NewTraces()
	from := time.Duration(m) * time.Minute
	n := 0
	for si := range g.d.services {
		s := &g.d.services[si]
		spans := map[string]ptrace.SpanSlice{}
		for k := 0; k < g.d.perMinute; k++ {
			off := from + time.Duration((float64(k)+g.rng.Float64())*float64(time.Minute)/float64(g.d.perMinute))
			r := g.pick(s, off)
			ss, ok := spans[r.version]
			if !ok {
				rs := td.ResourceSpans().AppendEmpty()
				a := rs.Resource().Attributes()
				a.PutStr("service.name", s.name)
				a.PutStr("deployment.environment.name", environment)
				a.PutStr("service.version", r.version)
				sc := rs.ScopeSpans().AppendEmpty()
				sc.Scope().SetName("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp")
				ss = sc.Spans()
				spans[r.version] = ss
			}
			op := operations[len(operations)-1]
			for u, i := g.rng.Float64(), 0; i < len(operations); i++ {
				if u < operations[i].share {
					op = operations[i]
					break
				}
				u -= operations[i].share
			}
			dur := float64(40*time.Millisecond) * math.Exp(0.4*g.rng.NormFloat64()) * r.latency * op.latency
			status := int64(200)
			if g.rng.Float64() < r.errRate {
				status = 500
			}
			sp := ss.AppendEmpty()
			g.ids(sp)
			sp.SetKind(ptrace.SpanKindServer)
			sp.SetName(op.name)
			sp.Attributes().PutStr("http.request.method", op.method)
			sp.Attributes().PutStr("http.route", op.route)
			sp.Attributes().PutInt("http.response.status_code", status)
			begin := g.d.start.Add(off)
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(begin))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(begin.Add(time.Duration(dur))))
			n++
		}
		for _, r := range s.releases[1:] {
			if r.ciLead > 0 && r.at >= from && r.at < from+time.Minute {
				g.deploySpan(td, s.name, r)
			}
		}
	}
	return td, n
}

// deploySpan adds a CI system's deploy span; the deployed unit is in its
// attributes, the resource is the CI system.
func (g *generator) deploySpan(td ptrace.Traces, svc string, r release) {
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "github-actions")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("cicd")
	sp := ss.Spans().AppendEmpty()
	g.ids(sp)
	sp.SetKind(ptrace.SpanKindInternal)
	sp.SetName("deploy " + svc)
	end := g.d.start.Add(r.at)
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(end.Add(-4 * time.Minute)))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
	a := sp.Attributes()
	a.PutStr("cicd.pipeline.task.type", "deploy")
	a.PutStr("cicd.pipeline.name", "release")
	a.PutStr("cicd.pipeline.task.run.result", "success")
	a.PutStr("service.name", svc)
	a.PutStr("service.version", r.version)
	a.PutStr("deployment.environment.name", environment)
	a.PutStr("vcs.ref.head.revision", "sha-"+svc+"-"+r.version)
	a.PutInt("changelens.commit.time", end.Add(-r.ciLead).Unix())
}

// load feeds the whole dataset through the real processor and exporter into
// a new database and returns its name and the number of requests sent.
func (d *dataset) load(tb testing.TB, srv *chtest.Server) (string, int) {
	tb.Helper()
	db := fmt.Sprintf("loadtest_%x", time.Now().UnixNano()&0xffffff)
	srv.Exec(tb, "CREATE DATABASE "+db)
	p := pipelinetest.New(tb, srv.Addr(), db, 1, func(c *changelensexporter.Config) {
		// Back-pressure instead of dropping: the table must hold every request.
		c.QueueConfig.Get().BlockOnOverflow = true
	})
	g := &generator{d: d, rng: rand.New(rand.NewPCG(uint64(d.perMinute), 0x10ad))}
	total := 0
	for m := range int(d.end.Sub(d.start) / time.Minute) {
		td, n := g.minute(m)
		total += n
		if err := p.Replicas[0].ConsumeTraces(context.Background(), td); err != nil {
			tb.Fatal(err)
		}
	}
	p.Close(tb)
	return db, total
}
