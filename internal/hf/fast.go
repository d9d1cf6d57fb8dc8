package hf

import (
	"bytes"
	"encoding/json"
	"io"
	"slices"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
)

// fastObject decodes a well-formed HF document in one pass of jsontext's
// tokenizer (strict: duplicate names and invalid UTF-8 are errors) into the
// same tree the walker builds. It reports false for anything it does not
// accept as is: a syntax error, a duplicate key, nesting deeper than
// MaxDepth, a NUL character, trailing data or a top-level non-object.
// decodeObject then runs the reference path, which says exactly what is
// wrong; on well-formed documents the two agree (FuzzFastObject).
//
// It exists for the large documents: getReturnRequests with every host HF
// holds is ~800 KB at 10,000 machines, which encoding/json's Token walker
// took ~25 ms to read.
func fastObject(data []byte) (map[string]any, bool) {
	// A *bytes.Buffer is read in place, without copying the document.
	dec := jsontext.NewDecoder(bytes.NewBuffer(data))
	if dec.PeekKind() != '{' {
		return nil, false
	}
	v, ok := fastValue(dec, 0)
	if !ok {
		return nil, false
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return nil, false
	}
	m, _ := v.(map[string]any)
	return m, true
}

func fastValue(dec *jsontext.Decoder, depth int) (any, bool) {
	tok, err := dec.ReadToken()
	if err != nil {
		return nil, false
	}
	switch tok.Kind() {
	case '{':
		if depth+1 > MaxDepth {
			return nil, false
		}
		m := make(map[string]any, 2)
		for dec.PeekKind() != '}' {
			kt, err := dec.ReadToken() // jsontext checks names are strings, once each
			if err != nil {
				return nil, false
			}
			k := kt.String()
			if strings.IndexByte(k, 0) >= 0 {
				return nil, false
			}
			v, ok := fastValue(dec, depth+1)
			if !ok {
				return nil, false
			}
			m[k] = v
		}
		if _, err := dec.ReadToken(); err != nil {
			return nil, false
		}
		return m, true
	case '[':
		if depth+1 > MaxDepth {
			return nil, false
		}
		a := []any{}
		for dec.PeekKind() != ']' {
			v, ok := fastValue(dec, depth+1)
			if !ok {
				return nil, false
			}
			a = append(a, v)
		}
		if _, err := dec.ReadToken(); err != nil {
			return nil, false
		}
		return a, true
	case '"':
		s := tok.String()
		if strings.IndexByte(s, 0) >= 0 {
			return nil, false
		}
		return s, true
	case '0':
		return json.Number(tok.String()), true
	case 't':
		return true, true
	case 'f':
		return false, true
	case 'n':
		return nil, true
	}
	return nil, false
}

// fastList reads the common shape of the large documents,
//
//	{"<list>": [{"<field>": "..." or null, ...}, ...]}
//
// without building maps: each item an object whose members are among
// fields, each once, holding a string (without NUL) or null. vals holds
// item i's field j at i*len(fields)+j ("" for absent or null), and n is the
// number of items. ok is false for any other shape, even a valid one (a
// single object instead of a list, an unknown member, a number...): the
// tree path then reads the document, so both agree on what they both read
// (FuzzFastList).
func fastList(data []byte, list string, fields []string) (vals []string, n int, ok bool) {
	// Duplicate members are checked here, per item, by bit.
	dec := jsontext.NewDecoder(bytes.NewBuffer(data), jsontext.AllowDuplicateNames(true))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return nil, 0, false
	}
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '"' || tok.String() != list {
		return nil, 0, false
	}
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '[' {
		return nil, 0, false
	}
	// One '{' per item (and the document's own): sized once, not grown.
	vals = make([]string, 0, bytes.Count(data, []byte{'{'})*len(fields))
	for dec.PeekKind() != ']' {
		if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
			return nil, 0, false
		}
		base := len(vals)
		for range fields {
			vals = append(vals, "")
		}
		seen := 0
		for dec.PeekKind() != '}' {
			name, err := dec.ReadToken()
			if err != nil {
				return nil, 0, false
			}
			j := slices.Index(fields, name.String())
			if j < 0 || seen&(1<<j) != 0 {
				return nil, 0, false
			}
			seen |= 1 << j
			v, err := dec.ReadToken()
			if err != nil {
				return nil, 0, false
			}
			switch v.Kind() {
			case '"':
				s := v.String()
				if strings.IndexByte(s, 0) >= 0 {
					return nil, 0, false
				}
				vals[base+j] = s
			case 'n':
			default:
				return nil, 0, false
			}
		}
		if _, err := dec.ReadToken(); err != nil {
			return nil, 0, false
		}
		n++
	}
	if _, err := dec.ReadToken(); err != nil { // ]
		return nil, 0, false
	}
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '}' {
		return nil, 0, false
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return nil, 0, false
	}
	return vals, n, true
}
