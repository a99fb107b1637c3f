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
//   - the properties of messages get the numeric limits of their field's
//     annotation the plugin drops (a lower bound of 0: the proto writes -0),
//     and the time of a definition POSTed (an experiment's start_time) the
//     time pattern and range, so a body the document calls valid is one
//     the server accepts;
//   - POST /v1/gate's metadata gets its keys: the GET /v1/gate parameters
//     of the same names, with their rules (queryapi/server/gate.go);
//   - every property of a message an operation answers with is required:
//     the server's JSON emits unpopulated fields (null for an unset message
//     or time, which the proto marks x-nullable).
//
// The input order of keys is kept, so the committed document diffs cleanly.
package main

import (
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

	"github.com/changelens/changelens/internal/orderedjson"
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
	doc, err := orderedjson.Decode(raw)
	if err != nil {
		return err
	}
	root, ok := doc.(*orderedjson.Object)
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
	if err := fixDefinitionLimits(root); err != nil {
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
func addResponseHeaders(root *orderedjson.Object) error {
	sw, ok := proto.GetExtension(pb.File_changelens_v1_query_proto.Options(), options.E_Openapiv2Swagger).(*options.Swagger)
	if !ok || sw == nil {
		return fmt.Errorf("no openapiv2_swagger option")
	}
	for code, resp := range sw.GetResponses() {
		if len(resp.GetHeaders()) == 0 {
			continue
		}
		headers := &orderedjson.Object{}
		for _, name := range slices.Sorted(maps.Keys(resp.GetHeaders())) {
			h := resp.GetHeaders()[name]
			o := &orderedjson.Object{}
			for _, kv := range [][2]string{{"description", h.GetDescription()}, {"type", h.GetType()}, {"format", h.GetFormat()}, {"pattern", h.GetPattern()}} {
				if kv[1] != "" {
					o.Set(kv[0], kv[1])
				}
			}
			headers.Set(name, o)
		}
		for _, p := range root.Get("paths").(*orderedjson.Object).Values() {
			for _, op := range p.(*orderedjson.Object).Values() {
				if r, ok := orderedjson.Lookup(op, "responses", code).(*orderedjson.Object); ok && r.Get("headers") == nil {
					r.Set("headers", headers)
				}
			}
		}
	}
	return nil
}

// fixParameters completes every parameter bound to a request field.
func fixParameters(root *orderedjson.Object, svc protoreflect.ServiceDescriptor) error {
	paths, _ := root.Get("paths").(*orderedjson.Object)
	if paths == nil {
		return fmt.Errorf("no paths")
	}
	for _, p := range paths.Keys() {
		ops := paths.Get(p).(*orderedjson.Object)
		for _, method := range ops.Keys() {
			op := ops.Get(method).(*orderedjson.Object)
			id, _ := op.Get("operationId").(string)
			m := svc.Methods().ByName(protoreflect.Name(strings.TrimPrefix(id, string(svc.Name())+"_")))
			if m == nil {
				return fmt.Errorf("%s %s: operationId %q names no method", method, p, id)
			}
			params, _ := op.Get("parameters").([]any)
			for _, v := range params {
				param := v.(*orderedjson.Object)
				if param.Get("in") == "body" {
					continue
				}
				name, _ := param.Get("name").(string)
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

func fixParameter(param *orderedjson.Object, fd protoreflect.FieldDescriptor) error {
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
				param.Set(k.keyword, json.Number(strconv.FormatFloat(v+0, 'f', -1, 64))) // +0 turns -0 into 0
			case uint64:
				param.Set(k.keyword, json.Number(strconv.FormatUint(v, 10)))
			case bool:
				param.Set(k.keyword, v)
			}
		}
	}
	if def, ok := param.Get("default").(string); ok && param.Get("type") != "string" {
		if !json.Valid([]byte(def)) {
			return fmt.Errorf("default %q is not JSON", def)
		}
		param.Set("default", json.RawMessage(def))
	}
	switch {
	case fd.Kind() == protoreflect.EnumKind:
		values, desc := enumSpellings(fd.Enum())
		param.Set("enum", values)
		appendDescription(param, desc)
	case fd.Message() != nil && fd.Message().FullName() == "google.protobuf.Timestamp":
		param.Set("pattern", timePattern)
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
	// bodyTimePattern: a time in a JSON body is read by protojson, which
	// takes at most nine fractional digits (nanoseconds); the query
	// parameters' parser takes any number.
	bodyTimePattern = `^(19[7-9][0-9]|20[0-9]{2})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$`
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

func fixWebhookMetadata(root *orderedjson.Object) error {
	gate, _ := orderedjson.Lookup(root, "paths", "/v1/gate", "get").(*orderedjson.Object)
	md, _ := orderedjson.Lookup(root, "definitions", "v1FlaggerWebhook", "properties", "metadata").(*orderedjson.Object)
	if gate == nil || md == nil {
		return fmt.Errorf("no GET /v1/gate or v1FlaggerWebhook.metadata")
	}
	props := &orderedjson.Object{}
	var required []any
	for _, key := range webhookKeys {
		var param *orderedjson.Object
		for _, v := range gate.Get("parameters").([]any) {
			if p := v.(*orderedjson.Object); p.Get("name") == key {
				param = p
			}
		}
		if param == nil {
			return fmt.Errorf("GET /v1/gate has no parameter %s", key)
		}
		schema := &orderedjson.Object{}
		for _, k := range param.Keys() {
			switch k {
			case "name", "in", "required":
			case "x-example": // a parameter's example is a schema's example
				schema.Set("example", param.Get(k))
			default:
				schema.Set(k, param.Get(k))
			}
		}
		props.Set(key, schema)
		if param.Get("required") == true {
			required = append(required, key)
		}
	}
	md.Set("properties", props)
	md.Set("required", required)
	return nil
}

// requireAnswerFields marks every property of the definitions reachable from
// a response as required.
func requireAnswerFields(root *orderedjson.Object) {
	defs, _ := root.Get("definitions").(*orderedjson.Object)
	seen := map[string]bool{}
	var visit func(v any)
	visit = func(v any) {
		switch v := v.(type) {
		case *orderedjson.Object:
			if ref, ok := v.Get("$ref").(string); ok {
				name := strings.TrimPrefix(ref, "#/definitions/")
				if def, ok := defs.Get(name).(*orderedjson.Object); ok && !seen[name] {
					seen[name] = true
					visit(def)
				}
			}
			for _, k := range v.Keys() {
				visit(v.Get(k))
			}
		case []any:
			for _, e := range v {
				visit(e)
			}
		}
	}
	for _, p := range root.Get("paths").(*orderedjson.Object).Values() {
		for _, op := range p.(*orderedjson.Object).Values() {
			visit(op.(*orderedjson.Object).Get("responses"))
		}
	}
	for _, name := range defs.Keys() {
		def := defs.Get(name).(*orderedjson.Object)
		props, _ := def.Get("properties").(*orderedjson.Object)
		// protobufAny's one property, @type, is always there too, but its
		// other members are the packed message's: it stays open.
		if !seen[name] || props == nil || name == "protobufAny" {
			continue
		}
		required := make([]any, len(props.Keys()))
		for i, k := range props.Keys() {
			required[i] = k
		}
		def.Set("required", required)
	}
}

// appendDescription adds a paragraph once, so running openapifix twice on a
// document changes nothing.
func appendDescription(o *orderedjson.Object, para string) {
	switch d := str(o.Get("description")); {
	case d == "":
		o.Set("description", para)
	case !strings.Contains(d, para):
		o.Set("description", d+"\n\n"+para)
	}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// bodyTimes are the times of request bodies, which the server checks as it
// checks time parameters.
var bodyTimes = map[string]bool{"changelens.v1.Experiment.start_time": true}

// fixDefinitionLimits gives each definition's properties the limits their
// fields' annotations state.
func fixDefinitionLimits(root *orderedjson.Object) error {
	defs, _ := root.Get("definitions").(*orderedjson.Object)
	if defs == nil {
		return fmt.Errorf("no definitions")
	}
	msgs := pb.File_changelens_v1_query_proto.Messages()
	for _, name := range defs.Keys() {
		md := msgs.ByName(protoreflect.Name(strings.TrimPrefix(name, "v1")))
		if md == nil || !strings.HasPrefix(name, "v1") {
			continue
		}
		props, _ := defs.Get(name).(*orderedjson.Object).Get("properties").(*orderedjson.Object)
		if props == nil {
			continue
		}
		for _, pn := range props.Keys() {
			fd := md.Fields().ByName(protoreflect.Name(pn))
			prop, _ := props.Get(pn).(*orderedjson.Object)
			if fd == nil || prop == nil || fd.IsList() {
				continue
			}
			if fd.Kind() == protoreflect.DoubleKind || fd.Kind() == protoreflect.FloatKind {
				if err := fixParameter(prop, fd); err != nil {
					return fmt.Errorf("%s.%s: %w", name, pn, err)
				}
			}
			if bodyTimes[string(fd.FullName())] {
				prop.Set("pattern", bodyTimePattern)
				appendDescription(prop, timeDescription)
			}
		}
	}
	return nil
}
