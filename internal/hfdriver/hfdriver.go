// Package hfdriver plays Host Factory against the real binaries: it
// installs the five <operation>.sh symlinks to the ohfp client, calls them
// the way HF does (`<operation>.sh -f FILE`, one process per call), and
// starts and stops ohfpd. `make demo` and the end-to-end tests use it.
package hfdriver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Operations are HF's five provider operations.
var Operations = []string{"getAvailableTemplates", "requestMachines", "getRequestStatus", "requestReturnMachines", "getReturnRequests"}

// Plugin is an HF plugin folder: one <operation>.sh symlink per operation,
// each pointing at the ohfp client.
type Plugin struct {
	Dir    string
	Env    []string // extra environment, e.g. OHFP_SOCKET=..., HF_PROVIDER_NAME=...
	inputs string
	n      int
}

// Install makes the plugin folder dir with symlinks to clientBin.
func Install(dir, clientBin string) (*Plugin, error) {
	abs, err := filepath.Abs(clientBin)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	for _, op := range Operations {
		link := filepath.Join(dir, op+".sh")
		_ = os.Remove(link)
		if err := os.Symlink(abs, link); err != nil {
			return nil, err
		}
	}
	inputs := filepath.Join(dir, "inputs")
	if err := os.MkdirAll(inputs, 0o755); err != nil {
		return nil, err
	}
	return &Plugin{Dir: dir, inputs: inputs}, nil
}

// Result is one call's outcome.
type Result struct {
	Stdout []byte
	Stderr []byte
	Exit   int
}

// Raw runs `<op>.sh -f FILE` with input written to FILE as is.
func (p *Plugin) Raw(ctx context.Context, op string, input []byte) (Result, error) {
	p.n++
	file := filepath.Join(p.inputs, fmt.Sprintf("hf_in_%04d_%s.json", p.n, op))
	if err := os.WriteFile(file, input, 0o644); err != nil {
		return Result{}, err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(p.Dir, op+".sh"), "-f", file)
	cmd.Env = append(os.Environ(), p.Env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := Result{Stdout: out.Bytes(), Stderr: errb.Bytes()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.Exit = ee.ExitCode()
	case err != nil:
		return res, err
	}
	return res, nil
}

// Call runs op with input marshalled to JSON and decodes a successful
// answer into out. A non-zero exit is an error carrying HF's message.
func (p *Plugin) Call(ctx context.Context, op string, input, out any) error {
	b, err := json.Marshal(input)
	if err != nil {
		return err
	}
	res, err := p.Raw(ctx, op, b)
	if err != nil {
		return err
	}
	if res.Exit != 0 {
		return fmt.Errorf("%s exited %d: %s %s", op, res.Exit, strings.TrimSpace(string(res.Stdout)), strings.TrimSpace(string(res.Stderr)))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(res.Stdout, out); err != nil {
		return fmt.Errorf("%s answered something that is not JSON: %v: %q", op, err, res.Stdout)
	}
	return nil
}

// Daemon is a running ohfpd process.
type Daemon struct {
	Cmd    *exec.Cmd
	Socket string
	done   chan error
}

// StartDaemon starts bin with args and waits (up to wait) until socket
// accepts connections.
func StartDaemon(bin string, args []string, env []string, socket string, logw io.Writer, wait time.Duration) (*Daemon, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logw, logw
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	d := &Daemon{Cmd: cmd, Socket: socket, done: make(chan error, 1)}
	go func() { d.done <- cmd.Wait() }()
	deadline := time.Now().Add(wait)
	for {
		if c, err := net.Dial("unix", socket); err == nil {
			c.Close()
			return d, nil
		}
		select {
		case err := <-d.done:
			return nil, fmt.Errorf("ohfpd exited before serving: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = d.Kill()
			return nil, fmt.Errorf("ohfpd did not serve on %s within %s", socket, wait)
		}
	}
}

// Stop sends SIGTERM and waits for a clean exit.
func (d *Daemon) Stop(wait time.Duration) error {
	_ = d.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		return err
	case <-time.After(wait):
		_ = d.Cmd.Process.Kill()
		<-d.done
		return fmt.Errorf("ohfpd did not stop within %s after SIGTERM", wait)
	}
}

// Kill kills the daemon with SIGKILL, as a crash would.
func (d *Daemon) Kill() error {
	_ = d.Cmd.Process.Kill()
	<-d.done
	return nil
}

// Status is getRequestStatus's answer.
type Status struct {
	Requests []struct {
		RequestID string    `json:"requestId"`
		Status    string    `json:"status"`
		Message   string    `json:"message"`
		Machines  []Machine `json:"machines"`
	} `json:"requests"`
}

// Machine is one machine in a status answer.
type Machine struct {
	MachineID        string  `json:"machineId"`
	Name             string  `json:"name"`
	Result           string  `json:"result"`
	Status           string  `json:"status"`
	PrivateIPAddress *string `json:"privateIpAddress"`
	LaunchTime       int64   `json:"launchtime"`
	Message          string  `json:"message"`
	InstanceType     string  `json:"instanceType"`
	PriceType        string  `json:"priceType"`
}

// RequestReply is requestMachines' and requestReturnMachines' answer.
type RequestReply struct {
	RequestID string `json:"requestId"`
	Message   string `json:"message"`
}

// StatusInput builds getRequestStatus's input for ids.
func StatusInput(ids ...string) map[string]any {
	reqs := make([]map[string]string, len(ids))
	for i, id := range ids {
		reqs[i] = map[string]string{"requestId": id}
	}
	return map[string]any{"requests": reqs}
}

// MachinesInput builds requestReturnMachines' and getReturnRequests' input.
func MachinesInput(ms []Machine) map[string]any {
	out := make([]map[string]string, len(ms))
	for i, m := range ms {
		out[i] = map[string]string{"name": m.Name, "machineId": m.MachineID}
	}
	return map[string]any{"machines": out}
}

// WaitFinal polls getRequestStatus for id every interval until it is no
// longer running, as HF does, and returns the last answer.
func (p *Plugin) WaitFinal(ctx context.Context, id string, interval time.Duration, each func(Status)) (Status, error) {
	for {
		var st Status
		if err := p.Call(ctx, "getRequestStatus", StatusInput(id), &st); err != nil {
			return st, err
		}
		if each != nil {
			each(st)
		}
		if len(st.Requests) == 1 && st.Requests[0].Status != "running" {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("request %s still running: %w", id, ctx.Err())
		case <-time.After(interval):
		}
	}
}

// Build builds ohfpd (with the race detector when race is set, as the
// tests that call it run under -race) and the static ohfp client into dir.
func Build(dir string, race bool) error {
	daemon := []string{"build", "-o", filepath.Join(dir, "ohfpd")}
	cgo := "0"
	if race {
		daemon = append(daemon, "-race")
		cgo = "1" // the race detector needs cgo
	}
	for _, c := range []struct {
		args []string
		cgo  string
	}{
		{append(daemon, "github.com/ohfp/ohfp/daemon"), cgo},
		{[]string{"build", "-o", filepath.Join(dir, "ohfp"), "github.com/ohfp/ohfp/client"}, "0"},
	} {
		cmd := exec.Command("go", c.args...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED="+c.cgo)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go %s: %v\n%s", strings.Join(c.args, " "), err, out)
		}
	}
	return nil
}
