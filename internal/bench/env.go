package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/ohfp/ohfp/internal/hfdriver"
	"github.com/ohfp/ohfp/internal/rpc"
)

// env is one benchmark environment: a simulated region process, an ohfpd
// process on it, and two HF plugin folders (the real ohfp client and the
// floor probe), each with the five <operation>.sh symlinks.
type env struct {
	bin     string // folder of ohfpd and ohfp
	dir     string // scratch folder
	simURL  string
	sim     *exec.Cmd
	simDone chan error
	cfg     string
	sock    string
	daemon  *hfdriver.Daemon
	logf    *os.File
	ohfp    string // plugin folder of the real client
	probe   string // plugin folder of the probe
	callEnv []string
	rpc     *rpc.Client
	httpc   *http.Client
	inputs  string
	nIn     int
}

const templatesJSON = `{"templates": [
  {"templateId": "Bench-c5", "maxNumber": %d,
   "attributes": {"type": ["String", "X86_64"], "ncpus": ["Numeric", "2"], "nram": ["Numeric", "4096"]},
   "imageId": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64",
   "vmType": "c5.large", "instanceTags": "cluster=bench"}
]}`

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startSim starts `ohfpd simulate --listen ADDR` as a separate process.
func (e *env) startSim(launchDelay time.Duration, nice int) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	d := launchDelay.String()
	args := []string{filepath.Join(e.bin, "ohfpd"), "simulate", "--listen", addr, "--launch-delay=" + d, "--terminate-delay=" + d}
	if nice != 0 {
		if p, err := exec.LookPath("nice"); err == nil {
			args = append([]string{p, "-n", fmt.Sprint(nice)}, args...)
		}
	}
	e.sim = exec.Command(args[0], args[1:]...)
	simLog, err := os.Create(filepath.Join(e.dir, "sim.log"))
	if err != nil {
		return err
	}
	e.sim.Stdout, e.sim.Stderr = simLog, simLog
	if err := e.sim.Start(); err != nil {
		return err
	}
	e.simDone = make(chan error, 1)
	go func() { e.simDone <- e.sim.Wait() }()
	e.simURL = "http://" + addr
	deadline := time.Now().Add(20 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return nil
		}
		select {
		case err := <-e.simDone:
			return fmt.Errorf("the simulated region exited at start (%v); see %s", err, simLog.Name())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the simulated region did not listen on %s within 20 s", addr)
		}
	}
}

// writeConfig writes ohfpd's config and templates. rateLimitOff adds
// aws_rate_limit: false to the provider.
func (e *env) writeConfig(maxNumber int, interval, idle time.Duration, rateLimitOff bool) error {
	e.sock = filepath.Join(e.dir, "ohfp.sock")
	e.cfg = filepath.Join(e.dir, "config.yaml")
	extra := ""
	if rateLimitOff {
		extra = "    aws_rate_limit: false\n"
	}
	cfg := fmt.Sprintf(`socket: %s
state_dir: %s
cluster_id: bench
log_format: text
pprof: true
reconcile:
  active_interval: %s
  idle_interval: %s
providers:
  - name: aws
    region: us-east-1
    endpoint_url: %s
    templates_file: awsprov_templates.json
%s`, e.sock, filepath.Join(e.dir, "state"), interval, idle, e.simURL, extra)
	if err := os.WriteFile(e.cfg, []byte(cfg), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(e.dir, "awsprov_templates.json"), fmt.Appendf(nil, templatesJSON, maxNumber), 0o600)
}

// checkConfig runs ohfpd --check-config and returns its complaint, if any.
func (e *env) checkConfig() error {
	out, err := exec.Command(filepath.Join(e.bin, "ohfpd"), "--check-config", "--config", e.cfg).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

var awsEnv = []string{"AWS_ACCESS_KEY_ID=AKIASIMULATED", "AWS_SECRET_ACCESS_KEY=simulated", "AWS_EC2_METADATA_DISABLED=true"}

// startDaemon starts ohfpd and returns once its socket accepts.
func (e *env) startDaemon() error {
	if e.logf == nil {
		f, err := os.Create(filepath.Join(e.dir, "ohfpd.log"))
		if err != nil {
			return err
		}
		e.logf = f
	}
	d, err := hfdriver.StartDaemon(filepath.Join(e.bin, "ohfpd"), []string{"--config", e.cfg}, awsEnv, e.sock, e.logf, 60*time.Second)
	if err != nil {
		return fmt.Errorf("%w (log: %s)", err, e.logf.Name())
	}
	e.daemon = d
	e.rpc = rpc.NewClient(e.sock, rpc.ClientOptions{WaitTimeout: -1})
	return nil
}

// install makes the two plugin folders and the environment calls run with.
func (e *env) install(probeBin string) error {
	p, err := hfdriver.Install(filepath.Join(e.dir, "hf-ohfp"), filepath.Join(e.bin, "ohfp"))
	if err != nil {
		return err
	}
	e.ohfp = p.Dir
	q, err := hfdriver.Install(filepath.Join(e.dir, "hf-probe"), probeBin)
	if err != nil {
		return err
	}
	e.probe = q.Dir
	e.inputs = filepath.Join(e.dir, "inputs")
	e.callEnv = append(os.Environ(), "OHFP_SOCKET="+e.sock, "HF_PROVIDER_NAME=aws", "OHFP_WAIT=20s")
	e.httpc = &http.Client{Timeout: 60 * time.Second}
	return os.MkdirAll(e.inputs, 0o755)
}

// input writes an HF input document once and returns its path.
func (e *env) input(op string, v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	e.nIn++
	f := filepath.Join(e.inputs, fmt.Sprintf("hf_in_%04d_%s.json", e.nIn, op))
	return f, os.WriteFile(f, b, 0o644)
}

// spawn runs `<plugin>/<op>.sh -f file` as HF does and returns its stdout
// and the wall time of the whole process (start to exit).
func (e *env) spawn(plugin, op, file string) ([]byte, time.Duration, error) {
	cmd := exec.Command(filepath.Join(plugin, op+".sh"), "-f", file)
	cmd.Env = e.callEnv
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	t0 := time.Now()
	err := cmd.Run()
	d := time.Since(t0)
	if err != nil {
		return out.Bytes(), d, fmt.Errorf("%s %s: %v: %s %s", filepath.Base(plugin), op, err, clip(out.String()), clip(errb.String()))
	}
	return out.Bytes(), d, nil
}

func clip(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}

// result extracts the HF answer from a client's stdout: ohfp prints it as
// is, the probe prints the JSON-RPC envelope.
func result(out []byte, v any) error {
	var env struct {
		Result json.RawMessage `json:"result"`
	}
	if json.Unmarshal(out, &env) == nil && len(env.Result) > 0 {
		out = env.Result
	}
	return json.Unmarshal(out, v)
}

// status is the part of ohfpd's "status" answer the benchmark reads.
type status struct {
	Machines        map[string]int `json:"machines"`
	InFlight        int            `json:"inFlight"`
	Reconciles      int            `json:"reconciles"`
	Listings        int            `json:"listings"`
	LastListingMs   int64          `json:"lastListingMs"`
	LastReconcileMs int64          `json:"lastReconcileMs"`
}

func (e *env) status() (status, error) {
	var st status
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := e.rpc.Call(ctx, "status", rpc.Params{}, &st)
	return st, err
}

// call makes one HF call in-process over the socket (used for polling and
// bookkeeping, never for the latency figures).
func (e *env) call(op string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return e.rpc.Call(ctx, op, rpc.Params{Input: b, Env: map[string]string{"HF_PROVIDER_NAME": "aws"}}, out)
}

// waitListings waits until ohfpd's full listings counter has grown by n
// from from (within limit) and returns its value.
func (e *env) waitListings(from, n int, limit time.Duration) (int, error) {
	deadline := time.Now().Add(limit)
	for {
		st, err := e.status()
		if err != nil {
			return 0, err
		}
		if st.Listings >= from+n {
			return st.Listings, nil
		}
		if time.Now().After(deadline) {
			return st.Listings, fmt.Errorf("only %d of %d full reconcile listings within %s", st.Listings-from, n, limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// simCounts reads the simulated region's AWS calls per action.
func (e *env) simCounts() (map[string]int, error) {
	var c struct {
		Calls map[string]int `json:"calls"`
	}
	resp, err := e.httpc.Get(e.simURL + "/_sim/counts")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return c.Calls, json.NewDecoder(resp.Body).Decode(&c)
}

func (e *env) resetCounts() error {
	resp, err := e.httpc.Post(e.simURL+"/_sim/counts/reset", "application/json", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("/_sim/counts/reset: HTTP %d", resp.StatusCode)
	}
	return nil
}

// simInstance is the part of /_sim/instances the benchmark reads.
type simInstance struct {
	ID         string            `json:"instanceId"`
	State      string            `json:"state"`
	LaunchTime time.Time         `json:"launchTime"`
	Tags       map[string]string `json:"tags"`
}

func (e *env) simInstances() ([]simInstance, error) {
	resp, err := e.httpc.Get(e.simURL + "/_sim/instances")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out []simInstance
	return out, json.NewDecoder(resp.Body).Decode(&out)
}

// rss reads VmRSS and VmHWM of pid in bytes.
func rss(pid int) (cur, peak int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		var kb int64
		if _, err := fmt.Sscanf(line, "VmRSS: %d kB", &kb); err == nil {
			cur = kb << 10
		}
		if _, err := fmt.Sscanf(line, "VmHWM: %d kB", &kb); err == nil {
			peak = kb << 10
		}
	}
	if cur == 0 {
		return 0, 0, errors.New("no VmRSS in /proc/PID/status")
	}
	return cur, peak, nil
}

// close stops ohfpd and the simulated region.
func (e *env) close() {
	if e.daemon != nil {
		_ = e.daemon.Stop(20 * time.Second)
	}
	if e.sim != nil && e.sim.Process != nil {
		_ = e.sim.Process.Kill()
		<-e.simDone
	}
	if e.logf != nil {
		e.logf.Close()
	}
}
