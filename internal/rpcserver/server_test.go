package rpcserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/hf"
	"github.com/ohfp/ohfp/internal/rpc"
)

// sockPath returns a socket path short enough for sun_path (108 bytes).
func sockPath(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "rpc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "s.sock")
}

// syncBuf is a goroutine-safe log sink.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// echo is a test handler: "echo" returns what it got, "boom" panics, "bad"
// returns an hf input error, "denied" an *rpc.Error, "fail" a plain error.
type echo struct {
	calls atomic.Int64
	mu    sync.Mutex
	last  rpc.Params
}

func (e *echo) Call(ctx context.Context, method string, p rpc.Params) (any, error) {
	e.calls.Add(1)
	e.mu.Lock()
	e.last = p
	e.last.Input = bytes.Clone(p.Input) // the server reuses large bodies
	e.mu.Unlock()
	switch method {
	case "echo":
		peer, ok := PeerFromContext(ctx)
		return map[string]any{"input": p.Input, "env": p.Env, "args": p.Args, "uid": peer.UID, "peerKnown": ok}, nil
	case "boom":
		var m map[string]int
		m["x"] = 1 // nil map write: a real panic
		return nil, nil
	case "bad":
		_, err := hf.ParseRequestMachines(p.Input)
		return nil, rpc.Errorf(rpc.InvalidInput, "%v", err) // as package api maps it
	case "notfound":
		return nil, rpc.Errorf(rpc.NotFound, "no request req-x")
	case "fail":
		return nil, errors.New("store is read-only: cannot record the request")
	case "raw":
		return json.RawMessage(`{"requestId":"req-1","message":""}`), nil
	case "unencodable":
		return func() {}, nil
	}
	return nil, rpc.Errorf(rpc.MethodNotFound, "unknown method %q", method)
}

// start serves h on a fresh socket and returns the server and the path.
func start(t *testing.T, h Handler, opts ServerOptions, setup func(*Server)) (*Server, string) {
	t.Helper()
	path := sockPath(t)
	s := NewServer(h, opts)
	if setup != nil {
		setup(s)
	}
	ln, err := Listen(path, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, path
}

// rawPost posts body to path on the socket and returns the status and the
// decoded rpc.Response.
func rawPost(t *testing.T, sock, method, path, body string) (int, rpc.Response) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return net.Dial("unix", sock)
	}}}
	req, _ := http.NewRequest(method, "http://ohfpd"+path, strings.NewReader(body))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var r rpc.Response
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("answer is not JSON-RPC: %q", data)
	}
	return resp.StatusCode, r
}

func TestRoundTrip(t *testing.T) {
	h := &echo{}
	_, path := start(t, h, ServerOptions{}, nil)
	c := rpc.NewClient(path, rpc.ClientOptions{})
	in := json.RawMessage("{\"template\": {\"templateId\": \"OnDemand-c5\",\n  \"machineCount\": 3}}")
	var got struct {
		Input     json.RawMessage   `json:"input"`
		Env       map[string]string `json:"env"`
		Args      json.RawMessage   `json:"args"`
		UID       uint32            `json:"uid"`
		PeerKnown bool              `json:"peerKnown"`
	}
	err := c.Call(context.Background(), "echo", rpc.Params{Input: in, Env: map[string]string{"HF_PROVIDER_NAME": "awsinst"}, Args: json.RawMessage(`["x"]`)}, &got)
	if err != nil {
		t.Fatal(err)
	}
	h.mu.Lock() // the socket is no happens-before edge for the race detector
	last := h.last
	h.mu.Unlock()
	if !bytes.Equal(last.Input, in) {
		t.Errorf("input = %q, want the bytes sent %q", last.Input, in)
	}
	if err := c.Call(context.Background(), "echo", rpc.Params{Input: json.RawMessage(`{"a":`)}, nil); err == nil || err.Error() != "cannot call echo: its input is not valid JSON" {
		t.Errorf("invalid input: %v", err)
	}
	if got.Env["HF_PROVIDER_NAME"] != "awsinst" || string(got.Args) != `["x"]` {
		t.Errorf("env/args = %v %s", got.Env, got.Args)
	}
	if !got.PeerKnown || got.UID != uint32(os.Getuid()) {
		t.Errorf("peer = %d known %v, want uid %d from SO_PEERCRED", got.UID, got.PeerKnown, os.Getuid())
	}

	var raw json.RawMessage
	if err := c.Call(context.Background(), "raw", rpc.Params{}, &raw); err != nil || string(raw) != `{"requestId":"req-1","message":""}` {
		t.Errorf("raw result = %s, %v", raw, err)
	}
	if err := c.Call(context.Background(), "raw", rpc.Params{}, nil); err != nil {
		t.Errorf("nil result: %v", err)
	}
}

// Large calls are read into pooled buffers: each call sees its own input
// whole, one after another and at once, whatever the sizes.
func TestLargeCallsReuseBuffers(t *testing.T) {
	_, path := start(t, &echo{}, ServerOptions{}, nil)
	c := rpc.NewClient(path, rpc.ClientOptions{})
	doc := func(i int) json.RawMessage {
		n := []int{200 << 10, 100 << 10, 150 << 10, 90 << 10, 300 << 10}[i%5]
		return json.RawMessage(`{"x":"` + strings.Repeat(string(rune('a'+i%26)), n) + `"}`)
	}
	call := func(i int) error {
		var got struct {
			Input json.RawMessage `json:"input"`
		}
		if err := c.Call(context.Background(), "echo", rpc.Params{Input: doc(i)}, &got); err != nil {
			return err
		}
		if !bytes.Equal(got.Input, doc(i)) {
			return fmt.Errorf("call %d: the daemon read %d bytes (%.20q...), not the %d sent", i, len(got.Input), got.Input, len(doc(i)))
		}
		return nil
	}
	for i := range 6 {
		if err := call(i); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() { errs <- call(i) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestErrorsCrossTheWire(t *testing.T) {
	_, path := start(t, &echo{}, ServerOptions{}, nil)
	c := rpc.NewClient(path, rpc.ClientOptions{})
	for _, tc := range []struct {
		method string
		input  string
		code   int
		msg    string
	}{
		{"bad", `{"template": {"templateId": "a", "machineCount": 0}}`, rpc.InvalidInput, "requestMachines: template.machineCount must be a positive whole number, got 0"},
		{"notfound", `{}`, rpc.NotFound, "no request req-x"},
		{"fail", `{}`, rpc.Internal, "store is read-only: cannot record the request"},
		{"nosuch", `{}`, rpc.MethodNotFound, `unknown method "nosuch"`},
		{"unencodable", `{}`, rpc.Internal, "internal error in ohfpd: cannot encode the answer to unencodable"},
	} {
		err := c.Call(context.Background(), tc.method, rpc.Params{Input: json.RawMessage(tc.input)}, nil)
		var e *rpc.Error
		if !errors.As(err, &e) {
			t.Errorf("%s: error %T %v, want *rpc.Error", tc.method, err, err)
			continue
		}
		if e.Code != tc.code || !strings.HasPrefix(e.Message, tc.msg) || rpc.CodeOf(err) != tc.code {
			t.Errorf("%s: got %d %q, want %d %q", tc.method, e.Code, e.Message, tc.code, tc.msg)
		}
	}
}

func TestOversizedBody(t *testing.T) {
	h := &echo{}
	_, path := start(t, h, ServerOptions{MaxBodyBytes: 1024}, nil)
	c := rpc.NewClient(path, rpc.ClientOptions{})
	big := json.RawMessage(`"` + strings.Repeat("x", 64<<10) + `"`)
	err := c.Call(context.Background(), "echo", rpc.Params{Input: big}, nil)
	var e *rpc.Error
	if !errors.As(err, &e) || e.Code != rpc.InvalidRequest || e.Message != "the call is larger than the 1024 bytes ohfpd accepts; HF documents are limited to 4194304 bytes" {
		t.Fatalf("got %v", err)
	}
	if h.calls.Load() != 0 {
		t.Fatal("handler called for an oversized body")
	}
	status, _ := rawPost(t, path, "POST", rpc.Path, `{"jsonrpc":"2.0","id":1,"method":"echo","params":{"input":"`+strings.Repeat("y", 2000)+`"}}`)
	if status != http.StatusRequestEntityTooLarge {
		t.Errorf("status %d, want 413", status)
	}
	// A body just under the limit still works.
	if err := c.Call(context.Background(), "echo", rpc.Params{Input: json.RawMessage(`"small"`)}, nil); err != nil {
		t.Fatal(err)
	}
}

func TestMalformedEnvelope(t *testing.T) {
	h := &echo{}
	_, path := start(t, h, ServerOptions{}, nil)
	for _, tc := range []struct {
		name, method, path, body string
		status, code             int
		id                       string
		msg                      string
	}{
		{"not JSON", "POST", rpc.Path, `{"jsonrpc":`, 400, rpc.ParseError, "null", "the call is not valid JSON"},
		{"garbage", "POST", rpc.Path, `hello`, 400, rpc.ParseError, "null", "the call is not valid JSON: invalid character 'h'"},
		{"empty", "POST", rpc.Path, ``, 400, rpc.InvalidRequest, "null", "the call is empty"},
		{"array", "POST", rpc.Path, `[{"jsonrpc":"2.0","id":1,"method":"echo"}]`, 400, rpc.InvalidRequest, "null", "the call is not a JSON-RPC 2.0 request object"},
		{"wrong version", "POST", rpc.Path, `{"jsonrpc":"1.0","id":7,"method":"echo"}`, 400, rpc.InvalidRequest, "7", `the call must say "jsonrpc": "2.0"`},
		{"no version", "POST", rpc.Path, `{"id":"a","method":"echo"}`, 400, rpc.InvalidRequest, `"a"`, `the call must say "jsonrpc": "2.0"`},
		{"no id", "POST", rpc.Path, `{"jsonrpc":"2.0","method":"echo"}`, 400, rpc.InvalidRequest, "null", "the call's id must be a number or a string"},
		{"null id", "POST", rpc.Path, `{"jsonrpc":"2.0","id":null,"method":"echo"}`, 400, rpc.InvalidRequest, "null", "the call's id must be a number or a string"},
		{"object id", "POST", rpc.Path, `{"jsonrpc":"2.0","id":{},"method":"echo"}`, 400, rpc.InvalidRequest, "null", "the call's id must be"},
		{"no method", "POST", rpc.Path, `{"jsonrpc":"2.0","id":3}`, 400, rpc.InvalidRequest, "3", "the call has no method"},
		{"method number", "POST", rpc.Path, `{"jsonrpc":"2.0","id":3,"method":5}`, 400, rpc.InvalidRequest, "null", "the call is not a JSON-RPC 2.0 request object"},
		{"params not object", "POST", rpc.Path, `{"jsonrpc":"2.0","id":4,"method":"echo","params":5}`, 200, rpc.InvalidInput, "4", "the params of echo must be an object"},
		{"env not strings", "POST", rpc.Path, `{"jsonrpc":"2.0","id":4,"method":"echo","params":{"env":{"A":1}}}`, 200, rpc.InvalidInput, "4", "the params of echo must be an object"},
		{"GET", "GET", rpc.Path, ``, 405, rpc.InvalidRequest, "null", "GET /v1/rpc is not allowed: use POST"},
		{"wrong path", "POST", "/v2/rpc", `{}`, 404, rpc.MethodNotFound, "null", "no such endpoint /v2/rpc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, r := rawPost(t, path, tc.method, tc.path, tc.body)
			if status != tc.status {
				t.Errorf("status %d, want %d", status, tc.status)
			}
			if r.JSONRPC != "2.0" || r.Error == nil || r.Error.Code != tc.code || !strings.HasPrefix(r.Error.Message, tc.msg) {
				t.Errorf("got %+v %+v, want code %d message %q", r, r.Error, tc.code, tc.msg)
			}
			if string(r.ID) != tc.id {
				t.Errorf("id %s, want %s", r.ID, tc.id)
			}
		})
	}
	if n := h.calls.Load(); n != 0 {
		t.Errorf("handler called %d times for malformed calls", n)
	}
	// A params of null is no params.
	status, r := rawPost(t, path, "POST", rpc.Path, `{"jsonrpc":"2.0","id":"x","method":"raw","params":null}`)
	if status != 200 || r.Error != nil || string(r.ID) != `"x"` {
		t.Errorf("null params: %d %+v", status, r)
	}
}

func TestExtraHandler(t *testing.T) {
	extra := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"jsonrpc":"2.0","id":null,"result":"metrics here"}`))
	})
	_, path := start(t, &echo{}, ServerOptions{Extra: extra}, nil)
	status, r := rawPost(t, path, "GET", "/metrics", "")
	if status != 200 || string(r.Result) != `"metrics here"` {
		t.Fatalf("extra: %d %+v", status, r)
	}
}

func TestHandlerPanic(t *testing.T) {
	logs := &syncBuf{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	_, path := start(t, &echo{}, ServerOptions{Logger: log}, nil)
	c := rpc.NewClient(path, rpc.ClientOptions{})
	err := c.Call(context.Background(), "boom", rpc.Params{}, nil)
	var e *rpc.Error
	if !errors.As(err, &e) || e.Code != rpc.Internal || e.Message != "internal error in ohfpd while handling boom (details in the ohfpd log); the call was not completed, ohfpd keeps serving" {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(logs.String(), "panic in handler") || !strings.Contains(logs.String(), "assignment to entry in nil map") {
		t.Errorf("panic not logged: %s", logs.String())
	}
	// Still serving.
	if err := c.Call(context.Background(), "raw", rpc.Params{}, nil); err != nil {
		t.Fatalf("after panic: %v", err)
	}
}

func TestPermissions(t *testing.T) {
	const self = 5000
	type tc struct {
		name   string
		opts   ServerOptions
		peer   Peer
		noPeer bool
		groups []uint32
		want   string // "" means allowed
	}
	for _, c := range []tc{
		{"open socket", ServerOptions{}, Peer{UID: 1001, GID: 1001}, false, nil, ""},
		{"open socket, no credentials", ServerOptions{}, Peer{}, true, nil, ""},
		{"root", ServerOptions{AllowedUIDs: []uint32{42}}, Peer{UID: 0}, false, nil, ""},
		{"daemon's own uid", ServerOptions{AllowedGIDs: []uint32{42}}, Peer{UID: self, GID: 7}, false, nil, ""},
		{"listed uid", ServerOptions{AllowedUIDs: []uint32{1001}}, Peer{UID: 1001, GID: 1001}, false, nil, ""},
		{"primary group", ServerOptions{AllowedGIDs: []uint32{990}}, Peer{UID: 1001, GID: 990}, false, nil, ""},
		{"supplementary group", ServerOptions{AllowedGIDs: []uint32{990}}, Peer{UID: 1001, GID: 1001}, false, []uint32{1001, 27, 990}, ""},
		{"not in group", ServerOptions{AllowedGIDs: []uint32{990}}, Peer{UID: 1001, GID: 1001}, false, []uint32{1001, 27},
			"permission denied: uid 1001 is not allowed to use ohfpd (add it to group ohfp)"},
		{"not listed", ServerOptions{AllowedUIDs: []uint32{1002}}, Peer{UID: 1001, GID: 1001}, false, []uint32{1001},
			"permission denied: uid 1001 is not allowed to use ohfpd (allow it in the ohfpd configuration)"},
		{"no credentials", ServerOptions{AllowedUIDs: []uint32{1002}}, Peer{}, true, nil,
			"permission denied: ohfpd cannot tell who is calling (no peer credentials on this connection)"},
		// The kernel's list of the caller's groups (SO_PEERGROUPS) decides;
		// the user's groups are looked up only when the kernel did not tell.
		{"supplementary group from the kernel", ServerOptions{AllowedGIDs: []uint32{990}}, Peer{UID: 1001, GID: 1001, Groups: []uint32{27, 990}}, false, nil, ""},
		{"the kernel's groups lack it", ServerOptions{AllowedGIDs: []uint32{990}}, Peer{UID: 1001, GID: 1001, Groups: []uint32{}}, false, []uint32{990},
			"permission denied: uid 1001 is not allowed to use ohfpd (add it to group ohfp)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := &echo{}
			_, path := start(t, h, c.opts, func(s *Server) {
				s.selfUID = self
				s.peerOf = func(net.Conn) (Peer, error) {
					if c.noPeer {
						return Peer{}, errors.New("no credentials")
					}
					return c.peer, nil
				}
				s.groupsOf = func(uid uint32) ([]uint32, error) {
					if uid != c.peer.UID {
						t.Errorf("groups asked for uid %d", uid)
					}
					if c.peer.Groups != nil {
						t.Errorf("groups looked up although the kernel gave them")
					}
					return c.groups, nil
				}
				s.nameOf = func(gid uint32) string {
					if gid == 990 {
						return "ohfp"
					}
					return "with gid " + strconv.Itoa(int(gid))
				}
			})
			err := rpc.NewClient(path, rpc.ClientOptions{}).Call(context.Background(), "raw", rpc.Params{}, nil)
			if c.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var e *rpc.Error
			if !errors.As(err, &e) || e.Code != rpc.PermissionDenied || e.Message != c.want {
				t.Fatalf("got %v, want %q", err, c.want)
			}
			if h.calls.Load() != 0 {
				t.Fatal("handler called for a refused caller")
			}
		})
	}
}

func TestGroupCache(t *testing.T) {
	s := NewServer(&echo{}, ServerOptions{AllowedGIDs: []uint32{990}})
	now := time.Unix(1000, 0)
	s.now = func() time.Time { return now }
	s.selfUID = 5000
	lookups := 0
	member := false
	s.groupsOf = func(uint32) ([]uint32, error) {
		lookups++
		if member {
			return []uint32{990}, nil
		}
		return []uint32{1}, nil
	}
	s.nameOf = func(uint32) string { return "ohfp" }
	p := Peer{UID: 1001, GID: 1001}
	if s.authorize(p, true) == nil {
		t.Fatal("allowed before joining")
	}
	member = true
	if s.authorize(p, true) == nil || lookups != 1 {
		t.Fatalf("cache not used: %d lookups", lookups)
	}
	now = now.Add(groupCacheTTL)
	if e := s.authorize(p, true); e != nil || lookups != 2 {
		t.Fatalf("after the TTL: %v, %d lookups", e, lookups)
	}
}

func TestListen(t *testing.T) {
	t.Run("creates the directory, mode 0660", func(t *testing.T) {
		path := filepath.Join(filepath.Dir(sockPath(t)), "run", "ohfp", "s.sock")
		ln, err := Listen(path, 0, "")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o660 {
			t.Fatalf("socket %v %v", fi.Mode(), err)
		}
	})
	t.Run("custom mode and group", func(t *testing.T) {
		path := sockPath(t)
		g, err := user.LookupGroupId(strconv.Itoa(os.Getgid()))
		if err != nil {
			t.Skip("no name for my group:", err)
		}
		ln, err := Listen(path, 0o600, g.Name)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		fi, _ := os.Stat(path)
		if fi.Mode().Perm() != 0o600 || int(fi.Sys().(*syscall.Stat_t).Gid) != os.Getgid() {
			t.Fatalf("mode %v gid %d", fi.Mode(), fi.Sys().(*syscall.Stat_t).Gid)
		}
	})
	t.Run("missing group", func(t *testing.T) {
		path := sockPath(t)
		ln, err := Listen(path, 0, "ohfp-no-such-group-x")
		var ge *GroupError
		if !errors.As(err, &ge) || ln == nil {
			t.Fatalf("got %v, %v; want a listener and a *GroupError", ln, err)
		}
		defer ln.Close()
		if !strings.HasPrefix(err.Error(), `socket `+path+`: group "ohfp-no-such-group-x" does not exist`) {
			t.Errorf("message %q", err)
		}
		// The listener works.
		s := NewServer(&echo{}, ServerOptions{})
		go s.Serve(ln)
		defer s.Shutdown(context.Background())
		if err := rpc.NewClient(path, rpc.ClientOptions{}).Call(context.Background(), "raw", rpc.Params{}, nil); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("stale socket removed", func(t *testing.T) {
		path := sockPath(t)
		old, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		old.(*net.UnixListener).SetUnlinkOnClose(false)
		old.Close()
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("stale socket not left behind: %v", err)
		}
		ln, err := Listen(path, 0, "")
		if err != nil {
			t.Fatalf("stale socket not replaced: %v", err)
		}
		ln.Close()
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket left after Close: %v", err)
		}
	})
	t.Run("live socket refused", func(t *testing.T) {
		_, path := start(t, &echo{}, ServerOptions{}, nil)
		ln, err := Listen(path, 0, "")
		if err == nil {
			ln.Close()
			t.Fatal("stole a live socket")
		}
		if !errors.Is(err, ErrInUse) || !strings.HasPrefix(err.Error(), "another ohfpd is already serving on "+path) {
			t.Fatalf("got %v", err)
		}
		// The live daemon still answers.
		if err := rpc.NewClient(path, rpc.ClientOptions{}).Call(context.Background(), "raw", rpc.Params{}, nil); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("not a socket", func(t *testing.T) {
		path := sockPath(t)
		os.WriteFile(path, []byte("x"), 0o644)
		if _, err := Listen(path, 0, ""); err == nil || err.Error() != path+" exists and is not a socket: remove it or choose another socket path" {
			t.Fatalf("got %v", err)
		}
	})
}

func TestClientWaitsForSocket(t *testing.T) {
	path := sockPath(t)
	s := NewServer(&echo{}, ServerOptions{})
	served := make(chan error, 1)
	go func() {
		time.Sleep(300 * time.Millisecond) // the daemon restarting
		ln, err := Listen(path, 0, "")
		if err != nil {
			served <- err
			return
		}
		served <- s.Serve(ln)
	}()
	defer func() {
		s.Shutdown(context.Background())
		if err := <-served; err != nil {
			t.Error(err)
		}
	}()
	var raw json.RawMessage
	if err := rpc.NewClient(path, rpc.ClientOptions{WaitTimeout: 20 * time.Second}).Call(context.Background(), "raw", rpc.Params{}, &raw); err != nil {
		t.Fatalf("client did not wait for the daemon: %v", err)
	}
}

func TestClientGivesUp(t *testing.T) {
	t.Run("no socket", func(t *testing.T) {
		path := sockPath(t)
		err := rpc.NewClient(path, rpc.ClientOptions{WaitTimeout: 200 * time.Millisecond}).Call(context.Background(), "raw", rpc.Params{}, nil)
		if err == nil || err.Error() != "ohfpd is not running at "+path+": systemctl status ohfpd" {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("stale socket", func(t *testing.T) {
		path := sockPath(t)
		old, _ := net.Listen("unix", path)
		old.(*net.UnixListener).SetUnlinkOnClose(false)
		old.Close()
		err := rpc.NewClient(path, rpc.ClientOptions{WaitTimeout: -1}).Call(context.Background(), "raw", rpc.Params{}, nil)
		if err == nil || err.Error() != "ohfpd is not running at "+path+": systemctl status ohfpd" {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		path := sockPath(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := rpc.NewClient(path, rpc.ClientOptions{}).Call(ctx, "raw", rpc.Params{}, nil)
		if err == nil || !strings.HasPrefix(err.Error(), "the call to raw was cancelled") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestClientPermissionDeniedOnConnect(t *testing.T) {
	if os.Getuid() == 0 {
		t.Skip("root connects to any socket")
	}
	_, path := start(t, &echo{}, ServerOptions{}, nil)
	os.Chmod(path, 0)
	err := rpc.NewClient(path, rpc.ClientOptions{WaitTimeout: 100 * time.Millisecond}).Call(context.Background(), "raw", rpc.Params{}, nil)
	if err == nil || !strings.HasPrefix(err.Error(), "permission denied on "+path+": add your user to group ") {
		t.Fatalf("got %v", err)
	}
}

// A call the daemon may have received is never sent twice.
func TestClientDoesNotResend(t *testing.T) {
	path := sockPath(t)
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepts atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepts.Add(1)
			c.Read(make([]byte, 512)) // receive part of the call, then die
			c.Close()
		}
	}()
	err = rpc.NewClient(path, rpc.ClientOptions{WaitTimeout: 5 * time.Second}).Call(context.Background(), "requestMachines", rpc.Params{Input: json.RawMessage(`{}`)}, nil)
	if err == nil || !strings.HasPrefix(err.Error(), "ohfpd at "+path+" closed the connection without answering requestMachines") {
		t.Fatalf("got %v", err)
	}
	if n := accepts.Load(); n != 1 {
		t.Fatalf("call sent %d times", n)
	}
}

func TestShutdownFinishesInFlight(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	h := HandlerFunc(func(ctx context.Context, method string, p rpc.Params) (any, error) {
		close(started)
		<-release
		return "done", nil
	})
	path := sockPath(t)
	s := NewServer(h, ServerOptions{})
	ln, err := Listen(path, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()

	answer := make(chan error, 1)
	var got string
	go func() {
		answer <- rpc.NewClient(path, rpc.ClientOptions{}).Call(context.Background(), "slow", rpc.Params{}, &got)
	}()
	<-started
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	// Wait until the listener is closed: new callers are turned away.
	for {
		c, err := net.Dial("unix", path)
		if err != nil {
			break
		}
		c.Close()
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	if err := <-answer; err != nil || got != "done" {
		t.Fatalf("in-flight call: %q, %v", got, err)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}
