package hf

import (
	"bytes"
	"encoding/binary"
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
// fields, each once, holding a string without control characters, or null.
// It calls item with each item's values in the order of fields ("" for
// absent or null; the slice is reused); item returns false to give up. ok
// is false when item gave up or the document has any other shape, even a
// valid one (a single object instead of a list, an unknown member, a
// number...): the tree path then reads it, so both agree on what they both
// read (FuzzFastList).
//
// The values are unquoted into one strings.Builder and handed out as
// substrings of it: no allocation per value (20,000 of them for
// getReturnRequests with 10,000 hosts), and nothing refers to data
// afterwards.
func fastList(data []byte, list string, fields []string, item func(vals []string) bool) (n int, ok bool) {
	// Duplicate members are checked here, per item, by bit.
	dec := jsontext.NewDecoder(bytes.NewBuffer(data), jsontext.AllowDuplicateNames(true))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return 0, false
	}
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '"' || tok.String() != list {
		return 0, false
	}
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '[' {
		return 0, false
	}
	// Without a backslash in the document no value has an escape, so
	// unquoting is dropping the quotes, and the only control character a
	// value can hold is a raw DEL (those below 0x20 must be escaped).
	plain := bytes.IndexByte(data, '\\') < 0 && bytes.IndexByte(data, 0x7f) < 0
	var text strings.Builder
	text.Grow(len(data) / 2)
	var scratch []byte
	vals := make([]string, len(fields))
	for dec.PeekKind() != ']' {
		if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
			return 0, false
		}
		clear(vals)
		seen := 0
		for dec.PeekKind() != '}' {
			name, err := dec.ReadToken()
			if err != nil {
				return 0, false
			}
			j := slices.Index(fields, name.String())
			if j < 0 || seen&(1<<j) != 0 {
				return 0, false
			}
			seen |= 1 << j
			v, err := dec.ReadValue()
			if err != nil {
				return 0, false
			}
			switch v.Kind() {
			case '"':
				raw := v[1 : len(v)-1]
				if !plain {
					if scratch, err = jsontext.AppendUnquote(scratch[:0], v); err != nil || hasControlBytes(scratch) {
						return 0, false
					}
					raw = scratch
				}
				// A Builder never changes what it holds: earlier
				// substrings stay valid as it grows.
				start := text.Len()
				text.Write(raw)
				vals[j] = text.String()[start:]
			case 'n':
			default:
				return 0, false
			}
		}
		if _, err := dec.ReadToken(); err != nil {
			return 0, false
		}
		if !item(vals) {
			return 0, false
		}
		n++
	}
	if _, err := dec.ReadToken(); err != nil { // ]
		return 0, false
	}
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '}' {
		return 0, false
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return 0, false
	}
	return n, true
}

// hasControlBytes reports whether b holds a control character (below 0x20,
// or 0x7f), eight bytes at a time.
func hasControlBytes(b []byte) bool {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	for len(b) >= 8 {
		x := binary.LittleEndian.Uint64(b)
		y := x ^ (0x7f * lo)
		// A byte below 0x20 or equal to 0x7f sets its high bit here (the
		// classic "has a byte less than n" test, and its n=1 case on y).
		if (x-0x20*lo)&^x&hi != 0 || (y-lo)&^y&hi != 0 {
			return true
		}
		b = b[8:]
	}
	for _, c := range b {
		if c < 0x20 || c == 0x7f {
			return true
		}
	}
	return false
}
