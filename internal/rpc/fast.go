package rpc

import (
	"bytes"
	"encoding/json"
	"io"
	"strconv"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/ohfp/ohfp/internal/hf"
)

// The envelopes are read in one pass of jsontext's strict tokenizer (see
// internal/hf): with getReturnRequests carrying every host HF holds, the
// call is ~800 KB, and encoding/json scanned it four times (Valid, the
// envelope, the params) before the HF parser saw it. The fast readers take
// only the envelopes ohfp itself writes: exact member names, no duplicates,
// the expected JSON kinds. Anything else goes to the encoding/json path,
// which stays the reference for every error and every odd but valid call
// (FuzzFastRequest, FuzzFastResponse check the two agree).

// fastRequest reads a request envelope; ok is false when the reference path
// must decide.
func fastRequest(body []byte) (req Request, p Params, ok bool) {
	dec := jsontext.NewDecoder(bytes.NewBuffer(body))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return Request{}, Params{}, false
	}
	for dec.PeekKind() != '}' {
		name, err := dec.ReadToken()
		if err != nil {
			return Request{}, Params{}, false
		}
		switch name.String() {
		case "jsonrpc":
			if req.JSONRPC, ok = readString(dec); !ok {
				return Request{}, Params{}, false
			}
		case "method":
			if req.Method, ok = readString(dec); !ok {
				return Request{}, Params{}, false
			}
		case "id":
			if req.ID, ok = readRaw(dec, body); !ok {
				return Request{}, Params{}, false
			}
		case "params": // req.Params stays unset: p is read already
			var last bool
			if p, last, ok = readParams(dec, body, hf.IsOperation(req.Method)); !ok {
				return Request{}, Params{}, false
			}
			if last {
				return req, p, true // readParams checked the rest is "}}"
			}
		default:
			return Request{}, Params{}, false
		}
	}
	if _, err := dec.ReadToken(); err != nil {
		return Request{}, Params{}, false
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return Request{}, Params{}, false
	}
	return req, p, true
}

// readParams reads {"input": ..., "env": {...}, "args": ...}.
//
// The client writes "inputBytes": N and then the input last: when hfInput
// (the method is an HF operation, whose parser reads the whole document
// strictly, with messages that say where it is wrong), the input is taken
// as the N bytes that follow, unread, provided only "}}" follows them;
// last then reports that the call was read to its end. Otherwise the input
// is read as any value, which must then be N bytes long. This spares the
// daemon a pass over a large document that the HF parser makes anyway; the
// length check means a broken document (the client sends large ones
// unchecked) cannot end early and be followed by members of its own.
func readParams(dec *jsontext.Decoder, body []byte, hfInput bool) (p Params, last, ok bool) {
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return Params{}, false, false
	}
	inputBytes := -1
	for dec.PeekKind() != '}' {
		name, err := dec.ReadToken()
		if err != nil {
			return Params{}, false, false
		}
		switch name.String() {
		case "inputBytes":
			tok, err := dec.ReadToken()
			if err != nil || tok.Kind() != '0' {
				return Params{}, false, false
			}
			n, err := strconv.Atoi(tok.String())
			if err != nil || n < 0 || n > len(body) {
				return Params{}, false, false
			}
			inputBytes = n
		case "input":
			if hfInput && inputBytes >= 0 {
				if in, ok := inputThenEnd(body, int(dec.InputOffset()), inputBytes); ok {
					p.Input = in
					return p, true, true
				}
			}
			if p.Input, ok = readRaw(dec, body); !ok {
				return Params{}, false, false
			}
		case "args":
			if p.Args, ok = readRaw(dec, body); !ok {
				return Params{}, false, false
			}
		case "env":
			if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
				return Params{}, false, false
			}
			p.Env = map[string]string{}
			for dec.PeekKind() != '}' {
				k, err := dec.ReadToken()
				if err != nil {
					return Params{}, false, false
				}
				name := k.String() // before the next read voids k
				v, ok := readString(dec)
				if !ok {
					return Params{}, false, false
				}
				p.Env[name] = v
			}
			if _, err := dec.ReadToken(); err != nil {
				return Params{}, false, false
			}
		default:
			return Params{}, false, false
		}
	}
	if _, err := dec.ReadToken(); err != nil {
		return Params{}, false, false
	}
	if inputBytes >= 0 && len(p.Input) != inputBytes {
		return Params{}, false, false // the reference path refuses it
	}
	return p, false, true
}

// inputThenEnd takes the n bytes of body after the ':' at or after off, if
// nothing but "}}" (and white space) follows them.
func inputThenEnd(body []byte, off, n int) (json.RawMessage, bool) {
	const space = " \t\r\n"
	rest := bytes.TrimLeft(body[off:], space)
	if len(rest) == 0 || rest[0] != ':' {
		return nil, false
	}
	rest = bytes.TrimLeft(rest[1:], space)
	if n > len(rest) {
		return nil, false
	}
	in, tail := rest[:n:n], rest[n:]
	for range 2 {
		tail = bytes.TrimLeft(tail, space)
		if len(tail) == 0 || tail[0] != '}' {
			return nil, false
		}
		tail = tail[1:]
	}
	if len(bytes.TrimLeft(tail, space)) != 0 {
		return nil, false
	}
	return json.RawMessage(in), true
}

// fastResponse reads a response envelope that carries a result; ok is
// false when the reference path must decide (errors included).
func fastResponse(data []byte) (r Response, ok bool) {
	dec := jsontext.NewDecoder(bytes.NewBuffer(data))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return Response{}, false
	}
	for dec.PeekKind() != '}' {
		name, err := dec.ReadToken()
		if err != nil {
			return Response{}, false
		}
		switch name.String() {
		case "jsonrpc":
			if r.JSONRPC, ok = readString(dec); !ok {
				return Response{}, false
			}
		case "id":
			if r.ID, ok = readRaw(dec, data); !ok {
				return Response{}, false
			}
		case "result":
			if dec.PeekKind() == 'n' { // encoding/json leaves a null result unset
				return Response{}, false
			}
			if r.Result, ok = readRaw(dec, data); !ok {
				return Response{}, false
			}
		default:
			return Response{}, false
		}
	}
	if _, err := dec.ReadToken(); err != nil {
		return Response{}, false
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return Response{}, false
	}
	return r, true
}

// readString reads a string value.
func readString(dec *jsontext.Decoder) (string, bool) {
	tok, err := dec.ReadToken()
	if err != nil || tok.Kind() != '"' {
		return "", false
	}
	return tok.String(), true
}

// readRaw reads one value and returns it as it stands in data (no copy),
// as encoding/json fills a json.RawMessage.
func readRaw(dec *jsontext.Decoder, data []byte) (json.RawMessage, bool) {
	v, err := dec.ReadValue()
	if err != nil {
		return nil, false
	}
	end := dec.InputOffset()
	start := end - int64(len(v))
	if start < 0 || end > int64(len(data)) || !bytes.Equal(data[start:end], v) {
		return nil, false
	}
	return json.RawMessage(data[start:end:end]), true
}
