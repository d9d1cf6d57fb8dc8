package rpc

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
)

// FuzzDecodeRequest feeds arbitrary bodies to the server's decoder. Seeds
// live in testdata/fuzz/FuzzDecodeRequest so plain `go test` runs them.
func FuzzDecodeRequest(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		req, p, e := decodeRequest(body)
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
		// Whatever was decoded, the answer must be valid JSON-RPC.
		w := httptest.NewRecorder()
		writeResponse(w, 200, req.ID, nil, e)
		var r response
		if err := json.Unmarshal(w.Body.Bytes(), &r); err != nil || r.JSONRPC != "2.0" {
			t.Fatalf("answer %q is not JSON-RPC: %v", w.Body.Bytes(), err)
		}
	})
}
