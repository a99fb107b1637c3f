package usecase

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/changelens/changelens/internal/schema"
	"github.com/changelens/changelens/queryapi/analysis"
	"github.com/changelens/changelens/queryapi/limits"
	"github.com/changelens/changelens/queryapi/report"
	"github.com/changelens/changelens/queryapi/store"
)

// maxCompareMinutes bounds the minutes one comparison reads (two cohorts a
// minute).
const maxCompareMinutes = int(limits.MaxCompareRange / time.Minute)

// Compare compares two versions of one unit in the minutes both served
// (docs/analysis.md, "Same-window comparison of cohorts").
func (s *Service) Compare(ctx context.Context, q report.CompareQuery) (report.Comparison, error) {
	// The exemplars and the error kinds do not depend on the minutes: they
	// are read while the minutes are (whose scan into Go costs this process
	// as much as the server its query).
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // an early return ends them
	var (
		ex                map[string]store.Exemplars
		kinds             []store.CohortKindMinute
		kindsOK           bool
		exErr, kindsErr   error
		exDone, kindsDone = make(chan struct{}), make(chan struct{})
	)
	go func() {
		defer close(exDone)
		ex, exErr = s.st.CohortExemplars(ctx, q)
	}()
	go func() {
		defer close(kindsDone)
		kinds, kindsOK, kindsErr = s.st.CohortErrorKinds(ctx, q, 2*maxKindRowsPerMinute*maxCompareMinutes)
	}()
	// The comparison and its per-operation breakdown read the same minutes:
	// split by operation once, the whole unit is their merge. Without a
	// breakdown (one operation asked, a range beyond a day, or more
	// operations than its bound) the unit's minutes are read unsplit.
	var opRowsAll, rows []store.CohortMinute
	var opErr error
	byOperation := q.Operation == "" && q.End.Sub(q.Start) <= maxOperationsRange
	if byOperation {
		opRowsAll, opErr = s.st.CohortMinutes(ctx, q, true, 2*maxCompareOperations*int(maxOperationsRange/time.Minute))
		var ia *report.InvalidArgumentError
		switch {
		case opErr == nil:
			if rows = store.MergeOperations(opRowsAll); len(rows) > 2*maxCompareMinutes {
				return report.Comparison{}, invalid("more than %d cohort minutes: narrow the range", 2*maxCompareMinutes)
			}
		case errors.As(opErr, &ia): // more operations than the bound: leave the breakdown out
			byOperation = false
		default:
			return report.Comparison{}, opErr
		}
	}
	if !byOperation {
		var err error
		if rows, err = s.st.CohortMinutes(ctx, q, false, 2*maxCompareMinutes); err != nil {
			return report.Comparison{}, err
		}
	}
	// The per-operation breakdown is computed beside the unit's comparison
	// (computeSpare: on the free core while nothing else waits).
	var breakdown func() ([]report.OperationComparison, error)
	if byOperation {
		breakdown = s.compareOperations(ctx, q, opRowsAll)
	}
	c, err := s.compare(ctx, pairsOf(rows, q.Treatment), q.ExpectedShare)
	if err != nil {
		return report.Comparison{}, err
	}
	out := report.Comparison{OverlapMinutes: c.OverlapMinutes, Verdict: c.Verdict, Metrics: c.ReportMetrics(), SRM: c.SRM}
	out.Control, out.Treatment = c.Cohorts(q.Control, q.Treatment)
	<-exDone
	if exErr != nil {
		return report.Comparison{}, exErr
	}
	out.Control.SlowestTraceID, out.Control.FailedTraceID = ex[q.Control].SlowestTraceID, ex[q.Control].FailedTraceID
	out.Treatment.SlowestTraceID, out.Treatment.FailedTraceID = ex[q.Treatment].SlowestTraceID, ex[q.Treatment].FailedTraceID
	<-kindsDone
	if out.ErrorKinds, err = s.compareErrorKinds(ctx, q, rows, kinds, kindsOK, kindsErr); err != nil {
		return report.Comparison{}, err
	}
	if !byOperation {
		return out, nil
	}
	if out.Operations, err = breakdown(); err != nil {
		return report.Comparison{}, err
	}
	return out, nil
}

// compareOperations starts the comparison of each operation of rows (the
// busiest maxCompareOperations), each on its own goroutine through
// computeSpare, and returns the function that waits for them and gives
// them busiest first.
func (s *Service) compareOperations(ctx context.Context, q report.CompareQuery, rows []store.CohortMinute) func() ([]report.OperationComparison, error) {
	type opRows struct {
		op       string
		rows     []store.CohortMinute
		requests float64
	}
	var ops []opRows
	for _, r := range rows {
		if n := len(ops); n == 0 || ops[n-1].op != r.Operation {
			ops = append(ops, opRows{op: r.Operation})
		}
		o := &ops[len(ops)-1]
		o.rows = append(o.rows, r)
		o.requests += r.Requests
	}
	slices.SortStableFunc(ops, func(a, b opRows) int { return cmp.Compare(b.requests, a.requests) })
	ops = ops[:min(len(ops), maxCompareOperations)]
	out := make([]report.OperationComparison, len(ops))
	errs := make([]error, len(ops))
	var wg sync.WaitGroup
	for i, o := range ops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var oc analysis.Comparison
			pairs := pairsOf(o.rows, q.Treatment)
			if errs[i] = s.computeSpare(ctx, func() { oc = analysis.Compare(pairs, 0, s.cfg.Analysis, compareConfig()) }); errs[i] != nil {
				return
			}
			r := report.OperationComparison{Operation: o.op, OverlapMinutes: oc.OverlapMinutes, Verdict: oc.Verdict, Metrics: oc.ReportMetrics()}
			r.Control, r.Treatment = oc.Cohorts(q.Control, q.Treatment)
			out[i] = r
		}()
	}
	return func() ([]report.OperationComparison, error) {
		wg.Wait()
		if err := errors.Join(errs...); err != nil || len(out) == 0 {
			return nil, err
		}
		return out, nil
	}
}

// maxKindRowsPerMinute bounds the error-kind rows a comparison reads per
// minute and cohort on average; beyond, its error kinds are left out.
const maxKindRowsPerMinute = 10

// compareErrorKinds judges the treatment's error kinds against the
// control's in the minutes both served (rows: CohortMinutes' unsplit rows):
// the new-error-kind rule with the control as the baseline ("before") and
// the treatment as the deployment ("after"), minute by minute, without
// history (docs/analysis.md, "New error kinds"). nil when the storage has
// no error kinds or the range holds more rows than the bound (kinds, ok and
// err: what CohortErrorKinds answered).
func (s *Service) compareErrorKinds(ctx context.Context, q report.CompareQuery, rows []store.CohortMinute,
	kinds []store.CohortKindMinute, ok bool, err error) (*report.ErrorKinds, error) {
	var ia *report.InvalidArgumentError
	if errors.As(err, &ia) || (err == nil && !ok) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	// The minutes both served, as pairsOf keeps them.
	at := map[time.Time]int{}
	var ev analysis.ErrorKindEvidence
	for i := 0; i+1 < len(rows); i++ {
		a, b := rows[i], rows[i+1]
		if !a.Minute.Equal(b.Minute) || a.Requests <= 0 || b.Requests <= 0 {
			continue
		}
		control, treatment := a.Requests, b.Requests
		if a.Cohort == q.Treatment {
			control, treatment = treatment, control
		}
		at[a.Minute] = len(ev.BeforeRequests)
		ev.BeforeRequests = append(ev.BeforeRequests, control)
		ev.AfterRequests = append(ev.AfterRequests, treatment)
		i++
	}
	idx := map[string]int{}
	firstNs := map[string]uint64{}
	for _, r := range kinds {
		o, ok := at[r.Minute]
		if !ok {
			continue
		}
		k, ok := idx[r.Kind]
		if !ok {
			k = len(ev.Kinds)
			idx[r.Kind] = k
			ev.Kinds = append(ev.Kinds, analysis.ErrorKindCounts{Kind: r.Kind, Folded: r.Kind == schema.ErrorKindFolded,
				Before: make([]float64, len(at)), After: make([]float64, len(at))})
		}
		c := &ev.Kinds[k]
		if r.Cohort != q.Treatment {
			c.Before[o] += r.Occurrences
			continue
		}
		c.After[o] += r.Occurrences
		if f, seen := firstNs[r.Kind]; r.Occurrences > 0 && (!seen || r.FirstNs < f) {
			firstNs[r.Kind] = r.FirstNs
			c.FirstTraceID, c.FirstSeen = r.FirstTraceID, time.Unix(0, int64(r.FirstNs)).UTC()
		}
	}
	var j analysis.ErrorKindJudgement
	if err := s.compute(ctx, func() { j = analysis.JudgeErrorKinds(ev, s.cfg.Analysis) }); err != nil {
		return nil, err
	}
	return j.Report(), nil
}

// maxCompareOperations bounds the per-operation breakdown of a comparison,
// given only for ranges up to maxOperationsRange.
const (
	maxCompareOperations = 10
	maxOperationsRange   = 24 * time.Hour
)

// compare runs the comparison (tests and bootstrap intervals: CPU-bound,
// ~0.1–0.3 s for a day) on one of the service's compute slots.
func (s *Service) compare(ctx context.Context, pairs []analysis.MinutePair, expectedShare float64) (analysis.Comparison, error) {
	var c analysis.Comparison
	err := s.compute(ctx, func() { c = analysis.Compare(pairs, expectedShare, s.cfg.Analysis, compareConfig()) })
	return c, err
}

// pairsOf keeps the minutes both cohorts served (rows ordered by minute,
// then cohort), control first.
func pairsOf(rows []store.CohortMinute, treatment string) []analysis.MinutePair {
	var pairs []analysis.MinutePair
	for i := 0; i+1 < len(rows); i++ {
		a, b := rows[i], rows[i+1]
		if !a.Minute.Equal(b.Minute) || a.Requests <= 0 || b.Requests <= 0 {
			continue
		}
		p := analysis.MinutePair{Control: a.CohortMinute, Treatment: b.CohortMinute}
		if a.Cohort == treatment {
			p.Control, p.Treatment = p.Treatment, p.Control
		}
		pairs = append(pairs, p)
		i++
	}
	return pairs
}

// compareConfig is the comparison's configuration over the store's
// histogram layouts.
func compareConfig() analysis.CompareConfig {
	cc := analysis.DefaultCompareConfig()
	cc.BucketValue, cc.SizeValue = bucketMs, schema.SizeValue
	return cc
}

// bucketMs is the value of a latency histogram bucket in milliseconds.
func bucketMs(i uint16) float64 { return schema.HistValue(i) / 1e6 }

// maxCohortValues bounds the values listed per dimension.
const maxCohortValues = 100

// Cohorts lists the cohort dimensions of one unit and the values seen over
// the range, busiest first.
func (s *Service) Cohorts(ctx context.Context, q report.CohortQuery) ([]report.CohortDimension, error) {
	return s.st.CohortValues(ctx, q.Service, q.Environment, q.Start, q.End, maxCohortValues)
}
