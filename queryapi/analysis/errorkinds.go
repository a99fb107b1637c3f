package analysis

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/changelens/changelens/internal/stats"
	"github.com/changelens/changelens/queryapi/report"
)

// TestErrorKind is the test of an error kind's rate, after against before
// (ErrorKindFinding.Test): the exact conditional rate test on counts
// deflated by the kind's per-minute dispersion.
const TestErrorKind = "error-kind (exact rate test, per-minute dispersion)"

// ErrorKindCounts is one error kind of a unit in a deployment's windows:
// the weighted entry spans that failed with it, per minute.
type ErrorKindCounts struct {
	// Kind is the entry span's error.type, else the exception.type of its
	// exception event, else its HTTP status class.
	Kind string
	// Folded marks the bucket of the kinds beyond the unit's bound, which
	// the processor folds into one (counting them): it is listed with its
	// figures but never tested and never new — which kinds it holds
	// changes from minute to minute.
	Folded bool
	// Before and After are the kind's weighted occurrences in each minute of
	// the windows, indexed as ErrorKindEvidence.BeforeRequests and
	// AfterRequests (the minute's offset from its window's start).
	Before, After []float64
	// History is the kind's occurrences over the longer lookback before the
	// before window whose requests are ErrorKindEvidence.HistoryRequests (the
	// previous version's lifetime, or the last days): a kind seen there is
	// known, not new, however long it was absent.
	History float64
	// FirstTraceID and FirstSeen are the kind's first trace in the after
	// window (or since the deployment) and its time, for the explanation.
	FirstTraceID string
	FirstSeen    time.Time
}

// ErrorKindEvidence is what JudgeErrorKinds rests on: a deployment's
// windows — the before/after rule's, whole minutes — with the unit's
// requests per minute and its error kinds.
type ErrorKindEvidence struct {
	// BeforeRequests and AfterRequests are the unit's weighted requests in
	// each minute of the windows (Evidence.MinuteRequests gives them).
	BeforeRequests, AfterRequests []float64
	// HistoryRequests are the unit's requests over the history lookback
	// (ErrorKindCounts.History); 0 when no history was read: then only the
	// before window decides what is new.
	HistoryRequests float64
	Kinds           []ErrorKindCounts
}

// ErrorKindFinding is one error kind's figures and verdict.
type ErrorKindFinding struct {
	Kind   string
	Folded bool
	// New: seen after and absent from the baseline — no occurrence in the
	// before window, nor in the history when one was read. The fold bucket
	// is never new.
	New bool
	// Verdict: WORSE when the kind's rate rose significantly (family-wise
	// adjusted p ≤ ErrorKindAlpha), in at least ErrorKindMinMinutes minutes
	// of the after window and by as much as the floors (see JudgeErrorKinds);
	// WORSE and New is NEW_ERROR_KIND. INSUFFICIENT_DATA when the kind was
	// not tested: the fold bucket, windows below MinRequests, or too few
	// occurrences to be significant whatever their split (Tarone); else
	// NO_DIFFERENCE.
	Verdict report.CompareVerdict
	// Before and After are the weighted occurrences in each window, the
	// rates those over the window's requests.
	Before, After         float64
	BeforeRate, AfterRate float64
	// RateLow and RateHigh are the exact 95 % interval of the after rate
	// (Garwood, on dispersion-deflated counts).
	RateLow, RateHigh float64
	// RateRatio is AfterRate ÷ BeforeRate (+Inf for a kind absent before),
	// RatioLow and RatioHigh its exact 95 % interval (Clopper–Pearson on the
	// after window's share of the deflated occurrences, R's poisson.test).
	RateRatio, RatioLow, RatioHigh float64
	// Phi is the dispersion the counts were deflated by (≥ 1): a burst in a
	// minute or two is one occurrence, not many.
	Phi float64
	// Minutes is the number of minutes of the after window holding the kind.
	Minutes int
	// PValue is the one-sided p-value of a rise, AdjustedPValue its
	// family-wise adjusted value (Holm over the tested kinds; 1 untested).
	PValue, AdjustedPValue float64
	// Test is TestErrorKind, or TestNotRun.
	Test         string
	FirstTraceID string
	FirstSeen    time.Time
}

// ErrorKindJudgement is the error-kind rule's answer for a deployment.
type ErrorKindJudgement struct {
	// Tested: both windows had MinRequests weighted requests (else nothing
	// was tested, the figures are reported).
	Tested bool
	// NewErrorKind: a kind absent from the baseline is WORSE — the
	// deployment is DEGRADED with the reason NEW_ERROR_KIND.
	NewErrorKind bool
	// Kinds: new kinds that are WORSE first (strongest evidence first), then
	// the other WORSE kinds (rose), then the rest, most occurrences after
	// first; the fold bucket last.
	Kinds []ErrorKindFinding
	// BeforeRequests and AfterRequests are the windows' weighted requests,
	// HistoryRequests the history lookback's (0: not read).
	BeforeRequests, AfterRequests, HistoryRequests float64
	// Family is the number of kinds tested: the kinds whose occurrences,
	// all in the after window, would be significant at their share of the
	// level (Tarone); the others cannot be, and do not dilute it.
	Family int
	// MDE is the smallest rate of a new kind found with Power at this
	// traffic (never below ErrorKindFloor); +Inf when none is, NaN when
	// nothing was tested.
	MDE float64
	// Explanation is one line naming the new kinds (NEW_ERROR_KIND: …) and
	// the kinds that rose, or saying that none did.
	Explanation string
}

// JudgeErrorKinds applies the error-kind rule of docs/analysis.md ("New
// error kinds") to a deployment's windows.
//
//   - A kind is new when it is absent from the baseline: no occurrence in
//     the before window, nor in the history lookback when one was read. The
//     fold bucket is never new and never tested.
//   - Each kind's rate after is tested against its rate before (one-sided:
//     did it rise?) by the exact conditional rate test with the windows'
//     requests as exposures, on counts deflated by the kind's per-minute
//     dispersion φ (Newey–West with DispersionLags over each window's
//     minutes): a burst in a minute or two counts as about one occurrence.
//     For a kind absent before, p = π^(x/φ), π the after window's share of
//     the requests: 3 occurrences after equal windows give 0.125, however
//     "new" they look.
//   - One family at ErrorKindAlpha: Holm over the kinds Tarone's rule keeps
//     — those whose occurrences, were they all after, could reach their
//     share of the level; a long tail of kinds seen once or twice cannot,
//     and does not dilute it.
//   - A kind is WORSE when its adjusted p ≤ ErrorKindAlpha, it occurred in
//     at least ErrorKindMinMinutes minutes of the after window, and the
//     floor is not ruled out: for a new kind, the after rate's 95 % interval
//     reaches ErrorKindFloor; for a known kind (it rose), the rate ratio's
//     reaches ErrorRateFloorRatio and the difference's ErrorKindFloor.
//
// How the verdict combines: NewErrorKind makes the deployment DEGRADED with
// the reason NEW_ERROR_KIND, added to the before/after rule's reasons (a
// NO_CHANGE or IMPROVED verdict becomes DEGRADED; PENDING stays PENDING,
// with the findings so far; INSUFFICIENT_DATA stays, nothing was tested).
// A new kind is the deployment's own: a CAUSED_BY_DEPENDENCY verdict
// becomes DEGRADED with NEW_ERROR_KIND too (attribution apportions rates,
// not kinds). Kinds that rose are listed and named in the explanation but
// never DEGRADED on their own: a known kind's rise is part of the error
// rate, which the before/after rule judges with its own floor (an
// ERROR_RATE_REGRESSION they then explain). The gate fails a deployment
// DEGRADED with NEW_ERROR_KIND, and notifications carry the reason and
// the Explanation.
func JudgeErrorKinds(in ErrorKindEvidence, cfg Config) ErrorKindJudgement {
	nb, na := sumPositive(in.BeforeRequests), sumPositive(in.AfterRequests)
	j := ErrorKindJudgement{BeforeRequests: nb, AfterRequests: na, MDE: math.NaN()}
	if in.HistoryRequests > 0 && !math.IsInf(in.HistoryRequests, 0) {
		j.HistoryRequests = in.HistoryRequests
	}
	j.Tested = nb >= cfg.MinRequests && na >= cfg.MinRequests && nb > 0 && na > 0
	history := j.HistoryRequests > 0
	j.Kinds = make([]ErrorKindFinding, len(in.Kinds))
	for i, k := range in.Kinds {
		f := &j.Kinds[i]
		*f = ErrorKindFinding{Kind: k.Kind, Folded: k.Folded, Verdict: report.CompareInsufficientData,
			Before: sumPositive(k.Before), After: sumPositive(k.After), BeforeRate: math.NaN(), AfterRate: math.NaN(),
			RateLow: math.NaN(), RateHigh: math.NaN(), RateRatio: math.NaN(), RatioLow: math.NaN(), RatioHigh: math.NaN(),
			Phi: 1, PValue: 1, AdjustedPValue: 1, Test: TestNotRun, FirstTraceID: k.FirstTraceID, FirstSeen: k.FirstSeen}
		f.New = !k.Folded && f.Before == 0 && f.After > 0 && (!history || !(k.History > 0))
		for _, x := range k.After {
			if x > 0 {
				f.Minutes++
			}
		}
		if nb > 0 {
			f.BeforeRate = f.Before / nb
		}
		if na > 0 {
			f.AfterRate = f.After / na
		}
		if nb <= 0 || na <= 0 {
			continue
		}
		f.Phi = kindDispersion([2][]float64{k.Before, k.After}, [2][]float64{in.BeforeRequests, in.AfterRequests}, cfg.DispersionLags)
		xb, xa := f.Before/f.Phi, f.After/f.Phi
		f.RateLow, f.RateHigh = poissonRateCI(xa, na/f.Phi, 0.95)
		if f.Before > 0 {
			f.RateRatio = f.AfterRate / f.BeforeRate
		} else if f.After > 0 {
			f.RateRatio = math.Inf(1)
		}
		if lo, hi, err := stats.PoissonRateRatioCI(xa, na, xb, nb, 0.95); err == nil {
			f.RatioLow, f.RatioHigh = lo, hi
		}
		if p, err := stats.PoissonRateTest(xa, na, xb, nb, stats.Greater); err == nil && !f.Folded {
			f.PValue = p
		}
	}
	if !j.Tested {
		j.Explanation = "error kinds not judged: too little traffic"
		sortKinds(j.Kinds)
		return j
	}

	// Tarone's rule: K is the smallest k such that at most k kinds could
	// reach α/k were all their occurrences after (p = π^N for N
	// occurrences, whatever the dispersion: deflating only raises it); the
	// family is those kinds.
	alpha := cfg.ErrorKindAlpha
	var cand []int
	pmin := make([]float64, len(j.Kinds))
	for i, f := range j.Kinds {
		pmin[i] = 1
		if f.Folded || !(f.Before+f.After > 0) {
			continue
		}
		if p, err := stats.PoissonRateTest(f.Before+f.After, na, 0, nb, stats.Greater); err == nil {
			pmin[i] = p
		}
		cand = append(cand, i)
	}
	k := tarone(cand, pmin, alpha)
	var family []int
	for _, i := range cand {
		if pmin[i] <= alpha/float64(k) {
			family = append(family, i)
		}
	}
	j.Family = len(family)
	if len(family) > 0 {
		p, w := make([]float64, len(family)), make([]float64, len(family))
		for n, i := range family {
			p[n], w[n] = j.Kinds[i].PValue, 1
		}
		adj, err := stats.WeightedHolm(p, w)
		if err != nil { // p-values are probabilities by construction
			adj = make([]float64, len(family))
			for n := range adj {
				adj[n] = 1
			}
		}
		for n, i := range family {
			f := &j.Kinds[i]
			f.Test, f.AdjustedPValue, f.Verdict = TestErrorKind, adj[n], report.CompareNoDifference
			if f.AdjustedPValue > alpha || f.Minutes < cfg.ErrorKindMinMinutes {
				continue
			}
			material := !(f.RateHigh < cfg.ErrorKindFloor)
			if !f.New {
				ta, tb := (f.After+1)/(na+2), (f.Before+1)/(nb+2)
				diffHigh := f.AfterRate - f.BeforeRate + ciZ*math.Sqrt(f.Phi*(ta*(1-ta)/na+tb*(1-tb)/nb))
				material = !(f.RatioHigh < cfg.ErrorRateFloorRatio) && !(diffHigh < cfg.ErrorKindFloor)
			}
			if material {
				f.Verdict = report.CompareWorse
				j.NewErrorKind = j.NewErrorKind || f.New
			}
		}
	}
	j.MDE = newKindMDE(na, nb, len(family)+1, cfg)
	sortKinds(j.Kinds)
	j.Explanation = j.explain(cfg)
	return j
}

// tarone is the smallest k ≥ 1 such that at most k of the candidates'
// smallest attainable p-values are ≤ alpha/k (Tarone 1990).
func tarone(cand []int, pmin []float64, alpha float64) int {
	ps := make([]float64, 0, len(cand))
	for _, i := range cand {
		ps = append(ps, pmin[i])
	}
	slices.Sort(ps)
	for k := 1; k <= len(ps); k++ {
		n, _ := slices.BinarySearch(ps, math.Nextafter(alpha/float64(k), 2))
		if n <= k {
			return k
		}
	}
	return max(1, len(ps))
}

// kindDispersion is the dispersion φ ≥ 1 a kind's per-minute counts x
// (before, after) show beyond chance, given the unit's requests n per
// minute. The estimate is the before/after rule's: the long-run
// (Newey–West, lags) variance of each window's residuals from its own rate
// — corrected for that rate having been estimated from the window — over
// the Poisson variance (the occurrences). It is then lowered by
// dispersionMargin standard errors of the estimate under Poisson counts,
// √((2 + 1/λ + 4Σw²)/M) for M minutes of λ occurrences each and Bartlett
// weights w. A burst (a dozen occurrences in a minute or two) gives an
// estimate far beyond that and deflates the counts to about one
// occurrence; a kind scattered at random keeps φ = 1, where the estimate
// from under one occurrence a minute would deflate it by chance (power
// lost for nothing: see docs/analysis.md). 1 without occurrences.
func kindDispersion(x, n [2][]float64, lags int) float64 {
	est, se := dispersionEstimate(x, n, lags)
	return math.Max(1, est-dispersionMargin*se)
}

// dispersionEstimate is kindDispersion's estimate and its standard error
// under Poisson counts (1 and 0 without occurrences).
func dispersionEstimate(x, n [2][]float64, lags int) (est, se float64) {
	var v, events float64
	minutes := 0
	for w := range x {
		tx, tn := sumPositive(x[w]), sumPositive(n[w])
		if !(tx > 0) || !(tn > 0) {
			continue
		}
		r := tx / tn
		m := max(len(x[w]), len(n[w]))
		resid := make([]float64, m)
		used := 0
		for k := range m {
			var xk, nk float64
			if k < len(x[w]) && x[w][k] > 0 {
				xk = x[w][k]
			}
			if k < len(n[w]) && n[w][k] > 0 {
				nk = n[w][k]
			}
			if nk > 0 || xk > 0 {
				used++
			}
			resid[k] = xk - r*nk
		}
		vw := stats.LongRunVariance(resid, lags)
		if used > 1+lags {
			vw *= float64(used) / float64(used-1-lags)
		}
		v += vw
		events += tx
		minutes += used
	}
	if !(events > 0) || minutes == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1, 0
	}
	kernel := 0.0
	for l := 1; l <= lags; l++ {
		w := 1 - float64(l)/float64(lags+1)
		kernel += w * w
	}
	m := float64(minutes)
	return v / events, math.Sqrt((2 + m/events + 4*kernel) / m)
}

// dispersionMargin: a kind's dispersion is its estimate less this many
// standard errors (the one-sided 95 % lower bound): evidence of clustering,
// not the noise of a few occurrences a minute.
const dispersionMargin = 1.645

// poissonRateCI is the exact (Garwood) interval of the rate of x events over
// exposure n at the given level: the gamma quantiles of x and x + 1. x may
// be real (deflated counts).
func poissonRateCI(x, n, level float64) (lo, hi float64) {
	if !(n > 0) || x < 0 {
		return math.NaN(), math.NaN()
	}
	a := (1 - level) / 2
	if x > 0 {
		lo = distuv.Gamma{Alpha: x, Beta: 1}.Quantile(a) / n
	}
	hi = distuv.Gamma{Alpha: x + 1, Beta: 1}.Quantile(1-a) / n
	return lo, hi
}

// newKindMDE is the smallest rate of a new kind the rule finds with Power
// over na requests after and nb before, in a family of the given size (the
// new kind its first step, φ = 1): it needs c occurrences with π^c at most
// its share of the level, and at least ErrorKindMinMinutes; never below the
// floor. +Inf when no count suffices (a before window far shorter than the
// after window).
func newKindMDE(na, nb float64, family int, cfg Config) float64 {
	pi := na / (na + nb)
	level := cfg.ErrorKindAlpha / float64(max(family, 1))
	if !(pi < 1) || !(level > 0) {
		return math.Inf(1)
	}
	c := math.Ceil(math.Log(level)/math.Log(pi) - 1e-9)
	c = math.Max(c, float64(cfg.ErrorKindMinMinutes))
	power := mdePower(cfg.Power)
	found := func(lambda float64) bool { // P(Poisson(λ) ≥ c) ≥ power
		return 1-distuv.Poisson{Lambda: lambda}.CDF(c-1) >= power
	}
	lo, hi := 0.0, c
	for !found(hi) {
		hi *= 2
	}
	for range 50 {
		mid := (lo + hi) / 2
		if found(mid) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return math.Max(hi/na, cfg.ErrorKindFloor)
}

// sortKinds orders findings: new WORSE kinds (smallest adjusted p, then
// most occurrences after), other WORSE kinds likewise, then the rest by
// occurrences after, the fold bucket last; ties by name.
func sortKinds(ks []ErrorKindFinding) {
	class := func(f ErrorKindFinding) int {
		switch {
		case f.Folded:
			return 3
		case f.Verdict == report.CompareWorse && f.New:
			return 0
		case f.Verdict == report.CompareWorse:
			return 1
		}
		return 2
	}
	slices.SortStableFunc(ks, func(a, b ErrorKindFinding) int {
		ca, cb := class(a), class(b)
		if ca != cb {
			return cmp.Compare(ca, cb)
		}
		if ca < 2 {
			if c := cmp.Compare(a.AdjustedPValue, b.AdjustedPValue); c != 0 {
				return c
			}
		}
		return cmp.Or(cmp.Compare(b.After, a.After), cmp.Compare(a.Kind, b.Kind))
	})
}

// explain is the judgement's one line:
//
//	NEW_ERROR_KIND: java.lang.NullPointerException at 0.31 % of requests after (0 in 41 200 before; first trace 4bf92f3577b34da6a3ce929d0e0e4736).
//	no new error kind (2 kinds absent before seen after, none at a significant rate; one at 0.072 % of requests would be found with 80 % power; 18 000 vs 18 000 requests).
func (j ErrorKindJudgement) explain(cfg Config) string {
	var news, rose []ErrorKindFinding
	unconfirmed := 0
	for _, f := range j.Kinds {
		if f.Verdict != report.CompareWorse {
			if f.New && f.After > 0 {
				unconfirmed++
			}
			continue
		}
		if f.New {
			news = append(news, f)
		} else {
			rose = append(rose, f)
		}
	}
	var parts []string
	for i, f := range news {
		if i == maxExplained {
			parts = append(parts, fmt.Sprintf("and %d more", len(news)-maxExplained))
			break
		}
		s := fmt.Sprintf("%s at %s of requests after (0 in %s before", f.Kind, kindRate(f.AfterRate), count(j.BeforeRequests))
		if j.HistoryRequests > 0 {
			s += fmt.Sprintf(" and %s earlier", count(j.HistoryRequests))
		}
		if f.FirstTraceID != "" {
			s += "; first trace " + f.FirstTraceID
		}
		parts = append(parts, s+")")
	}
	var roseParts []string
	for i, f := range rose {
		if i == maxExplained {
			roseParts = append(roseParts, fmt.Sprintf("and %d more", len(rose)-maxExplained))
			break
		}
		ratio := "×∞"
		if !math.IsInf(f.RateRatio, 0) {
			ratio = times(f.RateRatio - 1)
		}
		roseParts = append(roseParts, fmt.Sprintf("%s %s → %s (%s, %s vs %s)", f.Kind, kindRate(f.BeforeRate), kindRate(f.AfterRate), ratio,
			count(f.Before), count(f.After)))
	}
	switch {
	case len(news) > 0:
		s := "NEW_ERROR_KIND: " + strings.Join(parts, "; ")
		if len(roseParts) > 0 {
			s += "; error kinds that rose: " + strings.Join(roseParts, "; ")
		}
		return s + "."
	case len(roseParts) > 0:
		return "no new error kind; error kinds that rose: " + strings.Join(roseParts, "; ") + "."
	}
	seen := ""
	if unconfirmed > 0 {
		seen = fmt.Sprintf("%d %s absent before seen after, none at a significant rate; ", unconfirmed, plural(unconfirmed, "kind", "kinds"))
	}
	mde := "none would be found at this traffic"
	if !math.IsInf(j.MDE, 0) && !math.IsNaN(j.MDE) {
		mde = fmt.Sprintf("one at %s of requests would be found with %s power", kindRate(j.MDE), pct(cfg.Power))
	}
	return fmt.Sprintf("no new error kind (%s%s; %s vs %s requests).", seen, mde, count(j.BeforeRequests), count(j.AfterRequests))
}

// kindRate formats a rate as a percentage with two significant digits at
// least two decimals: 0.31 %, 0.0042 %.
func kindRate(v float64) string {
	p := 100 * v
	switch {
	case math.IsNaN(p) || math.IsInf(p, 0):
		return "?"
	case p == 0:
		return "0 %"
	}
	dec := max(2, 1-int(math.Floor(math.Log10(p))))
	return strconv.FormatFloat(p, 'f', dec, 64) + " %"
}

func sumPositive(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		if x > 0 && !math.IsInf(x, 0) {
			s += x
		}
	}
	return s
}

// MinuteRequests are the unit's weighted requests in each minute of the
// windows, all strata together: the exposures of ErrorKindEvidence.
func (e *Evidence) MinuteRequests() (before, after []float64) {
	for _, s := range e.Strata {
		for w, ms := range [2][]MinuteCounts{s.BeforeMinutes, s.AfterMinutes} {
			out := &before
			if w == 1 {
				out = &after
			}
			if len(*out) < len(ms) {
				*out = append(*out, make([]float64, len(ms)-len(*out))...)
			}
			for k, m := range ms {
				(*out)[k] += m.Requests
			}
		}
	}
	return before, after
}

// MetricNewErrorKind is the metric of a new error kind's regression entry
// (report.Regression.Metric; ErrorKindRegressions).
const MetricNewErrorKind = "new_error_kind"

// WithErrorKinds is j with the error-kind rule's answer ek, combined as
// JudgeErrorKinds says: a new kind that is WORSE adds NEW_ERROR_KIND to
// the reasons and makes NO_CHANGE, IMPROVED and CAUSED_BY_DEPENDENCY
// DEGRADED (the latter with NEW_ERROR_KIND as its only reason and no
// cause: a new kind is the deployment's own, while the regressions the
// attribution explained are not); PENDING and INSUFFICIENT_DATA stay.
func (j Judgement) WithErrorKinds(ek ErrorKindJudgement) Judgement {
	j.ErrorKinds = &ek
	if !ek.NewErrorKind {
		return j
	}
	switch j.Verdict {
	case report.VerdictNoChange, report.VerdictImproved:
		j.Verdict = report.VerdictDegraded
		j.Regressions = append(slices.Clone(j.Regressions), report.ReasonNewErrorKind)
	case report.VerdictDegraded:
		j.Regressions = append(slices.Clone(j.Regressions), report.ReasonNewErrorKind)
	case report.VerdictCausedByDependency:
		j.Verdict, j.Cause = report.VerdictDegraded, nil
		j.Regressions = []report.FailureReason{report.ReasonNewErrorKind}
	}
	return j
}

// Report is the judgement in the API's shape: the new kinds (any verdict)
// and the known kinds that rose; nil for nil.
func (j *ErrorKindJudgement) Report() *report.ErrorKinds {
	if j == nil {
		return nil
	}
	out := &report.ErrorKinds{Tested: j.Tested, NewErrorKind: j.NewErrorKind, BeforeRequests: j.BeforeRequests,
		AfterRequests: j.AfterRequests, HistoryRequests: j.HistoryRequests, Family: j.Family, MDE: j.MDE, Explanation: j.Explanation}
	for _, f := range j.Kinds {
		k := report.ErrorKind{Kind: f.Kind, Folded: f.Folded, New: f.New, Verdict: f.Verdict, Before: f.Before, After: f.After,
			BeforeRate: f.BeforeRate, AfterRate: f.AfterRate, RateLow: f.RateLow, RateHigh: f.RateHigh, RateRatio: f.RateRatio,
			RatioLow: f.RatioLow, RatioHigh: f.RatioHigh, Phi: f.Phi, Minutes: f.Minutes, PValue: f.PValue,
			AdjustedPValue: f.AdjustedPValue, Test: f.Test, FirstTraceID: f.FirstTraceID, FirstSeen: f.FirstSeen}
		switch {
		case f.New:
			out.New = append(out.New, k)
		case f.Verdict == report.CompareWorse:
			out.Rose = append(out.Rose, k)
		}
	}
	return out
}

// ErrorKindRegressions are the regression entries of the new kinds that
// are WORSE (NEW_ERROR_KIND): metric new_error_kind, the kind, its rates
// before and after with the after rate's interval, the windows' requests
// and its first trace.
func ErrorKindRegressions(ek *report.ErrorKinds) []report.Regression {
	if ek == nil || !ek.NewErrorKind {
		return nil
	}
	var out []report.Regression
	for _, k := range ek.New {
		if k.Verdict != report.CompareWorse {
			continue
		}
		out = append(out, report.Regression{Metric: MetricNewErrorKind, ErrorKind: k.Kind, FirstTraceID: k.FirstTraceID,
			Before: k.BeforeRate, After: k.AfterRate, RelativeChange: k.RateRatio - 1, CILow: k.RateLow, CIHigh: k.RateHigh,
			BeforeRequests: ek.BeforeRequests, AfterRequests: ek.AfterRequests})
	}
	return out
}

// DescribeNewErrorKinds names the new kinds that are WORSE, with their
// rates and first traces ("java.lang.NullPointerException at 0.30 % of
// requests after (0 before; first trace 4bf9…)"); "" when none.
func DescribeNewErrorKinds(ek *report.ErrorKinds) string {
	if ek == nil || !ek.NewErrorKind {
		return ""
	}
	var parts []string
	for _, k := range ek.New {
		if k.Verdict != report.CompareWorse {
			continue
		}
		if len(parts) == maxExplained {
			parts = append(parts, "and more")
			break
		}
		s := fmt.Sprintf("new error kind %s at %s of requests (0 before", k.Kind, kindRate(k.AfterRate))
		if k.FirstTraceID != "" {
			s += "; first trace " + k.FirstTraceID
		}
		parts = append(parts, s+")")
	}
	return strings.Join(parts, "; ")
}
