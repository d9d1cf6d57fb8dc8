package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/hf"
	"github.com/ohfp/ohfp/internal/rpc"
	"github.com/ohfp/ohfp/internal/rpcserver"
)

// binDir holds the ohfp binary built once for the tests in this package.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ohfpbin")
	if err != nil {
		panic(err)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var buildOnce sync.Once
var buildErr error

// binary builds ohfp with CGO_ENABLED=0 (as the Makefile does) once.
func binary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(binDir, "ohfp")
	buildOnce.Do(func() {
		cmd := exec.Command("go", "build", "-o", bin, "-ldflags", "-X main.version=1.2.3-test", ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("go build: %v", buildErr)
	}
	return bin
}

// fakeDaemon is an rpcserver.Handler standing in for ohfpd's engine.
type fakeDaemon struct {
	mu    sync.Mutex
	calls []call
}

type call struct {
	method string
	input  string
	env    map[string]string
}

func (d *fakeDaemon) Call(ctx context.Context, method string, p rpc.Params) (any, error) {
	d.mu.Lock()
	d.calls = append(d.calls, call{method, string(p.Input), p.Env})
	d.mu.Unlock()
	switch method {
	case hf.OpGetAvailableTemplates:
		return hf.TemplatesReply{Message: "", Templates: []hf.TemplateOut{{AvailableNumber: 3}}}, nil
	case hf.OpRequestMachines:
		rm, err := hf.ParseRequestMachines(p.Input)
		if err != nil {
			return nil, err
		}
		if rm.TemplateID == "nope" {
			return nil, rpc.Errorf(rpc.InvalidInput, `requestMachines: template.templateId "nope" is not a known template; getAvailableTemplates lists them`)
		}
		return hf.RequestReply{RequestID: "req-1", Message: "Request VM from AWS successful."}, nil
	case hf.OpGetRequestStatus:
		return hf.StatusReply{Requests: []hf.RequestStatus{{RequestID: "req-1", Status: hf.StatusRunning}}}, nil
	case hf.OpGetReturnRequests:
		refs, err := hf.ParseGetReturnRequests(p.Input)
		if err != nil {
			return nil, err
		}
		return hf.ReturnRequestsReply{Message: fmt.Sprintf("%d hosts", len(refs)), Requests: []hf.ReturnRequest{}}, nil
	}
	return nil, rpc.Errorf(rpc.MethodNotFound, "no method %s", method)
}

func (d *fakeDaemon) last() (call, int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.calls) == 0 {
		return call{}, 0
	}
	return d.calls[len(d.calls)-1], len(d.calls)
}

// serve starts a fake daemon on a temporary socket.
func serve(t *testing.T) (*fakeDaemon, string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "ohfpsock")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "ohfp.sock")
	ln, err := rpcserver.Listen(path, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	d := &fakeDaemon{}
	s := rpcserver.NewServer(d, rpcserver.ServerOptions{})
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Shutdown(context.Background())
		<-done
	})
	return d, path
}

// exe runs the binary as name (a symlink) with args, env and stdin.
func exe(t *testing.T, name string, args []string, env []string, stdin string) (stdout, stderr string, code int) {
	t.Helper()
	bin := binary(t)
	path := bin
	if name != "ohfp" {
		path = filepath.Join(t.TempDir(), name)
		if err := os.Symlink(bin, path); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(path, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// oneDocument asserts stdout holds exactly one JSON document and returns it.
func oneDocument(t *testing.T, stdout string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(stdout))
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("stdout is not a JSON object: %v\n%s", err, stdout)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("stdout holds more than one JSON document:\n%s", stdout)
	}
	if !strings.HasSuffix(stdout, "}\n") {
		t.Errorf("stdout does not end with a newline: %q", stdout)
	}
	return doc
}

// failure asserts exit 1 and a single {"message": ...} document.
func failure(t *testing.T, stdout string, code int) string {
	t.Helper()
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	doc := oneDocument(t, stdout)
	msg, ok := doc["message"].(string)
	if len(doc) != 1 || !ok || msg == "" {
		t.Fatalf("failure document is not {\"message\": \"...\"}: %s", stdout)
	}
	return msg
}

const goodInput = "{\"template\": {\"templateId\": \"OnDemand-c5\",\n  \"machineCount\": 3}}"

func TestHFCallThroughSymlink(t *testing.T) {
	d, sock := serve(t)
	file := filepath.Join(t.TempDir(), "hf_in_Q2kSeS")
	os.WriteFile(file, []byte(goodInput+"\n"), 0o600)
	env := []string{"OHFP_SOCKET=" + sock, "HF_PROVIDER_NAME=awsinst", "HF_PROVIDER_CONFDIR=/opt/hf/conf", "HF_TOP=/opt/hf"}
	// HF (stdout is not a terminal) gets the daemon's document as it came.
	want := "{\"requestId\":\"req-1\",\"message\":\"Request VM from AWS successful.\"}\n"

	for _, tc := range []struct {
		name  string
		as    string
		args  []string
		stdin string
	}{
		{"symlink -f", "requestMachines.sh", []string{"-f", file}, ""},
		{"symlink without .sh, -f=", "requestMachines", []string{"-f=" + file}, ""},
		{"symlink stdin", "requestMachines.sh", nil, goodInput},
		{"first argument --file", "ohfp", []string{"requestMachines", "--file", file}, ""},
		{"options first", "ohfp", []string{"--socket", sock, "--wait", "2s", "requestMachines", "-f", file}, ""},
		{"-f - reads stdin", "ohfp", []string{"requestMachines", "-f", "-"}, goodInput},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, before := d.last()
			stdout, stderr, code := exe(t, tc.as, tc.args, env, tc.stdin)
			if code != 0 || stdout != want {
				t.Fatalf("exit %d stdout %q stderr %q", code, stdout, stderr)
			}
			c, n := d.last()
			if n != before+1 {
				t.Fatalf("daemon called %d times, want once", n-before)
			}
			if c.method != hf.OpRequestMachines || c.input != goodInput {
				t.Errorf("daemon got %s %q, want the document as written", c.method, c.input)
			}
			wantEnv := map[string]string{"HF_PROVIDER_NAME": "awsinst", "HF_PROVIDER_CONFDIR": "/opt/hf/conf"}
			if !reflect.DeepEqual(c.env, wantEnv) {
				t.Errorf("env %v, want %v", c.env, wantEnv)
			}
		})
	}

	t.Run("getAvailableTemplates", func(t *testing.T) {
		stdout, _, code := exe(t, "getAvailableTemplates.sh", nil, env, "{}")
		doc := oneDocument(t, stdout)
		if code != 0 || doc["templates"] == nil {
			t.Fatalf("exit %d: %s", code, stdout)
		}
	})
	t.Run("getRequestStatus single object", func(t *testing.T) {
		stdout, _, code := exe(t, "getRequestStatus.sh", nil, env, `{"requests": {"requestId": "req-1"}}`)
		doc := oneDocument(t, stdout)
		if code != 0 || len(doc["requests"].([]any)) != 1 {
			t.Fatalf("exit %d: %s", code, stdout)
		}
	})
}

// A large document (getReturnRequests with every host) goes from its file
// to the socket unread: the daemon gets exactly the document, less the
// white space around it, and a broken one gets the same message as when
// the client checks it.
func TestLargeInputFromFile(t *testing.T) {
	d, sock := serve(t)
	env := []string{"OHFP_SOCKET=" + sock}
	dir := t.TempDir()
	var doc strings.Builder
	doc.WriteString("{\"machines\": [")
	n := 0
	for ; doc.Len() <= clientValidateMax+10000; n++ {
		if n > 0 {
			doc.WriteString(",\n  ")
		}
		fmt.Fprintf(&doc, `{"name": "host-%d", "machineId": "i-%08d"}`, n, n)
	}
	doc.WriteString("]}")
	for _, tc := range []struct{ name, lead, trail string }{
		{"bare", "", ""},
		{"white space around", "\n \t\r\n", "\n\n  \n"},
		{"white space beyond 4 KiB at the end", "", strings.Repeat(" ", 5000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
			os.WriteFile(file, []byte(tc.lead+doc.String()+tc.trail), 0o600)
			stdout, stderr, code := exe(t, "getReturnRequests.sh", []string{"-f", file}, env, "")
			if code != 0 || stdout != fmt.Sprintf(`{"message":"%d hosts","requests":[]}`+"\n", n) {
				t.Fatalf("exit %d stdout %q stderr %q", code, stdout, stderr)
			}
			if c, _ := d.last(); c.input != doc.String() {
				t.Fatalf("the daemon got %d bytes (%.40q...%q), want the %d of the document", len(c.input), c.input, c.input[max(0, len(c.input)-20):], doc.Len())
			}
		})
	}

	// Broken after the first 64 KiB, and broken so as to end early and
	// carry a call of its own: refused by the daemon's HF parser, with the
	// message the client gives a small document.
	for _, tail := range []string{
		`, {"name": "x",}]}`,
		`]}},"method":"requestMachines","params":{"input":{"template":{"templateId":"t","machineCount":9}}`,
	} {
		broken := strings.TrimSuffix(doc.String(), "]}") + tail
		file := filepath.Join(dir, "broken.json")
		os.WriteFile(file, []byte(broken), 0o600)
		_, before := d.last()
		stdout, _, code := exe(t, "getReturnRequests.sh", []string{"-f", file}, env, "")
		msg := failure(t, stdout, code)
		want := hf.Validate(hf.OpGetReturnRequests, []byte(broken))
		if want == nil || msg != want.Error() {
			t.Errorf("message %q\nwant         %v", msg, want)
		}
		if c, after := d.last(); after != before+1 || c.method != hf.OpGetReturnRequests {
			t.Errorf("the daemon saw %d calls, the last %s; want one getReturnRequests", after-before, c.method)
		}
	}
}

func TestFailuresPrintOneDocument(t *testing.T) {
	d, sock := serve(t)
	env := []string{"OHFP_SOCKET=" + sock}
	dir := t.TempDir()
	badJSON := filepath.Join(dir, "bad.json")
	os.WriteFile(badJSON, []byte("{\"template\": {\"templateId\": \"a\",\n \"machineCount\": 2,}}"), 0o600)
	unknown := filepath.Join(dir, "unknown.json")
	os.WriteFile(unknown, []byte(`{"template": {"templateId": "nope", "machineCount": 1}}`), 0o600)
	empty := filepath.Join(dir, "empty.json")
	os.WriteFile(empty, nil, 0o600)
	big := filepath.Join(dir, "big.json")
	os.WriteFile(big, []byte(`{"x":"`+strings.Repeat("a", hf.MaxInputBytes)+`"}`), 0o600)
	missingSock := filepath.Join(dir, "no.sock")

	for _, tc := range []struct {
		name    string
		as      string
		args    []string
		env     []string
		stdin   string
		want    string // the exact message, or a prefix ending in "..."
		reaches bool   // the daemon is called
	}{
		{"missing file", "requestMachines.sh", []string{"-f", filepath.Join(dir, "absent.json")}, env, "",
			"cannot read the input file: open " + filepath.Join(dir, "absent.json") + ": no such file or directory", false},
		{"file is a directory", "requestMachines.sh", []string{"-f", dir}, env, "",
			"cannot read " + dir + ": read " + dir + ": is a directory", false},
		{"bad JSON", "requestMachines.sh", []string{"-f", badJSON}, env, "",
			"requestMachines: input is not valid JSON at line 2, column 20: invalid character '}' looking for beginning of object key string", false},
		{"empty file", "requestMachines.sh", []string{"-f", empty}, env, "",
			`requestMachines: input is empty: expected a JSON document such as {"template": {"templateId": "OnDemand-c5", "machineCount": 3}}`, false},
		{"machineCount zero", "requestMachines.sh", nil, env, `{"template": {"templateId": "a", "machineCount": 0}}`,
			"requestMachines: template.machineCount must be a positive whole number, got 0", false},
		{"oversized", "getAvailableTemplates.sh", []string{"-f", big}, env, "",
			"getAvailableTemplates: input is 4194305 bytes, more than the 4194304 bytes (4 MiB) ohfp accepts", false},
		{"daemon error", "requestMachines.sh", []string{"-f", unknown}, env, "",
			`requestMachines: template.templateId "nope" is not a known template; getAvailableTemplates lists them`, true},
		{"daemon down", "requestMachines.sh", []string{"-f", unknown, "--socket", missingSock, "--wait", "200ms"}, env, "",
			"ohfpd is not running at " + missingSock + ": systemctl status ohfpd", false},
		{"daemon down via OHFP_WAIT", "getAvailableTemplates.sh", nil, []string{"OHFP_SOCKET=" + missingSock, "OHFP_WAIT=0"}, "{}",
			"ohfpd is not running at " + missingSock + ": systemctl status ohfpd", false},
		{"unknown operation", "ohfp", []string{"launchRockets"}, env, "",
			`unknown operation "launchRockets": use one of getAvailableTemplates, requestMachines, getRequestStatus, requestReturnMachines, getReturnRequests, or a sysadmin command: cancel, check, config, drain, machines, rearm, requests, return, show, status, templates, undrain (see ohfp help)`, false},
		{"no operation", "ohfp", nil, env, "", "no operation given: run as <operation>.sh -f FILE...", false},
		{"unknown option", "requestMachines.sh", []string{"--frobnicate"}, env, "", "unknown option --frobnicate; run as...", false},
		{"-f without value", "requestMachines.sh", []string{"-f"}, env, "", "-f needs a value", false},
		{"stray argument", "requestMachines.sh", []string{"extra"}, env, "",
			`requestMachines takes no argument "extra": give the input with -f FILE or on stdin`, false},
		{"bad --wait", "requestMachines.sh", []string{"--wait", "soon"}, env, "",
			`--wait "soon" is not a duration such as 10s or 500ms`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, before := d.last()
			stdout, stderr, code := exe(t, tc.as, tc.args, tc.env, tc.stdin)
			msg := failure(t, stdout, code)
			if stderr != "" { // nothing logs, not even go-retryablehttp retrying a missing socket
				t.Errorf("stderr: %q", stderr)
			}
			if p, ok := strings.CutSuffix(tc.want, "..."); ok {
				if !strings.HasPrefix(msg, p) {
					t.Errorf("message %q\nwant prefix  %q", msg, p)
				}
			} else if msg != tc.want {
				t.Errorf("message %q\nwant         %q", msg, tc.want)
			}
			if _, after := d.last(); (after > before) != tc.reaches {
				t.Errorf("daemon reached: %v, want %v", after > before, tc.reaches)
			}
		})
	}
}

func TestVersionAndHelp(t *testing.T) {
	stdout, _, code := exe(t, "ohfp", []string{"--version"}, nil, "")
	if code != 0 || stdout != "ohfp 1.2.3-test\n" {
		t.Fatalf("exit %d %q", code, stdout)
	}
	stdout, _, code = exe(t, "ohfp", []string{"--help"}, nil, "")
	if code != 0 || !strings.Contains(stdout, "Operations: getAvailableTemplates, requestMachines") {
		t.Fatalf("exit %d %q", code, stdout)
	}
}

func TestParseArgs(t *testing.T) {
	env := func(kv ...string) func(string) (string, bool) {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	for _, tc := range []struct {
		name   string
		argv   []string
		env    func(string) (string, bool)
		op     string
		file   string
		socket string
		wait   time.Duration
	}{
		{"argv0 .sh", []string{"/opt/hf/scripts/getRequestStatus.sh", "-f", "/tmp/in"}, env(), "getRequestStatus", "/tmp/in", rpc.DefaultSocket, rpc.DefaultWaitTimeout},
		{"argv0 plain", []string{"requestReturnMachines", "--file=/tmp/x"}, env(), "requestReturnMachines", "/tmp/x", rpc.DefaultSocket, rpc.DefaultWaitTimeout},
		{"first argument", []string{"ohfp", "getReturnRequests"}, env("OHFP_SOCKET", "/s", "OHFP_WAIT", "3"), "getReturnRequests", "", "/s", 3 * time.Second},
		{"flag beats env", []string{"ohfp", "--socket=/a", "-wait", "250ms", "requestMachines"}, env("OHFP_SOCKET", "/s", "OHFP_WAIT", "3"), "requestMachines", "", "/a", 250 * time.Millisecond},
		{"wait 0 tries once", []string{"ohfp", "requestMachines", "--wait=0"}, env(), "requestMachines", "", rpc.DefaultSocket, -1},
		{"argv0 not an op", []string{"/usr/bin/ohfp.sh", "getAvailableTemplates"}, env(), "getAvailableTemplates", "", rpc.DefaultSocket, rpc.DefaultWaitTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv, err := parseArgs(tc.argv, tc.env)
			if err != nil {
				t.Fatal(err)
			}
			if inv.op != tc.op || inv.file != tc.file || inv.socket != tc.socket || inv.wait != tc.wait {
				t.Fatalf("got op %q file %q socket %q wait %v", inv.op, inv.file, inv.socket, inv.wait)
			}
		})
	}
	if _, err := parseArgs([]string{"ohfp", "requestMachines", "--wait", "-5s"}, env()); err == nil {
		t.Error("negative wait accepted")
	}
	if _, err := parseArgs([]string{"ohfp", "requestMachines"}, env("OHFP_WAIT", "x")); err == nil || err.Error() != `OHFP_WAIT "x" is not a duration such as 10s or 500ms` {
		t.Errorf("bad OHFP_WAIT: %v", err)
	}
}
