package engine

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/domain"
	"github.com/ohfp/ohfp/internal/hf"
)

// spotReturnedDuringNotice launches one Spot machine, has the cloud give
// its interruption notice, and has HF return it 30 s into the notice. It
// answers the machine and the return request's id.
func spotReturnedDuringNotice(t *testing.T, h *harness) (hf.Machine, string) {
	t.Helper()
	id := h.request("Spot-m5", 1)
	h.provision()
	h.cloud.settle()
	h.reconcile()
	m := h.status(id).Machines[0]
	h.cloud.mu.Lock()
	for k, sr := range h.cloud.spot {
		sr.StatusCode, sr.Interrupted = "instance-terminated-no-capacity", true
		sr.StatusUpdate = h.clk.Now()
		h.cloud.spot[k] = sr
	}
	h.cloud.mu.Unlock()
	h.reconcile()
	h.clk.Advance(30 * time.Second)
	in := fmt.Sprintf(`{"machines":[{"name":%q,"machineId":%q}]}`, m.Name, m.MachineID)
	if rr, _ := hfraw(h.e).GetReturnRequests(nil, []byte(in)); len(rr.Requests) != 1 || rr.Requests[0].GracePeriod != 90 {
		t.Fatalf("the notice is not told to HF: %+v", rr)
	}
	ret, err := hfraw(h.e).RequestReturnMachines(nil, []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	return m, ret.RequestID
}

// IBM's default (AWS_SPOT_TERMINATE_ON_RECLAIM=false): a Spot host HF
// returns after its interruption notice is left for AWS to terminate, a
// restart in between changes nothing, and the return completes when AWS
// has taken it.
func TestReclaimLeftToCloud(t *testing.T) {
	h := newHarness(t)
	m, ret := spotReturnedDuringNotice(t, h)
	h.provision()
	h.reconcile()
	h.restart() // a crash while the cloud has the host
	h.clk.Advance(60 * time.Second)
	h.provision()
	h.reconcile()
	if len(h.cloud.terms) != 0 {
		t.Fatalf("ohfp terminated a host AWS is reclaiming: %v", h.cloud.terms)
	}
	if rs := h.status(ret); rs.Status != hf.StatusRunning || rs.Machines[0].Result != hf.ResultExecuting ||
		!strings.Contains(rs.Machines[0].Message, "left to AWS; ohfpd terminates it at 2027-01-15T08:05:00Z") {
		t.Fatalf("return before AWS took the host: %+v", rs)
	}
	// AWS carries out its notice.
	h.cloud.mu.Lock()
	h.cloud.insts[m.MachineID].State = "terminated"
	h.cloud.insts[m.MachineID].StateReason = "Server.SpotInstanceTermination"
	h.cloud.mu.Unlock()
	h.reconcile()
	if rs := h.status(ret); rs.Status != hf.StatusComplete || rs.Machines[0].Result != hf.ResultSucceed {
		t.Fatalf("return after AWS took the host: %+v", rs)
	}
	h.clk.Advance(domain.ReclaimLeeway)
	h.provision()
	if len(h.cloud.terms) != 0 {
		t.Fatalf("terminated after AWS did: %v", h.cloud.terms)
	}
}

// A notice AWS does not carry out: past the leeway (the notice's two
// minutes and three more), ohfp terminates the returned host itself,
// counted from the notice's own time, so a restart does not reset it.
func TestReclaimLeewayThenTerminated(t *testing.T) {
	h := newHarness(t)
	m, ret := spotReturnedDuringNotice(t, h)
	h.provision()
	if len(h.cloud.terms) != 0 {
		t.Fatalf("terminated at once: %v", h.cloud.terms)
	}
	h.clk.Advance(domain.ReclaimLeeway - 30*time.Second - 10*time.Second)
	h.restart()
	// The provisioner asks to be woken when the leeway ends, not at its
	// idle interval.
	if next := h.e.ProvisionOnce(t.Context()); next != 10*time.Second {
		t.Fatalf("next provisioning in %v, want the leeway's end (10s)", next)
	}
	h.e.Wait()
	if len(h.cloud.terms) != 0 {
		t.Fatalf("terminated before the leeway ended: %v", h.cloud.terms)
	}
	h.clk.Advance(10 * time.Second)
	h.provision()
	if len(h.cloud.terms) != 1 || h.cloud.terms[0][0] != m.MachineID {
		t.Fatalf("the host AWS left running is not terminated: %v", h.cloud.terms)
	}
	h.cloud.settle()
	h.reconcile()
	if rs := h.status(ret); rs.Status != hf.StatusComplete {
		t.Fatalf("return after ohfp's termination: %+v", rs)
	}
}

// AWS_SPOT_TERMINATE_ON_RECLAIM=true: terminated at once.
func TestReclaimTerminateOnReclaim(t *testing.T) {
	h := newHarness(t)
	h.terminateOnReclaim = true
	h.restart()
	m, _ := spotReturnedDuringNotice(t, h)
	h.provision()
	if len(h.cloud.terms) != 1 || h.cloud.terms[0][0] != m.MachineID {
		t.Fatalf("spot_terminate_on_reclaim true: terminations %v", h.cloud.terms)
	}
}

// A Spot host returned without a notice is terminated at once whatever
// the setting: only the cloud's own reclaim is waited for.
func TestReturnWithoutNoticeTerminatedAtOnce(t *testing.T) {
	h := newHarness(t)
	id := h.request("Spot-m5", 1)
	h.provision()
	h.cloud.settle()
	h.reconcile()
	m := h.status(id).Machines[0]
	if _, err := hfraw(h.e).RequestReturnMachines(nil, []byte(fmt.Sprintf(`{"machines":[{"name":%q,"machineId":%q}]}`, m.Name, m.MachineID))); err != nil {
		t.Fatal(err)
	}
	h.provision()
	if len(h.cloud.terms) != 1 {
		t.Fatalf("terminations %v", h.cloud.terms)
	}
}

// A fleet's Spot host returned during its notice and then taken by AWS:
// no Release ran for it, so the fleet's capacity is lowered once it is
// gone (else a maintain fleet would replace it behind HF's back), and
// nothing is terminated.
func TestReclaimLeftToCloudReleasesFleetCapacity(t *testing.T) {
	h, fc := newFleetHarness(t)
	id := h.request("Fleet-weighted", 2)
	h.provision()
	fc.fill("fleet-1", 1)
	h.cloud.settle()
	h.reconcile()
	m := h.status(id).Machines[0]
	h.cloud.mu.Lock()
	sr := h.cloud.spot["sir-"+m.MachineID[2:]]
	sr.StatusCode, sr.Interrupted, sr.StatusUpdate = "instance-terminated-no-capacity", true, h.clk.Now()
	h.cloud.spot[sr.ID] = sr
	h.cloud.mu.Unlock()
	h.reconcile()
	in := fmt.Sprintf(`{"machines":[{"name":%q,"machineId":%q}]}`, m.Name, m.MachineID)
	if _, err := hfraw(h.e).RequestReturnMachines(nil, []byte(in)); err != nil {
		t.Fatal(err)
	}
	h.provision()
	if fc.has("Release fleet-1") {
		t.Fatalf("released (terminated) a host AWS is reclaiming: %v", fc.calls)
	}
	h.cloud.mu.Lock()
	h.cloud.insts[m.MachineID].State = "terminated"
	h.cloud.mu.Unlock()
	h.reconcile()
	h.provision()
	if !fc.has("Release fleet-1 0 ids 2 units") || len(h.cloud.terms) != 0 {
		t.Fatalf("after AWS took it: fleet calls %v, terminations %v", fc.calls, h.cloud.terms)
	}
}
