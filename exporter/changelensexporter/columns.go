package changelensexporter

import (
	"reflect"
	"unsafe"

	"github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
)

// Filling a batch's columns directly.
//
// clickhouse-go appends a column's values one row at a time into a column
// it creates empty for every batch: every insert regrows each column by
// doubling (most of the exporter's CPU, with the garbage it makes), and
// allocates a null mask per column. The columns it creates are its own
// types wrapping ch-go's proto columns in an unexported field col. Where
// that field is what this file expects (checked once, by reflection, for
// each column type), fillColumn sets the proto column from the encoder's
// columns at once: numbers and FixedString IDs without a copy (the batch
// is sent, or dropped, before the encoder is reused), strings copied once
// into a buffer the encoder keeps across batches. Anything else, or a
// clickhouse-go whose types differ, takes clickhouse-go's Append; the
// bytes sent are the same either way (TestFillColumnFastPath checks the
// fast path is taken with the pinned clickhouse-go).

// protoColFields maps a clickhouse-go column type (a pointer) to the offset
// and type of its proto column field, for the types whose field has the
// expected type.
var protoColFields = func() map[reflect.Type]protoColField {
	m := map[reflect.Type]protoColField{}
	for _, c := range []struct {
		col   any
		proto reflect.Type
	}{
		{column.String{}, reflect.TypeFor[proto.ColStr]()},
		{column.FixedString{}, reflect.TypeFor[proto.ColFixedStr]()},
		{column.UInt8{}, reflect.TypeFor[proto.ColUInt8]()},
		{column.UInt16{}, reflect.TypeFor[proto.ColUInt16]()},
		{column.UInt64{}, reflect.TypeFor[proto.ColUInt64]()},
		{column.Int64{}, reflect.TypeFor[proto.ColInt64]()},
		{column.Float64{}, reflect.TypeFor[proto.ColFloat64]()},
		{column.DateTime{}, reflect.TypeFor[proto.ColDateTime]()},
	} {
		t := reflect.TypeOf(c.col)
		if f, ok := t.FieldByName("col"); ok && f.Type == c.proto {
			m[reflect.PointerTo(t)] = protoColField{f.Offset, c.proto}
		}
	}
	return m
}()

type protoColField struct {
	offset uintptr
	typ    reflect.Type
}

// protoCol is c's proto column if it is a P, else nil.
func protoCol[P any](c column.Interface) *P {
	f, ok := protoColFields[reflect.TypeOf(c)]
	if !ok || f.typ != reflect.TypeFor[P]() {
		return nil
	}
	v := reflect.ValueOf(c)
	if v.IsNil() {
		return nil
	}
	return (*P)(unsafe.Add(v.UnsafePointer(), f.offset))
}

// fixedColumn is a FixedString(width) column packed in one buffer; views
// holds its rows as slices for clickhouse-go's Append when the fast path
// is not taken.
type fixedColumn struct {
	packed []byte
	width  int
	views  *[][]byte
}

// colScratch are one column's buffers kept across batches.
type colScratch struct {
	str proto.ColStr
	dt  []proto.DateTime
	// An Array(String) column's offsets, and its elements gathered (only
	// while it is filled: they point into the exported pdata).
	offsets []uint64
	flat    []string
}

// arrayLayout locates, in clickhouse-go's Array column, what an
// Array(String) is made of: its depth, its element column and its
// offsets' UInt64 column. Array(String) is the cohort columns' type, and
// clickhouse-go appends it through reflection, row by row and element by
// element (a fifth of the exporter's push with cohorts empty on every
// row, when first measured). ok is false when the fields are not the
// expected ones; then the driver appends, as before.
var arrayLayout = func() (l struct {
	depth, values, offsets, offsetValues uintptr
	ok                                   bool
},
) {
	t := reflect.TypeFor[column.Array]()
	d, ok1 := t.FieldByName("depth")
	v, ok2 := t.FieldByName("values")
	o, ok3 := t.FieldByName("offsets")
	if !ok1 || !ok2 || !ok3 || d.Type != reflect.TypeFor[int]() || v.Type != reflect.TypeFor[column.Interface]() ||
		o.Type.Kind() != reflect.Slice || o.Type.Elem().Kind() != reflect.Pointer || o.Type.Elem().Elem().Kind() != reflect.Struct {
		return l
	}
	ov, ok := o.Type.Elem().Elem().FieldByName("values")
	if !ok || ov.Type != reflect.TypeFor[column.UInt64]() {
		return l
	}
	l.depth, l.values, l.offsets, l.offsetValues, l.ok = d.Offset, v.Offset, o.Offset, ov.Offset, true
	return l
}()

// fillStringArray sets the empty Array(String) column c to v.
func fillStringArray(c *column.Array, v [][]string, s *colScratch) bool {
	if !arrayLayout.ok || c == nil {
		return false
	}
	base := unsafe.Pointer(c)
	if *(*int)(unsafe.Add(base, arrayLayout.depth)) != 1 {
		return false
	}
	offsets := *(*[]unsafe.Pointer)(unsafe.Add(base, arrayLayout.offsets))
	if len(offsets) != 1 || offsets[0] == nil {
		return false
	}
	off := protoCol[proto.ColUInt64]((*column.UInt64)(unsafe.Add(offsets[0], arrayLayout.offsetValues)))
	values := *(*column.Interface)(unsafe.Add(base, arrayLayout.values))
	if off == nil || len(*off) != 0 || values == nil || values.Rows() != 0 {
		return false
	}
	flat, ends := s.flat[:0], s.offsets[:0]
	for _, row := range v {
		flat = append(flat, row...)
		ends = append(ends, uint64(len(flat)))
	}
	filled := fillColumn(values, flat, s)
	clear(flat)
	s.flat, s.offsets = flat, ends
	if !filled {
		return false
	}
	*off = ends
	return true
}

// fillColumn sets the empty batch column c to v and reports whether it did;
// false: the caller appends v through clickhouse-go.
func fillColumn(c column.Interface, v any, s *colScratch) bool {
	if c.Rows() != 0 {
		return false
	}
	switch v := v.(type) {
	case [][]string:
		a, _ := c.(*column.Array)
		return fillStringArray(a, v, s)
	case []string:
		p := protoCol[proto.ColStr](c)
		if p == nil {
			return false
		}
		n := 0
		for _, x := range v {
			n += len(x)
		}
		buf, pos := s.str.Buf[:0], s.str.Pos[:0]
		if cap(buf) < n {
			buf = make([]byte, 0, n+n/4)
		}
		if cap(pos) < len(v) {
			pos = make([]proto.Position, 0, len(v)+len(v)/4)
		}
		for _, x := range v {
			start := len(buf)
			buf = append(buf, x...)
			pos = append(pos, proto.Position{Start: start, End: len(buf)})
		}
		s.str.Buf, s.str.Pos = buf, pos
		*p = s.str
	case fixedColumn:
		p := protoCol[proto.ColFixedStr](c)
		if p == nil || (p.Size != 0 && p.Size != v.width) || len(v.packed)%v.width != 0 {
			return false
		}
		p.Buf, p.Size = v.packed, v.width
	case []uint8:
		p := protoCol[proto.ColUInt8](c)
		if p == nil {
			return false
		}
		*p = v
	case []uint16:
		p := protoCol[proto.ColUInt16](c)
		if p == nil {
			return false
		}
		*p = v
	case []uint64:
		p := protoCol[proto.ColUInt64](c)
		if p == nil {
			return false
		}
		*p = v
	case []float64:
		p := protoCol[proto.ColFloat64](c)
		if p == nil {
			return false
		}
		*p = v
	case []int64:
		// Int64 columns, or DateTime from unix seconds (as Append reads them).
		if p := protoCol[proto.ColInt64](c); p != nil {
			*p = v
			return true
		}
		p := protoCol[proto.ColDateTime](c)
		if p == nil {
			return false
		}
		dt := s.dt[:0]
		if cap(dt) < len(v) {
			dt = make([]proto.DateTime, 0, len(v)+len(v)/4)
		}
		for _, sec := range v {
			dt = append(dt, proto.DateTime(uint32(sec)))
		}
		s.dt = dt
		p.Data = dt
	default:
		return false
	}
	return true
}
