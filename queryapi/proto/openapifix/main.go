// Command openapifix completes the OpenAPI v2 document protoc-gen-openapiv2
// writes for changelens.v1 (`make proto` runs it on
// queryapi/gen/openapiv2/changelens/v1/query.swagger.json), so that the
// document states what the server enforces where the plugin cannot:
//
//   - responses declared for every operation get the headers their
//     annotation gives (the plugin keeps headers only on an operation's own
//     responses);
//   - query and path parameters get the limits of their field's
//     openapiv2_field annotation that the plugin keeps only in schemas
//     (minimum, maximum, exclusiveMinimum/Maximum, multipleOf, minLength,
//     maxLength), and a non-string default as its JSON value;
//   - an enum parameter lists the usual spellings the server's query parser
//     accepts besides the full names (queryapi/server/queryparser.go: the
//     name without the prefix, the number) and says the rest (any ASCII
//     case, the number as strconv.ParseInt reads it);
//   - a time parameter gets the RFC 3339 form Go parses and the range the
//     server accepts ([1970, 2100): queryapi/server/validate.go);
//   - POST /v1/gate's metadata gets its keys: the GET /v1/gate parameters
//     of the same names, with their rules (queryapi/server/gate.go);
//   - every property of a message an operation answers with is required:
//     the server's JSON emits unpopulated fields (null for an unset message
//     or time, which the proto marks x-nullable).
//
// The input order of keys is kept, so the committed document diffs cleanly.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2/options"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	pb "github.com/changelens/changelens/queryapi/gen/changelens/v1"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: openapifix query.swagger.json")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "openapifix:", err)
		os.Exit(1)
	}
}

func run(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	doc, err := decode(raw)
	if err != nil {
		return err
	}
	root, ok := doc.(*object)
	if !ok {
		return fmt.Errorf("%s: not a JSON object", path)
	}
	svc := pb.File_changelens_v1_query_proto.Services().ByName("QueryService")
	if svc == nil {
		return fmt.Errorf("no QueryService in the descriptor")
	}
	if err := addResponseHeaders(root); err != nil {
		return err
	}
	if err := fixParameters(root, svc); err != nil {
		return err
	}
	if err := fixWebhookMetadata(root); err != nil {
		return err
	}
	requireAnswerFields(root)
	out, err := json.MarshalIndent(root, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(out, '\n'), 0o644)
}

// addResponseHeaders adds the headers of the file-level responses to every
// operation's copy of them.
func addResponseHeaders(root *object) error {
	sw, ok := proto.GetExtension(pb.File_changelens_v1_query_proto.Options(), options.E_Openapiv2Swagger).(*options.Swagger)
	if !ok || sw == nil {
		return fmt.Errorf("no openapiv2_swagger option")
	}
	for code, resp := range sw.GetResponses() {
		if len(resp.GetHeaders()) == 0 {
			continue
		}
		headers := &object{}
		for _, name := range slices.Sorted(maps.Keys(resp.GetHeaders())) {
			h := resp.GetHeaders()[name]
			o := &object{}
			for _, kv := range [][2]string{{"description", h.GetDescription()}, {"type", h.GetType()}, {"format", h.GetFormat()}, {"pattern", h.GetPattern()}} {
				if kv[1] != "" {
					o.set(kv[0], kv[1])
				}
			}
			headers.set(name, o)
		}
		for _, p := range root.get("paths").(*object).vals {
			for _, op := range p.(*object).vals {
				if r, ok := lookup(op, "responses", code).(*object); ok && r.get("headers") == nil {
					r.set("headers", headers)
				}
			}
		}
	}
	return nil
}

// fixParameters completes every parameter bound to a request field.
func fixParameters(root *object, svc protoreflect.ServiceDescriptor) error {
	paths, _ := root.get("paths").(*object)
	if paths == nil {
		return fmt.Errorf("no paths")
	}
	for _, p := range paths.keys {
		ops := paths.get(p).(*object)
		for _, method := range ops.keys {
			op := ops.get(method).(*object)
			id, _ := op.get("operationId").(string)
			m := svc.Methods().ByName(protoreflect.Name(strings.TrimPrefix(id, string(svc.Name())+"_")))
			if m == nil {
				return fmt.Errorf("%s %s: operationId %q names no method", method, p, id)
			}
			params, _ := op.get("parameters").([]any)
			for _, v := range params {
				param := v.(*object)
				if param.get("in") == "body" {
					continue
				}
				name, _ := param.get("name").(string)
				fd := m.Input().Fields().ByName(protoreflect.Name(name))
				if fd == nil {
					return fmt.Errorf("%s %s: parameter %q is no field of %s", method, p, name, m.Input().FullName())
				}
				if err := fixParameter(param, fd); err != nil {
					return fmt.Errorf("%s %s: parameter %s: %w", method, p, name, err)
				}
			}
		}
	}
	return nil
}

func fixParameter(param *object, fd protoreflect.FieldDescriptor) error {
	if js, ok := proto.GetExtension(fd.Options(), options.E_Openapiv2Field).(*options.JSONSchema); ok && js != nil {
		// A plain 0 is the proto3 default and never reaches the descriptor;
		// the proto writes a lower bound of 0 as -0, which does.
		r := js.ProtoReflect()
		for _, k := range []struct {
			field, keyword string
		}{
			{"minimum", "minimum"}, {"maximum", "maximum"},
			{"exclusive_minimum", "exclusiveMinimum"}, {"exclusive_maximum", "exclusiveMaximum"},
			{"multiple_of", "multipleOf"}, {"min_length", "minLength"}, {"max_length", "maxLength"},
		} {
			f := r.Descriptor().Fields().ByName(protoreflect.Name(k.field))
			if !r.Has(f) {
				continue
			}
			switch v := r.Get(f).Interface().(type) {
			case float64:
				param.set(k.keyword, json.Number(strconv.FormatFloat(v+0, 'f', -1, 64))) // +0 turns -0 into 0
			case uint64:
				param.set(k.keyword, json.Number(strconv.FormatUint(v, 10)))
			case bool:
				param.set(k.keyword, v)
			}
		}
	}
	if def, ok := param.get("default").(string); ok && param.get("type") != "string" {
		if !json.Valid([]byte(def)) {
			return fmt.Errorf("default %q is not JSON", def)
		}
		param.set("default", json.RawMessage(def))
	}
	switch {
	case fd.Kind() == protoreflect.EnumKind:
		values, desc := enumSpellings(fd.Enum())
		param.set("enum", values)
		appendDescription(param, desc)
	case fd.Message() != nil && fd.Message().FullName() == "google.protobuf.Timestamp":
		param.set("pattern", timePattern)
		appendDescription(param, timeDescription)
	}
	return nil
}

// timePattern: what time.Parse(time.RFC3339Nano) reads (the gateway's
// parser) that a JSON Schema date-time also is, with a year the server
// accepts (validate.go: [1970, 2100) in UTC).
const (
	timePattern     = `^(19[7-9][0-9]|20[0-9]{2})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$`
	timeDescription = "RFC 3339 (2026-03-10T09:00:00Z, 2026-03-10T10:00:00.5+01:00), in [1970-01-01T00:00:00Z, 2100-01-01T00:00:00Z)."
)

// enumSpellings lists the spellings of an enum's values that queryparser.go
// accepts, for the parameter's enum: the full name, the name without the
// prefix in upper and in lower case, and the number. The parser also takes
// any other ASCII case and the number with a sign or leading zeros; a list
// cannot hold those, so desc says it. (A pattern could, but dashboards/ lints
// the Grafana queries against the enum lists.)
func enumSpellings(ed protoreflect.EnumDescriptor) (values []any, desc string) {
	prefix, _ := strings.CutSuffix(string(ed.Values().Get(0).Name()), "UNSPECIFIED")
	var full, upper, lower, numbers []any
	var short []string
	for i := range ed.Values().Len() {
		v := ed.Values().Get(i)
		name := string(v.Name())
		full = append(full, name)
		if s, ok := strings.CutPrefix(name, prefix); ok && prefix != "" {
			upper = append(upper, s)
			lower = append(lower, strings.ToLower(s))
			short = append(short, s)
		}
		numbers = append(numbers, strconv.Itoa(int(v.Number())))
	}
	values = slices.Concat(full, upper, lower, numbers)
	desc = "Given as the value's name"
	if prefix != "" {
		desc += " with or without the prefix " + prefix + " (" + strings.Join(short, ", ") + ")"
	}
	desc += ", in any ASCII case, or as its number (a sign and leading zeros allowed: +2, 002); nothing else. The list names the usual spellings."
	return values, desc
}

// webhookKeys are the metadata keys GateWebhook reads, by the GET /v1/gate
// parameter each stands for.
var webhookKeys = []string{"service", "environment", "version", "baseline_version"}

func fixWebhookMetadata(root *object) error {
	gate, _ := lookup(root, "paths", "/v1/gate", "get").(*object)
	md, _ := lookup(root, "definitions", "v1FlaggerWebhook", "properties", "metadata").(*object)
	if gate == nil || md == nil {
		return fmt.Errorf("no GET /v1/gate or v1FlaggerWebhook.metadata")
	}
	props := &object{}
	var required []any
	for _, key := range webhookKeys {
		var param *object
		for _, v := range gate.get("parameters").([]any) {
			if p := v.(*object); p.get("name") == key {
				param = p
			}
		}
		if param == nil {
			return fmt.Errorf("GET /v1/gate has no parameter %s", key)
		}
		schema := &object{}
		for _, k := range param.keys {
			switch k {
			case "name", "in", "required":
			case "x-example": // a parameter's example is a schema's example
				schema.set("example", param.get(k))
			default:
				schema.set(k, param.get(k))
			}
		}
		props.set(key, schema)
		if param.get("required") == true {
			required = append(required, key)
		}
	}
	md.set("properties", props)
	md.set("required", required)
	return nil
}

// requireAnswerFields marks every property of the definitions reachable from
// a response as required.
func requireAnswerFields(root *object) {
	defs, _ := root.get("definitions").(*object)
	seen := map[string]bool{}
	var visit func(v any)
	visit = func(v any) {
		switch v := v.(type) {
		case *object:
			if ref, ok := v.get("$ref").(string); ok {
				name := strings.TrimPrefix(ref, "#/definitions/")
				if def, ok := defs.get(name).(*object); ok && !seen[name] {
					seen[name] = true
					visit(def)
				}
			}
			for _, k := range v.keys {
				visit(v.get(k))
			}
		case []any:
			for _, e := range v {
				visit(e)
			}
		}
	}
	for _, p := range root.get("paths").(*object).vals {
		for _, op := range p.(*object).vals {
			visit(op.(*object).get("responses"))
		}
	}
	for _, name := range defs.keys {
		def := defs.get(name).(*object)
		props, _ := def.get("properties").(*object)
		// protobufAny's one property, @type, is always there too, but its
		// other members are the packed message's: it stays open.
		if !seen[name] || props == nil || name == "protobufAny" {
			continue
		}
		required := make([]any, len(props.keys))
		for i, k := range props.keys {
			required[i] = k
		}
		def.set("required", required)
	}
}

// appendDescription adds a paragraph once, so running openapifix twice on a
// document changes nothing.
func appendDescription(o *object, para string) {
	switch d := str(o.get("description")); {
	case d == "":
		o.set("description", para)
	case !strings.Contains(d, para):
		o.set("description", d+"\n\n"+para)
	}
}

func lookup(v any, keys ...string) any {
	for _, k := range keys {
		o, ok := v.(*object)
		if !ok {
			return nil
		}
		v = o.get(k)
	}
	return v
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// object is a JSON object that keeps the order of its keys.
type object struct {
	keys []string
	vals map[string]any
}

func (o *object) get(k string) any { return o.vals[k] }

func (o *object) set(k string, v any) {
	if o.vals == nil {
		o.vals = map[string]any{}
	}
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
}

func (o *object) del(k string) {
	if _, ok := o.vals[k]; ok {
		delete(o.vals, k)
		o.keys = slices.DeleteFunc(o.keys, func(s string) bool { return s == k })
	}
}

func (o *object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		vb, err := json.Marshal(o.vals[k])
		if err != nil {
			return nil, err
		}
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func decode(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return decodeValue(dec)
}

func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		o := &object{vals: map[string]any{}}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			v, err := decodeValue(dec)
			if err != nil {
				return nil, err
			}
			o.set(kt.(string), v)
		}
		_, err := dec.Token()
		return o, err
	case json.Delim('['):
		a := []any{}
		for dec.More() {
			v, err := decodeValue(dec)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		_, err := dec.Token()
		return a, err
	}
	return tok, nil
}
