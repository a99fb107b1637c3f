// Package orderedjson decodes and writes JSON keeping every object's key
// order and every number's text, so a document edited in Go (the OpenAPI
// document: post-processed by queryapi/proto/openapifix, stripped of
// security by the server when auth is off) changes only where it was
// edited.
package orderedjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
)

// Object is a JSON object that keeps the order of its keys. The zero value
// is an empty object.
type Object struct {
	keys []string
	vals map[string]any
}

// Get is the value of k, nil when absent.
func (o *Object) Get(k string) any { return o.vals[k] }

// Set sets k, appending it when new.
func (o *Object) Set(k string, v any) {
	if o.vals == nil {
		o.vals = map[string]any{}
	}
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
}

// Del removes k.
func (o *Object) Del(k string) {
	if _, ok := o.vals[k]; ok {
		delete(o.vals, k)
		o.keys = slices.DeleteFunc(o.keys, func(s string) bool { return s == k })
	}
}

// Keys are the keys in order.
func (o *Object) Keys() []string { return o.keys }

// Values are the values in key order.
func (o *Object) Values() []any {
	out := make([]any, len(o.keys))
	for i, k := range o.keys {
		out[i] = o.vals[k]
	}
	return out
}

// MarshalJSON writes the keys in order.
func (o *Object) MarshalJSON() ([]byte, error) {
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

// Lookup follows keys through nested objects; nil when a step is missing or
// not an object.
func Lookup(v any, keys ...string) any {
	for _, k := range keys {
		o, ok := v.(*Object)
		if !ok {
			return nil
		}
		v = o.Get(k)
	}
	return v
}

// Decode decodes one JSON document with objects as *Object and numbers as
// json.Number (written back as they were).
func Decode(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err == nil {
		return nil, errors.New("orderedjson: trailing data after the document")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		o := &Object{vals: map[string]any{}}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			v, err := decodeValue(dec)
			if err != nil {
				return nil, err
			}
			o.Set(kt.(string), v)
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
