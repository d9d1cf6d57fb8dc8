// Package e2e runs the real ohfpd and ohfp binaries, built for the test,
// against the simulated AWS region served by a separate `ohfpd simulate`
// process (so that killing ohfpd leaves the cloud as it was), through the
// <operation>.sh symlinks HF runs.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ohfp/ohfp/internal/awssim"
	"github.com/ohfp/ohfp/internal/hfdriver"
)

// env is one test environment: binaries, a simulated region process, a
// config, an HF plugin folder and (once started) ohfpd.
type env struct {
	t        *testing.T
	dir      string
	bin      string
	endpoint string
	cfg      string
	sock     string
	plugin   *hfdriver.Plugin
	daemon   *hfdriver.Daemon
	log      *logBuffer
	ec2      *ec2.Client
}

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ohfp-e2e-bin-")
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
		return m.Run()
	}()
	os.Exit(code)
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

const templatesJSON = `{"templates": [
  {"templateId": "OnDemand-c5", "maxNumber": 12,
   "attributes": {"type": ["String", "X86_64"], "ncpus": ["Numeric", "2"], "nram": ["Numeric", "4096"]},
   "imageId": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64",
   "vmType": "c5.large", "instanceTags": "cluster=e2e"},
  {"templateId": "Spot-m5", "maxNumber": 10, "attributes": {"type": ["String", "X86_64"]},
   "imageId": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64",
   "vmType": "m5.large", "priceType": "spot", "providerApi": "RunInstances"}
]}`

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, templatesJSON, "")
}

// newEnvWith is newEnv with other templates and extra provider keys
// (indented YAML lines).
func newEnvWith(t *testing.T, templates, providerExtra string) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, dir: dir, bin: binDir, log: &logBuffer{}}
	addr := freeAddr(t)
	sim := exec.Command(filepath.Join(binDir, "ohfpd"), "simulate", "--listen", addr, "--launch-delay", "300ms", "--terminate-delay", "300ms")
	simLog := &bytes.Buffer{}
	sim.Stdout, sim.Stderr = simLog, simLog
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = sim.Process.Kill()
		_ = sim.Wait()
	})
	e.endpoint = "http://" + addr
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("simulated region did not start: %s", simLog)
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.ec2 = ec2.NewFromConfig(awssim.ClientConfig(e.endpoint, "us-east-1"))
	if strings.Contains(templates, "__SUBNETS__") {
		sn, err := e.ec2.DescribeSubnets(context.Background(), &ec2.DescribeSubnetsInput{})
		must(t, err)
		var ids []string
		for _, s := range sn.Subnets {
			ids = append(ids, aws.ToString(s.SubnetId))
		}
		templates = strings.ReplaceAll(templates, "__SUBNETS__", strings.Join(ids, ","))
	}

	e.sock = filepath.Join(dir, "ohfp.sock")
	e.cfg = filepath.Join(dir, "config.yaml")
	cfg := fmt.Sprintf(`socket: %s
state_dir: %s
cluster_id: e2e
reconcile:
  active_interval: 200ms
  idle_interval: 2s
providers:
  - name: aws
    region: us-east-1
    endpoint_url: %s
    templates_file: awsprov_templates.json
%s`, e.sock, filepath.Join(dir, "state"), e.endpoint, providerExtra)
	must(t, os.WriteFile(e.cfg, []byte(cfg), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "awsprov_templates.json"), []byte(templates), 0o600))
	p, err := hfdriver.Install(filepath.Join(dir, "hf"), filepath.Join(binDir, "ohfp"))
	must(t, err)
	p.Env = []string{"OHFP_SOCKET=" + e.sock, "HF_PROVIDER_NAME=aws", "OHFP_WAIT=20s"}
	e.plugin = p
	t.Cleanup(func() {
		if e.daemon != nil {
			_ = e.daemon.Stop(10 * time.Second)
		}
		if t.Failed() {
			t.Logf("ohfpd log:\n%s", e.log)
		}
	})
	return e
}

// logBuffer is ohfpd's output, safe to read while ohfpd writes it.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (e *env) start() {
	e.t.Helper()
	d, err := hfdriver.StartDaemon(filepath.Join(e.bin, "ohfpd"), []string{"--config", e.cfg},
		[]string{"AWS_ACCESS_KEY_ID=AKIASIMULATED", "AWS_SECRET_ACCESS_KEY=simulated", "AWS_EC2_METADATA_DISABLED=true"},
		e.sock, e.log, 30*time.Second)
	must(e.t, err)
	e.daemon = d
}

func (e *env) call(op string, in, out any) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	must(e.t, e.plugin.Call(ctx, op, in, out))
}

func (e *env) request(tpl string, n int) string {
	e.t.Helper()
	var rep hfdriver.RequestReply
	e.call("requestMachines", map[string]any{"template": map[string]any{"templateId": tpl, "machineCount": n}}, &rep)
	if !strings.HasPrefix(rep.RequestID, "req-") {
		e.t.Fatalf("requestMachines answered %+v", rep)
	}
	return rep.RequestID
}

func (e *env) waitFinal(id string) hfdriver.Status {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := e.plugin.WaitFinal(ctx, id, 200*time.Millisecond, nil)
	must(e.t, err)
	return st
}

// tagged lists the simulated region's instances carrying the request's tag.
func (e *env) tagged(requestID string, states ...string) []ec2types.Instance {
	e.t.Helper()
	in := &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{{Name: aws.String("tag:ohfp:request-id"), Values: []string{requestID}}}}
	if len(states) > 0 {
		in.Filters = append(in.Filters, ec2types.Filter{Name: aws.String("instance-state-name"), Values: states})
	}
	out, err := e.ec2.DescribeInstances(context.Background(), in)
	must(e.t, err)
	var all []ec2types.Instance
	for _, r := range out.Reservations {
		all = append(all, r.Instances...)
	}
	return all
}

func TestWholeHFCycle(t *testing.T) {
	e := newEnv(t)
	e.start()
	var tr struct {
		Templates []struct {
			TemplateID      string               `json:"templateId"`
			MaxNumber       int                  `json:"maxNumber"`
			AvailableNumber int                  `json:"availableNumber"`
			Attributes      map[string][2]string `json:"attributes"`
		} `json:"templates"`
	}
	e.call("getAvailableTemplates", map[string]any{}, &tr)
	if len(tr.Templates) != 2 || tr.Templates[0].AvailableNumber != 12 || tr.Templates[1].Attributes["nram"] != [2]string{"Numeric", "8192"} {
		t.Fatalf("templates: %+v", tr)
	}

	id := e.request("OnDemand-c5", 3)
	st := e.waitFinal(id)
	r := st.Requests[0]
	if r.Status != "complete" || len(r.Machines) != 3 {
		t.Fatalf("request: %+v", r)
	}
	for _, m := range r.Machines {
		if m.Result != "succeed" || m.Status != "running" || m.PrivateIPAddress == nil || !strings.HasSuffix(m.Name, ".ec2.internal") || m.LaunchTime == 0 {
			t.Fatalf("machine %+v", m)
		}
	}
	if n := len(e.tagged(id, "running")); n != 3 {
		t.Fatalf("%d running instances tagged with the request, want 3", n)
	}
	e.call("getAvailableTemplates", map[string]any{}, &tr)
	if tr.Templates[0].AvailableNumber != 9 {
		t.Fatalf("available after 3 launched: %d", tr.Templates[0].AvailableNumber)
	}

	var ret hfdriver.RequestReply
	e.call("requestReturnMachines", hfdriver.MachinesInput(r.Machines), &ret)
	if !strings.HasPrefix(ret.RequestID, "ret-") {
		t.Fatalf("return: %+v", ret)
	}
	rs := e.waitFinal(ret.RequestID).Requests[0]
	if rs.Status != "complete" || len(rs.Machines) != 3 || rs.Machines[0].Result != "succeed" {
		t.Fatalf("return status: %+v", rs)
	}
	if n := len(e.tagged(id, "pending", "running", "shutting-down", "stopping", "stopped")); n != 0 {
		t.Fatalf("%d instances of the request still up after the return", n)
	}
	var rr struct {
		Requests []struct {
			Machine     string `json:"machine"`
			GracePeriod int    `json:"gracePeriod"`
		} `json:"requests"`
	}
	e.call("getReturnRequests", hfdriver.MachinesInput(r.Machines), &rr)
	if len(rr.Requests) != 0 {
		t.Fatalf("machines HF returned must not be reported as reclaimed: %+v", rr)
	}
}

func TestKill9BetweenRequestAndCompletion(t *testing.T) {
	e := newEnv(t)
	e.start()
	var ids []string
	for i := 0; i < 3; i++ {
		id := e.request("OnDemand-c5", 4)
		ids = append(ids, id)
		// Crash at a different moment each time: right after the answer,
		// during the launch, while instances are pending.
		time.Sleep(time.Duration(rand.IntN(150)) * time.Millisecond * time.Duration(i))
		must(t, e.daemon.Kill())
		e.daemon = nil
		e.start()
	}
	for _, id := range ids {
		st := e.waitFinal(id).Requests[0]
		if st.Status != "complete" || len(st.Machines) != 4 {
			t.Fatalf("request %s after kill -9: %+v", id, st)
		}
		if n := len(e.tagged(id)); n != 4 {
			t.Fatalf("request %s: %d instances in the cloud, want exactly 4 (launched twice?)", id, n)
		}
	}
}

func TestMachineTerminatedOutsideHF(t *testing.T) {
	e := newEnv(t)
	e.start()
	id := e.request("Spot-m5", 2)
	ms := e.waitFinal(id).Requests[0].Machines
	if len(ms) != 2 || ms[0].PriceType != "spot" {
		t.Fatalf("machines %+v", ms)
	}
	_, err := e.ec2.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: []string{ms[0].MachineID}})
	must(t, err)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var rr struct {
			Requests []struct {
				Machine     string `json:"machine"`
				GracePeriod int    `json:"gracePeriod"`
			} `json:"requests"`
		}
		e.call("getReturnRequests", hfdriver.MachinesInput(ms), &rr)
		if len(rr.Requests) == 1 {
			if rr.Requests[0].Machine != ms[0].Name || rr.Requests[0].GracePeriod != 0 {
				t.Fatalf("reclaim %+v", rr)
			}
			return
		}
		if len(rr.Requests) > 1 || time.Now().After(deadline) {
			t.Fatalf("getReturnRequests %+v", rr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestBadInputs(t *testing.T) {
	e := newEnv(t)
	e.start()
	id := e.request("OnDemand-c5", 1)
	e.waitFinal(id)
	before := e.snapshot(id)
	big := []byte(`{"template": {"templateId": "OnDemand-c5", "machineCount": 1}, "pad": "` + strings.Repeat("x", 5<<20) + `"}`)
	cases := []struct {
		op, input, want string
	}{
		{"requestMachines", `{"template": {"templateId": "OnDemand-c5", "machineCount": 1}`, "JSON"},
		{"requestMachines", ``, "empty"},
		{"requestMachines", `{"template": {"machineCount": 1}}`, "templateId"},
		{"requestMachines", `{"template": {"templateId": "NoSuch", "machineCount": 1}}`, `"NoSuch" is not a template`},
		{"requestMachines", `{"template": {"templateId": "OnDemand-c5", "machineCount": 0}}`, "machineCount"},
		{"requestMachines", `{"template": {"templateId": "OnDemand-c5", "machineCount": -2}}`, "machineCount"},
		{"requestMachines", `{"template": {"templateId": "OnDemand-c5", "machineCount": "abc"}}`, "machineCount"},
		{"requestMachines", `{"template": {"templateId": "OnDemand-c5", "machineCount": 500}}`, "units available"},
		{"requestMachines", string(big), "4 MiB"},
		{"getRequestStatus", `{"requests": [{"requestId": 7}]}`, "requestId"},
		{"requestReturnMachines", `{"machines": []}`, "machines"},
		{"getReturnRequests", `{"machines": "all"}`, "machines"},
	}
	for _, c := range cases {
		res, err := e.plugin.Raw(context.Background(), c.op, []byte(c.input))
		must(t, err)
		var msg struct {
			Message string `json:"message"`
		}
		if res.Exit != 1 || json.Unmarshal(res.Stdout, &msg) != nil || !strings.Contains(msg.Message, c.want) {
			t.Errorf("%s %.60q: exit %d stdout %s; want exit 1 and a message containing %q", c.op, c.input, res.Exit, res.Stdout, c.want)
		}
	}
	// An unknown request id is complete_with_error (HF-CONTRACT), so HF stops polling it.
	var st hfdriver.Status
	e.call("getRequestStatus", hfdriver.StatusInput("req-00000000-0000-0000-0000-000000000000"), &st)
	if st.Requests[0].Status != "complete_with_error" || !strings.Contains(st.Requests[0].Message, "not known") {
		t.Errorf("unknown id: %+v", st)
	}
	// An unknown operation.
	cmd := exec.Command(filepath.Join(binDir, "ohfp"), "frobnicate")
	cmd.Env = append(os.Environ(), e.plugin.Env...)
	out, _ := cmd.Output()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), "getRequestStatus") {
		t.Errorf("unknown operation: exit %d %s", cmd.ProcessState.ExitCode(), out)
	}
	if after := e.snapshot(id); after != before {
		t.Fatalf("bad input changed the daemon's state:\nbefore %s\nafter  %s", before, after)
	}
}

// snapshot is what HF can see: templates' availability and one request.
func (e *env) snapshot(id string) string {
	var tr, st json.RawMessage
	e.call("getAvailableTemplates", map[string]any{}, &tr)
	e.call("getRequestStatus", hfdriver.StatusInput(id), &st)
	return string(tr) + string(st)
}
