package hf

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"math/bits"
	"strings"
	"unicode/utf8"

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
// fields, each once, holding a string without escapes or control
// characters, or null. It calls item with each item's values in the order
// of fields ("" for absent or null; the slice is reused); item returns
// false to give up. ok is false when item gave up or the document is
// anything else, even valid JSON (a single object instead of a list, an
// unknown member, a number, an escape...): the tree path then reads it, so
// both agree on what they both read (FuzzFastList).
//
// The values are copied into one strings.Builder and handed out as
// substrings of it: no allocation per value, and nothing refers to data
// afterwards. scanList is the same without the copy.
func fastList(data []byte, list string, fields []string, item func(vals []string) bool) (n int, ok bool) {
	var text strings.Builder
	text.Grow(len(data) / 2)
	vals := make([]string, len(fields))
	return scanList(data, list, fields, func(raw [][]byte) bool {
		for j, r := range raw {
			// A Builder never changes what it holds: earlier substrings
			// stay valid as it grows.
			start := text.Len()
			text.Write(r)
			vals[j] = text.String()[start:]
		}
		return item(vals)
	})
}

// scanList is fastList handing item the values as they stand in data
// (empty for absent or null; the slice is reused): for a caller that is
// done with them when item returns, such as getReturnRequests looking up
// every host HF holds. It is a scanner for that one shape rather than a
// tokenizer: at 10,000 hosts, jsontext's token machinery took ~1.8 ms of
// the daemon's ~4.
func scanList(data []byte, list string, fields []string, item func(vals [][]byte) bool) (n int, ok bool) {
	if !utf8.Valid(data) {
		return 0, false
	}
	sc := scanner{data: data}
	if !sc.byte('{') || !sc.plainValue() || string(sc.raw) != list || !sc.byte(':') || !sc.byte('[') {
		return 0, false
	}
	vals := make([][]byte, len(fields))
	if !sc.peek(']') {
		for {
			if !sc.byte('{') {
				return 0, false
			}
			clear(vals)
			seen := 0
			if !sc.peek('}') {
				for {
					j := sc.name(fields)
					if j < 0 || seen&(1<<j) != 0 || !sc.byte(':') {
						return 0, false
					}
					seen |= 1 << j
					switch {
					case sc.literal("null"):
					case sc.plainValue():
						vals[j] = sc.raw
					default:
						return 0, false
					}
					if sc.byte('}') {
						break
					}
					if !sc.byte(',') {
						return 0, false
					}
				}
			} else {
				sc.pos++ // the '}' peeked at
			}
			if !item(vals) {
				return 0, false
			}
			n++
			if sc.byte(']') {
				break
			}
			if !sc.byte(',') {
				return 0, false
			}
		}
	} else {
		sc.pos++ // the ']' peeked at
	}
	if !sc.byte('}') {
		return 0, false
	}
	sc.space()
	return n, sc.pos == len(data)
}

// scanner walks fastList's document. Each method skips white space first.
type scanner struct {
	data []byte
	pos  int
	raw  []byte // the last string's contents, as they stand in data
}

func (s *scanner) space() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// peek reports whether c comes next, without taking it.
func (s *scanner) peek(c byte) bool {
	s.space()
	return s.pos < len(s.data) && s.data[s.pos] == c
}

// byte takes c if it comes next.
func (s *scanner) byte(c byte) bool {
	if s.peek(c) {
		s.pos++
		return true
	}
	return false
}

// literal takes word (null) if it comes next.
func (s *scanner) literal(word string) bool {
	s.space()
	if len(s.data)-s.pos >= len(word) && string(s.data[s.pos:s.pos+len(word)]) == word {
		s.pos += len(word)
		return true
	}
	return false
}

// plainValue takes a string without escapes or control characters (the
// document is valid UTF-8) and sets raw to its contents.
func (s *scanner) plainValue() bool {
	if !s.byte('"') {
		return false
	}
	d, i := s.data, s.pos
	// Eight bytes at a time to the first stop, then one by one for the
	// last few: names and ids are 10 to 30 bytes, and this loop was the
	// daemon's largest cost at 10,000 hosts.
	for ; i+8 <= len(d); i += 8 {
		if m := stopMask(binary.LittleEndian.Uint64(d[i:])); m != 0 {
			i += bits.TrailingZeros64(m) >> 3
			goto stop
		}
	}
	for i < len(d) && !stops[d[i]] {
		i++
	}
stop:
	if i >= len(d) || d[i] != '"' {
		return false // the end, an escape or a control character
	}
	s.raw = d[s.pos:i]
	s.pos = i + 1
	return true
}

// name takes a member name that is one of fields, spelled plainly, and
// returns its index; -1 when the next thing is anything else (another
// name, an escape in it: the tree path then decides).
func (s *scanner) name(fields []string) int {
	s.space()
	d := s.data[s.pos:]
	if len(d) == 0 || d[0] != '"' {
		return -1
	}
	for j, f := range fields {
		if len(d) > len(f)+1 && d[len(f)+1] == '"' && string(d[1:len(f)+1]) == f {
			s.pos += len(f) + 2
			return j
		}
	}
	return -1
}

// stops are the bytes that end plainValue's run: the closing quote, an
// escape, the control characters.
var stops = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	t['"'], t['\\'], t[0x7f] = true, true, true
	return t
}()

// stopMask has the high bit set in (at least) the lowest byte of x, read
// little-endian, that is one of stops, and in no byte below it; 0 when
// none is. Each term is the classic "has a zero byte" test
// ((v - 0x01..) &^ v & 0x80..), whose borrows only start at a true match:
// so the lowest flagged byte is always a stop (TestStopMask).
func stopMask(x uint64) uint64 {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	q := x ^ (lo * '"')
	b := x ^ (lo * '\\')
	d := x ^ (lo * 0x7f)
	return ((q-lo)&^q | (b-lo)&^b | (d-lo)&^d | (x-lo*0x20)&^x) & hi
}
