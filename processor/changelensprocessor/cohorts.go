package changelensprocessor

import (
	"strings"
	"sync"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/changelens/changelens/internal/eventspan"
)

// otherValue is what values beyond a key's bound fold into.
const otherValue = "__other__"

// foldReason indexes the cohort_folds metric's "reason" attribute.
type foldReason int

const (
	foldValues foldReason = iota // a key had max_values_per_key values: the value became __other__
	foldKeys                     // a unit had max_keys_per_unit keys: the dimension was not recorded
	foldUnits                    // max_units units were tracked: the value became __other__
	numFoldReasons
)

var foldReasonNames = [numFoldReasons]string{"values", "keys", "units"}

// cohorts records the cohort dimensions of latency events (feature-flag
// variants and listed attributes) within bounds. Only the bounds keep
// state: the keys and values each unit has used.
type cohorts struct {
	flags     bool
	flagKeys  map[string]bool // nil: any flag, up to maxKeys per unit
	attrs     []string
	maxKeys   int
	maxValues int
	maxUnits  int

	mu    sync.Mutex
	units map[unitKey]map[dimKey]*dimState
}

// dimKey names a dimension without building its string: a flag key or an
// attribute name.
type dimKey struct {
	flag bool
	name string
}

// dimState is one dimension of one unit: the attribute it is written to
// (built once) and the values seen.
type dimState struct {
	attr   string
	values map[string]struct{}
}

func newCohorts(cfg CohortsConfig) *cohorts {
	if !cfg.FeatureFlags && len(cfg.Attributes) == 0 {
		return nil
	}
	c := &cohorts{flags: cfg.FeatureFlags, attrs: cfg.Attributes, maxKeys: cfg.MaxKeysPerUnit,
		maxValues: cfg.MaxValuesPerKey, maxUnits: cfg.MaxUnits, units: map[unitKey]map[dimKey]*dimState{}}
	if len(cfg.FlagKeys) > 0 {
		c.flagKeys = map[string]bool{}
		for _, k := range cfg.FlagKeys {
			c.flagKeys[k] = true
		}
	}
	return c
}

func (k dimKey) attr() string {
	if k.flag {
		return eventspan.AttrCohortPrefix + eventspan.DimensionFeatureFlag + k.name
	}
	return eventspan.AttrCohortPrefix + eventspan.DimensionAttribute + k.name
}

// admit returns the attribute and value to record for dimension k of unit
// u, or ok false when the dimension is not recorded.
func (c *cohorts) admit(u unitKey, k dimKey, value string, folds *[numFoldReasons]int64) (attr, v string, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	dims, ok := c.units[u]
	if !ok {
		if len(c.units) >= c.maxUnits {
			folds[foldUnits]++
			return k.attr(), otherValue, true
		}
		dims = map[dimKey]*dimState{}
		c.units[unitKey{strings.Clone(u.service), strings.Clone(u.environment)}] = dims
	}
	d, ok := dims[k]
	if !ok {
		if len(dims) >= c.maxKeys {
			folds[foldKeys]++
			return "", "", false
		}
		d = &dimState{attr: k.attr(), values: map[string]struct{}{}}
		dims[dimKey{k.flag, strings.Clone(k.name)}] = d
	}
	if _, ok := d.values[value]; ok {
		return d.attr, value, true
	}
	if len(d.values) >= c.maxValues {
		folds[foldValues]++
		return d.attr, otherValue, true
	}
	d.values[strings.Clone(value)] = struct{}{}
	return d.attr, value, true
}

// admitCached is admit through the batch's cache of the unit's answers.
func (c *cohorts) admitCached(cache *admitCache, u unitKey, k dimKey, value string, folds *[numFoldReasons]int64) (attr, v string, ok bool) {
	if e := cache.get(k.flag, k.name, value); e != nil {
		if e.fold >= 0 {
			folds[e.fold]++
		}
		return e.attr, e.v, e.ok
	}
	before := *folds
	attr, v, ok = c.admit(u, k, value, folds)
	cache.put(admitEntry{flag: k.flag, name: k.name, value: value, attr: attr, v: v, ok: ok, fold: foldOf(before[:], folds[:])})
	return attr, v, ok
}

// annotate writes the cohort dimensions of latency event s of unit u.
func (c *cohorts) annotate(s ptrace.Span, u unitKey, res pcommon.Map, evals []flagEval, b *batchState) {
	folds := &b.folds
	if c.flags {
		for i, f := range evals {
			if c.flagKeys != nil && !c.flagKeys[f.key] {
				continue
			}
			dup := false
			for _, g := range evals[:i] {
				dup = dup || g.key == f.key
			}
			if dup { // evaluated twice in one request: the first counts
				continue
			}
			if attr, v, ok := c.admitCached(&b.dims, u, dimKey{true, f.key}, f.variant, folds); ok {
				b.bank.putStr(s.Attributes(), attr, v)
			}
		}
	}
	for _, name := range c.attrs {
		v, ok := s.Attributes().Get(name)
		if !ok {
			v, ok = res.Get(name)
		}
		if !ok {
			continue
		}
		val := v.AsString()
		if val == "" {
			continue
		}
		if attr, val, ok := c.admitCached(&b.dims, u, dimKey{false, name}, val, folds); ok {
			b.bank.putStr(s.Attributes(), attr, val)
		}
	}
}
