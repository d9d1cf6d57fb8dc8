package soak

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/hfdriver"
	"github.com/ohfp/ohfp/internal/rpc"
)

// Issue 12, case 1, through the real binaries: a request completes, HF
// polls it, ohfpd is restarted (SIGTERM, start), and HF, as it does, never
// asks about the completed request again: it only calls getReturnRequests
// with the hosts it holds. Over several claim timeouts nothing is
// terminated. A request whose answer HF never used (recorded by ohfpd,
// never asked about, its hosts never listed) is the one whose machines go.
func TestRestartKeepsWhatHFUses(t *testing.T) {
	t.Parallel() // its own region and daemon; mostly waiting
	c := startCloud(t, 200*time.Millisecond, 200*time.Millisecond)
	const claim = 3 * time.Second
	e := newEnv(t, c, daemonOpts{claimTimeout: claim})
	e.start()
	used := e.request(tplOnDemand, 2)
	fin := e.waitFinal([]string{used}, 60*time.Second)[used]
	if fin.Status != "complete" || len(fin.Machines) != 2 {
		t.Fatalf("request: %+v", fin)
	}
	held := fin.Machines

	e.stop() // a plain restart
	e.start()
	// A request whose answer HF lost: ohfpd recorded and answered it, HF
	// never heard of the id (made here straight on the socket).
	ctx, cancel := callCtx()
	var lost hfdriver.RequestReply
	in, _ := json.Marshal(requestInput(tplOnDemand, 1))
	must(t, e.rpc.Call(ctx, "requestMachines", rpc.Params{Input: in}, &lost))
	cancel()

	// HF's housekeeping: getReturnRequests with every host it holds, for
	// four claim timeouts.
	end := time.Now().Add(4 * claim)
	calls := 0
	for time.Now().Before(end) {
		var rr struct {
			Requests []struct {
				Machine string `json:"machine"`
			} `json:"requests"`
		}
		e.call("getReturnRequests", hfdriver.MachinesInput(held), &rr)
		calls++
		if len(rr.Requests) != 0 {
			t.Fatalf("getReturnRequests reports hosts HF uses as taken back: %+v", rr.Requests)
		}
		time.Sleep(300 * time.Millisecond)
	}
	running := map[string]bool{}
	var lostGone bool
	for _, in := range c.instances() {
		if in.State == "running" || in.State == "pending" {
			running[in.ID] = true
		}
	}
	for _, m := range held {
		if !running[m.MachineID] {
			t.Errorf("machine %s, used by HF, is no longer running after a restart", m.MachineID)
		}
	}
	rows := e.allRequests()
	lostRow := rows[lost.RequestID]
	lostGone = strings.Contains(lostRow.Message, "HF never learned")
	if !lostGone {
		t.Errorf("the request HF never learned of was not cleaned up: %+v", lostRow)
	}
	if len(running) != len(held) {
		t.Errorf("%d instances running, want the %d HF holds", len(running), len(held))
	}
	report(t, map[string]any{"restarts": 1, "getReturnRequests": calls, "claimTimeout": claim.String(),
		"heldMachinesTerminated": len(held) - countIn(held, running), "lostRequestCleanedUp": lostGone})
}

func countIn(ms []hfdriver.Machine, set map[string]bool) int {
	n := 0
	for _, m := range ms {
		if set[m.MachineID] {
			n++
		}
	}
	return n
}

// Issue 12, case 6, through the real binaries: ohfpd is stopped (SIGSTOP),
// HF's requestMachines times out and is told the call took no effect;
// when ohfpd continues (SIGCONT) it does not carry the call out: nothing
// is recorded and nothing launches.
func TestAbandonedCallTakesNoEffect(t *testing.T) {
	t.Parallel() // its own region and daemon; mostly waiting
	c := startCloud(t, 200*time.Millisecond, 200*time.Millisecond)
	e := newEnv(t, c, daemonOpts{})
	e.start()
	var tr json.RawMessage
	e.call("getAvailableTemplates", map[string]any{}, &tr) // up and serving

	p := e.newPlugin("hf-impatient")
	p.Env = append(p.Env, "OHFP_TIMEOUT=2s")
	must(t, e.daemon.Cmd.Process.Signal(syscall.SIGSTOP))
	stopped := true
	defer func() {
		if stopped {
			_ = e.daemon.Cmd.Process.Signal(syscall.SIGCONT)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	in, _ := json.Marshal(requestInput(tplOnDemand, 2))
	res, err := p.Raw(ctx, "requestMachines", in)
	cancel()
	must(t, err)
	var msg struct {
		Message string `json:"message"`
	}
	_ = json.Unmarshal(res.Stdout, &msg)
	if res.Exit != 1 || !strings.Contains(msg.Message, "did not answer requestMachines in time") || !strings.Contains(msg.Message, "took no effect") ||
		!strings.Contains(msg.Message, "ohfp requests --all") {
		t.Fatalf("exit %d, answer %s", res.Exit, res.Stdout)
	}
	must(t, e.daemon.Cmd.Process.Signal(syscall.SIGCONT))
	stopped = false

	// ohfpd now reads the call HF gave up on: it must not act on it.
	time.Sleep(3 * time.Second)
	for id, r := range e.allRequests() {
		if r.Kind == "acquire" {
			t.Errorf("ohfpd recorded request %s for a call HF was told failed: %+v", id, r)
		}
	}
	if n := len(c.instances()); n != 0 {
		t.Errorf("%d instances launched for a call HF was told failed", n)
	}
	log, _ := os.ReadFile(e.logPath)
	if !strings.Contains(string(log), "refused a call that arrived after its caller stopped waiting") {
		t.Errorf("the log does not say the late call was refused")
	}
	// And ohfpd serves on.
	id := e.request(tplOnDemand, 1)
	if st := e.waitFinal([]string{id}, 60*time.Second)[id]; st.Status != "complete" {
		t.Errorf("after the stop: %+v", st)
	}
	report(t, map[string]any{"stoppedFor": "2s timeout", "recorded": 0, "launched": 0})
}
