package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/apitype"
	"unicode/utf8"

	"github.com/ohfp/ohfp/internal/hf"
	"github.com/ohfp/ohfp/internal/rpc"
	"github.com/ohfp/ohfp/internal/rpcserver"
)

// adminDaemon is a fake ohfpd answering the sysadmin methods with canned,
// realistic documents (shaped as internal/engine's results).
type adminDaemon struct {
	docs map[string]string // method (or "show ID", "getAvailableTemplates PROVIDER") -> result JSON

	// watch: "show ID" answers with status running for the first
	// runningFor calls, then final (complete or complete_with_error).
	watchID    string
	runningFor int
	final      hf.Status
	reloadErr  string
	deny       string // every call refused with this, as PermissionDenied

	mu    sync.Mutex
	calls []adminCall
	shows int
}

type adminCall struct {
	method string
	args   string
	env    map[string]string
	input  string
}

func (d *adminDaemon) Call(ctx context.Context, method string, p rpc.Params) (any, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, adminCall{method, string(p.Args), p.Env, string(p.Input)})
	var a struct {
		ID      string `json:"id"`
		Request string `json:"request"`
	}
	json.Unmarshal(p.Args, &a)
	if d.deny != "" {
		return nil, rpc.Errorf(rpc.PermissionDenied, "%s", d.deny)
	}
	switch method {
	case "show":
		if a.ID == d.watchID && d.watchID != "" {
			d.shows++
			return json.RawMessage(watchDoc(a.ID, d.shows, d.runningFor, d.final)), nil
		}
		if doc, ok := d.docs["show "+a.ID]; ok {
			return json.RawMessage(doc), nil
		}
		return nil, rpc.Errorf(rpc.NotFound, "request or machine %s is not known to ohfpd", a.ID)
	case "machines":
		if a.Request != "" && a.Request == d.watchID {
			return json.RawMessage(`[{"machineId":"i-1","result":"succeed","status":"running","weight":2},{"machineId":"i-2","result":"executing","status":"pending","weight":1}]`), nil
		}
		if a.Request == "req-missing" {
			return nil, rpc.Errorf(rpc.NotFound, "request req-missing is not known to ohfpd")
		}
	case "reload":
		if d.reloadErr != "" {
			return nil, rpc.Errorf(rpc.InvalidInput, "the new configuration was refused and the old one stays in force: %s", d.reloadErr)
		}
	case hf.OpGetAvailableTemplates:
		method += " " + p.Env["HF_PROVIDER_NAME"]
	}
	if doc, ok := d.docs[method]; ok {
		return json.RawMessage(doc), nil
	}
	return nil, rpc.Errorf(rpc.MethodNotFound, "no method %s", method)
}

func (d *adminDaemon) callsOf(method string) []adminCall {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []adminCall
	for _, c := range d.calls {
		if c.method == method {
			out = append(out, c)
		}
	}
	return out
}

// watchDoc is the "show" answer for a 3-unit request with one weight-2
// machine up and one starting, until it turns final.
func watchDoc(id string, n, runningFor int, final hf.Status) string {
	status, msg := "running", "2 of 3 units running; 1 machine starting"
	machines := `[{"machineId":"i-1","name":"ip-10-0-0-4.ec2.internal","result":"succeed","status":"running","privateIpAddress":"10.0.0.4","publicIpAddress":null,"launchtime":1700000000,"message":"","instanceType":"c5.xlarge","priceType":"ondemand","instanceTags":"","cloudHostId":null},
	{"machineId":"i-2","name":"","result":"executing","status":"pending","privateIpAddress":null,"publicIpAddress":null,"launchtime":1700000000,"message":"","instanceType":"c5.large","priceType":"ondemand","instanceTags":"","cloudHostId":null}]`
	if n > runningFor {
		status = string(final)
		if final == hf.StatusComplete {
			msg = "3 of 3 units running"
			machines = strings.Replace(machines, `"result":"executing","status":"pending"`, `"result":"succeed","status":"running"`, 1)
		} else {
			msg = "2 of 3 units running; 1 machine failed: InsufficientInstanceCapacity"
			machines = strings.Replace(machines, `"result":"executing","status":"pending"`, `"result":"fail","status":"terminated"`, 1)
		}
	}
	return fmt.Sprintf(`{"request":{"id":%q,"kind":"acquire","provider":"awsinst","templateId":"OnDemand-c5","units":3,"createdAt":"2024-05-01T10:00:00Z","phase":"launched","machineIds":["i-1","i-2"]},
		"status":{"requestId":%q,"status":%q,"message":%q,"machines":%s}}`, id, id, status, msg, machines)
}

// Times relative to now, far enough apart that "2h5m ago" holds however
// slowly the test runs.
var (
	t0       = time.Now()
	started  = t0.Add(-(2*time.Hour + 5*time.Minute + 10*time.Second)).UTC().Format(time.RFC3339Nano)
	created  = t0.Add(-(26*time.Hour + 30*time.Second)).UTC().Format(time.RFC3339Nano)
	recent   = t0.Add(-5 * time.Second).UTC().Format(time.RFC3339Nano)
	launched = t0.Add(-(3*time.Hour + 2*time.Minute + 5*time.Second)).Unix()
)

func cannedDocs() map[string]string {
	return map[string]string{
		"status": `{"version":"9.9.9","started":"` + started + `","uptimeSeconds":7510,"clusterId":"prod-a",
			"providers":["awsinst","awsspot"],
			"requests":{"acquire running":2,"acquire complete":10,"return complete":3},
			"machines":{"running":12,"pending":2,"terminated":5},"liveMachines":14,
			"inFlight":2,"lastReconcile":"` + recent + `","lastReconcileMs":340,"reconciles":1234,"listings":41,"lastListing":"` + recent + `","lastListingMs":1250,
			"lastReconcileError":"DescribeInstances: RequestLimitExceeded",
			"aws":{
			  "awsspot":{"summary":"AWS throttling, retrying in 8 s","health":{"LastError":"RunInstances: throttled","LastErrorAt":"` + started + `","Throttled":true,"Unreachable":false,"Failures":3,"RetryAt":"` + recent + `","RetryIn":8000000000,"Calls":{"RunInstances":20,"DescribeInstances":10},"Errors":{"RunInstances":4,"DescribeInstances":1},"Throttles":{"RunInstances":3,"DescribeInstances":1}}},
			  "awsinst":{"summary":"ok","health":{"LastError":"","LastErrorAt":"0001-01-01T00:00:00Z","Throttled":false,"Unreachable":false,"Failures":0,"RetryAt":"0001-01-01T00:00:00Z","RetryIn":0,"Calls":{"DescribeInstances":12},"Errors":{},"Throttles":{}}}}}`,
		"requests": `[{"requestId":"req-a1","kind":"acquire","provider":"awsinst","templateId":"OnDemand-c5","units":5,"machines":3,"status":"running","message":"3 of 5 units running; 2 machines starting","created":"` + created + `"},
			{"requestId":"ret-b2","kind":"return","provider":"awsspot","machines":1,"status":"running","message":"0 of 1 machines terminated","created":"` + created + `"}]`,
		"machines": `[{"machineId":"i-0abc","name":"ip-10-0-0-4.ec2.internal","result":"succeed","status":"running","privateIpAddress":"10.0.0.4","publicIpAddress":null,"launchtime":` + fmt.Sprint(launched) + `,"message":"","instanceType":"c5.xlarge","priceType":"spot","instanceTags":"cluster=demo","cloudHostId":null,"requestId":"req-a1","returnId":"ret-b2","templateId":"Spot-c5","weight":2}]`,
		"getAvailableTemplates awsinst": `{"message":"2 templates from provider awsinst","templates":[
			{"templateId":"OnDemand-c5","maxNumber":20,"attributes":{"type":["String","X86_64"],"ncpus":["Numeric","2"],"nram":["Numeric","4096"]},"vmType":"c5.large","priceType":"ondemand","availableNumber":17},
			{"templateId":"Fleet-mixed","maxNumber":-1,"attributes":{"type":["String","X86_64"],"ncpus":["Numeric","4"],"nram":["Numeric","16384"]},"vmTypes":{"m5.xlarge":1,"m5.2xlarge":2},"priceType":"heterogeneous","providerApi":"EC2Fleet","fleetType":"instant","availableNumber":-1}]}`,
		"getAvailableTemplates awsspot": `{"message":"1 template from provider awsspot","templates":[
			{"templateId":"Spot-c5","maxNumber":50,"attributes":{"type":["String","ARM64"],"ncpus":["Numeric","8"],"nram":["Numeric","32768"]},"vmType":"c6g.2xlarge","priceType":"spot","providerApi":"SpotFleet","availableNumber":48}]}`,
		"show req-a1": `{"request":{"id":"req-a1","kind":"acquire","provider":"awsinst","templateId":"OnDemand-c5","units":5,"createdAt":"` + created + `","phase":"launched","attempts":2,"handle":"fleet-0123","retryNote":"AWS throttling, retrying in 8 s","machineIds":["i-0abc","i-0def"]},
			"status":{"requestId":"req-a1","status":"running","message":"3 of 5 units running; 2 machines starting","machines":[
			{"machineId":"i-0abc","name":"ip-10-0-0-4.ec2.internal","result":"succeed","status":"running","privateIpAddress":"10.0.0.4","publicIpAddress":null,"launchtime":` + fmt.Sprint(launched) + `,"message":"","instanceType":"c5.xlarge","priceType":"ondemand","instanceTags":"","cloudHostId":null},
			{"machineId":"i-0def","name":"","result":"executing","status":"pending","privateIpAddress":null,"publicIpAddress":null,"launchtime":0,"message":"","instanceType":"c5.large","priceType":"ondemand","instanceTags":"","cloudHostId":null}]}}`,
		"show ip-10-0-0-4.ec2.internal": `{"machine":{"id":"i-0abc","requestId":"req-a1","provider":"awsinst","templateId":"OnDemand-c5","name":"ip-10-0-0-4.ec2.internal","privateIp":"10.0.0.4","state":"running","instanceType":"c5.xlarge","spot":true,"weight":2,"launchTime":"` + started + `","tags":"cluster=demo","result":"succeed","lastSeen":"` + recent + `"}}`,
		"reload":                        `{"message":"configuration reloaded"}`,
	}
}

// serveAdmin starts d on a temporary socket and returns the environment
// pointing ohfp at it.
func serveAdmin(t *testing.T, d *adminDaemon) []string {
	t.Helper()
	if d.docs == nil {
		d.docs = cannedDocs()
	}
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
	s := rpcserver.NewServer(d, rpcserver.ServerOptions{})
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Shutdown(context.Background())
		<-done
	})
	return []string{"OHFP_SOCKET=" + path}
}

// lines splits output into lines with runs of spaces collapsed to one, so
// table rows compare without depending on column widths.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		out = append(out, strings.Join(strings.Fields(l), " "))
	}
	return out
}

// columns checks that every line of a table starts its cells at the same
// offsets as the header's: the table is aligned.
func columns(t *testing.T, table string) {
	t.Helper()
	ls := strings.Split(strings.TrimRight(table, "\n"), "\n")
	starts := func(l string) []int {
		var s []int
		for _, m := range regexp.MustCompile(`(^|  )\S`).FindAllStringIndex(l, -1) {
			s = append(s, utf8.RuneCountInString(l[:m[1]-1])) // tabwriter counts runes
		}
		return s
	}
	hdr := starts(ls[0])
	for _, l := range ls[1:] {
		got := starts(l)
		if len(got) < len(hdr)-1 { // the last column (a message) may hold spaces
			t.Errorf("row %q has %d cells, header %d", l, len(got), len(hdr))
			continue
		}
		for i := range hdr {
			if i < len(got) && got[i] != hdr[i] && i < len(hdr)-1 {
				t.Errorf("row %q: cell %d at column %d, header at %d", l, i, got[i], hdr[i])
			}
		}
	}
}

// sameJSON asserts that stdout parses and equals the canned document.
func sameJSON(t *testing.T, stdout, want string) {
	t.Helper()
	var got, exp any
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, stdout)
	}
	if err := json.Unmarshal([]byte(want), &exp); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, exp) {
		t.Errorf("--json output\n%s\ndiffers from the daemon's answer\n%s", stdout, want)
	}
	if !strings.Contains(stdout, "\n  ") {
		t.Errorf("--json output is not indented: %s", stdout)
	}
}

// ok runs ohfp with args and requires exit 0 and an empty stderr.
func ok(t *testing.T, env []string, args ...string) string {
	t.Helper()
	stdout, stderr, code := exe(t, "ohfp", args, env, "")
	if code != 0 || stderr != "" {
		t.Fatalf("ohfp %v: exit %d, stderr %q, stdout %q", args, code, stderr, stdout)
	}
	return stdout
}

// bad runs ohfp with args and requires exit 1, nothing on stdout and
// stderr matching want.
func bad(t *testing.T, env []string, want string, args ...string) {
	t.Helper()
	stdout, stderr, code := exe(t, "ohfp", args, env, "")
	if code != 1 || stdout != "" || !regexp.MustCompile(want).MatchString(stderr) {
		t.Errorf("ohfp %v: exit %d, stdout %q, stderr %q; want exit 1 and stderr matching %q", args, code, stdout, stderr, want)
	}
}

// misuse runs ohfp with args and requires exit 64 (EX_USAGE: a command
// line refused, which a monitor cannot take for "degraded"), nothing on
// stdout and stderr matching want.
func misuse(t *testing.T, env []string, want string, args ...string) {
	t.Helper()
	stdout, stderr, code := exe(t, "ohfp", args, env, "")
	if code != exitUsage || stdout != "" || !regexp.MustCompile(want).MatchString(stderr) {
		t.Errorf("ohfp %v: exit %d, stdout %q, stderr %q; want exit %d and stderr matching %q", args, code, stdout, stderr, exitUsage, want)
	}
}

func TestStatus(t *testing.T) {
	d := &adminDaemon{}
	env := serveAdmin(t, d)
	out := ok(t, env, "status")
	for _, want := range []string{
		`^ohfpd: +running, version 9\.9\.9, up 2h5m \(since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \w+\)$`,
		`^ohfp: +version 1\.2\.3-test, socket .*ohfp\.sock$`,
		`^cluster: +prod-a$`,
		`^providers: +awsinst, awsspot$`,
		`^aws awsinst: +ok — 12 calls, 0 errors, 0 throttles$`,
		`^aws awsspot: +AWS throttling, retrying in 8 s — 30 calls, 5 errors, 4 throttles \(RunInstances 3, DescribeInstances 1\); last error 2h5m ago: RunInstances: throttled$`,
		`^requests: +2 in flight; acquire complete 10, return complete 3, acquire running 2$`,
		`^machines: +14 live; by state: running 12, terminated 5, pending 2$`,
		`^last reconcile: +\d+s ago, took 340ms, 1234 passes$`,
		`^last full listing: +\d+s ago, took 1\.2s, 41 listings$`,
		`^reconcile error: +DescribeInstances: RequestLimitExceeded$`,
	} {
		if !regexp.MustCompile(`(?m)` + want).MatchString(out) {
			t.Errorf("status lacks a line matching %s:\n%s", want, out)
		}
	}
	// Values line up after the keys.
	col := -1
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		_, after, _ := strings.Cut(l, ":")
		c := len(l) - len(strings.TrimLeft(after, " "))
		if col >= 0 && c != col {
			t.Errorf("status values not aligned:\n%s", out)
			break
		}
		col = c
	}
	sameJSON(t, ok(t, env, "status", "--json"), cannedDocs()["status"])
}

func TestRequests(t *testing.T) {
	d := &adminDaemon{}
	env := serveAdmin(t, d)
	out := ok(t, env, "requests")
	columns(t, out)
	want := []string{
		"REQUEST KIND PROVIDER TEMPLATE UNITS MACHINES STATUS CREATED FINISHED MESSAGE",
		"req-a1 acquire awsinst OnDemand-c5 5 3 running 1d2h ago - 3 of 5 units running; 2 machines starting",
		"ret-b2 return awsspot - - 1 running 1d2h ago - 0 of 1 machines terminated",
	}
	if got := lines(out); !reflect.DeepEqual(got, want) {
		t.Errorf("requests:\n%s\nwant rows %q", out, want)
	}
	sameJSON(t, ok(t, env, "requests", "--all", "--json"), cannedDocs()["requests"])
	calls := d.callsOf("requests")
	if len(calls) != 2 || calls[0].args != `{"all":false}` || calls[1].args != `{"all":true}` {
		t.Errorf("requests calls %+v, want all false then true", calls)
	}
}

func TestMachines(t *testing.T) {
	d := &adminDaemon{}
	env := serveAdmin(t, d)
	out := ok(t, env, "machines", "--all")
	columns(t, out)
	want := []string{
		"MACHINE NAME STATE RESULT TYPE PRICE WEIGHT PRIVATE-IP REQUEST RETURN TEMPLATE LAUNCHED MESSAGE",
		"i-0abc ip-10-0-0-4.ec2.internal running succeed c5.xlarge spot 2 10.0.0.4 req-a1 ret-b2 Spot-c5 3h2m ago -",
	}
	if got := lines(out); !reflect.DeepEqual(got, want) {
		t.Errorf("machines:\n%s\nwant rows %q", out, want)
	}
	sameJSON(t, ok(t, env, "machines", "--request=req-a1", "--json"), cannedDocs()["machines"])
	calls := d.callsOf("machines")
	if len(calls) != 2 || calls[0].args != `{"all":true}` || calls[1].args != `{"request":"req-a1","all":false}` {
		t.Errorf("machines calls %+v", calls)
	}
	bad(t, env, `^ohfp machines: request req-missing is not known to ohfpd\n$`, "machines", "--request", "req-missing")
}

func TestTemplates(t *testing.T) {
	d := &adminDaemon{}
	env := serveAdmin(t, d)
	out := ok(t, env, "templates")
	columns(t, out)
	want := []string{
		"PROVIDER TEMPLATE AVAILABLE MAX TYPE NCPUS NRAM VMTYPES PRICE API",
		"awsinst OnDemand-c5 17 20 X86_64 2 4096 c5.large ondemand RunInstances",
		"awsinst Fleet-mixed -1 unlimited X86_64 4 16384 m5.xlarge,m5.2xlarge×2 heterogeneous EC2Fleet/instant",
		"awsspot Spot-c5 48 50 ARM64 8 32768 c6g.2xlarge spot SpotFleet",
	}
	if got := lines(out); !reflect.DeepEqual(got, want) {
		t.Errorf("templates:\n%s\nwant rows %q", out, want)
	}
	calls := d.callsOf(hf.OpGetAvailableTemplates)
	if len(calls) != 2 || calls[0].env["HF_PROVIDER_NAME"] != "awsinst" || calls[1].env["HF_PROVIDER_NAME"] != "awsspot" || calls[0].input != "{}" {
		t.Errorf("getAvailableTemplates calls %+v, want one per provider with input {}", calls)
	}

	sameJSON(t, ok(t, env, "templates", "--provider", "awsspot", "--json"), cannedDocs()["getAvailableTemplates awsspot"])
	docs := cannedDocs()
	sameJSON(t, ok(t, env, "templates", "--json"),
		`{"awsinst":`+docs["getAvailableTemplates awsinst"]+`,"awsspot":`+docs["getAvailableTemplates awsspot"]+`}`)
	// A provider ohfpd does not have is refused, not listed under the
	// name typed (ohfpd maps an unknown HF_PROVIDER_NAME to its only one).
	n := len(d.callsOf(hf.OpGetAvailableTemplates))
	bad(t, env, `^ohfp templates: no provider nope \(known: awsinst, awsspot\)\n$`, "templates", "--provider=nope")
	bad(t, env, `^ohfp templates: no provider nope \(known: awsinst, awsspot\)\n$`, "templates", "--provider=nope", "--json")
	if len(d.callsOf(hf.OpGetAvailableTemplates)) != n {
		t.Error("templates --provider nope asked ohfpd for templates")
	}
}

func TestShow(t *testing.T) {
	d := &adminDaemon{}
	env := serveAdmin(t, d)
	out := ok(t, env, "show", "req-a1")
	kvPart, table, found := strings.Cut(out, "\n\n")
	if !found {
		t.Fatalf("show prints no machines table after the request:\n%s", out)
	}
	for _, want := range []string{
		`^request: +req-a1$`, `^kind: +acquire$`, `^provider: +awsinst$`, `^template: +OnDemand-c5$`, `^units: +5$`,
		`^status: +running$`, `^message: +3 of 5 units running; 2 machines starting$`, `^phase: +launched$`,
		`^handle: +fleet-0123$`, `^attempts: +2$`, `^retry: +AWS throttling, retrying in 8 s$`, `^machines: +2$`,
		`^created: +1d2h ago \(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \w+\)$`,
	} {
		if !regexp.MustCompile(`(?m)` + want).MatchString(kvPart) {
			t.Errorf("show lacks a line matching %s:\n%s", want, out)
		}
	}
	if strings.Contains(kvPart, "finished:") {
		t.Errorf("show prints an empty finished time:\n%s", out)
	}
	columns(t, table)
	wantRows := []string{
		"MACHINE NAME STATE RESULT TYPE PRICE PRIVATE-IP LAUNCHED MESSAGE",
		"i-0abc ip-10-0-0-4.ec2.internal running succeed c5.xlarge ondemand 10.0.0.4 3h2m ago -",
		"i-0def - pending executing c5.large ondemand - - -",
	}
	if got := lines(table); !reflect.DeepEqual(got, wantRows) {
		t.Errorf("show machines:\n%s\nwant %q", table, wantRows)
	}

	out = ok(t, env, "show", "ip-10-0-0-4.ec2.internal")
	for _, want := range []string{`^machine: +i-0abc$`, `^state: +running$`, `^type: +c5.xlarge \(spot\)$`, `^weight: +2$`,
		`^request: +req-a1$`, `^private ip: +10.0.0.4$`, `^launched: +2h5m ago \(`, `^last seen: +\d+s ago \(`} {
		if !regexp.MustCompile(`(?m)` + want).MatchString(out) {
			t.Errorf("show machine lacks a line matching %s:\n%s", want, out)
		}
	}
	sameJSON(t, ok(t, env, "show", "req-a1", "--json"), cannedDocs()["show req-a1"])
	bad(t, env, `^ohfp show: request or machine i-nope is not known to ohfpd\n$`, "show", "i-nope")
	misuse(t, env, `^ohfp show: missing argument; usage: ohfp show ID`, "show")
}

func TestRequestsWatch(t *testing.T) {
	for _, tc := range []struct {
		final hf.Status
		code  int
		last  string
	}{
		{hf.StatusComplete, 0, "3 of 3 units running"},
		{hf.StatusCompleteWithError, 1, "2 of 3 units running; 1 machine failed: InsufficientInstanceCapacity"},
	} {
		t.Run(string(tc.final), func(t *testing.T) {
			d := &adminDaemon{watchID: "req-w", runningFor: 3, final: tc.final}
			env := serveAdmin(t, d)
			stdout, stderr, code := exe(t, "ohfp", []string{"requests", "watch", "req-w", "--interval", "10ms"}, env, "")
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stdout %q stderr %q", code, tc.code, stdout, stderr)
			}
			got := strings.Split(strings.TrimRight(stdout, "\n"), "\n")
			wantFirst := "req-w running  2/3 units  ██████░░░░  1 starting"
			if len(got) != 3 || got[0] != wantFirst || got[2] != tc.last {
				t.Fatalf("watch printed %q; want the running line once (not on a terminal, a line per change), the final line, then %q", got, tc.last)
			}
			if tc.final == hf.StatusComplete && got[1] != "req-w complete  3/3 units  ██████████" {
				t.Errorf("final line %q", got[1])
			}
			if tc.final == hf.StatusCompleteWithError && got[1] != "req-w complete_with_error  2/3 units  ██████░░░░  1 failed" {
				t.Errorf("final line %q", got[1])
			}
			d.mu.Lock()
			shows := d.shows
			d.mu.Unlock()
			if shows != 4 {
				t.Errorf("show called %d times, want 4 (3 running, then final)", shows)
			}
		})
	}
	d := &adminDaemon{docs: cannedDocs()}
	d.docs["show i-0abc"] = d.docs["show ip-10-0-0-4.ec2.internal"]
	env := serveAdmin(t, d)
	bad(t, env, `^ohfp requests: request or machine req-gone is not known to ohfpd\n$`, "requests", "watch", "req-gone", "--interval=10ms")
	bad(t, env, `^ohfp requests: i-0abc is not a request`, "requests", "watch", "i-0abc", "--interval=10ms")
	bad(t, env, `--interval "soon" is not a duration`, "requests", "watch", "req-a1", "--interval=soon")
}

func TestConfigReload(t *testing.T) {
	d := &adminDaemon{}
	env := serveAdmin(t, d)
	if out := ok(t, env, "config", "reload"); out != "configuration reloaded\n" {
		t.Errorf("reload printed %q", out)
	}
	sameJSON(t, ok(t, env, "config", "reload", "--json"), cannedDocs()["reload"])

	d2 := &adminDaemon{reloadErr: "/etc/ohfp/config.yaml:11:1: bogus: unknown key"}
	env2 := serveAdmin(t, d2)
	bad(t, env2, `^ohfp config reload: the new configuration was refused and the old one stays in force: /etc/ohfp/config\.yaml:11:1: bogus: unknown key\n$`, "config", "reload")
}

func TestConfigDelegatesToOhfpd(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "fake-ohfpd")
	script := "#!/bin/sh\necho \"args: $*\"\necho \"to stderr\" >&2\nexit ${FAKE_EXIT:-0}\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{"OHFPD=" + fake}
	for _, tc := range []struct {
		args []string
		exit string
		want string
	}{
		{[]string{"config", "validate", "/etc/ohfp/config.yaml"}, "0", "args: --check-config --config /etc/ohfp/config.yaml\n"},
		{[]string{"config", "validate", "bad.yaml"}, "1", "args: --check-config --config bad.yaml\n"},
		{[]string{"config", "import-hf", "/opt/hf/conf/providers/aws", "-o", "out.yaml"}, "0", "args: import-hf -o out.yaml /opt/hf/conf/providers/aws\n"},
		{[]string{"config", "import-hf", "ibm"}, "3", "args: import-hf ibm\n"},
		{[]string{"config", "import-hf", "ibm", "--name", "awsinst"}, "0", "args: import-hf --name awsinst ibm\n"},
	} {
		stdout, stderr, code := exe(t, "ohfp", tc.args, append(env, "FAKE_EXIT="+tc.exit), "")
		if stdout != tc.want || stderr != "to stderr\n" || fmt.Sprint(code) != tc.exit {
			t.Errorf("ohfp %v: exit %d stdout %q stderr %q; want exit %s stdout %q", tc.args, code, stdout, stderr, tc.exit, tc.want)
		}
	}

	// Found in PATH when $OHFPD is unset (the test binary's folder has none).
	pathDir := t.TempDir()
	if err := os.Symlink(fake, filepath.Join(pathDir, "ohfpd")); err != nil {
		t.Fatal(err)
	}
	stdout, _, code := exe(t, "ohfp", []string{"config", "validate", "x.yaml"}, []string{"PATH=" + pathDir + ":" + os.Getenv("PATH")}, "")
	if code != 0 || stdout != "args: --check-config --config x.yaml\n" {
		t.Errorf("ohfpd from PATH: exit %d stdout %q", code, stdout)
	}

	bad(t, []string{"OHFPD=" + filepath.Join(dir, "absent")}, `^ohfp config: \$OHFPD is .*absent, which is not an executable file\n$`, "config", "validate", "x.yaml")
	bad(t, []string{"PATH=" + t.TempDir()}, `^ohfp config: cannot find ohfpd .*set OHFPD=`, "config", "validate", "x.yaml")
	misuse(t, env, `^ohfp config: usage: ohfp config validate FILE\n$`, "config", "validate")
	misuse(t, env, `^ohfp config: -o goes with config import-hf\n$`, "config", "validate", "x.yaml", "-o", "y")
	misuse(t, env, `^ohfp config: unknown subcommand "frob"`, "config", "frob")
}

func TestAdminUsageErrors(t *testing.T) {
	d := &adminDaemon{}
	env := serveAdmin(t, d)
	misuse(t, env, `^ohfp: status takes no --provider \(see ohfp help\)\n$`, "status", "--provider", "x")
	misuse(t, env, `^ohfp: unknown option --bogus \(see ohfp help\)\n$`, "requests", "--bogus")
	misuse(t, env, `^ohfp: unknown option --bogus \(see ohfp help\)\n$`, "status", "--bogus")
	misuse(t, env, `^ohfp: --request needs a value\n$`, "machines", "--request")
	misuse(t, env, `^ohfp: status takes no -f FILE\n$`, "status", "-f", "x")
	misuse(t, env, `^ohfp status: unexpected argument "extra"`, "status", "extra")
	misuse(t, env, `^ohfp requests: --interval goes with requests watch ID\n$`, "requests", "--interval=1s")
	misuse(t, append(env, "OHFP_TIMEOUT=garbage"), `^ohfp: OHFP_TIMEOUT "garbage" is not a positive duration`, "status")
	misuse(t, env, `^ohfp status: unexpected argument "extra"`, "status", "extra", "--json")
	misuse(t, env, `^ohfp check: unexpected argument "b"`, "check", "a", "b")
	misuse(t, env, `^ohfp config: unknown subcommand "frob"`, "config", "frob")
	if n := len(d.callsOf("status")) + len(d.callsOf("requests")) + len(d.callsOf("machines")); n != 0 {
		t.Errorf("usage errors reached the daemon %d times", n)
	}

	// HF operations keep their contract: a sysadmin option is an unknown
	// option, reported as one JSON document on stdout.
	stdout, stderr, code := exe(t, "getRequestStatus.sh", []string{"--json"}, env, `{"requests":[{"requestId":"r"}]}`)
	if msg := failure(t, stdout, code); !strings.HasPrefix(msg, "unknown option --json; ") {
		t.Errorf("HF operation with --json: %q", msg)
	}

	missing := filepath.Join(t.TempDir(), "no.sock")
	// status is a health check: ohfpd not answering is down, exit 2.
	stdout, stderr, code = exe(t, "ohfp", []string{"status"}, []string{"OHFP_SOCKET=" + missing, "OHFP_WAIT=0"}, "")
	if code != 2 || stdout != "" || !regexp.MustCompile(`^ohfp status: down: ohfpd is not running at `+regexp.QuoteMeta(missing)+`: systemctl status ohfpd\n$`).MatchString(stderr) {
		t.Errorf("status without ohfpd: exit %d, stdout %q, stderr %q; want exit 2", code, stdout, stderr)
	}
}

func TestHelpListsCommands(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"status", "--help"}} {
		out := ok(t, nil, args...)
		for _, want := range []string{"Operations: getAvailableTemplates, requestMachines, getRequestStatus, requestReturnMachines, getReturnRequests",
			"requests watch ID", "machines [--request ID] [--all]", "templates [--provider NAME]", "show ID",
			"config reload", "config validate FILE", "config import-hf DIR [-o FILE] [--name NAME]", "--json",
			"Exit status:", "  64  ", "  77  "} {
			if !strings.Contains(out, want) {
				t.Errorf("ohfp %v lacks %q:\n%s", args, want, out)
			}
		}
	}
}

func TestHuman(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{400 * time.Millisecond, "just now"},
		{42 * time.Second, "42s ago"},
		{3 * time.Minute, "3m ago"},
		{3*time.Minute + 12*time.Second, "3m12s ago"},
		{2*time.Hour + 5*time.Minute + 59*time.Second, "2h5m ago"},
		{50 * time.Hour, "2d2h ago"},
		{-8 * time.Second, "in 8s"},
	} {
		if got := ago(now, now.Add(-tc.d)); got != tc.want {
			t.Errorf("ago(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
	if ago(now, time.Time{}) != "" || millis(340) != "340ms" || millis(1250) != "1.2s" {
		t.Error("zero time or millis")
	}
	for _, tc := range []struct {
		done, total int
		want        string
	}{{0, 5, "░░░░░"}, {3, 5, "███░░"}, {5, 5, "█████"}, {7, 5, "█████"}, {0, 0, "░░░░░"}} {
		if got := bar(tc.done, tc.total, 5); got != tc.want {
			t.Errorf("bar(%d, %d) = %q, want %q", tc.done, tc.total, got, tc.want)
		}
	}
	if got := fit("req-1 running  3/5 units", 10); got != "req-1 ru…" {
		t.Errorf("fit = %q", got)
	}
}

// ohfp status exits with the health verdict's code (0 healthy, 1
// degraded, 2 down), prints the verdict first and one retry time, with
// --json too.
func TestStatusExitCodes(t *testing.T) {
	base := cannedDocs()["status"]
	for _, c := range []struct {
		health string
		code   int
		line   string
	}{
		{`{"level":"healthy","code":0}`, 0, `^health: +healthy$`},
		{`{"level":"degraded","code":1,"reasons":["provider awsspot: AWS throttling RunInstances"]}`, 1, `^health: +degraded: provider awsspot: AWS throttling RunInstances$`},
		{`{"level":"down","code":2,"reasons":["provider awsinst: no valid AWS credentials: no EC2 IMDS role found"]}`, 2, `^health: +down: provider awsinst: no valid AWS credentials`},
	} {
		docs := cannedDocs()
		docs["status"] = strings.Replace(base, `"clusterId":"prod-a",`, `"clusterId":"prod-a","health":`+c.health+`,"cloudNote":"AWS throttling","nextRetry":"`+time.Now().Add(8*time.Second).UTC().Format(time.RFC3339)+`",`, 1)
		env := serveAdmin(t, &adminDaemon{docs: docs})
		for _, args := range [][]string{{"status"}, {"status", "--json"}} {
			stdout, stderr, code := exe(t, "ohfp", args, env, "")
			if code != c.code || stderr != "" {
				t.Errorf("%v with health %s: exit %d, stderr %q; want exit %d", args, c.health, code, stderr, c.code)
			}
			if len(args) == 1 {
				if !regexp.MustCompile(`(?m)` + c.line).MatchString(stdout) {
					t.Errorf("status lacks %s:\n%s", c.line, stdout)
				}
				if !regexp.MustCompile(`(?m)^cloud: +AWS throttling; next launch attempt in [78]s$`).MatchString(stdout) || strings.Count(stdout, "retrying in") > 1 {
					t.Errorf("status must give one retry time:\n%s", stdout)
				}
			}
		}
	}
}

// The operator commands send their arguments and print the answer; a
// refusal says how to get the right.
func TestOperatorCommands(t *testing.T) {
	docs := cannedDocs()
	for _, m := range []string{"cancel", "return", "drain", "undrain"} {
		docs[m] = `{"message":"` + m + ` done"}`
	}
	docs["check"] = `[{"provider":"aws","templateId":"t1","what":"image ami-1","ok":true,"result":"ok"},
		{"provider":"aws","templateId":"t1","what":"RunInstances dry run: c5.large in subnet-1","ok":false,"result":"not permitted: UnauthorizedOperation"}]`
	d := &adminDaemon{docs: docs}
	env := serveAdmin(t, d)
	for _, c := range []struct {
		args []string
		want string // the arguments sent
	}{
		{[]string{"cancel", "req-1"}, `{"request":"req-1"}`},
		{[]string{"cancel", "req-1", "--return"}, `{"request":"req-1","return":true}`},
		{[]string{"return", "i-1", "i-2"}, `{"machines":["i-1","i-2"]}`},
		{[]string{"return", "--request", "req-1"}, `{"request":"req-1"}`},
		{[]string{"drain", "t1"}, `{"template":"t1"}`},
		{[]string{"undrain", "t1", "--provider", "aws"}, `{"template":"t1","provider":"aws"}`},
	} {
		out := ok(t, env, c.args...)
		if out != c.args[0]+" done\n" {
			t.Errorf("%v printed %q", c.args, out)
		}
		calls := d.callsOf(c.args[0])
		if got := calls[len(calls)-1].args; got != c.want {
			t.Errorf("%v sent %s, want %s", c.args, got, c.want)
		}
	}
	stdout, stderr, code := exe(t, "ohfp", []string{"check"}, env, "")
	if code != 1 || !strings.Contains(stdout, "FAIL not permitted") || !strings.Contains(stderr, "1 check failed of 2") {
		t.Errorf("check with a failure: exit %d\n%s%s", code, stdout, stderr)
	}
	misuse(t, env, `usage: ohfp cancel REQ`, "cancel")
	misuse(t, env, `name machines or --request REQ, not both`, "return", "i-1", "--request", "req-1")
	misuse(t, env, `missing argument; usage: ohfp return MACHINE`, "return")
	misuse(t, env, `drain takes no --return`, "drain", "t1", "--return")
}

// The lease line of a shared-store cluster says who acts.
func TestLeaseText(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	since := now.Add(-90 * time.Second).Format(time.RFC3339)
	for _, c := range []struct {
		l    apitype.HA
		want []string
	}{
		{apitype.HA{Host: "a", Role: "holder", Holder: "a", Since: since, Table: "t", Token: 3}, []string{"held by this host (a)", "it acts", "token 3", "table t"}},
		{apitype.HA{Host: "b", Role: "standby", Holder: "a", Since: since}, []string{"held by a since", "this host (b) is standby"}},
		{apitype.HA{Host: "b", Role: "standby", Holder: "a", Since: since, Expired: true}, []string{"a's lease", "expired", "takes it at HF's next call"}},
		{apitype.HA{Host: "b", Role: "standby"}, []string{"nobody holds it"}},
		{apitype.HA{Host: "b", Role: "standby", Holder: "a", LastError: "state store unavailable: x"}, []string{"table error: state store unavailable"}},
	} {
		got := leaseText(now, &c.l)
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("%+v: %q lacks %q", c.l, got, w)
			}
		}
	}
}

// ohfp status is a health check: against an ohfpd that accepts the
// connection and never answers (SIGSTOP, a hang), it says down, exit 2,
// within its own 10 s by default (not the 2 minutes of an HF call), about
// status (not how to find requests), and --json prints the verdict.
func TestStatusHungDaemon(t *testing.T) {
	t.Parallel()
	dir, err := os.MkdirTemp("", "ohfphung")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "ohfp.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() }) // held open, never answered
		}
	}()
	env := []string{"OHFP_SOCKET=" + path}
	type result struct {
		stdout, stderr string
		code           int
		took           time.Duration
	}
	run := func(env []string, args ...string) chan result {
		ch := make(chan result, 1)
		go func() {
			start := time.Now()
			o, e, c := exe(t, "ohfp", args, env, "")
			ch <- result{o, e, c, time.Since(start)}
		}()
		return ch
	}
	def, js, short := run(env, "status"), run(env, "status", "--json"), run(append(env, "OHFP_TIMEOUT=1s"), "status")

	r := <-short
	if r.code != 2 || r.took > 5*time.Second || !strings.Contains(r.stderr, "did not answer status within 4s") {
		t.Errorf("status with OHFP_TIMEOUT=1s (and the 3s wait): exit %d after %s, stderr %q", r.code, r.took, r.stderr)
	}
	for _, r := range []result{<-def, <-js} {
		if r.code != 2 || r.took < 9*time.Second || r.took > 20*time.Second {
			t.Errorf("status against a hung ohfpd: exit %d after %s; want 2 after 10s", r.code, r.took)
		}
		if !regexp.MustCompile(`^ohfp status: down: ohfpd at .* did not answer status within 10s \(stopped, hung or overloaded\? systemctl status ohfpd; OHFP_TIMEOUT`).MatchString(r.stderr) ||
			strings.Contains(r.stderr, "requests --all") {
			t.Errorf("status against a hung ohfpd: stderr %q", r.stderr)
		}
		if r.stdout == "" {
			continue
		}
		var doc struct {
			Health apitype.Health `json:"health"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || doc.Health.Level != "down" || doc.Health.Code != 2 ||
			len(doc.Health.Reasons) != 1 || !strings.Contains(doc.Health.Reasons[0], "did not answer status within 10s") {
			t.Errorf("status --json against a hung ohfpd printed %q (%v)", r.stdout, err)
		}
	}
}

// A caller without access to the socket is told so, with a code of its
// own (EX_NOPERM): ohfpd may well be healthy, so it is not "down". Both
// ways: the socket's permissions, and ohfpd refusing the caller's uid.
func TestStatusPermissionDenied(t *testing.T) {
	// ohfpd refusing the uid.
	d := &adminDaemon{deny: "uid 1001 may not use ohfpd (add it to group ohfp)"}
	env := serveAdmin(t, d)
	for _, args := range [][]string{{"status"}, {"status", "--json"}} {
		stdout, stderr, code := exe(t, "ohfp", args, env, "")
		if code != exitNoPerm || !strings.HasPrefix(stderr, "ohfp status: cannot ask ohfpd: uid 1001 may not use ohfpd") {
			t.Errorf("%v refused by ohfpd: exit %d, stderr %q; want %d", args, code, stderr, exitNoPerm)
		}
		if len(args) == 2 && !strings.Contains(stdout, `"level": "unknown"`) {
			t.Errorf("%v refused by ohfpd printed %q", args, stdout)
		}
	}
	stdout, stderr, code := exe(t, "ohfp", []string{"requests"}, env, "")
	if code != exitNoPerm || stdout != "" {
		t.Errorf("requests refused by ohfpd: exit %d, stderr %q", code, stderr)
	}

	// The socket's permissions: run as a user who may not open it.
	sock := strings.TrimPrefix(env[0], "OHFP_SOCKET=")
	if err := os.Chmod(sock, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(sock), 0o755); err != nil {
		t.Fatal(err)
	}
	bin := binary(t)
	cmd := exec.Command(bin, "status")
	cmd.Env = env
	if os.Getuid() == 0 {
		// root opens any socket: run the client as nobody, from a copy
		// nobody can execute.
		dir, err := os.MkdirTemp("", "ohfpbin")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		os.Chmod(dir, 0o755)
		b, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		cp := filepath.Join(dir, "ohfp")
		if err := os.WriteFile(cp, b, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd = exec.Command(cp, "status")
		cmd.Env = env
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	} else if err := os.Chmod(sock, 0); err != nil {
		t.Fatal(err)
	}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitNoPerm || !strings.HasPrefix(errb.String(), "ohfp status: cannot ask ohfpd: permission denied on "+sock) {
		t.Errorf("status on a socket it may not open: %v, stderr %q; want exit %d", err, errb.String(), exitNoPerm)
	}
}
