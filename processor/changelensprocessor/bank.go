package changelensprocessor

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// valueBank recycles the attribute storage of the spans a batch drops for
// the attributes the processor writes. pdata boxes every string value it
// stores (Map.PutStr allocates the box) and a scope decoded without
// attributes has no array to append the scope mark to; a dropped span has
// both, and nothing reads them again. Moving a box (Value.MoveTo) and
// setting its string reuses it (pdata's SetStr keeps a string box), so an
// error kind, a cohort dimension or a scope mark costs no allocation while
// the batch drops spans with string attributes — most batches: only a
// quarter of a typical batch's spans are entry spans. Without donors the
// writes allocate as before. The bank lives in the pooled batch scratch, so
// boxes left over from one batch serve the next.
type valueBank struct {
	vals pcommon.Slice // vals.At(0..n-1) hold string boxes; the rest are empty
	n    int
	// maps are attribute arrays of dropped spans, each for one scope mark.
	maps  []pcommon.Map
	nmaps int
}

// bankSize bounds the boxes kept: enough for the writes of a large batch’s
// failed requests and flags between donors, little to hold on to.
const (
	bankSize     = 1024
	bankMapsSize = 16
)

func newValueBank() valueBank {
	vb := valueBank{vals: pcommon.NewSlice(), maps: make([]pcommon.Map, bankMapsSize)}
	vb.vals.EnsureCapacity(bankSize)
	for i := range vb.maps {
		vb.maps[i] = pcommon.NewMap()
	}
	return vb
}

// harvest takes the string boxes and, when wanted, the attribute array of
// a span that leaves the output.
func (vb *valueBank) harvest(s ptrace.Span) {
	attrs := s.Attributes()
	if vb.nmaps < len(vb.maps) && attrs.Len() >= 2 {
		attrs.MoveTo(vb.maps[vb.nmaps])
		vb.nmaps++
		return
	}
	if vb.n >= bankSize {
		return
	}
	for _, v := range attrs.All() {
		if v.Type() != pcommon.ValueTypeStr {
			continue
		}
		var slot pcommon.Value
		if vb.n < vb.vals.Len() {
			slot = vb.vals.At(vb.n)
		} else {
			slot = vb.vals.AppendEmpty()
		}
		v.MoveTo(slot)
		vb.n++
		if vb.n >= bankSize {
			return
		}
	}
}

// putStr is m.PutStr(k, v), with a banked box when there is one.
func (vb *valueBank) putStr(m pcommon.Map, k, v string) {
	dst, existed := m.GetOrPutEmpty(k)
	if !existed && vb.n > 0 {
		vb.n--
		vb.vals.At(vb.n).MoveTo(dst)
	}
	dst.SetStr(v)
}

// markScope is eventspan.MarkScope(sc, eventType) for a scope whose
// attributes are empty (as decoded scopes' are), building the mark from a
// banked attribute array when there is one: the array is emptied but for
// one string entry, whose box then holds the mark under the mark's key.
// Returns false, changing nothing, when it cannot (the caller marks as
// eventspan does).
func (vb *valueBank) markScope(sc pcommon.InstrumentationScope, key, eventType string) bool {
	attrs := sc.Attributes()
	if attrs.Len() != 0 {
		return false
	}
	for vb.nmaps > 0 {
		vb.nmaps--
		donor := vb.maps[vb.nmaps]
		keep := -1
		i := 0
		for _, v := range donor.All() {
			if v.Type() == pcommon.ValueTypeStr {
				keep = i
				break
			}
			i++
		}
		if keep < 0 || donor.Len() < 2 {
			donor.Clear()
			continue
		}
		i = 0
		donor.RemoveIf(func(string, pcommon.Value) bool {
			drop := i != keep
			i++
			return drop
		})
		// One entry left, room for a second: move its box under key, then
		// drop it (Remove moves the last entry into its place).
		var oldKey string
		var old pcommon.Value
		for k, v := range donor.All() {
			oldKey, old = k, v
		}
		if oldKey == key {
			old.SetStr(eventType)
		} else {
			dst := donor.PutEmpty(key)
			old, _ = donor.Get(oldKey)
			old.MoveTo(dst)
			dst.SetStr(eventType)
			donor.Remove(oldKey)
		}
		donor.MoveTo(attrs)
		return true
	}
	return false
}

// admitCache remembers what a bound (cohorts.admit, errorKinds.admit)
// answered for the current resource's unit, so the spans of one resource
// ask the shared, locked bounds once per distinct dimension and value. The
// answers cannot change: the bounds only ever add keys, values and units,
// so a value admitted stays admitted and a folded one stays folded; a hit
// counts its fold again, as the bound would have.
type admitCache struct {
	entries [maxAdmitEntries]admitEntry
	n       int
}

type admitEntry struct {
	flag        bool
	name, value string // the dimension (flag key, attribute name; "" for kinds) and value asked
	attr, v     string // the answer
	ok          bool
	fold        int8 // the fold reason counted, -1 none
}

// maxAdmitEntries bounds a resource's cache (an array: a cache on the
// stack allocates nothing): distinct values beyond it ask the bound each
// time.
const maxAdmitEntries = 16

func (c *admitCache) reset() {
	clear(c.entries[:c.n])
	c.n = 0
}

func (c *admitCache) get(flag bool, name, value string) *admitEntry {
	for i := range c.entries[:c.n] {
		e := &c.entries[i]
		if e.value == value && e.name == name && e.flag == flag {
			return e
		}
	}
	return nil
}

func (c *admitCache) put(e admitEntry) {
	if c.n < maxAdmitEntries {
		c.entries[c.n] = e
		c.n++
	}
}

// foldOf is the fold reason counted between before and after, -1 none.
func foldOf(before, after []int64) int8 {
	for r := range after {
		if after[r] != before[r] {
			return int8(r)
		}
	}
	return -1
}
