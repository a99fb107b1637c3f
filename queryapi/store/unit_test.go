package store

import (
	"context"
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/report"
)

// TestSQLTemplates renders every query variant: no template residue, every
// @parameter is one the code binds, and nothing but the configured database
// is spliced in.
func TestConfig(t *testing.T) {
	if err := (Config{DSN: "clickhouse://localhost:9000/changelens"}).withDefaults().validate(); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]Config{
		"dsn":      {},
		"database": {DSN: "clickhouse://localhost:9000/x", Database: "x; DROP TABLE y"},
		"timeout":  {DSN: "clickhouse://localhost:9000/x", QueryTimeout: -1},
	} {
		if c.withDefaults().validate() == nil {
			t.Errorf("%s: invalid config accepted", name)
		}
	}
	if _, err := Open(context.Background(), Config{DSN: "clickhouse://localhost:9000/bad-name"}); err == nil {
		t.Error("invalid database name from the DSN accepted")
	}
	if _, err := Open(context.Background(), Config{DSN: "::not a dsn"}); err == nil {
		t.Error("bad DSN accepted")
	}
}

func TestHourSpan(t *testing.T) {
	for _, c := range []struct {
		from, to, hfrom, hto int64
		ok                   bool
	}{
		{0, 7200, 0, 7200, true},
		{1, 7200, 3600, 7200, true},
		{60, 7199, 3600, 3600, false},
		{3600, 7199, 3600, 3600, false},
		{3599, 10801, 3600, 10800, true},
		{600, 3000, 3600, 0, false},
	} {
		hfrom, hto, ok := hourSpan(c.from, c.to)
		if hfrom != c.hfrom || hto != c.hto || ok != c.ok {
			t.Errorf("hourSpan(%d, %d) = %d, %d, %v; want %d, %d, %v", c.from, c.to, hfrom, hto, ok, c.hfrom, c.hto, c.ok)
		}
	}
	base := time.Unix(1_800_000_000, 0).UTC().Truncate(time.Hour)
	for _, c := range []struct {
		start, end time.Time
		step       time.Duration
		series     bool
		hourly     bool
		head, tail bool
	}{
		{base, base.Add(24 * time.Hour), time.Hour, true, true, false, false},
		{base, base.Add(24 * time.Hour), 3 * time.Hour, true, true, false, false},
		{base.Add(17 * time.Minute), base.Add(5 * time.Hour), time.Hour, true, true, true, false},
		{base, base.Add(24 * time.Hour), 30 * time.Minute, true, false, false, false},
		{base, base.Add(24 * time.Hour), 90 * time.Minute, true, false, false, false},
		{base.Add(10 * time.Minute), base.Add(50 * time.Minute), time.Hour, true, false, false, false},
		{base.Add(10 * time.Minute), base.Add(3*time.Hour + time.Second), 0, false, true, true, true},
		{base, base.Add(3*time.Hour + 30*time.Minute), 0, false, true, false, true},
		{base.Add(10 * time.Minute), base.Add(70 * time.Minute), 0, false, false, false, false},
	} {
		v, err := planLatency(report.LatencyQuery{Service: "s", Environment: "e", Start: c.start, End: c.end, Step: c.step}, c.series)
		if err != nil {
			t.Fatal(err)
		}
		if v.Hourly != c.hourly || v.Head != c.head || v.Tail != c.tail {
			t.Errorf("%s–%s step %s series %v: hourly/head/tail %v %v %v, want %v %v %v", c.start, c.end, c.step, c.series,
				v.Hourly, v.Head, v.Tail, c.hourly, c.head, c.tail)
		}
	}
}

// templateParams are the parameters each query may bind.
var templateParams = map[string][]string{
	"deployments": {"range_scan_from", "range_scan_to", "before_scan_from", "before_scan_to", "after_scan_from", "after_scan_to",
		"from_ns", "to_ns", "before_horizon_ns", "after_horizon_ns", "limit", "service", "environment", "status_failed", "source_inferred"},
	"deployment_by_id":     {"id", "source_inferred"},
	"windows":              {"units", "services", "environments", "from", "to"},
	"window_operations":    {"units", "services", "environments", "from", "to"},
	"window_minutes":       {"units", "services", "environments", "from", "to"},
	"latency":              {"service", "environment", "operation", "version", "from", "to", "hfrom", "hto", "step", "limit"},
	"units":                {"since", "environment", "limit", "status_failed"},
	"episodes":             {"reappear_ns", "service", "environment", "before", "since"},
	"inferred_units":       nil,
	"episodes_stored_head": {"reappear_ns"},
	"episodes_stored":      {"reappear_ns", "up_to", "service", "environment"},
	"cohort_minutes":       {"service", "environment", "dimension", "control", "treatment", "operation", "from", "to", "limit", "flag", "eval_from", "eval_to"},
	"cohort_exemplars":     {"service", "environment", "dimension", "control", "treatment", "operation", "from", "to", "flag", "eval_from", "eval_to"},
	"cohort_values":        {"service", "environment", "from", "to", "limit", "flag", "eval_from", "eval_to"},
	"flag_presence":        {"service", "environment", "flag", "eval_from", "eval_to"},
	"verdicts":             {"config_hash", "ids"},
	"evidence":             {"config_hash", "ids"},
	"graph_calls":          {"environment", "service", "from", "to", "callee_from", "callee_to", "sample"},
	"graph_callers":        {"service", "environment", "from", "to", "caller_from", "caller_to"},
	"unit_minutes":         {"units", "services", "environments", "from", "to"},
	"flag_minutes":         {"service", "environment", "from", "to", "flag", "eval_from", "eval_to"},
	"incidents":            {"scan_from", "scan_to", "from_ns", "to_ns", "limit", "service", "environment"},
	"commits":              {"commit_services", "commit_prefixes"},
	"window_error_kinds":   {"units", "services", "environments", "from", "to"},
	"error_kind_history":   {"units", "services", "environments", "from", "to"},
	"cohort_error_kinds":   {"service", "environment", "dimension", "control", "treatment", "operation", "from", "to", "limit", "flag", "eval_from", "eval_to"},
	"experiments":          {"id"},
	"usage_sums":           {"service", "environment", "rfrom", "to", "step", "limit"},
	"cohort_self_time":     {"service", "environment", "dimension", "control", "treatment", "operation", "from", "to", "flag", "eval_from", "eval_to"},
	"usage_gauges":         {"service", "environment", "from", "to", "limit"},
	"usage_requests":       {"service", "environment", "from", "to", "step", "limit"},
	"client_sessions":      {"service", "environment", "dimension", "from", "to", "limit", "flag", "eval_from", "eval_to"},
	"client_loads":         {"service", "environment", "dimension", "from", "to", "limit", "flag", "eval_from", "eval_to", "operations"},
	"conversions":          {"service", "environment", "dimension", "from", "to", "limit", "flag", "eval_from", "eval_to", "outcome", "outcome_service"},
	"retention":            {"service", "environment", "dimension", "from", "to", "limit", "flag", "eval_from", "eval_to", "days_ns", "until_ns", "until"},
	"unit_covariates": {"service", "environment", "dimension", "from", "to", "limit", "flag", "eval_from", "eval_to", "outcome", "outcome_service",
		"operations", "pre_from"},
}

// templateVariants are every variant of every query the store renders.
func templateVariants() map[string][]any {
	variants := map[string][]any{
		"deployment_by_id":  {nil},
		"windows":           {nil},
		"window_operations": {nil},
		"window_minutes":    {nil},
		"units": {unitsVariant{}, unitsVariant{Environment: true}, unitsVariant{Summary: true},
			unitsVariant{Environment: true, Summary: true}},
		"inferred_units": {nil},
		"cohort_minutes": {cohortVariant{}, cohortVariant{Operation: true}, cohortVariant{ByOperation: true},
			cohortVariant{Cohort: true}, cohortVariant{Cohort: true, Operation: true}, cohortVariant{Cohort: true, ByOperation: true},
			cohortVariant{Cohort: true, Stored: true}, cohortVariant{Cohort: true, Operation: true, Stored: true},
			cohortVariant{Cohort: true, ByOperation: true, Stored: true}, cohortVariant{Cohort: true, SizesOnly: true},
			cohortVariant{Cohort: true, Operation: true, SizesOnly: true}, cohortVariant{Cohort: true, ByOperation: true, SizesOnly: true}},
		"cohort_exemplars": {cohortVariant{}, cohortVariant{Operation: true}, cohortVariant{Cohort: true}, cohortVariant{Cohort: true, Operation: true},
			cohortVariant{Cohort: true, Stored: true}, cohortVariant{Cohort: true, Operation: true, Stored: true}},
		"cohort_values":      {storedVariant{}, storedVariant{Stored: true}},
		"flag_presence":      {flagPresenceVariant{}, flagPresenceVariant{Flag: true}},
		"verdicts":           {nil},
		"evidence":           {nil},
		"graph_callers":      {nil},
		"unit_minutes":       {nil},
		"flag_minutes":       {storedVariant{}, storedVariant{Stored: true}},
		"commits":            {nil},
		"window_error_kinds": {nil},
		"error_kind_history": {nil},
		"experiments":        {nil},
		"cohort_error_kinds": {cohortKindsVariant{Rollup: true}, cohortKindsVariant{}, cohortKindsVariant{Operation: true},
			cohortKindsVariant{Cohort: true}, cohortKindsVariant{Cohort: true, Operation: true},
			cohortKindsVariant{Cohort: true, Stored: true}, cohortKindsVariant{Cohort: true, Operation: true, Stored: true}},
		"usage_sums": {nil},
		"cohort_self_time": {cohortVariant{}, cohortVariant{Operation: true}, cohortVariant{Cohort: true}, cohortVariant{Cohort: true, Operation: true},
			cohortVariant{Cohort: true, Stored: true}, cohortVariant{Cohort: true, Operation: true, Stored: true}},
		"usage_gauges":         {nil},
		"usage_requests":       {nil},
		"episodes_stored_head": {nil},
	}
	for _, key := range []string{"session_id", "user_id"} {
		for _, cv := range []clientVariant{{Version: true}, {}, {Flag: true}} {
			cv.Key = key
			variants["conversions"] = append(variants["conversions"], cv)
			variants["retention"] = append(variants["retention"], cv)
			for _, hourly := range []bool{false, true} {
				cv.Hourly = hourly
				variants["client_sessions"] = append(variants["client_sessions"], cv)
			}
			cv.Hourly = false
			variants["client_loads"] = append(variants["client_loads"], cv)
			for _, load := range []bool{false, true} {
				cv.Load = load
				variants["unit_covariates"] = append(variants["unit_covariates"], cv)
			}
		}
	}
	for _, caller := range []bool{false, true} {
		for _, byMinute := range []bool{false, true} {
			for _, sampled := range []bool{false, true} {
				variants["graph_calls"] = append(variants["graph_calls"], graphVariant{Caller: caller, ByMinute: byMinute, Sampled: sampled})
			}
		}
	}
	for _, svc := range []bool{false, true} {
		for _, env := range []bool{false, true} {
			variants["incidents"] = append(variants["incidents"], incidentsVariant{Service: svc, Environment: env})
			variants["deployments"] = append(variants["deployments"],
				deploymentsVariant{Parts: []string{"range", "before", "after"}, Service: svc, Environment: env},
				deploymentsVariant{Parts: []string{"range"}, Service: svc, Environment: env})
			variants["episodes_stored"] = append(variants["episodes_stored"], episodesVariant{Service: svc, Environment: env})
			for _, before := range []bool{false, true} {
				for _, since := range []bool{false, true} {
					variants["episodes"] = append(variants["episodes"], episodesVariant{Service: svc, Environment: env, Before: before, Since: since})
				}
			}
		}
	}
	for _, g := range []report.GroupBy{report.GroupByNone, report.GroupByVersion, report.GroupByOperation} {
		expr, _ := groupExpr(g)
		for _, series := range []bool{false, true} {
			for _, hv := range []latencyVariant{{}, {Hourly: true}, {Hourly: true, Head: true}, {Hourly: true, Tail: true}, {Hourly: true, Head: true, Tail: true}} {
				hv.Series, hv.Group = series, expr
				variants["latency"] = append(variants["latency"], hv)
				hv.Operation, hv.Version = true, true
				variants["latency"] = append(variants["latency"], hv)
			}
		}
	}
	return variants
}

func TestSQLTemplates(t *testing.T) {
	tmpl, err := loadTemplates("changelens")
	if err != nil {
		t.Fatal(err)
	}
	s := &Store{tmpl: tmpl}
	bound := templateParams
	variants := templateVariants()
	if len(variants) != len(sqlNames(t)) {
		t.Errorf("variants of %d queries, sql/ has %d", len(variants), len(sqlNames(t)))
	}
	param := regexp.MustCompile(`@([a-z_]+)`)
	for name, vs := range variants {
		for _, v := range vs {
			q, err := s.sql(name, v)
			if err != nil {
				t.Fatalf("%s %+v: %v", name, v, err)
			}
			if strings.Contains(q, "{{") || strings.Contains(q, "{db}") || strings.Contains(q, "--") {
				t.Errorf("%s: residue in\n%s", name, q)
			}
			if !strings.Contains(q, "`changelens`.") {
				t.Errorf("%s: database not qualified", name)
			}
			for _, m := range param.FindAllStringSubmatch(q, -1) {
				ok := false
				for _, b := range bound[name] {
					ok = ok || b == m[1]
				}
				if !ok {
					t.Errorf("%s: @%s is not bound", name, m[1])
				}
			}
		}
	}
	if _, ok := groupExpr(report.GroupBy(7)); ok {
		t.Error("unknown GroupBy accepted")
	}
}

// sqlNames are the queries in sql/.
func sqlNames(t *testing.T) []string {
	t.Helper()
	entries, err := sqlFiles.ReadDir("sql")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".sql"))
	}
	return names
}

// A stored verdict decodes to what was encoded, NaN percentiles of an empty
// window included; anything else is rejected, never half-read.
func TestVerdictCodec(t *testing.T) {
	stats := WindowPair{
		{Requests: 1800, Errors: 9, Samples: 1800, P50Ms: 40, P90Ms: 61.5, P95Ms: 70.25, P99Ms: 90},
		{P50Ms: math.NaN(), P90Ms: math.NaN(), P95Ms: math.NaN(), P99Ms: math.Inf(1)},
	}
	m := report.ImpactMetric{Metric: "latency_p95_ms", Before: 70.25, After: 140.5, RelativeChange: 1, CILow: 0.8, CIHigh: math.Inf(1),
		MDE: 0.05, MDEValue: 73.8, PValue: 1e-12, AdjustedPValue: 1e-10, Z: 9.5, Test: "slow-share", Verdict: report.CompareWorse,
		RawChange: 1.4, ControlChange: 0.2}
	e := report.ImpactMetric{Metric: "error_rate", RelativeChange: math.NaN(), CILow: math.NaN(), CIHigh: math.NaN(),
		MDE: math.NaN(), MDEValue: 0.001, PValue: 1, AdjustedPValue: 1, Test: "not-tested", Verdict: report.CompareInsufficientData}
	j := analysis.Judgement{Verdict: report.VerdictDegraded,
		Regressions:    []report.FailureReason{report.ReasonLatencyRegression, report.ReasonErrorRateRegression},
		Metrics:        []report.ImpactMetric{m, e},
		RequestsNeeded: 5500,
		Control: report.Control{Kind: "environment", Series: []string{"cart/production"},
			Shifts: []report.ControlShift{{Metric: "latency_p95_ms", Change: 0.2, CILow: 0.1, CIHigh: 0.3}}},
		Operations: []report.OperationImpact{
			{Operation: "GET /api/export", Operations: 1, BeforeRequests: 900, AfterRequests: 880, Judged: true,
				Metrics: []report.ImpactMetric{m}, Verdict: report.CompareWorse, Rank: 1},
			{Remainder: true, Operations: 7, BeforeRequests: 20, AfterRequests: 31, Verdict: report.CompareInsufficientData},
		}}
	at := time.Date(2026, 3, 2, 12, 1, 0, 0, time.UTC)
	callee := report.Cause{Kind: report.CauseCalleeDeployment, DeploymentID: "0123456789abcdef0123456789abcdef",
		Service: "checkout", Environment: "production", Version: "2.0", Start: at, End: at.Add(time.Minute),
		Metric: "latency_mean_ms", Before: 40, After: 120, Explained: 78, Share: 0.96, Z: 31, Significant: true, Rank: 1}
	own := report.Cause{Kind: report.CauseOwnDeployment, Service: "web", Start: at, End: at, Metric: "latency_mean_ms",
		Share: math.NaN(), Z: math.NaN(), Rank: 2}
	j.Attribution = report.Attribution{Causes: []report.Cause{callee, own}, Neighbours: []report.Neighbour{
		{Service: "checkout", Environment: "production", Callee: true, CallsPerMinuteBefore: 600, CallsPerMinuteAfter: 610,
			MeanMsBefore: 40, MeanMsAfter: 120, ErrorRateBefore: 0, ErrorRateAfter: math.NaN(), Deployments: []string{callee.DeploymentID}},
		{Service: "redis", Callee: true}}}
	j.Cause = &callee
	first := time.Date(2026, 3, 2, 12, 3, 4, 5, time.UTC)
	j.ErrorKinds = &analysis.ErrorKindJudgement{Tested: true, NewErrorKind: true, BeforeRequests: 18000, AfterRequests: 17500,
		HistoryRequests: 6e6, Family: 2, MDE: 0.0007, Explanation: "NEW_ERROR_KIND: NPE at 0.30 % of requests after.",
		Kinds: []analysis.ErrorKindFinding{
			{Kind: "NPE", New: true, Verdict: report.CompareWorse, After: 53, AfterRate: 0.003, RateLow: 0.002, RateHigh: 0.004,
				RateRatio: math.Inf(1), RatioLow: 20, RatioHigh: math.Inf(1), Phi: 1, Minutes: 28, PValue: 1e-16, AdjustedPValue: 2e-16,
				Test: "error-kind", FirstTraceID: "4bf92f3577b34da6a3ce929d0e0e4736", FirstSeen: first},
			{Kind: "__other__", Folded: true, Verdict: report.CompareInsufficientData, BeforeRate: math.NaN(), RateRatio: math.NaN(),
				PValue: 1, AdjustedPValue: 1, Test: "not-tested"},
		}}
	enc := EncodeVerdict(stats, j)
	gotStats, gotJ, err := DecodeVerdict(enc)
	if err != nil {
		t.Fatal(err)
	}
	if EncodeVerdict(gotStats, gotJ) != enc {
		t.Error("decode then encode changed the bytes")
	}
	if gotStats[0] != stats[0] || !math.IsNaN(gotStats[1].P95Ms) || !math.IsInf(gotStats[1].P99Ms, 1) ||
		gotJ.Verdict != report.VerdictDegraded || !slices.Equal(gotJ.Regressions, j.Regressions) || gotJ.RequestsNeeded != 5500 ||
		len(gotJ.Metrics) != 2 || gotJ.Metrics[0] != m || !math.IsNaN(gotJ.Metrics[1].RelativeChange) ||
		len(gotJ.Operations) != 2 || gotJ.Operations[0].Operation != "GET /api/export" || gotJ.Operations[0].Rank != 1 ||
		gotJ.Operations[0].Metrics[0] != m || !gotJ.Operations[1].Remainder || gotJ.Operations[1].Operations != 7 ||
		gotJ.Operations[1].Metrics != nil || gotJ.Control.Kind != "environment" || len(gotJ.Control.Series) != 1 ||
		gotJ.Control.Shifts[0] != j.Control.Shifts[0] {
		t.Errorf("round trip: %+v %+v", gotStats, gotJ)
	}
	if len(gotJ.Attribution.Causes) != 2 || gotJ.Attribution.Causes[0] != callee || gotJ.Cause == nil || *gotJ.Cause != callee ||
		!math.IsNaN(gotJ.Attribution.Causes[1].Z) || gotJ.Attribution.Causes[1].Kind != report.CauseOwnDeployment ||
		len(gotJ.Attribution.Neighbours) != 2 || !slices.Equal(gotJ.Attribution.Neighbours[0].Deployments, []string{callee.DeploymentID}) ||
		gotJ.Attribution.Neighbours[0].MeanMsAfter != 120 || gotJ.Attribution.Neighbours[1].Service != "redis" {
		t.Errorf("attribution round trip: %+v cause %+v", gotJ.Attribution, gotJ.Cause)
	}
	if k := gotJ.ErrorKinds; k == nil || !k.NewErrorKind || !k.Tested || k.HistoryRequests != 6e6 || k.Family != 2 || k.Explanation != j.ErrorKinds.Explanation ||
		len(k.Kinds) != 2 || k.Kinds[0].Kind != "NPE" || !k.Kinds[0].FirstSeen.Equal(first) || !math.IsInf(k.Kinds[0].RateRatio, 1) ||
		k.Kinds[0].FirstTraceID != "4bf92f3577b34da6a3ce929d0e0e4736" || k.Kinds[0].Minutes != 28 || k.Kinds[0].Verdict != report.CompareWorse ||
		!k.Kinds[1].Folded || !k.Kinds[1].FirstSeen.IsZero() || !math.IsNaN(k.Kinds[1].BeforeRate) {
		t.Errorf("error kinds round trip: %+v", gotJ.ErrorKinds)
	}
	j.ErrorKinds = nil
	if _, gotJ, err := DecodeVerdict(EncodeVerdict(stats, j)); err != nil || gotJ.ErrorKinds != nil {
		t.Errorf("without error kinds: %+v, %v", gotJ.ErrorKinds, err)
	}
	// Enumerations travel by name.
	if !strings.Contains(enc, "DEGRADED") || !strings.Contains(enc, "LATENCY_REGRESSION") || !strings.Contains(enc, "WORSE") {
		t.Error("enumerations are not stored by name")
	}
	bad := []string{"", "\x01", "\x02", "\x03", "\x04", enc[:len(enc)-1], enc + "x", "\x04\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
		strings.Replace(enc, "DEGRADED", "DEGRADEX", 1), strings.Replace(enc, "CALLEE_DEPLOYMENT", "CALLEE_DEPLOYMENX", 1)}
	for _, b := range bad {
		if _, _, err := DecodeVerdict(b); err == nil {
			t.Errorf("DecodeVerdict(%q): no error", b)
		}
	}
}

// TestSQLNamesSchemaTables: every table a query names is one internal/schema
// defines, and a query naming another fails when the store loads.
func TestSQLNamesSchemaTables(t *testing.T) {
	if _, err := loadTemplates("changelens"); err != nil {
		t.Fatal(err)
	}
	if err := checkTables("x.sql", "SELECT 1 FROM {db}.latency_events JOIN {db}.deployments_v1"); err == nil ||
		!strings.Contains(err.Error(), `"deployments_v1"`) {
		t.Errorf("an unknown table: %v", err)
	}
}
