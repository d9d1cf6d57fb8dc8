// Package soak tries hard to break ohfp: crash soaks (ohfpd killed with
// SIGKILL at random moments and restarted), a lost state directory, AWS
// faults, hostile input through the real binaries, and parallel load. Every
// test runs the real ohfpd and ohfp binaries, built for the test (ohfpd with
// -race when the test runs under -race), against a simulated AWS region
// served by a separate `ohfpd simulate` process, so killing ohfpd leaves
// the cloud as it was.
//
// The long runs need OHFP_SOAK=1 (make soak); without it each runs a small
// smoke variant so `make test` exercises the same code paths. With
// OHFP_SOAK_REPORT=FILE the figures of every test are written to FILE as
// JSON.
package soak

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/awssim"
	"github.com/ohfp/ohfp/internal/hfdriver"
	"github.com/ohfp/ohfp/internal/rpc"
)

var binDir string

// soakMode reports whether the long runs were asked for (OHFP_SOAK=1).
func soakMode() bool { return os.Getenv("OHFP_SOAK") == "1" }

// figures collects every test's counts for OHFP_SOAK_REPORT.
var figures = struct {
	sync.Mutex
	m map[string]any
}{m: map[string]any{}}

// report logs a test's figures and keeps them for OHFP_SOAK_REPORT.
func report(t *testing.T, v any) {
	t.Helper()
	b, _ := json.Marshal(v)
	t.Logf("figures: %s", b)
	figures.Lock()
	figures.m[t.Name()] = v
	figures.Unlock()
}

func writeReport() error {
	path := os.Getenv("OHFP_SOAK_REPORT")
	if path == "" {
		return nil
	}
	figures.Lock()
	defer figures.Unlock()
	out := map[string]any{"soak": soakMode(), "race": raceEnabled, "tests": figures.m}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ohfp-soak-bin-")
	if err != nil {
		panic(err)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		if err := hfdriver.Build(dir, raceEnabled); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		binDir = dir
		code := m.Run()
		if err := writeReport(); err != nil {
			fmt.Fprintln(os.Stderr, "OHFP_SOAK_REPORT:", err)
			return 1
		}
		return code
	}()
	os.Exit(code)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// ---------------------------------------------------------------------------
// The simulated region, in its own process.

// cloud is a running `ohfpd simulate` and its control endpoint.
type cloud struct {
	t        *testing.T
	endpoint string
	log      string // file with the simulator's output
	http     *http.Client
}

func startCloud(t *testing.T, launchDelay, terminateDelay time.Duration) *cloud {
	t.Helper()
	addr := freeAddr(t)
	logPath := filepath.Join(t.TempDir(), "awssim.log")
	logf, err := os.Create(logPath)
	must(t, err)
	sim := exec.Command(filepath.Join(binDir, "ohfpd"), "simulate", "--listen", addr,
		"--launch-delay", launchDelay.String(), "--terminate-delay", terminateDelay.String())
	sim.Stdout, sim.Stderr = logf, logf
	must(t, sim.Start())
	c := &cloud{t: t, endpoint: "http://" + addr, log: logPath, http: &http.Client{Timeout: 30 * time.Second}}
	t.Cleanup(func() {
		_ = sim.Process.Kill()
		_ = sim.Wait()
		logf.Close()
		checkNoRace(t, "ohfpd simulate", logPath)
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if conn, err := net.Dial("tcp", addr); err == nil {
			conn.Close()
			return c
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logPath)
			t.Fatalf("simulated region did not start: %s", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *cloud) do(method, path string, in, out any) {
	c.t.Helper()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		must(c.t, err)
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.endpoint+path, body)
	must(c.t, err)
	resp, err := c.http.Do(req)
	must(c.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(c.t, err)
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("%s %s: HTTP %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		must(c.t, json.Unmarshal(b, out))
	}
}

func (c *cloud) setFaults(f awssim.Faults) { c.do("POST", "/_sim/faults", f, nil) }

func (c *cloud) instances() []awssim.InstanceInfo {
	var out []awssim.InstanceInfo
	c.do("GET", "/_sim/instances", nil, &out)
	return out
}

// waitAllTerminated waits until every instance of the region is
// terminated, failing the test with what after timeout.
func (c *cloud) waitAllTerminated(timeout, poll time.Duration, what string) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		up := 0
		for _, in := range c.instances() {
			if in.State != "terminated" {
				up++
			}
		}
		if up == 0 {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%d instances not terminated after %s", up, what)
		}
		time.Sleep(poll)
	}
}

func (c *cloud) counts() (calls, errs map[string]int) {
	var out struct {
		Calls  map[string]int `json:"calls"`
		Errors map[string]int `json:"errors"`
	}
	c.do("GET", "/_sim/counts", nil, &out)
	return out.Calls, out.Errors
}

// errorCodes is the region's errors by "Action Code"; dropped answers
// and connections count under awssim.CodeAnswerDropped and
// awssim.CodeConnectionDropped.
func (c *cloud) errorCodes() map[string]int {
	var out struct {
		Codes map[string]int `json:"errorCodes"`
	}
	c.do("GET", "/_sim/counts", nil, &out)
	return out.Codes
}

// droppedAnswers counts the calls that ran but whose answer the region
// dropped, in codes (from errorCodes).
func droppedAnswers(codes map[string]int) int {
	n := 0
	for k, v := range codes {
		if strings.HasSuffix(k, " "+awssim.CodeAnswerDropped) {
			n += v
		}
	}
	return n
}

// consistencyWindow is the region's eventual-consistency window (0: off).
func (c *cloud) consistencyWindow() time.Duration {
	var out awssim.Consistency
	c.do("GET", "/_sim/consistency", nil, &out)
	return out.Window
}

func (c *cloud) terminate(ids ...string) {
	c.do("POST", "/_sim/terminate", map[string]any{"instanceIds": ids}, nil)
}

func (c *cloud) interruptSpot(ids ...string) {
	c.do("POST", "/_sim/interrupt-spot", map[string]any{"instanceIds": ids}, nil)
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// ---------------------------------------------------------------------------
// ohfpd and the HF plugin folder.

// Templates used by every test: an on-demand and a Spot RunInstances
// template.
const (
	tplOnDemand = "OnDemand-c5"
	tplSpot     = "Spot-m5"
)

func templatesJSON(max int) string {
	return fmt.Sprintf(`{"templates": [
  {"templateId": %q, "maxNumber": %d,
   "attributes": {"type": ["String", "X86_64"], "ncpus": ["Numeric", "2"], "nram": ["Numeric", "4096"]},
   "imageId": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64",
   "vmType": "c5.large", "instanceTags": "cluster=soak"},
  {"templateId": %q, "maxNumber": %d, "attributes": {"type": ["String", "X86_64"], "ncpus": ["Numeric", "2"], "nram": ["Numeric", "8192"]},
   "imageId": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64",
   "vmType": "m5.large", "priceType": "spot", "providerApi": "RunInstances"}
]}`, tplOnDemand, max, tplSpot, max)
}

// daemonOpts tune an env's ohfpd.
type daemonOpts struct {
	maxNumber    int           // per template; default 1000
	templates    string        // awsprov_templates.json; default templatesJSON(maxNumber)
	rateLimit    bool          // aws_rate_limit (client-side EC2 buckets)
	claimTimeout time.Duration // reconcile.claim_timeout; default 30m
	extra        string        // more top-level YAML (e.g. an ha: section)
	accessKey    string        // the AWS access key id ohfpd signs with; default AKIASIMULATED
}

// env is one ohfpd (restartable) pointed at a cloud, with its HF folder.
type env struct {
	t       *testing.T
	cloud   *cloud
	dir     string
	cfg     string
	sock    string
	state   string
	cluster string
	logPath string
	logf    *os.File
	plugin  *hfdriver.Plugin
	daemon  *hfdriver.Daemon
	rpc     *rpc.Client
	starts  int
	// as runs ohfpd through this command (e.g. setpriv to another user).
	as        []string
	accessKey string
	// retryUnavailable: see call; unavailable counts those retries.
	retryUnavailable bool
	unavailable      int
}

// command is ohfpd with args, through e.as when set.
func (e *env) command(args []string) (string, []string) {
	bin := filepath.Join(binDir, "ohfpd")
	if len(e.as) == 0 {
		return bin, args
	}
	return e.as[0], append(append(append([]string(nil), e.as[1:]...), bin), args...)
}

func newEnv(t *testing.T, c *cloud, o daemonOpts) *env {
	t.Helper()
	if o.maxNumber == 0 {
		o.maxNumber = 1000
	}
	if o.claimTimeout == 0 {
		o.claimTimeout = 30 * time.Minute
	}
	if o.templates == "" {
		o.templates = templatesJSON(o.maxNumber)
	}
	dir := t.TempDir()
	e := &env{t: t, cloud: c, dir: dir, cluster: "soak",
		sock: filepath.Join(dir, "ohfp.sock"), state: filepath.Join(dir, "state"),
		cfg: filepath.Join(dir, "config.yaml"), logPath: filepath.Join(dir, "ohfpd.log")}
	cfg := fmt.Sprintf(`socket: %s
state_dir: %s
cluster_id: %s
log_format: text
reconcile:
  active_interval: 200ms
  idle_interval: 1s
  claim_timeout: %s
providers:
  - name: aws
    region: us-east-1
    endpoint_url: %s
    aws_rate_limit: %t
    templates_file: awsprov_templates.json
`, e.sock, e.state, e.cluster, o.claimTimeout, c.endpoint, o.rateLimit) + o.extra
	e.accessKey = o.accessKey
	if e.accessKey == "" {
		e.accessKey = "AKIASIMULATED"
	}
	must(t, os.WriteFile(e.cfg, []byte(cfg), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "awsprov_templates.json"), []byte(o.templates), 0o600))
	p, err := hfdriver.Install(filepath.Join(dir, "hf"), filepath.Join(binDir, "ohfp"))
	must(t, err)
	p.Env = e.hfEnv()
	e.plugin = p
	e.logf, err = os.OpenFile(e.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	must(t, err)
	e.rpc = rpc.NewClient(e.sock, rpc.ClientOptions{WaitTimeout: 20 * time.Second})
	t.Cleanup(func() {
		if e.daemon != nil {
			if err := e.daemon.Stop(15 * time.Second); err != nil {
				t.Errorf("stopping ohfpd: %v", err)
			}
			e.daemon = nil
		}
		e.logf.Close()
		if t.Failed() {
			keep := filepath.Join(os.TempDir(), "ohfp-soak-"+strings.ReplaceAll(t.Name(), "/", "_")+"-ohfpd.log")
			if b, err := os.ReadFile(e.logPath); err == nil && os.WriteFile(keep, b, 0o644) == nil {
				t.Logf("whole ohfpd log kept in %s", keep)
			}
			b, _ := os.ReadFile(e.logPath)
			if len(b) > 60000 {
				b = append([]byte("...\n"), b[len(b)-60000:]...)
			}
			t.Logf("ohfpd log (%s):\n%s", e.logPath, b)
		}
		checkNoRace(t, "ohfpd", e.logPath)
	})
	return e
}

func (e *env) hfEnv() []string {
	return []string{"OHFP_SOCKET=" + e.sock, "HF_PROVIDER_NAME=aws", "OHFP_WAIT=20s"}
}

// newPlugin installs another HF folder for the same daemon (a Plugin is
// not safe for concurrent use: one per goroutine).
func (e *env) newPlugin(name string) *hfdriver.Plugin {
	p, err := hfdriver.Install(filepath.Join(e.dir, name), filepath.Join(binDir, "ohfp"))
	must(e.t, err)
	p.Env = e.hfEnv()
	return p
}

// start starts ohfpd (again) with extra arguments.
func (e *env) start(args ...string) {
	e.t.Helper()
	e.starts++
	fmt.Fprintf(e.logf, "==== soak: start #%d %v at %s\n", e.starts, args, time.Now().Format(time.StampMicro))
	bin, args := e.command(append([]string{"--config", e.cfg}, args...))
	d, err := hfdriver.StartDaemon(bin, args,
		[]string{"AWS_ACCESS_KEY_ID=" + e.accessKey, "AWS_SECRET_ACCESS_KEY=simulated", "AWS_EC2_METADATA_DISABLED=true"},
		e.sock, e.logf, 60*time.Second)
	must(e.t, err)
	e.daemon = d
}

// kill kills ohfpd with SIGKILL.
func (e *env) kill(why string) {
	e.t.Helper()
	must(e.t, e.daemon.Kill())
	e.daemon = nil
	fmt.Fprintf(e.logf, "==== soak: SIGKILL (%s) at %s\n", why, time.Now().Format(time.StampMicro))
}

func (e *env) stop() {
	e.t.Helper()
	must(e.t, e.daemon.Stop(15*time.Second))
	e.daemon = nil
}

// alive checks that the ohfpd process has not exited.
func (e *env) alive() bool {
	return e.daemon != nil && e.daemon.Cmd.Process.Signal(syscall.Signal(0)) == nil
}

func callCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 60*time.Second)
}

// call runs an HF operation through the binaries and fails the test on error.
// With retryUnavailable, a call answered "state store unavailable" is
// made again for up to a minute, as HF's next poll would (a shared table
// slow under the test's load, a lease being handed over).
func (e *env) call(op string, in, out any) {
	e.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := callCtx()
		err := e.plugin.Call(ctx, op, in, out)
		cancel()
		if err != nil && e.retryUnavailable && strings.Contains(err.Error(), "state store unavailable") && time.Now().Before(deadline) {
			e.unavailable++
			time.Sleep(time.Second)
			continue
		}
		must(e.t, err)
		return
	}
}

func requestInput(tpl string, n int) map[string]any {
	return map[string]any{"template": map[string]any{"templateId": tpl, "machineCount": n}}
}

func (e *env) request(tpl string, n int) string {
	e.t.Helper()
	var rep hfdriver.RequestReply
	e.call("requestMachines", requestInput(tpl, n), &rep)
	if !strings.HasPrefix(rep.RequestID, "req-") {
		e.t.Fatalf("requestMachines answered %+v", rep)
	}
	return rep.RequestID
}

// status asks getRequestStatus about ids (one call).
func (e *env) status(ids ...string) hfdriver.Status {
	e.t.Helper()
	var st hfdriver.Status
	e.call("getRequestStatus", hfdriver.StatusInput(ids...), &st)
	if len(st.Requests) != len(ids) {
		e.t.Fatalf("getRequestStatus of %d ids answered %d", len(ids), len(st.Requests))
	}
	return st
}

// statusReport is the "status" RPC (what `ohfp status --json` prints).
func (e *env) statusReport() map[string]any {
	e.t.Helper()
	ctx, cancel := callCtx()
	defer cancel()
	var out map[string]any
	must(e.t, e.rpc.Call(ctx, "status", rpc.Params{}, &out))
	return out
}

// requestRow is one entry of the "requests" RPC (`ohfp requests --all --json`).
type requestRow struct {
	ID       string `json:"requestId"`
	Kind     string `json:"kind"`
	Units    int    `json:"units"`
	Machines int    `json:"machines"`
	Status   string `json:"status"`
	Message  string `json:"message"`
}

func (e *env) allRequests() map[string]requestRow {
	e.t.Helper()
	ctx, cancel := callCtx()
	defer cancel()
	var rows []requestRow
	must(e.t, e.rpc.Call(ctx, "requests", rpc.Params{Args: json.RawMessage(`{"all": true}`)}, &rows))
	out := map[string]requestRow{}
	for _, r := range rows {
		out[r.ID] = r
	}
	return out
}

// snapshot is what HF can see: templates' availability and one request.
func (e *env) snapshot(id string) string {
	e.t.Helper()
	var tr, st json.RawMessage
	e.call("getAvailableTemplates", map[string]any{}, &tr)
	e.call("getRequestStatus", hfdriver.StatusInput(id), &st)
	return string(tr) + "\n" + string(st)
}

// waitFinal polls ids until none is running, or fails after d.
func (e *env) waitFinal(ids []string, d time.Duration) map[string]statusEntry {
	e.t.Helper()
	deadline := time.Now().Add(d)
	out := map[string]statusEntry{}
	pending := append([]string(nil), ids...)
	for len(pending) > 0 {
		var next []string
		for i := 0; i < len(pending); i += 50 {
			chunk := pending[i:min(i+50, len(pending))]
			st := e.status(chunk...)
			for _, r := range st.Requests {
				out[r.RequestID] = statusEntry{Status: r.Status, Message: r.Message, Machines: r.Machines}
				if r.Status == "running" {
					next = append(next, r.RequestID)
				}
			}
		}
		pending = next
		if len(pending) == 0 {
			break
		}
		if time.Now().After(deadline) {
			e.t.Errorf("%d requests still running after %s, e.g. %s: %+v", len(pending), d, pending[0], out[pending[0]])
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	return out
}

type statusEntry struct {
	Status   string
	Message  string
	Machines []hfdriver.Machine
}

// checkNoRace fails t when a -race binary reported a data race in its log.
func checkNoRace(t *testing.T, what, logPath string) {
	b, err := os.ReadFile(logPath)
	if err != nil {
		return
	}
	if i := bytes.Index(b, []byte("WARNING: DATA RACE")); i >= 0 {
		end := min(len(b), i+8000)
		t.Errorf("%s reported a data race (log %s):\n%s", what, logPath, b[i:end])
	}
	for _, p := range []string{"panic:", "panic in handler"} {
		i := bytes.Index(b, []byte(p))
		if i < 0 {
			continue
		}
		end := min(len(b), i+8000)
		t.Errorf("%s panicked (log %s):\n%s", what, logPath, b[i:end])
	}
}

// live reports whether an instance state counts as holding capacity.
func liveState(s string) bool {
	switch s {
	case "pending", "running", "stopping", "stopped":
		return true
	}
	return false
}
