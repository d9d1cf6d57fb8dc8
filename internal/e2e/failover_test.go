package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/ohfp/ohfp/internal/awssim"
	"github.com/ohfp/ohfp/internal/hfdriver"
)

// peer is a second ohfpd (B) on its own state directory and socket, with
// the same cluster id and the same simulated region as e: the master
// candidate HF moves to when its master fails, without a shared store.
func (e *env) peer() *env {
	e.t.Helper()
	b := &env{t: e.t, dir: filepath.Join(e.dir, "b"), bin: e.bin, endpoint: e.endpoint, log: &logBuffer{}, ec2: e.ec2}
	must(e.t, os.MkdirAll(b.dir, 0o700))
	b.sock = filepath.Join(b.dir, "ohfp.sock")
	b.cfg = filepath.Join(b.dir, "config.yaml")
	cfg, err := os.ReadFile(e.cfg)
	must(e.t, err)
	s := strings.ReplaceAll(string(cfg), "socket: "+e.sock, "socket: "+b.sock)
	s = strings.ReplaceAll(s, "state_dir: "+filepath.Join(e.dir, "state"), "state_dir: "+filepath.Join(b.dir, "state"))
	must(e.t, os.WriteFile(b.cfg, []byte(s), 0o600))
	tpl, err := os.ReadFile(filepath.Join(e.dir, "awsprov_templates.json"))
	must(e.t, err)
	must(e.t, os.WriteFile(filepath.Join(b.dir, "awsprov_templates.json"), tpl, 0o600))
	p, err := hfdriver.Install(filepath.Join(b.dir, "hf"), filepath.Join(e.bin, "ohfp"))
	must(e.t, err)
	p.Env = []string{"OHFP_SOCKET=" + b.sock, "HF_PROVIDER_NAME=aws", "OHFP_WAIT=20s"}
	b.plugin = p
	e.t.Cleanup(func() {
		if b.daemon != nil {
			_ = b.daemon.Stop(10 * time.Second)
		}
		if e.t.Failed() {
			e.t.Logf("ohfpd B log:\n%s", b.log)
		}
	})
	return b
}

func (e *env) status(id string) hfdriver.Status {
	e.t.Helper()
	var st hfdriver.Status
	e.call("getRequestStatus", hfdriver.StatusInput(id), &st)
	if len(st.Requests) != 1 {
		e.t.Fatalf("status of %s: %+v", id, st)
	}
	return st
}

// instance is what the simulated region says of one instance: its state
// and its ohfp:return-id tag.
func (e *env) instance(id string) (state, returnID string) {
	e.t.Helper()
	out, err := e.ec2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	must(e.t, err)
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			for _, tg := range in.Tags {
				if aws.ToString(tg.Key) == "ohfp:return-id" {
					returnID = aws.ToString(tg.Value)
				}
			}
			return string(in.State.Name), returnID
		}
	}
	return "", ""
}

func (e *env) until(what string, d time.Duration, ok func() bool) {
	e.t.Helper()
	for end := time.Now().Add(d); !ok(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(end) {
			e.t.Fatalf("after %s: %s", d, what)
		}
	}
}

// Issue 14 item 3, with the real binaries: two ohfpd on two state
// directories, one simulated region (eventually consistent, as AWS). A
// launches and is SIGKILLed: B, on an empty store, answers for A's request
// from the cloud. A is SIGKILLed during the terminate of a host HF
// returned: B, on its now stale store, answers A's ret- id and the host
// is terminated, also when HF returns it again on B. A request B is asked
// about moments after A made it, before any instance of it shows, is
// answered running (its id says how young it is), then from A's instance.
func TestFailoverTwoDaemons(t *testing.T) {
	t.Parallel() // its own region and daemons; mostly waiting
	a := newEnv(t)
	a.start()
	req := a.request("OnDemand-c5", 2)
	ms := a.waitFinal(req).Requests[0].Machines
	if len(ms) != 2 {
		t.Fatalf("on A: %+v", ms)
	}
	must(t, a.daemon.Kill())
	a.daemon = nil

	// B, empty store: A's request answers from the cloud.
	b := a.peer()
	b.start()
	r := b.status(req).Requests[0]
	if r.Status != "complete" || len(r.Machines) != 2 || strings.Contains(r.Message, "not known") {
		t.Fatalf("A's request on B: %+v", r)
	}
	for i, m := range r.Machines {
		if st, _ := b.instance(m.MachineID); m.MachineID != ms[i].MachineID || m.Result != "succeed" || st != "running" {
			t.Fatalf("machine on B %+v (region: %s), A had %+v", m, st, ms[i])
		}
	}
	must(t, b.daemon.Stop(10*time.Second))
	b.daemon = nil

	// HF back on A; A is killed during a slow terminate of a returned host.
	a.start()
	a.sim("faults", awssim.Faults{Latency: time.Minute, Actions: []string{"TerminateInstances"}})
	var ret hfdriver.RequestReply
	a.call("requestReturnMachines", hfdriver.MachinesInput(ms[:1]), &ret)
	a.until("A wrote the return tag", 20*time.Second, func() bool { _, rid := a.instance(ms[0].MachineID); return rid == ret.RequestID })
	time.Sleep(300 * time.Millisecond) // into the terminate call
	must(t, a.daemon.Kill())
	a.daemon = nil
	a.sim("faults", awssim.Faults{})
	if st, _ := a.instance(ms[0].MachineID); st != "running" {
		t.Fatalf("the terminate A was killed in went through: %s", st)
	}

	// HF on B (its store stale: the host is running there): A's ret- id
	// answers, HF's retry of the return is not ignored, the host ends.
	b.start()
	rr := b.status(ret.RequestID).Requests[0]
	if rr.Status == "complete_with_error" || strings.Contains(rr.Message, "not known") {
		t.Fatalf("A's return on B: %+v", rr)
	}
	var again hfdriver.RequestReply
	b.call("requestReturnMachines", hfdriver.MachinesInput(ms[:1]), &again)
	if strings.Contains(again.Message, "not provisioned") {
		t.Fatalf("B ignored the returned host: %+v", again)
	}
	for _, id := range []string{ret.RequestID, again.RequestID} {
		if f := b.waitFinal(id).Requests[0]; f.Status != "complete" || len(f.Machines) != 1 || f.Machines[0].Result != "succeed" {
			t.Fatalf("return %s on B: %+v", id, f)
		}
	}
	if st, _ := b.instance(ms[0].MachineID); st != "terminated" {
		t.Fatalf("returned host is %s", st)
	}
	if st, _ := b.instance(ms[1].MachineID); st != "running" {
		t.Fatalf("the host HF kept is %s", st)
	}
	var rrq struct {
		Requests []struct{ Machine string } `json:"requests"`
	}
	b.call("getReturnRequests", hfdriver.MachinesInput(ms[1:]), &rrq)
	if len(rrq.Requests) != 0 {
		t.Fatalf("B reports HF's host as taken back: %+v", rrq)
	}

	// A (restarted, a hot standby) launches late; B was asked first. The
	// id says it was made moments ago: B answers running, never failed,
	// and answers from A's instance once the cloud shows it.
	a.start()
	a.sim("faults", awssim.Faults{Latency: 4 * time.Second, Actions: []string{"RunInstances"}})
	late := a.request("OnDemand-c5", 1)
	if r := b.status(late).Requests[0]; r.Status != "running" || !strings.Contains(r.Message, "made less than") {
		t.Fatalf("B on a young request it cannot find yet: %+v", r)
	}
	a.until("A's late launch ran", 30*time.Second, func() bool { return len(a.tagged(late)) == 1 })
	a.sim("faults", awssim.Faults{})
	id := aws.ToString(a.tagged(late)[0].InstanceId)
	b.until("B answers A's late request from the cloud", 60*time.Second, func() bool {
		r := b.status(late).Requests[0]
		if r.Status == "complete_with_error" {
			t.Fatalf("B answered a young request failed: %+v", r)
		}
		return r.Status == "complete" && len(r.Machines) == 1 && r.Machines[0].MachineID == id
	})
	if st, _ := b.instance(id); st != "running" {
		t.Fatalf("A's late instance, which HF now holds, is %s", st)
	}
}
