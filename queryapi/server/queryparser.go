package server

import (
	"net/url"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// enumQueryParser is grpc-gateway's default query parser, except that an enum
// value may be given without its prefix and in any case: group_by=version,
// interval=DAY and interval=INTERVAL_DAY are the same. docs/api.md names the
// values without prefix (group_by none/version/operation, interval
// DAY/WEEK/MONTH/ALL), and Grafana panels are easier to write that way.
// Anything that still is no value of the enum is left for the default parser,
// which also takes the value's number and rejects the rest (400). The
// OpenAPI document lists the usual spellings and says this rule in words
// (queryapi/proto/openapifix); the case folding is ASCII only and nothing is
// trimmed, so that those words are the whole rule (no Unicode case mappings
// such as ſ → S, no spaces).
type enumQueryParser struct{ runtime.DefaultQueryParser }

func (p *enumQueryParser) Parse(msg proto.Message, values url.Values, filter *utilities.DoubleArray) error {
	fields := msg.ProtoReflect().Descriptor().Fields()
	var normalized url.Values
	for key, vals := range values {
		fd := fields.ByName(protoreflect.Name(key))
		if fd == nil {
			fd = fields.ByJSONName(key)
		}
		if fd == nil || fd.Kind() != protoreflect.EnumKind {
			continue
		}
		if normalized == nil {
			normalized = make(url.Values, len(values))
			for k, v := range values {
				normalized[k] = v
			}
		}
		out := make([]string, len(vals))
		for i, v := range vals {
			out[i] = enumValueName(fd.Enum(), v)
		}
		normalized[key] = out
	}
	if normalized != nil {
		values = normalized
	}
	return p.DefaultQueryParser.Parse(msg, values, filter)
}

// enumValueName maps v to the full name of a value of ed when it is one
// without prefix or in another case; otherwise it returns v unchanged.
func enumValueName(ed protoreflect.EnumDescriptor, v string) string {
	if ed.Values().ByName(protoreflect.Name(v)) != nil {
		return v
	}
	upper := asciiUpper(v)
	if ed.Values().ByName(protoreflect.Name(upper)) != nil {
		return upper
	}
	// The prefix is the zero value's name less "UNSPECIFIED": GROUP_BY_.
	zero := string(ed.Values().Get(0).Name())
	if prefix, ok := strings.CutSuffix(zero, "UNSPECIFIED"); ok && upper != "" {
		if ed.Values().ByName(protoreflect.Name(prefix+upper)) != nil {
			return prefix + upper
		}
	}
	return v
}

func asciiUpper(s string) string {
	return strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' {
			return r - ('a' - 'A')
		}
		return r
	}, s)
}
