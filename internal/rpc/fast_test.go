package rpc

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ohfp/ohfp/internal/hf"
)

// checkFastRequest: whatever fastRequest reads, the reference path reads
// the same way, with the same verdict.
func checkFastRequest(t *testing.T, body []byte) {
	t.Helper()
	freq, fp, ok := fastRequest(body)
	if !ok {
		return
	}
	rreq, rp, re := referenceRequest(body)
	freq, fp, fe := checkRequest(freq, fp)
	if re != nil && hf.IsOperation(freq.Method) && !json.Valid(fp.Input) {
		// The one licensed difference: an HF document taken by its length
		// (readParams) is left to the HF parser, which refuses it with a
		// message that says where (or the envelope is refused for its own
		// fault first); encoding/json refused the whole call as not JSON.
		return
	}
	if (fe == nil) != (re == nil) || fe != nil && (fe.Code != re.Code || fe.Message != re.Message) {
		t.Fatalf("%q: fast verdict %v, reference %v", body, fe, re)
	}
	if !bytes.Equal(freq.ID, rreq.ID) || freq.JSONRPC != rreq.JSONRPC || freq.Method != rreq.Method {
		t.Fatalf("%q: fast envelope %+v, reference %+v", body, freq, rreq)
	}
	if !bytes.Equal(fp.Input, rp.Input) || !bytes.Equal(fp.Args, rp.Args) || !reflect.DeepEqual(fp.Env, rp.Env) {
		t.Fatalf("%q: fast params %+v, reference %+v", body, fp, rp)
	}
}

func FuzzFastRequest(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/fuzz/FuzzDecodeRequest/*")
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b) // the corpus file itself is JSON-free text; the fuzzer mutates from it
	}
	for _, s := range fastRequestCases {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkFastRequest(t, body) })
}

var fastRequestCases = []string{
	`{"jsonrpc":"2.0","id":1,"method":"getRequestStatus","params":{"input":{"requests":[{"requestId":"req-1"}]},"env":{"HF_PROVIDER_NAME":"aws"}}}`,
	` { "jsonrpc" : "2.0" , "id" : "a" , "method" : "status" , "params" : { "args" : { "all" : true } } } `,
	`{"jsonrpc":"2.0","id":7,"method":"x"}`,
	`{"jsonrpc":"2.0","id":null,"method":"x"}`,
	`{"jsonrpc":"1.0","id":1,"method":"x"}`,
	`{"jsonrpc":"2.0","id":1,"method":""}`,
	`{"jsonrpc":"2.0","id":[1],"method":"x"}`,
	`{"jsonrpc":"2.0","id":1,"method":"x","params":{"input":null,"env":{}}}`,
	`{"jsonrpc":"2.0","id":1,"method":"x","params":{"input":{"a":"\u00e9"},"env":{"A":"\u0041"}}}`,
	`{"jsonrpc":"2.0","id":1,"method":"x","params":null}`,
	`{"JSONRPC":"2.0","id":1,"method":"x"}`,
	`{"jsonrpc":"2.0","id":1,"method":"x","method":"y"}`,
	`{"jsonrpc":"2.0","id":1,"method":"x","params":{"env":{"A":1}}}`,
	`{"jsonrpc":"2.0","id":1,"method":"x","extra":true}`,
	`{"jsonrpc":"2.0","id":1,"method":"x"} {}`,
	`{"jsonrpc":"2.0","id":1,"method":"getReturnRequests","params":{"env":{"A":"b"},"inputBytes":15,"input":{"machines":[]}}}`,
	`{"jsonrpc":"2.0","id":1,"method":"getReturnRequests","params":{"inputBytes":6,"input":{"a":}}}`,
	`{"jsonrpc":"2.0","id":1,"method":"getReturnRequests","params":{"inputBytes":2,"input":{} } } `,
	`{"jsonrpc":"2.0","id":1,"method":"getReturnRequests","params":{"inputBytes":3,"input":{}}}`,
	`{"jsonrpc":"2.0","id":1,"method":"getReturnRequests","params":{"inputBytes":2,"input":{}}}x`,
	`{"jsonrpc":"2.0","id":1,"method":"getReturnRequests","params":{"inputBytes":2,"input":{},"env":{}}}`,
	`{"jsonrpc":"2.0","id":1,"method":"status","params":{"inputBytes":5,"input":{"a":}}}`,
	`{"jsonrpc":"2.0","id":1,"params":{"inputBytes":5,"input":{"a":}},"method":"getReturnRequests"}`,
}

func TestFastRequest(t *testing.T) {
	for _, s := range fastRequestCases {
		checkFastRequest(t, []byte(s))
	}
	// The calls ohfp writes are read by the fast path.
	for _, s := range fastRequestCases[:3] {
		if _, _, ok := fastRequest([]byte(s)); !ok {
			t.Errorf("fast path refused %s", s)
		}
	}
	body, err := encodeCall(3, "getReturnRequests", Params{Input: json.RawMessage(`{"machines": [
  {"name": "h1", "machineId": "i-1"}]}`), Env: map[string]string{"HF_PROVIDER_NAME": "aws"}})
	if err != nil {
		t.Fatal(err)
	}
	req, p, ok := fastRequest(body)
	if !ok || req.Method != "getReturnRequests" || string(req.ID) != "3" || !strings.Contains(string(p.Input), "\n  {\"name\"") || p.Env["HF_PROVIDER_NAME"] != "aws" {
		t.Fatalf("encodeCall's body read as %+v %+v (fast %v)", req, p, ok)
	}
	checkFastRequest(t, body)
	// The HF document is taken by its length, unread, when it is last.
	for _, tc := range []struct {
		body, input string
		ok          bool
	}{
		{fastRequestCases[15], `{"machines":[]}`, true},
		{fastRequestCases[16], `{"a":}`, true}, // for the HF parser to refuse, with its message
		{fastRequestCases[17], `{}`, true},
		{fastRequestCases[18], ``, false},  // the length is wrong: refused (the reference path says so)
		{fastRequestCases[19], ``, false},  // something after the call
		{fastRequestCases[20], `{}`, true}, // not last: read as a value
		{fastRequestCases[21], ``, false},  // not an HF method: read as a value, and refused
		{fastRequestCases[22], ``, false},  // method not known yet: read as a value, and refused
	} {
		_, p, ok := fastRequest([]byte(tc.body))
		if ok != tc.ok || ok && string(p.Input) != tc.input {
			t.Errorf("%s: fast %v with input %q, want %v %q", tc.body, ok, p.Input, tc.ok, tc.input)
		}
	}
	// Left to the reference path: odd but valid, or wrong.
	for _, s := range []string{
		`{"JSONRPC":"2.0","id":1,"method":"x"}`, `{"jsonrpc":"2.0","id":1,"method":"x","method":"y"}`,
		`{"jsonrpc":"2.0","id":1,"method":"x","extra":true}`, `{"jsonrpc":"2.0","id":1,"method":"x","params":null}`,
		`{"jsonrpc":"2.0","id":1,"method":"x"} {}`, `{"jsonrpc":"2.0","id":1,"method":"\xff"}`,
	} {
		if _, _, ok := fastRequest([]byte(s)); ok {
			t.Errorf("fast path accepted %q", s)
		}
	}
}

func checkFastResponse(t *testing.T, data []byte) {
	t.Helper()
	fr, ok := fastResponse(data)
	if !ok {
		return
	}
	var rr Response
	if err := json.Unmarshal(data, &rr); err != nil {
		t.Fatalf("%q: fast path read it, encoding/json refuses it: %v", data, err)
	}
	if fr.JSONRPC != rr.JSONRPC || !bytes.Equal(fr.ID, rr.ID) || !bytes.Equal(fr.Result, rr.Result) || rr.Error != nil ||
		(fr.Result == nil) != (rr.Result == nil) {
		t.Fatalf("%q: fast %+v, reference %+v", data, fr, rr)
	}
}

var fastResponseCases = []string{
	`{"jsonrpc":"2.0","id":1,"result":{"requests":[]}}`,
	"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"a\": [1, 2]}}\n",
	`{"jsonrpc":"2.0","id":1,"result":null}`,
	`{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"x"}}`,
	`{"jsonrpc":"2.0","id":1,"result":1,"result":2}`,
	`{"jsonrpc":"2.0","id":1,"Result":1}`,
	`{"jsonrpc":"2.0","id":1,"result":"\xff"}`,
}

func FuzzFastResponse(f *testing.F) {
	for _, s := range fastResponseCases {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkFastResponse(t, data) })
}

func TestFastResponse(t *testing.T) {
	for i, s := range fastResponseCases {
		checkFastResponse(t, []byte(s))
		if _, ok := fastResponse([]byte(s)); ok != (i < 2) {
			t.Errorf("fastResponse(%q) ok = %v", s, ok)
		}
	}
}

// A document the client sends unchecked (CallWithFile) may be broken so
// that it ends early and what follows reads as members of the call: its
// announced length must keep it from rewriting the call, on both paths.
func TestBrokenInputCannotRewriteCall(t *testing.T) {
	doc := `{"machines":[]}},"method":"requestMachines","params":{"input":{"template":{"templateId":"t","machineCount":99}}`
	head, err := encodeHead(1, "getReturnRequests", Params{Env: map[string]string{"HF_PROVIDER_NAME": "aws"}}, int64(len(doc)))
	if err != nil {
		t.Fatal(err)
	}
	body := string(head) + doc + "}}"
	req, p, e := DecodeRequest([]byte(body))
	if e != nil || req.Method != "getReturnRequests" || string(p.Input) != doc {
		t.Fatalf("read as %s with input %q (%v); want getReturnRequests with the whole document, for its parser to refuse", req.Method, p.Input, e)
	}
	// The same call with the input not last, where the fast path cannot
	// take it by its length: the reference path must refuse it.
	moved := `{"jsonrpc":"2.0","id":1,"method":"getReturnRequests","params":{"inputBytes":` + itoa(len(doc)) + `,"input":` + doc + `,"env":{}}}`
	if !json.Valid([]byte(moved)) {
		t.Fatal("the test's call should be JSON")
	}
	req, _, e = DecodeRequest([]byte(moved))
	if e == nil || e.Code != InvalidRequest || !strings.Contains(e.Message, `the member "method" twice`) {
		t.Fatalf("read as %s (%v); want it refused", req.Method, e)
	}
	// Without a second method, the length refuses it.
	short := `{"jsonrpc":"2.0","id":1,"method":"getReturnRequests","params":{"inputBytes":` + itoa(len(doc)) + `,"input":{"machines":[]},"env":{}}}`
	req, _, e = DecodeRequest([]byte(short))
	if e == nil || e.Code != InvalidInput || !strings.Contains(e.Message, "not one JSON document of the") {
		t.Fatalf("read as %s (%v); want it refused", req.Method, e)
	}
	for _, tc := range []struct{ body, dup string }{
		{`{"a":1,"b":{"a":1,"a":2},"params":{"env":{},"input":{"x":1,"x":2}}}`, ""},
		{`{"params":{"env":{},"env":{}}}`, "params.env"},
		{`{"id":1,"params":{},"id":2}`, "id"},
		{`{"id":1,"params":5,"params":{}}`, "params"},
	} {
		if got := duplicateMember([]byte(tc.body)); got != tc.dup {
			t.Errorf("duplicateMember(%s) = %q, want %q", tc.body, got, tc.dup)
		}
	}
}
