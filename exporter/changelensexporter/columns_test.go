package changelensexporter

import (
	"reflect"
	"testing"

	"github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
)

// TestFillColumnFastPath: with the pinned clickhouse-go every column type
// the exporter writes (but arrays and LowCardinality) is filled directly,
// and a filled column reads back what was set.
func TestFillColumnFastPath(t *testing.T) {
	for _, c := range []any{&column.String{}, &column.FixedString{}, &column.UInt8{}, &column.UInt16{},
		&column.UInt64{}, &column.Int64{}, &column.Float64{}, &column.DateTime{}} {
		if _, ok := protoColFields[reflect.TypeOf(c)]; !ok {
			t.Errorf("%T: no proto column field of the expected type; the exporter appends row by row", c)
		}
	}
	var s colScratch
	str := &column.String{}
	if !fillColumn(str, []string{"a", "", "bcd"}, &s) || str.Rows() != 3 || str.Row(2, false) != "bcd" || str.Row(1, false) != "" {
		t.Errorf("String: rows %d", str.Rows())
	}
	// reused buffers: a second fill of a new column sees only its own rows
	str2 := &column.String{}
	if !fillColumn(str2, []string{"x"}, &s) || str2.Rows() != 1 || str2.Row(0, false) != "x" {
		t.Errorf("String (reused): rows %d", str2.Rows())
	}
	u := &column.UInt64{}
	if !fillColumn(u, []uint64{7, 8}, &s) || u.Rows() != 2 || u.Row(1, false) != uint64(8) {
		t.Errorf("UInt64: rows %d", u.Rows())
	}
	if fillColumn(u, []uint64{1}, &s) {
		t.Error("a column holding rows must not be filled")
	}
	if fillColumn(&column.Int64{}, []uint64{1}, &s) {
		t.Error("a value of another type must not be filled")
	}
	dt := &column.DateTime{}
	if !fillColumn(dt, []int64{1700000000, 1700000001}, &s) || dt.Rows() != 2 {
		t.Errorf("DateTime: rows %d", dt.Rows())
	}
	var views [][]byte
	packed := []byte("0123456789abcdefFEDCBA9876543210")
	f := fixed(packed, 16, &views)
	p := protoCol[proto.ColFixedStr](&column.FixedString{})
	if p == nil {
		t.Fatal("FixedString: no proto column")
	}
	fs := &column.FixedString{}
	if !fillColumn(fs, f, &s) || fs.Rows() != 2 {
		t.Errorf("FixedString: rows %d", fs.Rows())
	}
}

// TestFillStringArray: an Array(String) column filled directly encodes to
// the bytes clickhouse-go's Append makes of the same rows, and so does the
// FixedString(8) column of a look-up's external table.
func TestFillStringArray(t *testing.T) {
	if !arrayLayout.ok {
		t.Fatal("column.Array: fields not as expected; cohort columns are appended row by row")
	}
	rows := [][]string{{}, {"flag.a", "flag.b"}, nil, {""}, {"x"}}
	newCol := func(typ string) column.Interface {
		c, err := column.Type(typ).Column("c", nil)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	encoded := func(c column.Interface) []byte {
		var buf proto.Buffer
		c.Encode(&buf)
		return buf.Buf
	}
	for round := range 2 { // the second reuses the scratch buffers
		var s colScratch
		if round == 1 {
			s.flat = make([]string, 0, 1)
			s.offsets = []uint64{99}
		}
		fast, slow := newCol("Array(String)"), newCol("Array(String)")
		if !fillColumn(fast, rows, &s) {
			t.Fatal("Array(String) not filled")
		}
		if _, err := slow.Append(rows); err != nil {
			t.Fatal(err)
		}
		if fast.Rows() != len(rows) || len(encoded(slow)) == 0 || !reflect.DeepEqual(encoded(fast), encoded(slow)) {
			t.Errorf("Array(String): %d rows, %x, want %x", fast.Rows(), encoded(fast), encoded(slow))
		}
		for _, x := range s.flat[:cap(s.flat)] {
			if x != "" {
				t.Fatal("the gathered elements are kept after the fill")
			}
		}
		if fillColumn(fast, rows, &s) {
			t.Error("an array column holding rows must not be filled")
		}
	}
	packed := []byte("abcdefgh01234567")
	fast, slow := newCol("FixedString(8)"), newCol("FixedString(8)")
	var s colScratch
	if !fillColumn(fast, fixedColumn{packed: packed, width: 8}, &s) {
		t.Fatal("FixedString(8) not filled")
	}
	if _, err := slow.Append([]string{"abcdefgh", "01234567"}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(encoded(fast), encoded(slow)) {
		t.Errorf("FixedString(8): %x, want %x", encoded(fast), encoded(slow))
	}
}
