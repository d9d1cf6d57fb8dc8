package soak

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// badInput is one hostile HF document and a fragment of the message that
// must name its problem.
type badInput struct {
	op, name, in, want string
}

func hostileInputs() []badInput {
	const (
		gat = "getAvailableTemplates"
		rm  = "requestMachines"
		grs = "getRequestStatus"
		rrm = "requestReturnMachines"
		grr = "getReturnRequests"
	)
	rmDoc := func(id, count string) string {
		return `{"template": {"templateId": ` + id + `, "machineCount": ` + count + `}}`
	}
	deep := strings.Repeat(`{"a":`, 40) + "1" + strings.Repeat("}", 40)
	huge := `{"pad": "` + strings.Repeat("x", 4<<20) + `"}`
	return []badInput{
		// The document as a whole, on every operation.
		{gat, "empty", ``, "input is empty"},
		{gat, "whitespace only", " \n\t \r\n", "input is empty"},
		{gat, "array instead of object", `[]`, "must be a JSON object"},
		{gat, "string instead of object", `"{}"`, "must be a JSON object"},
		{gat, "null", `null`, "must be a JSON object"},
		{gat, "number", `42`, "must be a JSON object"},
		{gat, "trailing garbage", `{}x`, "not valid JSON"},
		{gat, "two documents", `{} {}`, "not valid JSON"},
		{gat, "deep nesting", deep, "deeper than 32 levels"},
		{gat, "duplicate keys", `{"a": 1, "a": 2}`, "appears twice"},
		{gat, "raw NUL byte", "{}\n\x00", "NUL byte"},
		{gat, "escaped NUL in a key", `{"a\u0000": 1}`, "NUL character"},
		{gat, "invalid UTF-8", "{\"a\": \"\xff\"}", "not valid UTF-8"},
		{gat, "overlong UTF-8", "{\"a\": \"\xc0\xaf\"}", "not valid UTF-8"},
		{gat, "UTF-8 BOM", "\xef\xbb\xbf{}", "not valid JSON"},
		{gat, "UTF-16 document", "\xff\xfe{\x00}\x00", "NUL byte"},
		{gat, "oversized document", huge, "4 MiB"},
		{gat, "comment", `{} // hi`, "not valid JSON"},
		{rm, "empty", ``, "input is empty"},
		{rm, "array of requests", `[` + rmDoc(`"OnDemand-c5"`, "1") + `]`, "must be a JSON object"},
		{rm, "truncated", `{"template": {"templateId": "OnDemand-c5"`, "ends early"},
		{rm, "single quotes", `{'template': 1}`, "not valid JSON"},
		{rm, "deep nesting", `{"template": ` + deep + `}`, "deeper than 32 levels"},
		{rm, "oversized document", `{"template": {"templateId": "OnDemand-c5", "machineCount": 1}, "pad": "` + strings.Repeat("y", 5<<20) + `"}`, "4 MiB"},
		// requestMachines fields.
		{rm, "template missing", `{}`, "template is missing"},
		{rm, "template misspelt", `{"Template": {"templateId": "OnDemand-c5", "machineCount": 1}}`, "template is missing"},
		{rm, "template is a list", `{"template": [{"templateId": "OnDemand-c5", "machineCount": 1}]}`, "template must be an object"},
		{rm, "template is a string", `{"template": "OnDemand-c5"}`, "template must be an object"},
		{rm, "templateId missing", `{"template": {"machineCount": 1}}`, "templateId is missing"},
		{rm, "templateId number", rmDoc("5", "1"), "templateId must be a string"},
		{rm, "templateId null", rmDoc("null", "1"), "templateId must be a string"},
		{rm, "templateId empty", rmDoc(`""`, "1"), "templateId must be 1 to 64"},
		{rm, "templateId accented", rmDoc(`"modèle"`, "1"), "templateId must be 1 to 64"},
		{rm, "templateId emoji", rmDoc(`"\ud83d\ude00"`, "1"), "templateId must be 1 to 64"},
		{rm, "templateId right-to-left override", rmDoc(`"On\u202eDemand"`, "1"), "templateId must be 1 to 64"},
		{rm, "templateId path traversal", rmDoc(`"../../etc/passwd"`, "1"), "templateId must be 1 to 64"},
		{rm, "templateId too long", rmDoc(`"`+strings.Repeat("a", 65)+`"`, "1"), "templateId must be 1 to 64"},
		{rm, "templateId invalid UTF-8", rmDoc("\"\xc3\x28\"", "1"), "not valid UTF-8"},
		{rm, "templateId raw NUL", rmDoc("\"On\x00Demand\"", "1"), "NUL byte"},
		{rm, "templateId escaped NUL", rmDoc(`"OnDemand-c5\u0000"`, "1"), "NUL character"},
		{rm, "templateId unknown", rmDoc(`"NoSuch"`, "1"), `"NoSuch" is not a template`},
		{rm, "duplicate templateId", `{"template": {"templateId": "OnDemand-c5", "templateId": "Spot-m5", "machineCount": 1}}`, "templateId appears twice"},
		{rm, "duplicate machineCount", `{"template": {"templateId": "OnDemand-c5", "machineCount": 1, "machineCount": 900}}`, "machineCount appears twice"},
		{rm, "duplicate template", `{"template": {"templateId": "OnDemand-c5", "machineCount": 1}, "template": {"templateId": "Spot-m5", "machineCount": 1}}`, "template appears twice"},
		{rm, "machineCount missing", `{"template": {"templateId": "OnDemand-c5"}}`, "machineCount is missing"},
		{rm, "machineCount string", rmDoc(`"OnDemand-c5"`, `"abc"`), "machineCount must be a positive whole number"},
		{rm, "machineCount numeric string", rmDoc(`"OnDemand-c5"`, `"3"`), "machineCount must be a positive whole number"},
		{rm, "machineCount zero", rmDoc(`"OnDemand-c5"`, "0"), "machineCount must be a positive whole number"},
		{rm, "machineCount negative", rmDoc(`"OnDemand-c5"`, "-1"), "machineCount must be a positive whole number"},
		{rm, "machineCount minus zero", rmDoc(`"OnDemand-c5"`, "-0"), "machineCount must be a positive whole number"},
		{rm, "machineCount fraction", rmDoc(`"OnDemand-c5"`, "2.5"), "machineCount must be a positive whole number"},
		{rm, "machineCount exponent", rmDoc(`"OnDemand-c5"`, "1e3"), "machineCount must be a positive whole number"},
		{rm, "machineCount 1e400", rmDoc(`"OnDemand-c5"`, "1e400"), "machineCount"},
		{rm, "machineCount beyond int64", rmDoc(`"OnDemand-c5"`, "99999999999999999999999"), "more than the 100000 units"},
		{rm, "machineCount 300 digits", rmDoc(`"OnDemand-c5"`, strings.Repeat("9", 300)), "more than the 100000 units"},
		{rm, "machineCount over the cap", rmDoc(`"OnDemand-c5"`, "100001"), "more than the 100000 units"},
		{rm, "machineCount over availability", rmDoc(`"OnDemand-c5"`, "5000"), "units available"},
		{rm, "machineCount bool", rmDoc(`"OnDemand-c5"`, "true"), "machineCount must be a positive whole number"},
		{rm, "machineCount null", rmDoc(`"OnDemand-c5"`, "null"), "machineCount must be a positive whole number"},
		{rm, "machineCount object", rmDoc(`"OnDemand-c5"`, `{"n": 3}`), "machineCount must be a positive whole number"},
		{rm, "machineCount NaN", rmDoc(`"OnDemand-c5"`, "NaN"), "not valid JSON"},
		{rm, "machineCount leading zero", rmDoc(`"OnDemand-c5"`, "03"), "not valid JSON"},
		{rm, "machineCount Infinity", rmDoc(`"OnDemand-c5"`, "Infinity"), "not valid JSON"},
		// getRequestStatus.
		{grs, "empty", ``, "input is empty"},
		{grs, "requests missing", `{}`, "requests is missing"},
		{grs, "requests string", `{"requests": "req-1"}`, "requests must be a list"},
		{grs, "requests null", `{"requests": null}`, "requests must be a list"},
		{grs, "request item string", `{"requests": ["req-1"]}`, "requests[0] must be an object"},
		{grs, "requestId number", `{"requests": [{"requestId": 17}]}`, "requestId must be a string"},
		{grs, "requestId huge number", `{"requests": [{"requestId": 1e999}]}`, "requestId must be a string"},
		{grs, "requestId empty", `{"requests": [{"requestId": ""}]}`, "requestId is empty"},
		{grs, "requestId terminal escape", `{"requests": [{"requestId": "req-\u001b[31m"}]}`, "control character"},
		{grs, "requestId escaped NUL", `{"requests": [{"requestId": "req-\u0000"}]}`, "NUL character"},
		{grs, "requestId too long", `{"requests": [{"requestId": "` + strings.Repeat("r", 257) + `"}]}`, "more than the 256"},
		{grs, "duplicate requestId key", `{"requests": [{"requestId": "a", "requestId": "b"}]}`, "appears twice"},
		{grs, "deep nesting", `{"requests": ` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, "deeper than 32 levels"},
		{grs, "very deep, unterminated", strings.Repeat("[", 20000), "not valid JSON"},
		// requestReturnMachines.
		{rrm, "empty", ``, "input is empty"},
		{rrm, "machines missing", `{}`, "machines is missing"},
		{rrm, "machines null", `{"machines": null}`, "machines is missing"},
		{rrm, "machines empty", `{"machines": []}`, "machines is empty"},
		{rrm, "machines string", `{"machines": "i-1"}`, "machines must be a list"},
		{rrm, "machine item number", `{"machines": [1]}`, "machines[0] must be an object"},
		{rrm, "machine without ids", `{"machines": [{"name": "h1"}, {}]}`, "machines[1] needs a machineId or a name"},
		{rrm, "machineId number", `{"machines": [{"machineId": 5}]}`, "machineId must be a string"},
		{rrm, "name list", `{"machines": [{"machineId": "i-1", "name": ["h"]}]}`, "name must be a string"},
		{rrm, "name with a tab", `{"machines": [{"name": "h\tx"}]}`, "control character"},
		{rrm, "machineId too long", `{"machines": [{"machineId": "i-` + strings.Repeat("f", 300) + `"}]}`, "more than the 256"},
		{rrm, "array root", `[{"machineId": "i-1"}]`, "must be a JSON object"},
		// getReturnRequests.
		{grr, "empty", ``, "input is empty"},
		{grr, "machines number", `{"machines": 3}`, "machines must be a list"},
		{grr, "machines string", `{"machines": "all"}`, "machines must be a list"},
		{grr, "machine item bool", `{"machines": [true]}`, "machines[0] must be an object"},
		{grr, "machineId null", `{"machines": [{"machineId": null}]}`, "needs a machineId or a name"},
		{grr, "duplicate name key", `{"machines": [{"name": "a", "name": "b"}]}`, "appears twice"},
		{grr, "invalid UTF-8 name", "{\"machines\": [{\"name\": \"\xed\xa0\x80\"}]}", "not valid UTF-8"},
	}
}

// TestHostileInput sends every bad document through `<op>.sh -f FILE`
// (the client checks it, then the daemon would), and the ones that are
// JSON straight to the daemon's socket (the daemon's own check), then raw
// JSON-RPC garbage. Every one is refused with a message naming the
// problem; the daemon stays up and what HF sees does not change.
func TestHostileInput(t *testing.T) {
	t.Parallel() // its own region and daemon
	c := startCloud(t, 100*time.Millisecond, 100*time.Millisecond)
	e := newEnv(t, c, daemonOpts{})
	e.start()
	id := e.request(tplOnDemand, 2)
	e.waitFinal([]string{id}, 60*time.Second)
	before := e.snapshot(id)
	rowsBefore := len(e.allRequests())

	cases := hostileInputs()
	ops := map[string]int{}
	for _, bc := range cases {
		ops[bc.op]++
		ctx, cancel := callCtx()
		res, err := e.plugin.Raw(ctx, bc.op, []byte(bc.in))
		cancel()
		must(t, err)
		var msg struct {
			Message string `json:"message"`
		}
		if res.Exit != 1 || json.Unmarshal(res.Stdout, &msg) != nil || !strings.Contains(msg.Message, bc.want) {
			t.Errorf("%s.sh, %s: exit %d, stdout %.300s, stderr %.200s; want exit 1 and {\"message\"} containing %q",
				bc.op, bc.name, res.Exit, res.Stdout, res.Stderr, bc.want)
		}
	}
	if len(cases) < 50 || len(ops) != 5 {
		t.Fatalf("%d bad inputs over %d operations; want at least 50 over all 5", len(cases), len(ops))
	}

	// The same documents straight to the daemon, past the client's check.
	hc := unixHTTP(e.sock)
	direct := 0
	for _, bc := range cases {
		in := strings.TrimSpace(bc.in)
		if in == "" || !json.Valid([]byte(in)) {
			continue
		}
		direct++
		body := `{"jsonrpc": "2.0", "id": 7, "method": "` + bc.op + `", "params": {"input": ` + in + `, "env": {"HF_PROVIDER_NAME": "aws"}}}`
		status, ans := postRPC(t, hc, body)
		if status != http.StatusOK || ans.Error == nil || ans.Error.Code != -32602 || !strings.Contains(ans.Error.Message, bc.want) || string(ans.ID) != "7" {
			t.Errorf("RPC %s, %s: HTTP %d %+v; want error -32602 containing %q", bc.op, bc.name, status, ans, bc.want)
		}
	}

	// JSON-RPC garbage.
	garbage := []struct {
		name   string
		method string
		path   string
		body   string
		status int
		code   int
		want   string
	}{
		{"oversized body", "POST", "/v1/rpc", `{"jsonrpc": "2.0", "id": 1, "method": "getAvailableTemplates", "params": {"input": {"pad": "` + strings.Repeat("z", 9<<20) + `"}}}`, 413, -32600, "larger than"},
		{"not JSON", "POST", "/v1/rpc", `hello, daemon`, 400, -32700, ""},
		{"empty body", "POST", "/v1/rpc", ``, 400, -32600, "empty"},
		{"binary body", "POST", "/v1/rpc", "\x00\x01\x02\xff\xfe", 400, -32700, ""},
		{"JSON-RPC 1.0", "POST", "/v1/rpc", `{"jsonrpc": "1.0", "id": 1, "method": "getAvailableTemplates", "params": {"input": {}}}`, 400, -32600, ""},
		{"no version", "POST", "/v1/rpc", `{"id": 1, "method": "getAvailableTemplates", "params": {"input": {}}}`, 400, -32600, ""},
		{"no method", "POST", "/v1/rpc", `{"jsonrpc": "2.0", "id": 1, "params": {"input": {}}}`, 400, -32600, ""},
		{"method not a string", "POST", "/v1/rpc", `{"jsonrpc": "2.0", "id": 1, "method": 42}`, 400, 0, ""},
		{"unknown method", "POST", "/v1/rpc", `{"jsonrpc": "2.0", "id": 1, "method": "launchRockets", "params": {}}`, 200, -32601, "launchRockets"},
		{"params a list", "POST", "/v1/rpc", `{"jsonrpc": "2.0", "id": 1, "method": "getAvailableTemplates", "params": [1, 2]}`, 200, -32602, "must be an object"},
		{"batch", "POST", "/v1/rpc", `[{"jsonrpc": "2.0", "id": 1, "method": "getAvailableTemplates"}]`, 400, 0, ""},
		{"array body", "POST", "/v1/rpc", `[]`, 400, 0, ""},
		{"10000-deep params", "POST", "/v1/rpc", `{"jsonrpc": "2.0", "id": 1, "method": "getAvailableTemplates", "params": {"input": ` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}}`, 400, 0, ""},
		{"input 5000 deep", "POST", "/v1/rpc", `{"jsonrpc": "2.0", "id": 1, "method": "getRequestStatus", "params": {"input": {"requests": ` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}}}`, 200, -32602, "deeper than 32"},
		{"GET", "GET", "/v1/rpc", ``, 405, -32600, "use POST"},
	}
	for _, g := range garbage {
		status, ans := doRPC(t, hc, g.method, g.path, g.body)
		ok := status == g.status && ans.Error != nil && ans.Result == nil && strings.Contains(ans.Error.Message, g.want)
		if g.code != 0 && (ans.Error == nil || ans.Error.Code != g.code) {
			ok = false
		}
		if !ok {
			t.Errorf("RPC garbage %q: HTTP %d %+v; want HTTP %d, an error (code %d) containing %q", g.name, status, ans, g.status, g.code, g.want)
		}
	}

	// Another path: the metrics handler's plain 404.
	req, err := http.NewRequest("POST", "http://ohfpd/../../etc/passwd", strings.NewReader("{}"))
	must(t, err)
	req.URL.Path = "/../../etc/passwd"
	if resp, err := hc.Do(req); err != nil {
		t.Errorf("POST /../../etc/passwd: %v", err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("POST /../../etc/passwd: HTTP %d, want 404", resp.StatusCode)
		}
	}

	// Not HTTP at all, and a caller that hangs up mid-request.
	for _, raw := range []string{"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "GARBAGE\r\n\r\n", "POST /v1/rpc HTTP/1.1\r\nHost: ohfpd\r\nContent-Length: 100\r\n\r\n{\"jsonrpc\""} {
		conn, err := net.Dial("unix", e.sock)
		must(t, err)
		_, _ = conn.Write([]byte(raw))
		if strings.HasPrefix(raw, "POST") {
			conn.Close() // half a request, then gone
			continue
		}
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, _ := io.ReadAll(conn)
		conn.Close()
		if len(b) > 0 && !bytes.HasPrefix(b, []byte("HTTP/1.1 400")) {
			t.Errorf("raw %q answered %.200q; want 400 or a closed connection", raw, b)
		}
	}

	if !e.alive() {
		t.Fatal("ohfpd died under hostile input")
	}
	if after := e.snapshot(id); after != before {
		t.Errorf("hostile input changed what HF sees:\nbefore %s\nafter  %s", before, after)
	}
	if n := len(e.allRequests()); n != rowsBefore {
		t.Errorf("hostile input created requests: %d before, %d after", rowsBefore, n)
	}
	report(t, map[string]any{
		"badInputsThroughBinaries": len(cases), "byOperation": ops, "badInputsStraightToDaemon": direct,
		"rpcGarbage": len(garbage) + 4, "daemonAlive": true, "stateChanged": false,
		"total": len(cases) + direct + len(garbage) + 4,
	})
}

type rpcAnswer struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result"`
	Error   *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (a rpcAnswer) String() string {
	if a.Error != nil {
		return fmt.Sprintf("{id %s error %d %.200q}", a.ID, a.Error.Code, a.Error.Message)
	}
	return fmt.Sprintf("{id %s result %.200s}", a.ID, a.Result)
}

func unixHTTP(sock string) *http.Client {
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
}

func postRPC(t *testing.T, hc *http.Client, body string) (int, rpcAnswer) {
	return doRPC(t, hc, "POST", "/v1/rpc", body)
}

func doRPC(t *testing.T, hc *http.Client, method, path, body string) (int, rpcAnswer) {
	t.Helper()
	req, err := http.NewRequest(method, "http://ohfpd"+path, strings.NewReader(body))
	must(t, err)
	req.URL.Path = path // keep it as sent, unnormalised
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		t.Errorf("%s %s: %v", method, path, err)
		return 0, rpcAnswer{}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var a rpcAnswer
	if err := json.Unmarshal(b, &a); err != nil || a.JSONRPC != "2.0" {
		t.Errorf("%s %s answered HTTP %d %.300q: not a JSON-RPC 2.0 answer", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode, a
}
