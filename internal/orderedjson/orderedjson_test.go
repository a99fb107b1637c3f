package orderedjson

import (
	"encoding/json"
	"testing"
)

// TestRoundTrip: key order and number text survive decoding and writing;
// edits change only what they touch.
func TestRoundTrip(t *testing.T) {
	const doc = `{"z":1.50,"a":{"y":[1,{"b":true,"a":null}],"x":"s"},"m":-0}`
	v, err := Decode([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(v)
	if err != nil || string(out) != doc {
		t.Fatalf("round trip %s, %v; want %s", out, err, doc)
	}
	root := v.(*Object)
	if s := Lookup(root, "a", "x"); s != "s" {
		t.Errorf("lookup a.x = %v", s)
	}
	if Lookup(root, "a", "x", "deeper") != nil || Lookup(root, "nope") != nil {
		t.Error("lookup through a non-object or a missing key is not nil")
	}
	root.Del("a")
	root.Set("n", "new")
	root.Set("z", 2)
	out, _ = json.Marshal(root)
	if want := `{"z":2,"m":-0,"n":"new"}`; string(out) != want {
		t.Errorf("edited %s, want %s", out, want)
	}
	if len(root.Keys()) != 3 || root.Values()[2] != "new" {
		t.Errorf("keys %v values %v", root.Keys(), root.Values())
	}
	var zero Object
	zero.Set("k", 1)
	if out, _ := json.Marshal(&zero); string(out) != `{"k":1}` {
		t.Errorf("zero object %s", out)
	}
	if _, err := Decode([]byte(`{} {}`)); err == nil {
		t.Error("trailing data accepted")
	}
}
