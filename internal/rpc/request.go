package rpc

import (
	"bytes"
	"encoding/json"

	"github.com/go-json-experiment/json/jsontext"
)

// DecodeRequest parses a JSON-RPC 2.0 request body. On error the returned
// request holds the id when it could be read.
func DecodeRequest(body []byte) (Request, Params, *Error) {
	if req, p, ok := fastRequest(body); ok {
		return checkRequest(req, p)
	}
	return referenceRequest(body)
}

// referenceRequest is DecodeRequest by encoding/json, for the calls
// fastRequest leaves to it.
func referenceRequest(body []byte) (Request, Params, *Error) {
	var req Request
	if len(bytes.TrimSpace(body)) == 0 {
		return req, Params{}, Errorf(InvalidRequest, "the call is empty: send a JSON-RPC 2.0 request")
	}
	if !json.Valid(body) {
		var v any
		err := json.Unmarshal(body, &v)
		return req, Params{}, Errorf(ParseError, "the call is not valid JSON: %v", err)
	}
	if name := duplicateMember(body); name != "" {
		return req, Params{}, Errorf(InvalidRequest, "the call has the member %q twice: send each once", name)
	}
	if err := json.Unmarshal(body, &req); err != nil {
		req = Request{}
		return req, Params{}, Errorf(InvalidRequest, "the call is not a JSON-RPC 2.0 request object: %v", err)
	}
	if e := checkEnvelope(&req); e != nil {
		return req, Params{}, e
	}
	var p struct {
		Params
		InputBytes *int `json:"inputBytes"`
	}
	if len(req.Params) > 0 && !bytes.Equal(bytes.TrimSpace(req.Params), []byte("null")) {
		if err := json.Unmarshal(req.Params, &p); err != nil {
			return req, Params{}, Errorf(InvalidInput, "the params of %s must be an object {\"input\": ..., \"env\": {...}}: %v", req.Method, err)
		}
	}
	// The client sends large documents unchecked, announcing their length:
	// one that is not that long is not a single JSON value, and what came
	// after its end may be part of it rather than of the call.
	if p.InputBytes != nil && len(p.Input) != *p.InputBytes {
		return req, Params{}, Errorf(InvalidInput, "the input of %s is not one JSON document of the %d bytes announced (%d bytes were read as one): check the file HF wrote", req.Method, *p.InputBytes, len(p.Input))
	}
	return req, p.Params, nil
}

// checkRequest applies checkEnvelope to a request fastRequest read.
func checkRequest(req Request, p Params) (Request, Params, *Error) {
	if e := checkEnvelope(&req); e != nil {
		return req, Params{}, e
	}
	return req, p, nil
}

// checkEnvelope checks the id, version and method of a decoded request; a
// bad id is cleared so the answer carries null.
func checkEnvelope(req *Request) *Error {
	if !validID(req.ID) {
		req.ID = nil
		return Errorf(InvalidRequest, "the call's id must be a number or a string (ohfpd takes no notifications)")
	}
	if req.JSONRPC != "2.0" {
		return Errorf(InvalidRequest, "the call must say \"jsonrpc\": \"2.0\"")
	}
	if req.Method == "" {
		return Errorf(InvalidRequest, "the call has no method")
	}
	return nil
}

// validID reports whether id is a JSON number or string.
func validID(id json.RawMessage) bool {
	id = bytes.TrimSpace(id)
	if len(id) == 0 {
		return false
	}
	switch c := id[0]; {
	case c == '"':
		return true
	case c == '-' || (c >= '0' && c <= '9'):
		return true
	}
	return false
}

// duplicateMember returns the first member name the envelope or its params
// object has twice ("params.input", say), or "". encoding/json takes the
// last of the two, so a document that ends early could otherwise follow
// itself with a method of its own; the fast path refuses such calls too.
func duplicateMember(body []byte) string {
	dec := jsontext.NewDecoder(bytes.NewReader(body), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	var walk func(prefix string, depth int) string
	walk = func(prefix string, depth int) string {
		if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
			return ""
		}
		seen := map[string]bool{}
		for dec.PeekKind() != '}' {
			tok, err := dec.ReadToken()
			if err != nil {
				return ""
			}
			name := tok.String()
			if seen[name] {
				return prefix + name
			}
			seen[name] = true
			if depth == 0 && name == "params" && dec.PeekKind() == '{' {
				if d := walk("params.", 1); d != "" {
					return d
				}
				continue
			}
			if err := dec.SkipValue(); err != nil {
				return ""
			}
		}
		dec.ReadToken()
		return ""
	}
	return walk("", 0)
}
