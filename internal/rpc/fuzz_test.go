package rpc

import (
	"encoding/json"
	"testing"
)

// FuzzDecodeRequest feeds arbitrary bodies to the server's decoder. Seeds
// live in testdata/fuzz/FuzzDecodeRequest so plain `go test` runs them.
func FuzzDecodeRequest(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		req, p, e := DecodeRequest(body)
		if e != nil {
			switch e.Code {
			case ParseError, InvalidRequest, InvalidInput:
			default:
				t.Fatalf("unexpected code %d for %q", e.Code, body)
			}
			if e.Message == "" {
				t.Fatal("empty message")
			}
		} else {
			if req.Method == "" || req.JSONRPC != "2.0" || !validID(req.ID) {
				t.Fatalf("accepted %q as %+v", body, req)
			}
			if len(p.Input) > 0 && !json.Valid(p.Input) {
				t.Fatalf("input not valid JSON: %q", p.Input)
			}
		}
		// Whatever was decoded, the id it yields makes a valid answer.
		id := req.ID
		if len(id) == 0 {
			id = json.RawMessage("null")
		}
		b, err := json.Marshal(Response{JSONRPC: "2.0", ID: id, Error: e})
		var r Response
		if err != nil || json.Unmarshal(b, &r) != nil || r.JSONRPC != "2.0" {
			t.Fatalf("the answer to %q is not JSON-RPC: %s (%v)", body, b, err)
		}
	})
}
